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

``Recommender.update`` (:meth:`ScenarioMFModel.continued`) keeps the blocks: the model's history
CSR, and so the old training interactions read back from a checkpoint, are over ``S * U0``
virtual users, each old pair keeping its scenario. An update:

1. **Blocks by name.** Each new interaction keeps its scenario: its name in ``kg.scenarios`` is looked
   up among the model's blocks (``meta["scenarios"]``, target first), so the new graph may number
   its scenarios differently. A scenario the model was not trained on raises :class:`KgrecError`
   (it would need a new block of offsets and a place in the block order: refit instead).
2. **Virtual ids over the grown users.** With ``U`` users after the update (new users appended),
   old virtual user ``b * U0 + u`` becomes ``b * U + u`` and a new interaction of user ``u`` in block
   ``b`` becomes ``b * U + u``. A pair the model already has *in the same scenario* is not counted
   again (the same pair in another scenario is new).
3. **Grow the tables.** The shared user and item rows are copied (rows never trained start as for
   BPR-MF, :func:`kgrec.dynamics.update.init_untrained_rows`); each block's offsets of the old users are
   copied; new users' offsets are zero, so until trained their vector is the shared one in every
   scenario.
4. **Continue training** with BPR on the new virtual interactions plus ``replay`` x the old ones, each
   scenario's negatives from its own items (:meth:`ScenarioMFModel.negative_sampler`), with the
   optional L2 pull of the old shared rows and offsets (:func:`kgrec.training.continual.continue_pairwise`).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import Tensor

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.sampling import BlockNegativeSampler
from kgrec.data.splits import Split
from kgrec.errors import KgrecError
from kgrec.models.base import PairwiseEstimator, TrainConfig
from kgrec.nn.losses import l2_reg
from kgrec.nn.scenario import ScenarioMF
from kgrec.training.continual import continue_pairwise, id_graph, init_untrained_rows, update_split
from kgrec.training.trainer import fit_pairwise

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
        (``block * U + u``) and validation/test restricted to the target scenario (block 0).
        """
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
        self.prepare(kg, split)
        torch.manual_seed(self.config.seed)
        self.build()
        fit_pairwise(self, self._virtual, **kwargs)
        return self

    def negative_sampler(self, train: Interactions, seed: int | None = None):
        """Each scenario's negatives from its own training items (:class:`BlockNegativeSampler`);
        ``seed`` defaults to the config's (the trainer passes seed + rank under DDP).
        """
        return BlockNegativeSampler(train, self.meta["num_items"], self.meta["num_users"],
                                    seed=self.config.seed if seed is None else seed)

    def build(self) -> None:
        self.module = ScenarioMF(self.meta["num_users"], self.meta["num_items"], len(self.meta["scenarios"]),
                                 dim=self.config.dim)

    def embed(self) -> tuple[Tensor, Tensor]:
        return self.module()

    def embedding_tables(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.module.user_emb.weight, self.module.item_emb.weight, self.module.offsets_per_user()

    def scenario_blocks(self, kg: KnowledgeGraph, inter: Interactions) -> Tensor:
        """``[N]`` the model's block of each interaction of ``kg`` in ``inter``, matched by scenario name.

        Raises:
            KgrecError: an interaction is in a scenario the model has no block for (the message names
                it and the model's scenarios).
        """
        blocks = list(self.meta["scenarios"])
        used = [kg.scenarios[s] for s in torch.unique(inter.scenario_ids).tolist()]
        unknown = [s for s in used if s not in blocks]
        if unknown:
            raise KgrecError(f"the new interactions are in scenario(s) {', '.join(repr(s) for s in unknown)}, which "
                             f"this scenario-mf model was not trained on (its scenarios: {', '.join(blocks)}); keep "
                             "only those with update(..., scenarios=[...]) / kgrec update --scenario, or refit")
        lookup = torch.tensor([blocks.index(s) if s in blocks else -1 for s in kg.scenarios], dtype=torch.long)
        return lookup[inter.scenario_ids]

    def update_pairs(self, kg, new, mapped, old, num_users):
        """The new and old interactions over the virtual users of the grown model: old virtual user
        ``b * U0 + u`` becomes ``b * num_users + u``, a new interaction of user ``u`` in block ``b``
        becomes ``b * num_users + u`` (no scenario field: the block is in the id).
        """
        U0 = self.meta["num_users"]
        block = self.scenario_blocks(kg, new)
        fresh = Interactions(block * num_users + mapped.user, mapped.item, mapped.weight, mapped.time)
        moved = Interactions(old.user // U0 * num_users + old.user % U0, old.item, old.weight, old.time)
        return fresh, moved

    def continued(self, users, items, kg, fresh, old, epochs, replay, l2_pull, item_labels=None, log=None):
        """Grow the shared tables and each block's offsets (new users' offsets start at zero), then
        continue training on the virtual interactions of :meth:`update_pairs`.
        """
        blocks = list(self.meta["scenarios"])
        U, I = len(users), len(items)
        U0, I0 = self.meta["num_users"], self.meta["num_items"]

        def real(x: Interactions) -> Interactions:  # virtual user b * U + u -> user u in scenario b
            return Interactions(x.user % U, x.item, x.weight, x.time, x.user // U)

        everything = old.concat(fresh)
        new_est = type(self)(copy.deepcopy(self.config))
        # the graph's scenarios in block order: prepare() maps them back to the same blocks
        new_est.prepare(id_graph(users, items, blocks), update_split(U, I, real(everything)))
        torch.manual_seed(self.config.seed)
        new_est.build()
        m, m0 = new_est.module, self.module
        with torch.no_grad():
            m.user_emb.weight[:U0] = m0.user_emb.weight.detach().to(m.user_emb.weight)
            m.item_emb.weight[:I0] = m0.item_emb.weight.detach().to(m.item_emb.weight)
            offsets = m.offsets_per_user()  # [U, S, d]
            offsets[:U0] = m0.offsets_per_user().detach().to(offsets)
            offsets[U0:] = 0.0
            init_untrained_rows(m.user_emb.weight.data, m.item_emb.weight.data, m0.user_emb.weight.data.cpu(),
                                m0.item_emb.weight.data.cpu(), real(old), real(fresh), kg, items)
        anchors = [(t, t[:s].detach().clone()) for t, s in ((m.user_emb.weight.data, U0), (m.item_emb.weight.data, I0),
                                                            (m.offsets_per_user().data, U0))]
        continue_pairwise(new_est, fresh, old, everything, epochs, replay, l2_pull, anchors, log)
        return new_est, f"scenario-mf: blocks {', '.join(blocks)}"

    def batch_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """BPR over virtual users ``[B]`` plus ``offset_reg`` x the batch's offsets' L2."""
        return super().batch_loss(users, pos, neg) + self.config.offset_reg * l2_reg(self.module.offsets(users))
