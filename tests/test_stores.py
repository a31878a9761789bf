"""kgrec.load_store / kgrec.load of a triple store: a real Oxigraph server and real store directories.

Known answers: the shipped toy graph (kg_data/toy) read from its file, from an Oxigraph SPARQL
endpoint (in pages of a few triples too) and from a pyoxigraph store directory is the same
KnowledgeGraph (users, items, entities, relations, KG triples, interactions with their times and
weights, texts, features, warnings). Every error names the endpoint or the directory (and the page).
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import re
import socket
import threading
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import pyoxigraph as ox
import pytest

import kgrec
from kgrec.cli import main
from kgrec.data.mapping import Mapping
from kgrec.data.stores import PAGE_OVERLAP_WARNING, construct_query, is_store_dir, mapping_predicates
from kgrec.errors import EmptyGraphError, InputLimitError, KgrecError, MappingError, StoreError, StoreTimeoutError
from tests import oxigraph_server as _server
from tests.data.test_loader import assert_same_graph
from tests.oxigraph_server import _free_port, oxigraph_server

oxigraph = _server.oxigraph  # the fixture: a fresh Oxigraph server per test

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "kg_data" / "toy" / "toy.ttl"
TOY_SCHEMA = ROOT / "kg_data" / "toy" / "toy-schema.ttl"
EX = "http://ex.org/"
TURTLE = "text/turtle"


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def store_dir(path: Path, *files: Path) -> Path:
    """A pyoxigraph store directory holding ``files``, closed again (no process holds its lock)."""
    store = ox.Store(str(path))
    for f in files:
        store.load(path=str(f), format=ox.RdfFormat.from_extension(f.suffix.lstrip(".")))
    store.flush()
    del store
    return path


def post_dataset(server, nquads: bytes) -> None:
    """Add N-Quads (named graphs included) to the server's dataset (graph store protocol)."""
    req = urllib.request.Request(server.store_url, data=nquads, method="POST",
                                 headers={"Content-Type": "application/n-quads"})
    with urllib.request.urlopen(req, timeout=30):
        pass


@pytest.fixture(scope="module")
def toy():
    return quiet(kgrec.load, TOY)


# --------------------------------------------------------------------------- same graph, three ways
def test_toy_from_endpoint_equals_the_file(oxigraph, toy):
    oxigraph.load(TOY.read_bytes(), TURTLE)
    kg = quiet(kgrec.load_store, oxigraph.query_url)
    assert (kg.num_users, kg.num_items, kg.num_entities, kg.num_relations, len(kg.triples),
            len(kg.interactions)) == (6, 8, 24, 3, 25, 15)
    assert_same_graph(kg, toy)
    assert kg.sources == [oxigraph.query_url]


def test_toy_in_pages_of_seven_triples_equals_the_file(oxigraph, toy):
    oxigraph.load(TOY.read_bytes(), TURTLE)
    # the whole answer does not fit in 3000 bytes, pages of 7 triples do: the load really pages
    with pytest.raises(InputLimitError, match="max_file_bytes=3000"):
        quiet(kgrec.load_store, oxigraph.query_url, page_size=None, max_file_bytes=3000)
    kg = quiet(kgrec.load_store, oxigraph.query_url, page_size=7, max_file_bytes=3000)
    assert_same_graph(kg, toy)


def test_blank_node_events_across_pages(oxigraph):
    """schema.org reviews hold their rating in a blank node; pages of 5 triples split them."""
    file_kg = quiet(kgrec.load, TOY_SCHEMA, mapping="schema-org")
    oxigraph.load(TOY_SCHEMA.read_bytes(), TURTLE)
    kg = quiet(kgrec.load_store, oxigraph.query_url, mapping="schema-org", page_size=5)
    assert len(kg.interactions) == 15 and sorted(set(kg.interactions.weight.tolist())) == [1, 2, 3, 4, 5]
    assert_same_graph(kg, file_kg)


