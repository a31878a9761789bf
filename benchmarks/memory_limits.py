"""Memory limits of the closed-form models: EASE and ItemKNN on a 20,000-item graph within 8 GiB.

Generates synthetic graphs with :mod:`kgrec.data.synthetic` (uncompressed N-Triples under
``--tmp``), then runs each case in a fresh subprocess whose address space is capped with
``resource.setrlimit(RLIMIT_AS, --limit-gib)`` before kgrec or torch are imported, so the whole
program (imports, load, split, fit) must fit under the cap. Each child loads its graph, splits it
randomly and fits ``Recommender(model)``, reporting:

* ``estimate``: the fit's peak estimate (:func:`kgrec.nn.linear.ease_fit_bytes`,
  :func:`kgrec.nn.linear.itemknn_fit_bytes`) and the memory kgrec saw as available just before
  (:func:`kgrec.memory.available_memory_bytes`: the room under the cap);
* ``fit s``: wall seconds of ``Recommender.fit``;
* ``peak RSS``: the child's ``ru_maxrss`` after the load and at the end, and its ``VmPeak``
  (the largest address space it held, which is what the cap limits);
* ``score s``: scoring 1,000 users (full ranking rows).

A third case asks for EASE on a graph whose catalogue (``--over-items``, default 60,000) needs more
than the cap: the fit must stop with :class:`kgrec.errors.ResourceLimitError` before allocating,
and the row keeps the error message and the seconds until it.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/memory_limits.py            # writes benchmarks/results/memory_limits.*
    python benchmarks/memory_limits.py --items 2000 --users 4000 --over-items 30000 --limit-gib 2 --out /tmp/ml
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

from common import ROOT, machine, write_results

GIB = 1024**3


def _vm_peak_mib() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(spec: dict) -> dict:
    """One case under the address-space cap (set by the caller of this function before imports)."""
    import warnings

    import kgrec
    from kgrec.errors import ResourceLimitError
    from kgrec.memory import available_memory_bytes
    from kgrec.nn.linear import ease_fit_bytes, itemknn_fit_bytes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kg = kgrec.load(spec["path"], max_file_bytes=2**40)
    split = kgrec.split(kg, "random", seed=spec["seed"])
    load_rss = _maxrss_mib()
    n, nnz = kg.num_items, len(split.train)
    model = spec["model"]
    estimate = ease_fit_bytes(n, nnz) if model == "ease" else itemknn_fit_bytes(n, spec["k"], nnz)
    available = available_memory_bytes()
    params = {"k": spec["k"]} if model == "itemknn" else {}
    row = {"case": spec["case"], "model": model, "items": n, "users": kg.num_users, "train_interactions": nnz,
           "estimate_gib": estimate / GIB, "available_gib": None if available is None else available / GIB,
           "load_peak_rss_mib": load_rss}
    rec = kgrec.Recommender(model, **params)
    t0 = time.perf_counter()
    try:
        rec.fit(kg, split)
    except ResourceLimitError as e:
        return {**row, "fit_s": time.perf_counter() - t0, "peak_rss_mib": _maxrss_mib(),
                "vm_peak_mib": _vm_peak_mib(), "status": "ResourceLimitError", "error": str(e)}
    fit_s = time.perf_counter() - t0
    import torch

    users = torch.arange(min(1000, kg.num_users))
    t0 = time.perf_counter()
    scores = rec.score(users)
    score_s = time.perf_counter() - t0
    return {**row, "fit_s": fit_s, "score_s": score_s, "score_shape": list(scores.shape),
            "peak_rss_mib": _maxrss_mib(), "vm_peak_mib": _vm_peak_mib(), "status": "ok"}


def run_case(spec: dict, limit_gib: float, max_seconds: float) -> dict:
    """``spec`` in a fresh subprocess capped at ``limit_gib`` GiB of address space."""
    cmd = [sys.executable, __file__, "--child-json", json.dumps(spec), "--limit-gib", str(limit_gib)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=max_seconds)
    except subprocess.TimeoutExpired:
        return {"case": spec["case"], "model": spec["model"], "status": f"timeout after {max_seconds:g} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()
        print(f"case {spec['case']} failed:\n" + "\n".join(tail[-20:]), file=sys.stderr, flush=True)
        return {"case": spec["case"], "model": spec["model"], "wall_s": time.perf_counter() - t0,
                "status": "failed: " + (tail[-1][:300] if tail else f"exit {proc.returncode}")}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall_s": time.perf_counter() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=20_000, help="catalogue of the fitted graph (default 20000)")
    ap.add_argument("--users", type=int, default=40_000, help="users of the fitted graph (default 40000)")
    ap.add_argument("--over-items", type=int, default=60_000,
                    help="catalogue of the graph whose EASE fit exceeds the cap (default 60000)")
    ap.add_argument("--over-users", type=int, default=10_000, help="users of that graph (default 10000)")
    ap.add_argument("--k", type=int, default=100, help="ItemKNN neighbours (default 100)")
    ap.add_argument("--limit-gib", type=float, default=8.0, help="RLIMIT_AS of each child (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="stop a case that runs longer")
    ap.add_argument("--tmp", default=tempfile.gettempdir(), help="folder for the generated files")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for memory_limits.{json,md}")
    ap.add_argument("--name", default="memory_limits", help="file stem of the results")
    ap.add_argument("--child-json", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_json is not None:
        cap = int(args.limit_gib * GIB)
        resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
        print(json.dumps(child(json.loads(args.child_json))))
        return 0

    from kgrec.data.synthetic import generate

    mach = machine()
    rows, graphs = [], {}
    with tempfile.TemporaryDirectory(prefix="kgrec-memlim-", dir=args.tmp) as d:
        for key, users, items in (("fit", args.users, args.items), ("over", args.over_users, args.over_items)):
            path = Path(d) / f"{key}.nt"
            t0 = time.perf_counter()
            counts = generate(path, users=users, items=items, seed=args.seed)
            graphs[key] = {**counts, "generate_s": time.perf_counter() - t0}
            print(key, graphs[key], flush=True)
        cases = [(f"EASE, {args.items} items", "ease", "fit"), (f"ItemKNN, {args.items} items", "itemknn", "fit"),
                 (f"EASE, {args.over_items} items (over the cap)", "ease", "over")]
        for case, model, key in cases:
            spec = {"case": case, "model": model, "k": args.k, "seed": args.seed, "path": str(Path(d) / f"{key}.nt")}
            rows.append(run_case(spec, args.limit_gib, args.max_seconds))
            print(rows[-1], flush=True)
    errors = [r for r in rows if r.get("error")]
    text = (f"Synthetic graphs (`kgrec.data.synthetic`, seed {args.seed}): {args.users} users x {args.items} items "
            f"({graphs['fit']['interactions']} interactions), and {args.over_users} users x {args.over_items} items "
            f"for the case over the cap. Each case runs in a fresh subprocess with `RLIMIT_AS` = "
            f"{args.limit_gib:g} GiB set before any import (imports, load, random split and fit all under it). "
            f"`estimate` is the fit's peak estimate checked before allocating, `available` the room kgrec saw under "
            f"the cap; `peak RSS` is the child's `ru_maxrss`, `VmPeak` its largest address space. "
            f"ItemKNN with k={args.k}; `score s` ranks 1,000 users.")
    for r in errors:
        text += f"\n\nError of \"{r['case']}\" (raised after {r['fit_s']:.3f} s):\n\n> {r['error']}"
    text += (f"\n\nMachine: {mach['cpu']} ({mach['cpu_count']} cores, shared), OMP_NUM_THREADS="
             f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, commit {mach['commit']}"
             f"{' (dirty tree)' if mach['dirty'] else ''}, {mach['date']}.")
    cols = {"case": "case", "items": "items", "train_interactions": "train interactions",
            "estimate_gib": "estimate GiB", "available_gib": "available GiB", "fit_s": "fit s", "score_s": "score s",
            "load_peak_rss_mib": "peak RSS after load MiB", "peak_rss_mib": "peak RSS MiB",
            "vm_peak_mib": "VmPeak MiB", "status": "status"}
    payload = {"machine": mach, "limit_gib": args.limit_gib, "k": args.k, "seed": args.seed, "graphs": graphs,
               "rows": rows}
    _, md = write_results(args.out, args.name, payload, rows, cols, title="Memory limits: EASE and ItemKNN under "
                          f"RLIMIT_AS = {args.limit_gib:g} GiB", text=text, floatfmt=".2f")
    print(Path(md).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
