"""The columnar N-Triples reader gives what the streaming pyoxigraph path gives: terms, order,
duplicates, warnings, errors, limits; and kgrec.load builds the same graph through it."""

from __future__ import annotations

import gzip
from collections import Counter
from unittest import mock

import numpy as np
import pytest
import torch

pytest.importorskip("polars")

import kgrec  # noqa: E402
from kgrec.data import ntcolumns  # noqa: E402
from kgrec.data.rdf import Literal, RDF_LANGSTRING, XSD, read_triples  # noqa: E402
from kgrec.data.safety import Limits  # noqa: E402
from kgrec.data.synthetic import generate  # noqa: E402
from kgrec.errors import InputLimitError, RDFParseError  # noqa: E402

EX = "http://example.org/"

# every kind of line: the fast form, and all that the fast expression leaves to pyoxigraph
TRICKY = "\n".join([
    f"<{EX}s1> <{EX}p> <{EX}o1> .",
    f'<{EX}s1> <{EX}label> "plain words" .',
    f'<{EX}s1> <{EX}label> "Mixed Case"@EN-gb .',            # fast; language tag lower-cased
    f'<{EX}s1> <{EX}label> "mixed case"@en-GB .',
    f'<{EX}s1> <{EX}label> "typed"^^<{XSD}string> .',       # = the plain literal "typed"
    f'<{EX}s1> <{EX}label> "typed" .',
    f'<{EX}s1> <{EX}n> "42"^^<{XSD}integer> .',
    f'<{EX}s1> <{EX}label> "a \\"quoted\\" word\\nand a newline \\\\ \\u00e9" .',  # escapes
    "",
    "# a comment line",
    f"<{EX}s1>\t<{EX}p>\t<{EX}o2> .",                          # tabs
    f"<{EX}s1> <{EX}p> <{EX}o3> . # trailing comment",
    f"_:b1 <{EX}p> _:b2 .",
    f"_:b1 <{EX}p> <{EX}o1> .",
    f"<{EX}s1> <{EX}p> <{EX}o1> .",                             # duplicate, kept
    f"<{EX}caf\u00e9> <{EX}p> <http://example.org:8080/a%20b?q=1#frag> .",  # non-ASCII IRI, port
    f"<urn:isbn:0451450523> <{EX}p> <mailto:someone@example.org> .",
    f'<{EX}s2> <{EX}label> "lang with script"@zh-Hant .',
    f'<{EX}s2> <{EX}label> "long tag"@en-Latn-US .',            # not the fast form: pyoxigraph
    f"<{EX}s2> <{EX}p> <<( <{EX}a> <{EX}b> <{EX}c> )>> .",      # RDF 1.2 triple term: skipped
    f"<https://schema.org/x> <{EX}p> <http://schema.org/x> .",
    "   ",
    f"<{EX}s3> <{EX}p> <{EX}o1> .\r",
]) + "\n"


def _write(tmp_path, text: str, name="t.nt"):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return p


@pytest.fixture
def every_line_columnar(monkeypatch):
    """Keep the columnar reader on however many lines need pyoxigraph."""
    monkeypatch.setattr(ntcolumns, "MAX_FALLBACK_SHARE", 1.0)


def test_same_triples_and_warnings_as_the_streaming_path(tmp_path, every_line_columnar):
    p = _write(tmp_path, TRICKY)
    w1, w2 = Counter(), Counter()
    idt = ntcolumns.read_id_triples(p, warnings=w1)
    ref = read_triples(p, engine="oxigraph", warnings=w2)
    assert idt.decoded() == ref
    assert w1 == w2 and w1["RDF-star quoted triple skipped"] == 1
    # one id per term: the two spellings of one literal share it
    assert len(set(idt.terms)) == len(idt.terms)
    assert Literal("typed") in idt.terms
    assert Literal("Mixed Case", RDF_LANGSTRING, "en-gb") in idt.terms
    assert Literal('a "quoted" word\nand a newline \\ \u00e9') in idt.terms
    assert idt.triples.dtype == np.int64 and idt.triples.shape == (len(ref), 3)


def test_fast_lines_only_need_no_pyoxigraph(tmp_path, monkeypatch):
    lines = [f'<{EX}s{k}> <{EX}p> "v{k}"@EN .' for k in range(50)] + [f"_:x{k} <{EX}q> <{EX}s{k}> ." for k in range(50)]
    p = _write(tmp_path, "\n".join(lines) + "\n")
    monkeypatch.setattr(ntcolumns, "_slow_rows", mock.Mock(side_effect=AssertionError("no slow line expected")))
    idt = ntcolumns.read_id_triples(p, file_index=3)
    assert idt.decoded() == [
        (t[0].replace("_:f0.", "_:f3."), t[1], t[2]) for t in read_triples(p)]
    assert idt.terms[idt.triples[0, 2]] == Literal("v0", RDF_LANGSTRING, "en")


