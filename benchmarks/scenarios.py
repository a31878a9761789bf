r"""Multi-scenario transfer on MovieLens latest-small (issue 5): two item domains, or two behaviour types.

``--experiment domain`` (default). Scenarios: an interaction is in the ``comedy`` domain when its
movie has the genre Comedy, else in ``other`` (``kgrec.data.scenarios.assign_domains``; the
mapping's ``[scenarios]`` section does the same at load time). Target = ``comedy`` (39% of the
ratings), source = ``other``. The same 610 users act in both domains; the items are disjoint.

Protocol (PROTOCOL.md metrics): a ``random`` per-user 80/10/10 split of all interactions (seed s);
each user keeps at most ``n`` of their comedy *training* interactions (seeded, nested in n; ``all``
keeps every one); test = the comedy test interactions, ranked among the 3,756 comedy movies with
every known training/validation interaction masked (also the comedy training ones left out).
Three ways to get a comedy model, all BPR-MF (dim 64; a capped schedule for two shared CPU cores):

* ``target mostpop``: the most popular movies among the n comedy interactions per user (reference);
* ``target alone``: BPR-MF fitted on the n comedy interactions per user (epoch selected on comedy
  validation NDCG@10);
* ``transfer``: BPR-MF fitted on the ``other`` domain (epoch selected on its validation part), then
  ``Recommender.update(kg, few, scenarios=["comedy"])``: the comedy movies start from their KG
  genre neighbours, then ``--update-epochs`` epochs on the n comedy interactions per user with
  ``--replay`` of the source interactions (one fit of the source model per seed);
* ``joint``: ``scenario-mf`` (shared user/item embeddings + a per-scenario user offset) fitted on
  source + the n comedy interactions per user, epoch selected on comedy validation NDCG@10.

The ``kgr:tag`` edges of the converted graph are dropped first (a tag reveals that a user met a
movie), so the KG that seeds the comedy movies in ``update`` holds genres only.

``--experiment behaviour``: source = the ratings, target = the free-text tag applications of the
same users. ``ratings.csv`` + ``tags.csv`` are converted with ``tag_events=True, tags=False`` (each
tag application a ``kgr:Tagging`` event, no ``kgr:tag`` KG edges) into ``<cache>/movielens-small-tags/``
and loaded with the ``kgrec-behaviours`` mapping (scenarios ``rating`` and ``tag``). The loader keeps
one interaction per tag application; here they are collapsed to one per (user, movie) pair, the
earliest (:func:`kgrec.data.scenarios.first_per_pair`: 3,683 applications -> 1,775 pairs by 58 users),
so a budget of n is n distinct tagged movies. Same split, budgets, methods and epoch selection as
above, with two differences: the tag test is ranked among the movies anyone tagged, masking the
user's *tag* training/validation movies only (92% of the tagged pairs are movies the user also
rated: masking the rated movies would leave almost no test pair; knowing them is the source
scenario's information, as in multi-behaviour recommendation), and one more reference,
``rated first`` (the user's training-rated movies first, each group by tag popularity), which
shows what recalling the rating history alone gives.

Examples::

    flock /work/cpu.lock python benchmarks/scenarios.py --seeds 2020,2021,2022
    flock /work/cpu.lock python benchmarks/scenarios.py --experiment behaviour --budgets 1,2,5,all \\
        --seeds 2020,2021,2022 --out benchmarks/results/scenarios-tags
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from pathlib import Path

from common import (
    DEFAULT_CACHE,
    DEFAULT_DATA_ROOT,
    ROOT,
    load_dataset,
    machine,
    mean_std,
    write_results,
)

import torch

import kgrec
from kgrec.data.convert import convert_movielens_latest_small
from kgrec.data.scenarios import assign_domains, few_shot, first_per_pair, select, target_test
from kgrec.evaluation.evaluator import evaluate
from kgrec.reports.tables import markdown_table

from suite import dataset_source

KGR = "https://w3id.org/kgrec/vocab#"
GENRE = "https://w3id.org/kgrec/data/movielens-small/genre/"
#: BPR-MF for every method; lr 1e-2 so the 1-interaction-per-user runs get somewhere in few steps
BPRMF = {"dim": 64, "lr": 1e-2, "reg": 0.0, "epochs": 60, "patience": 5, "eval_every": 3, "batch_size": 2048}
METHODS = ("target mostpop", "target alone", "transfer", "joint")
#: the behaviour experiment adds a reference that ranks the user's rated movies first
BEHAVIOUR_METHODS = ("target mostpop", "rated first", "target alone", "transfer", "joint")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def domain_graph(kg, target_genre: str):
    """``kg`` without tag edges, its interactions in scenario ``<genre>`` or ``other``."""
    tag = kg.relations.get(KGR + "tag", -1)
    kg = dataclasses.replace(kg, triples=kg.triples[kg.triples[:, 1] != tag])
    return assign_domains(kg, KGR + "genre", [(target_genre.lower(), [GENRE + target_genre])], rest="other")


def behaviour_graph(data_root: str, cache: str):
    """ML-latest-small ratings (scenario ``rating``) and tag applications (``tag``, one per user-movie pair)."""
    rdf = Path(cache) / "movielens-small-tags" / "movielens-small-tags.nt.gz"
    if not rdf.is_file():
        convert_movielens_latest_small(dataset_source("movielens-small", data_root), rdf, tags=False,
                                       tag_events=True)
    kg = kgrec.load(rdf, mapping="kgrec-behaviours")
    applications = kg.stats()["interactions_per_scenario"]["tag"]
    return first_per_pair(kg, ["tag"]), applications


class RatedFirst:
    """``rated first``: the user's source training movies first, both groups ordered by target popularity.

    Shapes: ``score(users [B]) -> [B, I]``; ``rated`` ``[U, I]`` bool, ``pop`` ``[I]``.
    """

    def __init__(self, kg, train, target: str):
        t = kg.scenarios.index(target)
        src = train.select(train.scenario_ids != t)
        self.rated = torch.zeros(kg.num_users, kg.num_items, dtype=torch.bool)
        self.rated[src.user, src.item] = True
        tgt = train.select(train.scenario_ids == t)
        self.pop = torch.bincount(tgt.item, minlength=kg.num_items).float()
        self.fit_info = {}

    def score(self, users):
        return self.rated[users].float() * (float(self.pop.max()) + 1) + self.pop

    def evaluate(self, split, ks):
        return evaluate(self.score, split, ks)


def run_seed(kg, target: str, budgets: list[int | None], seed: int, update_epochs: int, replay: float,
             behaviour: bool = False) -> list[dict]:
    """Every method at every budget for one seed.

    ``behaviour``: the target test masks the target scenario's training/validation items only (the
    scenarios share items) and the ``rated first`` reference runs; otherwise every known training and
    validation interaction is masked (disjoint item domains: the same thing).
    """
    sp = kgrec.split(kg, "random", seed=seed)
    ev = target_test(kg, sp, target)
    if behaviour:
        ev = select(kg, ev, [target], "target")
    methods = BEHAVIOUR_METHODS if behaviour else METHODS
    source = [s for s in kg.scenarios if s != target]
    params = dict(BPRMF, seed=seed)
    t0 = time.perf_counter()
    src = kgrec.Recommender("bprmf", **params).fit(kg, sp, scenarios=source)
    src_s = time.perf_counter() - t0
    log(f"[seed {seed}] source model on {source}: best epoch {src.fit_info['best_epoch']} ({src_s:.0f} s)")
    rows = []
    for n in budgets:
        fs = few_shot(kg, sp, target, n, seed=seed)
        n_target = int((fs.train.scenario_ids == kg.scenarios.index(target)).sum())
        fits, secs = {}, {}
        t = time.perf_counter()
        fits["target mostpop"] = kgrec.Recommender("mostpop").fit(kg, fs, scenarios=[target])
        secs["target mostpop"] = time.perf_counter() - t
        if behaviour:
            t = time.perf_counter()
            fits["rated first"] = RatedFirst(kg, fs.train, target)
            secs["rated first"] = time.perf_counter() - t
        t = time.perf_counter()
        fits["target alone"] = kgrec.Recommender("bprmf", **params).fit(kg, fs, scenarios=[target])
        secs["target alone"] = time.perf_counter() - t
        t = time.perf_counter()
        fits["transfer"] = copy.deepcopy(src).update(kg, fs, scenarios=[target], epochs=update_epochs,
                                                     replay=replay)
        secs["transfer"] = time.perf_counter() - t  # the update only; the source fit is src_s, once
        t = time.perf_counter()
        fits["joint"] = kgrec.Recommender("scenario-mf", target_scenario=target, **params).fit(kg, fs)
        secs["joint"] = time.perf_counter() - t
        for method in methods:
            rec = fits[method]
            m = rec.evaluate(ev, ks=(10, 20))
            rows.append({"seed": seed, "n per user": "all" if n is None else n, "target train": n_target,
                         "method": method, "ndcg@10": m["ndcg@10"], "recall@20": m["recall@20"],
                         "test users": m["users"], "seconds": secs[method],
                         "best_epoch": rec.fit_info.get("best_epoch")})
            log(f"[seed {seed}] n={rows[-1]['n per user']} {method}: ndcg@10 {m['ndcg@10']:.4f} "
                f"recall@20 {m['recall@20']:.4f} ({secs[method]:.0f} s)")
    return rows


def _span(values: list[int]) -> int | str:
    """The value when every seed has the same, else ``"min-max"`` (seeds test different users)."""
    lo, hi = min(values), max(values)
    return lo if lo == hi else f"{lo}-{hi}"


def summary(rows: list[dict], methods=METHODS) -> list[dict]:
    """Mean ± std over seeds per (n, method), with the change against target alone."""
    out = []
    for n in dict.fromkeys(r["n per user"] for r in rows):
        base = None
        for method in methods:
            rs = [r for r in rows if r["n per user"] == n and r["method"] == method]
            nd, nd_s = mean_std([r["ndcg@10"] for r in rs])
            rc, rc_s = mean_std([r["recall@20"] for r in rs])
            base = nd if method == "target alone" else base  # the references come first: no change shown
            out.append({"n per user": n, "target train": round(mean_std([r["target train"] for r in rs])[0]),
                        "method": method, "ndcg@10": nd, "ndcg@10 std": nd_s, "recall@20": rc,
                        "recall@20 std": rc_s,
                        "vs target alone ndcg %": None if base is None else 100 * (nd / base - 1),
                        "seeds": len(rs), "test users": _span([r["test users"] for r in rs])})
    return out


def plot(table: list[dict], path: Path, title: str, methods=METHODS, what: str = "comedy") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = list(dict.fromkeys(r["n per user"] for r in table))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric in zip(axes, ("ndcg@10", "recall@20")):
        for method in methods:
            rs = [r for r in table if r["method"] == method]
            ax.errorbar(range(len(rs)), [r[metric] for r in rs], yerr=[r[f"{metric} std"] for r in rs],
                        fmt="o-", capsize=3, label=method)
        ax.set_xticks(range(len(ns)), [str(n) for n in ns])
        ax.set_xlabel(f"target ({what}) training interactions per user")
        ax.set_ylabel(f"target test {metric}")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rated_share(kg, target: str, seeds: list[int]) -> float:
    """Percent of the target test pairs (mean over seeds) whose movie the user has in source training."""
    shares = []
    for seed in seeds:
        sp = kgrec.split(kg, "random", seed=seed)
        t = kg.scenarios.index(target)
        src, test = sp.train.select(sp.train.scenario_ids != t), sp.test.select(sp.test.scenario_ids == t)
        rated = set(zip(src.user.tolist(), src.item.tolist()))
        shares.append(100 * sum(p in rated for p in zip(test.user.tolist(), test.item.tolist())) / max(len(test), 1))
    return mean_std(shares)[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", choices=("domain", "behaviour"), default="domain",
                   help="domain: comedy vs other movies; behaviour: ratings -> tags (movielens-small only)")
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--dataset", default="movielens-small")
    p.add_argument("--target-genre", default="Comedy", help="the target domain: movies of this genre")
    p.add_argument("--budgets", default="1,2,5,10,all", help="target training interactions per user")
    p.add_argument("--seeds", default="2020")
    p.add_argument("--update-epochs", type=int, default=10)
    p.add_argument("--replay", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scenarios"))
    args = p.parse_args(argv)
    behaviour = args.experiment == "behaviour"
    if behaviour and args.dataset != "movielens-small":
        p.error(f"'--dataset' must be movielens-small with --experiment behaviour (got {args.dataset!r})")
    torch.set_num_threads(args.threads)
    info = machine()
    t_start = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")]
    if behaviour:
        kg, applications = behaviour_graph(args.data_root, args.cache)
        target = "tag"
    else:
        kg = domain_graph(load_dataset(args.dataset, args.data_root, args.cache), args.target_genre)
        target = args.target_genre.lower()
    methods = BEHAVIOUR_METHODS if behaviour else METHODS
    counts = kg.stats()["interactions_per_scenario"]
    budgets = [None if b == "all" else int(b) for b in args.budgets.split(",")]
    rows = []
    for seed in seeds:
        rows += run_seed(kg, target, budgets, seed, args.update_epochs, args.replay, behaviour)
    table = summary(rows, methods)
    cmd = f"python benchmarks/scenarios.py {' '.join(argv if argv is not None else sys.argv[1:])}"
    n_seeds = len(seeds)
    n_cand = int(target_test(kg, kgrec.split(kg, 'random', seed=2020), target).test_candidates.numel())
    head = (f"Command: `{cmd}`. Machine: {info['cpu']}, {info['torch_threads']} torch thread(s), GPU {info['gpu']}; "
            f"commit {info['commit']}; {info['date']}; total {time.perf_counter() - t_start:.0f} s.\n\n")
    models = (f"BPR-MF {BPRMF} for every method; transfer = source BPR-MF + `Recommender.update` "
              f"({args.update_epochs} epochs, replay {args.replay}); joint = `scenario-mf` (per-scenario user "
              f"offset, offset_reg 1.0). Mean ± std over {n_seeds} seed(s) ({args.seeds}).")
    extra = {}
    if behaviour:
        taggers = int(torch.unique(select(kg, kg.interactions, [target]).user).numel())
        extra["test_pairs_on_rated_movies_pct"] = rated_share(kg, target, seeds)
        text = head + (
            f"Data: movielens-small converted with `tag_events=True, tags=False`, loaded with the `kgrec-behaviours` "
            f"mapping: source `rating` ({counts['rating']} interactions), target `tag` ({applications} tag "
            f"applications collapsed to {counts['tag']} (user, movie) pairs, the earliest kept, by {taggers} users); "
            f"no tag edges in the KG. Split random 80/10/10 per user over both scenarios (seed = model seed); "
            f"test = tag test pairs ranked among the {n_cand} tagged movies, masking the user's tag "
            f"training/validation movies only (rated movies stay rankable: "
            f"{extra['test_pairs_on_rated_movies_pct']:.0f}% of the tag test pairs are movies the user rated in "
            f"training). `rated first` = the user's training-rated movies first, each group by tag popularity. "
            f"n per user = distinct tagged movies kept per user (users with fewer keep all theirs). " + models)
        title = f"movielens-small: target 'tag' vs source 'rating' ({n_seeds} seed(s), commit {info['commit']})"
    else:
        text = head + (
            f"Data: {args.dataset}, two item domains from the genre: target `{target}` ({counts[target]} "
            f"interactions), source `other` ({counts['other']}); tag edges dropped. Split random 80/10/10 per "
            f"user (seed = model seed); test = target test interactions ranked among the "
            f"{n_cand} target items, every known training/validation interaction masked. " + models)
        title = f"{args.dataset}: target '{target}' vs source 'other' ({n_seeds} seed(s), commit {info['commit']})"
    payload = {"machine": info, "args": vars(args), "bprmf": BPRMF, "scenario_counts": counts, **extra,
               "rows": rows, "summary": table}
    out = Path(args.out)
    columns = ["n per user", "target train", "method", "ndcg@10", "ndcg@10 std", "recall@20", "recall@20 std",
               "vs target alone ndcg %", "seeds", "test users"]
    write_results(out.parent, out.name, payload, table, columns, title="Multi-scenario transfer", text=text)
    md = out.with_suffix(".md")
    md.write_text(md.read_text() + "\n## Every seed\n\n" + markdown_table(rows, list(rows[0])) + "\n")
    plot(table, out.with_suffix(".png"), title, methods, target)
    print(markdown_table(table, columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
