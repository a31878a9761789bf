r"""Compare models across two suite result files of the same dataset and split (a change measured
against the run before it): test NDCG@10 / Recall@20 per model, and a paired Wilcoxon test on the
per-user NDCG@10 (mean over seeds) of each pair of rows, with the verdict of docs/protocol.md.

Both files must hold the same split (same pairs, same seed): the script refuses otherwise. Each row
names the commit that produced it, so a table never hides that its rows come from two commits.

    python benchmarks/compare_runs.py \\
        --base benchmarks/results/movielens-100k/cold-item.json \\
        --new benchmarks/results/hybrid-pseudo-cold/movielens-100k/cold-item.json \\
        --rows "Hybrid@base,Hybrid@new,Content-kNN@base" --name hybrid-pseudo-cold \\
        --title "Hybrid on cold items: pseudo-cold training without the items' user-item edges"
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from common import ROOT, machine, write_results

from kgrec.errors import KgrecError
from kgrec.evaluation.significance import paired_test, per_user_means, verdict

from suite import model_commit


def _runs(payload: dict, model: str) -> list[dict]:
    runs = [r for r in payload["runs"] if r.get("name") == model]
    if not runs:
        labels = sorted({r.get("name") for r in payload["runs"]})
        raise KgrecError(f"no runs of '{model}' in the {payload['dataset']} {payload['split']} file "
                         f"(it holds {', '.join(labels)})")
    return runs


def _row(payload: dict, model: str) -> dict:
    return next(r for r in payload["table"] if r["model"] == model)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="suite JSON of the earlier run")
    p.add_argument("--new", required=True, help="suite JSON of the run with the change")
    p.add_argument("--rows", required=True, help="comma list of MODEL@base / MODEL@new, first = the reference")
    p.add_argument("--name", required=True, help="results file name under benchmarks/results/")
    p.add_argument("--title", required=True)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="results folder")
    args = p.parse_args(argv)
    files = {"base": json.loads(Path(args.base).read_text()), "new": json.loads(Path(args.new).read_text())}
    a, b = files["base"], files["new"]
    if (a["dataset"], a["split"], a["split_stats"]) != (b["dataset"], b["split"], b["split_stats"]):
        raise KgrecError(f"--base and --new hold different splits ({a['dataset']} {a['split']} vs "
                         f"{b['dataset']} {b['split']}, or different pairs): nothing to pair")
    rows, ref = [], None
    for spec in args.rows.split(","):
        model, _, which = spec.partition("@")
        if which not in files:
            raise KgrecError(f"'--rows': '{spec}' must be MODEL@base or MODEL@new")
        payload = files[which]
        runs, table = _runs(payload, model), _row(payload, model)
        per_user = per_user_means(runs)
        row = {"model": model, "run": which, "commit": model_commit(payload, model), "seeds": table["seeds"],
               "ndcg@10": table["ndcg@10"], "recall@20": table["recall@20"]}
        means = [r["test"]["ndcg@10"] for r in runs]
        spread = statistics.stdev(means) if len(means) > 1 else 0.0  # the seed spread of the suite's tables
        if ref is None:
            ref = (per_user, spread, sum(means) / len(means), spec)
            row.update({"vs": "", "mean diff": "", "p": "", "verdict": "reference"})
        else:
            test = paired_test(per_user, ref[0])
            gap = sum(means) / len(means) - ref[2]
            row.update({"vs": ref[3], "mean diff": f"{test['mean_diff']:+.4f}", "p": f"{test['p']:.3g}",
                        "verdict": verdict(gap, spread, ref[1], test["p"])})
        rows.append(row)
    cols = ["model", "run", "commit", "seeds", "ndcg@10", "recall@20", "vs", "mean diff", "p", "verdict"]
    text = (f"Files: `{args.base}` (base) and `{args.new}` (new), the same split "
            f"({a['dataset']} {a['split']}, {a['split_stats']['test_users']} test users). Paired Wilcoxon "
            "test on per-user NDCG@10 (mean over seeds) against the first row; a verdict other than "
            "tie needs p < 0.05 and a gap beyond both seed spreads (docs/protocol.md).")
    write_results(args.out, args.name,
                  {"base": args.base, "new": args.new, "rows": rows, "machine": machine(),
                   "command": "python benchmarks/compare_runs.py "
                   + " ".join(argv if argv is not None else sys.argv[1:])},
                  rows, cols, title=args.title, text=text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