def test_toy_from_a_store_directory_equals_the_file(tmp_path, toy):
    d = store_dir(tmp_path / "store", TOY)
    assert is_store_dir(d) and not is_store_dir(TOY.parent) and not is_store_dir(TOY)
    assert_same_graph(quiet(kgrec.load_store, d), toy)
    assert_same_graph(quiet(kgrec.load, d), toy)           # kgrec.load recognises the directory
    assert_same_graph(quiet(kgrec.load, str(d)), toy)
    # read-only: no lock is left behind, a writer opens the store at once
    writer = ox.Store(str(d))
    assert len(writer) > 100
    # and from inside a process that has the store open: pass the Store itself
    assert_same_graph(quiet(kgrec.load_store, writer), toy)
    del writer


def test_store_directory_and_file_together(tmp_path, toy):
    """Half the toy in a store, the other half in a file: merged like two files."""
    lines = ox.serialize(ox.parse(path=str(TOY)), format=ox.RdfFormat.N_TRIPLES).decode().splitlines(keepends=True)
    (tmp_path / "a.nt").write_text("".join(lines[::2]), encoding="utf-8")
    (tmp_path / "b.nt").write_text("".join(lines[1::2]), encoding="utf-8")
    d = store_dir(tmp_path / "store", tmp_path / "b.nt")
    assert_same_graph(quiet(kgrec.load, [tmp_path / "a.nt", d]), toy)


NAMED = (f"<{EX}u1> <{EX}likes> <{EX}i1> <{EX}g1> .\n"
         f"<{EX}u1> <{EX}likes> <{EX}i2> <{EX}g2> .\n"
         f"<{EX}u2> <{EX}likes> <{EX}i2> .\n"
         f"<{EX}u2> <{EX}likes> <{EX}i2> <{EX}g1> .\n"      # the same triple in two graphs: read once
         f"<{EX}i1> <{EX}genre> <{EX}drama> <{EX}g2> .\n"
         f"<{EX}i1> <{EX}name> \"One\" <{EX}g1> .\n")
LIKES = {"prefixes": {"ex": EX}, "interactions": [{"name": "likes", "predicate": "ex:likes"}],
         "text": {"predicates": ["ex:name"]}}


@pytest.mark.parametrize("union", [False, True], ids=["default-graph", "union-default-graph"])
def test_named_graphs_are_merged_like_files(tmp_path, union):
    """Files merge named graphs; so does a store, whatever the server's default graph is."""
    f = tmp_path / "named.nq"
    f.write_text(NAMED, encoding="utf-8")
    file_kg = quiet(kgrec.load, f, mapping=LIKES)
    assert (file_kg.num_users, file_kg.num_items, len(file_kg.interactions), len(file_kg.triples)) == (2, 2, 3, 1)
    assert file_kg.literals == {0: {EX + "name": ["One"]}}
    with oxigraph_server(tmp_path / "server", union_default_graph=union) as server:
        post_dataset(server, NAMED.encode())
        kg = quiet(kgrec.load_store, server.query_url, mapping=LIKES, page_size=2)
    assert_same_graph(kg, file_kg, warnings_too=False)
    assert "duplicate triple" not in kg.warnings  # DISTINCT: the union default graph repeats nothing
    assert_same_graph(quiet(kgrec.load, store_dir(tmp_path / "store", f), mapping=LIKES), file_kg,
                      warnings_too=False)


# --------------------------------------------------------------------------- what the mapping fetches
PATHS_TTL = f"""@prefix ex: <{EX}> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:alice ex:wrote ex:r1 , ex:r2 .
ex:bob ex:wrote ex:r3 .
ex:r1 ex:about ex:offer1 ; ex:score [ ex:value 5 ] ; ex:on "2021-01-01T00:00:00Z"^^xsd:dateTime .
ex:r2 ex:product ex:camera ; ex:score [ ex:value 3 ] ; ex:on "2021-01-02T00:00:00Z"^^xsd:dateTime .
ex:r3 ex:about ex:offer2 ; ex:score [ ex:value 4 ] ; ex:on "2021-01-03T00:00:00Z"^^xsd:dateTime .
ex:offer1 ex:sells ex:camera .
ex:offer2 ex:sells ex:lens .
ex:camera ex:brand ex:acme ; rdfs:label "Camera" ; ex:sku "C-1" ; ex:grams 450 .
ex:lens ex:brand ex:acme ; rdfs:label "Lens" .
ex:strap ex:partOf ex:camera .
ex:acme ex:country ex:nowhere .
"""
PATHS_MAPPING = {
    "prefixes": {"ex": EX},
    "users": {"classes": []}, "items": {"classes": []},
    "interactions": [{"name": "review", "agent": "^ex:wrote", "object": "ex:about/ex:sells|ex:product",
                      "weight": "ex:score/ex:value", "time": "ex:on"}],
    "kg": {"edges": ["ex:brand", "^ex:partOf"]},
    "text": {"predicates": ["rdfs:label"]},
    "features": {"numeric": ["ex:grams"]},
}


