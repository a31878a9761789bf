"""Closed-form item-item models: MostPop, ItemKNN, EASE, and sequential rules.

The first three are fitted from a user x item matrix (binary, or decay-weighted:
:mod:`kgrec.data.decay`), the rules from the users' time-ordered histories; all score a batch of
users from their history rows, so full ranking is one matrix product. Fitted weights are buffers,
saved like any other module.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["MostPop", "ItemKNN", "EASE", "SequentialRules", "time_steps_back", "recency_weights"]


def _as_csr(x):
    import scipy.sparse as sp

    return sp.csr_matrix(x, dtype=np.float32)


class MostPop(nn.Module):
    """Scores every item by its number of training interactions.

    Args:
        num_items: catalogue size.
    """

    def __init__(self, num_items: int):
        super().__init__()
        self.num_items = num_items
        self.register_buffer("popularity", torch.zeros(num_items))

    def reset_parameters(self) -> None:
        self.popularity.zero_()

    @torch.no_grad()
    def fit(self, matrix) -> "MostPop":
        """Args: matrix: ``[U, I]`` binary scipy sparse matrix of training interactions."""
        self.popularity.copy_(torch.as_tensor(np.asarray(_as_csr(matrix).sum(0)).ravel()))
        return self

    def forward(self, history: Tensor) -> Tensor:
        """history ``[B, I]`` (ignored except for its batch size) -> scores ``[B, I]``."""
        return self.popularity.unsqueeze(0).expand(history.shape[0], -1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_items={self.num_items})"


class ItemKNN(nn.Module):
    r"""Item-based k-nearest-neighbours with shrunk cosine similarity (Sarwar et al., WWW 2001).

    :math:`s_{ij} = \frac{x_i^\top x_j}{\|x_i\| \|x_j\| + h}`, keeping each item's ``k`` most similar
    neighbours; a user's score for item ``j`` is :math:`\sum_{i \in H_u} s_{ij}`.

    Args:
        num_items: catalogue size.
        k: neighbours kept per item (default ``100``).
        shrink: shrinkage term ``h`` damping similarities with little support (default ``10.0``).
    """

    def __init__(self, num_items: int, k: int = 100, shrink: float = 10.0):
        super().__init__()
        if k <= 0:
            raise ValueError(f"'k' must be a positive integer in 'ItemKNN' (got {k})")
        self.num_items = num_items
        self.k = k
        self.shrink = shrink
        self.register_buffer("sim_index", torch.zeros(2, 0, dtype=torch.long))
        self.register_buffer("sim_value", torch.zeros(0))

    def reset_parameters(self) -> None:
        self.sim_index = torch.zeros(2, 0, dtype=torch.long)
        self.sim_value = torch.zeros(0)

    @torch.no_grad()
    def fit(self, matrix) -> "ItemKNN":
        x = _as_csr(matrix)
        co = (x.T @ x).toarray()  # [I, I]
        norm = np.sqrt(np.diag(co))
        sim = co / (np.outer(norm, norm) + self.shrink + 1e-12)
        np.fill_diagonal(sim, 0.0)
        k = min(self.k, self.num_items - 1) if self.num_items > 1 else 0
        # keep the k largest per column j (neighbours i of target j)
        top = np.argpartition(-sim, kth=max(k - 1, 0), axis=0)[:k] if k > 0 else np.zeros((0, self.num_items), int)
        cols = np.broadcast_to(np.arange(self.num_items), top.shape)
        vals = sim[top, cols]
        keep = vals > 0
        self.sim_index = torch.as_tensor(np.stack([top[keep], cols[keep]]), dtype=torch.long)
        self.sim_value = torch.as_tensor(vals[keep], dtype=torch.float32)
        return self

    def forward(self, history: Tensor) -> Tensor:
        """history ``[B, I]`` binary -> scores ``[B, I]``."""
        w = torch.sparse_coo_tensor(self.sim_index, self.sim_value, (self.num_items, self.num_items),
                                    device=history.device, check_invariants=False)
        return torch.sparse.mm(w.t(), history.t()).t()  # (W^T H^T)^T = H W

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_items={self.num_items}, k={self.k}, shrink={self.shrink})"


class EASE(nn.Module):
    r"""Embarrassingly Shallow Autoencoder (Steck, WWW 2019).

    :math:`B = I - P \,\mathrm{diagMat}(1 / \mathrm{diag}(P))`, :math:`P = (X^\top X + \lambda I)^{-1}`;
    scores are :math:`X_u B`.

    Args:
        num_items: catalogue size.
        reg: the L2 weight :math:`\lambda` (default ``250.0``, RecBole's default; tune on validation).
    """

    def __init__(self, num_items: int, reg: float = 250.0):
        super().__init__()
        self.num_items = num_items
        self.reg = reg
        self.register_buffer("weight", torch.zeros(num_items, num_items))

    def reset_parameters(self) -> None:
        self.weight.zero_()

    @torch.no_grad()
    def fit(self, matrix) -> "EASE":
        x = _as_csr(matrix)
        # float64 is exact enough to match RecBole digit for digit; beyond a few thousand items the
        # O(I^3) inverse dominates and float32 halves it (the reg term keeps G well conditioned)
        dtype = torch.float64 if self.num_items <= 4000 else torch.float32
        g = torch.as_tensor((x.T @ x).toarray(), dtype=dtype)
        g += self.reg * torch.eye(self.num_items, dtype=dtype)
        p = torch.linalg.inv(g)
        b = -p / torch.diagonal(p).unsqueeze(0)
        b.fill_diagonal_(0.0)
        self.weight.copy_(b.float())
        return self

    def forward(self, history: Tensor) -> Tensor:
        """history ``[B, I]`` -> scores ``[B, I]``."""
        return history @ self.weight

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_items={self.num_items}, reg={self.reg})"


def _time_order(indptr: Tensor, time: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The history entries with a known time, ordered by (user, time, position): ``(entry, user, step)``,
    ``step`` being the dense rank of the entry's time among its user's distinct times (0 = earliest)."""
    indptr = indptr.cpu().numpy()
    t = time.detach().cpu().double().numpy()
    user = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    known = np.flatnonzero(~np.isnan(t))
    order = known[np.lexsort((known, t[known], user[known]))]
    u, ts = user[order], t[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (u[1:] != u[:-1]) | (ts[1:] != ts[:-1])
    group = np.cumsum(new) - 1
    first = np.ones(len(order), dtype=bool)
    first[1:] = u[1:] != u[:-1]
    start = np.maximum.accumulate(np.where(first, group, 0))  # the group id where each user starts
    return order, u, group - start


def time_steps_back(indptr: Tensor, time: Tensor) -> Tensor:
    """``[nnz]`` for each history entry, how many of its user's distinct interaction times are later
    than its own (``0`` = the user's latest time; entries with the same time share a step);
    ``nan`` where the time is unknown.

    Args:
        indptr: ``[U + 1]`` row pointers of the users' history entries (:func:`kgrec.evaluation.rank.seen_csr`).
        time: ``[nnz]`` the time of each entry (unix seconds, ``nan`` = unknown).
    """
    order, user, step = _time_order(indptr, time)
    last = np.zeros(len(indptr) - 1, dtype=np.int64)
    np.maximum.at(last, user, step)
    out = np.full(time.numel(), np.nan)
    out[order] = last[user] - step
    return torch.as_tensor(out)


def recency_weights(steps: Tensor, tau: float) -> Tensor:
    """``[nnz]`` float32 ``exp(-steps / tau)`` of :func:`time_steps_back`'s ``steps``; 0 where unknown."""
    return torch.nan_to_num(torch.exp(-steps / tau), nan=0.0).float()


class SequentialRules(nn.Module):
    r"""Sequential rules: which items follow which in the users' timelines (after the SR model of
    Ludewig & Jannach, "Evaluation of session-based recommendation algorithms", UMUAI 2018).

    Each user's training items are ordered by time. Item ``j`` coming ``g >= 1`` distinct times
    after item ``i`` adds :math:`e^{-(g - 1)/w}` to rule :math:`i \to j`; items with the same time
    (entered together, order unknown) add ``1`` in both directions. Rows are normalised to sum to 1,
    so :math:`T_{ij}` is the share of what followed ``i`` that was ``j``. A user's scores are
    :math:`r_u T` with :math:`r_{ui} = e^{-s_{ui}/\tau}`, :math:`s_{ui}` the number of the user's
    distinct times after ``i`` (:func:`time_steps_back`, :func:`recency_weights`): recent items vote
    for what comes next.

    EASE (and any model of the whole history as a set) cannot tell what a user did last from what
    they did first. On the MovieLens-100K temporal split, where the test items are each user's
    latest, adding these rules to EASE raised test NDCG@10 by about a fifth
    (``benchmarks/results/linear_ceiling-temporal.md``); on the random split they do nothing, as
    the held-out items are not the latest (``linear_ceiling-random.md``).

    Args:
        num_items: catalogue size.
        window: the step decay ``w`` of the rules (default ``10``).
        max_offset: pairs further apart than this many positions of a user's time-ordered history
            are not counted (default ``200``; bounds the cost at ``max_offset`` x history entries).
    """

    def __init__(self, num_items: int, window: float = 10.0, max_offset: int = 200):
        super().__init__()
        for name, v in (("window", window), ("max_offset", max_offset)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0 or v != v:
                raise ValueError(f"'{name}' must be a positive number in 'SequentialRules' (got {v!r})")
        self.num_items = num_items
        self.window = float(window)
        self.max_offset = int(max_offset)
        self.register_buffer("weight", torch.zeros(num_items, num_items))

    def reset_parameters(self) -> None:
        self.weight.zero_()

    @torch.no_grad()
    def fit(self, indptr: Tensor, indices: Tensor, time: Tensor) -> "SequentialRules":
        """Args: the users' history entries: ``indptr`` ``[U + 1]``, item ``indices`` ``[nnz]`` and
        ``time`` ``[nnz]`` (``nan`` = unknown: such entries take no part)."""
        order, user, step = _time_order(indptr, time)
        item = indices.cpu().numpy()[order]
        n_items = self.num_items
        flat = torch.zeros(n_items * n_items, dtype=torch.float64)
        for k in range(1, min(self.max_offset, len(order) - 1) + 1):
            same = user[k:] == user[:-k]
            if not same.any():
                break
            a, b = item[:-k][same], item[k:][same]
            gap = (step[k:] - step[:-k])[same]
            w = np.exp(-np.maximum(gap - 1, 0) / self.window)
            tie = gap == 0
            src = np.concatenate([a, b[tie]])
            dst = np.concatenate([b, a[tie]])
            flat.index_add_(0, torch.as_tensor(src * n_items + dst), torch.as_tensor(np.concatenate([w, w[tie]])))
        rules = flat.view(n_items, n_items)
        rules.fill_diagonal_(0.0)  # an item re-entered later is not a rule
        rules /= rules.sum(1, keepdim=True).clamp(min=1e-12)
        self.weight.copy_(rules.float())
        return self

    def forward(self, recency: Tensor) -> Tensor:
        """recency ``[B, I]`` (:func:`recency_weights` of the history items, 0 elsewhere) -> scores ``[B, I]``."""
        return recency @ self.weight

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_items={self.num_items}, window={self.window})"
