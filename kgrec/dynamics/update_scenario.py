"""Incremental update of ``scenario-mf`` (``Recommender.update`` on ``model="scenario-mf"``).

The model trains *virtual users*: user ``u``'s interactions in the scenario of block ``b`` are those
of row ``b * U + u`` (:mod:`kgrec.models.scenario`; block ``0`` is the target scenario). Its history
CSR, and so the old training interactions read back from a checkpoint
(:func:`kgrec.dynamics.update.old_interactions`), are over ``S * U0`` virtual users: each old pair keeps its
scenario. An update:

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
   optional L2 pull of the old shared rows and offsets (:func:`kgrec.dynamics.update._continue_pairwise`).
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import Tensor

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError

__all__ = ["scenario_blocks", "virtual_interactions", "update_scenario_mf"]


def scenario_blocks(est, kg: KnowledgeGraph, inter: Interactions) -> Tensor:
    """``[N]`` the model's block of each interaction of ``kg`` in ``inter``, matched by scenario name.

    Raises:
        KgrecError: an interaction is in a scenario the model has no block for (the message names
            it and the model's scenarios).
    """
    blocks = list(est.meta["scenarios"])
    used = [kg.scenarios[s] for s in torch.unique(inter.scenario_ids).tolist()]
    unknown = [s for s in used if s not in blocks]
    if unknown:
        raise KgrecError(f"the new interactions are in scenario(s) {', '.join(repr(s) for s in unknown)}, which "
                         f"this scenario-mf model was not trained on (its scenarios: {', '.join(blocks)}); keep "
                         "only those with update(..., scenarios=[...]) / kgrec update --scenario, or refit")
    lookup = torch.tensor([blocks.index(s) if s in blocks else -1 for s in kg.scenarios], dtype=torch.long)
    return lookup[inter.scenario_ids]


def virtual_interactions(est, kg: KnowledgeGraph, new: Interactions, mapped: Interactions, old: Interactions,
                         num_users: int) -> tuple[Interactions, Interactions]:
    """The new and old interactions over the virtual users of the grown model.

    Args:
        est: the fitted scenario-mf estimator (``meta["num_users"]`` = ``U0``).
        kg: the graph of ``new`` (its ``scenarios`` name ``new.scenario``).
        new: the new interactions in ``kg``'s ids; mapped: the same rows in merged user/item ids.
        old: the model's training interactions, virtual users over ``U0`` (``b * U0 + u``).
        num_users: ``U``, the number of users after the update.

    Returns:
        ``(mapped, old)`` with virtual users ``b * U + u`` (no scenario field: the block is in the id).
    """
    U0 = est.meta["num_users"]
    block = scenario_blocks(est, kg, new)
    fresh = Interactions(block * num_users + mapped.user, mapped.item, mapped.weight, mapped.time)
    moved = Interactions(old.user // U0 * num_users + old.user % U0, old.item, old.weight, old.time)
    return fresh, moved


def update_scenario_mf(est, users: Vocab, items: Vocab, kg: KnowledgeGraph, fresh: Interactions,
                       old: Interactions, epochs: int, replay: float, l2_pull: float,
                       log: Callable[[str], None] | None = None):
    """A new scenario-mf estimator: ``est`` grown to the merged id maps and continued on ``fresh``.

    Args:
        est: the fitted estimator (left unchanged).
        users, items: merged id maps (old labels first). kg: the new graph (KG of new items).
        fresh, old: new and old training interactions over the grown virtual users
            (:func:`virtual_interactions`).
        epochs, replay, l2_pull: as in :func:`kgrec.dynamics.update.update_estimator`.
    """
    from kgrec.dynamics.update import _continue_pairwise, _id_graph, init_untrained_rows

    blocks = list(est.meta["scenarios"])
    U, I = len(users), len(items)
    U0, I0 = est.meta["num_users"], est.meta["num_items"]

    def real(x: Interactions) -> Interactions:  # virtual user b * U + u -> user u in scenario b
        return Interactions(x.user % U, x.item, x.weight, x.time, x.user // U)

    everything = old.concat(fresh)
    new_est = type(est)(copy.deepcopy(est.config))
    empty = Interactions.empty()
    # the graph's scenarios in block order: prepare() maps them back to the same blocks
    new_est.prepare(_id_graph(users, items, blocks), Split("update", 0, (1.0, 0.0, 0.0), U, I, real(everything),
                                                           empty, empty))
    torch.manual_seed(est.config.seed)
    new_est.build()
    m, m0 = new_est.module, est.module
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
    _continue_pairwise(new_est, fresh, old, everything, epochs, replay, l2_pull, anchors, log)
    return new_est
