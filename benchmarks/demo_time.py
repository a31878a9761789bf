"""How long ``kgrec demo`` takes, as a newcomer runs it: wall time of the whole command and of each model.

Runs ``python -m kgrec demo`` (the checkout's kgrec) in a fresh subprocess with an empty text-embedding
cache (``KGREC_CACHE`` pointed at a new folder: the first run a newcomer makes encodes every item text),
then, with ``--warm``, once more on the filled cache (every later run). The demo's own ``results.json``
gives each model's fit seconds and test NDCG@10; the command's wall time includes Python start-up, the
load of the shipped graph, the split and the evaluation. The machine's one-minute load average before
and after each run is recorded: on a shared machine other jobs slow every phase.

Usage::

    python benchmarks/demo_time.py            # writes benchmarks/results/demo.{json,md}
    python benchmarks/demo_time.py --warm --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, write_results

from kgrec.errors import KgrecError


def run_demo(out: Path, cache: Path, threads: int | None, extra: list[str]) -> dict:
    """One ``kgrec demo`` in a subprocess; its wall seconds, load averages and the demo's per-model figures."""
    env = dict(os.environ, KGREC_CACHE=str(cache), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, "-m", "kgrec"] + (["--threads", str(threads)] if threads else []) + [
        "--quiet", "demo", "--out", str(out)] + extra
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise KgrecError(f"'kgrec demo' failed with status {proc.returncode}: {proc.stderr[-2000:]}")
    results = json.loads((out / "results.json").read_text())
    models = {m: {"fit_seconds": r["fit_seconds"], "ndcg@10": r["test"]["ndcg@10"]}
              for m, r in results["models"].items()}
    return {"wall_seconds": wall, "load_before": load_before, "load_after": os.getloadavg()[0],
            "models": models, "command": " ".join(["kgrec"] + cmd[3:-2])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None,
                   help="kgrec --threads (default: kgrec's own default, the idle cores)")
    p.add_argument("--warm", action="store_true", help="also time a second run on the filled text cache")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="results folder")
    p.add_argument("--allow-dirty", action="store_true", help="write even from a tree with uncommitted changes")
    p.add_argument("demo_args", nargs="*", help="arguments passed on to kgrec demo (after --)")
    args = p.parse_args(argv)
    info = machine(ignore=[args.out])
    if info["dirty"] and not args.allow_dirty:
        raise SystemExit(f"uncommitted changes in {', '.join(info['dirty_files'])}: commit first or pass --allow-dirty")
    runs = {}
    with tempfile.TemporaryDirectory(prefix="kgrec-demo-") as tmp:
        cache = Path(tmp) / "cache"
        runs["first run (empty text cache)"] = run_demo(Path(tmp) / "cold", cache, args.threads, args.demo_args)
        if args.warm:
            runs["later run (filled text cache)"] = run_demo(Path(tmp) / "warm", cache, args.threads, args.demo_args)
    rows = []
    for name, r in runs.items():
        rows.append({"run": name, "wall s": r["wall_seconds"],
                     **{f"{m} fit s": v["fit_seconds"] for m, v in r["models"].items()},
                     # a string: the table's float format (one decimal) is for the seconds
                     "hybrid NDCG@10": f"{r['models']['hybrid']['ndcg@10']:.4f}" if "hybrid" in r["models"] else "",
                     "load before/after": f"{r['load_before']:.1f} / {r['load_after']:.1f}"})
    columns = list(rows[0])
    text = (f"Command: `{next(iter(runs.values()))['command']}` via `python benchmarks/demo_time.py"
            f"{' --warm' if args.warm else ''}{f' --threads {args.threads}' if args.threads else ''}`, "
            f"each run a fresh process. Machine: {info['cpu']}, {info['cpu_count']} cores; commit {info['commit']}"
            f"{' (uncommitted changes)' if info['dirty'] else ''}; {info['date']}. 'load' = the one-minute load "
            "average before and after the run (other jobs on the machine slow every phase).")
    payload = {"machine": info, "runs": runs, "args": vars(args)}
    json_path, md_path = write_results(args.out, "demo", payload, rows, [(c, c) for c in columns],
                                       title="kgrec demo: wall time on this machine", text=text, floatfmt=".1f")
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
