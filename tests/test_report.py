"""kgrec.reports.tables: Markdown tables and atomic JSON + Markdown result files."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from kgrec.reports.tables import atomic_write_text, markdown_table, to_jsonable, write_results


def test_markdown_table_exact_output():
    rows = [{"model": "ease", "ndcg@10": 0.12345, "users": 610},
            {"model": "lightgcn", "ndcg@10": 0.2, "users": 7}]
    got = markdown_table(rows, ["model", ("ndcg@10", "NDCG@10"), "users"])
    assert got == (
        "| model    | NDCG@10 | users |\n"
        "|:---------|--------:|------:|\n"
        "| ease     |  0.1235 |   610 |\n"
        "| lightgcn |  0.2000 |     7 |"
    )


def test_markdown_table_cells_and_alignment():
    rows = [{"a": None, "b": True, "c": float("nan"), "d": "x|y\nz", "e": 3},
            {"b": False, "c": 1.5, "d": "w", "e": None}]
    lines = markdown_table(rows, {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}, floatfmt=".1f").split("\n")
    assert len(lines) == 4
    assert [c.strip() for c in lines[2].strip("|").split(" | ")] == ["", "yes", "nan", "x\\|y z", "3"]
    assert [c.strip() for c in lines[3].strip("|").split(" | ")] == ["", "no", "1.5", "w", ""]
    # numbers (with empty cells) right-aligned; text, booleans and all-empty columns left-aligned
    seps = lines[1].strip("|").split("|")
    assert [s.startswith(":") for s in seps] == [True, True, False, True, False]
    assert [s.endswith(":") for s in seps] == [False, False, True, False, True]
    assert len({len(line) for line in lines}) == 1  # padded to equal widths


def test_markdown_table_no_rows_and_bad_columns():
    assert markdown_table([], ["model", "x"]) == "| model | x   |\n|:------|:----|"
    with pytest.raises(ValueError, match="'columns' must name at least one column"):
        markdown_table([{"a": 1}], [])
    with pytest.raises(TypeError, match="not one string"):
        markdown_table([{"a": 1}], "a")
    with pytest.raises(TypeError, match="a key or a \\(key, header\\) pair"):
        markdown_table([{"a": 1}], [("a", "b", "c")])


@dataclass
class _Cfg:
    dim: int = 8
    lr: float = 0.5


def test_to_jsonable():
    got = to_jsonable({"t": torch.tensor([1, 2]), "f": torch.tensor(0.5), "n": np.float32(2.0), "i": np.int64(3),
                       "nan": math.nan, "inf": [float("inf")], "p": Path("a/b"), "tup": (1, "x"),
                       "cfg": _Cfg(), 4: {"s": {"b", "a"}}})
    assert got == {"t": [1, 2], "f": 0.5, "n": 2.0, "i": 3, "nan": None, "inf": [None], "p": "a/b",
                   "tup": [1, "x"], "cfg": {"dim": 8, "lr": 0.5}, "4": {"s": ["a", "b"]}}
    assert type(got["i"]) is int
    with pytest.raises(TypeError, match="cannot write a object as JSON"):
        to_jsonable(object())


def test_write_results_files(tmp_path):
    out = tmp_path / "new" / "dir"
    payload = {"models": {"ease": {"ndcg@10": 0.25, "bad": math.nan}}, "ks": (10, 20)}
    rows = [{"model": "ease", "ndcg@10": 0.25}]
    j, m = write_results(out, "results", payload, rows, [("model", "model"), ("ndcg@10", "NDCG@10")],
                         title="kgrec demo", text="Data: toy.")
    assert j == out / "results.json" and m == out / "results.md"
    assert json.loads(j.read_text()) == {"models": {"ease": {"ndcg@10": 0.25, "bad": None}}, "ks": [10, 20]}
    assert m.read_text() == ("# kgrec demo\n\nData: toy.\n\n| model | NDCG@10 |\n|:------|--------:|\n"
                             "| ease  |  0.2500 |\n")
    # rewriting replaces the files and leaves no temporary file behind
    write_results(out, "results", {"x": 1}, [], ["x"])
    assert json.loads(j.read_text()) == {"x": 1}
    assert m.read_text().startswith("# results\n\n| x   |")
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.md"]


def test_write_results_bad_name(tmp_path):
    for name in ("", "a/b", ".."):
        with pytest.raises(ValueError, match="'name' must be a file stem"):
            write_results(tmp_path, name, {}, [], ["x"])
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("kgrec.reports.tables.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_gives_usual_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "page.html", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by others, like any written file


def test_relative_paths_rewrites_machine_paths_only(tmp_path):
    from kgrec.reports.tables import relative_paths

    base = tmp_path / "repo"
    text = (f"cmd --data-root {tmp_path}/shared/data --out {base}/benchmarks/results "
            "https://w3id.org/kgrec/data/x 4.4 s/epoch /no-such-top-folder/x")
    assert relative_paths(text, base) == ("cmd --data-root ../shared/data --out benchmarks/results "
                                          "https://w3id.org/kgrec/data/x 4.4 s/epoch /no-such-top-folder/x")
    write_results(tmp_path / "out", "r", {"command": f"--cache {base}/.cache"}, [], ["model"], text=f"at {base}",
                  relative_to=base)
    assert '"--cache .cache"' in (tmp_path / "out" / "r.json").read_text()
    assert "at ." in (tmp_path / "out" / "r.md").read_text()
    # without relative_to (a user's own output) paths stay as given
    write_results(tmp_path / "out", "s", {"data": f"{base}/x.nt"}, [], ["model"])
    assert f"{base}/x.nt" in (tmp_path / "out" / "s.json").read_text()
