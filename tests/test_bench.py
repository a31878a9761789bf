"""The benchmark suite (benchmarks/suite.py): a --quick run on a toy data root, errors naming their argument."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from kgrec import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import suite as bench  # noqa: E402


def toy_root(tmp_path, n_users=24, n_items=16):
    """A data root holding ``lastfm-kg/processed`` in the KGCN form: two taste clusters.

    Users of cluster c like most items of cluster c (label 1) and get one sampled negative (label 0)
    from the other cluster per positive; items 0..7 share entity 16, items 8..15 entity 17.
    """
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "lastfm-kg" / "processed"
    folder.mkdir(parents=True)
    rows = []
    half = n_items // 2
    for u in range(n_users):
        mine = np.arange(half) + (half if u % 2 else 0)
        other = np.arange(half) + (0 if u % 2 else half)
        for i in rng.choice(mine, size=6, replace=False):
            rows.append((u, int(i), 1))
            rows.append((u, int(rng.choice(other)), 0))
    (folder / "ratings_final.txt").write_text("".join(f"{u}\t{i}\t{y}\n" for u, i, y in rows))
    kg = [(i, 0, n_items + (i >= half)) for i in range(n_items)] + [(n_items, 1, n_items + 1)]
    (folder / "kg_final.txt").write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in kg))
    return tmp_path / "data"


def test_quick_run_writes_results_with_right_figures(tmp_path):
    root = toy_root(tmp_path)
    out = tmp_path / "results"
    code = bench.main(["--quick", "--data-root", str(root), "--cache", str(tmp_path / "cache"), "--datasets", "lastfm",
                       "--splits", "random,ctr", "--models", "mostpop,ease,cke", "--no-isolate", "--threads", "1",
                       "--param", "epochs=2", "--out", str(out), "--allow-dirty"])
    assert code == 0
    for split in ("random", "ctr"):
        for ext in ("json", "md", "png"):
            assert (out / "lastfm" / f"{split}.{ext}").is_file()
    ctr = json.loads((out / "lastfm" / "ctr.json").read_text())
    assert ctr["machine"]["commit"] and ctr["machine"]["torch"] and ctr["quick"] is True
    runs = {r["name"]: r for r in ctr["runs"]}
    assert set(runs) == {"MostPop", "EASE", "CKE"} and runs["CKE"]["fit_info"]["curve"]
    # MostPop's AUC recomputed here: score = the item's count among the label-1 rows of the train part
    from sklearn.metrics import roc_auc_score

    parts = bench.ctr_rows("lastfm", str(root), seed=2020)
    assert sum(len(p) for p in parts.values()) == 24 * 12 and len(parts["train"]) == int(0.6 * 24 * 12)
    train = parts["train"]
    counts = np.bincount(train[train[:, 2] == 1, 1], minlength=16)
    test = parts["test"]
    assert runs["MostPop"]["test"]["auc"] == pytest.approx(roc_auc_score(test[:, 2], counts[test[:, 1]]))
    # EASE sees the two clusters (negatives come from the other one, which never co-occurs with the
    # user's items); MostPop cannot: both clusters are equally popular
    assert runs["EASE"]["test"]["auc"] > 0.8 and runs["EASE"]["test"]["auc"] > runs["MostPop"]["test"]["auc"] + 0.3
    # CKE's epochs were selected on validation AUC: the curve records it, and the kept epoch is its best
    curve = [c for c in runs["CKE"]["fit_info"]["curve"] if "select" in c.get("valid", {})]
    best = max(curve, key=lambda c: c["valid"]["select"])
    assert curve and runs["CKE"]["best_epoch"] == best["epoch"]
    assert runs["CKE"]["valid"]["auc"] == pytest.approx(best["valid"]["select"])
    rank = json.loads((out / "lastfm" / "random.json").read_text())
    assert {r["name"] for r in rank["runs"]} == {"MostPop", "EASE", "CKE"}
    assert all(0.0 <= r["test"]["ndcg@10"] <= 1.0 and r["test"]["users"] > 0 for r in rank["runs"])
    assert rank["rdf_load"]["load_triples_per_second"] > 0
    md = (tmp_path / "RESULTS.md").read_text()
    assert "lastfm / ctr (quick)" in md and "results/lastfm/ctr.json" in md and "Quick mode" in md


def test_errors_name_the_argument(tmp_path, capsys):
    assert cli.main(["benchmark", "--datasets", "nope", "--data-root", str(tmp_path)]) == 2
    assert "'--datasets': unknown dataset 'nope'" in capsys.readouterr().err
    assert cli.main(["benchmark", "--datasets", "lastfm", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"'{tmp_path / 'lastfm-kg' / 'processed'}' is missing" in err and "'--data-root'" in err
    assert cli.main(["benchmark", "--data-root", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["benchmark", "--models", "nope", "--data-root", str(tmp_path)]) == 2
    assert "'--models': unknown model(s) ['nope']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--datasets", "movielens-100k", "--splits", "ctr", "--data-root", str(tmp_path)])


def test_report_only_rebuilds_markdown_from_json(tmp_path):
    from kgrec.reports.tables import write_results

    payload = {"suite": True, "dataset": "lastfm", "title": "Last.FM", "split": "random", "quick": True,
               "command": "x", "split_stats": {}, "graph": {"users": 1, "items": 2, "entities": 3, "relations": 1,
                                                            "triples": 4, "interactions": 5},
               "rdf_load": None, "cached_load_seconds": 0.1, "runs": [],
               "machine": {"cpu": "c", "torch_threads": 1, "jobs": 1, "gpu": None, "commit": "abc", "date": "d",
                           "isolated": False},
               "table": [{"model": "EASE", "ndcg@10": "0.5000 ± 0.0000"}], "columns": ["model", "ndcg@10"]}
    write_results(tmp_path / "results" / "lastfm", "random", payload, [], ["model"])
    assert bench.main(["--report-only", "--out", str(tmp_path / "results")]) == 0
    md = (tmp_path / "results" / "lastfm" / "random.md").read_text()
    assert "| EASE  | 0.5000 ± 0.0000 |" in md and "--no-isolate" in md
    assert "| EASE  | 0.5000 ± 0.0000 |" in (tmp_path / "RESULTS.md").read_text()


def test_merge_adds_a_model_and_keeps_the_others(tmp_path, capsys):
    """--merge: a second run with other models keeps the first run's models; a redone model replaces its runs."""
    root = toy_root(tmp_path)
    out = tmp_path / "results"
    base = ["--quick", "--data-root", str(root), "--cache", str(tmp_path / "cache"), "--datasets", "lastfm",
            "--splits", "random", "--no-isolate", "--threads", "1", "--out", str(out), "--allow-dirty"]
    assert bench.main(base + ["--models", "mostpop,itemknn"]) == 0
    first = json.loads((out / "lastfm" / "random.json").read_text())
    mostpop = next(r for r in first["runs"] if r["name"] == "MostPop")
    assert bench.main(base + ["--models", "ease,itemknn", "--merge"]) == 0
    both = json.loads((out / "lastfm" / "random.json").read_text())
    assert [r["name"] for r in both["runs"]] == ["MostPop", "EASE", "ItemKNN"]
    assert both["runs"][0] == mostpop  # kept as it was
    assert [m["models"] for m in both["merged"]] == [["MostPop"]]
    assert both["merged"][0]["commit"] == first["machine"]["commit"]
    assert sorted(row["model"] for row in both["table"]) == ["EASE", "ItemKNN", "MostPop"]
    assert "Runs of MostPop kept from an earlier run" in (out / "lastfm" / "random.md").read_text()
    # without --merge the file holds this run only
    assert bench.main(base + ["--models", "ease"]) == 0
    assert [r["name"] for r in json.loads((out / "lastfm" / "random.json").read_text())["runs"]] == ["EASE"]
    # a different mode is refused, naming the option and the file
    with pytest.raises(SystemExit):
        bench.main([a for a in base if a != "--quick"] + ["--models", "mostpop", "--merge"])
    err = capsys.readouterr().err
    assert "'--merge':" in err and "random.json" in err and "quick=True" in err