def test_mostly_slow_file_is_left_to_streaming(tmp_path):
    p = _write(tmp_path, "\n".join(f"<{EX}s{k}>\t<{EX}p>\t<{EX}o> ." for k in range(20)) + "\n")
    assert ntcolumns.read_id_triples(p) is None


def test_byte_order_mark_is_left_to_streaming(tmp_path):
    """polars would drop a leading BOM that pyoxigraph refuses: the file streams (and errs)."""
    p = tmp_path / "bom.nt"
    p.write_bytes("\ufeff".encode() + f"<{EX}s> <{EX}p> <{EX}o> .\n".encode())
    assert ntcolumns.read_id_triples(p) is None


def test_unsplittable_file_is_left_to_streaming(tmp_path):
    p = _write(tmp_path, f'<{EX}s> <{EX}p> "a\x1fb" .\n<{EX}s> <{EX}p> "c" .\n<{EX}s> <{EX}p> "d\x1fe\x1ff" .\n')
    assert ntcolumns.read_id_triples(p) is None
    kg_path = tmp_path / "g.nt"
    generate(kg_path, users=20, items=10, seed=1)
    # a load of such a file still works (streamed) and equals the streaming load
    with open(kg_path, "ab") as fh:
        fh.write(f'<{EX}s> <{EX}p> "x\x1fy" .\n'.encode())
    _assert_same_graph(kg_path)


@pytest.mark.parametrize("bad, line", [
    (f"<{EX}s> <{EX}p> .", 3),
    (f"<{EX}s> <{EX}p> <not an iri> .", 3),
    (f"<http://example.org:80x/s> <{EX}p> <{EX}o> .", 3),
    (f'<{EX}s> <{EX}p> "x"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#langString> .', 3),
])
def test_errors_are_the_streaming_paths(tmp_path, every_line_columnar, bad, line):
    p = _write(tmp_path, f"<{EX}a> <{EX}p> <{EX}b> .\n\n{bad}\n<{EX}c> <{EX}p> <{EX}d> .\n")
    with pytest.raises(RDFParseError) as streamed:
        read_triples(p)
    with pytest.raises(RDFParseError) as columnar:
        ntcolumns.read_id_triples(p)
    assert str(columnar.value) == str(streamed.value)
    assert columnar.value.line == line and str(p) in str(columnar.value)


def test_literal_limit_names_the_first_triple_like_streaming(tmp_path):
    p = _write(tmp_path, f'<{EX}a> <{EX}p> "short" .\n<{EX}b> <{EX}q> "{"x" * 50}" .\n<{EX}c> <{EX}p> "{"y" * 60}" .\n')
    limits = Limits(max_literal_chars=40)
    with pytest.raises(InputLimitError) as streamed:
        read_triples(p, limits=limits)
    with pytest.raises(InputLimitError) as columnar:
        ntcolumns.read_id_triples(p, limits=limits)
    assert str(columnar.value) == str(streamed.value) and f"<{EX}b>" in str(columnar.value)


def test_gzip_file(tmp_path):
    text = "\n".join(f'<{EX}s{k % 7}> <{EX}p{k % 3}> "v{k}" .' for k in range(100)) + "\n"
    p = tmp_path / "t.nt.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(text.encode())
    assert ntcolumns.read_id_triples(p).decoded() == read_triples(p)


def test_empty_file(tmp_path):
    p = _write(tmp_path, "# nothing\n\n")
    idt = ntcolumns.read_id_triples(p)
    assert len(idt) == 0 and idt.terms == []


def _assert_same_graph(path, **kw):
    with pytest.warns(UserWarning) if kw.pop("warns", False) else _nullcontext():
        a = kgrec.load(path, **kw)
    with mock.patch.object(ntcolumns, "available", lambda: False):
        b = kgrec.load(path, **kw)
    for f in ("users", "items", "entities", "relations"):
        assert list(getattr(a, f)) == list(getattr(b, f)), f
    assert torch.equal(a.triples, b.triples)
    for f in ("user", "item", "weight", "time"):
        assert torch.equal(getattr(a.interactions, f).nan_to_num(-1), getattr(b.interactions, f).nan_to_num(-1)), f
    assert a.literals == b.literals and a.user_literals == b.user_literals
    assert dict(a.warnings) == dict(b.warnings)
    assert a.interaction_text == b.interaction_text
    return a


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_load_builds_the_same_graph(tmp_path):
    p = tmp_path / "g.nt"
    counts = generate(p, users=60, items=30, seed=3)
    kg = _assert_same_graph(p)
    assert (kg.num_users, kg.num_items, len(kg.interactions)) == (counts["users"], counts["items"],
                                                                  counts["interactions"])


