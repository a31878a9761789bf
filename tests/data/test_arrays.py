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
    (lambda a: a.update(scenarios=np.array(["rating", "tag"]), interactions_scenario=np.arange(15) % 3),
     r"'interactions_scenario' \(indices of 'scenarios': rating, tag\) must be ids in \[0, 2\) "
     r"\(found 2 at row 2\)"),
    (lambda a: a.update(interactions_scenario=np.ones(15, dtype=int)),  # no names: only 'default' (id 0)
     r"'interactions_scenario' \(indices of 'scenarios': default\) must be ids in \[0, 1\)"),
    (lambda a: a.update(interactions_scenario=np.zeros(15)), r"'interactions_scenario' must be an integer array"),
    (lambda a: a.update(scenarios=np.array(["tag", "tag"])), "'scenarios' repeats the label 'tag'"),
    (lambda a: a.update(scenarios=np.array(["9lives"])), "'scenarios' must name at least one scenario.*9lives"),
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


def two_scenario_toy(kg):
    """The toy graph with its 15 interactions alternately in scenarios 'rating' and 'tag'."""
    import dataclasses

    inter = dataclasses.replace(kg.interactions, scenario=torch.arange(len(kg.interactions)) % 2)
    return dataclasses.replace(kg, interactions=inter, scenarios=["rating", "tag"])


def test_scenarios_round_trip_and_older_files_load_with_the_default(tmp_path, toy_npz):
    kg, path = toy_npz
    # a file without scenario arrays (as written before kgrec kept scenarios) is one 'default' scenario
    assert not {"scenarios", "interactions_scenario"} & set(_toy_arrays(path))
    old = load_arrays(path)
    assert old.scenarios == ["default"] and old.interactions.scenario is None
    two = two_scenario_toy(kg)
    out = save_arrays(two, tmp_path / "two.npz")
    arrays = _toy_arrays(out)
    assert arrays["scenarios"].tolist() == ["rating", "tag"]
    assert arrays["interactions_scenario"].tolist() == [i % 2 for i in range(15)]
    back = load_arrays(out)
    assert back.scenarios == ["rating", "tag"]
    assert back.interactions.scenario.tolist() == [i % 2 for i in range(15)]
    assert back.stats()["interactions_per_scenario"] == {"rating": 8, "tag": 7}
