"""The pairwise trainer: device choice, sampling, autocast, validation early stopping, timing."""

from __future__ import annotations

import copy
import math
import resource
import time
from typing import Callable

import numpy as np
import torch

from kgrec.data.sampling import NegativeSampler
from kgrec.data.splits import Split

__all__ = ["fit_pairwise", "pick_device", "peak_memory_mb"]


def pick_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def peak_memory_mb() -> float:
    """Peak resident memory of this process (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def fit_pairwise(est, split: Split, log: Callable[[str], None] | None = None,
                 metric: str = "ndcg@10", checkpoint: Callable[[object, dict], None] | None = None,
                 resume: dict | None = None) -> dict:
    """Train a :class:`~kgrec.models.base.PairwiseEstimator` with sampled negatives.

    Every ``eval_every`` epochs the model is scored on ``split.valid`` (full ranking, train items
    masked); the best state by ``metric`` is kept and restored at the end, and training stops after
    ``patience`` evaluations without improvement. The test part is never looked at.

    Args:
        est: the estimator, already prepared and built.
        split: the split; only ``train`` and ``valid`` are used.
        log: called with one line per evaluation.
        metric: the validation metric to select on (default ``"ndcg@10"``).
        checkpoint: called as ``checkpoint(est, info)`` after each new best epoch, with ``info``
            ``{"epoch": e, "valid": metrics}`` (the API saves the model there, atomically).
        resume: ``{"state": module state dict, "epoch": e, "valid": metrics}`` of a checkpoint to
            continue from: its weights are loaded and training goes on at epoch ``e + 1`` with its
            validation score as the best so far (Adam's moments start afresh).

    Returns:
        ``fit_info``: best epoch, best validation metrics, seconds per epoch, seconds to the best
        epoch, peak memory; also stored on ``est.fit_info``.
    """
    from kgrec.evaluate import Evaluator

    cfg = est.config
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % (2**32))
    est.to(device)
    module = est.module
    optimizer = torch.optim.Adam(est.param_groups(), lr=cfg.lr)
    sampler = NegativeSampler(split.train, est.meta["num_items"], seed=cfg.seed)
    evaluator = Evaluator(split, ks=(10, 20), part="valid") if len(split.valid) else None
    users, items = split.train.user, split.train.item
    n = users.numel()
    gen = torch.Generator().manual_seed(cfg.seed)
    pair_weights = None
    if getattr(cfg, "half_life_days", None):
        from kgrec.dynamics import decay_weights

        # time decay: an epoch draws n positive pairs with probability proportional to their weight
        pair_weights = decay_weights(split.train.time, cfg.half_life_days, user=users,
                                     decay_from=getattr(cfg, "decay_from", "cut")).double()
    use_amp = device.type == "cuda"
    if use_amp:
        torch.cuda.reset_peak_memory_stats(device)

    best, best_state, best_epoch, bad = -math.inf, None, 0, 0
    best_metrics: dict = {}
    first_epoch = 1
    if resume is not None:
        module.load_state_dict(resume["state"])
        best_state = copy.deepcopy(module.state_dict())
        best_epoch, best_metrics = int(resume["epoch"]), dict(resume["valid"])
        best, first_epoch = float(best_metrics.get(metric, -math.inf)), best_epoch + 1
    epoch_seconds: list[float] = []
    t_start = time.perf_counter()
    t_best = 0.0
    epochs = range(first_epoch, cfg.epochs + 1)
    if cfg.progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc=f"train {est.name}", unit="epoch")
    for epoch in epochs:
        module.train()
        est.unfreeze()
        t0 = time.perf_counter()
        perm = (torch.randperm(n, generator=gen) if pair_weights is None
                else torch.multinomial(pair_weights, n, replacement=True, generator=gen))
        total = 0.0
        for start in range(0, n, cfg.batch_size):
            b = perm[start:start + cfg.batch_size]
            u, p = users[b], items[b]
            neg = sampler.sample(u, cfg.num_neg)
            u, p, neg = u.to(device), p.to(device), neg.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = est.batch_loss(u, p, neg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * b.numel()
        if use_amp:
            torch.cuda.synchronize(device)
        epoch_seconds.append(time.perf_counter() - t0)
        if not math.isfinite(total):
            raise FloatingPointError(f"training loss of '{est.name}' became {total} at epoch {epoch}; "
                                     "lower 'lr' or raise 'reg'")
        if evaluator is None or epoch % cfg.eval_every:
            continue
        est.freeze()
        metrics = evaluator(est.score)
        score = metrics[metric]
        if log:
            log(f"epoch {epoch:4d}  loss {total / n:.4f}  valid {metric} {score:.4f}  "
                f"({epoch_seconds[-1]:.2f} s)")
        if score > best:
            best, best_epoch, bad, best_metrics = score, epoch, 0, metrics
            best_state = copy.deepcopy(module.state_dict())
            t_best = time.perf_counter() - t_start
            if checkpoint:
                checkpoint(est, {"epoch": epoch, "valid": metrics})
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    else:  # no validation part: keep the last epoch
        best_epoch, t_best = len(epoch_seconds), time.perf_counter() - t_start
    est.freeze()
    info = {
        "device": str(device),
        "best_epoch": best_epoch,
        "epochs_run": len(epoch_seconds),
        "resumed_from_epoch": first_epoch - 1 if resume is not None else None,
        "valid": best_metrics,
        "seconds_per_epoch_median": float(np.median(epoch_seconds)) if epoch_seconds else 0.0,
        "seconds_to_best": t_best,
        "fit_seconds": time.perf_counter() - t_start,
        "peak_rss_mb": peak_memory_mb(),
    }
    if use_amp:
        info["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    est.fit_info = info
    return info
