"""LightGCN full-batch vs mini-batch on sampled subgraphs: epoch time, memory, test NDCG@10.

For each graph and mode a fresh subprocess loads the graph, splits it (random 80/10/10, seed 2020)
and fits ``Recommender("lightgcn", sampled=..., fanouts=...)`` with the same settings otherwise;
it reports the median training seconds per epoch (validation excluded), the RSS just before the
fit and the process's peak RSS (``ru_maxrss``; their difference is what training added), and test
NDCG@10 / Recall@20 at the selected epoch (scoring uses the exact full propagation in both modes).

Graphs: MovieLens-100K from the benchmark cache (``--cache``) and a synthetic graph
(:mod:`kgrec.data.synthetic`, ``--users`` / ``--items``) generated once and kept as ``.npz``
(``kgrec.save_arrays``) so that the children do not parse RDF.

Usage::

    OMP_NUM_THREADS=1 flock /work/cpu.lock python benchmarks/minibatch.py   # writes benchmarks/results/
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from common import DEFAULT_CACHE, DEFAULT_DATA_ROOT, ROOT, load_dataset, machine

import kgrec
from kgrec.report import write_results


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(spec: dict) -> dict:
    if spec["graph"] == "movielens-100k":
        kg = load_dataset("movielens-100k", spec["data_root"], spec["cache"])
    else:
        kg = kgrec.load_arrays(spec["graph"])
    sp = kgrec.split(kg, "random", seed=2020)
    params = dict(epochs=spec["epochs"], patience=spec["patience"], lr=5e-3, dim=64, batch_size=spec["batch_size"],
                  seed=spec["seed"], sampled=spec["mode"] == "sampled", fanouts=spec["fanouts"])
    rss0 = rss_mib()
    t0 = time.perf_counter()
    rec = kgrec.Recommender("lightgcn", **params).fit(kg, sp)
    fit_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    m = rec.evaluate(sp, ks=(10, 20))
    info = rec.fit_info
    return {"users": kg.num_users, "items": kg.num_items, "train": len(sp.train), "epoch_s": info["seconds_per_epoch_median"],
            "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"], "fit_s": fit_s,
            "rss_before_fit_mib": rss0, "peak_rss_mib": peak, "fit_added_mib": peak - rss0,
            "test_ndcg@10": m["ndcg@10"], "test_recall@20": m["recall@20"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20000, help="synthetic graph users (items: --items)")
    ap.add_argument("--items", type=int, default=10000)
    ap.add_argument("--epochs-ml", type=int, default=20, help="max epochs on MovieLens-100K")
    ap.add_argument("--epochs-large", type=int, default=2, help="epochs on the synthetic graph")
    ap.add_argument("--fanouts", default="10,5,5")
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "kgrec-minibatch"),
                    help="folder for the generated graph")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    fanouts = [int(f) for f in args.fanouts.split(",")]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    npz = work / f"synthetic-{args.users}-{args.items}.npz"
    if not npz.is_file():
        from kgrec.data.synthetic import generate

        nt = work / "g.nt.gz"
        generate(nt, users=args.users, items=args.items, seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kgrec.save_arrays(kgrec.load(nt), npz)
        nt.unlink()
    rows = []
    for graph, name, epochs in (("movielens-100k", "MovieLens-100K", args.epochs_ml),
                                (str(npz), f"synthetic {args.users}x{args.items}", args.epochs_large)):
        for mode in ("full", "sampled"):
            spec = {"graph": graph, "mode": mode, "epochs": epochs, "patience": 5, "fanouts": fanouts,
                    "batch_size": args.batch_size, "seed": args.seed, "data_root": args.data_root, "cache": args.cache}
            res = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                 text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if res.returncode != 0:
                raise SystemExit(f"{name} {mode} failed:\n{res.stderr[-3000:]}")
            row = {"graph": name, "mode": mode, **json.loads(res.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(row, flush=True)
    for r in rows:
        full = next(f for f in rows if f["graph"] == r["graph"] and f["mode"] == "full")
        r["epoch_speedup"] = full["epoch_s"] / r["epoch_s"] if r["epoch_s"] else None
    mach = machine()
    text = ("`Recommender('lightgcn', dim=64, num_layers=3, lr=5e-3, batch_size=%d)`; `sampled` adds "
            "`sampled=True, fanouts=%s`. Max epochs: %d on MovieLens-100K (patience 5), %d on the synthetic "
            "graph; `epoch s` = median training seconds per epoch (validation excluded); `fit added` = peak RSS "
            "minus RSS before the fit. Each row in a fresh subprocess.\n\nMachine: %s (%s cores, shared), "
            "OMP_NUM_THREADS=1, commit %s, %s." % (args.batch_size, fanouts, args.epochs_ml, args.epochs_large,
                                                   mach["cpu"], mach["cpu_count"], mach["commit"], mach["date"]))
    cols = {"graph": "graph", "mode": "mode", "train": "train pairs", "epoch_s": "epoch s",
            "epoch_speedup": "speed-up", "epochs_run": "epochs", "best_epoch": "best", "peak_rss_mib": "peak RSS MiB",
            "fit_added_mib": "fit added MiB", "test_ndcg@10": "test NDCG@10", "test_recall@20": "test Recall@20"}
    _, md = write_results(args.out, "minibatch", {"machine": mach, "args": vars(args), "rows": rows}, rows, cols,
                          title="LightGCN: full-batch vs sampled mini-batch", text=text, floatfmt=".3f")
    print(Path(md).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
