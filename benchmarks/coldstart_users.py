r"""Cold-start users against three yardsticks (issue 21): the hybrid as ``fit`` gives it, given k
interactions at call time, vs EASE fold-in, MostPop and the oracle.

Protocol, per dataset (every random choice seeded 2020):

* **Held-out users.** A seeded 20% of the users (``numpy.random.default_rng(2020).choice``, the
  users of ``dynamics.py``'s earlier cold-start protocol) lose every interaction: no fit sees them.
* **Train / validation of the kept users.** ``kgrec.split(kg, "temporal", ratios=(0.9, 0.1, 0.0))``
  restricted to the kept users: each kept user's interactions in time order (equal times in a
  seeded random order), the first ``floor(0.9 m)`` in train and the rest, their last 10%
  (``m - floor(0.9 m)``, at least one when ``m >= 2``), in validation; ``m = 1`` stays in train.
* **Models, tuned as the benchmark suite tunes them** (``docs/protocol.md``): the declared spaces of
  ``tuning.SPACES`` with the same budget (6 validation trials, ``tuning.trials``), fitted and chosen
  on validation NDCG@10 by ``suite.fit_one``, trained on the train part only. MostPop (nothing to
  choose); EASE (its ``reg`` among 6 values); the hybrid (the suite's "Hybrid" space: its default fit
  with the EASE and sequential-rule priors calibrated on validation, one fit costing the whole
  budget). The hybrid's search runs with seed 2020; seeds 2021 and 2022 refit the chosen point with
  its priors pinned (``Estimator.chosen_params``). Deterministic models run once.
* **Cold-start scoring.** For k in 1, 2, 3, 5, 10 each held-out user's first k interactions by time
  (equal times: lower item id first) are given with their times to
  ``Recommender.recommend_for_history`` (no refit; the given items are not ranked). The relevant
  items are the user's later items that occur in the train part (an item no fit saw is a cold item,
  measured by the suite's ``cold-item`` split, not here); a user is counted at k when they have at
  least one. Per user: NDCG@10 and Recall@20 (``kgrec.evaluation.metrics``: Recall@20 = hits /
  relevant items).
* **Yardsticks.** *EASE fold-in*: the trained EASE scores the given history as a user row,
  ``x_u B`` (``Recommender("ease").recommend_for_history`` is exactly that: tests check it).
  *MostPop*: training popularity. *Oracle*: the relevant items ranked first, the most any top-20
  list can reach (Recall@20 = min(1, 20 / relevant items), NDCG@10 = 1).
* **Comparisons per k.** The share of the oracle's Recall@20 reached; the hybrid's Recall@20 over
  MostPop's; a paired two-sided Wilcoxon signed-rank test per user of the hybrid (each user's value
  averaged over the seeds) vs EASE fold-in (``kgrec.evaluation.significance``), on NDCG@10 (the
  protocol's metric) and on Recall@20, with the protocol's verdict: *ahead* / *behind* when p < 0.05
  and the gap is larger than the hybrid's seed spread (EASE is deterministic), else *tie*.
  Targets (issue 21): ahead of EASE fold-in at every k, and at least 1.5x MostPop's Recall@20.

Each dataset writes ``<out-dir>/dynamics-coldstart-users-<dataset>.{json,md,png}`` once its fits are
done (the JSON keeps every user's figures). The tree must be committed (``--allow-dirty`` marks the
results otherwise). Example::

    OMP_NUM_THREADS=1 python benchmarks/coldstart_users.py --datasets movielens-100k \
        --data-root ../shared/data --cache ../bench-cache
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from common import (
    DEFAULT_CACHE,
    DEFAULT_DATA_ROOT,
    ROOT,
    add_output_arguments,
    fmt_pm,
    load_dataset,
    machine,
    mean_std,
    run_datasets,
    write_results,
)

import numpy as np
import torch

import kgrec
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.errors import KgrecError
from kgrec.evaluation.significance import paired_test, per_user_means, verdict
from kgrec.reports.tables import markdown_table, relative_paths

from dynamics import _ndcg_recall
from suite import _extra, fit_one
from tuning import DEFAULT_BUDGET, SPACES, trials

KS = (1, 2, 3, 5, 10)
#: the models fitted (labels of ``tuning.SPACES``) and what the tables call them
MODELS = {"MostPop": "MostPop", "EASE": "EASE fold-in", "Hybrid": "hybrid"}
SHORT = {"movielens-100k": "ml100k", "movielens-small": "mlsmall"}
TITLES = {"movielens-100k": "ML-100K", "movielens-small": "ML-latest-small"}
METRICS = ("ndcg@10", "recall@20")
TARGET_RATIO = 1.5  # issue 21: the hybrid's Recall@20 at least 1.5x MostPop's at every k


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------- protocol
def held_out_split(kg: KnowledgeGraph, share: float = 0.2, valid: float = 0.1,
                   seed: int = 2020) -> tuple[Split, list[int]]:
    """The kept users' train / validation split and the held-out users (sorted ids).

    A seeded ``share`` of the users is held out; the others' interactions are cut per user by time,
    their last ``valid`` share (at least one when they have two or more) to validation. The test
    part is empty: the held-out users are scored by :func:`cold_cases`.
    """
    inter = kg.interactions
    users = np.unique(inter.user.numpy())
    held = np.sort(np.random.default_rng(seed).choice(users, size=int(round(share * len(users))), replace=False))
    ratios = (1.0 - valid, valid, 0.0)
    per_user = kgrec.split(kg, "temporal", ratios=ratios, seed=seed)
    held_t = torch.as_tensor(held, dtype=torch.long)

    def kept(part: Interactions) -> Interactions:
        return part.select(~torch.isin(part.user, held_t))

    sp = Split("held-out-users", seed, ratios, kg.num_users, kg.num_items, kept(per_user.train),
               kept(per_user.valid), Interactions.empty(), cold_users=held_t)
    return sp, held.tolist()


@dataclass(frozen=True)
class Case:
    """One held-out user at one k: the given ``items`` with their ``times``, and the ``relevant`` rest."""

    user: int
    items: tuple[int, ...]
    times: tuple[float, ...]
    relevant: frozenset[int]


def cold_cases(kg: KnowledgeGraph, sp: Split, held: list[int], ks=KS) -> dict[int, list[Case]]:
    """Per k, the held-out users with at least one relevant item left (ascending user id)."""
    inter = kg.interactions
    if not inter.has_time:
        raise KgrecError("cold-start users are given their first interactions by time: the graph's "
                         "interactions need a time each")
    warm = set(sp.train.item.tolist())
    hist: dict[int, list[tuple[float, int]]] = {u: [] for u in held}
    for u, i, t in zip(inter.user.tolist(), inter.item.tolist(), inter.time.tolist()):
        if u in hist:
            hist[u].append((t, i))
    out: dict[int, list[Case]] = {}
    for k in ks:
        out[k] = []
        for u in held:
            h = sorted(hist[u])
            given = h[:k]
            relevant = frozenset(i for _, i in h[k:] if i in warm) - {i for _, i in given}
            if len(h) > k and relevant:
                out[k].append(Case(u, tuple(i for _, i in given), tuple(t for t, _ in given), relevant))
    return out


def top_lists(rec, kg: KnowledgeGraph, cases: list[Case]) -> list[list[int]]:
    """Each case's top 20 item ids from ``rec.recommend_for_history`` (given items not ranked)."""
    out = []
    for c in cases:
        ranked = rec.recommend_for_history([kg.items[i] for i in c.items], times=list(c.times), k=20)
        out.append([rec.items.id(iri) for iri, _ in ranked])
    return out


