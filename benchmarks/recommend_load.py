"""Load test of ``Recommender.recommend``: many requests in batches, resident memory over time.

Trains a small model on the shipped MovieLens graph (``kg_data/movielens-small``: 610 users, 9,742
items; all interactions, a few epochs: the model's quality does not matter here), then answers
``--requests`` user requests in batches of ``--batch`` random user IRIs (top-``--k``, seen items
excluded, every ``--candidates-every``-th batch restricted to 500 candidate items). The process's
current RSS (``/proc/self/statm``) and the number of live Python objects are recorded every
``--every`` batches after ``--warmup`` batches. Memory is called flat (no leak) when it grows by
less than ``--tolerance-mb`` from the first to the last sample and a least-squares line through
the samples rises by less than that over the whole run; the allocator returning the large score
buffers makes RSS oscillate by a few MiB between samples, which is not growth.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/recommend_load.py             # writes benchmarks/results/
    python benchmarks/recommend_load.py --requests 10000 --out /tmp/load
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
import warnings

from common import (
    ROOT,
    machine,
    write_results,
)

import numpy as np

import kgrec

DATA = ROOT / "kg_data" / "movielens-small" / "movielens-small.nt.gz"


def rss_mb() -> float:
    """Current resident set size of this process (MiB), not the peak."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA), help="RDF graph to train on (default: shipped MovieLens)")
    ap.add_argument("--model", default="bprmf", help="model to train (default: bprmf)")
    ap.add_argument("--epochs", type=int, default=3, help="training epochs (default: 3)")
    ap.add_argument("--requests", type=int, default=100_000, help="user requests in total (default: 100000)")
    ap.add_argument("--batch", type=int, default=100, help="users per recommend() call (default: 100)")
    ap.add_argument("--k", type=int, default=10, help="items per user (default: 10)")
    ap.add_argument("--every", type=int, default=50, help="record memory every this many batches (default: 50)")
    ap.add_argument("--warmup", type=int, default=20, help="batches before the first sample (default: 20)")
    ap.add_argument("--candidates-every", type=int, default=10,
                    help="every this many batches pass 500 candidate items (default: 10)")
    ap.add_argument("--tolerance-mb", type=float, default=8.0, help="growth still called flat (default: 8 MiB)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output folder")
    args = ap.parse_args(argv)
    if args.requests <= 0 or args.batch <= 0 or args.every <= 0:
        ap.error("'--requests', '--batch' and '--every' must be positive")

    import torch

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kg = kgrec.load(args.data)
        rec = kgrec.Recommender(args.model, epochs=args.epochs, device="cpu", seed=args.seed).fit(kg)
    fit_s = time.perf_counter() - t0
    rng = random.Random(args.seed)
    users, items = kg.users.labels, kg.items.labels
    candidates = rng.sample(items, min(500, len(items)))
    n_batches = -(-args.requests // args.batch)
    samples, served = [], 0
    t_start = time.perf_counter()
    for b in range(args.warmup + n_batches):
        batch = [users[rng.randrange(len(users))] for _ in range(args.batch)]
        cand = candidates if args.candidates_every and b % args.candidates_every == 0 else None
        out = rec.recommend(batch, k=args.k, candidates=cand)
        assert len(out) == len(set(batch))
        if b < args.warmup:
            if b == args.warmup - 1:
                t_start = time.perf_counter()
            continue
        served += args.batch
        done = b - args.warmup + 1
        if done == 1 or done % args.every == 0 or done == n_batches:
            samples.append({"batches": done, "requests": served, "rss_mb": round(rss_mb(), 2),
                            "python_objects": len(gc.get_objects()),
                            "seconds": round(time.perf_counter() - t_start, 3)})
    seconds = time.perf_counter() - t_start
    x = np.array([s["requests"] for s in samples], dtype=float)
    y = np.array([s["rss_mb"] for s in samples], dtype=float)
    slope = float(np.polyfit(x, y, 1)[0]) if len(samples) > 1 else 0.0  # MiB per request
    growth = float(y[-1] - y[0])
    fitted_rise = slope * float(x[-1] - x[0])
    flat = growth < args.tolerance_mb and fitted_rise < args.tolerance_mb  # falling RSS is no leak
    summary = {
        "requests": served, "batches": n_batches, "batch_size": args.batch, "k": args.k, "seconds": seconds,
        "requests_per_second": served / seconds if seconds else None,
        "rss_start_mb": float(y[0]), "rss_end_mb": float(y[-1]), "rss_max_mb": float(y.max()),
        "rss_growth_mb": growth, "fitted_rise_mb": fitted_rise, "mb_per_10k_requests": slope * 1e4,
        "python_objects_start": samples[0]["python_objects"], "python_objects_end": samples[-1]["python_objects"],
        "flat": flat, "tolerance_mb": args.tolerance_mb,
    }
    payload = {
        "benchmark": "recommend_load",
        "command": " ".join(["python benchmarks/recommend_load.py", *(argv or sys.argv[1:])]),
        "machine": machine(), "torch_threads": torch.get_num_threads(),
        "data": {"path": os.path.relpath(args.data, ROOT), "users": kg.num_users, "items": kg.num_items,
                 "interactions": len(kg.interactions)},
        "model": args.model, "epochs": args.epochs, "fit_seconds": fit_s, "summary": summary, "samples": samples,
    }
    m = payload["machine"]
    text = (f"`{payload['command'].strip()}` on commit `{m['commit']}`, {m['cpu']} ({m['cpu_count']} CPUs, "
            f"{payload['torch_threads']} torch thread(s)), {m['date']}. `{args.model}` fitted on "
            f"`{payload['data']['path']}` ({kg.num_users} users, {kg.num_items} items) in {fit_s:.1f} s; then "
            f"{served:,} requests in {n_batches} `recommend()` calls of {args.batch} users, top-{args.k}, in "
            f"{seconds:.1f} s ({summary['requests_per_second']:.0f} requests/s). Current RSS went from "
            f"{summary['rss_start_mb']:.1f} MiB to {summary['rss_end_mb']:.1f} MiB (max {summary['rss_max_mb']:.1f}; "
            f"least-squares trend {summary['mb_per_10k_requests']:+.3f} MiB per 10,000 requests): "
            f"**{'flat, no leak' if flat else 'NOT flat'}** (tolerance {args.tolerance_mb:g} MiB). "
            f"Live Python objects: {summary['python_objects_start']:,} -> {summary['python_objects_end']:,}.")
    cols = [("requests", "requests"), ("batches", "batches"), ("rss_mb", "RSS (MiB)"),
            ("python_objects", "Python objects"), ("seconds", "seconds")]
    step = max(1, len(samples) // 10)
    rows = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    write_results(args.out, "recommend_load", payload, rows, cols, title="recommend() under load: memory",
                  text=text, floatfmt=".2f")
    print(text)
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
