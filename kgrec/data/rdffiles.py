r"""RDF files: their format names and suffixes, finding them, opening them checked, and cutting a
line-based one into pieces at line boundaries.

A piece is a byte span ``(start, end)`` of an uncompressed N-Triples or N-Quads file: both
formats hold one statement per line (a literal cannot hold a raw newline, and pyoxigraph refuses
a line break inside a statement), so a span that starts after a ``\n`` and ends after one holds
whole statements, and its lines are the file's lines shifted by the newlines before it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import re
from collections.abc import Iterable
from pathlib import Path

from kgrec.data.safety import READ_STEP, CountingReader, InputGuard, Limits
from kgrec.errors import InputLimitError, KgrecError, RDFFormatError

__all__ = ["FORMATS", "SUFFIXES", "LINE_BASED", "is_url", "normalize_format", "guess_format", "default_base_iri",
           "rdf_files", "open_binary", "check_file_size", "line_spans", "newlines_before", "is_compressed"]

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

#: Formats with one statement per line: a file of them may be parsed in pieces.
LINE_BASED = frozenset({"ntriples", "nquads"})

_COMPRESSION = {".gz": gzip.open, ".bz2": bz2.open}
# decompressors over an already open binary stream (whose bytes InputGuard counts)
_DECOMPRESSORS = {".gz": lambda fh: gzip.GzipFile(fileobj=fh, mode="rb"), ".bz2": lambda fh: bz2.BZ2File(fh, "rb")}

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


def is_compressed(path: Path) -> bool:
    """Whether ``path`` ends in a compression suffix (``.gz``, ``.bz2``)."""
    return _split_suffix(path)[1] is not None


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


class _Span(io.RawIOBase):
    """The bytes ``[start, end)`` of an open file, read as a stream of their own."""

    def __init__(self, raw, start: int, end: int):
        super().__init__()
        raw.seek(start)
        self.raw, self.left = raw, end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buf)
        n = self.raw.readinto(view[:self.left] if len(view) > self.left else view) or 0
        self.left -= n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def open_binary(path: Path, limits: Limits | None = None, format: str | None = None,
                span: tuple[int, int] | None = None):
    """``path`` opened for reading bytes, decompressed, and checked against ``limits`` as it is
    read (:class:`~kgrec.data.safety.InputGuard`: decompressed size and expansion ratio, and, for
    the text ``format`` given, line and long-string lengths); ``limits=None``: no checks.
    ``span``: only the bytes ``[start, end)`` of an uncompressed file (lines counted from the span).
    """
    _, compression = _split_suffix(path)
    if limits is None:
        return open(path, "rb") if compression is None else _COMPRESSION[compression](path, "rb")
    raw = open(path, "rb")
    try:
        if span is not None:
            guard = InputGuard(_Span(raw, *span), limits, str(path), format)
        elif compression is None:
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


def _line_end(fh, pos: int, size: int, limit: int) -> int | None:
    r"""The offset just after the first ``\n`` at or after ``pos`` (``size`` at the end of the file),
    or ``None`` if no newline comes within ``limit`` bytes (an over-long line: no cut there).
    """
    fh.seek(pos)
    seen = 0
    while seen <= limit:
        block = fh.read(min(1 << 16, limit + 1 - seen))
        if not block:
            return size
        nl = block.find(b"\n")
        if nl >= 0:
            return pos + seen + nl + 1
        seen += len(block)
    return None


def line_spans(path: Path, pieces: int, max_line_bytes: int) -> list[tuple[int, int]]:
    """Cut the uncompressed file ``path`` into up to ``pieces`` byte spans of about equal size,
    each ending just after a newline (or at the end of the file); empty spans are dropped, so a
    small file may give fewer. A cut that would fall inside a line longer than ``max_line_bytes``
    is not made (that line's piece reports it, as a single pass would).
    """
    size = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as fh:
        for k in range(1, pieces):
            end = _line_end(fh, max(cuts[-1], size * k // pieces), size, max_line_bytes)
            if end is not None and cuts[-1] < end < size:
                cuts.append(end)
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def newlines_before(path: Path, offset: int) -> int:
    r"""The number of ``\n`` bytes in ``path`` before byte ``offset``."""
    n = 0
    with open(path, "rb") as fh:
        while offset > 0:
            block = fh.read(min(READ_STEP, offset))
            if not block:
                break
            n += block.count(b"\n")
            offset -= len(block)
    return n