def per_user(tops: list[list[int]], cases: list[Case]) -> dict:
    """``{"users", "ndcg@10", "recall@20"}``: plain lists aligned with the cases' users."""
    if not cases:
        return {"users": [], "ndcg@10": [], "recall@20": []}
    nd, rc = _ndcg_recall(tops, [set(c.relevant) for c in cases])
    return {"users": [c.user for c in cases], "ndcg@10": nd.tolist(), "recall@20": rc.tolist()}


def oracle_lists(cases: list[Case]) -> list[list[int]]:
    """The relevant items first: the best any top-20 list can do."""
    return [sorted(c.relevant)[:20] for c in cases]


def compare(a: dict[int, float], b: dict[int, float], spread_a: float, spread_b: float) -> dict:
    """Paired Wilcoxon test of per-user ``a`` vs ``b`` and the protocol's verdict (gap of the means)."""
    test = paired_test(a, b)
    users = sorted(set(a) & set(b))
    gap = float(np.mean([a[u] for u in users]) - np.mean([b[u] for u in users])) if users else float("nan")
    return {"p": test["p"], "n": test["n"], "gap": gap,
            "verdict": verdict(gap, spread_a, spread_b, test["p"] if users else None)}


# ------------------------------------------------------------------------------------------ runs
def fit_and_score(kg: KnowledgeGraph, sp: Split, cases: dict[int, list[Case]], labels=tuple(MODELS),
                  seeds=(2020, 2021, 2022), budget: int = DEFAULT_BUDGET, extra: dict | None = None,
                  keep: Callable[[str, object], None] | None = None) -> tuple[list[dict], dict]:
    """Fit each model as the suite does and score every case with each fit.

    Returns ``(fits, scored)``: one record per fit (its search, chosen point, seconds), and
    ``scored[k][label]``: one per-user table (:func:`per_user`) per fit, with its ``seed``.
    ``keep(label, rec)`` is called with every fitted Recommender (tests read them); fits are
    otherwise dropped once scored, so that one model is in memory at a time.
    """
    fits, scored = [], {k: {} for k in cases}
    for label in labels:
        spec = SPACES[label]
        chosen: list[dict] = []
        for i, seed in enumerate(seeds if spec.seeded else seeds[:1]):
            # the first seed searches; the others refit the point it chose (its priors pinned)
            rec, record = fit_one(kg, sp, spec.model, chosen or trials(spec, budget, seed=seed), seed, extra or {},
                                  test=lambda r: {}, cost=spec.cost)
            chosen = chosen or [{k: v for k, v in record["chosen_params"].items() if k != "seed"}]
            t0, n = time.perf_counter(), 0
            for k, cs in cases.items():
                scored[k].setdefault(label, []).append(dict(per_user(top_lists(rec, kg, cs), cs), seed=seed))
                n += len(cs)
            score_s = time.perf_counter() - t0
            fits.append({"model": label, "seed": seed, "role": "refit" if i else "search",
                         "trials": record["trials"], "searched": record["searched"],
                         "chosen_params": record["chosen_params"], "valid": record["valid"],
                         "best_epoch": record["best_epoch"], "search_seconds": record["search_seconds"],
                         "scoring_ms_per_user": 1000 * score_s / max(n, 1)})
            log(f"[coldstart-users] {label} seed {seed} ({fits[-1]['role']}, {record['trials']} trials): valid "
                f"ndcg@10 {record['valid']['ndcg@10']:.4f}, fit {record['search_seconds']:.0f} s, scoring "
                f"{fits[-1]['scoring_ms_per_user']:.1f} ms/user")
            if keep is not None:
                keep(label, rec)
            del rec
    for k, cs in cases.items():
        scored[k]["oracle"] = [dict(per_user(oracle_lists(cs), cs), seed=None)]
    return fits, scored


