"""One RDF file to :class:`~kgrec.data.rdfterms.IdTriples`: pyoxigraph's parse, its errors named with
the file and line, and, for a large N-Triples/N-Quads file, its pieces parsed in worker processes.

Every file takes the same steps: :func:`check_source` checks the arguments once, and
:func:`read_piece` parses the file, or a span of it, through :func:`id_batches` (pyoxigraph, then
:func:`kgrec.data.quadids.quad_id_batches`), under the network guard. :func:`read_file` runs one
piece in this process, or, for a line-based uncompressed file over :data:`PARALLEL_MIN_BYTES`, cuts
it at line boundaries (:func:`kgrec.data.rdffiles.line_spans`) into one piece per worker: this
process parses the first piece while the others parse the rest, each returning its own term table
and id array, and :class:`~kgrec.data.rdfterms.Concat` merges them in file order, each as it comes,
by remapping the ids. Since terms are numbered in order of first appearance and the pieces are
concatenated in file order, the merged table equals the one a single pass gives, term for term and
id for id.

Workers are forked (Linux): they start with the parent's modules already imported, where spawned
ones would import torch again, which takes longer than the parse. Each hands its piece back as a
pickle file in a private temporary folder (:func:`_read_piece_to`). A parse error or a limit met in
a piece is raised with the line shifted by the newlines before the piece, so it names the file's
line; pieces are read in order, so the error reported is the first piece's, as in a single pass.
Turtle, TriG, N3, RDF/XML, JSON-LD and compressed files are parsed in one piece.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kgrec.checks import check_int
from kgrec.data.quadids import RELATIVE_IRI_WARNING, quad_id_batches
from kgrec.data.rdffiles import (
    LINE_BASED,
    check_file_size,
    default_base_iri,
    guess_format,
    is_compressed,
    is_url,
    line_spans,
    newlines_before,
    normalize_format,
    open_binary,
    rdf_files,
)
from kgrec.data.rdfterms import Concat, IdTriples, Term, paused_gc
from kgrec.data.safety import Limits, check_xml_prolog, network_guard, xml_error_line
from kgrec.data.validation import NAMED_GRAPHS_WARNING
from kgrec.errors import DataFileError, InputLimitError, KgrecError, RDFParseError

__all__ = ["Source", "check_source", "id_batches", "read_piece", "read_file", "plan_spans", "default_workers",
           "workers_for", "can_fork", "PARALLEL_MIN_BYTES", "RELATIVE_IRI_WARNING"]

#: Files smaller than this are parsed in one process when ``workers`` is not given: below it,
#: the fixed cost of starting a worker, sending its piece back and merging is a large part of
#: what the second core saves.
PARALLEL_MIN_BYTES = 32 * 1024**2


@dataclass(frozen=True)
class Source:
    """One file to parse, its arguments checked (what a worker process is sent)."""

    path: Path
    format: str
    base_iri: str
    relative_prefix: str | None  # IRIs starting with it were relative (counted in the warnings)
    limits: Limits
    bnode_prefix: str  # of every blank node of the file: "_:f{file_index}."


def check_source(path, format, base_iri, limits, file_index: int = 0) -> Source:
    """Check the arguments and the file (it exists, is no URL, is within ``max_file_bytes``)."""
    if is_url(path):
        rdf_files([path])  # raises the URL message
    path = Path(path)
    if not path.is_file():
        raise KgrecError(f"RDF file '{path}' does not exist")
    fmt = normalize_format(format) if format is not None else guess_format(path)
    relative_prefix = None
    if base_iri is None:
        base_iri = default_base_iri(path)
        # IRIs under the file's own folder can only come from relative references; N-Triples and
        # N-Quads allow absolute IRIs only (the parsers refuse relative ones), so nothing to count
        if fmt not in ("ntriples", "nquads"):
            relative_prefix = base_iri.rsplit("/", 1)[0] + "/"
    limits = Limits() if limits is None else limits
    check_file_size(path, limits)
    return Source(path, fmt, base_iri, relative_prefix, limits, f"_:f{file_index}.")


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


def _ox_format(fmt: str):
    import pyoxigraph as ox

    return {
        "turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES, "nquads": ox.RdfFormat.N_QUADS,
        "trig": ox.RdfFormat.TRIG, "xml": ox.RdfFormat.RDF_XML, "json-ld": ox.RdfFormat.JSON_LD,
        "n3": ox.RdfFormat.N3,
    }[fmt]


def id_batches(src: Source, batch_size: int, warnings: Counter, span: tuple[int, int] | None = None,
               graph_names: set | None = None) -> Iterator[tuple[list[Term], np.ndarray]]:
    """The one parser of files: :func:`~kgrec.data.quadids.quad_id_batches` of ``pyoxigraph.parse``
    over the file (or the bytes ``span`` of it), its errors named with the file and (where the
    parser knows it) the line, counted from the start of ``span``.
    """
    import pyoxigraph as ox

    path, fmt, limits = src.path, src.format, src.limits
    try:
        with open_binary(path, limits, fmt, span) as fh:
            yield from quad_id_batches(ox.parse(fh, _ox_format(fmt), base_iri=src.base_iri), str(path),
                                       warnings=warnings, bnode_prefix=src.bnode_prefix, limits=limits,
                                       relative_prefix=src.relative_prefix, named_graphs=fmt in ("nquads", "trig"),
                                       batch_size=batch_size, graph_names=graph_names)
    except SyntaxError as e:
        msg = str(getattr(e, "msg", None) or e)
        if "LoadDocumentCallback" in msg or "remote context" in msg.lower():
            raise RDFParseError(_remote_context_message(), str(path)) from None
        line = _line_of(e)
        if line is None and fmt == "xml":
            with open_binary(path, limits) as fh:
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


def checked_batches(src: Source, batch_size: int, warnings: Counter, span: tuple[int, int] | None = None,
                    graph_names: set | None = None) -> Iterator[tuple[list[Term], np.ndarray]]:
    """:func:`id_batches` under the network guard, an RDF/XML file's prolog checked first."""
    with network_guard(f"parsing '{src.path}'"):
        if src.format == "xml":
            try:
                with open_binary(src.path, src.limits) as fh:
                    check_xml_prolog(fh, str(src.path), max_depth=src.limits.max_xml_depth)
            except (OSError, EOFError) as e:
                raise RDFParseError(f"cannot read the file: {e}", str(src.path)) from None
        yield from id_batches(src, batch_size, warnings, span, graph_names)


