"""The one RDF parser (:func:`kgrec.data.rdf.read_ids`): terms, order, duplicates, warnings,
errors and limits with known right answers; batches numbered alike; and plain triples from
another source (:func:`kgrec.data.extract.build_graph_batched`) build the graph a file does.
"""

from __future__ import annotations

import gzip
from collections import Counter

import numpy as np
import pytest
import torch

import kgrec
from kgrec.data import rdf
from kgrec.data.extract import build_graph_batched
from kgrec.data.rdf import RDF_LANGSTRING, XSD, Literal, iter_triple_batches, read_ids, read_triples
from kgrec.data.safety import Limits
from kgrec.data.synthetic import generate
from kgrec.errors import InputLimitError, RDFParseError

EX = "http://example.org/"

# every kind of N-Triples line kgrec must read alike
TRICKY = "\n".join([
    f"<{EX}s1> <{EX}p> <{EX}o1> .",
    f'<{EX}s1> <{EX}label> "plain words" .',
    f'<{EX}s1> <{EX}label> "Mixed Case"@EN-gb .',            # language tag lower-cased
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
    f'<{EX}s2> <{EX}label> "long tag"@en-Latn-US .',
    f"<{EX}s2> <{EX}p> <<( <{EX}a> <{EX}b> <{EX}c> )>> .",      # RDF 1.2 triple term: skipped
    f"<https://schema.org/x> <{EX}p> <http://schema.org/x> .",
    "   ",
    f"<{EX}s3> <{EX}p> <{EX}o1> .\r",
]) + "\n"


def _write(tmp_path, text: str, name="t.nt"):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return p


LANG = RDF_LANGSTRING
TRICKY_TRIPLES = [
    (f"{EX}s1", f"{EX}p", f"{EX}o1"),
    (f"{EX}s1", f"{EX}label", Literal("plain words")),
    (f"{EX}s1", f"{EX}label", Literal("Mixed Case", LANG, "en-gb")),
    (f"{EX}s1", f"{EX}label", Literal("mixed case", LANG, "en-gb")),
    (f"{EX}s1", f"{EX}label", Literal("typed")),
    (f"{EX}s1", f"{EX}label", Literal("typed")),
    (f"{EX}s1", f"{EX}n", Literal("42", XSD + "integer")),
    (f"{EX}s1", f"{EX}label", Literal('a "quoted" word\nand a newline \\ \u00e9')),
    (f"{EX}s1", f"{EX}p", f"{EX}o2"),
    (f"{EX}s1", f"{EX}p", f"{EX}o3"),
    ("_:f0.b1", f"{EX}p", "_:f0.b2"),
    ("_:f0.b1", f"{EX}p", f"{EX}o1"),
    (f"{EX}s1", f"{EX}p", f"{EX}o1"),
    (f"{EX}caf\u00e9", f"{EX}p", "http://example.org:8080/a%20b?q=1#frag"),
    ("urn:isbn:0451450523", f"{EX}p", "mailto:someone@example.org"),
    (f"{EX}s2", f"{EX}label", Literal("lang with script", LANG, "zh-hant")),
    (f"{EX}s2", f"{EX}label", Literal("long tag", LANG, "en-latn-us")),
    ("https://schema.org/x", f"{EX}p", "http://schema.org/x"),
    (f"{EX}s3", f"{EX}p", f"{EX}o1"),
]


def test_terms_order_duplicates_and_warnings(tmp_path):
    p = _write(tmp_path, TRICKY)
    w = Counter()
    idt = read_ids(p, warnings=w)
    assert idt.decoded() == TRICKY_TRIPLES
    assert dict(w) == {"RDF-star quoted triple skipped": 1}
    # one id per term: the two spellings of one literal share it
    assert len(set(idt.terms)) == len(idt.terms)
    assert idt.triples.dtype == np.int64 and idt.triples.shape == (len(TRICKY_TRIPLES), 3)
    assert idt.triples[4, 2] == idt.triples[5, 2]
    assert read_triples(p) == TRICKY_TRIPLES


