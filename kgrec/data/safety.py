"""Guards for reading files written by others: size limits, no XML DTDs, no network while parsing.

* :class:`Limits` caps the bytes read from one file (after decompression, so a gzip bomb stops
  early) and the length of one literal;
* :func:`check_xml_prolog` refuses RDF/XML with a ``<!DOCTYPE>`` before any entity is declared,
  so entity-expansion bombs ("billion laughs") and external entities never reach a parser;
* :func:`network_guard` makes every socket connection, DNS lookup or ``urllib`` request raise
  :class:`~kgrec.errors.NetworkAccessError` while it is active (a ``sys.addaudithook`` hook, so it
  also catches libraries that open sockets themselves).
"""

from __future__ import annotations

import io
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from kgrec.errors import InputLimitError, KgrecError, NetworkAccessError, RDFParseError

__all__ = ["Limits", "DEFAULT_MAX_FILE_BYTES", "DEFAULT_MAX_LITERAL_CHARS", "LimitedReader",
           "check_xml_prolog", "xml_error_line", "network_guard", "NETWORK_EVENTS"]

DEFAULT_MAX_FILE_BYTES = 2 * 1024**3
DEFAULT_MAX_LITERAL_CHARS = 1024**2


@dataclass(frozen=True)
class Limits:
    """Caps on what one input file may hold.

    Args:
        max_file_bytes: bytes of one file after decompression (default 2 GiB).
        max_literal_chars: characters of one literal (default 1 Mi).
    """

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_literal_chars: int = DEFAULT_MAX_LITERAL_CHARS

    def __post_init__(self):
        for name in ("max_file_bytes", "max_literal_chars"):
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


class _PrologDone(Exception):
    pass


class _Doctype(Exception):
    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


def check_xml_prolog(fh: BinaryIO, path: str, chunk: int = 1 << 16) -> None:
    """Refuse an XML document whose prolog holds a ``<!DOCTYPE>`` (and so possibly entities).

    Only the prolog is read: expat stops at the first element, before a DTD could be expanded.

    Raises:
        RDFParseError: a DOCTYPE is present, or the prolog is not well-formed XML (with its line).
    """
    from xml.parsers import expat

    p = expat.ParserCreate()

    def doctype(*_):
        raise _Doctype(p.CurrentLineNumber)

    def start(*_):
        raise _PrologDone

    p.StartDoctypeDeclHandler = doctype
    p.StartElementHandler = start
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
