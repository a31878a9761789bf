"""benchmarks/ablations.py: one table of multi-seed ablations, with the protocol's verdict per split."""
import json
import sys
from pathlib import Path

import pytest

from kgrec.errors import KgrecError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import ablations  # noqa: E402

M = "Hybrid w/o priors"


def payload(dataset, by_seed, commit="a" * 40, test_users=20):
    """A suite file with one row ``M``: ``by_seed`` = {seed: per-user NDCG@10 list}."""
    runs = [{"name": M, "seed": s, "test": {"ndcg@10": sum(v) / len(v), "recall@20": 2 * sum(v) / len(v)},
             "per_user": {"users": list(range(len(v))), "ndcg@10": v}} for s, v in by_seed.items()]
    return {"dataset": dataset, "split": "random", "runs": runs, "machine": {"commit": commit},
            "split_stats": {"strategy": "random", "seed": 2020, "test_users": test_users}}


def seeds(values, jitter=(0.0, 0.01, -0.01)):
    return {2020 + k: [v + j for v in values] for k, j in enumerate(jitter)}


WHOLE = [0.3 + 0.01 * (u % 5) for u in range(20)]


def test_a_removal_that_lowers_every_user_beyond_the_spread_is_named():
    whole = payload("d1", seeds(WHOLE))
    ablated = payload("d1", seeds([v - 0.1 for v in WHOLE]), "b" * 40)
    row = ablations.compare("w/o KG", M, (Path("w.json"), whole), (Path("a.json"), ablated))
    assert row["removal"] == "lowers" and row["p"] < 1e-3
    assert round(row["gap"], 6) == -0.1 and round(row["relative"], 4) == round(-0.1 / (sum(WHOLE) / 20), 4)
    assert row["whole ndcg@10"] == "0.3200 ± 0.0100" and row["ablated ndcg@10"] == "0.2200 ± 0.0100"
    assert (row["whole commit"], row["ablated commit"]) == ("a" * 40, "b" * 40)


def test_gap_inside_the_seed_spread_is_a_tie_even_when_significant():
    # every user 0.005 lower (p tiny) but the seeds spread by 0.01: a tie by the protocol's rule
    whole = payload("d1", seeds(WHOLE))
    ablated = payload("d1", seeds([v - 0.005 for v in WHOLE]))
    row = ablations.compare("w/o text", M, (Path("w"), whole), (Path("a"), ablated))
    assert row["p"] < 0.05 and row["removal"] == "tie"
    same = ablations.compare("w/o text", M, (Path("w"), whole), (Path("a"), payload("d1", seeds(WHOLE))))
    assert same["p"] == 1.0 and same["removal"] == "tie" and same["gap"] == 0.0


def test_a_part_earns_its_place_on_enough_splits():
    rows = [{"ablation": "w/o KG", "removal": r} for r in ("lowers", "lowers", "tie", "raises")]
    rows += [{"ablation": "concat", "removal": r} for r in ("lowers", "lowers", "lowers", "tie")]
    parts = ablations.part_verdicts(rows, need=3)
    assert parts == [{"ablation": "w/o KG", "splits": 4, "lowers": 2, "raises": 1,
                      "earns its place": "no (2 of 3 needed)"},
                     {"ablation": "concat", "splits": 4, "lowers": 3, "raises": 0, "earns its place": "yes"}]


def test_bad_input_is_refused_by_name(tmp_path):
    with pytest.raises(KgrecError, match="'--ablation': 'nokg' must be LABEL=FOLDER"):
        ablations.parse_ablation("nokg")
    assert ablations.parse_ablation("w/o KG = runs/x") == ("w/o KG", Path("runs/x"))
    whole = payload("d1", seeds(WHOLE))
    other = payload("d1", seeds(WHOLE), test_users=19)
    with pytest.raises(KgrecError, match="'w/o KG': a.json and w.json hold different splits"):
        ablations.compare("w/o KG", M, (Path("w.json"), whole), (Path("a.json"), other))
    with pytest.raises(KgrecError, match=r"w.json: no runs of 'LightGCN' \(it holds Hybrid w/o priors\)"):
        ablations.compare("w/o KG", "LightGCN", (Path("w.json"), whole), (Path("a.json"), whole))
    with pytest.raises(KgrecError, match="'w/o KG': no result file .*nope.json"):
        ablations.load(tmp_path / "nope.json", "'w/o KG'")
    (tmp_path / "bad.json").write_text("{\n oops")
    with pytest.raises(KgrecError, match=r"bad.json is not JSON \(.*line 2\)"):
        ablations.load(tmp_path / "bad.json", "'--full'")


def test_main_writes_the_table_the_verdicts_and_the_plot(tmp_path):
    for name, data in (("whole", WHOLE), ("nokg", [v - 0.1 for v in WHOLE]), ("notext", WHOLE)):
        for ds in ("d1", "d2"):
            (tmp_path / name / ds).mkdir(parents=True)
            (tmp_path / name / ds / "random.json").write_text(json.dumps(payload(ds, seeds(data))))
    argv = ["--model", M, "--full", str(tmp_path / "whole/d1/random.json"), "--full",
            str(tmp_path / "whole/d2/random.json"), "--ablation", f"w/o KG={tmp_path / 'nokg'}",
            "--ablation", f"w/o text={tmp_path / 'notext'}", "--need", "2", "--name", "abl", "--title", "T",
            "--out", str(tmp_path / "out")]
    assert ablations.main(argv) == 0
    out = json.loads((tmp_path / "out/abl.json").read_text())
    assert [(r["ablation"], r["dataset"], r["removal"]) for r in out["rows"]] == [
        ("w/o KG", "d1", "lowers"), ("w/o KG", "d2", "lowers"), ("w/o text", "d1", "tie"), ("w/o text", "d2", "tie")]
    assert [q["earns its place"] for q in out["parts"]] == ["yes", "no (0 of 2 needed)"]
    md = (tmp_path / "out/abl.md").read_text()
    assert "| w/o KG | 2 of 2 | 0 | yes |" in md and "-31.2%" in md
    assert (tmp_path / "out/abl.png").stat().st_size > 0
