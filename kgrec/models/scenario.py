"""``scenario-mf``: one model trained jointly on every scenario, scoring one target scenario.

Choice (documented in the README): a per-scenario *user offset* rather than a per-scenario
projection. A user's vector in scenario ``s`` is ``p_u + o_{s,u}`` (:class:`kgrec.nn.scenario.ScenarioMF`);
items are shared. A user with few target interactions keeps a target vector close to the shared
``p_u`` learned from their other scenarios (the offset starts at zero and has its own, larger, L2
weight ``offset_reg``), while a user with many can move away from it. A projection ``W_s p_u``
would be shared by all users and could not express one user's scenario-specific taste.

Training reuses the pairwise trainer unchanged through *virtual users*: the interaction of user
``u`` in the scenario of block ``b`` is trained as user ``b * U + u``; block ``0`` is the target
scenario, so validation, :meth:`score` and ``Recommender.recommend`` use plain user ids. Only the
target scenario's validation interactions select the epoch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import Tensor

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.errors import KgrecError
from kgrec.models.base import PairwiseEstimator, TrainConfig
from kgrec.nn.scenario import ScenarioMF

__all__ = ["ScenarioMFConfig", "ScenarioMFModel"]


@dataclass
class ScenarioMFConfig(TrainConfig):
    """Scenario-aware BPR-MF.

    Args:
        dim: embedding size (default ``64``).
        target_scenario: the scenario scored by :meth:`score` and used for validation (a name of
            ``kg.scenarios``; default ``None``: the graph's only scenario, an error when it has several).
        offset_reg: L2 weight of the per-scenario user offsets (default ``1.0``, vs ``reg`` for the
            shared embeddings).
        See :class:`~kgrec.models.base.TrainConfig` for the trainer's fields.
    """

    dim: int = 64
    target_scenario: str | None = None
    offset_reg: float = 1.0


class ScenarioMFModel(PairwiseEstimator):
    name = "scenario-mf"
    Config = ScenarioMFConfig

    def _blocks(self, kg: KnowledgeGraph) -> list[str]:
        """Scenario names in block order: the target first, then the others in ``kg.scenarios`` order."""
        target = self.config.target_scenario
        if target is None:
            if len(kg.scenarios) != 1:
                raise KgrecError(f"'target_scenario' must name one of the graph's scenarios "
                                 f"({', '.join(kg.scenarios)}): it has several")
            target = kg.scenarios[0]
        if target not in kg.scenarios:
            raise KgrecError(f"'target_scenario' names scenario {target!r}, which the graph does not have "
                             f"(its scenarios: {', '.join(kg.scenarios)})")
        return [target] + [s for s in kg.scenarios if s != target]

    def virtual_split(self, kg: KnowledgeGraph, split: Split) -> Split:
        """``split`` with every training interaction moved to its scenario's virtual user
        (``block * U + u``) and validation/test restricted to the target scenario (block 0)."""
        blocks = self._blocks(kg)
        block_of = torch.tensor([blocks.index(s) for s in kg.scenarios], dtype=torch.long)
        U = kg.num_users
        tr = split.train
        train = Interactions(tr.user + block_of[tr.scenario_ids] * U, tr.item, tr.weight, tr.time)

        def target(x: Interactions) -> Interactions:
            return x.select(block_of[x.scenario_ids] == 0)

        return dataclasses.replace(split, num_users=len(blocks) * U, train=train, valid=target(split.valid),
                                   test=target(split.test))

    def prepare(self, kg: KnowledgeGraph, split: Split) -> None:
        """The history CSR over virtual users (``S * U`` rows; rows ``< U`` are the target's)."""
        blocks = self._blocks(kg)
        self._virtual = self.virtual_split(kg, split)
        # the base class reads only the sizes of the graph
        super().prepare(SimpleNamespace(num_users=len(blocks) * kg.num_users, num_items=kg.num_items),
                        self._virtual)
        self.meta = {"num_users": kg.num_users, "num_items": kg.num_items, "scenarios": blocks,
                     "target_scenario": blocks[0]}

    def fit(self, kg: KnowledgeGraph, split: Split, **kwargs) -> "ScenarioMFModel":
        from kgrec.training.trainer import fit_pairwise

        self.prepare(kg, split)
        torch.manual_seed(self.config.seed)
        self.build()
        fit_pairwise(self, self._virtual, **kwargs)
        return self

    def negative_sampler(self, train: Interactions, seed: int | None = None):
        """Each scenario's negatives from its own training items (:class:`BlockNegativeSampler`);
        ``seed`` defaults to the config's (the trainer passes seed + rank under DDP)."""
        from kgrec.data.sampling import BlockNegativeSampler

        return BlockNegativeSampler(train, self.meta["num_items"], self.meta["num_users"],
                                    seed=self.config.seed if seed is None else seed)

    def build(self) -> None:
        self.module = ScenarioMF(self.meta["num_users"], self.meta["num_items"], len(self.meta["scenarios"]),
                                 dim=self.config.dim)

    def embed(self) -> tuple[Tensor, Tensor]:
        return self.module()

    def batch_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """BPR over virtual users ``[B]`` plus ``offset_reg`` x the batch's offsets' L2."""
        from kgrec.training.losses import l2_reg

        return super().batch_loss(users, pos, neg) + self.config.offset_reg * l2_reg(self.module.offsets(users))
