r"""Guards for reading files written by others: size limits, no XML DTDs, no network while parsing.

Every guard acts on the bytes while they are read, so that a hostile file is refused within
seconds and before anything large is built in memory:

* :class:`Limits` holds the caps, one field per ``kgrec.load(...)`` keyword and CLI flag;
* :class:`InputGuard` wraps the (decompressed) byte stream every parser reads from and checks,
  chunk by chunk:

  - ``max_file_bytes``: the bytes read so far (after decompression);
  - ``max_expansion_ratio``: for a compressed file, decompressed bytes over the compressed bytes
    consumed so far, once more than :data:`EXPANSION_FLOOR` bytes came out (a bomb is refused
    after that much work, however large it would grow; small repetitive files are never refused);
  - ``max_line_bytes``, for text formats (N-Triples, N-Quads, Turtle, TriG, N3): the bytes of one
    line, that is, between two newlines. An N-Triples/N-Quads literal cannot hold a raw newline
    and Turtle's short strings cannot either, so bounding the line bounds every such literal
    before the parser holds it whole; the check costs one ``find``/``rfind``/``count`` per chunk.
    Turtle-family long strings (``\"\"\"...\"\"\"`` / ``'''...'''``) may span lines: a light tokeniser
    (:class:`_LongStrings`) looks only at chunks holding a triple quote, follows IRIs, comments
    and short strings to tell an opening delimiter from a quote inside another token, and bounds
    the bytes of the open long string by the same ``max_line_bytes``. RDF/XML and JSON-LD are
    exempt (a whole document may be one line); they are bounded by ``max_file_bytes``.

  ``max_line_bytes`` is a byte bound on the file's spelling; ``max_literal_chars`` stays the
  exact bound on a literal's value, checked on each parsed literal. The default line bound holds
  the longest literal the default character bound allows written in UTF-8 (four bytes a
  character) with its subject and predicate; a literal spelled with many ``\\u`` escapes may
  need it raised (the message says so). It also stays below pyoxigraph's own token buffer
  (16 MiB, whose overflow :mod:`kgrec.data.rdf` reports as :class:`InputLimitError` too, without
  a line), so the guard, which knows the line, speaks first;
* :func:`check_xml_prolog` refuses RDF/XML with a ``<!DOCTYPE>`` before any entity is declared,
  so entity-expansion bombs ("billion laughs") and external entities never reach a parser; with
  ``max_depth`` it also scans the whole document with expat (C, incremental) and refuses element
  nesting deeper than ``max_xml_depth``: the RDF/XML parsers take time that grows faster than
  linearly with nesting depth;
* :func:`network_guard` makes every socket connection, DNS lookup or ``urllib`` request raise
  :class:`~kgrec.errors.NetworkAccessError` while it is active (a ``sys.addaudithook`` hook, so it
  also catches libraries that open sockets themselves).
"""

from __future__ import annotations

import io
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from kgrec.errors import InputLimitError, KgrecError, NetworkAccessError, RDFParseError

__all__ = ["Limits", "DEFAULT_MAX_FILE_BYTES", "DEFAULT_MAX_LITERAL_CHARS", "DEFAULT_MAX_LINE_BYTES",
           "DEFAULT_MAX_XML_DEPTH", "DEFAULT_MAX_EXPANSION_RATIO", "EXPANSION_FLOOR", "LINE_FORMATS",
           "LONG_STRING_FORMATS", "READ_STEP", "LimitedReader", "InputGuard", "CountingReader", "check_xml_prolog",
           "xml_error_line", "network_guard", "NETWORK_EVENTS"]