def test_merge_from_folds_a_run_made_elsewhere_into_the_table(tmp_path, capsys):
    """--merge-from: the runs of a result file written to another --out join the table like --merge."""
    root = toy_root(tmp_path)
    base = ["--quick", "--data-root", str(root), "--cache", str(tmp_path / "cache"), "--datasets", "lastfm",
            "--splits", "random", "--no-isolate", "--threads", "1", "--allow-dirty"]
    main_out, other = tmp_path / "results", tmp_path / "elsewhere" / "results"
    assert bench.main(base + ["--models", "mostpop,itemknn", "--out", str(main_out)]) == 0
    first = json.loads((main_out / "lastfm" / "random.json").read_text())
    assert bench.main(base + ["--models", "ease,itemknn", "--out", str(other)]) == 0
    elsewhere = json.loads((other / "lastfm" / "random.json").read_text())
    assert bench.main(["--merge-from", str(other / "lastfm" / "random.json"), "--out", str(main_out)]) == 0
    both = json.loads((main_out / "lastfm" / "random.json").read_text())
    assert [r["name"] for r in both["runs"]] == ["MostPop", "EASE", "ItemKNN"]
    assert both["runs"][0] == first["runs"][0] and both["runs"][1:] == elsewhere["runs"]
    assert [m["models"] for m in both["merged"]] == [["MostPop"]]
    assert both["merged"][0]["command"] == first["command"] and both["command"] == elsewhere["command"]
    assert sorted(row["model"] for row in both["table"]) == ["EASE", "ItemKNN", "MostPop"]
    assert "Runs of MostPop kept from an earlier run" in (main_out / "lastfm" / "random.md").read_text()
    assert "| EASE" in (tmp_path / "RESULTS.md").read_text()
    # a file that is not a suite result is refused, naming the option and the file
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit):
        bench.main(["--merge-from", str(bad), "--out", str(main_out)])
    err = capsys.readouterr().err
    assert "'--merge-from':" in err and "bad.json" in err
    assert json.loads((main_out / "lastfm" / "random.json").read_text()) == both  # nothing stored was lost
    bad.write_text(json.dumps({"suite": True, "dataset": "lastfm"}))  # flagged, but half a file
    with pytest.raises(SystemExit):
        bench.main(["--merge-from", str(bad), "--out", str(main_out)])
    err = capsys.readouterr().err
    assert "'--merge-from':" in err and "lacks split, runs" in err
    assert json.loads((main_out / "lastfm" / "random.json").read_text()) == both


