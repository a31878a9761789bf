"""Property-based tests (hypothesis) of the loader.

* Random small graphs in the kgrec vocabulary, serialised by rdflib in every supported format,
  load to exactly the users, items, integer KG triples, interactions and titles computed here
  from the graph's definition.
* Arbitrary bytes, and mutations of valid files, given to the loader in every format give a
  graph or a :class:`KgrecError`, never another exception, within a per-example deadline.

Examples are derandomised (the same ones on every run) and kept few enough for the default
suite; ``pytest tests/test_properties.py --hypothesis-show-statistics`` prints the counts.
"""

import math
import tempfile
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
import rdflib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import RDF, XSD, Namespace, URIRef
from rdflib import Literal as RLiteral

from kgrec.data.graph import KnowledgeGraph
from kgrec.data.loader import load
from kgrec.errors import KgrecError

KGR = Namespace("https://w3id.org/kgrec/vocab#")
EX = "http://ex.org/"
#: rdflib serializer name -> file suffix kgrec guesses the format from
FORMATS = {"turtle": ".ttl", "nt": ".nt", "xml": ".rdf", "json-ld": ".jsonld", "nquads": ".nq", "trig": ".trig",
           "n3": ".n3"}
SETTINGS = dict(database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# literal text every format can carry: no control characters but tab and newline, no surrogates
# or unassigned code points (RDF/XML cannot hold them), plus characters that need escaping
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co")) | st.sampled_from('\n\t"\'\\<>&{}@'),
               max_size=12)


@st.composite
def graphs(draw):
    n_users, n_items, n_attrs = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(0, 3))
    pairs = sorted(draw(st.sets(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)),
                                min_size=1, max_size=8)))
    events = [draw(st.one_of(st.none(), st.tuples(st.integers(1, 5), st.integers(0, 2_000_000_000))))
              for _ in pairs]  # None: a direct kgr:interactedWith; else (rating, unix time) of an event
    genres = sorted(draw(st.sets(st.tuples(st.integers(0, n_items - 1), st.integers(0, max(n_attrs - 1, 0))),
                                 max_size=6))) if n_attrs else []
    titles = draw(st.dictionaries(st.integers(0, n_items - 1), TEXT, max_size=n_items))
    return n_users, n_items, pairs, events, genres, titles


def user(u):
    return f"{EX}user/{u}"


def item(i):
    return f"{EX}item/{i}"


def attr(a):
    return f"{EX}genre/{a}"


def to_rdflib(g) -> rdflib.Graph:
    n_users, n_items, pairs, events, genres, titles = g
    out = rdflib.Graph()
    for u in range(n_users):
        out.add((URIRef(user(u)), RDF.type, KGR.User))
    for i in range(n_items):
        out.add((URIRef(item(i)), RDF.type, KGR.Item))
    for k, ((u, i), ev) in enumerate(zip(pairs, events)):
        if ev is None:
            out.add((URIRef(user(u)), KGR.interactedWith, URIRef(item(i))))
        else:
            e = URIRef(f"{EX}event/{k}")
            out.add((e, KGR.user, URIRef(user(u))))
            out.add((e, KGR.item, URIRef(item(i))))
            out.add((e, KGR.rating, RLiteral(ev[0], datatype=XSD.integer)))
            out.add((e, KGR.timestamp, RLiteral(ev[1], datatype=XSD.integer)))
    for i, a in genres:
        out.add((URIRef(item(i)), KGR.genre, URIRef(attr(a))))
    for i, t in titles.items():
        out.add((URIRef(item(i)), KGR.title, RLiteral(t)))
    return out


def expected(g) -> dict:
    """The graph kgrec must build, computed from the definition (ids are ranks of sorted IRIs)."""
    n_users, n_items, pairs, events, genres, titles = g
    # every user is typed kgr:User, but only those with an interaction are users
    users, items = sorted({user(u) for u, _ in pairs}), sorted(map(item, range(n_items)))
    attrs = sorted({attr(a) for _, a in genres})
    ent = {iri: k for k, iri in enumerate(items + attrs)}
    uid, iid = {iri: k for k, iri in enumerate(users)}, {iri: k for k, iri in enumerate(items)}
    inter = sorted((uid[user(u)], iid[item(i)], 1.0 if ev is None else float(ev[0]),
                    math.nan if ev is None else float(ev[1])) for (u, i), ev in zip(pairs, events))
    return {
        "users": users, "items": items, "entities": items + attrs,
        "relations": [str(KGR.genre)] if genres else [],
        "triples": sorted([ent[item(i)], 0, ent[attr(a)]] for i, a in genres),
        "interactions": inter,
        "titles": {iid[item(i)]: [t] for i, t in titles.items()},
    }


