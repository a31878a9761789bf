"""Helpers shared by the KG peers (:mod:`kgrec.nn.kgat`, :mod:`kgrec.nn.kgin`).

Both models read the same graph: the collaborative knowledge graph of
:func:`kgrec.data.graph.collaborative_edges` built from the item KG and the *training* interactions
only. Node ids: entities ``[0, E)`` (items are entities ``[0, I)``) then users ``[E, E + U)``. Edge
types: ``2r`` / ``2r + 1`` for KG relation ``r`` and its inverse, ``2R`` (user -> item, "interact")
and ``2R + 1`` (item -> user). ``edge_index[:, m] = (h, t)`` is the triple ``(h, type[m], t)``.

Only ``torch`` and ``torch_geometric.utils`` are used by the models (full-graph message passing).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from kgrec.data.graph import Interactions, collaborative_edges

__all__ = ["ckg_context", "add_ckg_context", "kg_part", "interaction_part", "keep_mask", "project_by_relation"]


def ckg_context(kg, train) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The collaborative KG of ``kg`` and the training interactions ``train``, as context tensors.

    Duplicate training pairs are merged (a repeated interaction is one edge).

    Returns:
        ``({"ckg_edge_index": [2, M] long, "ckg_edge_type": [M] long}, {"num_nodes", "num_edge_types"})``.
    """
    pairs = torch.unique(torch.stack([train.user.long(), train.item.long()], 1), dim=0)
    uniq = Interactions.from_lists(pairs[:, 0].numpy(), pairs[:, 1].numpy())
    ei, et, n, types = collaborative_edges(kg, uniq)
    return ({"ckg_edge_index": ei.long().contiguous(), "ckg_edge_type": et.long().contiguous()},
            {"num_nodes": int(n), "num_edge_types": int(types)})


def add_ckg_context(est, kg, train) -> None:
    """Give an estimator (KGAT, KGIN) the collaborative KG of ``kg`` and ``train`` (the training
    interactions only): the :func:`ckg_context` tensors go to ``est.context``, the node, edge-type,
    entity and relation counts to ``est.meta``.
    """
    ctx, sizes = ckg_context(kg, train)
    est.context.update(ctx)
    est.meta.update(num_entities=kg.num_entities, num_relations=kg.num_relations, **sizes)


def kg_part(edge_index: Tensor, edge_type: Tensor, num_relations: int) -> tuple[Tensor, Tensor]:
    """The KG edges (both directions, types ``[0, 2R)``) of a collaborative KG."""
    m = edge_type < 2 * num_relations
    return edge_index[:, m], edge_type[m]


def interaction_part(edge_index: Tensor, edge_type: Tensor, num_relations: int,
                     num_entities: int) -> tuple[Tensor, Tensor]:
    """The training pairs (user ids ``[0, U)``, item ids) of a collaborative KG's user -> item edges."""
    m = edge_type == 2 * num_relations
    return edge_index[0, m] - num_entities, edge_index[1, m]


def keep_mask(n: int, rate: float, device) -> Tensor | None:
    """A random ``[n]`` bool mask keeping each edge with probability ``1 - rate``; ``None`` if ``rate`` is 0."""
    if rate <= 0 or n == 0:
        return None
    return torch.rand(n, device=device) >= rate


def project_by_relation(x: Tensor, rel: Tensor, weight: Tensor) -> Tensor:
    """TransR's projection ``x[:, b] @ weight[rel[b]]`` of a batch, one matrix product per relation.

    Gathering ``weight[rel]`` (``[B, d, k]``) for a batched product reads and writes a ``B x d x k``
    tensor each way and dominated KGAT's and CKE's training steps when profiled; grouping the batch
    by relation multiplies each group by its matrix in place.

    Shapes: x ``[V, B, d]`` (``V`` vectors per triple: head, tails), rel ``[B]``, weight
    ``[R, d, k]`` -> ``[V, B, k]``.
    """
    order = torch.argsort(rel)
    sizes = torch.bincount(rel, minlength=weight.size(0)).tolist()
    xs = x.index_select(1, order)
    # unbind (not weight[r]) keeps the backward to one stack instead of R zero-filled gradients
    parts = [chunk @ w for chunk, w in zip(xs.split(sizes, dim=1), weight.unbind(0)) if chunk.size(1)]
    out = torch.cat(parts, 1)
    return torch.empty_like(out).index_copy(1, order, out)