def read_piece(src: Source, span: tuple[int, int] | None, batch_size: int) -> tuple[IdTriples, Counter, set]:
    """The file (``span=None``) or one span of it as ``(IdTriples, warnings, named graphs met)``:
    what a worker process sends back, and what this process makes of the first piece.
    """
    warnings: Counter = Counter()
    graphs: set = set()
    idt = IdTriples.from_batches(checked_batches(src, batch_size, warnings, span, graphs))
    return idt, warnings, graphs


def default_workers() -> int:
    """Processes a large line-based file is parsed with by default: 2 when this process may run on
    2 CPUs or more and one of them is idle, else 1.

    Idle means the 1-minute load average (this process included) leaves at least half a CPU
    free. On a busy machine a second worker gains nothing where the scheduler gives each session
    its share of the CPUs (Linux's autogroup), which two processes then split, and the merge is extra
    work; measured there, two workers were slower than one. At most 2 by default (what was
    measured, on 2 CPUs); ``workers=N`` takes more.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average
        load = 0.0
    return workers_for(cpus, load)


def workers_for(cpus: int, load: float) -> int:
    """:func:`default_workers` of ``cpus`` usable CPUs under a 1-minute load average ``load``."""
    return max(1, min(2, cpus, 1 + int(cpus - load + 0.5)))


def can_fork() -> bool:
    """Whether this process may parse in forked workers (Linux, and not itself a daemonic worker)."""
    return (sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon)  # a daemonic process may not have children


def plan_spans(src: Source, workers: int | None) -> list[tuple[int, int] | None]:
    """The pieces :func:`read_file` parses ``src`` in: ``[None]`` (the whole file, in this process),
    or byte spans cut at line boundaries, one per worker.

    ``workers=None``: :func:`default_workers` (2 if a CPU is idle) for an uncompressed
    N-Triples/N-Quads file of at least :data:`PARALLEL_MIN_BYTES`, else 1. A number is used as
    given for such files (capped by their lines); other formats and compressed files are always
    one piece.
    """
    if workers is not None:
        check_int(workers, "workers")
    if src.format not in LINE_BASED or is_compressed(src.path) or not can_fork():
        return [None]
    if workers is None:
        workers = default_workers() if src.path.stat().st_size >= PARALLEL_MIN_BYTES else 1
    if workers == 1:
        return [None]
    spans = line_spans(src.path, workers, src.limits.max_line_bytes)
    return spans if len(spans) > 1 else [None]


_LINE_IN_MESSAGE = re.compile(r"(\bline:? )(\d+)", re.IGNORECASE)


def _in_file_lines(e: DataFileError, src: Source, span: tuple[int, int] | None) -> DataFileError:
    """``e`` of a piece with its line (and the lines its message names) counted from the file's start."""
    if span is None or span[0] == 0 or e.line is None:
        return e
    shift = newlines_before(src.path, span[0])
    message = _LINE_IN_MESSAGE.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + shift}", e.message)
    return type(e)(message, e.path, e.line + shift)