def test_hybrid_standing_needs_a_paired_test_and_a_gap_beyond_the_spreads():
    users = list(range(40))

    def runs(name, values, metric="ndcg@10", per_user=None):
        out = []
        for i, v in enumerate(values):
            r = {"name": name, "test": {metric: v}}
            if per_user is not None:
                r["per_user"] = {"users": users, metric: [x + 0.001 * i for x in per_user]}
            out.append(r)
        return out

    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.5, size=40)
    # the hybrid is better on 38 of 40 users: Wilcoxon p << 0.05, gap 0.02 beyond both spreads
    better = base + np.where(np.arange(40) < 38, 0.03, -0.02)
    rank = {"dataset": "d", "split": "random", "quick": False,
            "runs": runs("EASE", [0.30], per_user=base) + runs("BPR-MF", [0.20, 0.22])
            + runs("EASE+rules", [0.305], per_user=base + 0.001)
            + runs("Hybrid", [0.31, 0.33, 0.32], per_user=better) + runs("Hybrid w/o priors", [0.9])}
    # same means, but users split evenly: no significant difference -> tie although the gap beats the spreads
    mixed = base + np.where(np.arange(40) % 2 == 0, 0.05, -0.05) - 0.0005  # minus the seeds' mean offset
    noisy = {"dataset": "d", "split": "temporal", "quick": True,
             "runs": runs("EASE", [0.30], per_user=base) + runs("Hybrid", [0.33, 0.33], per_user=mixed)}
    ctr = {"dataset": "d", "split": "ctr", "quick": False,
           "runs": runs("LightGCN", [0.86, 0.86], "auc") + runs("Hybrid", [0.82, 0.82], "auc")}
    none = {"dataset": "d", "split": "random", "quick": False, "runs": runs("EASE", [0.3])}
    rows = bench.hybrid_standing([rank, noisy, ctr, none])
    assert [r["verdict"] for r in rows] == ["ahead", "tie", "tie"]
    # hybrid variants are not "other" rows; the best other is EASE+rules (0.305), and EASE+rules has its column
    assert rows[0]["best other"].startswith("EASE+rules 0.3050 ± 0.0000 (1); gap +0.0150 (+4.9%)")
    assert rows[0]["hybrid"] == "0.3200 ± 0.0100 (3)"
    from scipy.stats import wilcoxon

    hyb = np.mean([better + 0.001 * i for i in range(3)], axis=0)
    assert float(rows[0]["p (best other)"]) == pytest.approx(wilcoxon(hyb, base + 0.001).pvalue, rel=0.05)
    assert float(rows[1]["p (best other)"]) > 0.05
    assert rows[2]["metric"] == "AUC" and rows[2]["p (best other)"] == "n/a" and rows[1]["split"] == "temporal (quick)"


