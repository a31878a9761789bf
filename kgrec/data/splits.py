"""Train / valid / test splits of PROTOCOL.md: random, temporal, global-time, cold-item."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.errors import SplitError

__all__ = ["Split", "split", "split_from_pairs", "STRATEGIES"]

STRATEGIES = ("random", "temporal", "global-time", "cold-item")


@dataclass
class Split:
    """Three disjoint parts of a graph's interactions, and what the test ranks over.

    Attributes:
        strategy, seed, ratios: how the split was made (part of a result's name).
        num_users, num_items: sizes of the id spaces (those of the graph).
        train, valid, test: the interactions of each part.
        test_candidates: ``[C]`` item ids the test ranks over (``cold-item``: the cold items);
            ``None`` means the whole catalogue.
        cold_users, cold_items: ids first seen after the training cut (``global-time``) or held
            out (``cold-item``); reported in their own rows, never dropped.
    """

    strategy: str
    seed: int
    ratios: tuple[float, float, float]
    num_users: int
    num_items: int
    train: Interactions
    valid: Interactions
    test: Interactions
    test_candidates: torch.Tensor | None = None
    cold_users: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    cold_items: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))

    @property
    def name(self) -> str:
        return f"{self.strategy}-seed{self.seed}"

    def stats(self) -> dict:
        """Sizes of the split: interactions and distinct users of each part, cold users / items."""
        return {
            "strategy": self.strategy, "seed": self.seed, "ratios": list(self.ratios),
            "train": len(self.train), "valid": len(self.valid), "test": len(self.test),
            "train_users": _n_users(self.train), "valid_users": _n_users(self.valid),
            "test_users": _n_users(self.test),
            "cold_users": int(self.cold_users.numel()), "cold_items": int(self.cold_items.numel()),
        }

    def state(self) -> dict[str, torch.Tensor]:
        out = {**self.train.state("train"), **self.valid.state("valid"), **self.test.state("test"),
               "cold_users": self.cold_users, "cold_items": self.cold_items}
        if self.test_candidates is not None:
            out["test_candidates"] = self.test_candidates
        return out

    def meta(self) -> dict:
        return {"strategy": self.strategy, "seed": self.seed, "ratios": list(self.ratios),
                "num_users": self.num_users, "num_items": self.num_items}

    @classmethod
    def from_state(cls, meta: dict, t: dict[str, torch.Tensor]) -> "Split":
        return cls(meta["strategy"], meta["seed"], tuple(meta["ratios"]), meta["num_users"],
                   meta["num_items"], Interactions.from_state(t, "train"),
                   Interactions.from_state(t, "valid"), Interactions.from_state(t, "test"),
                   t.get("test_candidates"), t["cold_users"], t["cold_items"])


def split(kg: KnowledgeGraph, strategy: str = "random", ratios=(0.8, 0.1, 0.1), seed: int = 2020) -> Split:
    """Split ``kg.interactions`` following PROTOCOL.md.

    Args:
        kg: the graph.
        strategy: ``"random"`` (per user, shuffled), ``"temporal"`` (per user, by time),
            ``"global-time"`` (one cut on the global timeline) or ``"cold-item"`` (a seeded
            ``ratios[2]`` share of items loses every training/validation interaction).
        ratios: train / valid / test shares, summing to 1.
        seed: seed of every random choice.

    Per-user sizes (``random``, ``temporal``; see :func:`_cut`): a user with ``m`` interactions
    gets the RecBole rounding ``train = floor(r0 m)``, ``valid = floor((r0 + r1) m) - train``, the
    rest test, and then a minimum: every user with ``m >= 3`` has at least one validation and one
    test interaction (taken from train, which keeps at least one), ``m = 2`` gives 1 train + 1 test
    and ``m = 1`` train only. A part whose share is 0 gets none. With 80/10/10 every user with
    ``3 <= m <= 9`` gets ``m-2 / 1 / 1`` (the rounding alone gave ``m = 3, 4, 5`` no validation
    interaction: ``2/0/1``, ``3/0/1``, ``4/0/1``), and every user with ``m >= 10`` keeps the
    RecBole counts exactly, so that model selection sees small users and large ones do not move.

    ``cold-item``: each user's warm interactions are shuffled and ``round(r1 / (r0 + r1) * m)`` of
    them go to validation, at least one when the user has ``m >= 3`` warm interactions and
    ``r1 > 0`` (with 80/10/10 this adds a validation interaction to users with 3 or 4 warm
    interactions, who had none); a user with 1 or 2 keeps them all in train.
    """
    ratios = _checked_ratios(kg, strategy, ratios)
    inter = kg.interactions
    rng = np.random.default_rng(seed)
    part = np.zeros(len(inter), dtype=np.int8)  # 0 train, 1 valid, 2 test
    cold_users = cold_items = torch.empty(0, dtype=torch.long)
    candidates = None
    if strategy in ("random", "temporal"):
        _per_user_parts(inter, strategy, ratios, rng, part)
    elif strategy == "global-time":
        cold_users, cold_items = _global_time_parts(inter, ratios, part)
    else:  # cold-item
        cold_items = _cold_item_parts(inter, ratios, rng, part)
        candidates = cold_items.clone()

    p = torch.as_tensor(part)
    return Split(strategy, seed, ratios, kg.num_users, kg.num_items,
                 inter.select(p == 0), inter.select(p == 1), inter.select(p == 2),
                 candidates, cold_users.long(), cold_items.long())


def _checked_ratios(kg: KnowledgeGraph, strategy: str, ratios) -> tuple[float, float, float]:
    """``ratios`` as three floats, once the strategy, the ratios and the interactions are valid for a split."""
    if strategy not in STRATEGIES:
        raise SplitError(f"'strategy' must be one of {', '.join(STRATEGIES)} (got {strategy!r})")
    ratios = tuple(float(r) for r in ratios)
    if (len(ratios) != 3 or any(r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6)
            or ratios[0] <= 0):
        raise SplitError(f"'ratios' must be three non-negative shares summing to 1 with train > 0 (got {ratios})")
    inter = kg.interactions
    if len(inter) == 0:
        raise SplitError("the graph has no interactions to split")
    if strategy in ("temporal", "global-time") and not inter.has_time:
        missing = int(torch.isnan(inter.time).sum())
        raise SplitError(f"strategy {strategy!r} needs a time on every interaction; "
                         f"{missing} of {len(inter)} have none")
    return ratios


def _per_user_parts(inter: Interactions, strategy: str, ratios: tuple[float, float, float],
                    rng: np.random.Generator, part: np.ndarray) -> None:
    """``random`` / ``temporal``: mark each user's valid (1) and test (2) rows in ``part`` (sizes by :func:`_cut`)."""
    n = len(inter)
    users = inter.user.numpy()
    if strategy == "random":
        order = rng.permutation(n)
        order = order[np.argsort(users[order], kind="stable")]
    else:
        # ties in time keep a seeded random order so that equal timestamps are not cut by id
        perm = rng.permutation(n)
        t = inter.time.numpy()[perm]
        order = perm[np.lexsort((t, users[perm]))]
    starts = np.flatnonzero(np.r_[True, np.diff(users[order]) != 0])
    ends = np.r_[starts[1:], n]
    for s, e in zip(starts, ends):
        m = e - s
        n_train, n_valid = _cut(m, ratios)
        part[order[s + n_train:s + n_train + n_valid]] = 1
        part[order[s + n_train + n_valid:e]] = 2


def _global_time_parts(inter: Interactions, ratios: tuple[float, float, float],
                       part: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``global-time``: mark ``part`` by the time quantiles; returns the cold ``(users, items)``."""
    t = inter.time.numpy()
    q1, q2 = np.quantile(t, ratios[0]), np.quantile(t, ratios[0] + ratios[1])
    part[t >= q1] = 1
    part[t >= q2] = 2
    seen_u = np.unique(inter.user.numpy()[part == 0])
    seen_i = np.unique(inter.item.numpy()[part == 0])
    cold_users = torch.as_tensor(np.setdiff1d(np.unique(inter.user.numpy()[part > 0]), seen_u))
    cold_items = torch.as_tensor(np.setdiff1d(np.unique(inter.item.numpy()[part > 0]), seen_i))
    return cold_users, cold_items


def _cold_item_parts(inter: Interactions, ratios: tuple[float, float, float], rng: np.random.Generator,
                     part: np.ndarray) -> torch.Tensor:
    """``cold-item``: mark the cold items' rows test (2) and a share of each user's warm rows valid
    (1) in ``part``; returns the cold items.
    """
    items = np.unique(inter.item.numpy())
    n_cold = max(1, int(round(ratios[2] * len(items))))
    cold = np.sort(rng.choice(items, size=n_cold, replace=False))
    is_cold = np.isin(inter.item.numpy(), cold)
    part[is_cold] = 2
    # the warm interactions are split per user at random into train / valid
    warm = np.flatnonzero(~is_cold)
    share = ratios[1] / (ratios[0] + ratios[1])
    order = warm[rng.permutation(len(warm))]
    order = order[np.argsort(inter.user.numpy()[order], kind="stable")]
    u_sorted = inter.user.numpy()[order]
    starts = np.flatnonzero(np.r_[True, np.diff(u_sorted) != 0])
    ends = np.r_[starts[1:], len(order)]
    for s, e in zip(starts, ends):
        m = e - s
        n_valid = int(round(share * m)) if m > 1 else 0
        if m >= 3 and share > 0:
            n_valid = min(max(n_valid, 1), m - 1)
        part[order[e - n_valid:e]] = 1
    return torch.as_tensor(cold)


def _cut(m: int, ratios: tuple[float, float, float]) -> tuple[int, int]:
    """Per-user cut sizes: the train and valid counts of a user's ``m`` rows (the rest is test).

    RecBole-compatible rounding, ``train = floor(r0 m)`` and ``valid = floor((r0 + r1) m) - train``
    (train at least 1), then a minimum so that model selection and the test see small users:

    * ``m >= 3``: at least one validation row (when ``r1 > 0``) and one test row (when ``r2 > 0``),
      taken from train, which keeps at least one row;
    * ``m = 2``: 1 train + 1 test (1 train + 1 valid when ``r2 = 0``; 2 train when ``r1 = r2 = 0``);
    * ``m = 1``: train only.

    Users whose rounding already gives non-empty parts keep it exactly: with ``(0.8, 0.1, 0.1)``
    every user with ``m >= 10`` has the RecBole counts; ``m = 3..9`` give ``m-2 / 1 / 1`` (only
    ``m = 3, 4, 5`` change: the rounding gave them no validation row).
    """
    if m <= 0:
        return 0, 0
    if m == 1:
        return 1, 0
    if m == 2:
        if ratios[2] > 0:
            return 1, 0
        return (1, 1) if ratios[1] > 0 else (2, 0)
    n_train = int(math.floor(m * ratios[0]))
    n_valid = int(math.floor(m * (ratios[0] + ratios[1]))) - n_train
    if n_train == 0:
        n_train = 1
        n_valid = max(0, min(n_valid, m - 1))
    n_test = m - n_train - n_valid
    if ratios[1] > 0 and n_valid == 0:
        n_valid = 1
    if ratios[2] > 0 and n_test == 0:
        n_test = 1
    # the rows added to valid / test come out of train, then out of the larger of valid / test
    excess = n_train + n_valid + n_test - m
    take = min(excess, n_train - 1)
    n_train -= take
    excess -= take
    while excess > 0:
        if n_valid >= n_test and n_valid > 1:
            n_valid -= 1
        else:
            n_test -= 1
        excess -= 1
    return n_train, n_valid


def _n_users(part: Interactions) -> int:
    return int(torch.unique(part.user).numel()) if len(part) else 0


def split_from_pairs(kg: KnowledgeGraph, parts: dict[str, list[tuple[str, str]]], name: str = "given",
                     seed: int = 0) -> Split:
    """A split from given (user IRI, item IRI) pairs per part, e.g. a peer's published split.

    Args:
        kg: the graph; every pair must be one of its interactions (weights and times are kept).
        parts: ``{"train": [...], "valid": [...], "test": [...]}``.
        name: the strategy name recorded in the split.
    """
    inter = kg.interactions
    key = inter.user.numpy() * kg.num_items + inter.item.numpy()
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    picked = {}
    for part in ("train", "valid", "test"):
        pairs = parts.get(part, [])
        missing = [p for p in pairs if p[0] not in kg.users or p[1] not in kg.items]
        if missing:
            raise SplitError(f"part {part!r}: {len(missing)} pair(s) name unknown users/items, "
                             f"first {missing[0]}")
        k = np.array([kg.users.id(u) * kg.num_items + kg.items.id(i) for u, i in pairs], dtype=np.int64)
        pos = np.searchsorted(sorted_key, k)
        ok = (pos < len(sorted_key)) & (sorted_key[np.minimum(pos, len(sorted_key) - 1)] == k)
        if not ok.all():
            u, i = pairs[int(np.flatnonzero(~ok)[0])]
            raise SplitError(f"part {part!r}: pair ({u}, {i}) is not an interaction of the graph "
                             f"({int((~ok).sum())} such pairs)")
        picked[part] = inter.select(torch.as_tensor(order[pos]))
    total = sum(len(picked[p]) for p in picked) or 1
    ratios = tuple(len(picked[p]) / total for p in ("train", "valid", "test"))
    return Split(name, seed, ratios, kg.num_users, kg.num_items, picked["train"], picked["valid"], picked["test"])
