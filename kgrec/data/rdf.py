"""Reading RDF files: the one parser behind ``kgrec.load``, and plain-Python triples.

Every format is parsed by pyoxigraph (Rust): N-Triples, N-Quads, Turtle, TriG, N3, RDF/XML and
JSON-LD, with the file and line of a syntax error. :func:`read_ids` turns a file into
:class:`IdTriples`: an ``(n, 3)`` integer array over a table of distinct terms. Per triple,
Python only takes a string key per term (the IRI, or a literal's N-Triples spelling); batches of
keys are numbered by C-level dictionary calls, and only the distinct terms are ever decoded into
kgrec terms. Extraction (:mod:`kgrec.data.extract`) reads the integer columns, so no per-triple
tuple is ever built.

Terms are plain Python, so that the extraction step never touches ``pyoxigraph`` objects:

* an IRI is a ``str`` holding the absolute IRI;
* a blank node is a ``str`` starting with ``"_:"`` (no absolute IRI can start that way, since a
  scheme starts with a letter); its id is prefixed with the file's index so that ``_:b1`` of
  two different files never merge;
* a literal is a :class:`Literal` named tuple ``(value, datatype, language)``.

Quads are read too; their graph name is ignored: every named graph is merged into one graph, and
the number of named graphs met is counted in the warnings (``NAMED_GRAPHS_WARNING``). RDF 1.2
triple terms are skipped and counted.
Nothing is ever fetched over the network: pyoxigraph refuses remote JSON-LD contexts by itself,
RDF/XML with a ``<!DOCTYPE>`` is refused before parsing (no entity expansion, no external
entities), URLs are refused as paths, and every file is parsed under
:func:`kgrec.data.safety.network_guard`. Files, lines and literals are capped by
:class:`kgrec.data.safety.Limits` while the bytes are read and the terms decoded.
"""

from __future__ import annotations

import bz2
import gc
import gzip
import io
import os
import re
import warnings as _warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, count, filterfalse, islice
from operator import methodcaller
from pathlib import Path
from typing import NamedTuple, Union

import numpy as np

from kgrec.data.safety import (
    READ_STEP,
    CountingReader,
    InputGuard,
    Limits,
    check_xml_prolog,
    network_guard,
    xml_error_line,
)
from kgrec.data.validation import NAMED_GRAPHS_WARNING
from kgrec.errors import InputLimitError, KgrecError, RDFFormatError, RDFParseError

