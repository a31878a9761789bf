"""Writing N-Triples in the kgrec vocabulary: term syntax, minted IRIs, an atomic (gzip'd) writer.

Lines are written by hand (no rdflib) because that is much faster and the escaping rules of
N-Triples are short: see :func:`literal` and :func:`iri`. A :class:`_Writer` writes to a temporary
file and renames it at the end, so a converter that fails leaves no partial output; gzip'd output
carries no file name and mtime 0, so the same input gives identical bytes. The underscore names
are shared by the converters of this package and by :mod:`kgrec.data.synthetic`.
"""

from __future__ import annotations

import gzip
import os
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

__all__ = ["BASE", "KGR", "RDF_TYPE", "RDFS_LABEL", "OWL_SAME_AS", "XSD", "DBO", "DCT_SUBJECT", "FREEBASE",
           "iri", "literal"]

KGR = "https://w3id.org/kgrec/vocab#"
BASE = "https://w3id.org/kgrec/data/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
OWL_SAME_AS = "http://www.w3.org/2002/07/owl#sameAs"
XSD = "http://www.w3.org/2001/XMLSchema#"
DBO = "http://dbpedia.org/ontology/"
DCT_SUBJECT = "http://purl.org/dc/terms/subject"
FREEBASE = "http://rdf.freebase.com/ns/"

# ---------------------------------------------------------------------------------- N-Triples
# IRIREF forbids controls, space and <>"{}|^`\ ; DEL is allowed but never wanted in an IRI.
_IRI_BAD = re.compile(r'[\x00-\x20<>"{}|^`\\\x7f]')
# STRING_LITERAL_QUOTE forbids raw " \ LF CR; other controls are legal but unreadable and some
# parsers reject them, so they are written as \uXXXX too.
_LITERAL_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r",
                    ord("\t"): "\\t", ord("\b"): "\\b", ord("\f"): "\\f"}
for _c in [*range(0x20), 0x7F]:
    _LITERAL_ESCAPES.setdefault(_c, f"\\u{_c:04X}")
del _c
# Path-segment characters kept as they are (RFC 3986 sub-delims, ':' and '@'); quote() always
# keeps the unreserved ones. Anything else, non-ASCII included, is percent-encoded as UTF-8.
_SEGMENT_SAFE = "!$&'()*+,;=:@"


def iri(value: str) -> str:
    """``value`` as an N-Triples IRI term ``<...>``, percent-encoding the characters IRIREF forbids.

    Example: ``iri('http://x.org/a b')`` is ``'<http://x.org/a%20b>'``. Non-ASCII characters are
    legal in IRIs and kept (DBpedia IRIs such as ``.../Lisa_Katselas_Paré`` stay as published).
    """
    return "<" + _IRI_BAD.sub(lambda m: "%{:02X}".format(ord(m.group())), value) + ">"


def literal(value: str, lang: str | None = None, datatype: str | None = None) -> str:
    """``value`` as an N-Triples literal with backslash, quote, newline, CR (and controls) escaped.

    Args:
        value: the lexical form.
        lang: a language tag (``"en"``) or ``None``.
        datatype: a datatype IRI or ``None`` (``xsd:string``); ignored when ``lang`` is given.
    """
    text = '"' + str(value).translate(_LITERAL_ESCAPES) + '"'
    if lang:
        return f"{text}@{lang}"
    if datatype:
        return f"{text}^^<{datatype}>"
    return text


def _segment(value) -> str:
    return quote(str(value), safe=_SEGMENT_SAFE)


def _int_literal(value: int) -> str:
    return f'"{int(value)}"^^<{XSD}integer>'


def _decimal_literal(value: str) -> str:
    return f'"{value}"^^<{XSD}decimal>'


def _datetime_literal(unix: int) -> str:
    stamp = datetime.fromtimestamp(int(unix), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'"{stamp}"^^<{XSD}dateTime>'


class _Writer:
    """Writes N-Triples lines to a (gzip'd) file atomically and counts them."""

    def __init__(self, out: str | os.PathLike, compresslevel: int = 9):
        self.path = Path(out)
        self.compresslevel = compresslevel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self.count = 0

    def __enter__(self) -> "_Writer":
        raw = open(self._tmp, "wb")
        if self.path.name.endswith(".gz"):
            # No file name and mtime 0 in the gzip header: the same input gives identical bytes.
            self._raw = raw
            self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                     compresslevel=self.compresslevel)
            self._fh = _TextSink(self._gz)
        else:
            self._raw, self._gz = raw, None
            self._fh = _TextSink(raw)
        return self

    def __call__(self, s: str, p: str, o: str) -> None:
        self._fh.write(f"{s} {p} {o} .\n")
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        self._fh.flush()
        if self._gz is not None:
            self._gz.close()
        self._raw.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


class _TextSink:
    """Buffers text and encodes it in large chunks (much faster than TextIOWrapper over gzip)."""

    def __init__(self, binary, limit: int = 1 << 20):
        self._out, self._buf, self._size, self._limit = binary, [], 0, limit

    def write(self, text: str) -> None:
        self._buf.append(text)
        self._size += len(text)
        if self._size >= self._limit:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self._out.write("".join(self._buf).encode("utf-8"))
            self._buf, self._size = [], 0


class _Minter:
    """Term strings for a dataset's minted IRIs, cached because the same ids repeat a lot."""

    def __init__(self, dataset: str):
        self.root = BASE + dataset + "/"
        self._cache: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, ident) -> str:
        key = (kind, str(ident))
        term = self._cache.get(key)
        if term is None:
            term = self._cache[key] = f"<{self.root}{kind}/{_segment(ident)}>"
        return term


_T = {name: f"<{KGR}{name}>" for name in (
    "User", "Item", "Interaction", "Tagging", "user", "item", "rating", "timestamp", "text", "interactedWith",
    "title", "year", "genre", "tag", "age", "gender", "occupation", "zip", "imdb")}
_TYPE, _LABEL, _SAME_AS = f"<{RDF_TYPE}>", f"<{RDFS_LABEL}>", f"<{OWL_SAME_AS}>"


def _declared(w: _Writer, mint: _Minter, seen: set, kind: str, ident: int, cls: str) -> str:
    """The term of ``<kind>/<ident>``, written ``rdf:type kgr:<cls>`` the first time (``seen`` gains ``ident``)."""
    term = mint(kind, ident)
    if ident not in seen:
        seen.add(ident)
        w(term, _TYPE, _T[cls])
    return term


def _event(w: _Writer, mint: _Minter, n: int, user: str, item: str,
           rating: str | None = None, time: str | None = None, text: str | None = None,
           kind: str = "event", cls: str = "Interaction") -> None:
    """Write event ``<.../<kind>/<n>> rdf:type kgr:<cls>`` with its user, item and the given terms."""
    e = mint(kind, n)
    w(e, _TYPE, _T[cls])
    w(e, _T["user"], user)
    w(e, _T["item"], item)
    if rating is not None:
        w(e, _T["rating"], rating)
    if time is not None:
        w(e, _T["timestamp"], time)
    if text is not None:
        w(e, _T["text"], text)


def _result(counts: Counter, *optional: tuple[str, ...]) -> dict[str, int]:
    # Keys a caller asked for are present even when zero, so counts compare across runs.
    for group in optional:
        for key in group:
            counts.setdefault(key, 0)
    return dict(counts)
