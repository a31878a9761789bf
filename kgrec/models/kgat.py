"""KGAT (Wang et al., KDD 2019): attentive propagation over the collaborative knowledge graph."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from kgrec.checks import check_int, check_rate
from kgrec.data.graph import KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.errors import KgrecError
from kgrec.models.base import PairwiseEstimator, TrainConfig
from kgrec.nn.kgat import KGAT
from kgrec.nn.kgraph import add_ckg_context

__all__ = ["KGATConfig", "KGATModel"]


@dataclass
class KGATConfig(TrainConfig):
    """KGAT. Defaults follow RecBole's ``KGAT.yaml`` except ``layers`` (the paper's three layers).

    Args:
        dim: ego embedding size of users and entities (default ``64``).
        relation_dim: TransR relation space (default ``64``).
        layers: output size of each propagation layer; the final vectors have size
            ``dim + sum(layers)`` (default ``[64, 32, 16]``).
        mess_dropout: dropout on each layer's output (default ``0.1``).
        kg_weight: weight of the TransR loss added at every step (default ``1.0``).
        kg_batch_size: CKG triples sampled per step for the TransR loss (default ``2048``).
        attention_every: recompute the attention every this many steps; ``0`` = once per epoch, at
            its first step, as RecBole does (default ``0``).
        reg: L2 weight (default ``1e-5``, RecBole's ``reg_weight``). See :class:`TrainConfig`.
    """

    reg: float = 1e-5
    dim: int = 64
    relation_dim: int = 64
    layers: list[int] = field(default_factory=lambda: [64, 32, 16])
    mess_dropout: float = 0.1
    kg_weight: float = 1.0
    kg_batch_size: int = 2048
    attention_every: int = 0

    def __post_init__(self) -> None:
        check_int(self.dim, "dim", 1)
        check_int(self.relation_dim, "relation_dim", 1)
        if not isinstance(self.layers, (list, tuple)) or not self.layers:
            raise KgrecError(f"'layers' must be a non-empty list of layer sizes (got {self.layers!r})")
        self.layers = [check_int(s, "layers", 1) for s in self.layers]
        check_rate(self.mess_dropout, "mess_dropout")
        if isinstance(self.kg_weight, bool) or not isinstance(self.kg_weight, (int, float)) or self.kg_weight < 0:
            raise KgrecError(f"'kg_weight' must be a number >= 0 (got {self.kg_weight!r})")
        check_int(self.kg_batch_size, "kg_batch_size", 1)
        check_int(self.attention_every, "attention_every", 0)


class KGATModel(PairwiseEstimator):
    """KGAT on the collaborative KG of the training interactions and the item KG.

    Training: every step adds ``kg_weight`` x the TransR loss of ``kg_batch_size`` CKG triples
    (tails corrupted uniformly over all nodes) to the BPR loss, where the paper and RecBole
    alternate a CF epoch and a KG epoch. The attention is a constant of the BPR loss, recomputed
    from the current embeddings by :meth:`update_attention`: at the first step of every epoch (the
    trainer calls :meth:`unfreeze` when an epoch starts; RecBole updates it once per epoch) or every
    ``attention_every`` steps, and always by :meth:`freeze`, so scores are a function of the weights
    alone and a reloaded model scores identically.
    """

    name = "kgat"
    Config = KGATConfig

    def __init__(self, config):
        super().__init__(config)
        self._steps = 0

    def prepare(self, kg: KnowledgeGraph, split: Split) -> None:
        super().prepare(kg, split)
        add_ckg_context(self, kg, split.train)  # training interactions only

    def build(self) -> None:
        m, c = self.meta, self.config
        self.module = KGAT(m["num_users"], m["num_items"], m["num_entities"], m["num_edge_types"], dim=c.dim,
                           relation_dim=c.relation_dim, layers=c.layers, mess_dropout=c.mess_dropout)

    # -------------------------------------------------------------- attention
    def attention(self) -> Tensor:
        """``[M]`` current attention weights of the CKG edges (cached until :meth:`update_attention`)."""
        c = self.context
        return self.derived("attention", lambda: self.module.attention(c["ckg_edge_index"], c["ckg_edge_type"]))

    def propagation(self):
        """The sparse operator of the current attention (rebuilt with it)."""
        def build():
            pattern = self.derived("pattern", lambda: self.module.pattern(self.context["ckg_edge_index"]))
            return self.module.propagation(pattern, self.attention())

        return self.derived("propagation", build)

    def drop_attention(self) -> None:
        """Forget the attention (and its operator): the next use recomputes both."""
        self._derived.pop("attention", None)
        self._derived.pop("propagation", None)

    def update_attention(self) -> Tensor:
        """Recompute the attention from the current embeddings."""
        self.drop_attention()
        return self.attention()

    def unfreeze(self) -> None:
        super().unfreeze()
        self.drop_attention()  # a new epoch: recomputed at its first step

    def freeze(self) -> None:
        if self.module is not None:
            self.module.eval()
            self.update_attention()
        super().freeze()

    # ---------------------------------------------------------------- scoring
    def embed(self) -> tuple[Tensor, Tensor]:
        return self.module(self.propagation())

    def batch_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        every = self.config.attention_every
        if every and self._steps % every == 0:
            self.drop_attention()
        self._steps += 1
        loss = super().batch_loss(users, pos, neg)
        ei, et = self.context["ckg_edge_index"], self.context["ckg_edge_type"]
        if self.config.kg_weight <= 0 or et.numel() == 0:
            return loss
        idx = torch.randint(0, et.numel(), (self.config.kg_batch_size,), device=et.device)
        neg_t = torch.randint(0, self.meta["num_nodes"], idx.shape, device=et.device)
        kg = self.module.kg_loss(ei[0, idx], et[idx], ei[1, idx], neg_t, reg=self.config.reg)
        return loss + self.config.kg_weight * kg
