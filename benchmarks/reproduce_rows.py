"""Does a committed suite row still come out of today's code? Refit it at HEAD and compare.

A suite table (``benchmarks/results/<dataset>/<split>.json``) keeps rows of several commits: those
folded in by ``--merge`` or ``--merge-from`` name their own. A later commit can change what a model
computes while its row stays in the table: BPR-MF's Xavier-normal start (fc4b5c7) moved its Last.FM
random row from 0.1183 to 0.1507, yet the table showed 0.1183 until the row was rerun. Reading the
diffs between a row's commit and HEAD cannot settle this (most are refactors that keep every figure),
so this script refits instead: for each named row it takes one stored fit (a refit seed when the
row has one, else the search's fit), fits the same configuration with the same seed on the same
split at the current commit, one process, and compares the test figure and the best epoch.

``same`` means bit for bit (the stored and the new test NDCG@10, or AUC on CTR, are equal floats).
A row that is not the same is to be rerun under the protocol, not patched.

    python benchmarks/reproduce_rows.py --datasets lastfm --splits random --rows "EASE,LightGCN"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import ROOT, machine, write_results

from kgrec.errors import KgrecError

from suite import DEFAULT_CACHE, DEFAULT_DATA_ROOT, DEFAULT_OUT, _task, model_commit


def stored_fit(payload: dict, label: str) -> dict:
    """The stored fit of row ``label`` to refit: its first refit seed, or the search's fit when the
    row has no refits (deterministic models run once).
    """
    runs = [r for r in payload["runs"] if r.get("name") == label]
    if not runs:
        names = sorted({r.get("name") for r in payload["runs"]})
        raise KgrecError(f"'--rows': no row '{label}' in the {payload['dataset']} {payload['split']} table "
                         f"(it has {', '.join(names)})")
    refits = sorted((r for r in runs if r.get("role") == "refit"), key=lambda r: r["seed"])
    return refits[0] if refits else runs[0]


def refit_job(payload: dict, run: dict, data_root: str, cache: str, threads: int) -> dict:
    """The suite job that refits ``run``'s configuration with its seed, as ``--seeds`` refits do."""
    chosen = {k: v for k, v in run["chosen_params"].items() if k != "seed"}
    return {"dataset": payload["dataset"], "split": payload["split"], "name": run["name"], "seed": run["seed"],
            "data_root": data_root, "cache": cache, "quick": False, "extra": {}, "threads": threads,
            "isolate": False, "candidates": [chosen], "role": "reproduce", "budget": run.get("budget")}


def compare(payload: dict, run: dict, new: dict) -> dict:
    """One table row: the stored and the new test figure and best epoch of one fit."""
    metric = "auc" if payload["split"] == "ctr" else "ndcg@10"
    old_v, new_v = run["test"][metric], new["test"][metric]
    return {"dataset": payload["dataset"], "split": payload["split"], "row": run["name"], "seed": run["seed"],
            "row_commit": model_commit(payload, run["name"]), "metric": metric, "stored": old_v, "now": new_v,
            "difference": new_v - old_v, "same": old_v == new_v, "best_epoch_stored": run.get("best_epoch"),
            "best_epoch_now": new.get("best_epoch")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", required=True, help="comma list of suite datasets")
    p.add_argument("--splits", required=True, help="comma list of splits")
    p.add_argument("--rows", required=True, help="comma list of row labels, e.g. 'EASE,LightGCN'")
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--results", default=DEFAULT_OUT, help="the suite results folder holding the tables")
    p.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--name", default=None, help="output file stem (default: reproduce-<datasets>-<splits>)")
    args = p.parse_args(argv)
    rows = []
    try:
        for ds in args.datasets.split(","):
            for kind in args.splits.split(","):
                path = Path(args.results) / ds / f"{kind}.json"
                if not path.is_file():
                    raise KgrecError(f"'--datasets'/'--splits': no suite table '{path}'")
                payload = json.loads(path.read_text(encoding="utf-8"))
                for label in args.rows.split(","):
                    run = stored_fit(payload, label)
                    new = _task(refit_job(payload, run, args.data_root, args.cache, args.threads))
                    rows.append(compare(payload, run, new))
    except KgrecError as e:
        p.error(str(e))
    name = args.name or f"reproduce-{args.datasets.replace(',', '+')}-{args.splits.replace(',', '+')}"
    text = ("Each row refits one stored fit of a committed suite row (its first refit seed, or its search's fit "
            "when it has no refits) with the same configuration and seed at this commit, and compares the test "
            "figure: `same` = bit for bit. Command: `python benchmarks/reproduce_rows.py "
            + " ".join(argv if argv is not None else sys.argv[1:]) + "`.")
    write_results(args.out_dir, name, {"machine": machine(), "rows": rows}, rows,
                  [("dataset", "dataset"), ("split", "split"), ("row", "row"), ("seed", "seed"),
                   ("row_commit", "row commit"), ("metric", "metric"), ("stored", "stored"), ("now", "now"),
                   ("difference", "difference"), ("same", "same"), ("best_epoch_stored", "best epoch stored"),
                   ("best_epoch_now", "best epoch now")],
                  title="Committed rows refitted at this commit", text=text, floatfmt=".6f")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
