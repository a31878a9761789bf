"""A large N-Triples / N-Quads file parsed in pieces by worker processes
(:mod:`kgrec.data.rdfparse`) gives exactly what one pass gives: the same term table, ids, warnings
and KnowledgeGraph, and its errors name the file's line, not the piece's.
"""

from __future__ import annotations

import gzip
import warnings
from collections import Counter

import numpy as np
import pytest

from kgrec.data import rdfparse
from kgrec.data.loader import load
from kgrec.data.rdf import Literal, read_ids
from kgrec.data.rdffiles import line_spans
from kgrec.data.safety import Limits
from kgrec.data.synthetic import generate
from kgrec.data.validation import NAMED_GRAPHS_WARNING
from kgrec.errors import InputLimitError, KgrecError, RDFParseError
from tests.data.test_read_ids import _assert_same_graph

EX = "http://example.org/"
G = "http://example.org/graph/"
#: pieces need forked workers (Linux); elsewhere every file is one piece and these tests say nothing
needs_fork = pytest.mark.skipif(not rdfparse.can_fork(), reason="workers are forked processes (Linux)")


def _quads(n: int, graphs: bool = True) -> str:
    """``n`` N-Quads lines whose terms recur across the file: shared predicates and objects, blank
    nodes met in every part, literals repeated far apart, named graphs in every part, an RDF 1.2
    triple term and exact duplicates.
    """
    lines = []
    for k in range(n):
        g = f" <{G}{k % 3}>" if k % 4 and graphs else ""
        lines.append(f"<{EX}s{k % 97}> <{EX}p{k % 5}> <{EX}o{(k * 7) % 131}>{g} .")
        lines.append(f'_:b{k % 11} <{EX}label> "v{k % 53}"@EN{g} .')
        lines.append(f'<{EX}s{k}> <{EX}n> "{k % 17}"^^<http://www.w3.org/2001/XMLSchema#integer> .')
        if k % 250 == 0:
            lines.append(f"<{EX}s{k}> <{EX}p0> <<( <{EX}a> <{EX}b> <{EX}c> )>> .")
            lines.append(f"<{EX}s{k % 97}> <{EX}p{k % 5}> <{EX}o{(k * 7) % 131}>{g} .")
    return "\n".join(lines) + "\n"


def _read(path, workers, **kw):
    w = Counter()
    return read_ids(path, workers=workers, warnings=w, **kw), w


def _same(a, b):
    assert a.terms == b.terms
    assert a.triples.dtype == b.triples.dtype and np.array_equal(a.triples, b.triples)


@needs_fork
@pytest.mark.parametrize("workers", [2, 3, 7])
def test_pieces_give_the_single_pass_ids(tmp_path, workers):
    p = tmp_path / "q.nq"
    p.write_text(_quads(3000))
    src = rdfparse.check_source(p, None, None, None)
    assert len(rdfparse.plan_spans(src, workers)) == workers  # really cut, not read in one piece
    one, w1 = _read(p, 1)
    many, wn = _read(p, workers)
    _same(one, many)
    assert w1 == wn and wn[NAMED_GRAPHS_WARNING] == 3 and wn["RDF-star quoted triple skipped"] == 12
    assert one.terms[:3] == [f"{EX}s0", f"{EX}p0", f"{EX}o0"]
    assert Literal("v1", "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString", "en") in many.terms
    assert "_:f0.b10" in many.terms and len(set(many.terms)) == len(many.terms)


