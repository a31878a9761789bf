"""Top-k ranking metrics, vectorised over a batch of users (PROTOCOL.md "Ranking and metrics").

Each accuracy metric takes a boolean hit matrix ``hits [B, K]`` (``hits[u, j]``: the item at rank
``j + 1`` of user ``u`` is relevant, see :func:`hit_matrix`) and returns one value per user, so the
caller can average, take a std or group users. Rank positions beyond ``hits.size(1)`` (a
recommendation list shorter than ``k``, e.g. a catalogue smaller than ``k``) count as misses. A user
with no relevant item scores 0 on every metric; evaluators leave such users out.

Catalogue and beyond-accuracy metrics (:func:`coverage`, :func:`average_popularity`,
:func:`gini_index`, :func:`shannon_entropy`, :func:`tail_percentage`) take the top-k index matrix
itself; an index ``< 0`` is padding (no recommendation at that rank) and is ignored.

:func:`average_precision`, :func:`gini_index`, :func:`shannon_entropy`, :func:`tail_percentage`
(with :func:`tail_items`) and :func:`gauc` follow RecBole's definitions
(``recbole/evaluator/metrics.py``: ``MAP``, ``GiniIndex``, ``ShannonEntropy``, ``TailPercentage``,
``GAUC``), so that their numbers compare with RecBole's tables.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from kgrec.checks import check_int
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
    "average_precision",
    "gini_index",
    "shannon_entropy",
    "gini_from_counts",
    "entropy_from_counts",
    "tail_items",
    "tail_percentage",
    "auc_from_rank_sum",
    "gauc",
]


def check_k(k, name: str = "k") -> int:
    """``k`` as an ``int``; raises :class:`EvaluationError` unless it is a positive integer."""
    return check_int(k, name, 1, EvaluationError)


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
    counts = _item_counts(topk_index, n_items, k)
    return int((counts > 0).sum()) / counts.numel()


def _top_k_of(topk_index: Tensor, table: Tensor, table_name: str, k: int | None) -> tuple[Tensor, Tensor]:
    """The first ``k`` columns of ``topk_index`` and their non-padding mask, after checking the
    shape and that every item id indexes ``table`` (a per-item tensor, named ``table_name`` in errors).

    Shapes: topk_index ``[B, K]`` long, ``-1`` = padding -> ``([B, k] long, [B, k] bool)``.
    """
    if topk_index.dim() != 2:
        raise EvaluationError(f"'topk_index' must have shape [B, K] (got {list(topk_index.shape)})")
    k = topk_index.size(1) if k is None else check_k(k)
    idx = topk_index[:, :k]
    valid = idx >= 0
    if valid.any() and int(idx.max()) >= table.numel():
        raise EvaluationError(f"'topk_index' holds item {int(idx.max())}, beyond the "
                              f"{table.numel()} entries of '{table_name}'")
    return idx, valid


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
    idx, valid = _top_k_of(topk_index, item_popularity, "item_popularity", k)
    dtype = torch.get_default_dtype()
    pop = item_popularity.to(device=idx.device, dtype=dtype)[idx.clamp(min=0)] * valid
    return pop.sum(1) / valid.sum(1).clamp(min=1).to(dtype)


def average_precision(hits: Tensor, n_relevant: Tensor, k: int | None = None) -> Tensor:
    """AP@k as RecBole's ``MAP`` defines it (its mean over users is MAP@k).

    ``AP@k = sum_{j <= k, hits[j]} precision@j / min(n_relevant, k)``: the precision at the rank of
    each hit in the top k, summed and divided by the number of hits a perfect list could reach.

    Shapes:
        hits: ``[B, K]`` bool; n_relevant: ``[B]``. Returns ``[B]`` float (0 where
        ``n_relevant`` is 0).
    """
    hits, k = _cut(hits, k)
    n = _check_n_relevant(n_relevant, hits)
    dtype = torch.get_default_dtype()
    h = hits.to(dtype)
    rank = torch.arange(1, h.size(1) + 1, device=h.device, dtype=dtype)
    prec_at_hit = torch.cumsum(h, 1) / rank * h  # precision@j at each hit rank j, 0 elsewhere
    denom = n.clamp(min=0, max=k).to(dtype)
    return torch.where(denom > 0, prec_at_hit.sum(1) / denom.clamp(min=1), torch.zeros_like(denom))


def _item_counts(topk_index: Tensor, n_items: int, k: int | None) -> Tensor:
    n_items = check_k(n_items, "n_items")
    if topk_index.dim() != 2:
        raise EvaluationError(f"'topk_index' must have shape [N, K] (got {list(topk_index.shape)})")
    k = topk_index.size(1) if k is None else check_k(k)
    idx = topk_index[:, :k]
    idx = idx[idx >= 0]
    if idx.numel() and int(idx.max()) >= n_items:
        raise EvaluationError(f"'topk_index' holds item {int(idx.max())}, beyond 'n_items' = {n_items}")
    return torch.bincount(idx.long().cpu(), minlength=n_items)


def gini_from_counts(counts: Tensor) -> float:
    """Gini index of how often each item was recommended (see :func:`gini_index`).

    Shapes:
        counts: ``[n]``, one entry per item of the catalogue (0 for items never recommended).
    """
    n = counts.numel()
    c = torch.sort(counts.double().cpu()).values  # non-decreasing
    total = float(c.sum())
    if n == 0 or total == 0:
        return math.nan
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(((2 * i - n - 1) * c).sum()) / (n * total)


def entropy_from_counts(counts: Tensor) -> float:
    """RecBole's Shannon entropy of how often each item was recommended (see :func:`shannon_entropy`).

    Shapes:
        counts: ``[n]`` item recommendation counts.
    """
    c = counts.double().cpu()
    c = c[c > 0]
    if c.numel() == 0:
        return math.nan
    p = c / c.sum()
    return float(-(p * torch.log(p)).sum()) / c.numel()


def gini_index(topk_index: Tensor, n_items: int, k: int | None = None) -> float:
    """Gini index of the recommendation counts (RecBole ``GiniIndex``; lower = more even exposure).

    With ``P_(1) <= ... <= P_(n)`` the number of times each of the ``n = n_items`` items appears in
    all users' top-k lists (items never recommended count 0),
    ``Gini@k = sum_i (2 i - n - 1) P_(i) / (n * sum_i P_(i))``: 0 when every item is recommended
    equally often, ``1 - 1/n`` when one item takes every slot. Padding (``-1``) is not counted.
    NaN when nothing was recommended.

    Shapes:
        topk_index: ``[N, K]`` long, ``-1`` = padding.
    """
    return gini_from_counts(_item_counts(topk_index, n_items, k))


def shannon_entropy(topk_index: Tensor, k: int | None = None) -> float:
    """Shannon entropy of the recommended items, as RecBole's ``ShannonEntropy`` computes it.

    With ``p(i) = count(i) / total`` the share of the top-k slots (padding excluded) taken by item
    ``i``, RecBole returns ``-sum_i p(i) ln p(i) / m`` over the ``m`` distinct recommended items,
    i.e. the natural-log entropy *divided by the number of distinct items* (its code does this
    division, which its formula does not show); we reproduce it so the numbers compare.
    NaN when nothing was recommended.

    Shapes:
        topk_index: ``[N, K]`` long, ``-1`` = padding.
    """
    if topk_index.dim() != 2:
        raise EvaluationError(f"'topk_index' must have shape [N, K] (got {list(topk_index.shape)})")
    k = topk_index.size(1) if k is None else check_k(k)
    idx = topk_index[:, :k]
    idx = idx[idx >= 0]
    if idx.numel() == 0:
        return math.nan
    return entropy_from_counts(torch.unique(idx.cpu(), return_counts=True)[1])


def tail_items(item_popularity: Tensor, tail_ratio: float = 0.1) -> Tensor:
    """The long-tail items, by RecBole's ``TailPercentage`` rule (config ``tail_ratio``, default 0.1).

    ``tail_ratio`` in ``(0, 1]``: the ``max(int(n * tail_ratio), 1)`` least popular of the ``n``
    items, ties broken by the lower item id (RecBole sorts by ``(count, id)``). ``tail_ratio > 1``:
    every item with popularity ``<= tail_ratio``. Unlike RecBole, whose counter only holds items
    seen in training, items with popularity 0 take part (they are the tail's first members).

    Shapes:
        item_popularity: ``[n_items]``. Returns ``[n_items]`` bool.
    """
    if isinstance(tail_ratio, bool) or not isinstance(tail_ratio, numbers.Real) or not tail_ratio > 0:
        raise EvaluationError(f"'tail_ratio' must be a positive number (got {tail_ratio!r})")
    pop = torch.as_tensor(item_popularity).view(-1).cpu()
    if tail_ratio > 1:
        return pop <= tail_ratio
    n = pop.numel()
    order = torch.sort(pop, stable=True).indices  # by (popularity, id)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[order[:max(int(n * tail_ratio), 1)]] = True
    return mask


def tail_percentage(topk_index: Tensor, is_tail: Tensor, k: int | None = None) -> Tensor:
    """Share of each user's top k that are long-tail items (RecBole ``TailPercentage``).

    ``tail@k = |{j <= k : topk_index[j] in T}| / (number of recommendations in the top k)``, ``T``
    given by ``is_tail`` (e.g. :func:`tail_items`). Padding is excluded from both counts (with full
    lists the denominator is ``k``, as in RecBole); 0 for an empty list.

    Shapes:
        topk_index: ``[B, K]`` long, ``-1`` = padding; is_tail: ``[n_items]`` bool.
        Returns ``[B]`` float.
    """
    idx, valid = _top_k_of(topk_index, is_tail, "is_tail", k)
    dtype = torch.get_default_dtype()
    tail = is_tail.to(device=idx.device, dtype=torch.bool)[idx.clamp(min=0)] & valid
    return tail.sum(1).to(dtype) / valid.sum(1).clamp(min=1).to(dtype)


def auc_from_rank_sum(rank_sum: Tensor, n_ranked: Tensor, n_positive: Tensor) -> Tensor:
    """Per-user AUC from the ranks of the positives (RecBole ``GAUC``'s per-user term).

    ``AUC(u) = (P (n + 1) - P (P + 1) / 2 - sum_i rank_i) / (P (n - P))`` where ``n`` items were
    ranked, ``P`` of them positive, and ``rank_i`` is the descending rank of the i-th positive, tied
    scores taking their average rank (so a tied positive/negative pair counts half). It is the share
    of (positive, negative) pairs ranked in the right order. NaN where ``P = 0`` or ``P = n``.

    Shapes:
        rank_sum, n_ranked, n_positive: ``[U]``. Returns ``[U]`` float64.
    """
    r, n, p = (torch.as_tensor(x).double().view(-1) for x in (rank_sum, n_ranked, n_positive))
    if not r.numel() == n.numel() == p.numel():
        raise EvaluationError(f"'rank_sum', 'n_ranked' and 'n_positive' must have one entry per user "
                              f"(got {r.numel()}, {n.numel()} and {p.numel()})")
    pairs = p * (n - p)
    auc = (p * (n + 1) - p * (p + 1) / 2 - r) / pairs.clamp(min=1)
    return torch.where(pairs > 0, auc, torch.full_like(auc, math.nan))


def gauc(rank_sum: Tensor, n_ranked: Tensor, n_positive: Tensor) -> float:
    """GAUC (RecBole ``GAUC``): the per-user AUC of :func:`auc_from_rank_sum`, averaged over users
    weighted by their number of positives. Users without a positive or without a negative are left
    out, as in RecBole; NaN when none is left.

    Shapes:
        rank_sum, n_ranked, n_positive: ``[U]``.
    """
    auc = auc_from_rank_sum(rank_sum, n_ranked, n_positive)
    keep = ~torch.isnan(auc)
    w = torch.as_tensor(n_positive).double().view(-1)[keep]
    return float((auc[keep] * w).sum() / w.sum()) if bool(keep.any()) else math.nan