def summarise(scored: dict, hybrid: str = "Hybrid", ease: str = "EASE", pop: str = "MostPop") -> list[dict]:
    """Per k: every model's mean (± seed std) of each metric, the share of the oracle, the hybrid over
    MostPop, and the paired tests of the hybrid vs EASE fold-in with their verdicts.
    """
    rows = []
    for k, by in scored.items():
        row: dict = {"given k": k, "users": len(by["oracle"][0]["users"])}
        for label, runs in by.items():
            for m in METRICS:
                row[f"{label} {m}"] = mean_std([float(np.mean(r[m])) if r[m] else float("nan") for r in runs])
        oracle = row["oracle recall@20"][0]
        for label in (hybrid, ease, pop):
            if f"{label} recall@20" in row:
                row[f"{label} % of oracle"] = 100 * row[f"{label} recall@20"][0] / oracle
        if f"{pop} recall@20" in row:
            for label in (hybrid, ease):
                if f"{label} recall@20" in row:
                    row[f"{label} / {pop}"] = row[f"{label} recall@20"][0] / row[f"{pop} recall@20"][0]
        if hybrid in by and ease in by:
            for m in METRICS:
                row[f"test {m}"] = compare(per_user_means([{"per_user": r} for r in by[hybrid]], m),
                                           per_user_means([{"per_user": r} for r in by[ease]], m),
                                           row[f"{hybrid} {m}"][1], row[f"{ease} {m}"][1])
            row["targets met"] = (row["test ndcg@10"]["verdict"] == "ahead"
                                  and row.get(f"{hybrid} / {pop}", 0.0) >= TARGET_RATIO)
        rows.append(row)
    return rows


