"""Uniform L-hop neighbour sampling for mini-batch message passing, in plain torch.

Why our own sampler: PyG 2.8's ``NeighborLoader`` / ``torch_geometric.sampler.NeighborSampler``
has no pure-torch path; without ``pyg-lib`` or ``torch-sparse`` (neither installable from PyPI for
this torch build) it raises ``ImportError: 'NeighborSampler' requires either 'pyg-lib' or
'torch-sparse'`` (checked with torch_geometric 2.8.1, torch 2.13 CPU). This module needs only torch.

How a batch is sampled (GraphSAGE-style, Hamilton et al., NeurIPS 2017): the seed nodes form hop 0;
every node reached for the first time at hop ``h < L`` gets up to ``fanouts[h]`` neighbours drawn
uniformly without replacement (Floyd's algorithm, vectorised over nodes: a Python loop over the
``fanout`` draws only, never over nodes); neighbours not seen before form hop ``h + 1``. Local ids
are given in hop order, so the nodes within ``h`` hops are the prefix ``[:hop_sizes[h]]``, and
``L`` rounds of propagation over the sampled edges give exact layer-``l`` states on the prefix
``[:hop_sizes[L - l]]`` (seeds included for every ``l``).

Edge weights reproduce LightGCN's ``D^{-1/2} A D^{-1/2}`` with the *full* graph's degrees, times
``deg(v) / k(v)`` for a node ``v`` that kept ``k(v)`` of its ``deg(v)`` neighbours: the sampled sum
is then an unbiased estimate of the full sum at every node, and exactly the full sum when the
fanout is at least the degree. (Normalising by sampled degrees instead would change the operator
the model is trained with from the one it is served with.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from kgrec.errors import KgrecError

__all__ = ["Subgraph", "NeighborSampler", "csr_adjacency"]


def csr_adjacency(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """Neighbour lists of a graph as CSR (duplicates merged, neighbours sorted).

    Args:
        edge_index: ``[2, M]`` long (source, target); row ``v`` lists the sources of edges into ``v``.
        num_nodes: number of nodes.

    Returns:
        ``(indptr [num_nodes + 1], indices [nnz])`` long.
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise KgrecError(f"'edge_index' must have shape [2, M] (got {list(edge_index.shape)})")
    src, dst = edge_index.long().cpu()
    if src.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise KgrecError(f"'edge_index' ids must lie in [0, {num_nodes}) "
                         f"(got range [{int(edge_index.min())}, {int(edge_index.max())}])")
    key = torch.unique(dst * num_nodes + src)  # sorted by (target, source), duplicates merged
    indptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    indptr[1:] = torch.cumsum(torch.bincount(key // num_nodes, minlength=num_nodes), 0)
    return indptr, key % num_nodes


@dataclass
class Subgraph:
    """A sampled L-hop subgraph with compact local ids.

    Attributes:
        nodes: ``[n]`` global id of each local node; hop ``h`` nodes are ``[:hop_sizes[h]]``.
        hop_sizes: ``L + 1`` cumulative node counts (``hop_sizes[0]`` = distinct seeds).
        edge_index: ``[2, E]`` local (source, target) messages sorted by target; every target is
            within ``L - 1`` hops, every source of a hop-``h`` target within ``h + 1`` hops.
        edge_weight: ``[E]`` float32 weights (see the module docstring).
        seed_local: ``[B]`` local id of each seed as given (duplicates share a local id).
    """

    nodes: Tensor
    hop_sizes: tuple[int, ...]
    edge_index: Tensor
    edge_weight: Tensor
    seed_local: Tensor

    @property
    def num_nodes(self) -> int:
        return self.nodes.numel()

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)


def check_fanouts(fanouts: Sequence[int]) -> tuple[int, ...]:
    """``fanouts`` as a tuple of positive ints, or a :class:`KgrecError` naming the argument."""
    try:
        out = tuple(fanouts)
    except TypeError:
        raise KgrecError(f"'fanouts' must be a sequence of positive integers, one per layer (got {fanouts!r})")
    if not out or any(not isinstance(f, int) or isinstance(f, bool) or f <= 0 for f in out):
        raise KgrecError(f"'fanouts' must be a non-empty sequence of positive integers, one per layer "
                         f"(got {fanouts!r})")
    return out


class NeighborSampler:
    """Samples the L-hop neighbourhood of seed nodes, ``fanouts[h]`` neighbours per node at hop ``h``.

    Args:
        indptr: ``[N + 1]`` long CSR row pointers (:func:`csr_adjacency`).
        indices: ``[nnz]`` long neighbour ids.
        fanouts: neighbours kept per node at each hop, e.g. ``(10, 10, 10)`` for 3 layers.
        seed: seed of the sampler's generator (default ``0``).

    The sampler holds one ``[N]`` long scratch array (global -> local id), allocated once; the
    memory of a sample is bounded by ``B * (1 + f_0 + f_0 f_1 + ...)`` nodes for ``B`` seeds,
    whatever the graph's size.
    """

    def __init__(self, indptr: Tensor, indices: Tensor, fanouts: Sequence[int], seed: int = 0):
        self.fanouts = check_fanouts(fanouts)
        self.indptr = indptr.long().cpu()
        self.indices = indices.long().cpu()
        self.num_nodes = self.indptr.numel() - 1
        self.degree = self.indptr.diff()
        self.inv_sqrt = self.degree.float().pow(-0.5).masked_fill_(self.degree == 0, 0.0)
        self.generator = torch.Generator().manual_seed(seed)
        self._local = torch.full((self.num_nodes,), -1, dtype=torch.long)

    def _draw(self, nodes: Tensor, fanout: int) -> tuple[Tensor, Tensor]:
        """Up to ``fanout`` distinct neighbours of each node, uniformly (Floyd's algorithm).

        Shapes: nodes ``[n]`` -> ``(target [E], source [E])`` global ids, ``target`` repeating ``nodes``.
        """
        deg = self.degree[nodes]
        start = self.indptr[nodes]
        full = deg <= fanout
        # nodes with few neighbours keep all of them
        t_full = torch.repeat_interleave(nodes[full], deg[full])
        first = torch.cumsum(deg[full], 0) - deg[full]
        offs = torch.arange(t_full.numel()) - torch.repeat_interleave(first, deg[full])
        s_full = self.indices[torch.repeat_interleave(start[full], deg[full]) + offs]
        big, d = nodes[~full], deg[~full]
        if big.numel() == 0:
            return t_full, s_full
        # Floyd: for j = d-k .. d-1 draw t in [0, j]; take t unless already taken, else j
        pick = torch.empty(big.numel(), fanout, dtype=torch.long)
        for i in range(fanout):
            j = d - fanout + i
            t = (torch.rand(big.numel(), generator=self.generator) * (j + 1)).long().clamp_(max=j)
            taken = (pick[:, :i] == t.unsqueeze(1)).any(1) if i else torch.zeros_like(t, dtype=torch.bool)
            pick[:, i] = torch.where(taken, j, t)
        s_big = self.indices[(start[~full].unsqueeze(1) + pick).view(-1)]
        return torch.cat([t_full, big.repeat_interleave(fanout)]), torch.cat([s_full, s_big])

    def sample(self, seeds: Tensor) -> Subgraph:
        """Sample the subgraph around ``seeds`` ``[B]`` (global ids, duplicates allowed)."""
        seeds = seeds.long().cpu().view(-1)
        if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= self.num_nodes):
            raise KgrecError(f"'seeds' must be node ids in [0, {self.num_nodes}) "
                             f"(got range [{int(seeds.min())}, {int(seeds.max())}])")
        uniq, seed_local = torch.unique(seeds, return_inverse=True)
        local = self._local
        local[uniq] = torch.arange(uniq.numel())
        parts, sizes, frontier = [uniq], [uniq.numel()], uniq
        dsts, srcs = [], []
        try:
            for fanout in self.fanouts:
                dst, src = self._draw(frontier, fanout)
                fresh = torch.unique(src[local[src] < 0])  # sorted: ids are deterministic
                local[fresh] = torch.arange(sizes[-1], sizes[-1] + fresh.numel())
                parts.append(fresh)
                sizes.append(sizes[-1] + fresh.numel())
                dsts.append(dst)
                srcs.append(src)
                frontier = fresh
            nodes = torch.cat(parts)
            dst, src = torch.cat(dsts), torch.cat(srcs)
            # LightGCN weight with full-graph degrees, scaled by deg / kept for sampled rows
            kept = torch.bincount(local[dst], minlength=nodes.numel())[local[dst]].float()
            weight = self.inv_sqrt[dst] * self.inv_sqrt[src] * (self.degree[dst].float() / kept)
            order = torch.sort(local[dst], stable=True).indices  # targets ascending: hop prefixes are edge prefixes
            edge_index = torch.stack([local[src], local[dst]])[:, order]
            weight = weight[order]
        finally:
            local[torch.cat(parts)] = -1  # reset only what this sample touched
        return Subgraph(nodes, tuple(sizes), edge_index, weight, seed_local)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_nodes={self.num_nodes}, fanouts={self.fanouts})"
