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
        return {
            "strategy": self.strategy, "seed": self.seed, "ratios": list(self.ratios),
            "train": len(self.train), "valid": len(self.valid), "test": len(self.test),
            "test_users": int(torch.unique(self.test.user).numel()) if len(self.test) else 0,
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
    """
    if strategy not in STRATEGIES:
        raise SplitError(f"'strategy' must be one of {', '.join(STRATEGIES)} (got {strategy!r})")
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) != 3 or any(r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6) or ratios[0] <= 0:
        raise SplitError(f"'ratios' must be three non-negative shares summing to 1 with train > 0 (got {ratios})")
    inter = kg.interactions
    if len(inter) == 0:
        raise SplitError("the graph has no interactions to split")
    if strategy in ("temporal", "global-time") and not inter.has_time:
        missing = int(torch.isnan(inter.time).sum())
        raise SplitError(f"strategy {strategy!r} needs a time on every interaction; {missing} of {len(inter)} have none")
    rng = np.random.default_rng(seed)
    n = len(inter)
    part = np.zeros(n, dtype=np.int8)  # 0 train, 1 valid, 2 test
    cold_users = cold_items = torch.empty(0, dtype=torch.long)
    candidates = None

    if strategy in ("random", "temporal"):
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
    elif strategy == "global-time":
        t = inter.time.numpy()
        q1, q2 = np.quantile(t, ratios[0]), np.quantile(t, ratios[0] + ratios[1])
        part[t >= q1] = 1
        part[t >= q2] = 2
        seen_u = np.unique(inter.user.numpy()[part == 0])
        seen_i = np.unique(inter.item.numpy()[part == 0])
        cold_users = torch.as_tensor(np.setdiff1d(np.unique(inter.user.numpy()[part > 0]), seen_u))
        cold_items = torch.as_tensor(np.setdiff1d(np.unique(inter.item.numpy()[part > 0]), seen_i))
    else:  # cold-item
        items = np.unique(inter.item.numpy())
        n_cold = max(1, int(round(ratios[2] * len(items))))
        cold = np.sort(rng.choice(items, size=n_cold, replace=False))
        is_cold = np.isin(inter.item.numpy(), cold)
        part[is_cold] = 2
        # the warm interactions are split per user at random into train / valid
        warm = np.flatnonzero(~is_cold)
        share = ratios[1] / (ratios[0] + ratios[1])
        users = inter.user.numpy()[warm]
        order = warm[rng.permutation(len(warm))]
        order = order[np.argsort(inter.user.numpy()[order], kind="stable")]
        u_sorted = inter.user.numpy()[order]
        starts = np.flatnonzero(np.r_[True, np.diff(u_sorted) != 0])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts, ends):
            n_valid = int(round(share * (e - s))) if e - s > 1 else 0
            part[order[e - n_valid:e]] = 1
        del users
        cold_items = torch.as_tensor(cold)
        candidates = cold_items.clone()

    p = torch.as_tensor(part)
    return Split(strategy, seed, ratios, kg.num_users, kg.num_items,
                 inter.select(p == 0), inter.select(p == 1), inter.select(p == 2),
                 candidates, cold_users.long(), cold_items.long())


def _cut(m: int, ratios: tuple[float, float, float]) -> tuple[int, int]:
    """Per-user cut sizes (RecBole-compatible rounding): train and valid counts of ``m`` rows."""
    n_train = int(math.floor(m * ratios[0]))
    n_valid = int(math.floor(m * (ratios[0] + ratios[1]))) - n_train
    if m >= 1 and n_train == 0:
        n_train = 1
        n_valid = max(0, min(n_valid, m - 1))
    return n_train, n_valid


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
