"""``load(paths, mapping=None, format=None) -> KnowledgeGraph``: RDF files in, graph out.

Interactions are one per (user, item) pair: the events of one pair (from two rules, say a
rating and a watch, or the same event repeated) are merged into one interaction with the
latest time and the largest weight among them, and the merged events are counted in
``kg.warnings`` (:data:`~kgrec.data.validation.REPEATS_WARNING`). Repeats are therefore not
kept: a re-watched item appears once, at its last time, in the time-ordered histories the
sequential models read (SASRec's training sequences, the hybrid's sequential rules), and a
split can never put one pair in two parts. A mapping whose rules name scenarios keeps one
interaction per pair *and scenario*. Users are the agents of at least one interaction: an
instance of a user class that never interacts (an author, an actor) is not a user. Named
graphs (N-Quads, TriG) are merged into one graph, and counted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from kgrec.checks import check_int
from kgrec.data import stores
from kgrec.data.extract import build_graph_ids
from kgrec.data.graph import KnowledgeGraph
from kgrec.data.mapping import Mapping
from kgrec.data.rdf import IdTriples, _engine_ignored, guess_format, is_url, rdf_files, read_ids
from kgrec.data.safety import (
    DEFAULT_MAX_EXPANSION_RATIO,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_LITERAL_CHARS,
    DEFAULT_MAX_XML_DEPTH,
    LimitedReader,
    Limits,
)
from kgrec.data.validation import warn_load_problems
from kgrec.errors import EmptyGraphError, KgrecError

__all__ = ["load"]


def load(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    mapping: Mapping | dict | str | os.PathLike | None = None,
    format: str | None = None,
    *,
    engine: str | None = None,
    base_iri: str | None = None,
    allow_network: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_literal_chars: int = DEFAULT_MAX_LITERAL_CHARS,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    max_xml_depth: int = DEFAULT_MAX_XML_DEPTH,
    max_expansion_ratio: int = DEFAULT_MAX_EXPANSION_RATIO,
    workers: int | None = None,
) -> KnowledgeGraph:
    """Read RDF files into a :class:`~kgrec.data.graph.KnowledgeGraph`.

    Args:
        paths: one file, a folder (every RDF file below it, sorted) or a list of them; all are
            merged into one graph. ``.gz`` / ``.bz2`` files are decompressed. A folder holding an
            Oxigraph store (``pyoxigraph.Store(path)``, ``oxigraph serve --location path``:
            RocksDB files, recognised by their ``CURRENT`` file) is read as a store, read-only
            (:func:`kgrec.data.stores.load_store`, which also reads SPARQL endpoints).
        mapping: how RDF terms map to users, items, interactions, KG edges and texts: a
            :class:`~kgrec.data.mapping.Mapping`, a ``dict`` in the same form as the TOML file,
            a profile name (``"kgrec"``, ``"schema-org"``) or a ``.toml`` / ``.yaml`` file.
            Default: the ``kgrec`` profile.
        format: RDF format of every file (``"turtle"``, ``"ntriples"``, ``"nquads"``, ``"trig"``,
            ``"xml"``, ``"json-ld"``, ``"n3"`` or an alias such as ``"ttl"``); default: guessed
            from each file's suffix.
        engine: deprecated and ignored (a ``DeprecationWarning``; it goes in the next release): every
            file is parsed by pyoxigraph into integer ids (:func:`kgrec.data.rdf.read_ids`).
        base_iri: base of relative IRIs in files with no ``@base``; default: each file's
            ``file://`` URI (such IRIs are counted in ``kg.warnings``).
        allow_network: download ``http(s)://`` / ``ftp://`` URLs given in ``paths`` (default
            ``False``: a URL is refused). Parsing itself never touches the network either way:
            remote JSON-LD contexts, ``owl:imports`` and XML entities are never fetched, and any
            attempt raises :class:`~kgrec.errors.NetworkAccessError`.
        max_file_bytes, max_literal_chars, max_line_bytes, max_xml_depth, max_expansion_ratio: the
            caps of :class:`~kgrec.data.safety.Limits` (2 GiB a decompressed file, 1 Mi characters a
            literal, 8 MiB a line or triple-quoted string, 256 nested XML elements, 200 times a
            compressed file's size past 32 MiB), checked as the bytes are read.
        workers: processes that parse a large uncompressed N-Triples / N-Quads file, a piece each
            (:func:`kgrec.data.rdf.read_ids`); the graph is the same for any number.

    How events become interactions (one per pair, repeats merged), which instances are users, and
    what happens to named graphs: see the module docstring (:mod:`kgrec.data.loader`).

    Returns:
        The graph. Problems met (duplicate triples, dropped literals, incomplete events, merged
        repeats...) are counted in ``kg.warnings`` and summarised in one ``UserWarning``;
        ``kg.mapping_report`` (:class:`~kgrec.data.validation.MappingReport`) holds what each
        mapping rule produced and the mapping terms that match nothing in the graph.

    Raises:
        KgrecError: a path does not exist, or is a URL without ``allow_network=True``.
        RDFFormatError: a format or suffix is unknown.
        RDFParseError: a file is malformed (the message names the file and line), or is RDF/XML
            with a ``<!DOCTYPE>`` (refused: entity expansion).
        InputLimitError: a file, line, literal, XML nesting or decompression ratio exceeds its
            limit (the message names the file, the line where known, and the option to raise).
        NetworkAccessError: parsing tried to reach the network.
        MappingError: the mapping is invalid or finds no users / items / interactions.
        EmptyGraphError: the files hold no triples.
        StoreError: a store directory is not an Oxigraph store, or another process writes to it.
    """
    if not isinstance(allow_network, bool):
        raise KgrecError(f"'allow_network' must be True or False (got {allow_network!r})")
    _engine_ignored(engine)
    limits = Limits(max_file_bytes, max_literal_chars, max_line_bytes, max_xml_depth, max_expansion_ratio)
    if workers is not None:
        check_int(workers, "workers")
    m = Mapping.coerce(mapping)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return _load_paths(paths, m, format, base_iri, limits, allow_network, workers)


def _load_paths(paths, m: Mapping, format, base_iri, limits: Limits, allow_network: bool,
                workers: int | None) -> KnowledgeGraph:
    """:func:`_load` of ``paths``, the URLs among them first downloaded when ``allow_network``."""
    urls = [p for p in paths if is_url(p)]
    if urls and allow_network:
        with tempfile.TemporaryDirectory(prefix="kgrec-download-") as tmp:
            local = {u: _download(u, Path(tmp) / f"{k}", format, limits) for k, u in enumerate(urls)}
            return _load([local.get(p, p) for p in paths], m, format, base_iri, limits,
                         {str(v): u for u, v in local.items()}, workers)
    return _load(paths, m, format, base_iri, limits, {}, workers)


def _download(url: str, folder: Path, format: str | None, limits: Limits) -> Path:
    """Fetch ``url`` into ``folder`` under its own file name (at most ``limits.max_file_bytes``)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    name = Path(urllib.parse.urlsplit(url).path).name or "download"
    if format is None:
        guess_format(name)  # an unknown suffix fails before downloading
    folder.mkdir(parents=True)
    dest = folder / name
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
            shutil.copyfileobj(LimitedReader(resp, limits.max_file_bytes, url), out)
    except (urllib.error.URLError, OSError, ValueError) as e:
        if isinstance(e, KgrecError):
            raise
        raise KgrecError(f"cannot download '{url}': {e}") from None
    return dest


def _load(paths, m: Mapping, format, base_iri, limits: Limits, urls: dict[str, str],
          workers: int | None) -> KnowledgeGraph:
    store_dirs = [Path(p) for p in paths if stores.is_store_dir(p)]
    file_paths = [p for p in paths if not stores.is_store_dir(p)]
    files = rdf_files(file_paths) if file_paths or not store_dirs else []
    counter: Counter = Counter()
    sources = [urls.get(str(f), str(f)) for f in files] + [str(d) for d in store_dirs]
    parts = []
    for k, f in enumerate(files):
        base = base_iri if base_iri is not None or str(f) not in urls else urls[str(f)]
        idt = read_ids(f, format, base_iri=base, warnings=counter, file_index=k, limits=limits, workers=workers)
        if len(idt) == 0 and len(files) > 1:
            counter[f"empty file '{f}'"] += 1
        parts.append(idt)
    for k, d in enumerate(store_dirs, len(files)):  # an Oxigraph store directory among the paths
        parts.append(stores.store_ids(d, m, limits=limits, warnings=counter, bnode_prefix=f"_:f{k}."))
    try:
        kg = build_graph_ids(IdTriples.concat(parts), m, warnings=counter, sources=sources)
    except EmptyGraphError:
        if files:
            raise
        raise stores.empty_store_error(sources[0] if len(sources) == 1 else f"{len(sources)} stores", m) from None
    warn_load_problems(kg, sources)
    return kg

