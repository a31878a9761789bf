"""Interaction scenarios: behaviour types or item domains sharing one graph (users, items, KG).

A scenario is a name per interaction (``KnowledgeGraph.scenarios`` indexed by
``Interactions.scenario``): the mapping gives one to each interaction rule (``rating`` events vs
``tag`` applications), or derives item domains from an item attribute (:func:`assign_domains`,
the mapping's ``[scenarios]`` section). This module selects interactions by scenario and builds
the few-shot target sets of a transfer experiment; it never trains anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.errors import KgrecError

__all__ = ["scenario_ids", "select", "assign_domains", "item_domains", "first_per_pair", "limit_per_user",
           "few_shot", "target_test"]


def scenario_ids(kg: KnowledgeGraph, names: str | Sequence[str], key: str = "scenarios") -> list[int]:
    """The ids of scenario ``names`` in ``kg.scenarios``; an unknown name raises naming ``key``."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        raise KgrecError(f"'{key}' must be a non-empty list of scenario names (got {names!r})")
    ids = []
    for n in names:
        if n not in kg.scenarios:
            raise KgrecError(f"'{key}' names scenario {n!r}, which the graph does not have "
                             f"(its scenarios: {', '.join(kg.scenarios)})")
        ids.append(kg.scenarios.index(n))
    return ids


def select(kg: KnowledgeGraph, data: Interactions | Split, names: str | Sequence[str],
           key: str = "scenarios") -> Interactions | Split:
    """The interactions of ``data`` (an :class:`Interactions` of ``kg`` or a :class:`Split` of it,
    every part filtered) whose scenario is one of ``names``.
    """
    ids = torch.tensor(scenario_ids(kg, names, key), dtype=torch.long)

    def pick(x: Interactions) -> Interactions:
        return x.select(torch.isin(x.scenario_ids, ids))

    if isinstance(data, Split):
        return dataclasses.replace(data, train=pick(data.train), valid=pick(data.valid), test=pick(data.test))
    if isinstance(data, Interactions):
        return pick(data)
    raise KgrecError(f"'data' must be an Interactions or a Split (got {type(data).__name__})")


def item_domains(kg: KnowledgeGraph, predicate: str, domains: Sequence[tuple[str, Sequence[str]]],
                 rest: str = "other") -> tuple[list[str], torch.Tensor]:
    """Each item's domain from its ``predicate`` attributes.

    Args:
        kg: the graph (its KG triples name the attributes).
        predicate: the IRI of the item -> attribute relation (e.g. ``kgr:genre`` expanded).
        domains: ``[(name, attribute IRIs), ...]``; an item is in the first domain, in this order,
            one of whose attributes it has; otherwise in ``rest``.
        rest: the name of the remaining items' scenario.

    Returns:
        ``(names, domain)``: the sorted scenario names (domains + ``rest``) and ``[I]`` long ids into them.
    """
    if predicate not in kg.relations:
        raise KgrecError(f"'scenarios.item_predicate' {predicate!r} is not a KG relation of the graph "
                         f"(relations: {', '.join(kg.relations.labels[:10])})")
    names = sorted({n for n, _ in domains} | {rest})
    r = kg.relations.id(predicate)
    rows = kg.triples[(kg.triples[:, 1] == r) & (kg.triples[:, 0] < kg.num_items)]
    first = torch.full((kg.num_items,), len(domains), dtype=torch.long)  # position of the first matching domain
    for pos in range(len(domains) - 1, -1, -1):
        attrs = torch.tensor([kg.entities.get(a, -1) for a in domains[pos][1]], dtype=torch.long)
        hit = rows[torch.isin(rows[:, 2], attrs[attrs >= 0]), 0]
        first[hit] = pos
    lookup = torch.tensor([names.index(n) for n, _ in domains] + [names.index(rest)], dtype=torch.long)
    return names, lookup[first]


def assign_domains(kg: KnowledgeGraph, predicate: str, domains: Sequence[tuple[str, Sequence[str]]],
                   rest: str = "other") -> KnowledgeGraph:
    """A copy of ``kg`` whose interactions carry their item's domain as scenario (:func:`item_domains`)."""
    names, domain = item_domains(kg, predicate, domains, rest)
    inter = dataclasses.replace(kg.interactions, scenario=domain[kg.interactions.item])
    out = dataclasses.replace(kg, interactions=inter, scenarios=names)
    if hasattr(kg, "interaction_text"):
        out.interaction_text = kg.interaction_text
    return out


