"""Crash safety and determinism: hashed checkpoints, a kept previous checkpoint, exact resume."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import kgrec
from kgrec.errors import CheckpointError
from kgrec.training.checkpoint import load_checkpoint, previous_checkpoint, verify_checkpoint
from tests.conftest import REPO, two_cluster_kg

PARAMS = {
    "bprmf": {"epochs": 12, "lr": 0.05, "reg": 1e-4, "dim": 8, "batch_size": 8, "patience": 100, "seed": 3,
              "device": "cpu"},
    "lightgcn": {"epochs": 12, "lr": 0.05, "reg": 1e-4, "dim": 8, "batch_size": 8, "patience": 100, "seed": 3,
                 "device": "cpu"},
    # mini-batch training on sampled subgraphs: the neighbour sampler's generator is checkpointed too
    "lightgcn-sampled": {"epochs": 12, "lr": 0.05, "reg": 1e-4, "dim": 8, "batch_size": 8, "patience": 100,
                         "seed": 3, "device": "cpu", "sampled": True, "num_layers": 2, "fanouts": [2, 2]},
}
MODEL = {"lightgcn-sampled": "lightgcn"}


def _data():
    kg = two_cluster_kg(n_per=10, items_per=6)
    return kg, kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=2)


def _metrics(m: dict) -> dict:
    """The metric values, without the timings the evaluator also reports."""
    return {k: v for k, v in m.items() if k not in ("seconds", "users_per_second")}


def _weights(rec) -> dict:
    return {k: v for k, v in rec.estimator.state_tensors().items() if k.startswith("module.")}


def _assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("model", ["bprmf", "lightgcn"])
def test_two_seeded_cpu_runs_are_identical(model):
    kg, sp = _data()
    runs = [kgrec.Recommender(model, **PARAMS[model]).fit(kg, sp) for _ in range(2)]
    assert _metrics(runs[0].fit_info["valid"]) == _metrics(runs[1].fit_info["valid"])
    assert _metrics(runs[0].evaluate(sp)) == _metrics(runs[1].evaluate(sp))
    _assert_same_weights(_weights(runs[0]), _weights(runs[1]))
    other = kgrec.Recommender(model, **dict(PARAMS[model], seed=4)).fit(kg, sp)  # the seed matters
    assert any(not torch.equal(a, b) for a, b in zip(_weights(other).values(), _weights(runs[0]).values()))


# -------------------------------------------------------------------------- exact resume
@pytest.mark.parametrize("model", ["bprmf", "lightgcn", "lightgcn-sampled"])
def test_resume_after_crash_ends_exactly_as_uninterrupted(tmp_path, model):
    kg, sp = _data()
    name = MODEL.get(model, model)
    full = kgrec.Recommender(name, **PARAMS[model]).fit(kg, sp)

    def crash_at_epoch_7(line):
        if line.startswith("epoch    7"):
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        kgrec.Recommender(name, **PARAMS[model]).fit(kg, sp, log=crash_at_epoch_7, checkpoint_dir=tmp_path / "c")
    meta, tensors = load_checkpoint(tmp_path / "c")
    assert 1 <= meta["progress"]["epoch"] <= 6
    assert "trainer.rng.shuffle" in tensors and any(k.startswith("trainer.optim.") for k in tensors)
    assert ("trainer.rng.est.neighbors" in tensors) == (model == "lightgcn-sampled")
    resumed = kgrec.Recommender(name, **PARAMS[model]).fit(kg, sp, checkpoint_dir=tmp_path / "c", resume=True)
    assert resumed.fit_info["resumed_from_epoch"] == meta["progress"]["epoch"]
    assert resumed.fit_info["best_epoch"] == full.fit_info["best_epoch"]
    assert _metrics(resumed.fit_info["valid"]) == _metrics(full.fit_info["valid"])
    assert _metrics(resumed.evaluate(sp)) == _metrics(full.evaluate(sp))
    _assert_same_weights(_weights(resumed), _weights(full))


def test_resume_on_another_graph_is_a_checkpoint_error(tmp_path):
    kg, sp = _data()
    kgrec.Recommender("bprmf", **dict(PARAMS["bprmf"], epochs=2)).fit(kg, sp, checkpoint_dir=tmp_path / "c")
    other = two_cluster_kg(n_per=9, items_per=6)
    osp = kgrec.split(other, "random", ratios=(0.6, 0.2, 0.2), seed=2)
    with pytest.raises(CheckpointError, match=r"c': it was trained on other users \(20 users, this graph has 18\)"):
        kgrec.Recommender("bprmf", **PARAMS["bprmf"]).fit(other, osp, checkpoint_dir=tmp_path / "c", resume=True)


# ------------------------------------------------------------------ manifest and .prev
def _saved_twice(tmp_path):
    kg = two_cluster_kg()
    d = tmp_path / "m"
    kgrec.Recommender("ease", reg=1.0).fit(kg).save(d)
    kgrec.Recommender("ease", reg=5.0).fit(kg).save(d)
    return kg, d


def test_manifest_records_sizes_and_hashes_and_previous_is_kept(tmp_path):
    import hashlib

    kg, d = _saved_twice(tmp_path)
    manifest = json.loads((d / "manifest.json").read_text())
    for name in ("config.json", "model.safetensors"):
        data = (d / name).read_bytes()
        assert manifest["files"][name] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert previous_checkpoint(d) == d.with_name("m.prev")
    assert kgrec.Recommender.load(d).config.reg == 5.0
    assert kgrec.Recommender.load(d.with_name("m.prev")).config.reg == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "m.prev"]  # no temporary left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "drop-manifest", "edit-config"])
def test_damaged_checkpoint_is_refused_naming_the_kept_previous_one(tmp_path, damage):
    _, d = _saved_twice(tmp_path)
    weights = d / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:-7])
        expected = r"model\.safetensors' has \d+ bytes but manifest\.json records \d+: the file is truncated"
    elif damage == "flip":
        data = bytearray(weights.read_bytes())
        data[-3] ^= 0xFF
        weights.write_bytes(bytes(data))
        expected = r"model\.safetensors' does not match its SHA-256 in manifest\.json"
    elif damage == "drop-manifest":
        (d / "manifest.json").unlink()
        expected = r"manifest\.json' is missing"
    else:
        cfg = d / "config.json"
        cfg.write_text(cfg.read_text().replace('"reg": 5.0', '"reg": 6.0'))
        expected = r"config\.json' has \d+ bytes but manifest\.json records \d+|config\.json' does not match"
    with pytest.raises(CheckpointError, match=expected) as e:
        kgrec.Recommender.load(d)
    assert f"the previous checkpoint is kept in '{d.with_name('m.prev')}'" in str(e.value)
    verify_checkpoint(d.with_name("m.prev"))  # still intact


def test_saving_over_a_damaged_checkpoint_keeps_the_older_good_one(tmp_path):
    kg, d = _saved_twice(tmp_path)
    (d / "model.safetensors").write_bytes(b"garbage")
    kgrec.Recommender("ease", reg=9.0).fit(kg).save(d)
    assert kgrec.Recommender.load(d).config.reg == 9.0
    assert kgrec.Recommender.load(d.with_name("m.prev")).config.reg == 1.0  # the damaged one was dropped


def test_resume_uses_prev_when_a_crash_left_only_it(tmp_path):
    kg, sp = _data()
    params = dict(PARAMS["bprmf"], epochs=6)
    kgrec.Recommender("bprmf", **params).fit(kg, sp, checkpoint_dir=tmp_path / "c")
    prev = previous_checkpoint(tmp_path / "c")
    assert prev is not None
    epoch = json.loads((prev / "config.json").read_text())["progress"]["epoch"]
    os.rename(tmp_path / "c", tmp_path / "gone")  # as if killed between the two renames of a save
    resumed = kgrec.Recommender("bprmf", **params).fit(kg, sp, checkpoint_dir=tmp_path / "c", resume=True)
    assert resumed.fit_info["resumed_from_epoch"] == epoch


# ------------------------------------------------------------------ SIGKILL mid-training
def _fixture_graph(path: Path) -> Path:
    """200 users x 25 of 120 items, two taste groups; N-Triples with kgr:interactedWith."""
    rng = random.Random(0)
    lines = []
    for u in range(200):
        pool = range(0, 70) if u % 2 else range(50, 120)
        for i in rng.sample(list(pool), 25):
            lines.append(f"<http://x/u{u:03d}> <https://w3id.org/kgrec/vocab#interactedWith> <http://x/i{i:03d}> .")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sigkill_mid_training_then_resume_reaches_the_uninterrupted_metrics(tmp_path):
    from kgrec.cli import main

    data = _fixture_graph(tmp_path / "g.nt")
    common = ["train", str(data), "--model", "bprmf", "--ratios", "0.7,0.15,0.15", "--seed", "5",
              "--param", "epochs=40", "--param", "batch_size=16", "--param", "lr=0.01", "--param", "dim=16",
              "--param", "patience=1000", "--param", "device=cpu", "--param", "seed=5", "--no-progress"]
    killed = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "kgrec", *common, "--out", str(killed), "--checkpoint"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (killed / "config.json").is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # a few more epochs (and checkpoint saves) before the kill
        assert proc.poll() is None, "training ended before it could be killed: " + proc.stderr.read().decode()[-800:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "metrics.json").exists()  # it really died before the end
    ckpt = killed if (killed / "config.json").is_file() else previous_checkpoint(killed)
    epoch_at_kill = json.loads((ckpt / "config.json").read_text())["progress"]["epoch"]
    assert 1 <= epoch_at_kill < 40
    print(f"killed with the checkpoint of epoch {epoch_at_kill} of 40 on disk")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic as the OMP_NUM_THREADS=1 subprocess
    try:
        assert main([*common, "--out", str(killed), "--resume"]) == 0
        assert main([*common, "--out", str(tmp_path / "full")]) == 0
    finally:
        torch.set_num_threads(threads)
    resumed = json.loads((killed / "metrics.json").read_text())
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert resumed["fit"]["resumed_from_epoch"] == epoch_at_kill
    assert resumed["fit"]["best_epoch"] == full["fit"]["best_epoch"]
    for part in ("valid", "test"):
        assert resumed[part].keys() == full[part].keys()
        for k, v in _metrics(full[part]).items():
            assert resumed[part][k] == pytest.approx(v, abs=1e-6), (part, k)
    _assert_same_weights(*(dict((k, v) for k, v in load_checkpoint(d)[1].items() if k.startswith("module."))
                           for d in (killed, tmp_path / "full")))
