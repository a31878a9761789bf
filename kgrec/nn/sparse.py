"""Sparse-dense products with a precomputed transpose, for full-graph message passing on CPU.

``torch.sparse.mm``'s backward builds the transpose of the sparse matrix on every call, which
dominated a training step when profiled. A graph is fixed during training, so its transpose is
computed once by the caller and reused here.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

__all__ = ["SparseOperator", "SparsePattern", "spmm", "sparse_mm", "gcn_adjacency"]


def _csr(index: Tensor, value: Tensor, size: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        coo = torch.sparse_coo_tensor(index, value, size, check_invariants=False).coalesce()
        return coo.to_sparse_csr()


class SparseOperator:
    """A constant sparse matrix ``A`` ``[n, m]`` with its transpose, both in CSR.

    Args:
        index: ``[2, nnz]`` (row, column) positions; duplicates are summed.
        value: ``[nnz]`` entries.
        size: ``(n, m)``.
    """

    def __init__(self, index: Tensor, value: Tensor, size: tuple[int, int]):
        self.size = size
        self.a = _csr(index, value, size)
        self.a_t = _csr(index.flip(0), value, (size[1], size[0]))

    @property
    def device(self) -> torch.device:
        return self.a.device

    def to(self, device) -> "SparseOperator":
        out = object.__new__(SparseOperator)
        out.size, out.a, out.a_t = self.size, self.a.to(device), self.a_t.to(device)
        return out

    @classmethod
    def from_csr(cls, a: Tensor, a_t: Tensor) -> "SparseOperator":
        """An operator from a CSR matrix and its CSR transpose, built by the caller."""
        out = object.__new__(cls)
        out.size, out.a, out.a_t = tuple(a.shape), a, a_t
        return out

    def __matmul__(self, x: Tensor) -> Tensor:
        return spmm(self, x)


def _crow(rows: Tensor, n: int) -> Tensor:
    """CSR row pointers ``[n + 1]`` of sorted row ids."""
    crow = torch.zeros(n + 1, dtype=torch.long, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n), 0)
    return crow


class SparsePattern:
    """The fixed positions of a ``[n, m]`` sparse matrix whose entries change between calls.

    Message passing over a fixed edge list with weights that change during training (KGAT's
    attention, once per epoch; the per-step means of KGIN's node dropout) as a sparse product:
    ``gather rows -> scale -> scatter`` allocates two ``[M, d]`` tensors each way and dominated a
    training step when profiled, while the CSR product reads ``x`` in place. Sorting the edges into
    CSR order (and the transpose's order) is done once here; :meth:`operator` then fills in the
    values in ``O(nnz)``.

    Args:
        row, col: ``[M]`` positions of the edges; repeated positions are summed.
        size: ``(n, m)``.
    """

    def __init__(self, row: Tensor, col: Tensor, size: tuple[int, int]):
        n, m = size
        self.size = (int(n), int(m))
        key, self.slot = torch.unique(row.long() * m + col.long(), sorted=True, return_inverse=True)  # [nnz], [M]
        r, c = torch.div(key, m, rounding_mode="floor"), key % m
        self.crow, self.col = _crow(r, n), c
        self.order_t = torch.argsort(c * n + r)  # entries in the transpose's row-major order
        self.crow_t, self.col_t = _crow(c[self.order_t], m), r[self.order_t]

    @property
    def nnz(self) -> int:
        return int(self.col.numel())

    def operator(self, value: Tensor) -> SparseOperator:
        """The matrix with edge ``k`` holding ``value[k]`` (``[M]``, no gradient), as a
        :class:`SparseOperator`.
        """
        v = torch.zeros(self.nnz, dtype=value.dtype, device=value.device).index_add_(0, self.slot, value.detach())
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
            a = torch.sparse_csr_tensor(self.crow, self.col, v, self.size, check_invariants=False)
            a_t = torch.sparse_csr_tensor(self.crow_t, self.col_t, v[self.order_t], self.size[::-1],
                                          check_invariants=False)
        return SparseOperator.from_csr(a, a_t)


def sparse_mm(a: Tensor, x: Tensor) -> Tensor:
    """``a @ x`` in ``a``'s dtype with autocast off: under CUDA autocast ``torch.sparse.mm`` would
    cast the dense side to bf16 while the sparse side stays fp32, a pair cuSPARSE rejects.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        return torch.sparse.mm(a, x.to(a.dtype))


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, op: SparseOperator) -> Tensor:
        ctx.op = op
        return sparse_mm(op.a, x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return sparse_mm(ctx.op.a_t, grad), None


def spmm(op: SparseOperator, x: Tensor) -> Tensor:
    """``A @ x`` with gradient ``A^T @ grad`` w.r.t. ``x``. Shapes: x ``[m, d]`` -> ``[n, d]``."""
    if x.dtype != op.a.dtype:  # autocast may hand us bf16 states; keep the sparse product in fp32
        x = x.to(op.a.dtype)
    return _SpMM.apply(x, op)


def gcn_adjacency(edge_index: Tensor, num_nodes: int) -> SparseOperator:
    r"""Symmetrically normalised adjacency :math:`D^{-1/2} A D^{-1/2}` of ``edge_index`` ``[2, M]``
    (duplicates merged, no self-loops), LightGCN's propagation matrix, with messages
    ``edge_index[0] -> edge_index[1]``.
    """
    key = torch.unique(edge_index[1] * num_nodes + edge_index[0])
    dst, src = key // num_nodes, key % num_nodes
    deg = torch.bincount(dst, minlength=num_nodes).to(torch.float32)
    inv = deg.pow(-0.5).masked_fill_(deg == 0, 0.0)
    return SparseOperator(torch.stack([dst, src]), inv[dst] * inv[src], (num_nodes, num_nodes))