def test_mapping_predicates_are_every_path_step():
    preds, every = mapping_predicates(Mapping.from_dict(PATHS_MAPPING))
    assert not every
    assert set(preds) == {EX + p for p in ("wrote", "about", "sells", "product", "score", "value", "on", "brand",
                                           "partOf", "grams")} | {
        "http://www.w3.org/1999/02/22-rdf-syntax-ns#type", "http://www.w3.org/2000/01/rdf-schema#subClassOf",
        "http://www.w3.org/2000/01/rdf-schema#label", "http://www.w3.org/2002/07/owl#sameAs"}
    # the kgrec profile: open-ended edges, and schema.org spelt https too (the mapping's rewrite)
    preds, every = mapping_predicates(Mapping())
    assert every and {"http://schema.org/name", "https://schema.org/name"} <= set(preds)
    q = construct_query(["http://a/p"], True, limit=10, offset=20)
    assert "FILTER (!isLiteral(?o) || ?p IN (<http://a/p>))" in q and "LIMIT 10 OFFSET 20" in q
    assert "SELECT DISTINCT ?s ?p ?o" in q and "UNION { GRAPH ?g { ?s ?p ?o } }" in q
    assert "VALUES ?p { <http://a/p> }" in construct_query(["http://a/p"], False)
    with pytest.raises(KgrecError, match="holds '>'"):
        construct_query(["http://a/p>"], False)


def test_property_paths_from_endpoint_and_store_equal_the_file(oxigraph, tmp_path):
    f = tmp_path / "shop.ttl"
    f.write_text(PATHS_TTL, encoding="utf-8")
    file_kg = quiet(kgrec.load, f, mapping=PATHS_MAPPING)
    assert file_kg.users.labels == [EX + "alice", EX + "bob"]
    assert file_kg.items.labels == [EX + "camera", EX + "lens"]
    assert sorted(zip(file_kg.interactions.user.tolist(), file_kg.interactions.item.tolist(),
                      file_kg.interactions.weight.tolist())) == [(0, 0, 5.0), (1, 1, 4.0)]
    assert len(file_kg.triples) == 3  # camera/lens -brand-> acme, strap -partOf-> camera
    assert file_kg.features[:2, 0].tolist()[0] == 450.0
    oxigraph.load(f.read_bytes(), TURTLE)
    # the literal ex:sku is named nowhere in the mapping: not fetched, and the graph is the same
    assert_same_graph(quiet(kgrec.load_store, oxigraph.query_url, mapping=PATHS_MAPPING, page_size=4), file_kg)
    assert_same_graph(quiet(kgrec.load_store, store_dir(tmp_path / "store", f), mapping=PATHS_MAPPING), file_kg)


