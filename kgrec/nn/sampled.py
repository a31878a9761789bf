"""Message passing restricted to a sampled L-hop subgraph (mini-batch training).

The subgraph's nodes come in hop order (see :mod:`kgrec.data.subgraph`), so layer ``l`` only needs
states on the prefix of nodes within ``L - l`` hops, and the edges into that prefix are a prefix of
the edge list: each layer is one gather and one ``index_add`` over that prefix, plain autograd,
no sparse tensor (so no sparse transpose in the backward pass).
"""

from __future__ import annotations

import torch
from torch import Tensor

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
    w = edge_weight.to(x.dtype).unsqueeze(1)  # [E, 1]
    out = x[:n0] * alpha[0]
    for layer in range(1, L + 1):
        m = hop_sizes[L - layer]
        e = int(torch.searchsorted(dst, torch.tensor(m, device=dst.device)))  # targets are non-decreasing
        x = x.new_zeros(m, x.size(1)).index_add(0, dst[:e], x[src[:e]] * w[:e])
        out = out + x[:n0] * alpha[layer]
    return out
