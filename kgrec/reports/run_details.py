"""What a run directory keeps for its report: ``report.json``, written beside the metrics.

A *run directory* is what ``kgrec demo --out RUN_DIR`` and ``kgrec train --out RUN_DIR`` write:

* ``results.json`` / ``results.md`` (demo: every model's parameters, ``fit_info`` with the
  per-epoch ``curve``, test metrics) or ``metrics.json`` / ``metrics.md`` plus the saved model
  (train: one model);
* ``report.json`` (this module): what the page needs that metrics do not hold: metrics at
  several cut-offs K, per-item counts of the training interactions and of each model's top-10
  over all users (popularity / long tail / coverage), and a seeded sample of users with their
  training history, each model's top-10 (test hits marked) and the explanation of each model's
  top-1 (:mod:`kgrec.explain`).

``kgrec report RUN_DIR`` (:mod:`kgrec.reports.html`) turns the two JSON files into ``report.html``
without reloading any model or data.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from kgrec.evaluation.rank import topk
from kgrec.explain import Explainer, training_graph
from kgrec.reports.tables import atomic_write_text, to_jsonable

__all__ = ["REPORT_DATA", "REPORT_KS", "RunDetails", "run_details", "write_details", "write_run_details"]

#: The file :func:`write_run_details` writes into a run directory.
REPORT_DATA = "report.json"
#: Cut-offs of the metrics-vs-K plot.
REPORT_KS = (1, 5, 10, 20, 50)


def _top_counts(rec, users: torch.Tensor, k: int, hist_mask) -> torch.Tensor:
    """How often each item is in the top-``k`` of ``users`` (training items masked), ``[I]``."""
    counts = torch.zeros(len(rec.items), dtype=torch.long)
    for start in range(0, users.numel(), 256):
        b = users[start:start + 256]
        scores = rec.score(b).masked_fill(hist_mask[b], -torch.inf)
        vals, idx = topk(scores, min(k, scores.shape[1]))
        counts += torch.bincount(idx[vals > -torch.inf], minlength=len(rec.items))  # masked items are no pick
    return counts


class RunDetails:
    """Collects the ``report.json`` payload one fitted model at a time (so no two big models need to
    be in memory together).

    Args:
        kg, split: the data every model was fitted on.
        sample_users: users shown on the page (drawn with ``random.Random(seed)`` among users with
            test items).
        ks: cut-offs of the metrics-vs-K plot.
        explain_options: passed to :meth:`kgrec.explain.Explainer.explain` for each sample user's top-1.
    """

    def __init__(self, kg, split, sample_users: int = 4, seed: int = 2020, ks: Sequence[int] = REPORT_KS,
                 explain_options: dict | None = None):
        self.kg, self.split, self.ks = kg, split, tuple(ks)
        self.explain_options = dict(explain_options or {})
        train = split.train
        self.hist_mask = torch.zeros(kg.num_users, kg.num_items, dtype=torch.bool)
        self.hist_mask[train.user, train.item] = True
        self.graph = training_graph(kg, train.user, train.item)
        test_users = sorted(set(split.test.user.tolist()))
        self.users = sorted(random.Random(seed).sample(test_users, min(sample_users, len(test_users))))
        self.data: dict = {"ks": list(ks), "models": [], "train_popularity": torch.bincount(
            train.item, minlength=kg.num_items).tolist(), "metrics_by_k": {}, "top10_counts": {}, "samples": []}
        for u in self.users:
            rows = (train.user == u).nonzero().flatten()
            order = rows[torch.argsort(train.time[rows].nan_to_num(0.0), descending=True, stable=True)]
            self.data["samples"].append({
                "user": kg.users[u], "history_size": int(rows.numel()),
                "history": [{"item": kg.items[i], "label": kg.label(i)} for i in train.item[order][:10].tolist()],
                "test_items": sorted(kg.items[i] for i in set(split.test.item[split.test.user == u].tolist())),
                "top": {}, "explanations": {}})

    def add(self, name: str, rec) -> None:
        """Record model ``name``: metrics at every K, top-10 counts, the sample users' top-10 and the
        explanation of each one's top-1.
        """
        kg, d = self.kg, self.data
        m = rec.evaluate(self.split, ks=self.ks, part="test")
        d["models"].append(name)
        d["metrics_by_k"][name] = {k: v for k, v in m.items() if "@" in k}
        d["top10_counts"][name] = _top_counts(rec, torch.arange(kg.num_users), 10, self.hist_mask).tolist()
        explainer = Explainer(rec, kg, graph=self.graph)
        for u, sample in zip(self.users, d["samples"]):
            user = kg.users[u]
            sample.setdefault("user_label", explainer.user_label(u))
            test = set(sample["test_items"])
            # as the top-10 counts: training items masked (recommend() would also leave out the
            # test items, which the report marks as hits)
            train_items = [kg.items[i] for i in self.hist_mask[u].nonzero().flatten().tolist()]
            top = rec.recommend([user], k=10, exclude_seen=False, exclude={user: train_items})[user]
            sample["top"][name] = [{"item": i, "label": kg.label(kg.items.id(i)), "score": s, "hit": i in test}
                                   for i, s in top]
            if top:
                sample["explanations"][name] = explainer.explain(user, top[0][0], **self.explain_options).to_dict()

    def to_dict(self) -> dict:
        return self.data


def run_details(recs: Mapping[str, object], kg, split, **kwargs) -> dict:
    """The ``report.json`` payload of fitted recommenders ``{name: Recommender}`` (see :class:`RunDetails`)."""
    details = RunDetails(kg, split, **kwargs)
    for name, rec in recs.items():
        details.add(name, rec)
    return details.to_dict()


def write_details(out_dir: str | Path, details: "RunDetails | dict") -> Path:
    """Write a :class:`RunDetails` (or its dict) to ``out_dir/report.json``, atomically."""
    import json

    payload = to_jsonable(details.to_dict() if isinstance(details, RunDetails) else details)
    return atomic_write_text(Path(out_dir) / REPORT_DATA, json.dumps(payload, ensure_ascii=False) + "\n")


def write_run_details(out_dir: str | Path, recs: Mapping[str, object], kg, split, **kwargs) -> Path:
    """:func:`run_details` written to ``out_dir/report.json``."""
    return write_details(out_dir, run_details(recs, kg, split, **kwargs))