def test_pieces_give_the_single_pass_knowledge_graph(tmp_path):
    p = tmp_path / "syn.nt"
    counts = generate(p, users=120, items=60, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generator's deliberate problems, counted in kg.warnings
        single, split = load(p, workers=1), load(p, workers=2)
    assert (split.num_users, split.num_items, len(split.interactions)) == (counts["users"], counts["items"],
                                                                          counts["interactions"])
    _assert_same_graph(single, split)


def _bad_file(tmp_path, n_good: int, bad_at: list[int], name="bad.nt"):
    lines = [f"<{EX}s{k}> <{EX}p> <{EX}o{k}> ." for k in range(n_good)]
    for line in bad_at:
        lines[line - 1] = f"<{EX}s> <{EX}p> ."
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


@needs_fork
def test_an_error_in_the_second_piece_names_the_files_line(tmp_path):
    p = _bad_file(tmp_path, 4000, [3517])
    src = rdfparse.check_source(p, None, None, None)
    (_, cut), _ = rdfparse.plan_spans(src, 2)
    assert p.read_bytes()[:cut].count(b"\n") < 3516  # the bad line is in the second piece
    errors = []
    for workers in (1, 2):
        with pytest.raises(RDFParseError) as err:
            read_ids(p, workers=workers)
        errors.append(err.value)
    one, two = errors
    assert two.line == one.line == 3517 and two.path == str(p)
    assert str(two) == str(one) and str(two).startswith(f"{p}:3517: ") and "line 3517" in str(two)


def test_the_first_pieces_error_is_the_one_reported(tmp_path):
    p = _bad_file(tmp_path, 4000, [1200, 3517])
    with pytest.raises(RDFParseError) as err:
        read_ids(p, workers=2)
    assert err.value.line == 1200


def test_limits_in_a_later_piece(tmp_path):
    """An over-long line and an over-long literal met by a worker: the same errors as one pass."""
    lines = [f'<{EX}s{k}> <{EX}p> "v{k}" .' for k in range(3000)]
    lines[2500] = f'<{EX}s> <{EX}p> "{"x" * 300}" .'
    p = tmp_path / "long.nt"
    p.write_text("\n".join(lines) + "\n")
    for limits, error, line in ((Limits(max_line_bytes=200), InputLimitError, 2501),
                                (Limits(max_literal_chars=100), InputLimitError, None)):
        got = []
        for workers in (1, 3):
            with pytest.raises(error) as err:
                read_ids(p, workers=workers, limits=limits)
            got.append(err.value)
        assert got[0].line == got[1].line == line and str(got[0]) == str(got[1])


def test_other_formats_and_compressed_files_are_one_piece(tmp_path):
    nt = tmp_path / "q.nt"
    nt.write_text(_quads(200, graphs=False))
    gz = tmp_path / "q.nt.gz"
    gz.write_bytes(gzip.compress(nt.read_bytes()))
    ttl = tmp_path / "q.ttl"
    ttl.write_text(f"<{EX}a> <{EX}p> <{EX}b> .\n" * 50)
    for p in (gz, ttl):
        assert rdfparse.plan_spans(rdfparse.check_source(p, None, None, None), 4) == [None]
    _same(_read(gz, 4)[0], _read(nt, 4)[0])


@needs_fork
def test_default_workers_by_size(tmp_path, monkeypatch):
    p = tmp_path / "q.nt"
    p.write_text(_quads(500, graphs=False))
    src = rdfparse.check_source(p, None, None, None)
    assert rdfparse.plan_spans(src, None) == [None]  # a small file: one process
    monkeypatch.setattr(rdfparse, "PARALLEL_MIN_BYTES", 1)
    assert len(rdfparse.plan_spans(src, None)) == rdfparse.default_workers()
    assert 1 <= rdfparse.default_workers() <= 2


@pytest.mark.parametrize("cpus, load, workers", [
    (2, 0.0, 2), (2, 1.0, 2), (2, 1.5, 2), (2, 1.6, 1), (2, 9.0, 1), (1, 0.0, 1), (16, 0.0, 2), (16, 15.0, 2),
    (16, 15.6, 1),
])
def test_a_second_worker_only_when_a_cpu_is_idle(cpus, load, workers):
    assert rdfparse.workers_for(cpus, load) == workers


def test_line_spans_cut_after_newlines(tmp_path):
    p = tmp_path / "x.nt"
    data = b"a\n" + b"b" * 50 + b"\n" + b"c\n" * 30 + b"d" * 500 + b"\n" + b"e\n"
    p.write_bytes(data)
    spans = line_spans(p, 4, max_line_bytes=1000)
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(data[e - 1:e] == b"\n" for _, e in spans)
    # a cut that would fall inside a line longer than max_line_bytes is not made
    assert all(not 85 < e < 586 for _, e in line_spans(p, 4, max_line_bytes=100))
    assert line_spans(p, 1, 1000) == [(0, len(data))]


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_positive_integer(tmp_path, workers):
    p = tmp_path / "x.nt"
    p.write_text(f"<{EX}a> <{EX}p> <{EX}b> .\n")
    for call in (lambda: read_ids(p, workers=workers), lambda: load(p, workers=workers)):
        with pytest.raises(KgrecError, match=rf"'workers' must be a positive integer \(got {workers!r}\)"):
            call()
