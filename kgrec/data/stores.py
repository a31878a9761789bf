"""Reading a graph from a triple store: an Oxigraph store directory or a SPARQL 1.1 endpoint.

A live service keeps its graph (and the events it receives) in a store, not in files; this module
reads that store into the same :class:`~kgrec.data.graph.KnowledgeGraph` the files would give.

What is fetched. Only the triples the mapping can use (:func:`mapping_predicates`): every
predicate the mapping names (each step of a property path, same-as, text, feature and listed
KG-edge predicates, the scenario predicate), ``rdf:type`` and ``rdfs:subClassOf``, plus, for the
spelling of a predicate that the mapping's ``rewrite`` turns into it, that spelling too
(``https://schema.org/name`` for ``schema:name``). A mapping whose KG edges are open-ended
(``kg.edges = "*"``: every IRI-valued predicate not reserved for something else) is answered by
fetching every triple whose object is not a literal, as well: which of those are edges depends on
which nodes become items and entities, known only after reading, and the walk from the items may
reach any node (``max_hops`` unset, ``incoming``). Literals under predicates the mapping never
names are the one thing left out; the warnings they would raise in a file load (a string literal
that looks like an IRI) are therefore not counted, and the near-miss suggestions of
``kg.mapping_report`` see only the predicates fetched.

Named graphs. Files merge every named graph into one graph; so does this reader: the query reads
the default graph *and* every named graph (``{ ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } }``),
``DISTINCT``, so it gives the same triples whether the server's default graph is only the
unnamed graph (Oxigraph's default) or the union of all graphs (``--union-default-graph``,
Fuseki's ``unionDefaultGraph``). A triple held in two graphs is read once.

Paging. An endpoint is asked for ``page_size`` triples at a time (``LIMIT`` / ``OFFSET``); the
pages are parsed and streamed into the extraction step of the file loader
(:func:`kgrec.data.rdf.quad_id_batches` and :func:`kgrec.data.extract.build_graph_ids`: there is one
conversion and one extractor) as they arrive. The pages
carry no ``ORDER BY``: sorting terms costs the server a full sort of the result per page (Oxigraph:
over a minute a page for the 566k triples of MovieLens latest-small, against seconds for the whole
read), so the pages rely on the server answering the same query in the same order each time, as
Oxigraph and Jena do for an unchanged store. That is checked, not assumed: when the result takes
more than one page, the server counts it (``COUNT`` of the same ``DISTINCT`` triples) after the first
page, and a read whose pages hold fewer distinct triples than that count is refused
(:class:`~kgrec.errors.StoreError`: the order changed between pages, or triples were deleted during
the read). Triples a live service adds during the read may be read twice (counted in ``kg.warnings``
under :data:`PAGE_OVERLAP_WARNING`, read once) or not at all (they are newer than the read); a triple
present throughout the read is never lost. (Triples added while the first page is read, before the
count, can make a read fail the check: read it again.) ``page_size=None`` reads the result in one
request: one consistent snapshot. Blank nodes of different pages are the same node when the server
writes the same label for them: Oxigraph writes its store's own blank-node ids; a server that
renumbers blank nodes in each answer needs ``page_size=None`` when blank nodes carry events.

A store directory is opened with ``pyoxigraph.Store.read_only``, which takes no lock, so a
service may open the store for writing after or while kgrec reads it. pyoxigraph calls a read
*while another process writes* undefined behaviour, so a directory whose write lock a process
holds is refused, naming that process: read it through the process's SPARQL endpoint, or from
inside it by passing its open :class:`pyoxigraph.Store` (the lock holder is found in
``/proc/locks`` on Linux; elsewhere it is not checked).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from kgrec.data.extract import RDF_TYPE, RDFS_SUBCLASS_OF, build_graph_ids
from kgrec.data.graph import KnowledgeGraph
from kgrec.data.mapping import AlternativePath, CompiledMapping, InversePath, Mapping
from kgrec.data.rdf import IdTriples, is_url, read_quads
from kgrec.data.safety import DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_LITERAL_CHARS, LimitedReader, Limits
from kgrec.data.validation import warn_load_problems
from kgrec.errors import EmptyGraphError, KgrecError, StoreError, StoreTimeoutError

__all__ = ["load_store", "store_ids", "is_store_dir", "mapping_predicates", "construct_query", "count_query",
           "empty_store_error", "PAGE_OVERLAP_WARNING",
           "DEFAULT_PAGE_SIZE", "DEFAULT_TIMEOUT"]

#: Triples per page of an endpoint's answer: a few MB of N-Triples, well inside common servers'
#: result limits and timeouts.
DEFAULT_PAGE_SIZE = 50_000
#: Seconds to wait for the answer to one page.
DEFAULT_TIMEOUT = 60.0

_N_TRIPLES = "application/n-triples"
_SPARQL_JSON = "application/sparql-results+json"

#: Key of ``kg.warnings`` counting triples an endpoint gave on two pages (a store written during
#: the read); they are read once.
PAGE_OVERLAP_WARNING = "triple read on two pages (the store changed during the read): read once"


# ----------------------------------------------------------------------------- what to fetch
def _path_iris(path) -> Iterator[str]:
    """Every property IRI of a compiled property path (each step, inverse or not, each branch)."""
    for step in path:
        if type(step) is str:
            yield step
        elif isinstance(step, InversePath):
            yield step.iri
        elif isinstance(step, AlternativePath):
            for branch in step.paths:
                yield from _path_iris(branch)


def mapping_predicates(mapping: Mapping | CompiledMapping) -> tuple[tuple[str, ...], bool]:
    """The predicates whose triples ``mapping`` reads, and whether it reads every non-literal triple.

    Returns:
        ``(predicates, every_iri_object)``: the sorted predicate IRIs (with the spellings the
        mapping's ``rewrite`` maps onto them), and ``True`` when the KG edges are ``"*"`` (then
        every triple whose object is an IRI or a blank node may be an edge).
    """
    cm = mapping.compile() if isinstance(mapping, Mapping) else mapping
    preds = {RDF_TYPE, RDFS_SUBCLASS_OF, *cm.same_as, *cm.text_predicates, *cm.numeric, *cm.inverse_edges}
    if cm.edges is not None:
        preds |= cm.edges
    if cm.domain_predicate is not None:
        preds.add(cm.domain_predicate)
    for rule in cm.rules:
        if rule.predicate is not None:
            preds.add(rule.predicate)
        preds.update(_path_iris(rule.predicate_path))
        for paths in (rule.agent, rule.object, rule.time, rule.weight, rule.text):
            for path in paths:
                preds.update(_path_iris(path))
    # data spelt in a rewritten namespace (https://schema.org/) is read as the mapping's spelling
    for old, new in cm.rewrite:
        preds |= {old + p[len(new):] for p in preds if p.startswith(new)}
    return tuple(sorted(preds)), cm.edges is None


def _iri(iri: str) -> str:
    """``iri`` written as a SPARQL IRIREF; characters SPARQL forbids there are refused."""
    bad = [c for c in iri if c in '<>"{}|^`\\' or ord(c) <= 0x20]
    if bad:
        raise KgrecError(f"the mapping names the IRI {iri!r}, which holds {bad[0]!r}: an IRI cannot hold it, "
                         "so it cannot be queried")
    return f"<{iri}>"


def _where_clause(predicates, every_iri_object: bool) -> str:
    """The ``DISTINCT`` triples of the default graph and every named graph that the mapping reads."""
    triples = "{ ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } }"
    if every_iri_object:
        where = f"{triples}\n      FILTER (!isLiteral(?o) || ?p IN ({', '.join(map(_iri, predicates))}))"
    else:  # a VALUES join lets the server read its predicate index
        where = f"VALUES ?p {{ {' '.join(map(_iri, predicates))} }}\n      {triples}"
    return f"SELECT DISTINCT ?s ?p ?o WHERE {{\n      {where}\n    }}"


def construct_query(predicates, every_iri_object: bool, limit: int | None = None, offset: int = 0) -> str:
    """The CONSTRUCT query of :func:`mapping_predicates`'s answer (one page of it with ``limit``).

    The triples of the default graph and of every named graph, ``DISTINCT``; with ``limit``, the
    ``offset``-th to ``offset + limit``-th in the server's order (see the module docstring).
    """
    page = f"\n    LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
    return (f"CONSTRUCT {{ ?s ?p ?o }}\nWHERE {{\n  {{ {_where_clause(predicates, every_iri_object)}{page}\n  }}\n}}\n")


def count_query(predicates, every_iri_object: bool) -> str:
    """How many triples :func:`construct_query` gives in all (``?n``)."""
    return f"SELECT (COUNT(*) AS ?n) WHERE {{\n  {{ {_where_clause(predicates, every_iri_object)}\n  }}\n}}\n"


# ----------------------------------------------------------------------------- store directories
def is_store_dir(path) -> bool:
    """Whether ``path`` is a RocksDB database directory (an Oxigraph store is one): it holds a
    ``CURRENT`` file naming a ``MANIFEST-`` file. A folder of RDF files never does.
    """
    if not isinstance(path, (str, os.PathLike)) or is_url(path):
        return False
    current = Path(path) / "CURRENT"
    try:
        with open(current, "rb") as fh:
            return Path(path).is_dir() and fh.read(9) == b"MANIFEST-"
    except OSError:
        return False


def _check_oxigraph_dir(directory: Path) -> None:
    """Raise :class:`StoreError` unless ``directory`` is an Oxigraph store (a RocksDB database with
    Oxigraph's column families, named in its ``OPTIONS-*`` file).
    """
    if not directory.is_dir():
        raise StoreError(f"store directory '{directory}' does not exist", directory)
    if not is_store_dir(directory):
        raise StoreError(f"'{directory}' is not an Oxigraph store directory (no RocksDB 'CURRENT' file): a store "
                         "is the directory given to pyoxigraph.Store(path) or 'oxigraph serve --location'; a "
                         "folder of RDF files is read by kgrec.load", directory)
    options = sorted(directory.glob("OPTIONS-*"))
    if options:
        text = options[-1].read_text(encoding="utf-8", errors="replace")
        if 'CFOptions "id2str"' not in text:
            raise StoreError(f"'{directory}' is a RocksDB database but not an Oxigraph store (no 'id2str' "
                             "column family)", directory)


def _lock_holder(directory: Path) -> int | None:
    """The id of the process holding the RocksDB write lock of ``directory``, from ``/proc/locks``;
    ``None`` when no process holds it or the system has no ``/proc/locks``.

    The lock file itself is never opened: closing any descriptor of a file drops every POSIX lock
    the closing process holds on it, so a probe would release the lock of a store this very
    process has open.
    """
    try:
        st = (directory / "LOCK").stat()
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] == "->":  # a process waiting for a lock, not holding one
            continue
        try:
            major, minor, inode = parts[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == want and parts[3] == "WRITE":
                return int(parts[4])
        except ValueError:
            continue
    return None


def _open_store_dir(directory: Path):
    import pyoxigraph as ox

    _check_oxigraph_dir(directory)
    pid = _lock_holder(directory)
    if pid is not None:
        who = "this process" if pid == os.getpid() else f"process {pid}"
        how = ("pass that open pyoxigraph.Store itself: kgrec.load_store(store)" if pid == os.getpid() else
               "read it through that process's SPARQL endpoint (kgrec.load_store('http://HOST:PORT/query'), "
               "'--store URL'), or stop it first, or read a backup ('oxigraph backup')")
        raise StoreError(f"store directory '{directory}' is open for writing by {who}; pyoxigraph calls reading a "
                         f"store while another process writes it undefined behaviour: {how}", directory)
    try:
        return ox.Store.read_only(str(directory))
    except OSError as e:
        raise StoreError(f"cannot open the Oxigraph store '{directory}' read-only: {e}", directory) from None


# ----------------------------------------------------------------------------- SPARQL endpoints
def _first_line(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return (text.splitlines()[0][:300] if text else "(empty body)")


def _post(url: str, query: str, accept: str, timeout: float, what: str, page: int, limits: Limits,
          wait_hint: str = "ask for smaller pages (page_size=N, '--page-size N') or wait longer"):
    """POST ``query`` (form-encoded, which every SPARQL 1.1 server accepts); the answer's
    ``(media type, bytes)``. Every failure is a :class:`StoreError` naming the URL and ``what``.
    """
    req = urllib.request.Request(url, data=urllib.parse.urlencode({"query": query}).encode(), method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            media = resp.headers.get_content_type()
            return media, LimitedReader(resp, limits.max_file_bytes, f"{url} ({what})", "bytes in one answer").read()
    except urllib.error.HTTPError as e:
        try:
            detail = _first_line(e.read(4096))
        except (OSError, http.client.HTTPException):
            detail = "(no body)"
        raise StoreError(f"the SPARQL endpoint '{url}' answered HTTP {e.code} {e.reason} to {what}: {detail}; is "
                         f"'{url}' the endpoint's query URL (Oxigraph: http://HOST:PORT/query, Fuseki: "
                         "http://HOST:PORT/DATASET/sparql)?", url, page) from None
    except (TimeoutError, socket.timeout, urllib.error.URLError, http.client.HTTPException, OSError) as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise StoreTimeoutError(
                f"the SPARQL endpoint '{url}' did not answer {what} within timeout={timeout:g} s; {wait_hint} "
                "(timeout=S, '--store-timeout S')", url, page) from None
        if isinstance(reason, ConnectionRefusedError):
            detail = "connection refused: is the server running, on this host and port?"
        else:
            detail = f"{type(reason).__name__}: {reason}"
        raise StoreError(f"cannot read {what} from the SPARQL endpoint '{url}': {detail}", url, page) from None


def _count(url: str, query: str, timeout: float, limits: Limits) -> int:
    what = "the COUNT query (after page 1)"
    media, body = _post(url, query, _SPARQL_JSON, timeout, what, 1, limits,
                        "read in one request (page_size=None) or wait longer")
    try:
        (row,) = json.loads(body)["results"]["bindings"]
        return int(row["n"]["value"])
    except (ValueError, KeyError, TypeError) as e:
        raise StoreError(f"the SPARQL endpoint '{url}' answered {what} with {media!r} that holds no count "
                         f"({_first_line(body[:300])}: {type(e).__name__}); is '{url}' a SPARQL query endpoint?",
                         url, 1) from None


def _page(url: str, query: str, timeout: float, page: int, page_size: int | None, limits: Limits):
    """One page of the CONSTRUCT answer as ``(bytes, pyoxigraph.RdfFormat)``."""
    import pyoxigraph as ox

    what = (f"page {page} (triples {(page - 1) * page_size + 1}-{page * page_size})" if page_size else "the query")
    media, body = _post(url, query, f"{_N_TRIPLES}, text/turtle;q=0.5", timeout, what + " of the CONSTRUCT query",
                        page, limits)
    fmt = ox.RdfFormat.from_media_type(media)
    if fmt is None or fmt not in (ox.RdfFormat.N_TRIPLES, ox.RdfFormat.TURTLE, ox.RdfFormat.N_QUADS):
        raise StoreError(f"the SPARQL endpoint '{url}' answered {what} with Content-Type {media!r}, not N-Triples "
                         f"({_first_line(body[:300])}); is '{url}' a SPARQL query endpoint?", url, page)
    return body, fmt


def _endpoint_quads(url, predicates, every, page_size, timeout, limits, log):
    """The endpoint's quads, page after page; the next page is asked for when the last is read."""
    import pyoxigraph as ox

    offset, page = 0, 1
    while True:
        query = construct_query(predicates, every, page_size, offset)
        body, fmt = _page(url, query, timeout, page, page_size, limits)
        n = 0
        try:
            for q in ox.parse(body, fmt):
                n += 1
                yield q
        except SyntaxError as e:
            raise StoreError(f"the SPARQL endpoint '{url}' answered page {page} with malformed RDF: {e}",
                             url, page) from None
        log["received"] = log.get("received", 0) + n
        log["pages"] = page
        if page_size is None or n < page_size:
            return
        if n > page_size:
            raise StoreError(f"the SPARQL endpoint '{url}' answered page {page} with {n} triples, more than its LIMIT "
                             f"{page_size}: the server ignores LIMIT; read it with page_size=None (one page)",
                             url, page)
        if page == 1:  # more than one page: count the result, to check the pages against
            log["expected"] = _count(url, count_query(predicates, every), timeout, limits)
        offset += page_size
        page += 1


def _check_pages(kg: KnowledgeGraph, url: str, log: dict) -> None:
    """Refuse a paged read whose pages missed part of the result (see the module docstring); count
    the triples read twice under :data:`PAGE_OVERLAP_WARNING` instead of as duplicates.
    """
    if "expected" not in log:
        return
    twice = kg.warnings.pop("duplicate triple", 0)  # the query is DISTINCT: only pages overlap
    if twice:
        kg.warnings[PAGE_OVERLAP_WARNING] += twice
    distinct = log.get("received", 0) - twice
    if distinct < log["expected"]:
        raise StoreError(f"the SPARQL endpoint '{url}' counted {log['expected']} triples for the query, but its "
                         f"{log.get('pages', 0)} pages held {distinct} distinct ones: the server's order of "
                         "answers changed between pages, or triples were deleted during the read; read it again, or "
                         "in one request (page_size=None, '--page-size' larger than the count)", url, log.get("pages"))


def _local_quads(store, predicates, every):
    """The store's triples the mapping reads. Without named graphs (no triple can come twice) the
    store's quads are read by pattern, per predicate, or in one scan keeping what the query's filter
    keeps: twice as fast as the query engine; with named graphs, the ``DISTINCT`` query.
    """
    import pyoxigraph as ox

    if next(iter(store.named_graphs()), None) is not None:
        rows = ((t.subject, t.predicate, t.object, None) for t in store.query(construct_query(predicates, every)))
    elif every:
        named, literal = frozenset(map(ox.NamedNode, predicates)), ox.Literal
        rows = (q for q in store.quads_for_pattern(None, None, None) if type(q[2]) is not literal or q[1] in named)
    else:
        rows = (q for p in predicates for q in store.quads_for_pattern(None, ox.NamedNode(p), None))
    yield from rows


# ----------------------------------------------------------------------------- entry points
def store_ids(location, mapping: Mapping, *, page_size: int | None = DEFAULT_PAGE_SIZE,
              timeout: float = DEFAULT_TIMEOUT, limits: Limits | None = None, warnings: Counter | None = None,
              bnode_prefix: str = "_:s0.", log: dict | None = None) -> IdTriples:
    """The triples ``mapping`` reads from the store ``location``, as :class:`~kgrec.data.rdf.IdTriples`
    (through :func:`~kgrec.data.rdf.read_quads`, the files' own conversion of pyoxigraph terms).

    The building block of :func:`load_store` and of :func:`kgrec.load` given a store directory
    among files (each source's blank nodes kept apart by ``bnode_prefix``). ``log`` receives an
    endpoint's ``expected`` count, ``received`` triples and ``pages``.
    """
    limits = Limits() if limits is None else limits
    warnings = Counter() if warnings is None else warnings
    quads = _store_quads(location, mapping, page_size, timeout, limits, {} if log is None else log)
    return read_quads(quads, _where(location), warnings=warnings, bnode_prefix=bnode_prefix, limits=limits)


def _store_quads(location, mapping: Mapping, page_size, timeout, limits: Limits, log: dict):
    """The quads ``mapping`` reads from ``location``; a store directory is opened (and checked) when
    the first quad is asked for, and closed when the iterator is done.
    """
    predicates, every = mapping_predicates(mapping)
    if isinstance(location, str) and location.lower().startswith(("http://", "https://")):
        yield from _endpoint_quads(location, predicates, every, page_size, timeout, limits, log)
        return
    if is_url(location):
        raise StoreError(f"'{location}' is not a store: give an http(s):// SPARQL endpoint URL, an Oxigraph store "
                         "directory or an open pyoxigraph.Store", location)
    if isinstance(location, (str, os.PathLike)):
        store = _open_store_dir(Path(location))
        try:
            yield from _local_quads(store, predicates, every)
        finally:
            del store  # pyoxigraph closes the store when its last reference goes
        return
    import pyoxigraph as ox

    if isinstance(location, ox.Store):
        yield from _local_quads(location, predicates, every)
        return
    raise StoreError(f"'location' must be an http(s):// SPARQL endpoint URL, an Oxigraph store directory or a "
                     f"pyoxigraph.Store (got {type(location).__name__})")


def empty_store_error(where: str, mapping: Mapping) -> EmptyGraphError:
    """The error of a store holding none of the triples ``mapping`` reads (naming what it asked for)."""
    preds, every = mapping_predicates(mapping)
    cm = mapping.compile()
    return EmptyGraphError(f"the store '{where}' holds none of the triples mapping {mapping.name!r} reads, in its "
                           f"default graph or any named graph: triples with the predicates "
                           f"{', '.join(map(cm.shorten, preds))}"
                           f"{', or an IRI or blank node as object' if every else ''}")


def _where(location) -> str:
    return location if isinstance(location, str) else (str(location) if isinstance(location, os.PathLike)
                                                        else "pyoxigraph.Store")


def load_store(
    location,
    mapping: Mapping | dict | str | os.PathLike | None = None,
    *,
    page_size: int | None = DEFAULT_PAGE_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_literal_chars: int = DEFAULT_MAX_LITERAL_CHARS,
) -> KnowledgeGraph:
    """Read a graph from a triple store into a :class:`~kgrec.data.graph.KnowledgeGraph`.

    The graph is the one :func:`kgrec.load` gives for the same triples in a file: the store's
    triples that ``mapping`` can use (see the module docstring of :mod:`kgrec.data.stores`) go
    through the same extraction step.

    Args:
        location: an ``http://`` or ``https://`` SPARQL 1.1 query endpoint
            (``"http://127.0.0.1:7878/query"`` for ``oxigraph serve``,
            ``"http://HOST:3030/DATASET/sparql"`` for Fuseki); an Oxigraph store directory (the
            ``location`` of ``pyoxigraph.Store`` / ``oxigraph serve``), opened read-only; or an
            open ``pyoxigraph.Store`` (a process reading the store it writes). An endpoint URL is
            the caller's explicit choice of a server to ask, so ``allow_network`` (which guards
            :func:`kgrec.load` against fetching files named by URL) does not apply here.
        mapping: as for :func:`kgrec.load` (default: the ``kgrec`` profile).
        page_size: triples per request to an endpoint (default 50,000); ``None``: the whole
            result in one request (one consistent snapshot). Each page makes the server evaluate
            the query up to its offset again, so a read costs about pages x (half the result):
            pages large enough for a few requests are fastest, as long as each answers within
            ``timeout``. Unused for a store directory or object (read in one pass).
        timeout: seconds to wait for an endpoint's answer to one page (default 60).
        max_file_bytes: the most bytes of one page's answer (default 2 GiB).
        max_literal_chars: the most characters of one literal (default 1 Mi).

    Returns:
        The graph; ``kg.sources`` is ``[location]``.

    Raises:
        StoreError: the endpoint cannot be reached, answers an HTTP error (the message holds the
            first line of the server's answer) or something other than RDF; the directory is not
            an Oxigraph store or another process has it open for writing; the pages of a paged
            read hold fewer distinct triples than the server counts for the query. The message
            names the URL or directory and, for an endpoint, the page.
        StoreTimeoutError: the endpoint did not answer a page within ``timeout`` (the message
            names the page and suggests ``page_size`` / ``timeout``).
        MappingError: the mapping is invalid or finds no users / items / interactions.
        EmptyGraphError: the store holds none of the triples the mapping reads.
        InputLimitError: a page or a literal exceeds its limit.
    """
    if page_size is not None and (isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1):
        raise KgrecError(f"'page_size' must be a positive integer or None (got {page_size!r})")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise KgrecError(f"'timeout' must be a positive number of seconds (got {timeout!r})")
    m = Mapping.coerce(mapping)
    limits = Limits(max_file_bytes=max_file_bytes, max_literal_chars=max_literal_chars)
    counter: Counter = Counter()
    where = _where(location)
    log: dict = {}
    idt = store_ids(location, m, page_size=page_size, timeout=float(timeout), limits=limits, warnings=counter,
                    log=log)
    try:
        kg = build_graph_ids(idt, m, warnings=counter, sources=[where])
    except EmptyGraphError:
        raise empty_store_error(where, m) from None
    _check_pages(kg, where, log)
    warn_load_problems(kg, [where], stacklevel=3)
    return kg