def tables(summary: list[dict]) -> dict[str, list[dict]]:
    """The Markdown tables of a dataset's summary (means ± seed std)."""
    def cell(row, label, m):
        mean, std = row[f"{label} {m}"]
        return fmt_pm(mean, std) if label == "Hybrid" else mean

    def p_cell(row, m):
        return f"{row[f'test {m}']['p']:.2g}"

    rec, nd = [], []
    for r in summary:
        rec.append({"k": r["given k"], "users": r["users"], "hybrid": cell(r, "Hybrid", "recall@20"),
                    "EASE fold-in": cell(r, "EASE", "recall@20"), "MostPop": cell(r, "MostPop", "recall@20"),
                    "oracle": cell(r, "oracle", "recall@20"), "hybrid % of oracle": f"{r['Hybrid % of oracle']:.1f}",
                    "EASE % of oracle": f"{r['EASE % of oracle']:.1f}",
                    "hybrid / MostPop": f"{r['Hybrid / MostPop']:.2f}", "EASE / MostPop": f"{r['EASE / MostPop']:.2f}",
                    "p vs EASE": p_cell(r, "recall@20"),
                    "verdict": r["test recall@20"]["verdict"]})
        nd.append({"k": r["given k"], "users": r["users"], "hybrid": cell(r, "Hybrid", "ndcg@10"),
                   "EASE fold-in": cell(r, "EASE", "ndcg@10"), "MostPop": cell(r, "MostPop", "ndcg@10"),
                   "oracle": cell(r, "oracle", "ndcg@10"), "p vs EASE": p_cell(r, "ndcg@10"),
                   "verdict": r["test ndcg@10"]["verdict"],
                   f"targets met (ahead on NDCG@10, >= {TARGET_RATIO}x MostPop Recall@20)": r["targets met"]})
    return {"Recall@20": rec, "NDCG@10": nd}


# ------------------------------------------------------------------------------------------ main
def run_dataset(name: str, args, argv: list[str]) -> Path:
    t_start = time.perf_counter()
    out_dir = Path(args.out_dir)
    stem = f"dynamics-coldstart-users-{SHORT.get(name, name)}"
    info = machine(ignore=[out_dir / f"{stem}.{ext}" for ext in ("json", "md", "png")])
    if info["dirty"] and not args.allow_dirty:
        raise KgrecError(f"the working tree at {info['commit']} has uncommitted changes ({info['dirty_files']}); "
                         "commit them so that the results name the code that made them, or pass '--allow-dirty'")
    if Path(kgrec.__file__).resolve().parents[1] != ROOT:
        raise KgrecError(f"kgrec was imported from '{kgrec.__file__}', not from this checkout ({ROOT}): the results "
                         "would name a commit whose code did not run")
    info["torch_threads"] = torch.get_num_threads()
    kg = load_dataset(name, args.data_root, args.cache)
    sp, held = held_out_split(kg)
    ks = tuple(int(k) for k in args.ks.split(","))
    cases = cold_cases(kg, sp, held, ks)
    seeds = tuple(int(s) for s in args.seeds.split(","))
    extra = _extra(args)
    log(f"[coldstart-users] {name}: {len(held)} held-out users; split {sp.stats()}")
    fits, scored = fit_and_score(kg, sp, cases, seeds=seeds, budget=args.budget, extra=extra)
    summary = summarise(scored)
    tabs = tables(summary)
    seconds = time.perf_counter() - t_start
    command = "python benchmarks/coldstart_users.py " + " ".join(argv)
    omp = os.environ.get("OMP_NUM_THREADS")
    dirty = (" **Written from a tree with uncommitted changes (--allow-dirty)**: "
             + ", ".join(info["dirty_files"]) + "." if info["dirty"] else "")
    st = sp.stats()
    fit_lines = "\n".join(
        f"| {f['model']} | {f['seed']} | {f['role']} | {f['trials']} | {f['valid']['ndcg@10']:.4f} | "
        f"{f['best_epoch'] if f['best_epoch'] is not None else '—'} | {f['search_seconds']:.0f} | "
        f"{f['scoring_ms_per_user']:.1f} | `{_short_params(f['chosen_params'])}` |" for f in fits)
    overrides = (f" **Overrides (--param), not the suite's spaces: {extra}** (a smoke run, not headline figures)."
                 if extra else "")
    env = f"OMP_NUM_THREADS={omp} " if omp else ""
    text = (f"{TITLES.get(name, name)}. Command: `{env}{command}`. Machine: {info['cpu']}, "
            f"{info['torch_threads']} torch thread(s), GPU {info['gpu']}; commit {info['commit']}; {info['date']}; "
            f"total {seconds:.0f} s.{dirty}{overrides}\n\n"
            f"Protocol (`benchmarks/coldstart_users.py`): {len(held)} of {kg.num_users} users (a seeded 20%) held out "
            f"of every fit; the kept users' interactions cut per user by time, the last 10% (at least one for a "
            f"user with 2 or more) to validation: {st['train']} train / {st['valid']} validation interactions. "
            f"Models tuned as the suite tunes them (`tuning.SPACES`, budget {args.budget} validation trials, "
            f"chosen on validation NDCG@10, trained on the train part); the hybrid is the suite's \"Hybrid\" "
            f"(priors calibrated on validation), searched with seed {seeds[0]} and refitted at the chosen point "
            f"with seeds {', '.join(map(str, seeds[1:])) or '(none)'}. Each held-out user's first k interactions "
            f"by time are given with their times to `recommend_for_history` (no refit); relevant: their later "
            f"items that occur in the train part; users counted per k. EASE fold-in: the trained EASE's `x_u B`. "
            f"Oracle: the relevant items first (Recall@20 = min(1, 20 / relevant)). Hybrid: mean ± std over seeds; "
            f"p: two-sided Wilcoxon signed-rank test per user, the hybrid's value averaged over seeds, vs EASE "
            f"fold-in; verdict (docs/protocol.md): ahead / behind when p < 0.05 and the gap exceeds the hybrid's "
            f"seed spread, else tie. Targets (issue 21): ahead of EASE fold-in at every k (NDCG@10, the protocol's "
            f"metric) and at least {TARGET_RATIO}x MostPop's Recall@20.\n\n"
            "## Recall@20 of the items left\n\n")
    rest = (f"## NDCG@10 of the items left\n\n{markdown_table(tabs['NDCG@10'], list(tabs['NDCG@10'][0]))}\n\n"
            "## Fits (validation NDCG@10 of the chosen point; fit s: the whole search, all its trials)\n\n"
            "| model | seed | role | trials | valid ndcg@10 | best epoch | fit s | scoring ms/user | chosen |\n"
            "|:--|--:|:--|--:|--:|--:|--:|--:|:--|\n" + fit_lines + "\n")
    payload = {"dataset": name, "command": command, "omp_num_threads": omp, "machine": info, "args": vars(args),
               "seconds": seconds, "split": st, "held_out_users": held, "ks": list(ks), "fits": fits,
               "summary": summary, "tables": tabs, "per_user": {str(k): v for k, v in scored.items()}}
    _, md = write_results(out_dir, stem, payload, tabs["Recall@20"], list(tabs["Recall@20"][0]),
                          title="Cold-start users: the hybrid vs EASE fold-in, MostPop and the oracle", text=text)
    md.write_text(md.read_text(encoding="utf-8") + "\n" + relative_paths(rest, ROOT), encoding="utf-8")
    plot(summary, TITLES.get(name, name), out_dir / f"{stem}.png")
    log(f"[coldstart-users] {name}: wrote {md} ({seconds:.0f} s)")
    return md


