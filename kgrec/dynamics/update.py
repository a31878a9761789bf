"""Incremental update of a fitted model with new interactions (``Recommender.update``).

The old model's training interactions are read back from its context (history CSR + latest times),
so an update needs no access to the old data files. New users and items are appended after the old
ids (old ids never move). Then:

* closed-form models (MostPop, ItemKNN, EASE) refit on old + new interactions: an exact update
  (their fit is one pass over the data; there is no state to carry over);
* embedding models (BPR-MF, LightGCN) grow their user/item tables, copy the old rows, initialise an
  item never trained (new, or known without interactions) from its KG attribute neighbours (the
  mean over its attributes of the mean trained item having that attribute; else the mean item) and such a user from the mean of their
  new items' vectors, then continue BPR training for
  ``epochs`` on the new interactions plus a fresh sample of ``replay`` x the old ones each epoch,
  with an optional L2 pull of the old rows towards their previous values (limits forgetting).

The hybrid also grows its KG node table and re-prepares its texts over the merged graph
(:mod:`kgrec.dynamics.update_hybrid`); ``scenario-mf`` keeps each new interaction in its scenario's block of
virtual users and grows its per-scenario user offsets (:mod:`kgrec.dynamics.update_scenario`).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError

__all__ = ["update_estimator", "old_interactions", "merge_vocab"]


def old_interactions(est) -> Interactions:
    """The training interactions an estimator was fitted on, from its history CSR (one row per
    distinct pair, with its latest time; ``nan`` for checkpoints saved before times were kept)."""
    c = est.context
    indptr, items = c["hist_indptr"].cpu(), c["hist_indices"].cpu()
    users = torch.repeat_interleave(torch.arange(indptr.numel() - 1), indptr[1:] - indptr[:-1])
    t = c.get("hist_time")
    t = torch.full((items.numel(),), math.nan, dtype=torch.float64) if t is None else t.cpu().double()
    return Interactions(users, items.clone(), torch.ones(items.numel()), t)


def merge_vocab(old: Vocab, new_labels, name: str) -> tuple[Vocab, int]:
    """Old labels in their order, then the unseen ones sorted -> ``(vocab, number added)``."""
    added = sorted(set(new_labels) - set(old.labels))
    return Vocab(old.labels + added, sort=False, name=name), len(added)


def _check_args(epochs, replay, l2_pull) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise KgrecError(f"'epochs' must be a non-negative integer (got {epochs!r})")
    if isinstance(replay, bool) or not isinstance(replay, (int, float)) or not 0.0 <= replay <= 1.0:
        raise KgrecError(f"'replay' must be a share of the old interactions in [0, 1] (got {replay!r})")
    if isinstance(l2_pull, bool) or not isinstance(l2_pull, (int, float)) or not l2_pull >= 0:
        raise KgrecError(f"'l2_pull' must be a non-negative number (got {l2_pull!r})")


def update_estimator(est, users: Vocab, items: Vocab, kg: KnowledgeGraph, new=None, epochs: int = 5,
                     replay: float = 0.2, l2_pull: float = 0.0, log: Callable[[str], None] | None = None,
                     item_labels=None):
    """A new estimator: ``est`` (fitted on ``users``/``items``) continued on the interactions of ``kg``.

    Args:
        est: the fitted estimator (left unchanged).
        users, items: its id maps.
        kg: a graph holding the new interactions (it may also hold the old ones: pairs the model
            was trained on are not counted again) and the KG of new items.
        new: the interactions of ``kg`` to add: ``None`` (all of them), an :class:`Interactions` or a
            :class:`Split` (its ``train`` part).
        epochs, replay, l2_pull: see the module docstring.
        item_labels: the old items' labels (the hybrid renders them into behaviour texts).

    Returns:
        ``(estimator, users, items, info)`` with the merged id maps and a summary.
    """
    if not isinstance(kg, KnowledgeGraph):
        raise KgrecError(f"'kg' must be a KnowledgeGraph, e.g. from kgrec.load(paths) (got {type(kg).__name__})")
    _check_args(epochs, replay, l2_pull)
    if new is None:
        new = kg.interactions
    elif isinstance(new, Split):
        if new.num_users != kg.num_users or new.num_items != kg.num_items:
            raise KgrecError(f"'new' is a split of another graph ({new.num_users} users / {new.num_items} items; "
                             f"'kg' has {kg.num_users} / {kg.num_items})")
        new = new.train
    elif not isinstance(new, Interactions):
        raise KgrecError(f"'new' must be None, an Interactions or a Split of 'kg' (got {type(new).__name__})")
    if len(new) == 0:
        raise KgrecError("no new interactions to update with: the given data holds none")
    if int(new.user.max()) >= kg.num_users or int(new.item.max()) >= kg.num_items:
        raise KgrecError("'new' has user/item ids outside 'kg': pass interactions of that graph")
    t0 = time.perf_counter()
    # every user and item of 'kg' joins (a new item without interactions is scored from its init)
    all_users, n_new_users = merge_vocab(users, kg.users.labels, "user")
    all_items, n_new_items = merge_vocab(items, kg.items.labels, "item")
    umap = torch.tensor([all_users.id(x) for x in kg.users], dtype=torch.long)
    imap = torch.tensor([all_items.id(x) for x in kg.items], dtype=torch.long)
    mapped = Interactions(umap[new.user], imap[new.item], new.weight, new.time)
    old = old_interactions(est)
    U, I = len(all_users), len(all_items)
    if est.name == "scenario-mf":  # pairs over virtual users (scenario block x user), see the module
        from kgrec.dynamics.update_scenario import virtual_interactions

        mapped, old = virtual_interactions(est, kg, new, mapped, old, U)
    known = np.isin(mapped.user.numpy() * I + mapped.item.numpy(), old.user.numpy() * I + old.item.numpy())
    fresh = mapped.select(torch.as_tensor(~known))
    info = {"new_users": n_new_users, "new_items": n_new_items, "new_interactions": len(fresh),
            "known_interactions_skipped": int(known.sum()), "old_interactions": len(old)}
    if len(fresh) == 0:  # nothing new: the model stays as it is
        info.update(seconds=time.perf_counter() - t0, method="none")
        return est, users, items, info
    method = f"{epochs} epoch(s) of BPR on the new interactions + {replay:g} replay, l2_pull {l2_pull:g}"
    if est.name == "hybrid":  # three id spaces to grow (users, items, KG nodes): its own module
        from kgrec.dynamics.update_hybrid import update_hybrid

        new_est = update_hybrid(est, all_users, all_items, kg, fresh, old, epochs, replay, l2_pull,
                                item_labels=item_labels, log=log)
        method += " (hybrid: merged KG, tables grown)"
    elif est.name == "scenario-mf":  # virtual users: one block of users per scenario
        from kgrec.dynamics.update_scenario import update_scenario_mf

        new_est = update_scenario_mf(est, all_users, all_items, kg, fresh, old, epochs, replay, l2_pull, log=log)
        method += f" (scenario-mf: blocks {', '.join(est.meta['scenarios'])})"
    else:
        merged = _id_graph(all_users, all_items)
        everything = old.concat(fresh)
        empty = Interactions.empty()
        split = Split("update", 0, (1.0, 0.0, 0.0), U, I, everything, empty, empty)
        new_est = type(est)(copy.deepcopy(est.config))
        if not new_est.trainable:
            new_est.fit(merged, split)
            info.update(method="refit on old + new interactions", seconds=time.perf_counter() - t0)
            return new_est, all_users, all_items, info

        new_est.prepare(merged, split)
        torch.manual_seed(est.config.seed)
        new_est.build()
        old_u, old_i = _tables(est.module)
        new_u, new_i = _tables(new_est.module)
        with torch.no_grad():
            U0, I0 = old_u.shape[0], old_i.shape[0]
            new_u[:U0] = old_u.to(new_u)
            new_i[:I0] = old_i.to(new_i)
            init_untrained_rows(new_u, new_i, old_u, old_i, old, fresh, kg, all_items)
        anchors = [(t, t[: s].detach().clone()) for t, s in ((new_u, U0), (new_i, I0))]
        _continue_pairwise(new_est, fresh, old, everything, epochs, replay, l2_pull, anchors, log)
    info.update(method=method, epochs=epochs, replay=replay, l2_pull=l2_pull, seconds=time.perf_counter() - t0)
    new_est.fit_info = {**est.fit_info, "update": info}
    return new_est, all_users, all_items, info


def _id_graph(users: Vocab, items: Vocab, scenarios: list[str] | None = None) -> KnowledgeGraph:
    """A graph holding only the id maps (what the id-based models' ``prepare`` reads), and the
    scenario names when given."""
    ents = Vocab(items.labels, sort=False, name="entity")
    extra = {} if scenarios is None else {"scenarios": list(scenarios)}
    return KnowledgeGraph(users, items, ents, Vocab([], name="relation"), torch.empty(0, 3, dtype=torch.long),
                          Interactions.empty(), **extra)


def _tables(module) -> tuple[Tensor, Tensor]:
    """Views of the free user and item embedding rows of an MF or LightGCN module."""
    from kgrec.nn.cf import MF, LightGCNEmbed

    if isinstance(module, MF):
        return module.user_emb.weight.data, module.item_emb.weight.data
    if isinstance(module, LightGCNEmbed):
        w = module.gcn.embedding.weight.data
        return w[: module.num_users], w[module.num_users:]
    raise KgrecError(f"update() does not know the embedding tables of {type(module).__name__}")


@torch.no_grad()
def init_untrained_rows(new_u: Tensor, new_i: Tensor, old_u: Tensor, old_i: Tensor, old: Interactions,
                        fresh: Interactions, kg: KnowledgeGraph, items: Vocab) -> None:
    """In place: the rows of a grown table that were never trained (appended, or known without
    interactions) start from content and history. An item from its KG attribute neighbours
    (:func:`_init_new_items`); a user from the mean of their new items, else the mean trained user.

    Shapes: new_u ``[U, d]`` / new_i ``[I, d]`` (old rows already copied); old_u ``[U0, d]`` /
    old_i ``[I0, d]``: the tables of the model being updated.
    """
    U, I = new_u.shape[0], new_i.shape[0]
    U0, I0 = old_u.shape[0], old_i.shape[0]
    cold_i = torch.bincount(old.item, minlength=I) == 0
    cold_u = torch.bincount(old.user, minlength=U) == 0
    warm_old = old_i.clone().float()
    warm_old[cold_i[:I0]] = math.nan  # untrained rows never serve as neighbours
    init_i = _init_new_items(warm_old, kg, items)
    new_i[cold_i] = init_i[cold_i].to(new_i)
    for u in torch.nonzero(cold_u).flatten().tolist():
        its = fresh.item[fresh.user == u]
        new_u[u] = new_i[its].mean(0) if its.numel() else old_u[~cold_u[:U0]].mean(0).to(new_u)


def _init_new_items(old_items: Tensor, kg: KnowledgeGraph, all_items: Vocab) -> Tensor:
    """``[I, d]`` initial item vectors from the item's KG attribute neighbours in ``kg``: the mean,
    over the item's attribute entities, of the mean vector of the trained old items having that
    attribute; the mean trained item when none applies. ``old_items`` ``[I0, d]`` holds ``nan`` rows
    for untrained items. Vectorised (two scatter-means), so a genre with thousands of items is cheap."""
    trained = ~torch.isnan(old_items).any(1)
    I0, d = old_items.shape
    fallback = old_items[trained].mean(0) if bool(trained.any()) else torch.zeros(d)
    out = fallback.repeat(len(all_items), 1)
    if kg.triples.numel() == 0:
        return out
    h, _, t = kg.triples.t()
    to_merged = torch.tensor([all_items.get(x, -1) for x in kg.items], dtype=torch.long)
    pairs = torch.cat([torch.stack([h, t], 1), torch.stack([t, h], 1)])  # item -> attribute, both directions
    pairs = pairs[(pairs[:, 0] < kg.num_items) & (pairs[:, 1] >= kg.num_items)]
    item, attr = to_merged[pairs[:, 0]], pairs[:, 1] - kg.num_items
    ok = item >= 0
    item, attr = item[ok], attr[ok]
    n_attr = kg.num_entities - kg.num_items
    src = (item < I0) & trained[item.clamp(max=I0 - 1)]
    q = torch.nan_to_num(old_items.float())
    attr_sum = torch.zeros(n_attr, d).index_add_(0, attr[src], q[item[src]])
    attr_cnt = torch.zeros(n_attr).index_add_(0, attr[src], torch.ones(int(src.sum())))
    has = attr_cnt[attr] > 0
    attr_mean = attr_sum / attr_cnt.clamp(min=1).unsqueeze(1)
    item_sum = torch.zeros(len(all_items), d).index_add_(0, item[has], attr_mean[attr[has]])
    item_cnt = torch.zeros(len(all_items)).index_add_(0, item[has], torch.ones(int(has.sum())))
    got = item_cnt > 0
    out[got] = item_sum[got] / item_cnt[got].unsqueeze(1)
    return out


def _continue_pairwise(est, fresh: Interactions, old: Interactions, everything: Interactions, epochs: int,
                       replay: float, l2_pull: float, anchors, log) -> None:
    from kgrec.data.sampling import NegativeSampler

    cfg = est.config
    est.to("cpu")
    optimizer = torch.optim.Adam(est.param_groups(), lr=cfg.lr)
    sampler = (est.negative_sampler(everything, seed=cfg.seed) if hasattr(est, "negative_sampler")
               else NegativeSampler(everything, est.meta["num_items"], seed=cfg.seed))
    gen = torch.Generator().manual_seed(cfg.seed)
    n_replay = int(round(replay * len(old)))
    for epoch in range(1, epochs + 1):
        est.unfreeze()
        pick = torch.randperm(len(old), generator=gen)[:n_replay]
        users = torch.cat([fresh.user, old.user[pick]])
        items = torch.cat([fresh.item, old.item[pick]])
        perm = torch.randperm(users.numel(), generator=gen)
        total = 0.0
        for start in range(0, users.numel(), cfg.batch_size):
            b = perm[start:start + cfg.batch_size]
            u, p = users[b], items[b]
            loss = est.batch_loss(u, p, sampler.sample(u, cfg.num_neg))
            if l2_pull > 0:
                loss = loss + l2_pull * sum(((t[: a.shape[0]] - a) ** 2).sum() for t, a in _live(est, anchors))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * b.numel()
        if log:
            log(f"update epoch {epoch:3d}  loss {total / max(users.numel(), 1):.4f}  "
                f"({len(fresh)} new + {n_replay} replayed pairs)")
    est.freeze()


def _live(est, anchors):
    """(parameter rows with gradients, their old values): the tables of ``est.module`` again,
    taken from the parameters themselves (the ``anchors`` hold ``.data`` views without autograd)."""
    from kgrec.nn.cf import MF, LightGCNEmbed
    from kgrec.nn.hybrid import HybridModel
    from kgrec.nn.scenario import ScenarioMF

    m = est.module
    if isinstance(m, HybridModel) and m.cf is not None:
        w, n = m.cf.gcn.embedding.weight, m.num_users
        live = (w[:n], w[n:])
    elif isinstance(m, ScenarioMF):
        live = (m.user_emb.weight, m.item_emb.weight, m.offsets_per_user())
    elif isinstance(m, MF):
        live = (m.user_emb.weight, m.item_emb.weight)
    elif isinstance(m, LightGCNEmbed):
        w = m.gcn.embedding.weight
        live = (w[: m.num_users], w[m.num_users:])
    else:
        return []
    return [(t, a) for t, (_, a) in zip(live, anchors)]
