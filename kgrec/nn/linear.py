"""Closed-form item-item models: MostPop, ItemKNN, EASE, and sequential rules.

The first three are fitted from a user x item matrix (binary, or decay-weighted:
:mod:`kgrec.data.decay`), the rules from the users' time-ordered histories; all score a batch of
users from their history rows, so full ranking is one matrix product. Fitted weights are buffers,
saved like any other module.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from scipy.linalg import get_lapack_funcs
from torch import Tensor, nn

from kgrec.memory import check_memory

__all__ = ["MostPop", "ItemKNN", "EASE", "SequentialRules", "rows_times", "time_steps_back", "recency_weights",
           "itemknn_fit_bytes", "ease_fit_bytes", "ease_dtype", "block_width", "rules_fit_bytes"]


def _as_csr(x):
    return sp.csr_matrix(x, dtype=np.float32)


#: ``rows_times`` multiplies sparsely when at most this share of the rows' entries is non-zero
SPARSE_ROWS_MAX_DENSITY = 0.3


def rows_times(rows: Tensor, weight: Tensor) -> Tensor:
    """``rows @ weight`` for history-like rows ``[B, I]`` (mostly zeros) and an item-item matrix
    ``[I, I']`` -> ``[B, I']``.

    A user's row holds their few history items, so a dense ``[B, I] x [I, I']`` product spends
    almost all of its ``B I I'`` operations on zeros; as a sparse-dense product it costs
    ``nnz x I'`` (on Book-Crossing, ~3 history entries per row of 14,967 items, that is about
    5,000 times fewer). Rows denser than :data:`SPARSE_ROWS_MAX_DENSITY` use the dense product.
    Equal up to float rounding (the sums run in another order).
    """
    if rows.dim() == 2 and rows.numel() and rows.layout == torch.strided and not rows.requires_grad \
            and int(torch.count_nonzero(rows)) <= SPARSE_ROWS_MAX_DENSITY * rows.numel():
        return torch.sparse.mm(rows.to_sparse(), weight.to(rows.dtype))
    return rows @ weight


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
        """History ``[B, I]`` (ignored except for its batch size) -> scores ``[B, I]``."""
        return self.popularity.unsqueeze(0).expand(history.shape[0], -1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_items={self.num_items})"


#: Bytes of scratch one block of a blocked item x item computation may take (similarity or Gram
#: columns); the block width follows from it and the catalogue size.
BLOCK_BYTES = 256 * 1024**2
#: Scratch bytes per entry of an ItemKNN similarity block ``[I, b]``: the sparse co-occurrence
#: product (value + index, with scipy's working copy), its dense float32 copy, the float32
#: denominators, the float32 negated similarities and argpartition's int64 indices.
KNN_BYTES_PER_ENTRY = 40
#: Bytes per kept ItemKNN neighbour: int64 ``(i, j)`` index pair + float32 value, twice (numpy
#: arrays, then the torch buffers).
KNN_BYTES_PER_NEIGHBOUR = 2 * (16 + 4)
#: Bytes per stored interaction held while fitting: the float32 CSR and CSC copies (value + int32
#: index each) and the transposed product operand.
BYTES_PER_INTERACTION = 24
#: Scratch bytes per entry of an EASE Gram block ``[I, b]`` (sparse product, value + index with
#: scipy's working copy), and of the symmetrising copy of one block of the inverse (two blocks).
EASE_BYTES_PER_BLOCK_ENTRY = 16


def block_width(num_items: int, bytes_per_entry: int, budget: int | None = None) -> int:
    """Columns per block so that an ``[num_items, b]`` block of ``bytes_per_entry`` bytes per entry
    stays within ``budget`` bytes (default :data:`BLOCK_BYTES`; at least 1, at most ``num_items``).
    """
    budget = BLOCK_BYTES if budget is None else budget
    return max(1, min(num_items, budget // max(1, num_items * bytes_per_entry)))


def itemknn_fit_bytes(num_items: int, k: int, nnz: int = 0) -> int:
    """Peak bytes of :meth:`ItemKNN.fit`: one similarity block, the kept neighbours, the input copies.

    Args:
        num_items: catalogue size ``I``.
        k: neighbours kept per item (capped at ``I - 1``).
        nnz: stored interactions of the training matrix.
    """
    b = block_width(num_items, KNN_BYTES_PER_ENTRY)
    kept = num_items * max(0, min(k, num_items - 1))
    return KNN_BYTES_PER_ENTRY * num_items * b + KNN_BYTES_PER_NEIGHBOUR * kept + BYTES_PER_INTERACTION * nnz


def ease_dtype(num_items: int) -> torch.dtype:
    """EASE's working precision: float64 up to 4000 items (exact enough to match RecBole digit for
    digit, at most 128 MiB), float32 beyond (half the memory and time; the ``reg`` term keeps the
    Gram matrix well conditioned).
    """
    return torch.float64 if num_items <= 4000 else torch.float32


def ease_fit_bytes(num_items: int, nnz: int = 0, dtype: torch.dtype | None = None) -> int:
    """Peak bytes of :meth:`EASE.fit`.

    The Gram matrix ``[I, I]`` is factorised, inverted and turned into the weights in place, so one
    ``I x I`` array of ``dtype`` is held, plus the float32 weights when ``dtype`` is wider, one block
    of scratch (:data:`EASE_BYTES_PER_BLOCK_ENTRY` per entry of ``[I, b]``) and the input copies.

    Args:
        num_items: catalogue size ``I``.
        nnz: stored interactions of the training matrix.
        dtype: working precision (default :func:`ease_dtype`).
    """
    dtype = ease_dtype(num_items) if dtype is None else dtype
    size = torch.empty(0, dtype=dtype).element_size()
    square = num_items * num_items
    b = block_width(num_items, EASE_BYTES_PER_BLOCK_ENTRY)
    extra = square * 4 if size > 4 else 0
    return square * size + extra + EASE_BYTES_PER_BLOCK_ENTRY * num_items * b + BYTES_PER_INTERACTION * nnz


def rules_fit_bytes(num_items: int) -> int:
    """Peak bytes of :meth:`SequentialRules.fit`: the float64 ``I x I`` counts and the float32 weights
    (besides the weights the module already holds).
    """
    return num_items * num_items * (8 + 4)


class ItemKNN(nn.Module):
    r"""Item-based k-nearest-neighbours with shrunk cosine similarity (Sarwar et al., WWW 2001).

    :math:`s_{ij} = \frac{x_i^\top x_j}{\|x_i\| \|x_j\| + h}`, keeping each item's ``k`` most similar
    neighbours; a user's score for item ``j`` is :math:`\sum_{i \in H_u} s_{ij}`.

    The similarities are computed a block of target items at a time (:func:`block_width`): only the
    ``k`` kept per item are stored, as a sparse matrix, so memory grows with ``I * k``, not ``I^2``.

    Args:
        num_items: catalogue size.
        k: neighbours kept per item (default ``100``).
        shrink: shrinkage term ``h`` damping similarities with little support (default ``10.0``).
        max_memory_gb: memory budget of :meth:`fit` in GiB (default ``None``: what the process may
            still allocate, :func:`kgrec.memory.available_memory_bytes`).
    """

    def __init__(self, num_items: int, k: int = 100, shrink: float = 10.0, max_memory_gb: float | None = None):
        super().__init__()
        if k <= 0:
            raise ValueError(f"'k' must be a positive integer in 'ItemKNN' (got {k})")
        self.num_items = num_items
        self.k = k
        self.shrink = shrink
        self.max_memory_gb = max_memory_gb
        self.register_buffer("sim_index", torch.zeros(2, 0, dtype=torch.long))
        self.register_buffer("sim_value", torch.zeros(0))
        self._weight_key, self._weight = None, None  # the sparse matrix forward() multiplies by

    def reset_parameters(self) -> None:
        self.sim_index = torch.zeros(2, 0, dtype=torch.long)
        self.sim_value = torch.zeros(0)

    @torch.no_grad()
    def fit(self, matrix) -> "ItemKNN":
        """Args: matrix: ``[U, I]`` scipy sparse matrix of training interactions (binary or weighted).

        Raises:
            ResourceLimitError: the fit's estimate (:func:`itemknn_fit_bytes`) exceeds the memory
                budget; raised before the similarities are computed.
        """
        x = _as_csr(matrix)
        n = self.num_items
        check_memory(itemknn_fit_bytes(n, self.k, x.nnz), f"ItemKNN fit of {n} items (k={self.k})",
                     "lower 'k', shrink the catalogue (e.g. drop rare items before mapping)", self.max_memory_gb)
        xt = x.T.tocsr()  # [I, U]
        xc = x.tocsc()
        norm = np.sqrt(np.asarray(x.multiply(x).sum(0), dtype=np.float32).ravel())
        k = min(self.k, n - 1) if n > 1 else 0
        rows, cols, vals = [], [], []
        if k > 0:
            b = block_width(n, KNN_BYTES_PER_ENTRY)
            for lo in range(0, n, b):
                hi = min(n, lo + b)
                sim = (xt @ xc[:, lo:hi]).toarray()  # [I, b] co-occurrence of every item with the block
                den = np.outer(norm, norm[lo:hi])
                den += np.float32(self.shrink + 1e-12)
                np.divide(sim, den, out=sim)
                del den
                sim[np.arange(lo, hi), np.arange(hi - lo)] = 0.0  # no item is its own neighbour
                # keep the k largest per column j (neighbours i of target j)
                top = np.argpartition(-sim, kth=k - 1, axis=0)[:k]
                block_cols = np.broadcast_to(np.arange(hi - lo), top.shape)
                v = sim[top, block_cols]
                keep = v > 0
                rows.append(top[keep])
                cols.append(block_cols[keep] + lo)
                vals.append(v[keep])
                del sim, top
        if rows:
            index = np.stack([np.concatenate(rows), np.concatenate(cols)])
            value = np.concatenate(vals)
        else:
            index, value = np.zeros((2, 0), dtype=np.int64), np.zeros(0, dtype=np.float32)
        self.sim_index = torch.as_tensor(index, dtype=torch.long)
        self.sim_value = torch.as_tensor(value, dtype=torch.float32)
        return self

    def _sparse_weight(self, device) -> Tensor:
        """The kept similarities as a coalesced sparse ``[I, I]`` tensor on ``device``, built once per
        fitted (or loaded) pair of buffers.
        """
        key = (self.sim_index.data_ptr(), self.sim_value.data_ptr(), self.sim_value.numel(), str(device))
        if self._weight_key != key:
            self._weight = torch.sparse_coo_tensor(self.sim_index, self.sim_value, (self.num_items, self.num_items),
                                                   device=device, check_invariants=False).coalesce()
            self._weight_key = key
        return self._weight

    def forward(self, history: Tensor) -> Tensor:
        """History ``[B, I]`` (binary or weighted) -> scores ``[B, I]``.

        ``H W`` as a product of two sparse matrices: a user's row only gathers the kept neighbour
        lists of their history items, so the cost grows with history length x ``k``, not ``I``.
        """
        with warnings.catch_warnings():  # torch multiplies COO through its (beta) CSR kernels
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse.mm(history.to_sparse(), self._sparse_weight(history.device)).to_dense()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_items={self.num_items}, k={self.k}, shrink={self.shrink})"


class EASE(nn.Module):
    r"""Embarrassingly Shallow Autoencoder (Steck, WWW 2019).

    :math:`B = I - P \,\mathrm{diagMat}(1 / \mathrm{diag}(P))`, :math:`P = (X^\top X + \lambda I)^{-1}`;
    scores are :math:`X_u B`.

    The fit holds one ``I x I`` array: the Gram matrix is built a block of columns at a time into
    it, factorised (Cholesky, LAPACK ``potrf``) and inverted (``potri``) in place, mirrored to a full
    symmetric matrix a block at a time, and divided into the weights in place
    (:func:`ease_fit_bytes`); the weights are a view of that array. The precision is
    :func:`ease_dtype`.

    Args:
        num_items: catalogue size.
        reg: the L2 weight :math:`\lambda` (default ``250.0``, RecBole's default; tune on validation).
        max_memory_gb: memory budget of :meth:`fit` in GiB (default ``None``: what the process may
            still allocate, :func:`kgrec.memory.available_memory_bytes`).
    """

    def __init__(self, num_items: int, reg: float = 250.0, max_memory_gb: float | None = None):
        super().__init__()
        self.num_items = num_items
        self.reg = reg
        self.max_memory_gb = max_memory_gb
        # an unfitted model holds no I x I array (it scores 0): the fit's estimate is checked first
        self.register_buffer("weight", torch.zeros(num_items, 0))

    def reset_parameters(self) -> None:
        self.weight = torch.zeros(self.num_items, 0)

    @torch.no_grad()
    def fit(self, matrix) -> "EASE":
        """Args: matrix: ``[U, I]`` scipy sparse matrix of training interactions (binary or weighted).

        Raises:
            ResourceLimitError: the fit's estimate (:func:`ease_fit_bytes`) exceeds the memory
                budget; raised before the Gram matrix is allocated.
        """
        x = _as_csr(matrix)
        n = self.num_items
        dtype = ease_dtype(n)
        check_memory(ease_fit_bytes(n, x.nnz, dtype), f"EASE fit of {n} items ({str(dtype)[6:]})",
                     "use 'itemknn' (memory grows with items x k), or shrink the catalogue "
                     "(e.g. drop rare items before mapping)", self.max_memory_gb)
        self.weight = torch.zeros(n, 0)  # release a previous fit's weights first
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        xt = x.T.tocsr()
        xc = x.tocsc()
        g = np.empty((n, n), dtype=np_dtype, order="F")  # LAPACK's layout: factorised without a copy
        b = block_width(n, EASE_BYTES_PER_BLOCK_ENTRY)
        for lo in range(0, n, b):
            hi = min(n, lo + b)
            g[:, lo:hi] = (xt @ xc[:, lo:hi]).toarray()
        del xt, xc
        g[np.diag_indices(n)] += self.reg
        if n:
            potrf, potri = get_lapack_funcs(("potrf", "potri"), (g,))
            g, info = potrf(g, lower=0, clean=1, overwrite_a=1)
            if info != 0:
                raise ValueError(f"EASE: the Gram matrix is not positive definite (LAPACK potrf info={info}); "
                                 f"raise 'reg' (got {self.reg})")
            g, info = potri(g, lower=0, overwrite_c=1)  # P's upper triangle; the lower one is 0
            if info != 0:
                raise ValueError(f"EASE: the Gram matrix is singular (LAPACK potri info={info}); "
                                 f"raise 'reg' (got {self.reg})")
            for lo in range(0, n, b):  # mirror the upper triangle into the lower, a block at a time
                hi = min(n, lo + b)
                g[lo:hi, :lo] = g[:lo, lo:hi].T
                d = g[lo:hi, lo:hi]
                g[lo:hi, lo:hi] = np.triu(d) + np.triu(d, 1).T
        # g is symmetric, so its C-ordered view p equals P; B = -P / diag(P) column-wise, in place
        p = g.T
        diag = p.diagonal().copy()
        np.divide(p, -diag[None, :], out=p)
        np.fill_diagonal(p, 0.0)
        w = torch.from_numpy(p)
        self.weight = w if w.dtype == torch.float32 else w.float()
        return self

    def forward(self, history: Tensor) -> Tensor:
        """History ``[B, I]`` -> scores ``[B, I]`` (0 before :meth:`fit`)."""
        if self.weight.shape[1] != self.num_items:
            return history.new_zeros(history.shape[0], self.num_items)
        return rows_times(history, self.weight)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_items={self.num_items}, reg={self.reg})"


def _time_order(indptr: Tensor, time: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The history entries with a known time, ordered by (user, time, position): ``(entry, user, step)``,
    ``step`` being the dense rank of the entry's time among its user's distinct times (0 = earliest).
    """
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
        ``time`` ``[nnz]`` (``nan`` = unknown: such entries take no part).

        Raises:
            ResourceLimitError: the dense rule matrix (:func:`rules_fit_bytes`) does not fit in the
                memory the process may still allocate; raised before it is allocated.
        """
        check_memory(rules_fit_bytes(self.num_items), f"sequential rules of {self.num_items} items",
                     "turn the sequential rules off (seq_grid=(0,) / seq_prior=False), or shrink the catalogue "
                     "(e.g. drop rare items before mapping)")
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
        """Recency ``[B, I]`` (:func:`recency_weights` of the history items, 0 elsewhere) -> scores ``[B, I]``."""
        return rows_times(recency, self.weight)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_items={self.num_items}, window={self.window})"
