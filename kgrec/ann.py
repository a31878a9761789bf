"""Top-K over very large catalogues with a faiss index (optional: ``pip install faiss-cpu``).

For every model whose score is a dot product of a user vector and an item vector (``bprmf``,
``lightgcn``, ``cke``, ``hybrid``; the hybrid's EASE prior is folded into its vectors, see
:meth:`kgrec.nn.hybrid.HybridModel.forward`), the item vectors go into a faiss index once and a
query returns the best items of a user without scoring the whole catalogue:

* ``kind="flat"``: ``IndexFlatIP``, exact (the same top-K as full ranking, up to float rounding
  between exactly tied scores);
* ``kind="ivf"``: ``IndexIVFFlat`` (k-means into ``nlist`` cells, ``nprobe`` cells searched);
* ``kind="hnsw"``: ``IndexHNSWFlat`` (graph search, ``M`` links, ``ef_search`` candidates).

Already-seen items are masked by over-fetching: a batch asks faiss for ``k + h`` items, ``h`` the
largest history in the batch, drops the seen ones and keeps the first ``k``. Exact for ``flat``;
for approximate kinds the over-fetched list is itself approximate.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kgrec.errors import KgrecError
from kgrec.evaluation.metrics import check_k
from kgrec.evaluation.rank import csr_rows

__all__ = ["ItemIndex", "build_index", "dot_product_vectors", "recall_at_k", "KINDS"]

KINDS = ("flat", "ivf", "hnsw")


def _faiss():
    try:
        import faiss
    except ImportError as e:
        raise ImportError("kgrec.ann needs faiss: pip install faiss-cpu (or pip install 'kgrec[scale]')") from e
    return faiss


def dot_product_vectors(estimator) -> tuple[Tensor, Tensor]:
    """The frozen user ``[U, d]`` and item ``[I, d]`` vectors of a dot-product model (float32, CPU).

    Raises:
        KgrecError: the model does not score by a dot product (``mostpop``, ``itemknn``, ``ease``).
    """
    if not estimator.scores_by_dot_product:
        raise KgrecError(f"a faiss index needs a model scored by a dot product of user and item vectors "
                         f"(bprmf, lightgcn, cke, hybrid); got '{estimator.name}'")
    u, i = estimator.vectors()
    return u.detach().float().cpu().contiguous(), i.detach().float().cpu().contiguous()


class ItemIndex:
    """A faiss inner-product index over item vectors, with seen-item masking.

    Args:
        item_vectors: ``[I, d]`` item vectors.
        kind: ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"`` (default ``"flat"``).
        nlist: IVF cells (default ``round(4 * sqrt(I))``, at most ``I``).
        nprobe: IVF cells searched per query (default ``16``).
        hnsw_m: HNSW links per node (default ``32``).
        ef_search: HNSW search breadth (default ``128``).
        seed: seed of IVF's k-means (default ``0``).
    """

    def __init__(self, item_vectors: Tensor, kind: str = "flat", nlist: int | None = None, nprobe: int = 16,
                 hnsw_m: int = 32, ef_search: int = 128, seed: int = 0):
        faiss = _faiss()
        if kind not in KINDS:
            raise KgrecError(f"'kind' must be one of {', '.join(KINDS)} (got {kind!r})")
        for name, v in (("nprobe", nprobe), ("hnsw_m", hnsw_m), ("ef_search", ef_search)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise KgrecError(f"'{name}' must be a positive integer (got {v!r})")
        x = item_vectors.detach().float().cpu().contiguous().numpy()
        if x.ndim != 2 or x.shape[0] == 0:
            raise KgrecError(f"'item_vectors' must have shape [I, d] with I > 0 (got {list(x.shape)})")
        self.kind, self.num_items, self.dim = kind, x.shape[0], x.shape[1]
        if kind == "flat":
            index = faiss.IndexFlatIP(self.dim)
        elif kind == "ivf":
            nlist = nlist if nlist is not None else max(1, min(self.num_items, round(4 * self.num_items ** 0.5)))
            if not isinstance(nlist, int) or isinstance(nlist, bool) or not 0 < nlist <= self.num_items:
                raise KgrecError(f"'nlist' must be an integer in [1, {self.num_items}] (got {nlist!r})")
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed
            index.train(x)
            index.nprobe = min(nprobe, nlist)
        else:
            index = faiss.IndexHNSWFlat(self.dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = ef_search
        index.add(x)
        self.index = index
        self.options = {"nlist": nlist, "nprobe": nprobe, "hnsw_m": hnsw_m, "ef_search": ef_search}

    def search(self, user_vectors: Tensor, k: int, seen: tuple[Tensor, Tensor] | None = None,
               users: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The ``k`` best items of each query, best first; seen items dropped when ``seen`` is given.

        Args:
            user_vectors: ``[B, d]`` queries.
            k: items per query (clipped to the catalogue size).
            seen: ``(indptr [U + 1], indices [nnz])`` seen items per user (:func:`kgrec.evaluation.rank.seen_csr`).
            users: ``[B]`` user id of each query (required with ``seen``).

        Returns:
            ``(values [B, k], items [B, k])``; slots with no item left hold ``-inf`` and ``-1``.
        """
        k = min(check_k(k), self.num_items)
        q = user_vectors.detach().float().cpu().contiguous()
        if q.dim() != 2 or q.size(1) != self.dim:
            raise KgrecError(f"'user_vectors' must have shape [B, {self.dim}] (got {list(q.shape)})")
        extra = 0
        if seen is not None:
            if users is None or users.numel() != q.size(0):
                raise KgrecError("'users' must give the user id of each query when 'seen' is given")
            indptr, indices = seen[0].cpu(), seen[1].cpu()
            users = users.long().cpu()
            extra = int((indptr[users + 1] - indptr[users]).max()) if users.numel() else 0
        fetch = min(k + extra, self.num_items)
        dist, ids = self.index.search(q.numpy(), fetch)
        values, items = torch.from_numpy(dist), torch.from_numpy(ids).long()
        drop = items < 0
        if seen is not None and extra:
            rows, cols = csr_rows(indptr, indices, users)
            n = self.num_items
            seen_keys = torch.sort(rows * n + cols).values
            query = torch.arange(q.size(0)).unsqueeze(1) * n + items.clamp(min=0)
            pos = torch.searchsorted(seen_keys, query).clamp(max=max(seen_keys.numel() - 1, 0))
            drop |= seen_keys[pos] == query if seen_keys.numel() else torch.zeros_like(drop)
        values = values.masked_fill(drop, float("-inf"))
        # stable: kept items stay in faiss's best-first order, dropped ones go last
        order = torch.sort(drop.to(torch.int8), dim=1, stable=True).indices[:, :k]
        values, items = values.gather(1, order), items.gather(1, order)
        return values, items.masked_fill(values == float("-inf"), -1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(kind={self.kind!r}, items={self.num_items}, dim={self.dim})"


def build_index(estimator, kind: str = "flat", **options) -> ItemIndex:
    """An :class:`ItemIndex` over a fitted dot-product model's item vectors (``options``: see there)."""
    return ItemIndex(dot_product_vectors(estimator)[1], kind=kind, **options)


def recall_at_k(approx: Tensor, exact: Tensor) -> float:
    """Mean share of the exact top-K found by an approximate top-K (ids ``-1`` never count).

    Shapes: approx, exact ``[B, k]`` item ids.
    """
    hit = (approx.unsqueeze(2) == exact.unsqueeze(1)) & (exact.unsqueeze(1) >= 0)
    n = (exact >= 0).sum(1).clamp(min=1)
    return float((hit.any(1).sum(1) / n).mean()) if exact.numel() else float("nan")
