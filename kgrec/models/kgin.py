"""KGIN (Wang et al., WWW 2021): user intents over KG relations, relational path-aware aggregation."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from kgrec.checks import check_int, check_rate
from kgrec.data.graph import KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.errors import KgrecError
from kgrec.models.base import PairwiseEstimator, TrainConfig
from kgrec.nn.kgin import INDEPENDENCE, KGIN, KGINGraph
from kgrec.nn.kgraph import add_ckg_context, interaction_part, kg_part

__all__ = ["KGINConfig", "KGINModel"]


@dataclass
class KGINConfig(TrainConfig):
    """KGIN. Defaults follow RecBole's ``KGIN.yaml``.

    Args:
        dim: embedding size of users, entities, relations (default ``64``).
        num_layers: propagation layers, "context hops" (default ``3``).
        num_intents: user intents, "n_factors" (default ``4``).
        ind_weight: weight of the independence loss between intents, "sim_regularity" (default ``1e-4``).
        independence: ``"cosine"`` or ``"distance"`` (distance correlation) (default ``"cosine"``).
        node_dropout: share of KG and user-item edges dropped at each training step (default ``0.1``).
        mess_dropout: dropout on each layer's output (default ``0.1``).
        reg: L2 weight (default ``1e-5``, RecBole's ``reg_weight``). See :class:`TrainConfig`.
    """

    reg: float = 1e-5
    dim: int = 64
    num_layers: int = 3
    num_intents: int = 4
    ind_weight: float = 1e-4
    independence: str = "cosine"
    node_dropout: float = 0.1
    mess_dropout: float = 0.1

    def __post_init__(self) -> None:
        check_int(self.dim, "dim", 1)
        check_int(self.num_layers, "num_layers", 1)
        check_int(self.num_intents, "num_intents", 1)
        if isinstance(self.ind_weight, bool) or not isinstance(self.ind_weight, (int, float)) or self.ind_weight < 0:
            raise KgrecError(f"'ind_weight' must be a number >= 0 (got {self.ind_weight!r})")
        if self.independence not in INDEPENDENCE:
            raise KgrecError(f"'independence' must be one of {', '.join(INDEPENDENCE)} (got {self.independence!r})")
        check_rate(self.node_dropout, "node_dropout")
        check_rate(self.mess_dropout, "mess_dropout")


class KGINModel(PairwiseEstimator):
    """KGIN on the item KG (relations and their inverses) and the training interactions.

    It reads the same collaborative KG as :class:`~kgrec.models.kgat.KGATModel` (context
    ``ckg_edge_index`` / ``ckg_edge_type``): the KG edges drive the entity aggregation, the
    user -> item edges the user aggregation. Loss: BPR + ``reg`` x L2 of the batch's ego embeddings
    + ``ind_weight`` x the independence loss of the intents.
    """

    name = "kgin"
    Config = KGINConfig

    def prepare(self, kg: KnowledgeGraph, split: Split) -> None:
        super().prepare(kg, split)
        add_ckg_context(self, kg, split.train)  # training interactions only

    def build(self) -> None:
        m, c = self.meta, self.config
        self.module = KGIN(m["num_users"], m["num_items"], m["num_entities"], 2 * m["num_relations"], dim=c.dim,
                           num_layers=c.num_layers, num_intents=c.num_intents, node_dropout=c.node_dropout,
                           mess_dropout=c.mess_dropout, independence=c.independence)

    def graph(self) -> KGINGraph:
        """The module's sparse patterns of the collaborative KG (built once per device)."""
        def build():
            ei, et, m = self.context["ckg_edge_index"], self.context["ckg_edge_type"], self.meta
            return self.module.graph(*kg_part(ei, et, m["num_relations"]),
                                     *interaction_part(ei, et, m["num_relations"], m["num_entities"]))

        return self.derived("graph", build)

    def embed(self) -> tuple[Tensor, Tensor]:
        return self.module(self.graph())

    def batch_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        loss = super().batch_loss(users, pos, neg)
        if self.config.ind_weight > 0:
            loss = loss + self.config.ind_weight * self.module.independence_loss()
        return loss
