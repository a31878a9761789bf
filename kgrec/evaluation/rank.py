"""Full-catalogue ranking: mask seen items, restrict to candidates, deterministic top-k.

Every function takes a ``[B, n_items]`` score block and works on the device of its inputs; index
structures built on the CPU are moved to the scores' device when they are applied.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kgrec.evaluation.metrics import EvaluationError, check_k

__all__ = ["seen_csr", "csr_rows", "mask_seen", "restrict", "topk"]


def seen_csr(user: Tensor, item: Tensor, num_users: int, num_items: int | None = None) -> tuple[Tensor, Tensor]:
    """Per-user item sets as a CSR structure (duplicates merged, items sorted within a row).

    Built once per split and then sliced per batch with :func:`csr_rows`, so that masking a batch
    never loops over users in Python.

    Args:
        user: user id of each interaction.
        item: item id of each interaction.
        num_users: number of rows (users without interactions get empty rows).
        num_items: if given, item ids must be below it.

    Shapes:
        user, item: ``[N]`` long.
        Returns ``(indptr [num_users + 1], indices [nnz])`` long, on the device of ``user``.
    """
    if user.shape != item.shape or user.dim() != 1:
        raise EvaluationError(f"'user' and 'item' must be 1-D tensors of equal length "
                              f"(got {list(user.shape)} and {list(item.shape)})")
    user, item = user.long(), item.long()
    if user.numel():
        if int(user.min()) < 0 or int(user.max()) >= num_users:
            raise EvaluationError(f"'user' ids must lie in [0, {num_users}) "
                                  f"(got range [{int(user.min())}, {int(user.max())}])")
        lim = num_items if num_items is not None else int(item.max()) + 1
        if int(item.min()) < 0 or int(item.max()) >= lim:
            raise EvaluationError(f"'item' ids must lie in [0, {lim}) "
                                  f"(got range [{int(item.min())}, {int(item.max())}])")
        # one int64 key per pair: unique() both merges duplicates and sorts by (user, item)
        key = torch.unique(user * lim + item)
        user, item = key // lim, key % lim
    counts = torch.bincount(user, minlength=num_users)
    indptr = torch.zeros(num_users + 1, dtype=torch.long, device=user.device)
    indptr[1:] = torch.cumsum(counts, 0)
    return indptr, item


def csr_rows(indptr: Tensor, indices: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """The entries of some CSR rows, as (position in ``rows``, column) pairs.

    Shapes:
        indptr: ``[R + 1]``; indices: ``[nnz]``; rows: ``[B]`` long row ids.
        Returns ``(row_pos [M], cols [M])`` long, ``row_pos`` in ``[0, B)``, on ``indptr``'s device.
    """
    rows = rows.to(indptr.device).long()
    start = indptr[rows]
    counts = indptr[rows + 1] - start
    row_pos = torch.repeat_interleave(torch.arange(rows.numel(), device=indptr.device), counts)
    # offset of each entry inside its own row = global position - first position of its row
    first = torch.cumsum(counts, 0) - counts
    offset = torch.arange(row_pos.numel(), device=indptr.device) - first[row_pos]
    return row_pos, indices[start[row_pos] + offset]


def mask_seen(scores: Tensor, users: Tensor, indptr: Tensor, indices: Tensor,
              value: float = float("-inf"), inplace: bool = False) -> Tensor:
    """Set the items each user has already seen to ``value`` (default ``-inf``).

    Args:
        scores: the score block of ``users``.
        users: the user id of each row of ``scores``.
        indptr: row pointers of the seen items per user, from :func:`seen_csr`.
        indices: the seen item ids, from :func:`seen_csr`.
        value: the fill value.
        inplace: write into ``scores`` instead of a copy (the caller's tensor may be a view of a
            cached score matrix, hence the copy by default).

    Shapes:
        scores: ``[B, n_items]`` float; users: ``[B]`` long. Returns ``[B, n_items]``.
    """
    if scores.dim() != 2 or users.numel() != scores.size(0):
        raise EvaluationError(f"'scores' must have shape [B, n_items] with B = len(users) = {users.numel()} "
                              f"(got {list(scores.shape)})")
    row_pos, cols = csr_rows(indptr, indices, users)
    out = scores if inplace else scores.clone()
    out[row_pos.to(scores.device), cols.to(scores.device)] = value
    return out


def restrict(scores: Tensor, candidates: Tensor, value: float = float("-inf")) -> Tensor:
    """Set every item that is not a candidate to ``value`` (default ``-inf``).

    Args:
        scores: a score block.
        candidates: candidate item ids (long) or a boolean mask over the items.
        value: the fill value.

    Shapes:
        scores: ``[B, n_items]``; candidates: ``[C]`` long or ``[n_items]`` bool.
        Returns ``[B, n_items]`` (a new tensor).
    """
    n_items = scores.size(-1)
    if candidates.dtype == torch.bool:
        if candidates.numel() != n_items:
            raise EvaluationError(f"a boolean 'candidates' mask must have {n_items} entries "
                                  f"(got {candidates.numel()})")
        keep = candidates.to(scores.device)
    else:
        if candidates.numel() and (int(candidates.min()) < 0 or int(candidates.max()) >= n_items):
            raise EvaluationError(f"'candidates' must be item ids in [0, {n_items}) "
                                  f"(got range [{int(candidates.min())}, {int(candidates.max())}])")
        keep = torch.zeros(n_items, dtype=torch.bool, device=scores.device)
        keep[candidates.to(scores.device).long()] = True
    return scores.masked_fill(~keep, value)


def topk(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` best items of each row, best first; equal scores rank the lower item id first.

    ``torch.topk`` breaks ties arbitrarily (and differently on CPU and GPU), which would let a
    model with many equal scores (popularity, a constant) get different metrics from run to run;
    ties are therefore broken by item id.

    Args:
        scores: a score block; must not contain NaN.
        k: how many items to return, ``1 <= k <= n_items``.

    Shapes:
        scores: ``[B, n_items]``. Returns ``(values [B, k], indices [B, k])``, indices long.
    """
    k = check_k(k)
    if scores.dim() != 2:
        raise EvaluationError(f"'scores' must have shape [B, n_items] (got {list(scores.shape)})")
    B, n_items = scores.shape
    if k > n_items:
        raise EvaluationError(f"'k' must be at most the number of items {n_items} (got {k})")
    if B == 0:
        return scores.new_empty(0, k), torch.empty(0, k, dtype=torch.long, device=scores.device)
    # one extra candidate tells whether a row has a tie at the cut (the (k+1)-th best equals the
    # k-th) without a pass over the whole row, the cost that dominated ranking before
    values, index = torch.topk(scores, min(k + 1, n_items), dim=1)
    if bool(torch.isnan(values[:, 0]).any()):  # topk ranks NaN above everything
        rows = torch.isnan(values[:, 0]).nonzero().view(-1)[:5].tolist()
        raise EvaluationError(f"'scores' contains NaN (rows {rows})")
    index = index[:, :k]
    if k < n_items:
        tie = (values[:, k] == values[:, k - 1]).nonzero().view(-1)
        if tie.numel():
            # keep every item above the cut, then fill the rest with the lowest-id items equal to it
            s, thr = scores[tie], values[tie, k - 1:k]
            need = k - (s > thr).sum(1, keepdim=True)
            eq = s == thr
            chosen = (s > thr) | (eq & (torch.cumsum(eq, 1) <= need))
            index = index.clone()
            index[tie] = chosen.nonzero()[:, 1].view(-1, k)  # row-major: ascending item ids per row
    index = index.sort(dim=1).values
    values = scores.gather(1, index)
    # a stable sort of id-ascending rows keeps lower ids first among equal scores
    values, order = torch.sort(values, dim=1, descending=True, stable=True)
    return values, index.gather(1, order)
