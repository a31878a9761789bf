"""Message passing restricted to a sampled L-hop subgraph (mini-batch training).

The subgraph's nodes come in hop order (see :mod:`kgrec.data.subgraph`), so layer ``l`` only needs
states on the prefix of nodes within ``L - l`` hops, and the edges into that prefix are a prefix of
the edge list: each layer is one sparse-dense product over that prefix
(:class:`kgrec.nn.sparse.SparseOperator`, whose backward pass is the product with its transpose).
A gather of per-edge messages and an ``index_add`` compute the same thing, but autograd then keeps
an ``[E, d]`` message tensor per layer, while the sparse product keeps ``E`` weights instead of
``E x d`` messages and was faster per forward + backward when the two were profiled.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kgrec.nn.sparse import SparseOperator, spmm

__all__ = ["propagate_sampled"]


def propagate_sampled(x: Tensor, edge_index: Tensor, edge_weight: Tensor, hop_sizes: tuple[int, ...],
                      alpha: Tensor) -> Tensor:
    r"""LightGCN's :math:`\sum_l \alpha_l \tilde{A}^l x` evaluated at the seed nodes only.

    Args:
        x: ``[n, d]`` layer-0 states of the subgraph's nodes (hop order).
        edge_index: ``[2, E]`` local (source, target), targets in hop order.
        edge_weight: ``[E]`` weight of each message.
        hop_sizes: ``L + 1`` cumulative node counts per hop.
        alpha: ``[L + 1]`` layer weights.

    Returns:
        ``[hop_sizes[0], d]``.
    """
    L = len(hop_sizes) - 1
    n0 = hop_sizes[0]
    src, dst = edge_index
    w = edge_weight.float()
    out = x[:n0] * alpha[0]
    for layer in range(1, L + 1):
        m = hop_sizes[L - layer]
        e = int(torch.searchsorted(dst, torch.tensor(m, device=dst.device)))  # targets are non-decreasing
        op = SparseOperator(torch.stack([dst[:e], src[:e]]), w[:e], (m, x.size(0)))  # [m, n] targets x sources
        x = spmm(op, x).to(out.dtype)
        out = out + x[:n0] * alpha[layer]
    return out