__all__ = [
    "Literal",
    "Term",
    "Triple",
    "FORMATS",
    "SUFFIXES",
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
    "read_triples",
    "read_ids",
    "read_quads",
    "quad_id_batches",
    "IdTriples",
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

#: Triples per list of :func:`iter_triple_batches`. Small on purpose: with the cyclic garbage
#: collector on, long lists of live tuples keep being traversed by its collections.
BATCH_SIZE = 512
#: Triples numbered at a time by :func:`read_ids`: the dictionary calls run over one batch of
#: keys in C; a batch's keys are dropped once numbered.
ID_BATCH = 8192

#: Key of ``kg.warnings`` counting IRIs that were relative and resolved against the file path.
RELATIVE_IRI_WARNING = "relative IRI resolved against the file location (no @base)"


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


def _too_long(value: str, limits: Limits, path: Path, subject: str, predicate: str) -> InputLimitError:
    return InputLimitError(f"a literal of {len(value)} characters (subject <{subject}>, predicate <{predicate}>) "
                           f"is longer than max_literal_chars={limits.max_literal_chars}; raise the limit "
                           "(kgrec.load(..., max_literal_chars=N)) if the file is trusted", str(path))


_LINE_RE = re.compile(r"line:? (\d+)", re.IGNORECASE)


def _line_of(exc: BaseException) -> int | None:
    line = getattr(exc, "lineno", None)
    if isinstance(line, int) and line > 0:
        return line
    m = _LINE_RE.search(str(exc))
    return int(m.group(1)) if m else None


def _remote_context_message() -> str:
    return ("the JSON-LD document refers to a remote @context; kgrec never fetches anything "
            "over the network: inline the context (paste its JSON object into @context)")


@contextmanager
def paused_gc():
    """The cyclic garbage collector off for the block (and back on after, if it was on).

    Parsing and graph building create hundreds of thousands of objects, none of them in a
    cycle; with the collector on, its collections keep traversing them as they are made.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Numbering:
    """Keys -> consecutive ids ``0, 1, 2...``, one batch of keys at a time, in order of first
    appearance. The dictionary work runs in C (``dict.fromkeys``, ``filterfalse``, ``map``): no
    Python bytecode runs per key. ``None`` is numbered ``-1``.
    """

    def __init__(self):
        self.ids: dict = {None: -1}
        self.n = 0

    def number(self, keys: list) -> tuple[list, np.ndarray]:
        """``(the keys never seen before, in order; the id of every key)``."""
        ids = self.ids
        new = list(filterfalse(ids.__contains__, dict.fromkeys(keys)))
        if new:
            ids.update(zip(new, count(self.n)))
            self.n += len(new)
        return new, np.fromiter(map(ids.__getitem__, keys), dtype=np.int64, count=len(keys))


class IdTriples:
    """Triples as integer ids into one term table: what :func:`read_ids` gives and what
    :func:`kgrec.data.extract.build_graph_ids` reads.

    Attributes:
        terms: id -> term (``str`` IRI, ``"_:f{file}.{label}"`` blank node, or :class:`Literal`);
            every term appears once.
        triples: ``(n, 3)`` int64 array of (subject, predicate, object) ids, in file order,
            duplicates kept (``kgrec.load`` collapses and counts them).
    """

    __slots__ = ("terms", "triples")

    def __init__(self, terms: list[Term], triples: np.ndarray):
        self.terms = terms
        self.triples = triples

    def __len__(self) -> int:
        return int(self.triples.shape[0])

    def iris_starting_with(self, prefixes: tuple[str, ...]) -> list[int]:
        """Ids of the IRI terms that start with one of ``prefixes`` (C-level ``map`` calls)."""
        terms = self.terms
        ids = np.flatnonzero(np.fromiter(map(str.__instancecheck__, terms), dtype=bool, count=len(terms)))
        hit = np.fromiter(map(methodcaller("startswith", prefixes), map(terms.__getitem__, ids.tolist())),
                          dtype=bool, count=len(ids))
        return ids[hit].tolist()

    def decoded(self) -> list[Triple]:
        """The triples as kgrec terms (what :func:`read_triples` gives)."""
        t = self.terms
        return [(t[s], t[p], t[o]) for s, p, o in self.triples.tolist()]

    @classmethod
    def from_triples(cls, batches: Iterable[Iterable[Triple]]) -> IdTriples:
        """Number plain triples (an iterable of iterables of ``(s, p, o)``: lists from
        :func:`iter_triple_batches`, rows of another source): equal terms get one id.
        """
        numbering = _Numbering()
        terms: list[Term] = []
        parts = []
        with paused_gc():
            for batch in batches:
                keys = list(chain.from_iterable(batch))
                if len(keys) % 3:
                    raise KgrecError("every triple must have three terms (subject, predicate, object)")
                new, ids = numbering.number(keys)
                terms.extend(new)
                parts.append(ids)
        triples = np.concatenate(parts).reshape(-1, 3) if parts else np.empty((0, 3), dtype=np.int64)
        return cls(terms, triples)

    @classmethod
    def concat(cls, parts: Sequence[IdTriples]) -> IdTriples:
        """One table for several files' triples (in order): equal terms get the first one's id."""
        if len(parts) == 1:
            return parts[0]
        numbering = _Numbering()
        terms: list[Term] = []
        arrays = []
        for part in parts:
            new, remap = numbering.number(part.terms)
            terms.extend(new)
            arrays.append(remap[part.triples])
        return cls(terms, np.concatenate(arrays) if arrays else np.empty((0, 3), dtype=np.int64))


def _engine_ignored(engine: str | None) -> None:
    """The ``engine`` argument, deprecated: every file is parsed by pyoxigraph."""
    if engine is None:
        return
    if engine not in ("oxigraph", "rdflib"):
        raise RDFFormatError(f"'engine' must be one of oxigraph, rdflib (got {engine!r})")
    _warnings.warn("the 'engine' argument is deprecated and ignored (it goes in the next release): every file "
                   "is parsed by pyoxigraph", DeprecationWarning, stacklevel=3)


def _source(path, format, base_iri, limits, batch_size):
    """Check the arguments and the file: ``(path, format, base IRI, relative prefix, limits)``."""
    if is_url(path):
        rdf_files([path])  # raises the URL message
    path = Path(path)
    if not path.is_file():
        raise KgrecError(f"RDF file '{path}' does not exist")
    fmt = normalize_format(format) if format is not None else guess_format(path)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise KgrecError(f"'batch_size' must be a positive integer (got {batch_size!r})")
    relative_prefix = None
    if base_iri is None:
        base_iri = default_base_iri(path)
        # IRIs under the file's own folder can only come from relative references; N-Triples and
        # N-Quads allow absolute IRIs only (the parsers refuse relative ones), so nothing to count
        if fmt not in ("ntriples", "nquads"):
            relative_prefix = base_iri.rsplit("/", 1)[0] + "/"
    limits = Limits() if limits is None else limits
    check_file_size(path, limits)
    return path, fmt, base_iri, relative_prefix, limits


def _id_batches(path: Path, fmt: str, base_iri: str, relative_prefix: str | None, warnings: Counter,
                bnode_prefix: str, limits: Limits, batch_size: int) -> Iterator[tuple[list[Term], np.ndarray]]:
    """The one parser of files: :func:`quad_id_batches` of ``pyoxigraph.parse``, its errors named with the
    file and (where the parser knows it) the line.
    """
    import pyoxigraph as ox

    ox_format = {
        "turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES, "nquads": ox.RdfFormat.N_QUADS,
        "trig": ox.RdfFormat.TRIG, "xml": ox.RdfFormat.RDF_XML, "json-ld": ox.RdfFormat.JSON_LD,
        "n3": ox.RdfFormat.N3,
    }[fmt]
    try:
        with _open_binary(path, limits, fmt) as fh:
            yield from quad_id_batches(ox.parse(fh, ox_format, base_iri=base_iri), str(path), warnings=warnings,
                                       bnode_prefix=bnode_prefix, limits=limits, relative_prefix=relative_prefix,
                                       named_graphs=fmt in ("nquads", "trig"), batch_size=batch_size)
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


def quad_id_batches(quads: Iterable, source: str, *, warnings: Counter, bnode_prefix: str, limits: Limits,
                    relative_prefix: str | None = None, named_graphs: bool = True,
                    batch_size: int = ID_BATCH) -> Iterator[tuple[list[Term], np.ndarray]]:
    """The one conversion of pyoxigraph terms: ``(new terms, (k, 3) ids)`` per batch of up to
    ``batch_size`` of ``quads``, for files (:func:`read_ids`) and triple stores
    (:mod:`kgrec.data.stores`) alike, so a graph reads the same from either.

    A batch's ids index the terms of every batch so far, each batch's new terms appended in
    order. Per triple, Python only picks a key per term: the IRI string, ``{bnode_prefix}{label}``
    for a blank node, a literal's N-Triples spelling (``"v"@en``: it starts with a quote, so it
    is never an IRI's or a blank node's key), ``None`` for an RDF 1.2 triple term;
    :class:`_Numbering` numbers the batch's keys, and only new literals are decoded (and checked
    against ``limits.max_literal_chars``, before the next batch is read).

    Args:
        quads: ``(subject, predicate, object, graph)`` of pyoxigraph terms as ``pyoxigraph.parse``
            or a store yields them; ``graph`` a graph name, ``DefaultGraph`` or ``None``.
        source: the file or store, named in errors.
        warnings: counts RDF 1.2 triple terms skipped, named graphs met (``named_graphs``) and IRIs
            starting with ``relative_prefix`` (resolved against a file's location).
        bnode_prefix: prefix of every blank node id (keeps the blank nodes of two sources apart).
        limits: ``max_literal_chars`` is checked on every new literal.
    """
    import pyoxigraph as ox

    NamedNode, BlankNode, OxLiteral, DefaultGraph = ox.NamedNode, ox.BlankNode, ox.Literal, ox.DefaultGraph
    graphs: set = set()  # the named graphs met (their triples are merged into one graph)
    numbering = _Numbering()
    terms: list[Term] = []
    relative: list[int] = []  # ids of the IRIs resolved against the file's location
    n_relative = n_quoted = 0
    suffixes: dict = {}  # a literal spelling's end -> (datatype, language)
    new_literal = tuple.__new__  # Literal(...) without NamedTuple's Python-level __new__
    max_lit = limits.max_literal_chars
    quads = iter(quads)
    try:
        while True:
            keys: list = []
            add = keys.append
            literals: dict = {}  # N-Triples spelling -> pyoxigraph literal, this batch
            for s, p, o, g in islice(quads, batch_size):
                if named_graphs and g is not None and type(g) is not DefaultGraph:
                    graphs.add(g)
                ts = type(s)
                if ts is NamedNode:
                    add(s.value)
                elif ts is BlankNode:
                    add(bnode_prefix + s.value)
                else:
                    add(None)
                add(p.value)
                to = type(o)
                if to is NamedNode:
                    add(o.value)
                elif to is OxLiteral:
                    # its spelling: a str, whose hash is kept, where the literal's is not
                    key = str(o)
                    literals[key] = o
                    add(key)
                elif to is BlankNode:
                    add(bnode_prefix + o.value)
                else:
                    add(None)
            if not keys:
                break
            new, ids = numbering.number(keys)
            ids = ids.reshape(-1, 3)
            too_long = []
            first = len(terms)
            for k, key in enumerate(new):
                lit = literals.get(key)
                if lit is not None:
                    # what follows the closing quote ('', '@en', '^^<...>') gives the datatype
                    # and language: read from the first literal spelled with it
                    suffix = key[key.rfind('"') + 1:]
                    dt_lang = suffixes.get(suffix)
                    if dt_lang is None:
                        lang = lit.language
                        dt_lang = suffixes[suffix] = (lit.datatype.value, lang.lower() if lang else None)
                    value = lit.value
                    new[k] = new_literal(Literal, (value, *dt_lang))
                    if len(value) > max_lit:
                        too_long.append(first + k)
                elif relative_prefix is not None and key.startswith(relative_prefix):
                    relative.append(first + k)
            terms.extend(new)
            quoted = (ids[:, 0] < 0) | (ids[:, 2] < 0)
            if quoted.any():  # a triple term as subject or object: not a graph node kgrec can use
                n_quoted += int(quoted.sum())
                ids = ids[~quoted]
            if too_long:
                hit = np.flatnonzero(np.isin(ids[:, 2], too_long))
                if len(hit):
                    s, p, o = ids[hit[0]].tolist()
                    raise _too_long(terms[o].value, limits, source, terms[s], terms[p])
            if relative:
                n_relative += int(np.isin(ids, relative).sum())
            yield new, ids
    finally:
        if n_quoted:
            warnings["RDF-star quoted triple skipped"] += n_quoted
        if n_relative:
            warnings[RELATIVE_IRI_WARNING] += n_relative
        if graphs:
            warnings[NAMED_GRAPHS_WARNING] += len(graphs)


def _parsed(path, format, base_iri, warnings, file_index, limits, batch_size):
    """:func:`_id_batches` of one file, its arguments checked, under the network guard."""
    path, fmt, base_iri, relative_prefix, limits = _source(path, format, base_iri, limits, batch_size)
    warnings = Counter() if warnings is None else warnings
    with network_guard(f"parsing '{path}'"):
        if fmt == "xml":
            try:
                with _open_binary(path, limits) as fh:
                    check_xml_prolog(fh, str(path), max_depth=limits.max_xml_depth)
            except (OSError, EOFError) as e:
                raise RDFParseError(f"cannot read the file: {e}", str(path)) from None
        yield from _id_batches(path, fmt, base_iri, relative_prefix, warnings, f"_:f{file_index}.", limits,
                               batch_size)


def read_ids(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    base_iri: str | None = None,
    warnings: Counter | None = None,
    file_index: int = 0,
    limits: Limits | None = None,
) -> IdTriples:
    """Parse one RDF file into :class:`IdTriples` (the path ``kgrec.load`` takes).

    Args:
        path: the file; ``.gz`` / ``.bz2`` files are decompressed on the fly.
        format: a format name or alias (see :data:`FORMATS`); guessed from the suffix if ``None``.
        base_iri: base for relative IRIs; default: the file's ``file://`` URI, and every IRI
            resolved against it is counted in ``warnings`` under :data:`RELATIVE_IRI_WARNING`.
        warnings: a ``Counter`` to count problems into (RDF 1.2 triple terms skipped, named
            graphs merged, relative IRIs).
        file_index: prefixes blank-node ids (``_:f{file_index}.{id}``) to keep files apart.
        limits: size caps (default :class:`~kgrec.data.safety.Limits`: 2 GiB a file, 1 Mi
            characters a literal, 8 MiB a line, 256 nested XML elements, 200 times expansion),
            checked as the file is read.

    Raises:
        KgrecError: the file does not exist, or ``path`` is a URL.
        RDFFormatError: unknown format or suffix.
        RDFParseError: malformed content, with the file and 1-based line where known; RDF/XML
            with a ``<!DOCTYPE>``.
        InputLimitError: the file, one of its lines or literals, its XML nesting or its
            decompression ratio exceeds ``limits``.
        NetworkAccessError: something tried to reach the network while parsing.
    """
    terms: list[Term] = []
    parts = []
    with paused_gc():
        for new, ids in _parsed(path, format, base_iri, warnings, file_index, limits, ID_BATCH):
            terms.extend(new)
            parts.append(ids)
    return IdTriples(terms, np.concatenate(parts) if parts else np.empty((0, 3), dtype=np.int64))


def read_quads(quads: Iterable, source: str, *, warnings: Counter | None = None, bnode_prefix: str = "_:s0.",
               limits: Limits | None = None) -> IdTriples:
    """:class:`IdTriples` of pyoxigraph quads that come from elsewhere than a file (a triple store:
    :mod:`kgrec.data.stores`), through the files' own conversion (:func:`quad_id_batches`).
    """
    terms: list[Term] = []
    parts = []
    with paused_gc():
        for new, ids in quad_id_batches(quads, source, warnings=Counter() if warnings is None else warnings,
                                        bnode_prefix=bnode_prefix, limits=Limits() if limits is None else limits):
            terms.extend(new)
            parts.append(ids)
    return IdTriples(terms, np.concatenate(parts) if parts else np.empty((0, 3), dtype=np.int64))


def iter_triples(path: str | os.PathLike, format: str | None = None, **options) -> Iterator[Triple]:
    """Stream the triples of one RDF file (quads lose their graph name), one at a time.

    The keyword ``options`` and the errors are those of :func:`iter_triple_batches`.
    """
    for batch in iter_triple_batches(path, format, **options):
        yield from batch


def iter_triple_batches(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    engine: str | None = None,
    base_iri: str | None = None,
    warnings: Counter | None = None,
    file_index: int = 0,
    limits: Limits | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[list[Triple]]:
    """Stream the triples of one RDF file as lists of plain-Python triples, in file order.

    The same parse as :func:`read_ids` (same arguments, warnings and errors), each batch's ids
    looked up in the term table as it comes: for reading a file triple by triple; ``kgrec.load``
    keeps the ids instead. ``engine`` is deprecated and ignored. Lists of up to ``batch_size``
    triples (the last one may be shorter; an empty file gives none).
    """
    _engine_ignored(engine)
    terms: list[Term] = []
    for new, ids in _parsed(path, format, base_iri, warnings, file_index, limits, batch_size):
        terms.extend(new)
        t = terms
        batch = [(t[s], t[p], t[o]) for s, p, o in ids.tolist()]
        if batch:
            yield batch


def read_triples(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    format: str | None = None,
    *,
    engine: str | None = None,
    base_iri: str | None = None,
    warnings: Counter | None = None,
    limits: Limits | None = None,
) -> list[Triple]:
    """All triples of one or more files (or folders) as one list; see :func:`iter_triples`."""
    _engine_ignored(engine)
    warnings = Counter() if warnings is None else warnings
    out: list[Triple] = []
    for i, f in enumerate(rdf_files(paths)):
        out.extend(read_ids(f, format, base_iri=base_iri, warnings=warnings, file_index=i, limits=limits).decoded())
    return out