# --------------------------------------------------------------------------- errors
def test_unreachable_endpoint(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/query"
    with pytest.raises(StoreError, match=r"cannot read page 1 \(triples 1-50000\) of the CONSTRUCT query from the "
                                         rf"SPARQL endpoint '{url}': connection refused") as e:
        kgrec.load_store(url)
    assert (e.value.location, e.value.page) == (url, 1)


def test_http_error_names_the_status_and_the_servers_words(oxigraph):
    url = oxigraph.base_url + "/ds/sparql"
    with pytest.raises(StoreError, match=rf"'{url}' answered HTTP 404 Not Found to page 1 .*: POST /ds/sparql is not "
                                         r"supported by this server; is .* the endpoint's query URL"):
        kgrec.load_store(url)
    with pytest.raises(StoreError, match=r"HTTP 400 Bad Request .*: The URL query parameter update must be set"):
        kgrec.load_store(oxigraph.update_url)


@contextlib.contextmanager
def silent_server():
    """A real TCP server on 127.0.0.1 that takes connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/query"


def test_timeout_names_the_page_and_the_options():
    with silent_server() as url:
        with pytest.raises(StoreTimeoutError, match=rf"'{url}' did not answer page 1 \(triples 1-1000\) of the "
                                                    r"CONSTRUCT query within timeout=0.3 s; .*page_size=N, "
                                                    r"'--page-size N'.*timeout=S") as e:
            kgrec.load_store(url, page_size=1000, timeout=0.3)
    assert isinstance(e.value, TimeoutError) and e.value.page == 1


@contextlib.contextmanager
def answering(respond):
    """A real HTTP server on 127.0.0.1 answering each POSTed query with ``respond(query)``, a
    ``(content type, body)``: a login page in front of an endpoint, a server ignoring LIMIT, a
    server whose pages change (what Oxigraph cannot be made to do).
    """
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the http.server name)
            form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            content_type, body = respond(form["query"][0])
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/query"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def likes(*pairs) -> bytes:
    return "".join(f"<{EX}u{u}> <{EX}likes> <{EX}i{i}> .\n" for u, i in pairs).encode()


def test_an_answer_that_is_not_rdf_or_ignores_the_limit():
    with answering(lambda q: ("text/html", b"<html><body>Please log in</body></html>")) as url:
        with pytest.raises(StoreError, match=rf"'{url}' answered page 1 \(triples 1-50000\) with Content-Type "
                                             r"'text/html', not N-Triples \(<html><body>Please log in"):
            kgrec.load_store(url)
    with answering(lambda q: ("application/n-triples", likes(*[(k, 1) for k in range(5)]))) as url:
        with pytest.raises(StoreError, match=rf"'{url}' answered page 1 with 5 triples, more than its LIMIT 3: the "
                                             r"server ignores LIMIT; read it with page_size=None"):
            kgrec.load_store(url, page_size=3)


def paged_server(count: int, pages: list[bytes]):
    """Answers the COUNT query with ``count`` and page k (by OFFSET) with ``pages[k]``."""
    def respond(query):
        if "COUNT(*)" in query:
            return "application/sparql-results+json", json.dumps(
                {"head": {"vars": ["n"]}, "results": {"bindings": [{"n": {"type": "literal", "value": str(count)}}]}}
            ).encode()
        limit, offset = map(int, re.search(r"LIMIT (\d+) OFFSET (\d+)", query).groups())
        return "application/n-triples", pages[offset // limit] if offset // limit < len(pages) else b""
    return answering(respond)


def test_pages_are_checked_against_the_count():
    # a triple added during the read shows up on two pages: read once, counted
    with paged_server(4, [likes((1, 1), (1, 2)), likes((1, 2), (2, 1)), likes((2, 2))]) as url:
        kg = quiet(kgrec.load_store, url, mapping=LIKES, page_size=2)
    assert len(kg.interactions) == 4 and kg.warnings[PAGE_OVERLAP_WARNING] == 1
    assert "duplicate triple" not in kg.warnings
    # a server whose order changes between pages: one triple twice, another never
    with paged_server(4, [likes((1, 1), (1, 2)), likes((1, 2), (2, 1))]) as url:
        with pytest.raises(StoreError, match=rf"'{url}' counted 4 triples for the query, but its 3 pages held 3 "
                                             r"distinct ones: the server's order of answers changed between pages"):
            quiet(kgrec.load_store, url, mapping=LIKES, page_size=2)


def test_not_a_store_directory(tmp_path):
    with pytest.raises(StoreError, match=r"'.*toy' is not an Oxigraph store directory \(no RocksDB 'CURRENT'"):
        kgrec.load_store(TOY.parent)
    with pytest.raises(StoreError, match="store directory '.*nothing-here' does not exist"):
        kgrec.load_store(tmp_path / "nothing-here")
    with pytest.raises(StoreError, match="'ftp://x/y' is not a store"):
        kgrec.load_store("ftp://x/y")


def test_store_open_for_writing_elsewhere_is_refused(oxigraph):
    """pyoxigraph: reading a store another process writes is undefined; the writer is named."""
    with pytest.raises(StoreError, match=rf"is open for writing by process {oxigraph.process.pid}; .*SPARQL "
                                         r"endpoint \(kgrec.load_store\('http://HOST:PORT/query'\)"):
        kgrec.load(oxigraph.location)


def test_store_open_in_this_process_says_pass_the_store(tmp_path, toy):
    d = store_dir(tmp_path / "store", TOY)
    writer = ox.Store(str(d))
    with pytest.raises(StoreError, match=r"open for writing by this process; .*kgrec.load_store\(store\)"):
        kgrec.load_store(d)
    assert len(writer) > 100  # the check never touched the writer's lock
    with pytest.raises(OSError, match="lock"):
        ox.Store(str(d))
    del writer


def test_empty_store_and_a_mapping_that_finds_nothing(tmp_path, oxigraph):
    d = store_dir(tmp_path / "empty")
    with pytest.raises(EmptyGraphError, match=rf"the store '{d}' holds none of the triples mapping 'kgrec' reads.*"
                                              r"rdf:type.*or an IRI or blank node as object"):
        kgrec.load(d)
    oxigraph.load(f"<{EX}a> <{EX}p> <{EX}b> .\n".encode())
    with pytest.raises(MappingError, match=rf"finds no users and no items in '{oxigraph.query_url}'"):
        kgrec.load_store(oxigraph.query_url)


def test_bad_arguments():
    for kw, msg in ((dict(page_size=0), "'page_size' must be a positive integer or None"),
                    (dict(timeout=-1), "'timeout' must be a positive number of seconds")):
        with pytest.raises(KgrecError, match=msg):
            kgrec.load_store("http://127.0.0.1:1/query", **kw)
    with pytest.raises(StoreError, match="must be an http.* URL, an Oxigraph store directory or a pyoxigraph.Store"):
        kgrec.load_store(42)


# --------------------------------------------------------------------------- command line
def run_cli(*argv) -> tuple[int, str, str]:
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_cli_reads_an_endpoint_and_a_store_directory(oxigraph, tmp_path):
    oxigraph.load(TOY.read_bytes(), TURTLE)
    code, out, _ = run_cli("inspect", "--store", oxigraph.query_url, "--page-size", "10", "--json")
    assert code == 0
    stats = json.loads(out)
    assert (stats["users"], stats["items"], stats["interactions"]) == (6, 8, 15)
    d = store_dir(tmp_path / "store", TOY)
    code, out2, _ = run_cli("inspect", d, "--json")
    assert code == 0 and json.loads(out2) == {**stats, "sources": [str(d)]}
    code, out, _ = run_cli("validate", "--store", oxigraph.query_url)
    assert code == 0 and out.startswith(f"ok: {oxigraph.query_url}: 6 users, 8 items")
    code, _, err = run_cli("train", "--store", oxigraph.query_url, "--model", "mostpop", "--out", tmp_path / "m")
    assert code == 0, err
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["data"]["store"] == oxigraph.query_url and metrics["graph"]["interactions"] == 15
    code, _, err = run_cli("evaluate", tmp_path / "m", "--store", oxigraph.query_url, "--out", tmp_path / "e")
    assert code == 0, err
    evaluated = json.loads((tmp_path / "e" / "evaluation.json").read_text())["metrics"]
    assert {k: v for k, v in evaluated.items() if "@" in k} == {k: v for k, v in metrics["test"].items() if "@" in k}
    code, out, _ = run_cli("validate", "--store", f"http://127.0.0.1:{_free_port()}/query")
    assert code == 2 and "connection refused" in out
    code, out, _ = run_cli("validate", TOY, "--store", oxigraph.query_url)
    assert code == 2 and "give RDF files or --store, not both" in out
    code, _, err = run_cli("inspect")
    assert code == 2 and "give RDF files or folders, or --store URL" in err
