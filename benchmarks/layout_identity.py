"""Did a refactoring change what kgrec computes? The same fits with two versions of the library.

ML-100K on its random (RecBole peer) split, seed 2020: EASE, LightGCN and the hybrid, each fitted once
at the point the committed benchmark chose for it (``benchmarks/results/movielens-100k/random.json``),
with the library of a reference checkout (``--reference``, e.g. a worktree at the commit before the
move) and with this checkout's, each in a fresh process (one torch thread). Every test metric and
the validation NDCG@10 must be identical to the last digit; the table says which are not.

The hybrid is given kgrec 0.1's flat prior settings (``ease_reg=...``, ``prior_grid=...``), which
both versions accept, so the comparison needs no translation of its configuration.

Example::

    git worktree add --detach ../ref <commit before the move>
    python benchmarks/layout_identity.py --reference ../ref --data-root ../shared/data --cache ../bench-cache
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: the points the committed benchmark chose on validation for seed 2020 (results/movielens-100k/random.json)
POINTS = {
    "ease": {"reg": 500.0},
    "lightgcn": {"dim": 64, "epochs": 300, "patience": 10, "lr": 0.005, "reg": 0.001, "num_layers": 3,
                 "seed": 2020},
    "hybrid": {"epochs": 200, "ease_reg": [500.0], "prior_grid": [0.0, 0.5, 1.0, 2.0], "seq_window": [3.0],
               "seq_recency": [1.0], "seq_grid": [0.0, 1.0, 2.0], "seed": 2020},
}


def worker(args) -> int:
    """Fit every model with the kgrec found first on ``sys.path`` and print the figures as JSON."""
    sys.path.insert(0, str(Path(args.kgrec_root).resolve()))
    sys.path.append(str(ROOT))  # so that benchmarks/common.py does not put this checkout first
    import warnings

    import torch

    torch.set_num_threads(1)
    import kgrec

    from suite import load_dataset, make_split

    warnings.simplefilter("ignore", DeprecationWarning)  # the flat prior settings, on purpose
    kg = load_dataset("movielens-100k", args.data_root, args.cache)
    sp = make_split(kg, "movielens-100k", "random", args.data_root)
    out = {"kgrec": str(Path(kgrec.__file__).resolve().parent.parent), "models": {}}
    commit, dirty = tree_state_of(Path(kgrec.__file__).resolve().parent.parent)
    out.update(commit=commit, dirty=dirty)
    for model, params in POINTS.items():
        t0 = time.perf_counter()
        rec = kgrec.Recommender(model, **params).fit(kg, sp)
        test = rec.evaluate(sp, ks=(10, 20), part="test")
        valid = rec.evaluate(sp, ks=(10,), part="valid")
        out["models"][model] = {"valid ndcg@10": valid["ndcg@10"],
                                **{k: v for k, v in test.items() if k != "users_per_second"},
                                "fit_seconds": time.perf_counter() - t0,
                                "best_epoch": rec.fit_info.get("best_epoch")}
        print(f"[identity] {model}: test ndcg@10 {test['ndcg@10']:.6f}", file=sys.stderr, flush=True)
    print(json.dumps(out))
    return 0


def tree_state_of(root: Path) -> tuple[str, bool]:
    """The commit of the checkout at ``root`` and whether its tracked files differ from it."""
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, check=True).stdout.strip())
    return commit, dirty


def run_version(root: str, args) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--kgrec-root", root,
           "--data-root", args.data_root, "--cache", args.cache]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit(f"the fits with the library of {root} failed (exit {res.returncode})")
    return json.loads(res.stdout.strip().splitlines()[-1])


def compare(ref: dict, cur: dict) -> list[dict]:
    rows = []
    for model, a in ref["models"].items():
        b = cur["models"][model]
        for metric in a:
            if metric in ("fit_seconds", "best_epoch", "seconds"):  # timings, not figures
                continue
            rows.append({"model": model, "metric": metric, "reference": a[metric], "this checkout": b[metric],
                         "identical": a[metric] == b[metric]})
        rows.append({"model": model, "metric": "best_epoch", "reference": a["best_epoch"],
                     "this checkout": b["best_epoch"], "identical": a["best_epoch"] == b["best_epoch"]})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", help="a checkout of kgrec at the commit to compare with")
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--cache", default="../bench-cache")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--kgrec-root", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if not args.reference:
        p.error("--reference is required")
    from common import machine, write_results

    ref = run_version(args.reference, args)
    cur = run_version(str(ROOT), args)
    rows = compare(ref, cur)
    same = all(r["identical"] for r in rows)
    payload = {"reference_commit": ref["commit"], "reference_dirty": ref["dirty"], "rows": rows,
               "all_identical": same, "fit_seconds": {"reference": {m: v["fit_seconds"] for m, v in
                                                                     ref["models"].items()},
                                                      "this checkout": {m: v["fit_seconds"] for m, v in
                                                                        cur["models"].items()}},
               "machine": machine(), "points": POINTS}
    intro = (f"ML-100K random (RecBole peer split), seed 2020; each model fitted once at the point the committed "
             f"benchmark chose, with the library at reference commit {ref['commit']} and at this checkout's "
             f"commit {payload['machine']['commit']} (each in a fresh process, one torch thread). "
             f"**All identical: {same}.**")
    write_results(args.out, "layout_identity", payload, rows,
                  ["model", "metric", "reference", "this checkout", "identical"],
                  title="Same figures before and after a refactoring", text=intro, floatfmt=".10f")
    print(f"all identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