DEFAULT_MAX_FILE_BYTES = 2 * 1024**3
DEFAULT_MAX_LITERAL_CHARS = 1024**2
#: Four bytes per character (UTF-8) of the longest literal ``DEFAULT_MAX_LITERAL_CHARS`` allows
#: and room for the subject and predicate IRIs; below pyoxigraph's own token buffer (16 MiB), so
#: that the guard, which knows the line, speaks first.
DEFAULT_MAX_LINE_BYTES = 8 * 1024**2
DEFAULT_MAX_XML_DEPTH = 256
DEFAULT_MAX_EXPANSION_RATIO = 200
#: Decompressed bytes below which ``max_expansion_ratio`` is not checked: a small file of
#: repetitive text may compress very well and costs nothing to read.
EXPANSION_FLOOR = 32 * 1024**2
#: Formats whose lines are bounded by ``max_line_bytes``.
LINE_FORMATS = frozenset({"ntriples", "nquads", "turtle", "trig", "n3"})
#: Formats with triple-quoted strings that may span lines.
LONG_STRING_FORMATS = frozenset({"turtle", "trig", "n3"})
#: The most bytes :class:`InputGuard` asks of the stream below it at a time.
READ_STEP = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Caps on what one input file may hold.

    Each field is a ``kgrec.load(...)`` keyword and a CLI flag of the same name
    (``--max-file-bytes``...). See the module docstring for when each is checked.

    Args:
        max_file_bytes: bytes of one file after decompression (default 2 GiB).
        max_literal_chars: characters of one literal's value (default 1 Mi).
        max_line_bytes: bytes of one line of a text RDF file, and of one triple-quoted string
            (default 8 MiB); checked as the bytes are read, before a literal is built.
        max_xml_depth: element nesting depth of an RDF/XML document (default 256).
        max_expansion_ratio: decompressed bytes per compressed byte of a ``.gz`` / ``.bz2`` file,
            checked once more than :data:`EXPANSION_FLOOR` bytes came out (default 200).
    """

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_literal_chars: int = DEFAULT_MAX_LITERAL_CHARS
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_xml_depth: int = DEFAULT_MAX_XML_DEPTH
    max_expansion_ratio: int = DEFAULT_MAX_EXPANSION_RATIO

    def __post_init__(self):
        for name in ("max_file_bytes", "max_literal_chars", "max_line_bytes", "max_xml_depth",
                     "max_expansion_ratio"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise KgrecError(f"'{name}' must be a positive integer (got {v!r})")


class LimitedReader(io.RawIOBase):
    """A binary reader that raises :class:`InputLimitError` once more than ``limit`` bytes were read."""

    def __init__(self, raw: BinaryIO, limit: int, path: str, what: str = "bytes"):
        super().__init__()
        self.raw, self.limit, self.path, self.what, self.count = raw, limit, path, what, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = self.raw.readinto(buf)
        self.count += n or 0
        if self.count > self.limit:
            raise InputLimitError(f"the file holds more than max_file_bytes={self.limit} {self.what}; "
                                  "raise the limit (kgrec.load(..., max_file_bytes=N)) if the file is trusted",
                                  self.path)
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class CountingReader(io.RawIOBase):
    """A binary reader that counts the bytes read through it (the compressed side of a file)."""

    def __init__(self, raw: BinaryIO):
        super().__init__()
        self.raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = self.raw.readinto(buf)
        self.count += n or 0
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def _hint(option: str) -> str:
    flag = "--" + option.replace("_", "-")
    return f"raise the limit (kgrec.load(..., {option}=N), or {flag} N) if the file is trusted"


# a token of the Turtle family that may hold a quote: the long-string delimiters first (so that
# '"""' is never read as the empty string '""' and a quote), then short strings, IRIs, comments
_TOKEN = re.compile(rb'("""|\'\'\')|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|<[^>\n]*>|#[^\n]*')
_QUOTE_OR_BACKSLASH = (34, 39, 92)


class _LongStrings:
    """Bounds the bytes of each triple-quoted string of a Turtle-family file, fed chunk by chunk.

    Outside a long string, nothing is looked at until a newline arrives; then only complete lines
    that hold a triple quote are tokenised (a line is where every other token ends), and the
    incomplete last line waits in ``parts`` (at most ``max_line_bytes``: :class:`InputGuard`
    checks lines first). Inside one, the closing delimiter is searched with ``bytes.find``,
    skipping a delimiter whose first quote is escaped by an odd run of backslashes; the trailing
    quotes and backslashes of a chunk wait in ``tail`` for the next chunk.
    """

    def __init__(self, limit: int, path: str):
        self.limit, self.path = limit, path
        self.parts: list[bytes] = []  # the incomplete line outside a long string
        self.tail = b""  # the trailing quotes and backslashes inside one
        self.line = 1  # the line of the first byte held
        self.delim: bytes | None = None
        self.size = 0  # bytes of the open long string so far
        self.start_line = 0

    def feed(self, data: bytes) -> None:
        if self.delim is None:
            if data.rfind(b"\n") < 0:
                self.parts.append(data)
                return
            buf = b"".join(self.parts) + data if self.parts else data
            self.parts = []
        else:
            buf = self.tail + data if self.tail else data
            self.tail = b""
        pos = 0
        while True:
            if self.delim is None:
                end = buf.rfind(b"\n", pos) + 1
                if end > pos and (buf.find(b'"""', pos, end) >= 0 or buf.find(b"'''", pos, end) >= 0):
                    for m in _TOKEN.finditer(buf, pos, end):
                        if m.group(1):
                            self.delim, self.size = m.group(1), 0
                            self.start_line = self.line + buf.count(b"\n", 0, m.start())
                            pos = m.end()
                            break
                    else:
                        pos = end
                    if self.delim is not None:
                        continue
                keep = max(pos, end)
                self.line += buf.count(b"\n", 0, keep)
                if keep < len(buf):
                    self.parts = [buf[keep:]]
                return
            i = pos
            while True:
                j = buf.find(self.delim, i)
                if j < 0:
                    break
                k = j
                while k > pos and buf[k - 1] == 92:
                    k -= 1
                if (j - k) % 2 == 0:
                    break
                i = j + 1
            if j >= 0:
                self._grow(j - pos)
                self.delim = None
                pos = j + 3
                continue
            t = len(buf)
            while t > pos and buf[t - 1] in _QUOTE_OR_BACKSLASH:
                t -= 1
            self._grow(t - pos)
            self.line += buf.count(b"\n", 0, t)
            self.tail = buf[t:]
            if self.size + len(self.tail) > self.limit:
                self._grow(len(self.tail))
            return

    def _grow(self, n: int) -> None:
        self.size += n
        if self.size > self.limit:
            raise InputLimitError(f"a triple-quoted string starting on this line holds more than "
                                  f"max_line_bytes={self.limit} bytes; {_hint('max_line_bytes')}",
                                  self.path, self.start_line)


