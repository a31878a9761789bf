"""Scale curve: load time, one LightGCN epoch and peak memory as the synthetic graph grows.

For each ``--sizes`` entry (approximate triples in the file; interactions are about a fifth of
them), a fresh subprocess generates a synthetic graph (:mod:`kgrec.data.synthetic`), loads it with
``kgrec.load``, splits it randomly and fits ``Recommender("lightgcn", epochs=1)`` (one epoch of
BPR training plus its one validation pass). The child reports wall seconds of the load and of the
fit and its peak RSS (``ru_maxrss``). A least-squares line through ``log(seconds)`` against
``log(interactions)`` gives the growth exponent (1 = linear).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/scale.py --sizes 100000,200000,400000   # writes benchmarks/results/
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
from pathlib import Path

import numpy as np
from common import ROOT, machine

from kgrec.report import write_results


def child(triples: int, seed: int) -> dict:
    import warnings

    import kgrec
    from kgrec.data.synthetic import generate

    users = max(10, round(triples / 80))  # ~80 triples per user with items = users / 2 (see ingest.py)
    with tempfile.TemporaryDirectory(prefix="kgrec-scale-") as tmp:
        path = Path(tmp) / "g.nt.gz"
        counts = generate(path, users=users, items=max(10, users // 2), seed=seed)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kg = kgrec.load(path)
        load_s = time.perf_counter() - t0
    split = kgrec.split(kg, "random", seed=seed)
    rec = kgrec.Recommender("lightgcn", epochs=1, dim=64, batch_size=2048, seed=seed)
    t0 = time.perf_counter()
    rec.fit(kg, split)
    fit_s = time.perf_counter() - t0
    return {"triples": counts["triples"], "interactions": len(kg.interactions), "users": kg.num_users,
            "items": kg.num_items, "load_s": load_s, "epoch_s": fit_s,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def slope(x: list[float], y: list[float]) -> float | None:
    if len(x) < 2:
        return None
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,200000,400000", help="comma-separated approximate triple counts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for scale.{json,md}")
    ap.add_argument("--child", nargs=2, type=int, metavar=("TRIPLES", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows = []
    for n in sizes:
        res = subprocess.run([sys.executable, __file__, "--child", str(n), str(args.seed)], capture_output=True,
                             text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if res.returncode != 0:
            raise SystemExit(f"size {n} failed:\n{res.stderr[-3000:]}")
        row = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(row, flush=True)
    inter = [r["interactions"] for r in rows]
    exps = {"load_s": slope(inter, [r["load_s"] for r in rows]),
            "epoch_s": slope(inter, [r["epoch_s"] for r in rows]),
            "peak_rss_mib": slope(inter, [r["peak_rss_mib"] for r in rows])}
    mach = machine()
    text = ("Synthetic graphs (`kgrec.data.synthetic`, seed %d), each size in a fresh subprocess. `epoch_s` is "
            "`Recommender('lightgcn', epochs=1, dim=64, batch_size=2048).fit` (one epoch + one validation pass). "
            "Growth exponents (log-log slope against interactions): %s.\n\nMachine: %s (%s cores, shared), "
            "OMP_NUM_THREADS=1, commit %s, %s." % (
                args.seed, ", ".join(f"{k} {v:.2f}" for k, v in exps.items() if v is not None) or "n/a",
                mach["cpu"], mach["cpu_count"], mach["commit"], mach["date"]))
    cols = {"triples": "triples", "interactions": "interactions", "users": "users", "items": "items",
            "load_s": "load s", "epoch_s": "1 epoch s", "peak_rss_mib": "peak RSS MiB"}
    _, md = write_results(args.out, "scale", {"machine": mach, "rows": rows, "growth_exponent": exps,
                                              "seed": args.seed}, rows, cols, title="Scale curve (synthetic)",
                          text=text, floatfmt=".2f")
    print(Path(md).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
