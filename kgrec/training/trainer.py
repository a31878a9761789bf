"""The pairwise trainer: device choice, sampling, autocast, validation early stopping, timing."""

from __future__ import annotations

import copy
import math
import resource
import time
from typing import Callable

import numpy as np
import torch

from kgrec.data.decay import decay_weights
from kgrec.data.sampling import NegativeSampler
from kgrec.data.splits import Split
from kgrec.errors import CheckpointError, KgrecError
from kgrec.evaluation.evaluator import Evaluator
from kgrec.training import distributed
from kgrec.training.checkpoint_schema import check_resume_weights

__all__ = ["fit_pairwise", "EpochLoop", "pick_device", "peak_memory_mb", "trainer_state", "restore_trainer_state"]


def pick_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def peak_memory_mb() -> float:
    """Peak resident memory of this process (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _estimator_generators(est) -> dict[str, torch.Generator]:
    """The estimator's own random generators (e.g. sampled LightGCN's neighbour sampler), by name."""
    return est.rng_generators() if hasattr(est, "rng_generators") else {}


def trainer_state(optimizer: torch.optim.Optimizer, gen: torch.Generator,
                  sampler: NegativeSampler, extra: dict[str, torch.Generator] | None = None,
                  ) -> tuple[dict, dict[str, torch.Tensor]]:
    """What besides the weights a resumed run needs to continue exactly as an uninterrupted one.

    Args:
        extra: the estimator's own generators (``rng_generators()``), saved as ``rng.est.<name>``.

    Returns:
        ``(meta, tensors)``: JSON-able values (the negative sampler's generator state, the
        optimizer's non-tensor state) and tensors (Adam's moments and step counts as
        ``optim.<param index>.<name>``, the shuffling generator's, torch's global and the
        estimator's own RNG states).
    """
    tensors: dict[str, torch.Tensor] = {"rng.shuffle": gen.get_state(), "rng.torch": torch.get_rng_state()}
    for name, g in (extra or {}).items():
        tensors[f"rng.est.{name}"] = g.get_state()
    scalars: dict[str, object] = {}
    for idx, st in optimizer.state_dict()["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{idx}.{k}"] = v.detach().cpu()
            else:
                scalars[f"{idx}.{k}"] = v
    return {"sampler_rng": sampler.rng.bit_generator.state, "optim_scalars": scalars}, tensors


def restore_trainer_state(optimizer: torch.optim.Optimizer, gen: torch.Generator, sampler: NegativeSampler,
                          meta: dict, tensors: dict[str, torch.Tensor],
                          extra: dict[str, torch.Generator] | None = None) -> None:
    """Inverse of :func:`trainer_state` (the optimizer must be built over the same parameters; a
    generator of ``extra`` the checkpoint does not hold keeps its seeded state).
    """
    for name, g in (extra or {}).items():
        if f"rng.est.{name}" in tensors:
            g.set_state(tensors[f"rng.est.{name}"])
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            idx, name = key[6:].split(".", 1)
            state.setdefault(int(idx), {})[name] = v
    for key, v in meta.get("optim_scalars", {}).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    params = [q for group in optimizer.param_groups for q in group["params"]]
    for idx, entries in state.items():  # torch accepts any shape here and fails at the first step
        if not 0 <= idx < len(params):
            raise ValueError(f"optimizer state of parameter {idx}, the model has {len(params)}")
        for name, v in entries.items():
            if isinstance(v, torch.Tensor) and v.dim() and tuple(v.shape) != tuple(params[idx].shape):
                raise ValueError(f"optimizer state '{name}' of parameter {idx} has shape {list(v.shape)}, "
                                 f"the parameter {list(params[idx].shape)}")
    sd = optimizer.state_dict()
    sd["state"] = state
    optimizer.load_state_dict(sd)
    gen.set_state(tensors["rng.shuffle"])
    torch.set_rng_state(tensors["rng.torch"])
    sampler.rng.bit_generator.state = meta["sampler_rng"]


class EpochLoop:
    """The epoch loop shared by the gradient trainers (:func:`fit_pairwise`, SASRec's ``fit``).

    Built where training is about to start: it resets the GPU's peak-memory counter and, given a
    checkpoint to ``resume`` from, loads its weights, best epoch and validation metrics (and the
    optimizer's and RNG states when it holds them). :meth:`run` then trains epochs up to
    ``config.epochs``, validating every ``eval_every`` epochs, keeping the best state by ``metric``
    (checkpointing each new best), stopping after ``patience`` validations without improvement, and
    returns ``fit_info``.

    Args:
        est: the estimator (``config``, ``module``, ``name`` are read; ``fit_info`` is set).
        optimizer, gen, sampler: the optimizer, the shuffling generator and an object with a numpy
            ``rng`` (the negative sampler), all saved in a checkpoint and restored on resume.
        device: the training device.
        metric: the validation metric to select on.
        resume: as in :func:`fit_pairwise`.
        ctx: the :func:`kgrec.training.distributed.context` (``None`` in one process).
    """

    def __init__(self, est, optimizer: torch.optim.Optimizer, gen: torch.Generator, sampler, device: torch.device,
                 metric: str = "ndcg@10", resume: dict | None = None, ctx=None) -> None:
        self.est, self.optimizer, self.gen, self.sampler, self.device = est, optimizer, gen, sampler, device
        self.metric, self.resume, self.ctx = metric, resume, ctx
        self.rank, self.world = (ctx.rank, ctx.world) if ctx else (0, 1)
        self.use_amp = device.type == "cuda"
        if self.use_amp:
            torch.cuda.reset_peak_memory_stats(device)
        self.best, self.best_state, self.best_epoch, self.bad = -math.inf, None, 0, 0
        self.best_metrics: dict = {}
        self.first_epoch = 1
        if resume is not None:
            self._resume(resume)

    def _resume(self, resume: dict) -> None:
        cfg, module, rank = self.est.config, self.est.module, self.rank
        path = resume.get("path")
        check_resume_weights(module, resume["state"], path)
        module.load_state_dict(resume["state"])
        self.best_state = copy.deepcopy(module.state_dict())
        self.best_epoch, self.best_metrics = int(resume["epoch"]), dict(resume["valid"])
        self.best, self.first_epoch = float(self.best_metrics.get(self.metric, -math.inf)), self.best_epoch + 1
        if resume.get("trainer") and resume.get("trainer_tensors"):
            extra = _estimator_generators(self.est)
            try:
                restore_trainer_state(self.optimizer, self.gen, self.sampler, resume["trainer"],
                                      resume["trainer_tensors"], extra)
            except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:  # edited optimizer/RNG state
                raise CheckpointError(f"cannot resume from '{path}': its optimizer or random-number state does "
                                      f"not fit this model ({type(e).__name__}: {e})") from None
            if rank:  # the checkpoint holds rank 0's streams: give the others their own again
                first_epoch = self.first_epoch
                self.sampler.rng = np.random.default_rng([cfg.seed, rank, first_epoch])
                torch.manual_seed(cfg.seed + rank + 7919 * first_epoch)
                for k, g in enumerate(extra.values()):
                    g.manual_seed(cfg.seed + rank + 7919 * first_epoch + 104729 * (k + 1))

    def backward_step(self, compute_loss: Callable[[], torch.Tensor]) -> float:
        """One optimizer step on ``compute_loss()`` (under bf16 autocast on CUDA); returns the loss."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            loss = compute_loss()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def run(self, step_epoch: Callable[[int], tuple[float, int]], n: int, *,
            evaluator: Callable | None, has_valid: bool | None = None, freeze: Callable[[], None],
            unfreeze: Callable[[], None] | None = None, log: Callable[[str], None] | None = None,
            checkpoint: Callable[[object, dict, dict], None] | None = None,
            curve_keys: tuple[str, ...] = ("ndcg@10", "recall@10", "ndcg@20", "recall@20", "auc"),
            loss_hint: str = "lower 'lr' or raise 'reg'",
            extra_info: Callable[[dict], dict] | None = None, validate_start: bool = False) -> dict:
        """Train the epochs and return ``fit_info`` (also stored on ``est.fit_info``).

        Args:
            step_epoch: ``step_epoch(epoch) -> (loss sum, pairs)`` trains one epoch (in train mode)
                and returns the summed loss and how many samples this rank trained on.
            n: samples per epoch; the curve's ``loss`` is the sum over ``n``. Under ``torchrun`` the
                ranks' sums are added and rescaled to ``n`` samples.
            evaluator: ``evaluator(est.score) -> metrics`` on validated epochs (``None`` on ranks
                other than 0: rank 0 broadcasts its metrics).
            has_valid: whether to validate at all (default: ``evaluator is not None``).
            freeze: puts the estimator in scoring mode (before validation and at the end).
            unfreeze: called at the start of each epoch after ``module.train()``.
            log, checkpoint: as in :func:`fit_pairwise`.
            curve_keys: the validation metrics (besides ``metric``) kept in the curve.
            loss_hint: the advice of the error raised when the loss stops being finite.
            extra_info: ``extra_info(info) -> dict`` of model-specific ``fit_info`` keys, put
                before ``curve``.
            validate_start: validate the starting state first, as the best so far at epoch
                ``first_epoch - 1`` (see :func:`fit_pairwise`).
        """
        module, cfg = self.est.module, self.est.config
        if has_valid is None:
            has_valid = evaluator is not None
        epoch_seconds: list[float] = []
        curve: list[dict] = []  # one row per epoch: loss, and the validation metrics when validated
        t_start = time.perf_counter()
        t_best = 0.0
        if validate_start and has_valid:
            start = {"epoch": self.first_epoch - 1, "loss": None, "seconds": 0.0}
            metrics = self._validate(self.first_epoch - 1, start, evaluator, freeze, curve_keys, log)
            if metrics[self.metric] > self.best:
                self.best, self.best_epoch, self.best_metrics = metrics[self.metric], self.first_epoch - 1, metrics
                self.best_state = copy.deepcopy(module.state_dict())
            curve.append(start)
        for epoch in self._epochs():
            total, seconds = self._train_epoch(module, step_epoch, epoch, n, unfreeze, loss_hint)
            epoch_seconds.append(seconds)
            curve.append({"epoch": epoch, "loss": total / n, "seconds": seconds})
            if not has_valid or epoch % cfg.eval_every:
                continue
            metrics = self._validate(epoch, curve[-1], evaluator, freeze, curve_keys, log)
            if metrics[self.metric] > self.best:
                self.best, self.best_epoch, self.bad, self.best_metrics = metrics[self.metric], epoch, 0, metrics
                self.best_state = copy.deepcopy(module.state_dict())
                t_best = time.perf_counter() - t_start
                if checkpoint and self.rank == 0:
                    meta, tensors = trainer_state(self.optimizer, self.gen, self.sampler,
                                                  _estimator_generators(self.est))
                    checkpoint(self.est, {"epoch": epoch, "valid": metrics, "trainer": meta}, tensors)
            else:
                self.bad += 1
                if self.bad >= cfg.patience:
                    break
        if self.best_state is not None:
            module.load_state_dict(self.best_state)
        else:  # no validation part: keep the last epoch
            self.best_epoch, t_best = self.first_epoch - 1 + len(epoch_seconds), time.perf_counter() - t_start
        freeze()
        return self._fit_info(epoch_seconds, curve, t_start, t_best, extra_info)

    def _epochs(self):
        """The epochs still to train, behind a progress bar on rank 0 when ``config.progress`` asks for one."""
        epochs = range(self.first_epoch, self.est.config.epochs + 1)
        if self.est.config.progress and self.rank == 0:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc=f"train {self.est.name}", unit="epoch")
        return epochs

    def _train_epoch(self, module, step_epoch: Callable[[int], tuple[float, int]], epoch: int, n: int,
                     unfreeze: Callable[[], None] | None, loss_hint: str) -> tuple[float, float]:
        """Train one epoch; returns its loss sum (over all ranks, rescaled to ``n`` samples) and seconds."""
        module.train()
        if unfreeze is not None:
            unfreeze()
        t0 = time.perf_counter()
        total, count = step_epoch(epoch)
        if self.use_amp:
            torch.cuda.synchronize(self.device)
        if self.ctx:  # the mean over all ranks' pairs (padding included); every rank sees the same value
            total = distributed.all_reduce_sum(total) * n / (count * self.world)
        seconds = time.perf_counter() - t0
        if not math.isfinite(total):
            raise FloatingPointError(f"training loss of '{self.est.name}' became {total} at epoch {epoch}; "
                                     f"{loss_hint}")
        return total, seconds

    def _validate(self, epoch: int, row: dict, evaluator: Callable | None, freeze: Callable[[], None],
                  curve_keys: tuple[str, ...], log: Callable[[str], None] | None) -> dict:
        """Validate the frozen model (rank 0 evaluates and broadcasts), record it in the curve's ``row``, log it."""
        metric = self.metric
        freeze()  # on every rank: a model with cached state (fine-tuned text) stays the same everywhere
        metrics = evaluator(self.est.score) if evaluator is not None else None
        if self.ctx:
            metrics = distributed.broadcast_object(metrics)
        if metric not in metrics:
            raise KgrecError(f"'metric': validation gave no {metric!r} (it gave {sorted(metrics)})")
        score = metrics[metric]
        row["valid"] = {k: metrics[k] for k in (*curve_keys, metric)
                        if k in metrics and isinstance(metrics[k], (int, float))}
        if log and self.rank == 0:
            loss = "-" if row["loss"] is None else f"{row['loss']:.4f}"  # None: the start, before training
            log(f"epoch {epoch:4d}  loss {loss}  valid {metric} {score:.4f}  ({row['seconds']:.2f} s)")
        return metrics

    def _fit_info(self, epoch_seconds: list[float], curve: list[dict], t_start: float, t_best: float,
                  extra_info: Callable[[dict], dict] | None) -> dict:
        """The run's ``fit_info``, also stored on ``est.fit_info``."""
        info = {
            "device": str(self.device),
            "best_epoch": self.best_epoch,
            "epochs_run": len(epoch_seconds),
            "resumed_from_epoch": self.first_epoch - 1 if self.resume is not None else None,
            "valid": self.best_metrics,
            "seconds_per_epoch_median": float(np.median(epoch_seconds)) if epoch_seconds else 0.0,
            "seconds_to_best": t_best,
            "fit_seconds": time.perf_counter() - t_start,
            "peak_rss_mb": peak_memory_mb(),
            "world_size": self.world,
            "backend": self.ctx.backend if self.ctx else None,
        }
        if extra_info is not None:
            info.update(extra_info(info))
        info["curve"] = curve
        if self.use_amp:
            info["peak_gpu_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        self.est.fit_info = info
        return info


def fit_pairwise(est, split: Split, log: Callable[[str], None] | None = None,
                 metric: str = "ndcg@10", checkpoint: Callable[[object, dict, dict], None] | None = None,
                 resume: dict | None = None, validate: Callable[[object], dict] | None = None,
                 validate_start: bool = False) -> dict:
    """Train a :class:`~kgrec.models.base.PairwiseEstimator` with sampled negatives.

    Every ``eval_every`` epochs the model is scored on ``split.valid`` (full ranking, train items
    masked); the best state by ``metric`` is kept and restored at the end, and training stops after
    ``patience`` evaluations without improvement. The test part is never looked at.

    Args:
        est: the estimator, already prepared and built.
        split: the split; only ``train`` and ``valid`` are used.
        log: called with one line per evaluation.
        metric: the validation metric to select on (default ``"ndcg@10"``).
        checkpoint: called as ``checkpoint(est, info, tensors)`` after each new best epoch, with
            ``info`` ``{"epoch": e, "valid": metrics, "trainer": meta}`` and ``tensors`` the
            trainer's tensors (see :func:`trainer_state`); the API saves both with the model.
        resume: ``{"state": module state dict, "epoch": e, "valid": metrics}`` of a checkpoint to
            continue from, plus ``"trainer"`` and ``"trainer_tensors"`` when it has them: its
            weights (and Adam's moments and the RNG states) are loaded and training goes on at
            epoch ``e + 1`` with its validation score as the best so far. On the CPU a resumed run
            then ends exactly where an uninterrupted one does; a checkpoint without trainer state
            starts Adam's moments afresh.
        validate: replaces the full-ranking evaluator: ``validate(est) -> metrics`` (a dict holding
            ``metric``), called with the frozen estimator on validated epochs, e.g. validation AUC of
            labelled pairs for the CTR protocol. It must read only validation data.
        validate_start: also validate the module as it is before the first epoch ("epoch 0"), and keep
            that state when no epoch beats it (a model that starts from trained parts, e.g. the
            hybrid's second stage, then never ends worse on validation than it started).

    Under ``torchrun`` (:mod:`kgrec.training.distributed`) every rank trains its shard of each epoch with
    DDP-averaged gradients, ``batch_size`` is per rank (global batch ``world_size * batch_size``),
    rank 0 validates and broadcasts the result, and only rank 0 logs and checkpoints.

    Returns:
        ``fit_info``: best epoch, best validation metrics, seconds per epoch, seconds to the best
        epoch, peak memory, ``world_size`` and ``backend`` (``None`` in one process), and ``curve``
        (per epoch: ``epoch``, mean ``loss``, ``seconds``, and ``valid`` metrics on validated
        epochs); also stored on ``est.fit_info``.
    """
    cfg = est.config
    ctx = distributed.context()
    rank, world = (ctx.rank, ctx.world) if ctx else (0, 1)
    device = ctx.device if ctx else pick_device(cfg.device)
    torch.manual_seed(cfg.seed + rank)  # training randomness differs per rank; rank 0 = one process
    np.random.seed(cfg.seed % (2**32))
    est.to(device)
    optimizer = torch.optim.Adam(est.param_groups(), lr=cfg.lr)
    sampler = (est.negative_sampler(split.train, seed=cfg.seed + rank) if hasattr(est, "negative_sampler")
               else NegativeSampler(split.train, est.meta["num_items"], seed=cfg.seed + rank))
    evaluator, has_valid = _validation(est, split, metric, validate, rank)
    users, items = split.train.user, split.train.item
    n = users.numel()
    gen = torch.Generator().manual_seed(cfg.seed)
    pair_weights = None
    if getattr(cfg, "half_life_days", None):
        # time decay: an epoch draws n positive pairs with probability proportional to their weight
        pair_weights = decay_weights(split.train.time, cfg.half_life_days, user=users,
                                     decay_from=getattr(cfg, "decay_from", "cut")).double()
    loop = EpochLoop(est, optimizer, gen, sampler, device, metric=metric, resume=resume, ctx=ctx)
    step = est.batch_loss
    if ctx:  # after the resumed weights are loaded: DDP broadcasts rank 0's at construction
        probe = torch.arange(min(n, 64))
        step = distributed.wrap(est, ctx, users[probe].to(device), items[probe].to(device))
    step_epoch = _pairwise_epoch(loop, step, sampler, gen, split, pair_weights, device, ctx)
    return loop.run(step_epoch, n, evaluator=evaluator, has_valid=has_valid, freeze=est.freeze,
                    unfreeze=est.unfreeze, log=log, checkpoint=checkpoint, validate_start=validate_start)


def _validation(est, split: Split, metric: str, validate: Callable[[object], dict] | None,
                rank: int) -> tuple[Callable | None, bool]:
    """:func:`fit_pairwise`'s validation: the evaluator rank 0 calls (``None`` elsewhere) and whether to validate."""
    # GAUC (the dearest metric) only when it is the one selected on
    evaluator = (Evaluator(split, ks=(10, 20), part="valid", gauc=metric == "gauc")
                 if len(split.valid) and rank == 0 else None)
    if validate is not None and rank == 0:
        evaluator = lambda score_fn: validate(est)  # noqa: E731 (the same call shape as Evaluator)
    return evaluator, len(split.valid) > 0 or validate is not None


def _pairwise_epoch(loop: EpochLoop, step: Callable, sampler: NegativeSampler, gen: torch.Generator,
                    split: Split, pair_weights: torch.Tensor | None, device: torch.device,
                    ctx) -> Callable[[int], tuple[float, int]]:
    """:func:`fit_pairwise`'s ``step_epoch``: shuffle (or draw by decay weight) this rank's training
    pairs, sample negatives per batch and take one optimizer step per batch.
    """
    cfg = loop.est.config
    users, items = split.train.user, split.train.item
    n = users.numel()

    def step_epoch(epoch: int) -> tuple[float, int]:
        perm = (torch.randperm(n, generator=gen) if pair_weights is None
                else torch.multinomial(pair_weights, n, replacement=True, generator=gen))
        if ctx:
            perm = distributed.shard(perm, loop.rank, loop.world)
        total = 0.0
        for start in range(0, perm.numel(), cfg.batch_size):
            b = perm[start:start + cfg.batch_size]
            u, p = users[b], items[b]
            neg = sampler.sample(u, cfg.num_neg)
            u, p, neg = u.to(device), p.to(device), neg.to(device)
            total += loop.backward_step(lambda: step(u, p, neg)) * b.numel()
        return total, perm.numel()

    return step_epoch
