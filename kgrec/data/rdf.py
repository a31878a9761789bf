"""Reading RDF files: the one parser behind ``kgrec.load``, and plain-Python triples.

Every format is parsed by pyoxigraph (Rust): N-Triples, N-Quads, Turtle, TriG, N3, RDF/XML and
JSON-LD, with the file and line of a syntax error. :func:`read_ids` turns a file into
:class:`IdTriples`: an ``(n, 3)`` integer array over a table of distinct terms. Per triple,
Python only takes a string key per term (the IRI, or a literal's N-Triples spelling); batches of
keys are numbered by C-level dictionary calls, and only the distinct terms are ever decoded into
kgrec terms (:mod:`kgrec.data.quadids`). Extraction (:mod:`kgrec.data.extract`) reads the integer
columns, so no per-triple tuple is ever built. A large N-Triples or N-Quads file is parsed in
pieces by worker processes and the pieces merged, with the same result (:mod:`kgrec.data.rdfparse`).

The work is split by concern: :mod:`kgrec.data.rdfterms` (terms, :class:`IdTriples`, the
numbering), :mod:`kgrec.data.rdffiles` (formats, paths, opening, cutting at line boundaries),
:mod:`kgrec.data.quadids` (pyoxigraph terms to ids), :mod:`kgrec.data.rdfparse` (one file to ids,
errors, worker processes); this module holds the readers and names what the others define.

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

import os
import warnings as _warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from kgrec.checks import check_int
from kgrec.data.quadids import ID_BATCH, RELATIVE_IRI_WARNING, quad_id_batches
from kgrec.data.rdffiles import (
    FORMATS,
    SUFFIXES,
    check_file_size,
    default_base_iri,
    guess_format,
    is_url,
    normalize_format,
    rdf_files,
)
from kgrec.data.rdfparse import check_source, checked_batches, read_file
from kgrec.data.rdfterms import (
    RDF,
    RDF_LANGSTRING,
    XSD,
    XSD_STRING,
    IdTriples,
    Literal,
    Term,
    Triple,
    is_blank,
    is_iri,
    paused_gc,
)
from kgrec.data.safety import Limits
from kgrec.errors import RDFFormatError

__all__ = [
    "Literal",
    "Term",
    "Triple",
    "FORMATS",
    "SUFFIXES",
    "RELATIVE_IRI_WARNING",
    "XSD",
    "RDF",
    "XSD_STRING",
    "RDF_LANGSTRING",
    "ID_BATCH",
    "BATCH_SIZE",
    "is_blank",
    "is_iri",
    "is_url",
    "normalize_format",
    "guess_format",
    "default_base_iri",
    "check_file_size",
    "paused_gc",
    "iter_triples",
    "iter_triple_batches",
    "read_triples",
    "read_ids",
    "read_quads",
    "quad_id_batches",
    "IdTriples",
    "rdf_files",
]

#: Triples per list of :func:`iter_triple_batches`. Small on purpose: with the cyclic garbage
#: collector on, long lists of live tuples keep being traversed by its collections.
BATCH_SIZE = 512


def _engine_ignored(engine: str | None) -> None:
    """The ``engine`` argument, deprecated: every file is parsed by pyoxigraph."""
    if engine is None:
        return
    if engine not in ("oxigraph", "rdflib"):
        raise RDFFormatError(f"'engine' must be one of oxigraph, rdflib (got {engine!r})")
    _warnings.warn("the 'engine' argument is deprecated and ignored (it goes in the next release): every file "
                   "is parsed by pyoxigraph", DeprecationWarning, stacklevel=3)


def read_ids(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    base_iri: str | None = None,
    warnings: Counter | None = None,
    file_index: int = 0,
    limits: Limits | None = None,
    workers: int | None = None,
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
        workers: processes that parse an uncompressed N-Triples / N-Quads file, each a piece cut
            at line boundaries (Linux; other formats and compressed files take one). ``None``: 2
            for a file of at least :data:`kgrec.data.rdfparse.PARALLEL_MIN_BYTES` when a CPU is
            idle (:func:`kgrec.data.rdfparse.default_workers`), else 1.
            The result is the same for any number.

    Raises:
        KgrecError: the file does not exist, ``path`` is a URL, or ``workers`` is not a positive
            integer.
        RDFFormatError: unknown format or suffix.
        RDFParseError: malformed content, with the file and 1-based line where known; RDF/XML
            with a ``<!DOCTYPE>``.
        InputLimitError: the file, one of its lines or literals, its XML nesting or its
            decompression ratio exceeds ``limits``.
        NetworkAccessError: something tried to reach the network while parsing.
    """
    src = check_source(path, format, base_iri, limits, file_index)
    return read_file(src, warnings=Counter() if warnings is None else warnings, batch_size=ID_BATCH,
                     workers=workers)


def read_quads(quads: Iterable, source: str, *, warnings: Counter | None = None, bnode_prefix: str = "_:s0.",
               limits: Limits | None = None) -> IdTriples:
    """:class:`IdTriples` of pyoxigraph quads that come from elsewhere than a file (a triple store:
    :mod:`kgrec.data.stores`), through the files' own conversion (:func:`quad_id_batches`).
    """
    return IdTriples.from_batches(quad_id_batches(quads, source, warnings=Counter() if warnings is None else warnings,
                                                  bnode_prefix=bnode_prefix,
                                                  limits=Limits() if limits is None else limits))


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

    The same parse as :func:`read_ids` (same arguments, warnings and errors), in this process,
    each batch's ids looked up in the term table as it comes: for reading a file triple by triple;
    ``kgrec.load`` keeps the ids instead. ``engine`` is deprecated and ignored. Lists of up to
    ``batch_size`` triples (the last one may be shorter; an empty file gives none).
    """
    _engine_ignored(engine)
    src = check_source(path, format, base_iri, limits, file_index)
    check_int(batch_size, "batch_size")
    terms: list[Term] = []
    for new, ids in checked_batches(src, batch_size, Counter() if warnings is None else warnings):
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