@pytest.mark.parametrize("batch", [1, 2, 7])
def test_batches_share_one_numbering(tmp_path, monkeypatch, batch):
    """Terms met again in a later batch keep their id; streamed batches decode to the same triples."""
    p = _write(tmp_path, TRICKY)
    monkeypatch.setattr(rdf, "ID_BATCH", batch)
    idt = read_ids(p, file_index=3)
    assert idt.decoded() == [tuple(t.replace("_:f0.", "_:f3.") if type(t) is str else t for t in row)
                             for row in TRICKY_TRIPLES]
    assert len(set(idt.terms)) == len(idt.terms)
    batches = list(iter_triple_batches(p, batch_size=batch))
    assert [t for b in batches for t in b] == TRICKY_TRIPLES
    assert all(len(b) <= batch for b in batches)


@pytest.mark.parametrize("bad, line", [
    (f"<{EX}s> <{EX}p> .", 3),
    (f"<{EX}s> <{EX}p> <not an iri> .", 3),
    (f"<http://example.org:80x/s> <{EX}p> <{EX}o> .", 3),
    (f'<{EX}s> <{EX}p> "x"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#langString> .', 3),
])
def test_errors_name_file_and_line(tmp_path, bad, line):
    p = _write(tmp_path, f"<{EX}a> <{EX}p> <{EX}b> .\n\n{bad}\n<{EX}c> <{EX}p> <{EX}d> .\n")
    with pytest.raises(RDFParseError) as err:
        read_ids(p)
    assert err.value.line == line and str(p) in str(err.value)


@pytest.mark.parametrize("batch", [1, 8192])
def test_literal_limit_names_the_first_triple(tmp_path, monkeypatch, batch):
    monkeypatch.setattr(rdf, "ID_BATCH", batch)
    p = _write(tmp_path, f'<{EX}a> <{EX}p> "short" .\n<{EX}b> <{EX}q> "{"x" * 50}" .\n<{EX}c> <{EX}p> "{"y" * 60}" .\n')
    with pytest.raises(InputLimitError) as err:
        read_ids(p, limits=Limits(max_literal_chars=40))
    msg = str(err.value)
    assert f"<{EX}b>" in msg and f"<{EX}q>" in msg and "50 characters" in msg


def test_literal_limit_is_checked_before_the_rest_is_parsed(tmp_path, monkeypatch):
    """The over-long literal is refused with its batch: a syntax error further on is never met."""
    monkeypatch.setattr(rdf, "ID_BATCH", 1)
    p = _write(tmp_path, f'<{EX}b> <{EX}q> "{"x" * 50}" .\n<{EX}s> <{EX}p> .\n')
    with pytest.raises(InputLimitError):
        read_ids(p, limits=Limits(max_literal_chars=40))


def test_gzip_file(tmp_path):
    text = "\n".join(f'<{EX}s{k % 7}> <{EX}p{k % 3}> "v{k}" .' for k in range(100)) + "\n"
    p = tmp_path / "t.nt.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(text.encode())
    assert read_ids(p).decoded() == [(f"{EX}s{k % 7}", f"{EX}p{k % 3}", Literal(f"v{k}")) for k in range(100)]


def test_empty_file(tmp_path):
    p = _write(tmp_path, "# nothing\n\n")
    idt = read_ids(p)
    assert len(idt) == 0 and idt.terms == [] and idt.triples.shape == (0, 3)


