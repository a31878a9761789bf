"""Continued training of a fitted estimator on new interactions: the machinery ``update`` shares.

An estimator's ``continued`` method (:mod:`kgrec.models`) grows its tables to the merged id maps,
copies the old rows, starts the never-trained rows with :func:`init_untrained_rows` and trains on with
:func:`continue_pairwise`: BPR on the new interactions plus a fresh sample of ``replay`` x the old
ones each epoch, with an optional L2 pull of the old rows towards their previous values (limits
forgetting). Estimators are duck-typed here (``config``, ``param_groups``, ``batch_loss``,
``embedding_tables``, ``freeze``/``unfreeze``), so this module sits below :mod:`kgrec.models`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.sampling import NegativeSampler
from kgrec.data.splits import Split
from kgrec.data.vocab import Vocab

__all__ = ["id_graph", "update_split", "init_untrained_rows", "continue_pairwise"]


def id_graph(users: Vocab, items: Vocab, scenarios: list[str] | None = None) -> KnowledgeGraph:
    """A graph holding only the id maps (what the id-based models' ``prepare`` reads), and the
    scenario names when given.
    """
    ents = Vocab(items.labels, sort=False, name="entity")
    extra = {} if scenarios is None else {"scenarios": list(scenarios)}
    return KnowledgeGraph(users, items, ents, Vocab([], name="relation"), torch.empty(0, 3, dtype=torch.long),
                          Interactions.empty(), **extra)


def update_split(num_users: int, num_items: int, train: Interactions) -> Split:
    """A split whose train part is ``train`` and whose valid and test parts are empty: an update
    trains on everything it is given and reads no validation data.
    """
    empty = Interactions.empty()
    return Split("update", 0, (1.0, 0.0, 0.0), num_users, num_items, train, empty, empty)


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
    for untrained items. Vectorised (two scatter-means), so a genre with thousands of items is cheap.
    """
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


def continue_pairwise(est, fresh: Interactions, old: Interactions, everything: Interactions, epochs: int,
                       replay: float, l2_pull: float, anchors, log) -> None:
    """Continue ``est``'s pairwise training for ``epochs`` on ``fresh`` plus a new sample of
    ``replay`` x ``old`` each epoch (negatives drawn against ``everything``), with an L2 pull of
    weight ``l2_pull`` of each table in ``est.embedding_tables()`` towards its anchor: ``anchors``
    pairs ``(table rows, old values)`` in the same order, the old values ``[n0, d]`` covering the
    first ``n0`` rows (those the old model trained).
    """
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
                loss = loss + l2_pull * sum(((t[: a.shape[0]] - a) ** 2).sum() for t, a in _pulled(est, anchors))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * b.numel()
        if log:
            log(f"update epoch {epoch:3d}  loss {total / max(users.numel(), 1):.4f}  "
                f"({len(fresh)} new + {n_replay} replayed pairs)")
    est.freeze()


def _pulled(est, anchors):
    """(live table rows with gradients, their old values): ``est.embedding_tables()`` taken again
    from the parameters themselves (the ``anchors`` hold ``.data`` views without autograd).
    """
    return [(t, a) for t, (_, a) in zip(est.embedding_tables(), anchors)]