def first_per_pair(kg: KnowledgeGraph, names: str | Sequence[str]) -> KnowledgeGraph:
    """A copy of ``kg`` keeping one interaction per (user, item) pair in each of scenarios ``names``.

    The loader keeps every event: a user who puts three tags on one movie has three ``tag``
    interactions with that movie. This keeps the earliest of them (ties, and pairs without time:
    the first in ``kg.interactions`` order), so that "n interactions per user" counts distinct
    items and a pair cannot be both trained on and tested. Other scenarios are kept whole; the
    kept interactions stay in their order, ``kg.interaction_text`` (when present) follows them.

    Args:
        kg: the graph.
        names: the scenarios to collapse (``key`` of errors: ``'names'``).

    Returns:
        The copy (``kg`` itself is unchanged).

    Raises:
        KgrecError: a name is not one of ``kg.scenarios``.
    """
    ids = torch.tensor(scenario_ids(kg, names, "names"), dtype=torch.long)
    inter = kg.interactions
    sc = inter.scenario_ids.numpy()
    hit = torch.isin(inter.scenario_ids, ids).numpy()
    pos = np.flatnonzero(hit)
    # by (scenario, user, item), then time (nan last), then position: the first row of a run is kept
    order = pos[np.lexsort((pos, inter.time.numpy()[pos], inter.item.numpy()[pos], inter.user.numpy()[pos], sc[pos]))]
    key = np.stack([sc[order], inter.user.numpy()[order], inter.item.numpy()[order]])
    first = np.r_[True, (np.diff(key, axis=1) != 0).any(axis=0)] if len(order) else np.zeros(0, dtype=bool)
    keep = np.sort(np.r_[np.flatnonzero(~hit), order[first]])
    out = dataclasses.replace(kg, interactions=inter.select(torch.as_tensor(keep, dtype=torch.long)))
    text = getattr(kg, "interaction_text", None)
    if text is not None:
        out.interaction_text = [text[k] for k in keep.tolist()]
    return out


def limit_per_user(inter: Interactions, n: int | None, seed: int = 2020) -> Interactions:
    """At most ``n`` interactions per user, drawn uniformly at random (seeded); ``None`` keeps all.

    The draws are nested: with the same seed, the ``n = 2`` set contains the ``n = 1`` set.
    """
    if n is None:
        return inter
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise KgrecError(f"'n' must be a positive integer or None (got {n!r})")
    rng = np.random.default_rng(seed)
    key = rng.random(len(inter))
    order = np.lexsort((key, inter.user.numpy()))  # by user, random within a user
    u = inter.user.numpy()[order]
    start = np.r_[0, np.flatnonzero(np.diff(u)) + 1]
    rank = np.arange(len(u)) - np.repeat(start, np.diff(np.r_[start, len(u)]))
    keep = np.sort(order[rank < n])
    return inter.select(torch.as_tensor(keep, dtype=torch.long))


def few_shot(kg: KnowledgeGraph, split: Split, target: str, n: int | None, seed: int = 2020) -> Split:
    """The training split of a transfer experiment on scenario ``target``.

    ``train``: every training interaction of the other scenarios plus at most ``n`` (seeded, nested
    in ``n``) training interactions per user in ``target`` (``None``: all); ``valid``: unchanged
    (every scenario, so a source model can select its epoch on source validation data);
    ``test``: the ``target`` test interactions, ranked among the items having a ``target``
    interaction in ``kg`` (``test_candidates``). Evaluate on :func:`target_test` instead, which masks
    every known training interaction, also the target ones left out here.
    """
    (t,) = scenario_ids(kg, [target], "target")
    tr = split.train
    is_t = tr.scenario_ids == t
    few = limit_per_user(tr.select(is_t), n, seed)
    return dataclasses.replace(target_test(kg, split, target), train=tr.select(~is_t).concat(few))


def target_test(kg: KnowledgeGraph, split: Split, target: str) -> Split:
    """``split`` with ``test`` restricted to scenario ``target`` and ranked among the items that have a
    ``target`` interaction in ``kg`` (``test_candidates``); train and valid unchanged (all masked).
    """
    (t,) = scenario_ids(kg, [target], "target")
    inter = kg.interactions
    cand = torch.unique(inter.item[inter.scenario_ids == t])
    return dataclasses.replace(split, test=split.test.select(split.test.scenario_ids == t), test_candidates=cand)
