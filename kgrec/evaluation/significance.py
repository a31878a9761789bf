"""Paired significance of a difference between two models on the same test users.

``docs/protocol.md``: one model is *ahead* of another only when (a) a per-user paired test on test
NDCG@10 (Wilcoxon signed-rank, each user's value first averaged over the seeds) gives p < 0.05 and
(b) the gap of the means is larger than both models' seed spreads. Otherwise the cell is a tie.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kgrec.errors import KgrecError

__all__ = ["paired_test", "per_user_means", "verdict", "ALPHA"]

ALPHA = 0.05


def per_user_means(runs: Sequence[dict], metric: str = "ndcg@10") -> dict[int, float]:
    """``{user id: mean over runs}`` of ``run["per_user"][metric]``, over users present in every run."""
    tables = []
    for r in runs:
        pu = r.get("per_user") or {}
        if metric not in pu:
            return {}
        tables.append(dict(zip(pu["users"], pu[metric])))
    common = set(tables[0]).intersection(*tables[1:]) if tables else set()
    return {u: float(np.mean([t[u] for t in tables])) for u in sorted(common)}


def paired_test(a: dict[int, float] | Sequence[float], b: dict[int, float] | Sequence[float]) -> dict:
    """Two-sided Wilcoxon signed-rank test of ``a - b`` on the users both hold.

    Args:
        a, b: per-user values, as ``{user: value}`` (paired on the common users) or as two
            equally long sequences (paired by position).

    Returns:
        ``{"test": "wilcoxon", "n": users paired, "nonzero": users whose values differ,
        "mean_diff": mean of a - b, "p": two-sided p-value}``; ``p`` is 1.0 when every
        difference is 0 (nothing to test).
    """
    from scipy.stats import wilcoxon

    if isinstance(a, dict) and isinstance(b, dict):
        users = sorted(set(a) & set(b))
        x = np.array([a[u] for u in users], dtype=np.float64)
        y = np.array([b[u] for u in users], dtype=np.float64)
    else:
        x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if x.shape != y.shape:
            raise KgrecError(f"paired_test: the two samples must pair up (got {x.shape} and {y.shape})")
    d = x - y
    nonzero = int(np.count_nonzero(d))
    out = {"test": "wilcoxon", "n": int(d.size), "nonzero": nonzero,
           "mean_diff": float(d.mean()) if d.size else float("nan")}
    out["p"] = float(wilcoxon(x, y).pvalue) if nonzero else 1.0
    return out


def verdict(gap: float, spread_a: float, spread_b: float, p: float | None) -> str:
    """``ahead``/``behind`` when the paired test gives ``p < ALPHA`` and the gap exceeds both seed
    spreads; ``tie`` otherwise (also when no paired test could be made: ``p`` is ``None``).
    """
    if p is None or p >= ALPHA or abs(gap) <= max(spread_a, spread_b):
        return "tie"
    return "ahead" if gap > 0 else "behind"
