"""KGIN (Wang et al., WWW 2021): user intents over relations and relational path-aware aggregation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.nn.kgraph import keep_mask
from kgrec.nn.sparse import SparsePattern, spmm

__all__ = ["KGIN", "KGINGraph", "INDEPENDENCE"]

#: The independence losses between intents :class:`KGIN` offers.
INDEPENDENCE = ("cosine", "distance")


class KGIN(nn.Module):
    r"""Knowledge Graph-based Intent Network.

    * **Intents.** Intent :math:`p` is an attentive combination of the KG relation embeddings,
      :math:`e_p = \sum_r \mathrm{softmax}_r(w_{pr}) e_r` (``num_intents`` of them).
    * **Entity aggregation** (relational path-aware): :math:`e_h^{(l+1)} = \mathrm{mean}_{(h,r,t)}
      e_r \odot e_t^{(l)}` over the KG edges (both directions, inverse relations their own type).
    * **User aggregation** over intents: :math:`e_u^{(l+1)} = (1 + \sum_p \beta(u, p) e_p) \odot
      \mathrm{mean}_{i \in N_u} e_i^{(l)}` with :math:`\beta(u, \cdot) =
      \mathrm{softmax}_p(e_u^{(l)\top} q_p)` (``q_p`` a free intent query, as in the authors' code).
    * Each layer's output gets message dropout and L2 normalisation; the final vectors are the sum
      of the ego embedding and all ``num_layers`` outputs.
    * **Independence** of the intents' relation weights :math:`w_p`: ``"cosine"`` (sum of squared
      cosine similarities of pairs) or ``"distance"`` (sum of distance correlations of pairs).
    * **Node dropout**: in training, each KG edge and each user-item edge is dropped with
      probability ``node_dropout`` (means are over the kept edges).

    Args:
        num_users, num_items, num_entities: sizes (items are the first ``num_items`` entities).
        num_relations: KG edge types (``2R``: relations and their inverses).
        dim: embedding size (default ``64``).
        num_layers: propagation layers (context hops, default ``3``).
        num_intents: user intents (default ``4``).
        node_dropout, mess_dropout: dropout rates (default ``0.1`` each).
        independence: ``"cosine"`` or ``"distance"`` (default ``"cosine"``).
    """

    def __init__(self, num_users: int, num_items: int, num_entities: int, num_relations: int, dim: int = 64,
                 num_layers: int = 3, num_intents: int = 4, node_dropout: float = 0.1,
                 mess_dropout: float = 0.1, independence: str = "cosine"):
        super().__init__()
        if num_entities < num_items:
            raise ValueError(f"'num_entities' must be at least 'num_items' ({num_items}) (got {num_entities})")
        if num_intents < 1 or num_layers < 1:
            raise ValueError("'num_intents' and 'num_layers' must be >= 1")
        if independence not in INDEPENDENCE:
            raise ValueError(f"'independence' must be one of {INDEPENDENCE} (got {independence!r})")
        self.num_users, self.num_items, self.num_entities = num_users, num_items, num_entities
        self.num_relations, self.dim, self.num_layers = num_relations, dim, num_layers
        self.num_intents, self.node_dropout, self.independence = num_intents, node_dropout, independence
        self.user_emb = nn.Embedding(num_users, dim)
        self.entity_emb = nn.Embedding(num_entities, dim)
        self.relation_emb = nn.Embedding(max(num_relations, 1), dim)
        self.intent_query = nn.Embedding(num_intents, dim)
        self.intent_att = nn.Parameter(torch.empty(num_intents, max(num_relations, 1)))
        self.dropout = nn.Dropout(mess_dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.user_emb.weight, self.entity_emb.weight, self.relation_emb.weight,
                  self.intent_query.weight, self.intent_att):
            nn.init.xavier_uniform_(p)

    def intents(self) -> Tensor:
        """``[K, d]`` intent embeddings: softmax-weighted sums of the relation embeddings."""
        return torch.softmax(self.intent_att, -1) @ self.relation_emb.weight

    def graph(self, kg_edge_index: Tensor, kg_edge_type: Tensor, ui_user: Tensor, ui_item: Tensor) -> "KGINGraph":
        """The sparse patterns :meth:`forward` propagates over, built once per graph.

        Shapes: kg_edge_index ``[2, M]`` (entity ids; ``h`` gathers from ``t``), kg_edge_type ``[M]``,
        ui_user / ui_item ``[N]`` training pairs.
        """
        head, tail = kg_edge_index
        E = self.num_entities
        # (head, relation) pairs: the relation's vector scales the sum of a pair's tails once,
        # instead of once per edge.
        pair_key, pair = torch.unique(kg_edge_type * E + head, return_inverse=True)
        return KGINGraph(kg_head=head, ui_user=ui_user,
                         pair_rel=torch.div(pair_key, E, rounding_mode="floor"), pair_dst=pair_key % E,
                         kg=SparsePattern(pair, tail, (pair_key.numel(), E)),
                         ui=SparsePattern(ui_user, ui_item, (self.num_users, E)))

    def forward(self, graph: "KGINGraph") -> tuple[Tensor, Tensor]:
        """Returns user vectors ``[U, d]`` and item vectors ``[I, d]``; ``graph`` from :meth:`graph`.

        Node dropout draws one keep mask over the KG edges, then one over the user-item edges, and
        every mean is over the kept edges (a node left with none aggregates to zero).
        """
        kg_keep = ui_keep = None
        if self.training and self.node_dropout > 0:
            kg_keep = keep_mask(graph.kg_head.numel(), self.node_dropout, graph.kg_head.device)
            ui_keep = keep_mask(graph.ui_user.numel(), self.node_dropout, graph.ui_user.device)
        dtype = self.entity_emb.weight.dtype
        kg = graph.kg.operator(_mean_weights(graph.kg_head, kg_keep, self.num_entities, dtype))
        ui = graph.ui.operator(_mean_weights(graph.ui_user, ui_keep, self.num_users, dtype))
        rel = self.relation_emb.weight
        intents = self.intents()  # [K, d]
        e, u = self.entity_emb.weight, self.user_emb.weight
        e_sum, u_sum = e, u
        for _ in range(self.num_layers):
            by_pair = spmm(kg, e) * rel.index_select(0, graph.pair_rel)  # [P, d]
            e_next = torch.zeros_like(e).index_add(0, graph.pair_dst, by_pair.to(e.dtype))
            agg = spmm(ui, e).to(e.dtype)  # [U, d]
            beta = torch.softmax(u @ self.intent_query.weight.t(), -1)  # [U, K]
            u_next = (beta @ intents) * agg + agg
            e = F.normalize(self.dropout(e_next), p=2, dim=1)
            u = F.normalize(self.dropout(u_next), p=2, dim=1)
            e_sum, u_sum = e_sum + e, u_sum + u
        return u_sum, e_sum[: self.num_items]

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        """Ego embeddings a batch touches (for L2): user rows ``[B, d]``, item rows ``[B, d]``."""
        return [self.user_emb(users), self.entity_emb(items)]

    def independence_loss(self) -> Tensor:
        """Sum over intent pairs of their dependence (``independence``); ``0`` with one intent."""
        w = self.intent_att
        k = w.shape[0]
        if k < 2:
            return w.sum() * 0.0
        iu = torch.triu_indices(k, k, 1, device=w.device)
        if self.independence == "cosine":
            n = F.normalize(w, p=2, dim=1)
            return (n @ n.t())[iu[0], iu[1]].pow(2).sum()
        # distance correlation of each pair of rows (each row a sample of R values)
        r = w.shape[1]
        a = torch.sqrt((w.unsqueeze(2) - w.unsqueeze(1)).pow(2) + 1e-8)  # [K, R, R]
        a = a - a.mean(1, keepdim=True) - a.mean(2, keepdim=True) + a.mean((1, 2), keepdim=True)
        g = torch.einsum("kab,lab->kl", a, a) / (r * r)
        dcov = torch.sqrt(g.clamp_min(0) + 1e-8)
        d = torch.diagonal(dcov)
        dcor = dcov / torch.sqrt(d.unsqueeze(1) * d.unsqueeze(0) + 1e-8)
        return dcor[iu[0], iu[1]].sum()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.num_users}, {self.num_items}, entities={self.num_entities}, "
                f"relations={self.num_relations}, dim={self.dim}, layers={self.num_layers}, "
                f"intents={self.num_intents}, independence={self.independence!r})")


@dataclass
class KGINGraph:
    """What :meth:`KGIN.forward` propagates over (built by :meth:`KGIN.graph`, never saved).

    ``kg``: ``[P, E]`` pattern of the KG edges grouped by (head, relation) pair ``p`` (relation
    ``pair_rel[p]``, head ``pair_dst[p]``); ``ui``: ``[U, E]`` pattern of the user -> item edges;
    ``kg_head`` ``[M]`` and ``ui_user`` ``[N]``: each edge's aggregating node, for the means.
    """

    kg_head: Tensor
    ui_user: Tensor
    pair_rel: Tensor
    pair_dst: Tensor
    kg: SparsePattern
    ui: SparsePattern


def _mean_weights(row: Tensor, keep: Tensor | None, n: int, dtype: torch.dtype) -> Tensor:
    """``[M]`` weights ``keep_m / (kept edges of row_m)``: a row-mean over the kept edges."""
    w = torch.ones(row.numel(), dtype=dtype, device=row.device) if keep is None else keep.to(dtype)
    deg = torch.zeros(n, dtype=dtype, device=row.device).index_add_(0, row, w)
    return w / deg.clamp_min(1.0).index_select(0, row)
