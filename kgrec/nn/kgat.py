"""KGAT (Wang et al., KDD 2019): attentive propagation over the collaborative knowledge graph."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import softmax

from kgrec.nn.kgraph import project_by_relation
from kgrec.nn.losses import l2_reg
from kgrec.nn.sparse import SparseOperator, SparsePattern, spmm

__all__ = ["KGAT"]


class KGAT(nn.Module):
    r"""Knowledge Graph Attention Network over the collaborative KG (:mod:`kgrec.nn.kgraph` layout).

    Nodes are entities ``[0, E)`` (items first) then users ``[E, E + U)``; an edge ``(h, r, t)``
    (``edge_index[:, m] = (h, t)``, ``edge_type[m] = r``) lets ``h`` gather from ``t``:

    * attention :math:`\pi(h, r, t) = (W_r e_t)^\top \tanh(W_r e_h + e_r)`, softmax-normalised over
      the edges of each head :math:`h` (computed by :meth:`attention`, treated as a constant by the
      recommendation loss, as in the paper's alternating optimisation);
    * bi-interaction aggregator :math:`e^{(l+1)} = \mathrm{LReLU}(W_1 (e + e_N)) +
      \mathrm{LReLU}(W_2 (e \odot e_N))` with :math:`e_N = \sum_t \pi(h, r, t) e_t`, then message
      dropout;
    * final vectors: the concatenation of the ego embedding and every layer's L2-normalised output
      (size ``dim + sum(layers)``);
    * TransR on the CKG triples: :math:`g(h, r, t) = \lVert W_r e_h + e_r - W_r e_t \rVert^2`.

    Args:
        num_users, num_items, num_entities: sizes (items are the first ``num_items`` entities).
        num_edge_types: relation types of the CKG (``2R + 2``).
        dim: ego embedding size (default ``64``).
        relation_dim: TransR relation space (default ``64``).
        layers: output size of each propagation layer (default ``(64, 32, 16)``, the paper's).
        mess_dropout: dropout on each layer's output (default ``0.1``).
    """

    def __init__(self, num_users: int, num_items: int, num_entities: int, num_edge_types: int,
                 dim: int = 64, relation_dim: int = 64, layers: Sequence[int] = (64, 32, 16),
                 mess_dropout: float = 0.1):
        super().__init__()
        if num_entities < num_items:
            raise ValueError(f"'num_entities' must be at least 'num_items' ({num_items}) (got {num_entities})")
        if not layers:
            raise ValueError("'layers' must hold at least one layer size")
        self.num_users, self.num_items, self.num_entities = num_users, num_items, num_entities
        self.num_edge_types, self.dim, self.relation_dim = num_edge_types, dim, relation_dim
        self.layers = list(layers)
        self.node_emb = nn.Embedding(num_entities + num_users, dim)
        self.relation_emb = nn.Embedding(max(num_edge_types, 1), relation_dim)
        self.proj = nn.Parameter(torch.empty(max(num_edge_types, 1), dim, relation_dim))  # W_r
        sizes = [dim] + self.layers
        self.w1 = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.w2 = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = nn.Dropout(mess_dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.node_emb.weight, self.relation_emb.weight, self.proj):
            nn.init.xavier_normal_(p)
        for lin in list(self.w1) + list(self.w2):
            nn.init.xavier_normal_(lin.weight)
            nn.init.zeros_(lin.bias)

    @property
    def out_dim(self) -> int:
        return self.dim + sum(self.layers)

    @torch.no_grad()
    def attention(self, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """``[M]`` attention weights of the edges, softmax over each head's edges (no gradient).

        Computed one relation type at a time, projecting only that type's heads and tails, so the
        peak memory is ``O(M (d + k))`` rather than ``O(M d k)``.
        """
        head, tail = edge_index
        x = self.node_emb.weight
        logits = torch.empty(edge_type.numel(), device=x.device, dtype=torch.float32)
        for r in torch.unique(edge_type).tolist():
            m = (edge_type == r).nonzero().squeeze(1)
            w = self.proj[r]
            h = x[head[m]] @ w
            t = x[tail[m]] @ w
            logits[m] = (t * torch.tanh(h + self.relation_emb.weight[r])).sum(-1).float()
        return softmax(logits, head, num_nodes=x.shape[0])

    def propagation(self, pattern: SparsePattern, attention: Tensor) -> SparseOperator:
        """The ``[N, N]`` operator :meth:`forward` aggregates with: entry ``(h, t)`` the attention of
        edge ``(h, r, t)`` (summed over relations). ``pattern``: :meth:`pattern` of the edges;
        attention ``[M]`` (a constant of the loss).
        """
        return pattern.operator(attention.to(self.node_emb.weight.dtype))

    def pattern(self, edge_index: Tensor) -> SparsePattern:
        """The sparse pattern of the CKG edges ``[2, M]`` (heads gather from tails)."""
        n = self.node_emb.num_embeddings
        return SparsePattern(edge_index[0], edge_index[1], (n, n))

    def forward(self, propagation: SparseOperator) -> tuple[Tensor, Tensor]:
        """Propagate; returns user vectors ``[U, out_dim]`` and item vectors ``[I, out_dim]``.

        ``propagation``: :meth:`propagation` of the current attention: ``e_N = A @ e`` is the
        attention-weighted sum over each head's edges, as one sparse product.
        """
        x = self.node_emb.weight
        outs = [x]
        for w1, w2 in zip(self.w1, self.w2):
            side = spmm(propagation, x).to(x.dtype)
            x = F.leaky_relu(w1(x + side)) + F.leaky_relu(w2(x * side))
            x = self.dropout(x)
            outs.append(F.normalize(x, p=2, dim=1))
        z = torch.cat(outs, 1)
        E = self.num_entities
        return z[E:E + self.num_users], z[: self.num_items]

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        """Ego embeddings a batch touches (for L2): user rows ``[B, d]``, item rows ``[B, d]``."""
        return [self.node_emb(users + self.num_entities), self.node_emb(items)]

    def transr(self, head: Tensor, rel: Tensor, *tails: Tensor) -> tuple[Tensor, ...]:
        """Projected ``W_r e_h + e_r`` ``[B, k]`` and each ``W_r e_t`` ``[B, k]``."""
        p = project_by_relation(self.node_emb(torch.stack((head,) + tails)), rel, self.proj)  # [V, B, k]
        return (p[0] + self.relation_emb(rel),) + tuple(p[1:].unbind(0))

    def kg_loss(self, head: Tensor, rel: Tensor, tail: Tensor, neg_tail: Tensor, reg: float = 0.0) -> Tensor:
        """TransR pairwise loss ``softplus(g(h,r,t) - g(h,r,t'))`` (mean) + ``reg`` x L2 of the
        projected vectors (RecBole's KGAT). Shapes: ``[B]`` each -> scalar.
        """
        h, t, nt = self.transr(head, rel, tail, neg_tail)
        pos = (h - t).pow(2).sum(-1)
        neg = (h - nt).pow(2).sum(-1)
        loss = F.softplus(pos - neg).mean()
        if reg:
            loss = loss + reg * l2_reg(h, t, nt)
        return loss

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.num_users}, {self.num_items}, entities={self.num_entities}, "
                f"edge_types={self.num_edge_types}, dim={self.dim}, relation_dim={self.relation_dim}, "
                f"layers={self.layers})")
