"""Parsing layer: formats, compression, terms, relative IRIs, errors, no network."""

import bz2
import gzip
import os
import socket
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import rdflib

from kgrec.data.rdf import (
    RELATIVE_IRI_WARNING,
    XSD,
    Literal,
    guess_format,
    is_blank,
    is_iri,
    iter_triples,
    normalize_format,
    rdf_files,
    read_triples,
)
from kgrec.errors import KgrecError, RDFFormatError, RDFParseError

TOY = Path(__file__).resolve().parents[2] / "kg_data" / "toy" / "toy.ttl"
DATA_ROOT = Path(os.environ.get("KGREC_DATA_ROOT", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
IMDB = DATA_ROOT / "rdf-imdb-movies" / "movies.ttl"

SMALL_TTL = """@prefix ex: <http://example.org/> .
ex:a ex:p ex:b ;
     ex:name "A"@EN-gb , "plain" ;
     ex:n 3 ;
     ex:q [ ex:r ex:c ] .
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def no_blank(triples):
    return {t for t in triples if not is_blank(t[0]) and not is_blank(t[2])}


# ------------------------------------------------------------------ formats
@pytest.mark.parametrize("name,fmt", [
    ("x.ttl", "turtle"), ("x.nt", "ntriples"), ("x.nq", "nquads"), ("x.trig", "trig"),
    ("x.rdf", "xml"), ("x.owl", "xml"), ("x.xml", "xml"), ("x.jsonld", "json-ld"),
    ("x.json", "json-ld"), ("x.n3", "n3"), ("X.TTL", "turtle"), ("x.ttl.gz", "turtle"),
    ("x.nt.bz2", "ntriples"), ("a.b.nq.gz", "nquads"),
])
def test_guess_format_from_suffix(name, fmt):
    assert guess_format(name) == fmt


@pytest.mark.parametrize("alias,fmt", [
    ("ttl", "turtle"), ("Turtle", "turtle"), ("nt", "ntriples"), ("n-triples", "ntriples"),
    ("xml", "xml"), ("rdf/xml", "xml"), ("jsonld", "json-ld"), ("json-ld", "json-ld"), ("nq", "nquads"),
    (".trig", "trig"), ("n3", "n3"),
])
def test_format_aliases(alias, fmt):
    assert normalize_format(alias) == fmt


def test_unknown_suffix_lists_accepted_ones():
    with pytest.raises(RDFFormatError, match=r"'data\.csv'.*'\.csv'.*\.ttl \.nt .*\.jsonld"):
        guess_format("data.csv")
    with pytest.raises(RDFFormatError, match=r"suffix '\(none\)'"):
        guess_format("data")
    with pytest.raises(RDFFormatError, match=r"'format' must be one of .*turtle \(ttl\).*\(got 'csv'\)"):
        normalize_format("csv")


def test_engine_is_deprecated_and_ignored(tmp_path):
    """One parser for every format: ``engine`` is accepted for one release, with a warning."""
    f = write(tmp_path / "a.ttl", SMALL_TTL)
    with pytest.warns(DeprecationWarning, match="'engine' argument is deprecated"):
        assert no_blank(read_triples(f, engine="rdflib")) == no_blank(read_triples(f))
    with pytest.raises(RDFFormatError, match=r"'engine' must be one of oxigraph, rdflib \(got 'jena'\)"):
        list(iter_triples(f, engine="jena"))


# -------------------------------------------------------------------- terms
def test_terms_are_plain_python(tmp_path):
    f = write(tmp_path / "a.ttl", SMALL_TTL)
    ts = read_triples(f)
    assert len(ts) == 6
    ex = "http://example.org/"
    got = no_blank(ts)
    assert (ex + "a", ex + "p", ex + "b") in got
    # language tags are lower-cased, plain literals are xsd:string, numbers keep their datatype
    lang_string = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
    assert (ex + "a", ex + "name", Literal("A", lang_string, "en-gb")) in got
    assert (ex + "a", ex + "name", Literal("plain", XSD + "string", None)) in got
    assert (ex + "a", ex + "n", Literal("3", XSD + "integer", None)) in got
    blanks = [t for t in ts if is_blank(t[2])]
    assert len(blanks) == 1 and blanks[0][2].startswith("_:f0.")
    assert is_iri(ex + "a") and not is_iri(blanks[0][2]) and not is_iri(Literal("x"))


def test_blank_nodes_of_two_files_stay_apart(tmp_path):
    a = write(tmp_path / "a.nt", '_:b1 <http://e/p> "a" .\n')
    b = write(tmp_path / "b.nt", '_:b1 <http://e/p> "b" .\n')
    ts = read_triples([a, b])
    assert len({s for s, _, _ in ts}) == 2
    assert sorted(s for s, _, _ in ts) == ["_:f0.b1", "_:f1.b1"]


def test_toy_matches_rdflib_graph():
    ts = read_triples(TOY)
    g = rdflib.Graph().parse(TOY)
    assert len(ts) == len(g) == len(set(ts))
    def term(o):
        if isinstance(o, str):
            return rdflib.URIRef(o)
        plain = o.language is not None or o.datatype == XSD + "string"
        return rdflib.Literal(o.value, lang=o.language, datatype=None if plain else o.datatype)

    ours = {(rdflib.URIRef(s), rdflib.URIRef(p), term(o)) for s, p, o in no_blank(ts)}
    theirs = {t for t in g if not isinstance(t[0], rdflib.BNode) and not isinstance(t[2], rdflib.BNode)}
    assert ours == theirs


@pytest.mark.parametrize("opener,suffix", [(gzip.open, ".gz"), (bz2.open, ".bz2")])
def test_compressed_files(tmp_path, opener, suffix):
    plain = read_triples(TOY)
    f = tmp_path / ("toy.ttl" + suffix)
    with opener(f, "wb") as fh:
        fh.write(TOY.read_bytes())
    assert read_triples(f) == plain


def test_quads_lose_their_graph_name(tmp_path):
    f = write(tmp_path / "a.nq", "<http://e/s> <http://e/p> <http://e/o> <http://e/g1> .\n"
                                 "<http://e/s> <http://e/p> <http://e/o2> .\n")
    assert sorted(read_triples(f)) == [("http://e/s", "http://e/p", "http://e/o"),
                                       ("http://e/s", "http://e/p", "http://e/o2")]


def test_explicit_format_overrides_suffix(tmp_path):
    f = write(tmp_path / "data.txt", "<http://e/s> <http://e/p> <http://e/o> .\n")
    with pytest.raises(RDFFormatError):
        read_triples(f)
    assert read_triples(f, format="nt") == [("http://e/s", "http://e/p", "http://e/o")]


def test_directory_expands_to_sorted_rdf_files(tmp_path):
    write(tmp_path / "b.nt", "<http://e/b> <http://e/p> <http://e/o> .\n")
    write(tmp_path / "a.ttl", "<http://e/a> <http://e/p> <http://e/o> .\n")
    write(tmp_path / "notes.txt", "not rdf")
    assert [f.name for f in rdf_files(tmp_path)] == ["a.ttl", "b.nt"]
    assert [t[0] for t in read_triples(tmp_path)] == ["http://e/a", "http://e/b"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KgrecError, match=r"directory '.*empty' holds no RDF file"):
        rdf_files(empty)


# ------------------------------------------------------------ relative IRIs
def test_relative_iris_resolve_against_the_file_and_are_counted(tmp_path):
    f = write(tmp_path / "rel.ttl", '<movie1> <Title> "A" .\n<movie1> <genre> <http://e/g> .\n')
    w = Counter()
    ts = read_triples(f, warnings=w)
    base = tmp_path.resolve().as_uri() + "/"
    assert ts[0] == (base + "movie1", base + "Title", Literal("A"))
    assert w[RELATIVE_IRI_WARNING] == 4  # two subjects + two predicates
    w2 = Counter()
    ts2 = read_triples(f, base_iri="http://example.org/", warnings=w2)
    assert ts2[0][:2] == ("http://example.org/movie1", "http://example.org/Title")
    assert not w2


# -------------------------------------------------------------------- errors
def test_malformed_turtle_names_file_and_line(tmp_path):
    f = write(tmp_path / "bad.ttl", "@prefix ex: <http://e/> .\nex:a ex:p ex:b .\nex:a ex:p ;; \"x .\n")
    with pytest.raises(RDFParseError) as e:
        read_triples(f)
    assert e.value.path == str(f)
    assert str(f) in str(e.value)
    assert e.value.line == 3
    assert f"{f}:3:" in str(e.value)


def test_malformed_rdf_xml_names_file(tmp_path):
    f = write(tmp_path / "bad.rdf", '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
                                    '<rdf:Description rdf:about="http://e/x">\n<oops>\n</rdf:RDF>\n')
    with pytest.raises(RDFParseError, match=r"bad\.rdf") as e:
        read_triples(f)
    assert e.value.line == 4


def test_no_paths_at_all():
    with pytest.raises(KgrecError, match=r"'paths' must name at least one RDF file \(got an empty list\)"):
        read_triples([])


def test_malformed_ntriples_line(tmp_path):
    f = write(tmp_path / "bad.nt", "<http://e/a> <http://e/p> <http://e/b> .\n" * 4 + "<http://e/a> <http://e/p> .\n")
    with pytest.raises(RDFParseError, match=r"bad\.nt:5:") as e:
        read_triples(f)
    assert e.value.line == 5


def test_corrupt_gzip_is_a_parse_error(tmp_path):
    f = tmp_path / "x.ttl.gz"
    f.write_bytes(b"this is not gzip")
    with pytest.raises(RDFParseError, match=r"x\.ttl\.gz"):
        read_triples(f)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(KgrecError, match=r"RDF file '.*nothere\.ttl' does not exist"):
        read_triples(tmp_path / "nothere.ttl")
    with pytest.raises(KgrecError, match="does not exist"):
        list(iter_triples(tmp_path / "nothere.ttl"))


# ----------------------------------------------------------------- no network
@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("kgrec tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.mark.parametrize("context", ['"http://example.org/context.jsonld"',
                                     '["http://example.org/c1", {"name": "http://schema.org/name"}]',
                                     '{"@import": "http://example.org/c2"}'])
def test_remote_jsonld_context_is_refused(tmp_path, no_network, context):
    f = write(tmp_path / "a.jsonld", '{"@context": %s, "@id": "http://e/x", "name": "y"}' % context)
    with pytest.raises(RDFParseError, match=r"remote @context.*never fetches"):
        read_triples(f)


def test_inline_jsonld_context_is_fine(tmp_path, no_network):
    f = write(tmp_path / "a.jsonld",
              '{"@context": {"name": "http://schema.org/name"}, "@id": "http://e/x", "name": "y"}')
    assert read_triples(f) == [("http://e/x", "http://schema.org/name", Literal("y"))]


def test_xml_external_entities_are_not_read(tmp_path, no_network):
    secret = write(tmp_path / "secret.txt", "TOPSECRET")
    f = write(tmp_path / "a.rdf", f"""<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [ <!ENTITY ext SYSTEM "{secret.as_uri()}"> ]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://e/">
  <rdf:Description rdf:about="http://e/x"><ex:p>&ext;</ex:p></rdf:Description>
</rdf:RDF>""")
    try:
        ts = read_triples(f)
    except RDFParseError:
        return  # refusing the document is fine too
    assert all("TOPSECRET" not in (o.value if isinstance(o, Literal) else o) for _, _, o in ts)


# ---------------------------------------------------------------- real data
@pytest.mark.skipif(not IMDB.is_file(), reason="shared dataset rdf-imdb-movies not available")
def test_real_imdb_turtle_parses_with_relative_iris_counted():
    w = Counter()
    ts = read_triples(IMDB, warnings=w)
    assert len(ts) == 13664  # the figure in the dataset's README
    assert w[RELATIVE_IRI_WARNING] > 0
    base = IMDB.parent.resolve().as_uri() + "/"
    preds = {p for _, p, _ in ts}
    assert base + "Title" in preds and base + "Director" in preds
