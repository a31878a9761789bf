"""CKE (Zhang et al., KDD 2016): BPR-MF jointly trained with a TransR embedding of the item KG."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from kgrec.data.graph import KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.models.base import PairwiseEstimator, TrainConfig
from kgrec.nn.cke import CKE
from kgrec.nn.losses import l2_reg

__all__ = ["CKEConfig", "CKEModel"]


@dataclass
class CKEConfig(TrainConfig):
    """CKE. Args: dim: user/item/entity size (default ``64``); relation_dim: TransR relation space
    (default ``64``); kg_weight: weight of the TransR loss added to BPR at every step (default
    ``1.0``); kg_batch_size: KG triples per step (default ``2048``). See :class:`TrainConfig`.
    """

    dim: int = 64
    relation_dim: int = 64
    kg_weight: float = 1.0
    kg_batch_size: int = 2048


class CKEModel(PairwiseEstimator):
    """Each BPR step also samples ``kg_batch_size`` KG triples, corrupts their tails uniformly over
    the entities and adds ``kg_weight`` times the TransR pairwise loss (RecBole's CKE does the same
    with alternating batches). The KG holds no interaction-derived triples, so nothing leaks from
    valid/test.
    """

    name = "cke"
    Config = CKEConfig

    def prepare(self, kg: KnowledgeGraph, split: Split) -> None:
        super().prepare(kg, split)
        self.context["kg_triples"] = kg.triples.long().contiguous()  # [T, 3] (head, relation, tail)
        self.meta.update(num_entities=kg.num_entities, num_relations=kg.num_relations)

    def build(self) -> None:
        m = self.meta
        self.module = CKE(m["num_users"], m["num_items"], m["num_entities"], m["num_relations"],
                          dim=self.config.dim, relation_dim=self.config.relation_dim)

    def embed(self) -> tuple[Tensor, Tensor]:
        return self.module()

    def kg_batch(self, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``size`` random triples and a corrupted tail each; shapes ``[size]`` x 4."""
        triples = self.context["kg_triples"]
        idx = torch.randint(0, triples.shape[0], (size,), device=triples.device)
        h, r, t = triples[idx].unbind(-1)
        neg = torch.randint(0, self.meta["num_entities"], (size,), device=triples.device)
        return h, r, t, neg

    def batch_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        loss = super().batch_loss(users, pos, neg)
        if self.config.kg_weight <= 0 or self.context["kg_triples"].shape[0] == 0:
            return loss
        h, r, t, nt = self.kg_batch(self.config.kg_batch_size)
        kg = self.module.kg_loss(h, r, t, nt)
        ent = self.module.entity_emb
        reg = l2_reg(ent(h), ent(t), ent(nt), self.module.relation_emb(r))
        return loss + self.config.kg_weight * (kg + self.config.reg * reg)