def _read_piece_to(path: str, src: Source, span: tuple[int, int], batch_size: int) -> str:
    """:func:`read_piece` in a worker process, its result pickled to ``path`` (in a private
    temporary folder). A file is written and read back in one call each, where the pool's pipe
    would pass the tens of MiB in 64 KiB turns, each waiting for the other process to be scheduled:
    on a busy machine those turns cost seconds.
    """
    part = read_piece(src, span, batch_size)
    with open(path, "wb") as fh:
        pickle.dump(part, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _pieces(src: Source, spans: list, batch_size: int) -> Iterator[tuple[IdTriples, Counter, set]]:
    """Every piece in file order: the first parsed in this process, and handed on (to be merged)
    while forked workers still parse the others.
    """
    ctx = multiprocessing.get_context("fork")
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # memory, not disk, where there is one
    with tempfile.TemporaryDirectory(prefix="kgrec-pieces-", dir=shm) as tmp, \
            ProcessPoolExecutor(max_workers=len(spans) - 1, mp_context=ctx) as pool:
        futures = [pool.submit(_read_piece_to, os.path.join(tmp, f"{k}.pickle"), src, span, batch_size)
                   for k, span in enumerate(spans[1:], 1)]
        try:
            for k, span in enumerate(spans):
                try:
                    if k == 0:
                        part = read_piece(src, span, batch_size)
                    else:
                        done = futures[k - 1].result()
                        with open(done, "rb") as fh:
                            part = pickle.load(fh)  # written by our own worker, just now
                        os.unlink(done)  # its memory back before the next piece is read
                except DataFileError as e:
                    raise _in_file_lines(e, src, span) from None
                yield part
        finally:  # an error, or the consumer stopped: the pieces not started are not parsed
            for f in futures:
                f.cancel()


def read_file(src: Source, *, warnings: Counter, batch_size: int, workers: int | None = None) -> IdTriples:
    """``src`` as :class:`IdTriples`, in one piece or several (:func:`plan_spans`), the same either way."""
    spans = plan_spans(src, workers)
    if len(spans) == 1:
        idt, counts, graphs = read_piece(src, spans[0], batch_size)
    else:
        merged, counts, graphs = Concat(), Counter(), set()
        with paused_gc():  # unpickling a piece makes as many objects as parsing it
            for part, w, g in _pieces(src, spans, batch_size):
                merged.add(part)
                counts.update(w)
                graphs |= g
        idt = merged.result()
    warnings.update(counts)
    if graphs:
        warnings[NAMED_GRAPHS_WARNING] += len(graphs)
    return idt
