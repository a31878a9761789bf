"""benchmarks/update_readme.py: the headline names the commit of every row, merged ones included."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import update_readme  # noqa: E402


def _payload(split, commit, models, merged):
    return {"split": split, "machine": {"commit": commit}, "merged": merged, "runs": [],
            "table": [{"model": m, "ndcg@10": "0.1", "recall@20": "0.2", "trials": 1, "cap hits": 0} for m in models]}


def test_headline_names_each_rows_commit_including_runs_kept_by_merge(tmp_path):
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    (tmp_path / "movielens-100k").mkdir()
    (tmp_path / "movielens-100k" / "random.json").write_text(json.dumps(
        _payload("random", a, ["EASE", "LightGCN"], [{"models": ["EASE"], "commit": b}])))
    (tmp_path / "movielens-100k" / "temporal.json").write_text(json.dumps(
        _payload("temporal", c, ["EASE"], None)))
    text = update_readme.headline(tmp_path)
    assert f"{a}: LightGCN (random); {b}: EASE (random); {c}: EASE (temporal)." in text
    assert "| EASE | 0.1 | 0.2 | 1 | 0 | 0.1 | 0.2 | 1 | 0 |" in text
