"""MovieLens-100K (+ Freebase KG + DBpedia abstracts): baselines, the hybrid and its ablations.

Data: the original MovieLens-100K files, converted to RDF (``kgrec.data.convert``) and loaded with
``kgrec.load``; splits: the exact train/valid/test pairs of the RecBole peer table in
ANCHORS.md (``peer-splits/{random,temporal}``, per-user 80/10/10, RecBole seed 2020), so kgrec's
figures compare with the peers' on identical data. ``--seeds`` are model seeds (initialisation and
negative sampling); closed-form models are deterministic. Selection on validation NDCG@10 only; the
test set is scored once, at the selected checkpoint (PROTOCOL.md).

Example::

    python benchmarks/ml100k.py --models mostpop,itemknn,ease,bprmf,lightgcn --out benchmarks/results/ml100k-baselines
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from common import DEFAULT_CACHE, DEFAULT_DATA_ROOT, ROOT, fmt_pm, load_dataset, machine, mean_std

import kgrec
from kgrec.bench import fit_one, peer_rows, peer_split
from common import write_results  # noqa: E402
from kgrec.reports.tables import markdown_table

BASE = "https://w3id.org/kgrec/data/movielens-100k/"

#: name -> (kgrec model, params). Closed-form models' grids are searched on validation NDCG@10.
SPECS: dict[str, tuple[str, dict]] = {
    "MostPop": ("mostpop", {}),
    "ItemKNN": ("itemknn", {"grid": {"k": [50, 100, 200], "shrink": [0.0, 10.0, 50.0]}}),
    "EASE": ("ease", {"grid": {"reg": [100.0, 250.0, 500.0, 1000.0]}}),
    "BPR-MF": ("bprmf", {"lr": 1e-3, "reg": 0.0, "dim": 64, "patience": 10}),
    "LightGCN": ("lightgcn", {"lr": 5e-3, "reg": 1e-4, "dim": 64, "num_layers": 3, "patience": 10}),
    "Hybrid": ("hybrid", {}),
    "Hybrid w/o KG": ("hybrid", {"use_kg": False}),
    "Hybrid w/o text": ("hybrid", {"use_text": False}),
    "Hybrid w/o CF": ("hybrid", {"use_cf": False}),
    "Hybrid concat (no cross-attn)": ("hybrid", {"fusion": "concat"}),
    "Hybrid w/o sequential rules": ("hybrid", {"seq_prior": False}),
}
ALIASES = {"mostpop": "MostPop", "itemknn": "ItemKNN", "ease": "EASE", "bprmf": "BPR-MF", "lightgcn": "LightGCN",
           "hybrid": "Hybrid", "hybrid-nokg": "Hybrid w/o KG", "hybrid-notext": "Hybrid w/o text",
           "hybrid-nocf": "Hybrid w/o CF", "hybrid-concat": "Hybrid concat (no cross-attn)",
           "hybrid-noseq": "Hybrid w/o sequential rules"}

#: RecBole figures on the same splits: one data file, read by this script and by kgrec.bench
PEERS = {(r["model"], r["split"]): (r["recall@10"], r["recall@20"], r["ndcg@10"], r["ndcg@20"])
         for r in peer_rows()}
METRICS = ["recall@10", "recall@20", "ndcg@10", "ndcg@20", "precision@10", "hit@10", "mrr@10", "coverage@10",
           "avg_pop@10"]


def _init_worker(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def _task(job, kg=None, sp=None) -> dict:
    """One fit: ``job = ((split, model name, seed), data_root, cache, extra params)`` -> its record."""
    (kind, name, seed), data_root, cache, extra = job
    if kg is None:
        kg = load_dataset("movielens-100k", data_root, cache)
        sp = peer_split(kg, data_root, kind)
    model, params = SPECS[name]
    t = time.perf_counter()
    _, rec = fit_one(kg, sp, model, params, seed, extra)
    rec.update(name=name, split=kind)
    print(f"[{kind}] {name} seed {seed}: test ndcg@10 {rec['test']['ndcg@10']:.4f} "
          f"recall@20 {rec['test']['recall@20']:.4f} ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    return rec


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--splits", default="random,temporal")
    p.add_argument("--seeds", default="2020,2021,2022")
    p.add_argument("--ablation-seeds", default="2020", help="seeds of the hybrid's ablation variants")
    p.add_argument("--models", default="mostpop,itemknn,ease,bprmf,lightgcn")
    p.add_argument("--param", action="append", default=[], help="key=value applied to every model that has it")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process")
    p.add_argument("--jobs", type=int, default=1, help="fits run in parallel processes (on a GPU machine)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ml100k"))
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    extra = {}
    for kv in args.param:
        k, _, v = kv.partition("=")
        try:  # numbers, lists, true/false as JSON; anything else (e.g. top-k) as a string
            extra[k] = json.loads(v)
        except ValueError:
            extra[k] = v
    names = [ALIASES.get(m, m) for m in args.models.split(",")]
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {sorted(ALIASES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    info = machine()  # at the start: the commit that ran, even if the tree changes meanwhile
    info["jobs"] = args.jobs
    kg = load_dataset("movielens-100k", args.data_root, args.cache)
    tasks = []
    for kind in args.splits.split(","):
        for name in names:
            model = SPECS[name][0]
            deterministic = model in ("mostpop", "itemknn", "ease")
            ablation = name.startswith("Hybrid ")
            run_seeds = seeds[:1] if deterministic else ([int(x) for x in args.ablation_seeds.split(",")] if ablation
                                                          else seeds)
            tasks += [(kind, name, seed) for seed in run_seeds]
    if args.jobs > 1:  # independent fits in parallel processes (timings then share the machine)
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(args.threads,)) as pool:
            runs = list(pool.map(_task, [(t, args.data_root, args.cache, extra) for t in tasks]))
    else:
        splits = {kind: peer_split(kg, args.data_root, kind) for kind in args.splits.split(",")}
        runs = [_task((t, args.data_root, args.cache, extra), kg, splits[t[0]]) for t in tasks]

    rows = []
    for kind in args.splits.split(","):
        for name in names:
            rs = [r for r in runs if r["name"] == name and r["split"] == kind]
            row = {"split": kind, "model": name, "seeds": len(rs),
                   "valid ndcg@10": mean_std([r["valid"]["ndcg@10"] for r in rs])[0]}
            for m in METRICS:
                row[m] = fmt_pm(*mean_std([r["test"][m] for r in rs]))
            row["s/epoch"] = mean_std([r["seconds_per_epoch_median"] for r in rs])[0] if rs[0]["best_epoch"] else None
            row["s to best"] = mean_std([r["seconds_to_best"] for r in rs])[0]
            row["peak RSS MB"] = max(r["peak_rss_mb"] or 0 for r in rs) or None
            row["users/s"] = mean_std([r["users_per_second"] for r in rs])[0]
            peer = PEERS.get((name, kind))
            row["RecBole N@10"] = peer[2] if peer else None
            rows.append(row)
    cols = ["split", "model", "seeds", "valid ndcg@10", "recall@10", "recall@20", "ndcg@10", "ndcg@20", "hit@10", "mrr@10",
            "coverage@10", "s/epoch", "s to best", "peak RSS MB", "users/s", "RecBole N@10"]
    payload = {"dataset": "movielens-100k", "kg": kg.stats(), "protocol": "PROTOCOL.md; RecBole peer splits",
               "machine": info, "args": vars(args), "runs": runs, "table": rows}
    n_users = sorted({r["test"]["users"] for r in runs})
    text = (f"Command: `python benchmarks/ml100k.py {' '.join(argv if argv is not None else sys.argv[1:])}`.\n\n"
            f"MovieLens-100K + Freebase KG + DBpedia abstracts; splits {args.splits} (random/temporal: the RecBole "
            f"peer splits; others: kgrec.split seed 2020), {n_users} users evaluated, full ranking (cold-item: over "
            f"the cold items), mean ± std over model seeds {args.seeds} (ablations: {args.ablation_seeds}; "
            f"closed-form models: one deterministic run). Machine: {info['cpu']}, "
            f"{info['torch_threads']} torch threads, {args.jobs} fit(s) at a time, GPU {info['gpu']}; commit {info['commit']}; {info['date']}. "
            "'RecBole N@10' quotes the peer table of ANCHORS.md (same split, RecBole 1.2.1).")
    out = Path(args.out)
    write_results(out.parent, out.name, payload, rows, cols, title=f"MovieLens-100K: {', '.join(names)}", text=text)
    _plot(rows, out.with_suffix(".png"))
    print(markdown_table(rows, cols))
    return 0


def _plot(rows, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    splits = list(dict.fromkeys(r["split"] for r in rows))
    fig, axes = plt.subplots(1, len(splits), figsize=(6 * len(splits), 4), squeeze=False)
    for ax, kind in zip(axes[0], splits):
        rs = [r for r in rows if r["split"] == kind]
        means = [float(r["ndcg@10"].split(" ± ")[0]) for r in rs]
        stds = [float(r["ndcg@10"].split(" ± ")[1]) for r in rs]
        ax.barh([r["model"] for r in rs], means, xerr=stds, color="tab:blue")
        for r, y in zip(rs, range(len(rs))):
            if r["RecBole N@10"]:
                ax.plot(r["RecBole N@10"], y, "k|", markersize=14)
        ax.set_title(f"MovieLens-100K {kind}: test NDCG@10 (| = RecBole)")
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