def test_turtle_reads_into_the_same_ids(tmp_path):
    """Turtle (prefixes, lists of objects, a relative IRI) takes the same path as N-Triples."""
    ttl = _write(tmp_path, f"""@prefix ex: <{EX}> .
ex:s1 ex:p ex:o1, ex:o2 ; ex:label "a"@EN, "a"@en .
ex:s2 ex:p <rel> .
""", "t.ttl")
    w = Counter()
    idt = read_ids(ttl, warnings=w)
    rel = (tmp_path / "rel").resolve().as_uri()
    assert idt.decoded() == [(f"{EX}s1", f"{EX}p", f"{EX}o1"), (f"{EX}s1", f"{EX}p", f"{EX}o2"),
                             (f"{EX}s1", f"{EX}label", Literal("a", LANG, "en")),
                             (f"{EX}s1", f"{EX}label", Literal("a", LANG, "en")), (f"{EX}s2", f"{EX}p", rel)]
    assert w[rdf.RELATIVE_IRI_WARNING] == 1


def _assert_same_graph(a, b):
    for f in ("users", "items", "entities", "relations"):
        assert list(getattr(a, f)) == list(getattr(b, f)), f
    assert torch.equal(a.triples, b.triples)
    for f in ("user", "item", "weight", "time"):
        assert torch.equal(getattr(a.interactions, f).nan_to_num(-1), getattr(b.interactions, f).nan_to_num(-1)), f
    assert a.literals == b.literals and a.user_literals == b.user_literals
    assert dict(a.warnings) == dict(b.warnings)
    assert a.interaction_text == b.interaction_text


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_plain_triples_build_the_graph_the_file_does(tmp_path):
    """build_graph_batched (triples from any source, batch by batch) equals kgrec.load of the file."""
    p = tmp_path / "g.nt"
    counts = generate(p, users=60, items=30, seed=3)
    kg = kgrec.load(p)
    assert (kg.num_users, kg.num_items, len(kg.interactions)) == (counts["users"], counts["items"],
                                                                  counts["interactions"])
    other = build_graph_batched(iter_triple_batches(p, batch_size=100), sources=[str(p)])
    _assert_same_graph(kg, other)


def test_load_of_several_files_with_blank_nodes_and_duplicates(tmp_path):
    """Two files share IRIs, repeat a triple and use the same blank-node label; schema.org in both
    spellings is rewritten onto one IRI (the default mapping's rewrite).
    """
    folder = tmp_path / "many"
    folder.mkdir()
    generate(folder / "a.nt", users=25, items=12, seed=5)
    item = next(line.split(" ")[0] for line in (folder / "a.nt").read_text().splitlines()
                if "w3id.org/kgrec/vocab#Item" in line)
    (folder / "b.nt").write_text("\n".join([
        f"{item} <https://schema.org/genre> _:g .",
        f"{item} <http://schema.org/genre> _:g .",
        "_:g <http://www.w3.org/2000/01/rdf-schema#label> \"Blank genre\" .",
        f"{item} <{EX}director> <{EX}d1> .",
        f"{item} <{EX}director> <{EX}d1> .",
        f"<{EX}d1> <http://www.w3.org/2000/01/rdf-schema#label> \"D One\"@EN .",
    ]) + "\n")
    (folder / "c.nt").write_text("# empty\n")
    with pytest.warns(UserWarning):
        kg = kgrec.load(folder)
    # the repeated director line, and the two schema.org spellings once rewritten
    assert kg.warnings["duplicate triple"] == 2
    assert kg.warnings[f"empty file '{folder / 'c.nt'}'"] == 1
    d1 = kg.entities.id(f"{EX}d1")
    assert (kg.triples[:, 2] == d1).sum() == 1
    assert all(not e.startswith("_:") for e in kg.entities)


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
    path, which counts the problem.
    """
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


@pytest.mark.parametrize("big", [1, 1 << 40])
def test_first_distinct_rows(big):
    """Rows kept where they first appear, with one int64 key or (ids too wide) a row sort."""
    from kgrec.data.idcolumns import first_distinct_rows

    ids = np.array([[5, 1, big], [2, 0, 3], [5, 1, big], [2, 0, 4], [2, 0, 3], [big, 1, 0]], dtype=np.int64)
    assert first_distinct_rows(ids).tolist() == [[5, 1, big], [2, 0, 3], [2, 0, 4], [big, 1, 0]]


