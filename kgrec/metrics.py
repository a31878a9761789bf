"""Top-k ranking metrics, vectorised over a batch of users (PROTOCOL.md "Ranking and metrics").

Each accuracy metric takes a boolean hit matrix ``hits [B, K]`` (``hits[u, j]``: the item at rank
``j + 1`` of user ``u`` is relevant, see :func:`hit_matrix`) and returns one value per user, so the
caller can average, take a std or group users. Rank positions beyond ``hits.size(1)`` (a
recommendation list shorter than ``k``, e.g. a catalogue smaller than ``k``) count as misses. A user
with no relevant item scores 0 on every metric; evaluators leave such users out.

Catalogue metrics (:func:`coverage`, :func:`average_popularity`) take the top-k index matrix
itself; an index ``< 0`` is padding (no recommendation at that rank) and is ignored.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

from kgrec.errors import EvaluationError

__all__ = [
    "EvaluationError",
    "check_k",
    "hit_matrix",
    "recall",
    "precision",
    "hit",
    "mrr",
    "ndcg",
    "coverage",
    "average_popularity",
]


def check_k(k, name: str = "k") -> int:
    """``k`` as an ``int``; raises :class:`EvaluationError` unless it is a positive integer."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k <= 0:
        raise EvaluationError(f"'{name}' must be a positive integer (got {k!r})")
    return int(k)


def _cut(hits: Tensor, k: int | None) -> tuple[Tensor, int]:
    if hits.dim() != 2:
        raise EvaluationError(f"'hits' must have shape [B, K] (got {list(hits.shape)})")
    k = hits.size(1) if k is None else check_k(k)
    if k == 0:  # hits.size(1) == 0 and no k given
        raise EvaluationError("'k' must be a positive integer (got 0)")
    return hits[:, :k].bool(), k


def _check_n_relevant(n_relevant: Tensor, hits: Tensor) -> Tensor:
    if n_relevant.dim() != 1 or n_relevant.numel() != hits.size(0):
        raise EvaluationError(f"'n_relevant' must have shape [{hits.size(0)}] (got {list(n_relevant.shape)})")
    return n_relevant.to(hits.device)


def hit_matrix(topk_index: Tensor, truth: Tensor) -> Tensor:
    """Which recommended items are relevant.

    Args:
        topk_index: recommended item ids per user, best first; ``-1`` marks an empty rank.
        truth: ``truth[u, i]`` is ``True`` when item ``i`` is relevant to row ``u``.

    Shapes:
        topk_index: ``[B, K]`` long; truth: ``[B, n_items]`` bool. Returns ``[B, K]`` bool.
    """
    if topk_index.dim() != 2 or truth.dim() != 2 or topk_index.size(0) != truth.size(0):
        raise EvaluationError(f"'topk_index' [B, K] and 'truth' [B, n_items] must share B "
                              f"(got {list(topk_index.shape)} and {list(truth.shape)})")
    valid = topk_index >= 0
    return truth.bool().gather(1, topk_index.clamp(min=0)) & valid


def recall(hits: Tensor, n_relevant: Tensor, k: int | None = None) -> Tensor:
    """Recall@k = hits in the top k / number of relevant items.

    Shapes:
        hits: ``[B, K]`` bool; n_relevant: ``[B]``. Returns ``[B]`` float.
    """
    hits, k = _cut(hits, k)
    n = _check_n_relevant(n_relevant, hits)
    return hits.sum(1) / n.clamp(min=1).to(torch.get_default_dtype())


def precision(hits: Tensor, k: int | None = None) -> Tensor:
    """Precision@k = hits in the top k / k.

    Shapes:
        hits: ``[B, K]`` bool. Returns ``[B]`` float.
    """
    hits, k = _cut(hits, k)
    return hits.sum(1).to(torch.get_default_dtype()) / k


def hit(hits: Tensor, k: int | None = None) -> Tensor:
    """Hit@k = 1 if any of the top k is relevant, else 0.

    Shapes:
        hits: ``[B, K]`` bool. Returns ``[B]`` float.
    """
    hits, k = _cut(hits, k)
    return hits.any(1).to(torch.get_default_dtype())