class InputGuard(io.RawIOBase):
    """The byte stream a parser reads from, checked against :class:`Limits` as it is read.

    Args:
        raw: the (decompressed) stream.
        limits: the caps.
        path: the file, for messages.
        format: the canonical RDF format (``"ntriples"``, ``"turtle"``...): lines are bounded for
            :data:`LINE_FORMATS`, long strings for :data:`LONG_STRING_FORMATS`; ``None``: neither.
        compressed: the reader of the compressed bytes below ``raw`` (its ``count``), or ``None``
            for a plain file.
        close_also: closed after ``raw`` (the file under a decompressor that does not close it).

    Raises:
        InputLimitError: from ``read``: the file passes ``max_file_bytes``, ``max_expansion_ratio``
            or ``max_line_bytes`` (with the line where known).
    """

    def __init__(self, raw: BinaryIO, limits: Limits, path: str, format: str | None = None,
                 compressed: CountingReader | None = None, close_also: BinaryIO | None = None):
        super().__init__()
        self.raw, self.limits, self.path = raw, limits, path
        self.compressed, self.close_also = compressed, close_also
        self.count = 0
        self.lines = format in LINE_FORMATS
        self.run = 0  # bytes of the current line so far
        self.line = 1  # its number
        self.long = _LongStrings(limits.max_line_bytes, path) if format in LONG_STRING_FORMATS else None

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        view = memoryview(buf)
        if len(view) > READ_STEP:
            view = view[:READ_STEP]
        n = self.raw.readinto(view) or 0
        if not n:
            return n
        self.count += n
        lim = self.limits
        if self.count > lim.max_file_bytes:
            what = "bytes once decompressed" if self.compressed is not None else "bytes"
            raise InputLimitError(f"the file holds more than max_file_bytes={lim.max_file_bytes} {what}; "
                                  f"{_hint('max_file_bytes')}", self.path)
        if self.compressed is not None and self.count > EXPANSION_FLOOR \
                and self.count > lim.max_expansion_ratio * max(1, self.compressed.count):
            raise InputLimitError(f"the file expands from {self.compressed.count} compressed bytes to more than "
                                  f"{self.count} bytes, over max_expansion_ratio={lim.max_expansion_ratio} "
                                  f"(a decompression bomb?); {_hint('max_expansion_ratio')}", self.path)
        if self.lines:
            data = bytes(view[:n])
            self._check_lines(data)
            if self.long is not None:
                self.long.feed(data)
        return n

    def _check_lines(self, data: bytes) -> None:
        limit = self.limits.max_line_bytes
        nl = data.find(b"\n")
        if nl < 0:
            self.run += len(data)
            if self.run > limit:
                self._line_error(self.line)
            return
        if self.run + nl > limit:
            self._line_error(self.line)
        if len(data) > limit:  # a whole line may sit inside this chunk
            pos, line = nl, self.line + 1
            while True:
                nxt = data.find(b"\n", pos + 1)
                if nxt < 0:
                    break
                if nxt - pos - 1 > limit:
                    self._line_error(line)
                pos, line = nxt, line + 1
        self.line += data.count(b"\n")
        self.run = len(data) - data.rfind(b"\n") - 1
        if self.run > limit:
            self._line_error(self.line)

    def _line_error(self, line: int) -> None:
        raise InputLimitError(f"the line holds more than max_line_bytes={self.limits.max_line_bytes} bytes "
                              f"(an over-long literal or IRI?); {_hint('max_line_bytes')}", self.path, line)

    def close(self) -> None:
        try:
            self.raw.close()
            if self.close_also is not None:
                self.close_also.close()
        finally:
            super().close()


class _PrologDone(Exception):
    pass


class _Doctype(Exception):
    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


