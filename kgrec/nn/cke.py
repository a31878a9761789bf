"""CKE: matrix factorisation whose item vectors include a TransR embedding of the item's KG entity."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.nn.kgraph import project_by_relation

__all__ = ["CKE"]


class CKE(nn.Module):
    r"""Collaborative Knowledge base Embedding (Zhang et al., KDD 2016), structural part.

    Item ``j`` is scored by :math:`u_i^\top (\eta_j + e_j)` where :math:`\eta_j` is a free offset and
    :math:`e_j` the embedding of the item's entity (items are entities ``[0, I)``), learnt jointly by
    TransR on the KG triples: :math:`f_r(h, t) = \lVert \bar{e_h M_r} + \bar{r} - \bar{e_t M_r} \rVert_2^2`
    (bars: L2-normalised, as in RecBole's CKE), lower for true triples. The paper's textual and
    visual parts are left out (as in RecBole's CKE). Every table starts Xavier-normal (RecBole's).

    Args:
        num_users: number of users.
        num_items: number of items (the first ``num_items`` entities).
        num_entities: number of KG entities, items included.
        num_relations: number of KG relations.
        dim: user / item / entity embedding size (default ``64``).
        relation_dim: TransR relation space size (default ``64``).
    """

    def __init__(self, num_users: int, num_items: int, num_entities: int, num_relations: int,
                 dim: int = 64, relation_dim: int = 64):
        super().__init__()
        if num_entities < num_items:
            raise ValueError(f"'num_entities' must be at least 'num_items' ({num_items}) since items are "
                             f"entities (got {num_entities})")
        self.num_users = num_users
        self.num_items = num_items
        self.num_entities = num_entities
        self.num_relations = num_relations
        self.dim = dim
        self.relation_dim = relation_dim
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        self.entity_emb = nn.Embedding(num_entities, dim)
        self.relation_emb = nn.Embedding(max(num_relations, 1), relation_dim)
        # one projection M_r per relation, stored flat: [R, d * k]
        self.proj = nn.Embedding(max(num_relations, 1), dim * relation_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # RecBole's CKE: Xavier-normal on every table as stored (the projections flat, [R, d * k])
        for emb in (self.user_emb, self.item_emb, self.entity_emb, self.relation_emb, self.proj):
            nn.init.xavier_normal_(emb.weight)

    def forward(self) -> tuple[Tensor, Tensor]:
        """Returns user vectors ``[U, d]`` and item vectors ``[I, d]`` (offset + entity embedding)."""
        return self.user_emb.weight, self.item_emb.weight + self.entity_emb.weight[: self.num_items]

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        """The free parameters touched by a batch (for L2 regularisation): user rows ``[B, d]`` and
        the item rows' offset and entity embedding side by side ``[B, 2d]``.
        """
        return [self.user_emb(users), torch.cat([self.item_emb(items), self.entity_emb(items)], -1)]

    def kg_distance(self, head: Tensor, rel: Tensor, *tails: Tensor) -> Tensor | tuple[Tensor, ...]:
        """TransR distance :math:`f_r(h, t)` of triples, for one or more tails (sharing the projection).

        Shapes: head ``[B]``, rel ``[B]``, each tail ``[B]`` -> ``[B]`` per tail (a tuple when several).
        """
        w = self.proj.weight.view(-1, self.dim, self.relation_dim)  # [R, d, k]
        # Projected entities and relations on the unit sphere (RecBole's CKE; the paper constrains
        # their norms): the distance stays in [0, 9], so the KG loss cannot grow the entity
        # embeddings that the items share with the recommendation loss.
        p = F.normalize(project_by_relation(self.entity_emb(torch.stack((head,) + tails)), rel, w), dim=-1)
        hr = p[0] + F.normalize(self.relation_emb(rel), dim=-1)  # [B, k]
        out = tuple((hr - pt).pow(2).sum(-1) for pt in p[1:])
        return out[0] if len(out) == 1 else out

    def kg_loss(self, head: Tensor, rel: Tensor, tail: Tensor, neg_tail: Tensor) -> Tensor:
        r"""Pairwise TransR loss :math:`-\\log\\sigma(f_r(h, t') - f_r(h, t))` (RecBole's CKE), mean
        over the batch. Shapes: ``[B]`` each -> scalar.
        """
        pos, neg = self.kg_distance(head, rel, tail, neg_tail)
        return -F.logsigmoid(neg - pos).mean()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.num_users}, {self.num_items}, entities={self.num_entities}, "
                f"relations={self.num_relations}, dim={self.dim}, relation_dim={self.relation_dim})")