def observed(kg: KnowledgeGraph) -> dict:
    it = kg.interactions
    inter = sorted(zip(it.user.tolist(), it.item.tolist(), it.weight.tolist(), it.time.tolist()))
    return {
        "users": kg.users.labels, "items": kg.items.labels, "entities": kg.entities.labels,
        "relations": kg.relations.labels, "triples": sorted(kg.triples.tolist()), "interactions": inter,
        "titles": {i: d[str(KGR.title)] for i, d in kg.literals.items() if str(KGR.title) in d},
    }


def same(a: dict, b: dict) -> bool:
    rest = [{k: v for k, v in d.items() if k != "interactions"} for d in (a, b)]
    return rest[0] == rest[1] and len(a["interactions"]) == len(b["interactions"]) and all(
        x[:3] == y[:3] and (x[3] == y[3] or (math.isnan(x[3]) and math.isnan(y[3])))
        for x, y in zip(a["interactions"], b["interactions"]))


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="kgrec-hypothesis-") as d:
        yield Path(d)


def quiet_load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(path, **kw)


@settings(max_examples=200, deadline=timedelta(seconds=5), **SETTINGS)
@given(g=graphs())
def test_every_format_loads_to_the_defined_graph(workdir, g):
    want = expected(g)
    rg = to_rdflib(g)
    for fmt, suffix in FORMATS.items():
        path = workdir / f"graph{suffix}"
        if fmt in ("nquads", "trig"):  # quad formats need a dataset; kgrec ignores the graph name
            ds = rdflib.Dataset()
            named = ds.graph(URIRef(f"{EX}g"))
            for t in rg:
                named.add(t)
            with warnings.catch_warnings():  # rdflib's own serializers call its deprecated API
                warnings.simplefilter("ignore", DeprecationWarning)
                path.write_bytes(ds.serialize(format=fmt, encoding="utf-8"))
        else:
            path.write_bytes(rg.serialize(format=fmt, encoding="utf-8"))
        got = observed(quiet_load(path))
        assert same(got, want), (fmt, got, want)


# ------------------------------------------------------------------------ arbitrary bytes
SEED_DOC = {
    ".ttl": (b'@prefix kgr: <https://w3id.org/kgrec/vocab#> .\n<http://e/u> kgr:interactedWith <http://e/i> .\n'
             b'<http://e/i> kgr:title "T"@en ; kgr:genre [ kgr:label "x" ] .\n'),
    ".nt": (b'<http://e/u> <https://w3id.org/kgrec/vocab#interactedWith> <http://e/i> .\n'
            b'<http://e/i> <http://e/t> "x" .\n'),
    ".nq": b'<http://e/u> <https://w3id.org/kgrec/vocab#interactedWith> <http://e/i> <http://e/g> .\n',
    ".trig": b'<http://e/g> { <http://e/u> <https://w3id.org/kgrec/vocab#interactedWith> <http://e/i> . }\n',
    ".n3": b'@prefix k: <https://w3id.org/kgrec/vocab#> .\n<http://e/u> k:interactedWith <http://e/i> .\n',
    ".rdf": (b'<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
             b'xmlns:k="https://w3id.org/kgrec/vocab#">\n<rdf:Description rdf:about="http://e/u">'
             b'<k:interactedWith rdf:resource="http://e/i"/></rdf:Description>\n</rdf:RDF>\n'),
    ".jsonld": (b'{"@context": {"k": "https://w3id.org/kgrec/vocab#"}, "@id": "http://e/u", '
                b'"k:interactedWith": {"@id": "http://e/i"}}\n'),
}
SUFFIXES = sorted(SEED_DOC) + [".ttl.gz"]


@st.composite
def mutated(draw, doc: bytes) -> bytes:
    data = bytearray(doc)
    for _ in range(draw(st.integers(1, 4))):
        op, pos = draw(st.sampled_from(["flip", "insert", "delete"])), draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(
                [b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b'"@context": "http://h/c"', b"\xff\xfe", b"{", b"]", b"\x00"]))
        else:
            del data[pos:pos + draw(st.integers(1, 8))]
    return bytes(data)


@st.composite
def hostile_files(draw):
    suffix = draw(st.sampled_from(SUFFIXES))
    seed = SEED_DOC[suffix.replace(".gz", "")]
    data = draw(st.binary(max_size=300) | mutated(seed))
    if suffix.endswith(".gz"):
        import gzip

        data = draw(st.sampled_from([gzip.compress(data), gzip.compress(data)[:-draw(st.integers(1, 20))], data]))
    return suffix, data


@settings(max_examples=3000, deadline=timedelta(seconds=2), **SETTINGS)
@given(case=hostile_files())
def test_arbitrary_bytes_raise_only_kgrec_errors(workdir, case):
    suffix, data = case
    path = workdir / f"input{suffix}"
    path.write_bytes(data)
    try:
        kg = quiet_load(path, max_literal_chars=10_000)
    except KgrecError as e:
        assert str(path) in str(e) or "mapping" in str(e), str(e)  # names the file
    else:
        assert isinstance(kg, KnowledgeGraph) and kg.num_users >= 1 and kg.num_items >= 1
