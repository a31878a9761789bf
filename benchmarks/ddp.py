"""DDP on the CPU: LightGCN on MovieLens-100K, one process vs two ``torchrun`` processes (gloo).

Three set-ups, each run in fresh processes, interleaved ``--repeats`` times (the machine is shared):

* ``1 proc x 1 thread``, batch ``2b`` — the fair baseline for two 1-thread ranks on a 2-core machine;
* ``2 procs x 1 thread`` (``torchrun --standalone --nproc_per_node=2``, gloo), batch ``b`` per rank,
  so the global batch and the number of optimizer steps per epoch are the same;
* ``1 proc x 2 threads``, batch ``2b`` — the same two cores used by torch's intra-op threads instead.

Same split (random, seed 2020), model seed, lr, epochs (validation every ``--eval-every`` epochs, no
early stop: patience is larger than the run). Reported: test NDCG@10 / Recall@20 at the epoch chosen
on validation NDCG@10, ``fit_info["fit_seconds"]`` (training + validation, after data preparation),
seconds per epoch (median), the whole process's wall time (start-up, load, fit, test), and the ratio
of the baseline's fit time to each set-up's (above 1 = faster than the baseline).

Usage::

    flock /work/cpu.lock python benchmarks/ddp.py --cache /work/wt4/.cache/bench   # writes benchmarks/results/
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import (
    DEFAULT_CACHE,
    DEFAULT_DATA_ROOT,
    ROOT,
    load_dataset,
    machine,
    write_results,
)

SETUPS = [  # name, processes, threads per process
    ("1 proc x 1 thread", 1, 1),
    ("2 procs x 1 thread (DDP gloo)", 2, 1),
    ("1 proc x 2 threads", 1, 2),
]


def child(args) -> None:
    """One fit (one rank of it under torchrun); rank 0 prints a JSON line."""
    import torch

    import kgrec
    from kgrec.training import distributed

    torch.set_num_threads(args.threads)
    kg = load_dataset(args.dataset, args.data_root, args.cache)
    sp = kgrec.split(kg, "random", seed=2020)
    with distributed.session("gloo", "cpu") as ctx:
        world = ctx.world if ctx else 1
        rec = kgrec.Recommender("lightgcn", epochs=args.epochs, batch_size=args.global_batch // world, lr=args.lr,
                                dim=64, num_layers=3, eval_every=args.eval_every, patience=10_000, seed=args.seed,
                                device="cpu")
        rec.fit(kg, sp)
        if distributed.is_main():
            test = rec.evaluate(sp, ks=(10, 20), part="test")
            info = rec.fit_info
            print(json.dumps({"world_size": info["world_size"], "backend": info["backend"],
                              "threads": torch.get_num_threads(), "batch_size": rec.config.batch_size,
                              "fit_seconds": info["fit_seconds"],
                              "seconds_per_epoch": info["seconds_per_epoch_median"],
                              "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"],
                              "valid_ndcg@10": info["valid"]["ndcg@10"], "test_ndcg@10": test["ndcg@10"],
                              "test_recall@20": test["recall@20"], "peak_rss_mb": info["peak_rss_mb"]}),
                  flush=True)


def run_setup(args, procs: int, threads: int) -> dict:
    cmd = [__file__, "--child", "--dataset", args.dataset, "--data-root", args.data_root, "--cache", args.cache,
           "--epochs", str(args.epochs), "--global-batch", str(args.global_batch), "--lr", str(args.lr),
           "--eval-every", str(args.eval_every), "--seed", str(args.seed), "--threads", str(threads)]
    launcher = [sys.executable]
    if procs > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    res = subprocess.run(launcher + cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{procs} proc(s) x {threads} thread(s) failed:\n{res.stderr[-3000:]}")
    row = json.loads([ln for ln in res.stdout.splitlines() if ln.startswith("{")][-1])
    return {**row, "process_wall_seconds": wall}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="movielens-100k")
    ap.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="benchmark cache holding <dataset>/graph")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--global-batch", type=int, default=2048, help="pairs per optimizer step over all ranks")
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for ddp.{json,md}")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0
    runs = []
    for rep in range(args.repeats):
        for name, procs, threads in SETUPS:
            row = {"setup": name, "processes": procs, "repeat": rep, **run_setup(args, procs, threads)}
            runs.append(row)
            print(json.dumps(row), flush=True)
    rows = []
    for name, procs, threads in SETUPS:
        mine = [r for r in runs if r["setup"] == name]
        rows.append({"setup": name, "batch_per_process": mine[0]["batch_size"],
                     **{k: statistics.median(r[k] for r in mine)
                        for k in ("fit_seconds", "seconds_per_epoch", "process_wall_seconds")},
                     "test_ndcg@10": statistics.fmean(r["test_ndcg@10"] for r in mine),
                     "test_recall@20": statistics.fmean(r["test_recall@20"] for r in mine),
                     "best_epoch": mine[0]["best_epoch"], "repeats": len(mine)})
    base = rows[0]["fit_seconds"]
    for r in rows:
        r["speedup_vs_1x1"] = base / r["fit_seconds"]
    mach = machine()
    cfg = {k: getattr(args, k) for k in ("dataset", "epochs", "eval_every", "global_batch", "lr", "seed", "repeats")}
    text = (f"LightGCN (dim 64, 3 layers, lr {args.lr:g}) on {args.dataset} (random split, seed 2020), "
            f"{args.epochs} epochs, validation every {args.eval_every} (selection on valid NDCG@10, no early stop), "
            f"global batch {args.global_batch} pairs per step in every set-up (DDP: {args.global_batch // 2} per "
            f"rank). Times are medians of {args.repeats} interleaved runs, each in fresh processes; test metrics "
            "their mean. `fit s` = training + validation (fit_info['fit_seconds']); `process s` = the whole "
            "command (start-up, graph load, fit, test). Speed-up = `fit s` of 1 proc x 1 thread / `fit s`.\n\n"
            f"Machine: {mach['cpu']} ({mach['cpu_count']} cores, shared with other jobs), torch {mach['torch']}, "
            f"commit {mach['commit']}, {mach['date']}. With 2 cores, two 1-thread ranks use the same hardware "
            "as one process with 2 threads; the 1-thread baseline is the fair one for the DDP ratio.")
    cols = {"setup": "set-up", "batch_per_process": "batch/proc", "test_ndcg@10": "test NDCG@10",
            "test_recall@20": "test Recall@20", "best_epoch": "best epoch", "fit_seconds": "fit s",
            "seconds_per_epoch": "s/epoch", "process_wall_seconds": "process s", "speedup_vs_1x1": "speed-up"}
    _, md = write_results(args.out, "ddp", {"machine": mach, "config": cfg, "summary": rows, "runs": runs},
                          rows, cols, title="DDP on the CPU: 1 process vs 2 torchrun processes", text=text,
                          floatfmt=".4f")
    print(Path(md).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
