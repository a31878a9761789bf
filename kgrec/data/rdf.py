"""Reading RDF files into a stream of plain-Python triples.

Terms are engine-independent so that the extraction step never touches ``pyoxigraph`` or
``rdflib`` objects:

* an IRI is a ``str`` holding the absolute IRI;
* a blank node is a ``str`` starting with ``"_:"`` (no absolute IRI can start that way, since a
  scheme starts with a letter); its id is prefixed with the file's index so that ``_:b1`` of
  two different files never merge;
* a literal is a :class:`Literal` named tuple ``(value, datatype, language)``.

Quads are read too; their graph name is ignored: every named graph is merged into one graph, and
the number of named graphs met is counted in the warnings (``NAMED_GRAPHS_WARNING``).
Nothing is ever fetched over the network: pyoxigraph refuses remote JSON-LD contexts by itself,
the rdflib path checks JSON-LD documents before parsing, RDF/XML with a ``<!DOCTYPE>`` is refused
before parsing (no entity expansion, no external entities), URLs are refused as paths, and every
file is parsed under :func:`kgrec.data.safety.network_guard`. Files and literals are capped by
:class:`kgrec.data.safety.Limits`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import os
import re
import warnings as _warnings
from collections import Counter
from itertools import islice
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, Union

from kgrec.data.safety import (READ_STEP, CountingReader, InputGuard, Limits, check_xml_prolog, network_guard,
                               xml_error_line)
from kgrec.data.validation import NAMED_GRAPHS_WARNING
from kgrec.errors import InputLimitError, KgrecError, RDFFormatError, RDFParseError

__all__ = [
    "Literal",
    "Term",
    "Triple",
    "FORMATS",
    "SUFFIXES",
    "ENGINES",
    "RELATIVE_IRI_WARNING",
    "XSD",
    "RDF",
    "is_blank",
    "is_iri",
    "is_url",
    "normalize_format",
    "guess_format",
    "default_base_iri",
    "iter_triples",
    "iter_triple_batches",
    "oxigraph_batches",
    "read_triples",
    "rdf_files",
]

XSD = "http://www.w3.org/2001/XMLSchema#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XSD_STRING = XSD + "string"
RDF_LANGSTRING = RDF + "langString"


class Literal(NamedTuple):
    """An RDF literal.

    ``datatype`` is always set (``xsd:string`` for plain literals, ``rdf:langString`` for
    language-tagged ones, as in RDF 1.1); ``language`` is lower-cased or ``None``.
    """

    value: str
    datatype: str = XSD_STRING
    language: str | None = None


Term = Union[str, Literal]
Triple = tuple[str, str, Term]

#: Canonical format names; the accepted aliases map onto them.
FORMATS: dict[str, str] = {
    "turtle": "turtle", "ttl": "turtle",
    "ntriples": "ntriples", "nt": "ntriples", "n-triples": "ntriples", "nt11": "ntriples",
    "nquads": "nquads", "nq": "nquads", "n-quads": "nquads",
    "trig": "trig",
    "xml": "xml", "rdf/xml": "xml", "rdfxml": "xml", "rdf": "xml", "owl": "xml", "application/rdf+xml": "xml",
    "json-ld": "json-ld", "jsonld": "json-ld", "json": "json-ld",
    "n3": "n3",
}

#: File suffix (after removing a compression suffix) -> canonical format.
SUFFIXES: dict[str, str] = {
    ".ttl": "turtle", ".nt": "ntriples", ".nq": "nquads", ".trig": "trig",
    ".rdf": "xml", ".owl": "xml", ".xml": "xml",
    ".jsonld": "json-ld", ".json": "json-ld", ".n3": "n3",
}

_COMPRESSION = {".gz": gzip.open, ".bz2": bz2.open}
# decompressors over an already open binary stream (whose bytes InputGuard counts)
_DECOMPRESSORS = {".gz": lambda fh: gzip.GzipFile(fileobj=fh, mode="rb"), ".bz2": lambda fh: bz2.BZ2File(fh, "rb")}

ENGINES = ("oxigraph", "rdflib")

#: Triples per list of :func:`iter_triple_batches`. Small on purpose: with the cyclic garbage
#: collector on, lists of 65k triples made a 1.2M-triple parse 1.6x slower (its collections keep
#: traversing the live tuples) where 256-1024 are the fastest (measured, 1 thread).
BATCH_SIZE = 512

#: Key of ``kg.warnings`` counting IRIs that were relative and resolved against the file path.
RELATIVE_IRI_WARNING = "relative IRI resolved against the file location (no @base)"

_RDFLIB_FORMATS = {"turtle": "turtle", "ntriples": "nt", "nquads": "nquads", "trig": "trig",
                   "xml": "xml", "json-ld": "json-ld", "n3": "n3"}


def is_blank(term: Term) -> bool:
    """Whether ``term`` is a blank node (``"_:..."``)."""
    return isinstance(term, str) and term.startswith("_:")


def is_iri(term: Term) -> bool:
    """Whether ``term`` is an IRI (neither a literal nor a blank node)."""
    return type(term) is str and not term.startswith("_:")


_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path) -> bool:
    """Whether ``path`` is a URL string (``http://...``, ``ftp://...``), not a local path."""
    return isinstance(path, str) and bool(_URL_RE.match(path))


def _accepted() -> str:
    names = sorted(set(FORMATS.values()))
    aliases = {c: sorted(a for a, cc in FORMATS.items() if cc == c and a != c) for c in names}
    return ", ".join(f"{c} ({', '.join(aliases[c])})" if aliases[c] else c for c in names)


def normalize_format(format: str) -> str:
    """The canonical name of ``format`` (``"ttl"`` -> ``"turtle"``); raises :class:`RDFFormatError`."""
    key = str(format).strip().lower()
    if key.startswith("."):
        key = key[1:]
    if key not in FORMATS:
        raise RDFFormatError(f"'format' must be one of {_accepted()} (got {format!r})")
    return FORMATS[key]


def _split_suffix(path: Path) -> tuple[str, str | None]:
    """``(format suffix, compression suffix or None)`` of ``path``, both lower-case."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in _COMPRESSION:
        compression = suffixes.pop()
    return (suffixes[-1] if suffixes else ""), compression


def guess_format(path: str | os.PathLike) -> str:
    """The canonical format of ``path`` from its suffix (``x.ttl.gz`` -> ``"turtle"``)."""
    suffix, _ = _split_suffix(Path(path))
    if suffix not in SUFFIXES:
        raise RDFFormatError(
            f"cannot guess the RDF format of '{path}' from its suffix {suffix or '(none)'!r}; "
            f"accepted suffixes: {' '.join(SUFFIXES)} (optionally followed by .gz or .bz2); or name the format: "
            f"'--format F' on the kgrec command line, kgrec.load(..., format=F) in Python, F one of {_accepted()}")
    return SUFFIXES[suffix]


def default_base_iri(path: str | os.PathLike) -> str:
    """The base IRI used for relative IRIs of a file with no ``@base``: its ``file://`` URI."""
    return Path(path).resolve().as_uri()


def rdf_files(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Expand ``paths`` (files and/or directories) into a list of files.

    A directory stands for every file below it with a known RDF suffix, in sorted order.
    Raises :class:`KgrecError` naming a path that does not exist.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in paths:
        if is_url(p):
            raise KgrecError(f"'{p}' is a URL: kgrec reads local files and never fetches anything over the "
                             "network unless asked to: download the file, or call kgrec.load(..., "
                             "allow_network=True)")
        p = Path(p)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and _split_suffix(f)[0] in SUFFIXES)
            if not found:
                raise KgrecError(f"directory '{p}' holds no RDF file (suffixes {' '.join(SUFFIXES)}, "
                                 f"optionally .gz/.bz2)")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise KgrecError(f"RDF file '{p}' does not exist")
    if not files:
        raise KgrecError("'paths' must name at least one RDF file (got an empty list)")
    return files


def _open_binary(path: Path, limits: Limits | None = None, format: str | None = None):
    """``path`` opened for reading bytes, decompressed, and checked against ``limits`` as it is
    read (:class:`~kgrec.data.safety.InputGuard`: decompressed size and expansion ratio, and, for
    the text ``format`` given, line and long-string lengths); ``limits=None``: no checks.
    """
    _, compression = _split_suffix(path)
    if limits is None:
        return open(path, "rb") if compression is None else _COMPRESSION[compression](path, "rb")
    raw = open(path, "rb")
    try:
        if compression is None:
            guard = InputGuard(raw, limits, str(path), format)
        else:
            counted = CountingReader(raw)
            guard = InputGuard(_DECOMPRESSORS[compression](counted), limits, str(path), format,
                               compressed=counted, close_also=counted)
    except BaseException:
        raw.close()
        raise
    return io.BufferedReader(guard, buffer_size=READ_STEP)


def check_file_size(path: Path, limits: Limits) -> None:
    """Raise :class:`InputLimitError` if ``path`` is larger than ``limits.max_file_bytes``."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise InputLimitError(f"the file has {size} bytes, more than max_file_bytes={limits.max_file_bytes}; "
                              "raise the limit (kgrec.load(..., max_file_bytes=N)) if the file is trusted", str(path))


def _too_long(value: str, limits: Limits, path, subject: str, predicate: str) -> InputLimitError:
    return InputLimitError(f"a literal of {len(value)} characters (subject <{subject}>, predicate <{predicate}>) "
                           f"is longer than max_literal_chars={limits.max_literal_chars}; raise the limit "
                           "(kgrec.load(..., max_literal_chars=N)) if the file is trusted", str(path))


_LINE_RE = re.compile(r"line:? (\d+)", re.IGNORECASE)


def _line_of(exc: BaseException) -> int | None:
    line = getattr(exc, "lineno", None)
    if isinstance(line, int) and line > 0:
        return line
    if hasattr(exc, "getLineNumber"):  # xml.sax errors (rdflib's RDF/XML parser)
        try:
            return int(exc.getLineNumber()) or None
        except Exception:
            return None
    m = _LINE_RE.search(str(exc))
    return int(m.group(1)) if m else None


def _check_jsonld_contexts(node, path: Path) -> None:
    """Refuse JSON-LD documents whose ``@context`` would be fetched (rdflib would fetch it)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            for k, v in n.items():
                if k == "@context":
                    ctx = v if isinstance(v, list) else [v]
                    for c in ctx:
                        if isinstance(c, str) or (isinstance(c, dict) and "@import" in c):
                            ref = c if isinstance(c, str) else c["@import"]
                            raise RDFParseError(_remote_context_message(ref), str(path))
                stack.append(v)
        elif isinstance(n, list):
            stack.extend(n)


def _remote_context_message(ref: str | None = None) -> str:
    what = f" {ref!r}" if ref else ""
    return (f"the JSON-LD document refers to a remote @context{what}; kgrec never fetches anything "
            "over the network: inline the context (paste its JSON object into @context)")


def iter_triples(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    engine: str = "oxigraph",
    base_iri: str | None = None,
    warnings: Counter | None = None,
    file_index: int = 0,
    limits: Limits | None = None,
) -> Iterator[Triple]:
    """Stream the triples of one RDF file (quads lose their graph name).

    One triple at a time over :func:`iter_triple_batches` (same arguments, same errors).
    """
    for batch in iter_triple_batches(path, format, engine=engine, base_iri=base_iri, warnings=warnings,
                                     file_index=file_index, limits=limits):
        yield from batch


def iter_triple_batches(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    engine: str = "oxigraph",
    base_iri: str | None = None,
    warnings: Counter | None = None,
    file_index: int = 0,
    limits: Limits | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[list[Triple]]:
    """Stream the triples of one RDF file (quads lose their graph name) as lists of triples.

    Lists of up to ``batch_size`` triples, in file order: a consumer that loops over each list
    pays Python's generator hand-over once per batch instead of once per triple.

    Args:
        path: the file; ``.gz`` / ``.bz2`` files are decompressed on the fly.
        format: a format name or alias (see :data:`FORMATS`); guessed from the suffix if ``None``.
        engine: ``"oxigraph"`` (default, fast) or ``"rdflib"`` (slower; loads the file into
            memory, collapses duplicate triples and normalises literals' lexical forms, e.g.
            ``"01"^^xsd:integer`` -> ``"1"``).
        base_iri: base for relative IRIs; default: the file's ``file://`` URI, and every IRI
            resolved against it is counted in ``warnings`` under :data:`RELATIVE_IRI_WARNING`.
        warnings: a ``Counter`` to count problems into.
        file_index: prefixes blank-node ids (``_:f{file_index}.{id}``) to keep files apart.
        limits: size caps (default :class:`~kgrec.data.safety.Limits`: 2 GiB a file, 1 Mi
            characters a literal, 8 MiB a line, 256 nested XML elements, 200 times expansion),
            checked as the file is read.
        batch_size: triples per list (the last one may be shorter; an empty file gives none).

    Raises:
        KgrecError: the file does not exist, or ``path`` is a URL.
        RDFFormatError: unknown format or suffix, or unknown ``engine``.
        RDFParseError: malformed content, with the file and 1-based line where known; RDF/XML
            with a ``<!DOCTYPE>``.
        InputLimitError: the file, one of its lines or literals, its XML nesting or its
            decompression ratio exceeds ``limits``.
        NetworkAccessError: something tried to reach the network while parsing.
    """
    if is_url(path):
        rdf_files([path])  # raises the URL message
    path = Path(path)
    if not path.is_file():
        raise KgrecError(f"RDF file '{path}' does not exist")
    fmt = normalize_format(format) if format is not None else guess_format(path)
    if engine not in ENGINES:
        raise RDFFormatError(f"'engine' must be one of {', '.join(ENGINES)} (got {engine!r})")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise KgrecError(f"'batch_size' must be a positive integer (got {batch_size!r})")
    relative_prefix = None
    if base_iri is None:
        base_iri = default_base_iri(path)
        # IRIs under the file's own folder can only come from relative references; N-Triples and
        # N-Quads allow absolute IRIs only (the parsers refuse relative ones), so nothing to count
        if fmt not in ("ntriples", "nquads"):
            relative_prefix = base_iri.rsplit("/", 1)[0] + "/"
    if warnings is None:
        warnings = Counter()
    limits = Limits() if limits is None else limits
    check_file_size(path, limits)
    bnode_prefix = f"_:f{file_index}."
    with network_guard(f"parsing '{path}'"):
        if fmt == "xml":
            try:
                with _open_binary(path, limits) as fh:
                    check_xml_prolog(fh, str(path), max_depth=limits.max_xml_depth)
            except (OSError, EOFError) as e:
                raise RDFParseError(f"cannot read the file: {e}", str(path)) from None
        if engine == "oxigraph":
            yield from _oxigraph_batches(path, fmt, base_iri, relative_prefix, warnings, bnode_prefix, limits,
                                         batch_size)
        else:
            rows = _iter_rdflib(path, fmt, base_iri, relative_prefix, warnings, bnode_prefix, limits)
            while batch := list(islice(rows, batch_size)):
                yield batch


def _oxigraph_batches(path, fmt, base_iri, relative_prefix, warnings, bnode_prefix, limits,
                      batch_size) -> Iterator[list[Triple]]:
    import pyoxigraph as ox

    ox_format = {
        "turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES, "nquads": ox.RdfFormat.N_QUADS,
        "trig": ox.RdfFormat.TRIG, "xml": ox.RdfFormat.RDF_XML, "json-ld": ox.RdfFormat.JSON_LD,
        "n3": ox.RdfFormat.N3,
    }[fmt]
    try:
        with _open_binary(path, limits, fmt) as fh:
            yield from oxigraph_batches(ox.parse(fh, ox_format, base_iri=base_iri), str(path), warnings=warnings,
                                        bnode_prefix=bnode_prefix, limits=limits, relative_prefix=relative_prefix,
                                        batch_size=batch_size)
    except SyntaxError as e:
        msg = str(getattr(e, "msg", None) or e)
        if "LoadDocumentCallback" in msg or "remote context" in msg.lower():
            raise RDFParseError(_remote_context_message(), str(path)) from None
        line = _line_of(e)
        if line is None and fmt == "xml":
            with _open_binary(path, limits) as fh:
                line = xml_error_line(fh)
        raise RDFParseError(msg, str(path), line) from None
    except KgrecError:
        raise
    except MemoryError as e:
        if "buffer maximal size" not in str(e):
            raise
        # pyoxigraph's own cap on one token, reached when max_line_bytes is set above it
        raise InputLimitError(f"a token is longer than the RDF parser can hold ({e}); lower max_line_bytes="
                              f"{limits.max_line_bytes} below it to have the line named", str(path)) from None
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as e:
        raise RDFParseError(f"cannot read the file as {fmt}: {e}", str(path)) from None


def oxigraph_batches(
    quads: Iterable,
    source: str,
    *,
    warnings: Counter,
    bnode_prefix: str,
    limits: Limits,
    relative_prefix: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[list[Triple]]:
    """Lists of kgrec triples from pyoxigraph quads (or 4-tuples whose 4th item is ``None``).

    The one conversion of pyoxigraph terms into kgrec's plain terms (see the module docstring),
    shared by the file reader and the triple-store reader (:mod:`kgrec.data.stores`), so a graph
    reads the same from a file and from a store.

    Args:
        quads: ``(subject, predicate, object, graph)`` of pyoxigraph terms, as ``pyoxigraph.parse``
            yields them; ``graph`` is a graph name, ``DefaultGraph`` or ``None``.
        source: the file or store, named in :class:`InputLimitError`.
        warnings: counts named graphs met (:data:`NAMED_GRAPHS_WARNING`), RDF-star triples skipped
            and, with ``relative_prefix``, IRIs resolved against the file location.
        bnode_prefix: prefix of every blank node id (keeps the blank nodes of two sources apart).
        limits: ``max_literal_chars`` is checked on every literal.
        relative_prefix: IRIs starting with it are counted as relative (``None``: not counted).
        batch_size: triples per list.
    """
    import pyoxigraph as ox

    NamedNode, BlankNode, OxLiteral, DefaultGraph = ox.NamedNode, ox.BlankNode, ox.Literal, ox.DefaultGraph
    graphs: set = set()  # the named graphs met (their triples are merged into one graph)
    new_literal = tuple.__new__  # Literal(...) without NamedTuple's Python-level __new__
    n_relative = 0
    # Literal objects repeat a handful of datatypes: reuse one string per datatype
    datatypes: dict = {}
    max_lit = limits.max_literal_chars
    check_relative = relative_prefix is not None
    batch: list[Triple] = []
    add = batch.append
    try:
        for s, p, o, g in quads:
            if g is not None and type(g) is not DefaultGraph:
                graphs.add(g)
            if type(s) is NamedNode:
                s = s.value
                if check_relative and s.startswith(relative_prefix):
                    n_relative += 1
            elif type(s) is BlankNode:
                s = bnode_prefix + s.value
            else:  # RDF-star quoted triple as subject: not a graph node kgrec can use
                warnings["RDF-star quoted triple skipped"] += 1
                continue
            p = p.value
            if check_relative and p.startswith(relative_prefix):
                n_relative += 1
            to = type(o)
            if to is NamedNode:
                o = o.value
                if check_relative and o.startswith(relative_prefix):
                    n_relative += 1
            elif to is OxLiteral:
                dt = o.datatype
                dts = datatypes.get(dt)
                if dts is None:
                    dts = datatypes[dt] = dt.value
                lang = o.language
                v = o.value
                if len(v) > max_lit:
                    raise _too_long(v, limits, source, s, p)
                o = new_literal(Literal, (v, dts, lang.lower() if lang else None))
            elif to is BlankNode:
                o = bnode_prefix + o.value
            else:
                warnings["RDF-star quoted triple skipped"] += 1
                continue
            add((s, p, o))
            if len(batch) == batch_size:
                yield batch
                batch = []
                add = batch.append
        if batch:
            yield batch
    finally:
        if n_relative:
            warnings[RELATIVE_IRI_WARNING] += n_relative
        if graphs:
            warnings[NAMED_GRAPHS_WARNING] += len(graphs)


def _iter_rdflib(path, fmt, base_iri, relative_prefix, warnings, bnode_prefix, limits) -> Iterator[Triple]:
    import rdflib
    from rdflib.term import BNode, URIRef
    from rdflib.term import Literal as RLiteral

    try:
        with _open_binary(path, limits, fmt) as fh:
            data = fh.read()
    except (OSError, EOFError) as e:
        raise RDFParseError(f"cannot read the file: {e}", str(path)) from None
    if fmt == "json-ld":
        try:
            doc = json.loads(data)
        except ValueError as e:
            raise RDFParseError(f"invalid JSON: {e}", str(path), getattr(e, "lineno", None)) from None
        _check_jsonld_contexts(doc, path)
    quads = fmt in ("nquads", "trig")
    g = rdflib.Dataset() if quads else rdflib.Graph()
    try:
        with _warnings.catch_warnings():
            # rdflib's own Dataset.parse calls its deprecated default_context
            _warnings.simplefilter("ignore", DeprecationWarning)
            g.parse(source=io.BytesIO(data), format=_RDFLIB_FORMATS[fmt], publicID=base_iri)
    except KgrecError:
        raise
    except Exception as e:  # rdflib raises many unrelated types for bad syntax
        raise RDFParseError(f"{type(e).__name__}: {e}", str(path), _line_of(e)) from None
    if quads:
        default = rdflib.graph.DATASET_DEFAULT_GRAPH_ID
        named = {getattr(q[3], "identifier", q[3]) for q in g.quads((None, None, None, None))} - {default, None}
        if named:
            warnings[NAMED_GRAPHS_WARNING] += len(named)
    rows = (q[:3] for q in g.quads((None, None, None, None))) if quads else iter(g)
    n_relative = 0

    def conv(t):
        nonlocal n_relative
        if isinstance(t, URIRef):
            s = str(t)
            if relative_prefix is not None and s.startswith(relative_prefix):
                n_relative += 1
            return s
        if isinstance(t, BNode):
            return bnode_prefix + str(t)
        if isinstance(t, RLiteral):
            lang = t.language
            dt = str(t.datatype) if t.datatype is not None else (RDF_LANGSTRING if lang else XSD_STRING)
            return Literal(str(t), dt, lang.lower() if lang else None)
        return None

    try:
        for s, p, o in rows:
            s, p, o = conv(s), conv(p), conv(o)
            if s is None or p is None or o is None:
                warnings["RDF-star quoted triple skipped"] += 1
                continue
            if type(o) is Literal and len(o.value) > limits.max_literal_chars:
                raise _too_long(o.value, limits, path, s, p)
            yield s, p, o
    finally:
        if n_relative:
            warnings[RELATIVE_IRI_WARNING] += n_relative


def read_triples(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    format: str | None = None,
    *,
    engine: str = "oxigraph",
    base_iri: str | None = None,
    warnings: Counter | None = None,
    limits: Limits | None = None,
) -> list[Triple]:
    """All triples of one or more files (or folders) as one list; see :func:`iter_triples`."""
    warnings = Counter() if warnings is None else warnings
    out: list[Triple] = []
    for i, f in enumerate(rdf_files(paths)):
        out.extend(iter_triples(f, format, engine=engine, base_iri=base_iri, warnings=warnings, file_index=i,
                                limits=limits))
    return out