def mrr(hits: Tensor, k: int | None = None) -> Tensor:
    """MRR@k = 1 / rank of the first relevant item in the top k, 0 if there is none.

    Shapes:
        hits: ``[B, K]`` bool. Returns ``[B]`` float.
    """
    hits, k = _cut(hits, k)
    rank = torch.arange(1, hits.size(1) + 1, device=hits.device, dtype=torch.get_default_dtype())
    return (hits / rank).amax(1) if hits.size(1) else hits.new_zeros(hits.size(0), dtype=rank.dtype)


def ndcg(hits: Tensor, n_relevant: Tensor, k: int | None = None) -> Tensor:
    """NDCG@k with binary gains and a log2 discount.

    ``DCG = sum_j hits[j] / log2(j + 2)`` over ranks ``j < k``; the ideal DCG puts a relevant item
    at each of the first ``min(n_relevant, k)`` ranks (not over the retrieved list, which would
    inflate the metric, cf. KGIN #18).

    Shapes:
        hits: ``[B, K]`` bool; n_relevant: ``[B]``. Returns ``[B]`` float.
    """
    hits, k = _cut(hits, k)
    n = _check_n_relevant(n_relevant, hits)
    dtype = torch.get_default_dtype()
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, device=hits.device, dtype=dtype))  # [k]
    dcg = (hits.to(dtype) * discount[: hits.size(1)]).sum(1)
    ideal = torch.cat([discount.new_zeros(1), torch.cumsum(discount, 0)])  # ideal[m]: m hits on top
    idcg = ideal[n.long().clamp(min=0, max=k)]
    return torch.where(idcg > 0, dcg / idcg.clamp(min=1e-12), torch.zeros_like(dcg))


def coverage(topk_index: Tensor, n_items: int, k: int | None = None) -> float:
    """Catalogue coverage@k: share of the ``n_items`` items that appear in some user's top k.

    Shapes:
        topk_index: ``[N, K]`` long, ``-1`` = padding.
    """
    n_items = check_k(n_items, "n_items")
    if topk_index.dim() != 2:
        raise EvaluationError(f"'topk_index' must have shape [N, K] (got {list(topk_index.shape)})")
    k = topk_index.size(1) if k is None else check_k(k)
    idx = topk_index[:, :k]
    idx = idx[idx >= 0]
    if idx.numel() and int(idx.max()) >= n_items:
        raise EvaluationError(f"'topk_index' holds item {int(idx.max())}, beyond 'n_items' = {n_items}")
    return torch.unique(idx).numel() / n_items


def average_popularity(topk_index: Tensor, item_popularity: Tensor, k: int | None = None) -> Tensor:
    """Average recommendation popularity (ARP, Abdollahpouri et al. 2019): the mean popularity of
    the items in each user's top k (padding excluded; 0 for an empty list).

    Args:
        topk_index: recommended item ids, ``-1`` = padding.
        item_popularity: popularity of each item (typically its training interaction count).
        k: the cut-off (default ``None``: the width of ``topk_index``).

    Shapes:
        topk_index: ``[B, K]`` long; item_popularity: ``[n_items]``. Returns ``[B]`` float.
    """
    if topk_index.dim() != 2:
        raise EvaluationError(f"'topk_index' must have shape [B, K] (got {list(topk_index.shape)})")
    k = topk_index.size(1) if k is None else check_k(k)
    idx = topk_index[:, :k]
    valid = idx >= 0
    if valid.any() and int(idx.max()) >= item_popularity.numel():
        raise EvaluationError(f"'topk_index' holds item {int(idx.max())}, beyond the "
                              f"{item_popularity.numel()} entries of 'item_popularity'")
    dtype = torch.get_default_dtype()
    pop = item_popularity.to(device=idx.device, dtype=dtype)[idx.clamp(min=0)] * valid
    return pop.sum(1) / valid.sum(1).clamp(min=1).to(dtype)
