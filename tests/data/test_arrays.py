"""Pre-mapped integer input: KnowledgeGraph -> NPZ -> the same tensors; bad arrays named in errors."""

import numpy as np
import pytest
import torch

import kgrec
from kgrec.data.arrays import load_arrays, save_arrays
from kgrec.errors import ArrayFileError, KgrecError
from tests.conftest import REPO

TOY = REPO / "kg_data" / "toy" / "toy.ttl"


@pytest.fixture(scope="module")
def toy_npz(tmp_path_factory):
    with pytest.warns(UserWarning, match="dropped"):
        kg = kgrec.load(TOY)
    path = save_arrays(kg, tmp_path_factory.mktemp("arrays") / "toy.npz")
    return kg, path


def test_round_trip_same_tensors(toy_npz):
    kg, path = toy_npz
    back = kgrec.load_arrays(path)
    assert back.users == kg.users and back.items == kg.items
    assert back.entities == kg.entities and back.relations == kg.relations
    assert torch.equal(back.triples, kg.triples)
    for name in ("user", "item", "weight"):
        assert torch.equal(getattr(back.interactions, name), getattr(kg.interactions, name))
    assert torch.equal(back.interactions.time.isnan(), kg.interactions.time.isnan())
    t = ~kg.interactions.time.isnan()
    assert torch.equal(back.interactions.time[t], kg.interactions.time[t])
    assert torch.equal(back.features.isnan(), kg.features.isnan())
    assert back.feature_names == kg.feature_names
    assert back.stats()["interactions"] == 15 and back.stats()["triples"] == kg.stats()["triples"]
    # the loaded graph trains like an RDF-loaded one
    split = kgrec.split(back, "random", seed=0)
    kgrec.Recommender("mostpop").fit(back, split)


def _toy_arrays(path):
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def test_minimal_arrays_and_duplicates(tmp_path):
    arrays = {"users": np.array(["u:a", "u:b"]), "items": np.array(["i:x", "i:y"]),
              "entities": np.array(["i:x", "i:y", "g:1"]), "relations": np.array(["p:genre"]),
              "triples": np.array([[1, 0, 2], [0, 0, 2], [1, 0, 2]], dtype=np.int32),
              "interactions_user": np.array([0, 1, 1]), "interactions_item": np.array([1, 0, 1])}
    np.savez(tmp_path / "m.npz", **arrays)
    kg = load_arrays(tmp_path / "m.npz")
    assert kg.triples.tolist() == [[0, 0, 2], [1, 0, 2]]  # sorted, unique
    assert kg.warnings["duplicate triple"] == 1
    assert kg.interactions.weight.tolist() == [1.0, 1.0, 1.0] and not kg.interactions.has_time


@pytest.mark.parametrize("change, match", [
    (lambda a: a.pop("triples"), "missing array.*'triples'"),
    (lambda a: a.update(extra=np.zeros(1)), "unknown array.*'extra'"),
    (lambda a: a.update(triples=a["triples"][:, :2]), r"'triples' must have shape \[T, 3\]"),
    (lambda a: a.update(triples=a["triples"].astype(float)), "'triples' must be an integer array"),
    (lambda a: a.update(interactions_item=a["interactions_item"] + 100),
     r"'interactions_item' must be ids in \[0, 8\)"),
    (lambda a: a.update(interactions_user=a["interactions_user"][:-1]), "'interactions_item' has 15 entries"),
    (lambda a: a.update(interactions_time=a["interactions_time"][:3]), r"'interactions_time' must be .* \[15\]"),
    (lambda a: a.update(users=np.array(["same"] * len(a["users"]))), "'users' repeats the label 'same'"),
    (lambda a: a.update(entities=a["entities"][::-1].copy()), "'entities' must start with the 8 'items'"),
    (lambda a: a.pop("feature_names"), "'features' and 'feature_names' must be given together"),
])
def test_bad_arrays_name_the_array_and_file(tmp_path, toy_npz, change, match):
    arrays = _toy_arrays(toy_npz[1])
    change(arrays)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ArrayFileError, match=match) as e:
        load_arrays(bad)
    assert str(bad) in str(e.value)


def test_bad_paths(tmp_path):
    with pytest.raises(KgrecError, match="'path': no such file"):
        load_arrays(tmp_path / "none.npz")
    with pytest.raises(KgrecError, match="must be an .npz file or a folder of Parquet files"):
        load_arrays(tmp_path / "x.parquet")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ArrayFileError, match="not a readable NPZ"):
        load_arrays(tmp_path / "junk.npz")