def check_xml_prolog(fh: BinaryIO, path: str, chunk: int = 1 << 16, max_depth: int | None = None) -> None:
    """Refuse an XML document whose prolog holds a ``<!DOCTYPE>`` (and so possibly entities).

    Without ``max_depth`` only the prolog is read: expat stops at the first element, before a DTD
    could be expanded. With it, the whole document is scanned (expat, incrementally, one chunk at
    a time) and refused as soon as elements nest deeper than ``max_depth``.

    Raises:
        RDFParseError: a DOCTYPE is present, or the prolog is not well-formed XML (with its line).
        InputLimitError: elements nest deeper than ``max_depth`` (with the line of the element).
    """
    from xml.parsers import expat

    p = expat.ParserCreate()
    depth = 0
    seen = False  # an element was opened: the prolog is over

    def doctype(*_):
        raise _Doctype(p.CurrentLineNumber)

    def start(*_):
        nonlocal depth, seen
        if max_depth is None:
            raise _PrologDone
        seen = True
        depth += 1
        if depth > max_depth:
            raise InputLimitError(f"XML elements nest more than max_xml_depth={max_depth} deep; "
                                  f"{_hint('max_xml_depth')}", path, p.CurrentLineNumber)

    def end(*_):
        nonlocal depth
        depth -= 1

    p.StartDoctypeDeclHandler = doctype
    p.StartElementHandler = start
    p.EndElementHandler = end
    try:
        while True:
            data = fh.read(chunk)
            p.Parse(data, not data)
            if not data:
                return
    except _PrologDone:
        return
    except _Doctype as d:
        raise RDFParseError("the RDF/XML document has a <!DOCTYPE> declaration; kgrec refuses DTDs and entity "
                            "declarations (they allow entity-expansion bombs and reading external files): "
                            "replace each &entity; by its text and remove the DOCTYPE", path, d.line) from None
    except expat.ExpatError as e:
        if seen:
            return  # past the prolog: the RDF/XML parser reports the error (same line, its message)
        raise RDFParseError(f"not well-formed XML: {expat.ErrorString(e.code)}", path, e.lineno) from None


def xml_error_line(fh: BinaryIO, chunk: int = 1 << 16) -> int | None:
    """The line of the first XML well-formedness error in ``fh`` (its DTD already refused), or ``None``."""
    from xml.parsers import expat

    p = expat.ParserCreate()
    try:
        while True:
            data = fh.read(chunk)
            p.Parse(data, not data)
            if not data:
                return None
    except expat.ExpatError as e:
        return e.lineno


# ------------------------------------------------------------------------------- network guard
#: Audit events (PEP 578) that reach the network; each raises inside :func:`network_guard`.
NETWORK_EVENTS = frozenset({
    "socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
    "socket.sendto", "socket.sendmsg", "urllib.Request", "http.client.connect", "ftplib.connect",
    "smtplib.connect", "poplib.connect", "imaplib.open", "nntplib.connect",
})

_state = threading.local()
_hook_lock = threading.Lock()
_hooked = False


def _describe(event: str, args: tuple) -> str:
    if event == "urllib.Request" and args:
        return f"{event} {args[0]!r}"
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg") and len(args) > 1:
        return f"{event} {args[1]!r}"
    if args:
        return f"{event} {args[0]!r}"
    return event


def _audit(event: str, args: tuple) -> None:
    if event in NETWORK_EVENTS and getattr(_state, "depth", 0):
        what = _describe(event, args)
        _state.attempts.append(what)
        raise NetworkAccessError(f"network access attempted while {_state.what[-1]} ({what}); kgrec never "
                                 "fetches anything while reading input")


def _install() -> None:
    global _hooked
    with _hook_lock:
        if not _hooked:
            sys.addaudithook(_audit)  # audit hooks cannot be removed: it only acts inside a guard
            _hooked = True


@contextmanager
def network_guard(what: str = "parsing"):
    """Make any network access in this thread raise :class:`NetworkAccessError` until the block ends.

    A library that catches the error and goes on does not hide the attempt: leaving the block
    raises :class:`NetworkAccessError` again, naming it.

    Args:
        what: what is being done, for the message (``"parsing 'data.ttl'"``).
    """
    _install()
    if not hasattr(_state, "depth"):
        _state.depth, _state.attempts, _state.what = 0, [], []
    _state.depth += 1
    _state.what.append(what)
    start = len(_state.attempts)
    try:
        yield
    finally:
        _state.depth -= 1
        _state.what.pop()
        tried = _state.attempts[start:]
        del _state.attempts[start:]
        if tried and sys.exc_info()[0] is not NetworkAccessError:
            raise NetworkAccessError(f"network access attempted while {what} ({'; '.join(tried)}); kgrec never "
                                     "fetches anything while reading input")
