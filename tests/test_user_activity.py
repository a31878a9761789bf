"""benchmarks/user_activity.py: per-user NDCG@10 of two rows grouped by training activity."""
import sys
from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import KgrecError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import user_activity  # noqa: E402

STATS = {"strategy": "random", "seed": 2020, "train": 10, "test": 8, "test_users": 8}


def payload(name, values_by_seed, commit="a" * 40):
    runs = [{"name": name, "seed": s, "per_user": {"users": list(range(len(v))), "ndcg@10": v}}
            for s, v in values_by_seed.items()]
    return {"dataset": "d", "split": "random", "split_stats": STATS, "machine": {"commit": commit}, "runs": runs}


def test_groups_by_training_activity_with_known_means():
    # users 0-3 have 1 training interaction, 4-7 have 5: the new row gains 0.2 on the first, loses
    # 0.1 on the others (the mean over two seeds of the new row's 0.15 / 0.25 is 0.2)
    counts = np.array([1, 1, 1, 1, 5, 5, 5, 5])
    base = payload("LightGCN", {2020: [0.5] * 8})
    new = payload("Hybrid", {2020: [0.65] * 4 + [0.4] * 4, 2021: [0.75] * 4 + [0.4] * 4}, "b" * 40)
    rows = user_activity.group_rows("kg", [("f", "LightGCN"), ("g", "Hybrid")], [base, new], counts, groups=4)
    assert [r["training interactions"] for r in rows] == ["1-1", "2-5", "all (1-5)"]
    assert [r["users"] for r in rows] == [4, 4, 8]
    assert [round(r["gap"], 6) for r in rows] == [0.2, -0.1, 0.05]
    assert [round(r["relative"], 6) for r in rows] == [0.4, -0.2, 0.1]
    assert rows[0]["base"] == "LightGCN @ aaaaaaa" and rows[0]["new"] == "Hybrid @ bbbbbbb"


def test_quantile_edges_that_coincide_merge():
    assert user_activity.activity_groups(np.array([1, 1, 1, 1, 2, 3, 5, 9])) == [(1, 1), (2, 3), (4, 9)]
    assert user_activity.activity_groups(np.arange(1, 9)) == [(1, 2), (3, 4), (5, 6), (7, 8)]
    assert user_activity.activity_groups(np.array([3, 3, 3])) == [(3, 3)]


def test_bad_pairs_are_refused_by_name():
    with pytest.raises(KgrecError, match="'--pair': 'x=a.json:M' must be LABEL=FILE:MODEL,FILE:MODEL"):
        user_activity.parse_pair("x=a.json:M")
    with pytest.raises(KgrecError, match="must be LABEL=FILE:MODEL,FILE:MODEL"):
        user_activity.parse_pair("a.json:M,b.json:N")
    assert user_activity.parse_pair("kg=a.json:Hybrid w/o priors,b.json:LightGCN") == (
        "kg", [("a.json", "Hybrid w/o priors"), ("b.json", "LightGCN")])
    a, b = payload("M", {2020: [0.1] * 8}), payload("M", {2020: [0.1] * 8})
    b["split_stats"] = dict(STATS, test=7)
    with pytest.raises(KgrecError, match="'--pair' 'kg': the two files hold different splits"):
        user_activity.same_split("kg", a, b)
    with pytest.raises(KgrecError, match="'--pair' 'kg': no runs of 'N' in g"):
        user_activity.group_rows("kg", [("f", "M"), ("g", "N")], [a, a], np.ones(8, dtype=int), 4)


def test_plot_has_one_panel_per_pair(tmp_path, monkeypatch):
    """Pairs with one label on two datasets are two panels (the plot groups by label, dataset, split)."""
    import matplotlib.pyplot as plt

    counts = np.array([1, 1, 1, 1, 5, 5, 5, 5])
    rows = []
    for dataset in ("d1", "d2"):
        a = dict(payload("M", {2020: [0.5] * 8}), dataset=dataset)
        b = dict(payload("N", {2020: [0.6] * 8}), dataset=dataset)
        rows += user_activity.group_rows("kg", [("f", "M"), ("g", "N")], [a, b], counts, 4)
    seen, real = [], plt.subplots
    monkeypatch.setattr(plt, "subplots", lambda *a, **k: seen.append(a) or real(*a, **k))
    user_activity.plot(rows, tmp_path / "x.png")
    assert seen == [(1, 2)] and (tmp_path / "x.png").stat().st_size > 0