def test_load_takes_the_columnar_path(tmp_path):
    p = tmp_path / "g.nt"
    generate(p, users=30, items=15, seed=4)
    with mock.patch.object(ntcolumns, "read_id_triples", wraps=ntcolumns.read_id_triples) as spy:
        kgrec.load(p)
    assert spy.call_count == 1


def test_load_of_several_files_with_blank_nodes_and_duplicates(tmp_path, every_line_columnar):
    """Two files share IRIs, repeat a triple and use the same blank-node label; schema.org in both
    spellings is rewritten onto one IRI (the default mapping's rewrite)."""
    folder = tmp_path / "many"
    folder.mkdir()
    generate(folder / "a.nt", users=25, items=12, seed=5)
    item = next(line.split(" ")[0] for line in (folder / "a.nt").read_text().splitlines()
                if "w3id.org/kgrec/vocab#Item" in line)
    (folder / "b.nt").write_text("\n".join([
        f"{item} <https://schema.org/genre> _:g .",
        f"{item} <http://schema.org/genre> _:g .",
        f"_:g <http://www.w3.org/2000/01/rdf-schema#label> \"Blank genre\" .",
        f"{item} <{EX}director> <{EX}d1> .",
        f"{item} <{EX}director> <{EX}d1> .",
        f"<{EX}d1> <http://www.w3.org/2000/01/rdf-schema#label> \"D One\"@EN .",
    ]) + "\n")
    (folder / "c.nt").write_text("# empty\n")
    kg = _assert_same_graph(folder)
    assert kg.warnings["duplicate triple"] >= 1
    assert any("empty file" in k for k in kg.warnings)


def test_small_blocks_give_the_same_ids(tmp_path, every_line_columnar):
    """Blocks cut at line ends share one term numbering: a file read 200 bytes at a time (lines
    longer than a block too) gives the triples of one read whole, and of the streaming parse."""
    text = TRICKY + "".join(f'<{EX}s{k % 5}> <{EX}p> "{"long " * (k % 60)}" .\n' for k in range(40))
    p = _write(tmp_path, text)
    whole = ntcolumns.read_id_triples(p)
    small = ntcolumns.read_id_triples(p, block_bytes=200)
    assert small.decoded() == whole.decoded() == read_triples(p)
    assert sorted(map(repr, small.terms)) == sorted(map(repr, whole.terms))
    assert len(set(small.terms)) == len(small.terms)


def test_no_warning_counted_when_left_to_streaming(tmp_path):
    p = _write(tmp_path, f"<{EX}s> <{EX}p> <<( <{EX}a> <{EX}b> <{EX}c> )>> .\n" * 3)
    w = Counter()
    assert ntcolumns.read_id_triples(p, warnings=w) is None and not w


@pytest.mark.parametrize("values", [
    ["2020-07-22T07:39:32Z", "1999-12-31T23:59:59", "2024-02-29T00:00:00Z", "1969-07-20T20:17:40Z"],
    ["2020-07-22T07:39:32Z", "2020-07-22T07:39:32+02:00"],      # an offset: per value
    ["2020-07-22T07:39:32.5Z", "2021-01-01"],                    # fractions, dates: per value
])
def test_timestamp_column_parse_equals_per_value(values):
    from kgrec.data.extract import _iso_seconds, _iso_seconds_many

    assert _iso_seconds_many(values) == [_iso_seconds(v) for v in values]


def test_timestamp_column_with_an_impossible_date_raises():
    from kgrec.data.extract import _iso_seconds_many

    with pytest.raises(ValueError):
        _iso_seconds_many(["2020-01-01T00:00:00Z", "2020-13-01T00:00:00Z"])


KGR = "https://w3id.org/kgrec/vocab#"
SYN = "https://w3id.org/kgrec/data/synthetic/"
XSD_DT = f"<{XSD}dateTime>"


@pytest.mark.parametrize("dirty", [None, "no-time", "two-users", "text", "literal-user", "blank-item", "bad-time",
                                   "numeric-time"])