def test_neural_standing_compares_the_hybrid_without_priors_with_each_named_row():
    users = list(range(30))

    def runs(name, values, per_user):
        return [{"name": name, "test": {"ndcg@10": v},
                 "per_user": {"users": users, "ndcg@10": list(per_user + 0.001 * i)}} for i, v in enumerate(values)]

    base = np.linspace(0.1, 0.4, 30)
    # w/o priors beats LightGCN on every user by distinct margins (exact Wilcoxon p = 2 / 2^30), loses to EASE
    # on every one
    payload = {"dataset": "d", "split": "random", "quick": False,
               "runs": runs("LightGCN", [0.25, 0.26], base) + runs("EASE", [0.30], base + 0.05)
               + runs("Hybrid w/o priors", [0.28, 0.29, 0.28], base + 0.02 + 1e-4 * np.arange(30))
               + runs("Hybrid", [0.31], base + 0.06)}
    no_ease = {"dataset": "d", "split": "temporal", "quick": False,
               "runs": runs("LightGCN", [0.25], base) + runs("Hybrid w/o priors", [0.25], base)}
    without = {"dataset": "d", "split": "ctr", "quick": False, "runs": runs("LightGCN", [0.8], base)}
    rows = bench.neural_standing([payload, no_ease, without])
    assert len(rows) == 2  # the result without the model is skipped
    r = rows[0]
    assert r["Hybrid w/o priors"] == "0.2833 ± 0.0058 (3)"
    assert r["LightGCN"] == "0.2550 ± 0.0071 (2); gap +0.0283 (+11.1%)"
    assert float(r["p (LightGCN)"]) == pytest.approx(2 / 2**30, rel=0.05) and r["verdict (LightGCN)"] == "ahead"
    assert r["verdict (EASE)"] == "behind" and r["EASE"].startswith("0.3000 ± 0.0000 (1); gap -0.0167")
    # identical per-user figures: no difference, a tie; EASE absent: a dash, not a verdict
    assert rows[1]["verdict (LightGCN)"] == "tie" and rows[1]["EASE"] == rows[1]["verdict (EASE)"] == "—"
    # XSimGCL is compared by default, the column order LightGCN, XSimGCL, EASE
    assert r["XSimGCL"] == r["verdict (XSimGCL)"] == "—"
    cols = list(r)
    assert cols.index("LightGCN") < cols.index("XSimGCL") < cols.index("EASE")


def test_results_are_refused_from_a_dirty_tree_and_marked_when_allowed(tmp_path, monkeypatch, capsys):
    root = toy_root(tmp_path)
    out = tmp_path / "results"
    monkeypatch.setattr(bench, "tree_state", lambda ignore=(): ("f" * 40, ["kgrec/api.py"]))
    base = ["--quick", "--data-root", str(root), "--cache", str(tmp_path / "cache"), "--datasets", "lastfm",
            "--splits", "random", "--models", "mostpop", "--no-isolate", "--out", str(out)]
    with pytest.raises(SystemExit):
        bench.main(base)
    assert "uncommitted changes (['kgrec/api.py'])" in capsys.readouterr().err and not out.exists()
    assert bench.main(base + ["--allow-dirty"]) == 0
    md = (out / "lastfm" / "random.md").read_text()
    assert "uncommitted changes (--allow-dirty)**: kgrec/api.py" in md and "f" * 40 in md
    monkeypatch.setattr(bench, "tree_state", lambda ignore=(): ("e" * 40, []))
    assert bench.main(base) == 0
    md = (out / "lastfm" / "random.md").read_text()
    assert "uncommitted" not in md and "commit " + "e" * 40 in md
    # absolute paths in the recorded command are made relative
    payload = json.loads((out / "lastfm" / "random.json").read_text())
    tokens = payload["command"].split()
    assert not any(t.startswith("/") for t in tokens) and tokens[tokens.index("--out") + 1].endswith("results")


def test_tree_state_ignores_the_results_being_written(tmp_path):
    commit, dirty = bench.tree_state(ignore=[bench.ROOT])
    assert len(commit) == 40 and dirty == []


def test_a_split_is_written_as_soon_as_its_fits_are_done(tmp_path, monkeypatch):
    """A run that dies in its second split keeps the first split's results on disk."""
    root = toy_root(tmp_path)
    out = tmp_path / "results"
    real = bench._task

    def task(job):
        if job["split"] == "ctr":
            raise RuntimeError("killed")
        return real(job)

    monkeypatch.setattr(bench, "_task", task)
    with pytest.raises(RuntimeError, match="killed"):
        bench.main(["--quick", "--data-root", str(root), "--cache", str(tmp_path / "cache"), "--datasets", "lastfm",
                    "--splits", "random,ctr", "--models", "mostpop", "--no-isolate", "--threads", "1",
                    "--out", str(out), "--allow-dirty"])
    assert (out / "lastfm" / "random.json").is_file() and not (out / "lastfm" / "ctr.json").exists()
    assert "lastfm / random" in (tmp_path / "RESULTS.md").read_text()


def test_kgrec_benchmark_outside_a_checkout_says_where_the_suite_is(monkeypatch, tmp_path, capsys):
    """Installed without the repository (a wheel), the command explains instead of failing on an import."""
    from kgrec.cli import benchmark

    monkeypatch.setattr(benchmark, "BENCHMARKS", tmp_path / "benchmarks")
    assert cli.main(["benchmark", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "the benchmark suite is part of the source checkout" in err and "python benchmarks/run.py" in err