def _short_params(params: dict) -> str:
    return ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in params.items() if k != "seed") or "—"


def plot(summary: list[dict], title: str, path: Path) -> None:
    """Recall@20 and NDCG@10 against k: the hybrid (seed std as error bars), EASE fold-in, MostPop, oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ks = [r["given k"] for r in summary]
    for ax, m in zip(axes, ("recall@20", "ndcg@10")):
        for label, name in (*MODELS.items(), ("oracle", "oracle")):
            if f"{label} {m}" not in summary[0] or (label == "oracle" and m == "ndcg@10"):  # 1 at every k
                continue
            mean = [r[f"{label} {m}"][0] for r in summary]
            std = [r[f"{label} {m}"][1] for r in summary]
            ax.errorbar(ks, mean, yerr=std, marker="o", capsize=3, label=name,
                        ls=":" if label == "oracle" else "-")
        ax.set_xscale("log")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("interactions given at call time (k)")
        ax.set_ylabel(f"{m} of the items left")
        ax.set_title(f"{title}: cold-start users, {m}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--datasets", default="movielens-100k,movielens-small")
    p.add_argument("--seeds", default="2020,2021,2022",
                   help="model seeds: the first runs each model's search, the others refit the chosen point")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="validation trials per model")
    p.add_argument("--ks", default=",".join(map(str, KS)), help="interactions given at call time")
    p.add_argument("--param", action="append", default=[],
                   help="key=value applied to every model that has it (smoke runs only: results say so)")
    add_output_arguments(p)
    return run_datasets(p, argv, run_dataset)


if __name__ == "__main__":
    raise SystemExit(main())