def test_id_column_events_equal_the_per_event_path(tmp_path, monkeypatch, dirty):
    """Events read from the integer columns give the records and warnings of the per-event path
    and of the streaming load; an event the column path refuses sends the rule to the per-event
    path, which counts the problem."""
    from kgrec.data import extract

    f = tmp_path / "syn.nt"
    generate(f, users=40, items=30, seed=3)
    e = f"<{SYN}event/x> "
    head = f"{e}<http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{KGR}Interaction> .\n"
    user, item = f"{e}<{KGR}user> <{SYN}user/u1> .\n", f"{e}<{KGR}item> <{SYN}item/i1> .\n"
    time = f'{e}<{KGR}timestamp> "2020-01-01T00:00:00Z"^^{XSD_DT} .\n'
    extra = {
        None: "",
        "no-time": head + user + item,
        "two-users": head + user + f"{e}<{KGR}user> <{SYN}user/u2> .\n" + item + time,
        "text": head + user + item + time + f'{e}<{KGR}review> "great" .\n',
        "literal-user": head + f'{e}<{KGR}user> "u1" .\n' + item + time,
        "blank-item": head + user + f"{e}<{KGR}item> _:b .\n" + time,
        "bad-time": head + user + item + f'{e}<{KGR}timestamp> "yesterday"^^{XSD_DT} .\n',
        "numeric-time": head + user + item + f'{e}<{KGR}timestamp> "1577836800"^^<{XSD}integer> .\n',
    }[dirty]
    with open(f, "a") as fh:
        fh.write(extra)
    calls = []
    real = extract._Builder._clean_events_ids
    monkeypatch.setattr(extract._Builder, "_clean_events_ids",
                        lambda self, *a: calls.append(real(self, *a)) or calls[-1])
    with pytest.warns(UserWarning) if dirty not in (None, "numeric-time") else _nullcontext():
        fast = kgrec.load(f)
    # every dirty case is refused (numeric-time: a dateTime and an integer time in one rule)
    assert len(calls) == 1 and (calls[0] is None) == (dirty is not None)
    monkeypatch.setattr(extract._Builder, "_clean_events_ids", lambda self, *a: None)
    with pytest.warns(UserWarning) if dirty not in (None, "numeric-time") else _nullcontext():
        per_event = kgrec.load(f)
    for f_ in ("user", "item", "weight", "time"):
        a, b = getattr(fast.interactions, f_), getattr(per_event.interactions, f_)
        assert torch.equal(a.nan_to_num(-1), b.nan_to_num(-1)), f_
    assert dict(fast.warnings) == dict(per_event.warnings)
    monkeypatch.setattr(extract._Builder, "_clean_events_ids", real)
    _assert_same_graph(f, warns=dirty not in (None, "numeric-time"))


@pytest.mark.parametrize("big", [1, 1 << 40])
def test_first_distinct_rows(big):
    """Rows kept where they first appear, with one int64 key or (ids too wide) a row sort."""
    from kgrec.data.idcolumns import first_distinct_rows

    ids = np.array([[5, 1, big], [2, 0, 3], [5, 1, big], [2, 0, 4], [2, 0, 3], [big, 1, 0]], dtype=np.int64)
    assert first_distinct_rows(ids).tolist() == [[5, 1, big], [2, 0, 3], [2, 0, 4], [big, 1, 0]]


def test_small_files_stream_unless_polars_is_loaded(tmp_path, monkeypatch):
    """Importing polars costs more than it saves on a small file: below COLUMNAR_MIN_BYTES the load
    streams, unless polars is imported already."""
    from kgrec.data import loader

    p = tmp_path / "g.nt"
    generate(p, users=20, items=10, seed=6)
    monkeypatch.setattr(loader, "_polars_imported", lambda: False)
    with mock.patch.object(ntcolumns, "read_id_triples", wraps=ntcolumns.read_id_triples) as spy:
        kgrec.load(p)
        assert spy.call_count == 0
        monkeypatch.setattr(loader, "COLUMNAR_MIN_BYTES", p.stat().st_size)
        kgrec.load(p)
        assert spy.call_count == 1


def test_load_equals_the_rdflib_engine(tmp_path):
    """The columnar load gives the ids, counts and interactions of the rdflib path."""
    p = tmp_path / "g.nt"
    generate(p, users=40, items=20, seed=7)
    with mock.patch.object(ntcolumns, "read_id_triples", wraps=ntcolumns.read_id_triples) as spy:
        a = kgrec.load(p)
    assert spy.call_count == 1
    from kgrec.data.loader import load

    b = load(p, engine="rdflib")
    for f in ("users", "items", "entities", "relations"):
        assert list(getattr(a, f)) == list(getattr(b, f)), f
    assert torch.equal(a.triples, b.triples)
    for f in ("user", "item", "weight", "time"):
        assert torch.equal(getattr(a.interactions, f).nan_to_num(-1), getattr(b.interactions, f).nan_to_num(-1)), f
