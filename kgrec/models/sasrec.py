"""SASRec as a kgrec model: next-item prediction from each user's time-ordered training sequence.

The sequential peer for temporal splits (:class:`kgrec.nn.sasrec.SASRec`). ``prepare`` orders each
user's training interactions by time and keeps the last ``max_len`` as the context tensor ``seq``;
training makes every prefix of every training sequence predict its next item; scoring reads the
hidden state at the last position of the user's TRAINING sequence (the history rule: a model reads
the user's training interactions when scoring valid and test, never the valid/test items).
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.errors import KgrecError
from kgrec.evaluation.evaluator import Evaluator
from kgrec.models.base import Estimator, TrainConfig
from kgrec.nn.sasrec import SASRec
from kgrec.training.trainer import EpochLoop, pick_device

__all__ = ["SASRecConfig", "SASRecModel", "user_sequences", "training_windows"]

LOSSES = ("ce", "bce")


@dataclass
class SASRecConfig(TrainConfig):
    """SASRec (Kang & McAuley, 2018).

    Args:
        dim: hidden size (default ``64``).
        num_layers: attention blocks (default ``2``).
        num_heads: attention heads; must divide ``dim`` (default ``2``).
        dropout: dropout rate (default ``0.2``).
        max_len: longest sequence the model reads (default ``50``).
        loss: ``"ce"`` (softmax over the whole catalogue, RecBole's default) or ``"bce"`` (binary
            cross-entropy against ``num_neg`` uniformly sampled negatives per position, the paper's).
        batch_size: training sequences (windows of ``max_len`` next-item targets) per step
            (default ``256``).
        reg: Adam weight decay (default ``0``).
        temperature: divides the logits of the ``"ce"`` loss (default ``1``).
        lr, epochs, patience, eval_every, seed, device, progress: see :class:`TrainConfig`.
        half_life_days: not supported (must stay ``None``): the sequence order already weights recency.
    """

    dim: int = 64
    num_layers: int = 2
    num_heads: int = 2
    dropout: float = 0.2
    max_len: int = 50
    loss: str = "ce"
    batch_size: int = 256
    reg: float = 0.0

    def __post_init__(self) -> None:
        def positive_int(name: str, minimum: int = 1) -> None:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
                raise KgrecError(f"'{name}' must be an integer >= {minimum} (got {v!r})")

        for name in ("dim", "num_heads", "max_len", "batch_size", "epochs", "patience", "eval_every", "num_neg"):
            positive_int(name)
        positive_int("num_layers", 0)
        if self.dim % self.num_heads:
            raise KgrecError(f"'num_heads' must divide 'dim' (num_heads={self.num_heads}, dim={self.dim})")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise KgrecError(f"'dropout' must be in [0, 1) (got {self.dropout!r})")
        if self.loss not in LOSSES:
            raise KgrecError(f"'loss' must be one of {', '.join(LOSSES)} for sasrec (got {self.loss!r})")
        if not float(self.lr) > 0:
            raise KgrecError(f"'lr' must be positive (got {self.lr!r})")
        if float(self.reg) < 0:
            raise KgrecError(f"'reg' must be >= 0 (got {self.reg!r})")
        if not float(self.temperature) > 0:
            raise KgrecError(f"'temperature' must be positive (got {self.temperature!r})")
        if self.half_life_days:
            raise KgrecError("'half_life_days' is not supported by sasrec (leave it None)")


def user_sequences(train: Interactions, num_users: int) -> tuple[Tensor, Tensor]:
    """Each user's training items in time order, as a CSR.

    Within a user, rows are ordered by time; ties keep the original row order (stable). When some
    training row has no time, every user keeps the row order.

    Shapes: -> indptr ``[U + 1]`` long, items ``[N]`` long (item ids, not shifted).
    """
    users = train.user.cpu().numpy()
    if train.has_time:
        order = np.lexsort((train.time.cpu().numpy(), users))  # lexsort is stable
    else:
        order = np.argsort(users, kind="stable")
    counts = np.bincount(users, minlength=num_users)
    indptr = torch.as_tensor(np.r_[0, np.cumsum(counts)], dtype=torch.long)
    return indptr, train.item.cpu()[torch.as_tensor(order, dtype=torch.long)].long()


def last_items(indptr: Tensor, items: Tensor, max_len: int) -> Tensor:
    """The last ``max_len`` items of each user, shifted by one and left-padded with ``0``.

    Shapes: indptr ``[U + 1]``, items ``[N]`` -> ``[U, max_len]`` long.
    """
    U = indptr.numel() - 1
    lengths = (indptr[1:] - indptr[:-1]).clamp(max=max_len)
    out = torch.zeros(U, max_len, dtype=torch.long)
    user = torch.repeat_interleave(torch.arange(U), lengths)
    # k-th of the kept items of a user (0 = oldest kept)
    k = torch.arange(int(lengths.sum())) - torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    src = indptr[1:][user] - lengths[user] + k
    out[user, max_len - lengths[user] + k] = items[src] + 1
    return out


def training_windows(indptr: Tensor, items: Tensor, max_len: int) -> tuple[Tensor, Tensor]:
    """Next-item training windows covering every prefix of every training sequence.

    A user's sequence ``s_0 .. s_{n-1}`` has targets ``s_1 .. s_{n-1}``; they are cut, from the most
    recent backwards, into windows of ``max_len`` targets; a window's input is the ``max_len`` items
    before its targets (left-padded). A user with ``n <= max_len + 1`` items gives one window: the
    standard SASRec sample. Each target is predicted once per epoch, from the items before it in its
    window.

    Shapes: -> inputs ``[W, max_len]``, targets ``[W, max_len]`` long tokens (item + 1, ``0`` = none).
    """
    L = max_len
    lengths = (indptr[1:] - indptr[:-1]).numpy()
    starts = indptr[:-1].numpy()
    tok = np.r_[0, items.numpy() + 1]  # index 0 -> padding token
    rows_in, rows_tg = [], []
    for s, n in zip(starts, lengths):
        if n < 2:
            continue
        for end in range(n - 1, 0, -L):  # end = index of the window's last target
            t_idx = np.arange(end - L + 1, end + 1)  # target positions (may start below 1)
            i_idx = t_idx - 1
            rows_tg.append(np.where(t_idx >= 1, s + t_idx + 1, 0))
            rows_in.append(np.where(i_idx >= 0, s + i_idx + 1, 0))
    if not rows_in:
        empty = torch.zeros(0, L, dtype=torch.long)
        return empty, empty
    inputs = torch.as_tensor(tok[np.stack(rows_in)], dtype=torch.long)
    targets = torch.as_tensor(tok[np.stack(rows_tg)], dtype=torch.long)
    return inputs, targets


class SASRecModel(Estimator):
    """SASRec trained on next-item prediction with validation early stopping.

    Context: ``seq`` ``[U, max_len]`` (the last ``max_len`` training items of each user, shifted by
    one, left-padded) plus the base class' history CSR. Scores: ``[B, I]`` dot products of the hidden
    state at the last position of ``seq`` with the item embedding table.
    """

    name = "sasrec"
    Config = SASRecConfig
    trainable = True

    def prepare(self, kg: KnowledgeGraph, split: Split) -> None:
        super().prepare(kg, split)
        indptr, items = user_sequences(split.train, kg.num_users)
        self.context["seq"] = last_items(indptr, items, self.config.max_len)
        self._windows = training_windows(indptr, items, self.config.max_len)

    def build(self) -> None:
        c = self.config
        self.module = SASRec(self.meta["num_items"], dim=c.dim, num_layers=c.num_layers, num_heads=c.num_heads,
                             dropout=c.dropout, max_len=c.max_len)

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        was_training = self.module.training
        self.module.eval()
        seq = self.context["seq"][users.to(self.device)]
        h = self.module(seq)[:, -1]  # [B, d]
        if was_training:
            self.module.train()
        return h.float() @ self.module.item_vectors().float().t()

    # ---------------------------------------------------------------- training
    def _loss(self, inputs: Tensor, targets: Tensor, rng: np.random.Generator) -> Tensor:
        """Mean next-item loss over the real targets of a batch of windows.

        Shapes: inputs, targets ``[B, L]`` tokens -> scalar.
        """
        h = self.module(inputs)  # [B, L, d]
        real = targets > 0
        h, tgt = h[real], targets[real] - 1  # [n, d], [n] item ids
        items = self.module.item_vectors()
        if self.config.loss == "ce":
            logits = (h @ items.t()).float() / self.config.temperature
            return F.cross_entropy(logits, tgt)
        c = self.config
        neg = torch.as_tensor(rng.integers(0, self.meta["num_items"], size=(tgt.numel(), c.num_neg)),
                              device=tgt.device)
        s_pos = (h * items[tgt]).sum(-1).float()  # [n]
        s_neg = (h.unsqueeze(1) * items[neg]).sum(-1).float()  # [n, num_neg]
        keep = (neg != tgt.unsqueeze(1)).float()  # a negative that is the target itself is dropped
        loss_neg = (F.softplus(s_neg) * keep).sum(-1) / keep.sum(-1).clamp(min=1)
        return (F.softplus(-s_pos) + loss_neg).mean()

    def fit(self, kg: KnowledgeGraph, split: Split, log: Callable[[str], None] | None = None,
            metric: str = "ndcg@10", checkpoint: Callable[[object, dict, dict], None] | None = None,
            resume: dict | None = None, validate: Callable[[object], dict] | None = None) -> "SASRecModel":
        """Prepare, build from ``seed`` and train; the keywords are those of
        :func:`kgrec.training.trainer.fit_pairwise` (``validate(est) -> {metric: ...}`` replaces the validation
        NDCG@10 of full ranking; ``checkpoint``/``resume`` as there). Only ``split.train`` and
        ``split.valid`` are read.
        """
        cfg = self.config
        self.prepare(kg, split)
        torch.manual_seed(cfg.seed)
        self.build()
        device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.to(device)
        module = self.module
        optimizer = torch.optim.Adam(module.parameters(), lr=cfg.lr, weight_decay=cfg.reg)
        gen = torch.Generator().manual_seed(cfg.seed)
        sampler = types.SimpleNamespace(rng=np.random.default_rng(cfg.seed))  # BCE negatives
        inputs, targets = (t.to(device) for t in self._windows)
        n = inputs.shape[0]
        if n == 0:
            raise KgrecError("sasrec needs at least one user with two training interactions")
        if validate is not None:
            evaluator = lambda score_fn: validate(self)  # noqa: E731
        elif len(split.valid):
            evaluator = Evaluator(split, ks=(10,), part="valid", gauc=False)
        else:
            evaluator = None
        loop = EpochLoop(self, optimizer, gen, sampler, device, metric=metric, resume=resume)

        def step_epoch(epoch: int) -> tuple[float, int]:
            perm = torch.randperm(n, generator=gen)
            total = 0.0
            for start in range(0, n, cfg.batch_size):
                b = perm[start:start + cfg.batch_size].to(device)
                x, y = inputs[b], targets[b]
                total += loop.backward_step(lambda: self._loss(x, y, sampler.rng)) * b.numel()
            return total, n

        loop.run(step_epoch, n, evaluator=evaluator, freeze=module.eval, log=log, checkpoint=checkpoint,
                 curve_keys=("ndcg@10", "recall@10", "hit@10", "auc"), loss_hint="lower 'lr'",
                 extra_info=lambda info: {"hit_epoch_cap": info["best_epoch"] >= cfg.epochs,
                                          "training_windows": n})
        return self
