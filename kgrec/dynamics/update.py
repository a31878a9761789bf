"""Incremental update of a fitted model with new interactions (``Recommender.update``).

The old model's training interactions are read back from its context (history CSR + latest times),
so an update needs no access to the old data files. New users and items are appended after the old
ids (old ids never move). Then:

* closed-form models (MostPop, ItemKNN, EASE) refit on old + new interactions: an exact update
  (their fit is one pass over the data; there is no state to carry over);
* embedding models (BPR-MF, LightGCN) grow their user/item tables, copy the old rows, initialise an
  item never trained (new, or known without interactions) from its KG attribute neighbours (the
  mean over its attributes of the mean trained item having that attribute; else the mean item) and
  such a user from the mean of their new items' vectors, then continue BPR training for
  ``epochs`` on the new interactions plus a fresh sample of ``replay`` x the old ones each epoch,
  with an optional L2 pull of the old rows towards their previous values (limits forgetting).

What a model does beyond that is its estimator's ``continued`` method (the hybrid grows its KG node
table and re-prepares its texts over the merged graph; ``scenario-mf`` keeps each new interaction
in its scenario's block of virtual users through ``update_pairs``); the shared machinery is
:mod:`kgrec.training.continual`.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError

__all__ = ["update_estimator", "old_interactions", "merge_vocab"]


def old_interactions(est) -> Interactions:
    """The training interactions an estimator was fitted on, from its history CSR (one row per
    distinct pair, with its latest time; ``nan`` for checkpoints saved before times were kept).
    """
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
    mapped, old = est.update_pairs(kg, new, mapped, old, U)  # e.g. scenario-mf's virtual users
    known = np.isin(mapped.user.numpy() * I + mapped.item.numpy(), old.user.numpy() * I + old.item.numpy())
    fresh = mapped.select(torch.as_tensor(~known))
    info = {"new_users": n_new_users, "new_items": n_new_items, "new_interactions": len(fresh),
            "known_interactions_skipped": int(known.sum()), "old_interactions": len(old)}
    if len(fresh) == 0:  # nothing new: the model stays as it is
        info.update(seconds=time.perf_counter() - t0, method="none")
        return est, users, items, info
    new_est, how = est.continued(all_users, all_items, kg, fresh, old, epochs, replay, l2_pull,
                                 item_labels=item_labels, log=log)
    if not est.trainable:  # a closed-form refit: no epochs, nothing carried over
        info.update(method=how, seconds=time.perf_counter() - t0)
        return new_est, all_users, all_items, info
    method = f"{epochs} epoch(s) of BPR on the new interactions + {replay:g} replay, l2_pull {l2_pull:g}"
    if how:
        method += f" ({how})"
    info.update(method=method, epochs=epochs, replay=replay, l2_pull=l2_pull, seconds=time.perf_counter() - t0)
    new_est.fit_info = {**est.fit_info, "update": info}
    return new_est, all_users, all_items, info
