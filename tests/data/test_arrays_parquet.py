"""Parquet input: RDF-loaded graph == NPZ round trip == Parquet round trip; bad schemas named."""

import builtins

import pytest
import torch

import kgrec
from kgrec.data.arrays import load_arrays, save_arrays
from kgrec.errors import ArrayFileError, KgrecError
from tests.conftest import REPO

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

TOY = REPO / "kg_data" / "toy" / "toy.ttl"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    with pytest.warns(UserWarning, match="dropped"):
        kg = kgrec.load(TOY)
    d = tmp_path_factory.mktemp("pq")
    return kg, save_arrays(kg, d / "toy.npz"), save_arrays(kg, d / "toy-pq", format="parquet")


def _same(a, b):
    assert a.users == b.users and a.items == b.items and a.entities == b.entities and a.relations == b.relations
    assert torch.equal(a.triples, b.triples)
    for name in ("user", "item", "weight"):
        assert torch.equal(getattr(a.interactions, name), getattr(b.interactions, name))
    assert torch.equal(a.interactions.time.nan_to_num(-1.0), b.interactions.time.nan_to_num(-1.0))
    assert torch.equal(a.features.nan_to_num(-1.0), b.features.nan_to_num(-1.0))
    assert a.feature_names == b.feature_names


def test_parquet_equals_npz_equals_rdf(toy):
    kg, npz, folder = toy
    assert sorted(f.name for f in folder.iterdir()) == [
        "entities.parquet", "features.parquet", "interactions.parquet", "items.parquet", "relations.parquet",
        "triples.parquet", "users.parquet"]
    from_pq, from_npz = load_arrays(folder), load_arrays(npz)
    _same(from_pq, kg)
    _same(from_pq, from_npz)
    assert from_pq.stats()["interactions"] == 15
    # the schema a Spark job would have to write: integer ids, string labels
    t = pq.read_table(folder / "triples.parquet")
    assert t.column_names == ["head", "relation", "tail"] and pa.types.is_integer(t.schema.field("head").type)
    assert pq.read_table(folder / "users.parquet").column("label").to_pylist() == kg.users.labels


def test_spark_style_minimal_folder(tmp_path):
    """Only the required tables and columns, int32 ids, a duplicate triple; no weights or times."""
    d = tmp_path / "g"
    d.mkdir()
    for name, labels in (("users", ["u:a", "u:b"]), ("items", ["i:x", "i:y"]), ("entities", ["i:x", "i:y", "g:1"]),
                         ("relations", ["p:genre"])):
        pq.write_table(pa.table({"label": labels}), d / f"{name}.parquet")
    pq.write_table(pa.table({"head": pa.array([1, 0, 1], pa.int32()), "relation": pa.array([0, 0, 0], pa.int32()),
                             "tail": pa.array([2, 2, 2], pa.int32())}), d / "triples.parquet")
    pq.write_table(pa.table({"user": [0, 1, 1], "item": [1, 0, 1]}), d / "interactions.parquet")
    kg = load_arrays(d)
    assert kg.triples.tolist() == [[0, 0, 2], [1, 0, 2]] and kg.warnings["duplicate triple"] == 1
    assert kg.interactions.user.tolist() == [0, 1, 1] and kg.interactions.weight.tolist() == [1.0, 1.0, 1.0]
    assert not kg.interactions.has_time and kg.features is None


def _rewrite(folder, name, table):
    pq.write_table(table, folder / f"{name}.parquet")


@pytest.mark.parametrize("name, change, match", [
    ("triples", lambda t: t.rename_columns(["head", "rel", "tail"]), "missing column.*'relation'"),
    ("interactions", lambda t: t.append_column("rating", pa.array([1.0] * len(t))), "unknown column.*'rating'"),
    ("users", lambda t: t.rename_columns(["iri"]), "missing column.*'label'"),
    ("triples", lambda t: t.set_column(0, "head", pa.array([0.5] * len(t))), "'triples' must be an integer array"),
    ("interactions", lambda t: t.set_column(0, "user", pa.array([None] * len(t), pa.int64())), "null id"),
    ("items", lambda t: t.set_column(0, "label", pa.array([True] * len(t))), "column 'label' must hold strings"),
    ("interactions", lambda t: t.set_column(1, "item", pa.array([999] * len(t))),
     r"'interactions_item' must be ids in \[0, 8\)"),
])
def test_bad_schema_names_file_and_column(tmp_path, toy, name, change, match):
    import shutil

    folder = tmp_path / "bad"
    shutil.copytree(toy[2], folder)
    _rewrite(folder, name, change(pq.read_table(folder / f"{name}.parquet")))
    with pytest.raises(ArrayFileError, match=match) as e:
        load_arrays(folder)
    assert str(folder) in str(e.value)
    if "column" in match:
        assert f"{name}.parquet" in str(e.value)


