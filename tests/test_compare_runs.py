"""benchmarks/compare_runs.py: rows from two suite files, paired test against the first row."""
import json
import sys
from pathlib import Path

import pytest

from kgrec.errors import KgrecError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import compare_runs  # noqa: E402

STATS = {"strategy": "cold-item", "seed": 2020, "test_users": 40}


def payload(name, values_by_seed, commit):
    runs = [{"name": name, "seed": s, "test": {"ndcg@10": sum(v) / len(v)},
             "per_user": {"users": list(range(len(v))), "ndcg@10": v}} for s, v in values_by_seed.items()]
    means = [r["test"]["ndcg@10"] for r in runs]
    return {"dataset": "d", "split": "cold-item", "split_stats": STATS, "machine": {"commit": commit},
            "runs": runs, "table": [{"model": name, "seeds": len(runs), "ndcg@10": f"{sum(means) / len(means):.4f}",
                                     "recall@20": "0"}]}


def _compare(tmp_path, base, new, rows):
    """Write both suite files, run compare_runs on ``rows`` and return its JSON rows."""
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "new.json").write_text(json.dumps(new))
    compare_runs.main(["--base", str(tmp_path / "base.json"), "--new", str(tmp_path / "new.json"),
                       "--rows", rows, "--name", "cmp", "--title", "t", "--out", str(tmp_path)])
    return json.loads((tmp_path / "cmp.json").read_text())["rows"]


def test_new_row_ahead_of_base_with_a_paired_test(tmp_path):
    base = payload("Hybrid", {2020: [0.1 * (u % 3) for u in range(40)],
                              2021: [0.1 * (u % 3) for u in range(40)]}, "a" * 40)
    new = payload("Hybrid", {2020: [0.1 * (u % 3) + 0.05 for u in range(40)],
                             2021: [0.1 * (u % 3) + 0.06 for u in range(40)]}, "b" * 40)
    rows = _compare(tmp_path, base, new, "Hybrid@base,Hybrid@new")
    assert [r["commit"] for r in rows] == ["a" * 40, "b" * 40]
    assert rows[0]["verdict"] == "reference"
    # every user gains 0.055 (mean over the 2 seeds): Wilcoxon on 40 equal positive differences
    assert rows[1]["mean diff"] == "+0.0550" and float(rows[1]["p"]) < 1e-6 and rows[1]["verdict"] == "ahead"


def test_different_splits_are_refused(tmp_path):
    a = payload("Hybrid", {2020: [0.1] * 40}, "a" * 40)
    b = dict(payload("Hybrid", {2020: [0.2] * 40}, "b" * 40), split_stats=dict(STATS, test_users=39))
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    with pytest.raises(KgrecError, match="different splits"):
        compare_runs.main(["--base", str(tmp_path / "a.json"), "--new", str(tmp_path / "b.json"),
                           "--rows", "Hybrid@base,Hybrid@new", "--name", "x", "--title", "t", "--out", str(tmp_path)])


def test_a_row_kept_by_merge_names_the_commit_of_its_own_run(tmp_path):
    base = payload("LightGCN", {2020: [0.1 * (u % 3) for u in range(40)]}, "c" * 40)
    base["merged"] = [{"models": ["LightGCN", "EASE"], "commit": "d" * 40}]  # kept from an earlier run
    new = payload("Hybrid", {2020: [0.1 * (u % 3) for u in range(40)]}, "b" * 40)
    rows = _compare(tmp_path, base, new, "LightGCN@base,Hybrid@new")
    assert [r["commit"] for r in rows] == ["d" * 40, "b" * 40]
