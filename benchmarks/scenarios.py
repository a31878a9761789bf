"""Multi-scenario transfer on MovieLens latest-small: two item domains from the genre attribute (issue 5).

Scenarios: an interaction is in the ``comedy`` domain when its movie has the genre Comedy, else in
``other`` (``kgrec.data.scenarios.assign_domains``; the mapping's ``[scenarios]`` section does the
same at load time). Target = ``comedy`` (39% of the ratings), source = ``other``. The same 610 users
act in both domains; the items are disjoint.

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

Example::

    flock /work/cpu.lock python benchmarks/scenarios.py --seeds 2020,2021,2022
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from pathlib import Path

import torch

from common import DEFAULT_CACHE, DEFAULT_DATA_ROOT, ROOT, load_dataset, machine, mean_std

import kgrec
from kgrec.data.scenarios import assign_domains, few_shot, target_test
from kgrec.report import markdown_table, write_results

KGR = "https://w3id.org/kgrec/vocab#"
GENRE = "https://w3id.org/kgrec/data/movielens-small/genre/"
#: BPR-MF for every method; lr 1e-2 so the 1-interaction-per-user runs get somewhere in few steps
BPRMF = {"dim": 64, "lr": 1e-2, "reg": 0.0, "epochs": 60, "patience": 5, "eval_every": 3, "batch_size": 2048}
METHODS = ("target mostpop", "target alone", "transfer", "joint")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def domain_graph(kg, target_genre: str):
    """``kg`` without tag edges, its interactions in scenario ``<genre>`` or ``other``."""
    tag = kg.relations.get(KGR + "tag", -1)
    kg = dataclasses.replace(kg, triples=kg.triples[kg.triples[:, 1] != tag])
    return assign_domains(kg, KGR + "genre", [(target_genre.lower(), [GENRE + target_genre])], rest="other")


def run_seed(kg, target: str, budgets: list[int | None], seed: int, update_epochs: int, replay: float) -> list[dict]:
    sp = kgrec.split(kg, "random", seed=seed)
    ev = target_test(kg, sp, target)
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
        for method in METHODS:
            rec = fits[method]
            m = rec.evaluate(ev, ks=(10, 20))
            rows.append({"seed": seed, "n per user": "all" if n is None else n, "target train": n_target,
                         "method": method, "ndcg@10": m["ndcg@10"], "recall@20": m["recall@20"],
                         "test users": m["users"], "seconds": secs[method],
                         "best_epoch": rec.fit_info.get("best_epoch")})
            log(f"[seed {seed}] n={rows[-1]['n per user']} {method}: ndcg@10 {m['ndcg@10']:.4f} "
                f"recall@20 {m['recall@20']:.4f} ({secs[method]:.0f} s)")
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Mean ± std over seeds per (n, method), with the change against target alone."""
    out = []
    for n in dict.fromkeys(r["n per user"] for r in rows):
        base = None
        for method in METHODS:
            rs = [r for r in rows if r["n per user"] == n and r["method"] == method]
            nd, nd_s = mean_std([r["ndcg@10"] for r in rs])
            rc, rc_s = mean_std([r["recall@20"] for r in rs])
            base = nd if method == "target alone" else base  # "target mostpop" comes first: no change shown
            out.append({"n per user": n, "target train": round(mean_std([r["target train"] for r in rs])[0]),
                        "method": method, "ndcg@10": nd, "ndcg@10 std": nd_s, "recall@20": rc,
                        "recall@20 std": rc_s,
                        "vs target alone ndcg %": None if base is None else 100 * (nd / base - 1),
                        "seeds": len(rs), "test users": rs[0]["test users"]})
    return out


def plot(table: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = list(dict.fromkeys(r["n per user"] for r in table))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric in zip(axes, ("ndcg@10", "recall@20")):
        for method in METHODS:
            rs = [r for r in table if r["method"] == method]
            ax.errorbar(range(len(rs)), [r[metric] for r in rs], yerr=[r[f"{metric} std"] for r in rs],
                        fmt="o-", capsize=3, label=method)
        ax.set_xticks(range(len(ns)), [str(n) for n in ns])
        ax.set_xlabel("target (comedy) training interactions per user")
        ax.set_ylabel(f"target test {metric}")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    torch.set_num_threads(args.threads)
    info = machine()
    t_start = time.perf_counter()
    kg = domain_graph(load_dataset(args.dataset, args.data_root, args.cache), args.target_genre)
    target = args.target_genre.lower()
    counts = kg.stats()["interactions_per_scenario"]
    budgets = [None if b == "all" else int(b) for b in args.budgets.split(",")]
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        rows += run_seed(kg, target, budgets, seed, args.update_epochs, args.replay)
    table = summary(rows)
    cmd = f"python benchmarks/scenarios.py {' '.join(argv if argv is not None else sys.argv[1:])}"
    n_seeds = len(args.seeds.split(","))
    text = (f"Command: `{cmd}`. Machine: {info['cpu']}, {info['torch_threads']} torch thread(s), GPU {info['gpu']}; "
            f"commit {info['commit']}; {info['date']}; total {time.perf_counter() - t_start:.0f} s.\n\n"
            f"Data: {args.dataset}, two item domains from the genre: target `{target}` ({counts[target]} "
            f"interactions), source `other` ({counts['other']}); tag edges dropped. Split random 80/10/10 per "
            f"user (seed = model seed); test = target test interactions ranked among the "
            f"{int(target_test(kg, kgrec.split(kg, 'random', seed=2020), target).test_candidates.numel())} target "
            f"items, every known training/validation interaction masked. BPR-MF {BPRMF} for every method; transfer = "
            f"source BPR-MF + `Recommender.update` ({args.update_epochs} epochs, replay {args.replay}); joint = "
            f"`scenario-mf` (per-scenario user offset, offset_reg 1.0). Mean ± std over {n_seeds} seed(s) "
            f"({args.seeds}).")
    payload = {"machine": info, "args": vars(args), "bprmf": BPRMF, "scenario_counts": counts, "rows": rows,
               "summary": table}
    out = Path(args.out)
    columns = ["n per user", "target train", "method", "ndcg@10", "ndcg@10 std", "recall@20", "recall@20 std",
               "vs target alone ndcg %", "seeds", "test users"]
    write_results(out.parent, out.name, payload, table, columns, title="Multi-scenario transfer", text=text)
    md = out.with_suffix(".md")
    md.write_text(md.read_text() + "\n## Every seed\n\n" + markdown_table(rows, list(rows[0])) + "\n")
    plot(table, out.with_suffix(".png"), f"{args.dataset}: target '{target}' vs source 'other' "
                                         f"({n_seeds} seed(s), commit {info['commit']})")
    print(markdown_table(table, columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