def test_missing_unknown_and_unreadable_files(tmp_path, toy):
    import shutil

    folder = tmp_path / "f"
    shutil.copytree(toy[2], folder)
    (folder / "relations.parquet").unlink()
    with pytest.raises(ArrayFileError, match=r"missing Parquet file\(s\) relations.parquet"):
        load_arrays(folder)
    shutil.copy(toy[2] / "relations.parquet", folder / "relations.parquet")
    (folder / "extra.parquet").write_bytes(b"x")
    with pytest.raises(ArrayFileError, match="unknown Parquet file.*extra.parquet"):
        load_arrays(folder)
    (folder / "extra.parquet").unlink()
    (folder / "users.parquet").write_bytes(b"not parquet")
    with pytest.raises(ArrayFileError, match="users.parquet: not a readable Parquet file"):
        load_arrays(folder)


def test_save_arguments(tmp_path, toy):
    with pytest.raises(KgrecError, match="'format' must be one of npz, parquet"):
        save_arrays(toy[0], tmp_path / "x", format="csv")
    with pytest.raises(KgrecError, match="'path' must end in .npz"):
        save_arrays(toy[0], tmp_path / "x", format="npz")
    # saving again replaces the folder as a whole
    out = save_arrays(toy[0], tmp_path / "again", format="parquet")
    (out / "stale.txt").write_text("x")
    save_arrays(toy[0], out, format="parquet")
    assert not (out / "stale.txt").exists()


def test_without_pyarrow_the_error_says_how_to_install(tmp_path, toy, monkeypatch):
    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("pyarrow"):
            raise ImportError("no pyarrow")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match="pip install pyarrow"):
        load_arrays(toy[2])
    with pytest.raises(ImportError, match="pip install pyarrow"):
        save_arrays(toy[0], tmp_path / "p", format="parquet")


def test_scenarios_round_trip_in_parquet(tmp_path, toy):
    from tests.data.test_arrays import two_scenario_toy

    folder = save_arrays(two_scenario_toy(toy[0]), tmp_path / "two", format="parquet")
    assert (folder / "scenarios.parquet").exists()
    assert pq.read_table(folder / "scenarios.parquet").column("label").to_pylist() == ["rating", "tag"]
    col = pq.read_table(folder / "interactions.parquet").column("scenario")
    assert pa.types.is_integer(col.type) and col.to_pylist() == [i % 2 for i in range(15)]
    back = load_arrays(folder)
    assert back.scenarios == ["rating", "tag"]
    assert back.interactions.scenario.tolist() == [i % 2 for i in range(15)]
    # the same graph through NPZ
    npz = load_arrays(save_arrays(two_scenario_toy(toy[0]), tmp_path / "two.npz"))
    assert npz.scenarios == back.scenarios and torch.equal(npz.interactions.scenario, back.interactions.scenario)
    # a folder written before (no scenarios.parquet, no 'scenario' column) loads with the default scenario
    old = load_arrays(toy[2])
    assert old.scenarios == ["default"] and old.interactions.scenario is None


def test_bad_scenario_column_names_the_file_and_column(tmp_path, toy):
    from tests.data.test_arrays import two_scenario_toy

    folder = save_arrays(two_scenario_toy(toy[0]), tmp_path / "two", format="parquet")
    t = pq.read_table(folder / "interactions.parquet")
    _rewrite(folder, "interactions", t.set_column(t.column_names.index("scenario"), "scenario",
                                                  pa.array([0] * 14 + [5])))
    with pytest.raises(ArrayFileError, match=r"interactions.parquet: column 'scenario' \(indices of 'scenarios': "
                                             r"rating, tag\) must be ids in \[0, 2\) \(found 5 at row 14\)"):
        load_arrays(folder)
    _rewrite(folder, "scenarios", pa.table({"name": ["rating", "tag"]}))
    with pytest.raises(ArrayFileError, match=r"scenarios.parquet: columns must be 'label'"):
        load_arrays(folder)
