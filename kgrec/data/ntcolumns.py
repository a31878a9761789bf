"""Columnar N-Triples reader: a whole file to integer-id triples and a term table.

The streaming path (:func:`kgrec.data.rdf.iter_triple_batches`) hands every triple to Python
as three objects; on a 1M-triple file that hand-over, not the parsing, is most of the time. This
reader does the per-line work in `polars <https://pola.rs>`_ (Rust, vectorised) and only the
*distinct* terms ever become Python objects:

1. the file is read in blocks of :data:`BLOCK_BYTES`, each as one string column of lines;
2. a line of the common form ``S P O .`` (one space between terms, no escape, no comment,
   ASCII IRIs) is recognised by one regular expression whose language is a strict subset of
   N-Triples: every line it accepts, pyoxigraph accepts too, with the same terms;
3. every other line (escapes, tabs, comments, non-ASCII IRIs, RDF 1.2 triple terms, errors...)
   is parsed by pyoxigraph, one line at a time; a line it refuses makes the whole file go through
   the streaming path, which raises the error with its line number exactly as before;
4. the term strings are numbered (a polars Categorical), the distinct ones are decoded in Python
   into kgrec terms (:mod:`kgrec.data.rdf`: ``str`` IRIs, ``"_:"`` blank nodes, :class:`Literal`)
   and two spellings of one term (``"a"@EN`` / ``"a"@en``, ``"a"^^xsd:string`` / ``"a"``) get one id.

The result holds the same triples, in file order, duplicates included, as the streaming path
(``tests/data/test_ntcolumns.py`` compares them on the tricky cases). A file where more than
:data:`MAX_FALLBACK_SHARE` of the lines need pyoxigraph is left to the streaming path
(:func:`read_id_triples` returns ``None``): per-line calls are slower than streaming then.

polars is optional (the ``scale`` extra); without it :func:`available` is ``False`` and kgrec
streams every file.
"""

from __future__ import annotations

import gc
import io
import os
from collections import Counter
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

from kgrec.data.rdf import (RDF_LANGSTRING, XSD_STRING, Literal, Term, _open_binary, _oxigraph_batches, _too_long,
                            check_file_size)
from kgrec.data.safety import Limits, network_guard
from kgrec.errors import KgrecError, RDFParseError

__all__ = ["IdTriples", "available", "read_id_triples", "MAX_FALLBACK_SHARE", "BLOCK_BYTES"]

#: Above this share of lines needing pyoxigraph one at a time, the file is streamed instead.
MAX_FALLBACK_SHARE = 0.10
#: Bytes of (decompressed) file read and turned into ids at a time: smaller blocks hold less at
#: the peak; on the 1.2M-triple file of benchmarks/ingest.py 64 MiB was as fast as 256 MiB.
BLOCK_BYTES = 64 << 20

# ---------------------------------------------------------------- the fast line's language
# RFC 3986/3987 absolute IRIs restricted to ASCII, built from the RFC's own rules (so any match
# is a valid IRI for pyoxigraph's strict parser); anything else goes to pyoxigraph.
_HEX = r"%[0-9A-Fa-f]{2}"
_UNRES_SUB = r"A-Za-z0-9\-._~!$&'()*+,;="
_PCHAR = rf"(?:[{_UNRES_SUB}:@]|{_HEX})"
_AUTH = rf"(?:(?:[{_UNRES_SUB}:]|{_HEX})*@)?(?:[{_UNRES_SUB}]|{_HEX})*(?::[0-9]*)?"
_PATH = rf"(?://{_AUTH}(?:/(?:{_PCHAR}|/)*)?|/(?:{_PCHAR}(?:{_PCHAR}|/)*)?|{_PCHAR}(?:{_PCHAR}|/)*|)"
_IRI = rf"<[A-Za-z][A-Za-z0-9+.\-]*:{_PATH}(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?>"
_BNODE = r"_:[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_\-])?"
# language tags of the forms pyoxigraph's BCP 47 check always accepts: ll(l)[-Script|-RR|-999]
_LANG = r"@[a-zA-Z]{2,3}(?:-(?:[a-zA-Z]{2}|[a-zA-Z]{4}|[0-9]{3}))?"
_LITERAL = rf'"[^"\\\r\n]*"(?:\^\^{_IRI}|{_LANG})?'
FAST_LINE = rf"^(?:{_IRI}|{_BNODE}) {_IRI} (?:{_IRI}|{_BNODE}|{_LITERAL}) \.$"
BLANK_LINE = r"^[ \t]*(?:#.*)?$"
# rdf:langString / rdf:dirLangString need a language tag: such a literal is an error for pyoxigraph
_LANG_DATATYPES = r"\^\^<http://www\.w3\.org/1999/02/22-rdf-syntax-ns#(?:dir)?[lL]angString>"


def available() -> bool:
    """Whether polars is importable (the columnar reader can run)."""
    try:
        import polars  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class IdTriples:
    """Triples as integer ids into one term table.

    Attributes:
        terms: id -> term (``str`` IRI, ``"_:f{file}.{label}"`` blank node, or :class:`Literal`);
            every term appears once.
        triples: ``(n, 3)`` int64 array of (subject, predicate, object) ids, in file order,
            duplicates kept (the streaming path keeps them too; ``kgrec.load`` collapses them).
    """

    terms: list[Term]
    triples: np.ndarray
    #: the tokens as a polars Series (IRIs as ``<iri>``), when read by :func:`read_id_triples`
    tokens: object = None

    def __len__(self) -> int:
        return int(self.triples.shape[0])

    def iris_starting_with(self, prefixes: tuple[str, ...]) -> list[int]:
        """Ids of the IRI terms that start with one of ``prefixes``."""
        if self.tokens is None:
            return [k for k, t in enumerate(self.terms) if type(t) is str and t.startswith(prefixes)]
        import polars as pl

        hit = pl.select(pl.any_horizontal([self.tokens.str.starts_with("<" + p) for p in prefixes])).to_series()
        return np.flatnonzero(hit.to_numpy()).tolist()

    def decoded(self) -> list[tuple[Term, Term, Term]]:
        """The triples as kgrec terms (what :func:`kgrec.data.rdf.read_triples` gives)."""
        t = self.terms
        return [(t[s], t[p], t[o]) for s, p, o in self.triples.tolist()]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def _unescape(value: str) -> str:
    out, k = [], 0
    while True:
        j = value.find("\\", k)
        if j < 0:
            out.append(value[k:])
            return "".join(out)
        out.append(value[k:j])
        out.append({"\\": "\\", '"': '"', "n": "\n", "r": "\r"}[value[j + 1]])
        k = j + 2


def _token(term) -> str | None:
    """A pyoxigraph term as the token the fast lines use (``None``: RDF-star, skipped)."""
    import pyoxigraph as ox

    t = type(term)
    if t is ox.NamedNode:
        return f"<{term.value}>"
    if t is ox.BlankNode:
        return f"_:{term.value}"
    if t is ox.Literal:
        lang = term.language
        if lang:
            return f'"{_escape(term.value)}"@{lang}'
        dt = term.datatype.value
        return f'"{_escape(term.value)}"' if dt == XSD_STRING else f'"{_escape(term.value)}"^^<{dt}>'
    return None


def _decode_all(tokens, bnode_prefix: str) -> list[Term]:
    """Tokens (a polars string Series) -> kgrec terms: IRIs and blank nodes by vectorised slicing,
    literals split into value / datatype / language columns and built as :class:`Literal`."""
    import polars as pl

    is_lit = tokens.str.starts_with('"')
    plain = pl.select(
        pl.when(tokens.str.starts_with("<")).then(tokens.str.slice(1, tokens.str.len_chars() - 2))
        .when(tokens.str.starts_with("_:")).then(pl.lit(bnode_prefix) + tokens.str.slice(2))
        .otherwise(None)).to_series()
    terms: list = plain.to_list()
    if not is_lit.any():
        return terms
    lits = tokens.filter(is_lit)
    # a literal token is '"value"' + ('' | '@lang' | '^^<datatype>'): without a backslash its value
    # holds no '"', so splitting on '"' gives ['', value, suffix]
    escaped = lits.str.contains("\\", literal=True)
    pieces = lits.str.split('"')
    values, rest = pieces.list.get(1), pieces.list.get(-1)
    vals = values.to_list()
    if escaped.any():
        for k in np.flatnonzero(escaped.to_numpy()).tolist():
            tok = lits[k]
            q = tok.rfind('"')
            vals[k] = _unescape(tok[1:q])
        rest = pl.select(pl.when(escaped).then(lits.str.extract(r'"([^"]*)$')).otherwise(rest)).to_series()
    is_lang = rest.str.starts_with("@")
    cols = pl.select(
        datatype=pl.when(rest == "").then(pl.lit(XSD_STRING)).when(is_lang).then(pl.lit(RDF_LANGSTRING))
        .otherwise(rest.str.slice(3, rest.str.len_chars() - 4)),
        language=pl.when(is_lang).then(rest.str.slice(1)).otherwise(None))
    new = tuple.__new__  # Literal(...) without NamedTuple's Python-level __new__
    built = map(new, repeat(Literal), zip(vals, cols["datatype"].to_list(), cols["language"].to_list()))
    for k, lit in zip(np.flatnonzero(is_lit.to_numpy()).tolist(), built):
        terms[k] = lit
    return terms


def _blocks(path: Path, limits: Limits, size: int):
    """The (decompressed) file in blocks of about ``size`` bytes, each ending at a line end; an
    uncompressed file that fits in one block is given as its path (polars maps it, no copy)."""
    if path.suffix.lower() not in (".gz", ".bz2") and path.stat().st_size <= size:
        yield path
        return
    with _open_binary(path, limits, "ntriples") as fh:
        rest = b""
        while True:
            block = fh.read(size)
            if not block:
                if rest:
                    yield rest
                return
            block = rest + block if rest else block
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                rest = block
                continue
            yield block if cut == len(block) else block[:cut]
            rest = block[cut:]


def read_id_triples(
    path: str | os.PathLike,
    *,
    warnings: Counter | None = None,
    file_index: int = 0,
    limits: Limits | None = None,
    block_bytes: int | None = None,
) -> IdTriples | None:
    """Read one N-Triples file (``.gz``/``.bz2`` too) into :class:`IdTriples`.

    Same terms, triples, warnings and errors as :func:`kgrec.data.rdf.iter_triples` with
    ``engine="oxigraph"`` (see the module docstring for how). The file is read in blocks of
    ``block_bytes`` (default :data:`BLOCK_BYTES`): only one block's lines are held as strings at
    a time, then only the ids and the distinct terms. Returns ``None`` (and counts no warning)
    when the file should be streamed instead: polars cannot split it into lines (a byte 0x1F in a
    line, a non-UTF-8 byte: the streaming path then reports the error), it starts with a UTF-8
    byte-order mark (which polars would drop and pyoxigraph refuses), a line is longer than
    ``limits.max_line_bytes`` (the streaming path refuses it with its number; a block read here is
    bounded by the block size, and a compressed or larger file by the guard of its reader), or
    more than :data:`MAX_FALLBACK_SHARE` of a block's lines need pyoxigraph one by one.

    Raises:
        KgrecError: the file does not exist.
        RDFParseError: a malformed line (file and line number, from the streaming path).
        InputLimitError: the file or one of its literals exceeds ``limits``.
    """
    import polars as pl

    path = Path(path)
    if not path.is_file():
        raise KgrecError(f"RDF file '{path}' does not exist")
    limits = Limits() if limits is None else limits
    check_file_size(path, limits)
    bnode_prefix = f"_:f{file_index}."
    with _open_binary(path, limits) as fh:
        if fh.read(3) == b"\xef\xbb\xbf":  # polars drops a byte-order mark pyoxigraph refuses: stream
            return None
    found: Counter = Counter()
    codes = []
    table = None  # (t, id) of every distinct token so far
    with network_guard(f"parsing '{path}'"):
        try:
            for block in _blocks(path, limits, block_bytes or BLOCK_BYTES):
                got = _block_codes(block, path, found, limits, bnode_prefix)
                if got is None:
                    return None
                local, tokens = got
                if table is None:
                    table = tokens
                else:  # block ids -> file ids: known tokens keep theirs, new ones are numbered on
                    joined = tokens.join(table.rename({"id": "known"}), on="t", how="left")
                    new = joined.filter(pl.col("known").is_null()).sort("id")
                    new = new.select("t", pl.int_range(table.height, table.height + new.height,
                                                       dtype=pl.Int64).alias("known"))
                    table = pl.concat([table, new.rename({"known": "id"})])
                    joined = joined.filter(pl.col("known").is_not_null()).select("id", "known")
                    remap = np.empty(tokens.height, dtype=np.int64)
                    remap[joined["id"].to_numpy()] = joined["known"].to_numpy()
                    unknown = tokens.join(new, on="t", how="inner")
                    remap[unknown["id"].to_numpy()] = unknown["known"].to_numpy()
                    local = remap[local]
                codes.append(local)
        except pl.exceptions.PolarsError:
            return None  # ragged lines (a 0x1F byte), invalid UTF-8...: the streaming path decides
        triples = np.concatenate(codes) if codes else np.empty((0, 3), dtype=np.int64)
        terms: list[Term] = []
        tokens = None
        if table is not None and len(triples):
            tokens = table["t"]
            # hundreds of thousands of new objects, none in a cycle: the cyclic collector would
            # keep traversing them as they are made
            enabled = gc.isenabled()
            gc.disable()
            try:
                terms = _decode_all(table["t"], bnode_prefix)
            finally:
                if enabled:
                    gc.enable()
            # a token is at least as long as its literal's value: most files need no closer look
            if (table["t"].str.len_chars().max() or 0) > limits.max_literal_chars:
                _check_literals(terms, triples, limits, path)
    if warnings is not None:
        warnings.update(found)
    return IdTriples(terms, triples, tokens)


def _block_codes(block: bytes | Path, path: Path, warnings: Counter, limits: Limits, bnode_prefix: str):
    """One block's triples as an ``(n, 3)`` array of block ids and its ``(t, id)`` token table
    (ids 0..k-1 in order of first appearance, sorted), or ``None`` if too many of its lines need
    pyoxigraph."""
    import polars as pl

    lines = pl.read_csv(io.BytesIO(block) if isinstance(block, bytes) else block, has_header=False, separator="\x1f", quote_char=None, new_columns=["l"],
                        schema_overrides={"l": pl.Utf8}, infer_schema=False)["l"].fill_null("")
    if (lines.str.len_bytes().max() or 0) > limits.max_line_bytes:
        return None  # the streaming path refuses the line, with its number
    fast = lines.str.contains(FAST_LINE) & ~lines.str.contains(_LANG_DATATYPES)
    slow = ~fast & ~lines.str.contains(BLANK_LINE)
    n_slow = int(slow.sum())
    if n_slow > MAX_FALLBACK_SHARE * max(1, int(fast.sum()) + n_slow):
        return None
    frame = pl.DataFrame({"l": lines, "fast": fast, "slow": slow}).with_row_index("row")
    every = bool(fast.all())  # the common case: no filtering (a copy of every line) needed
    # cut at the first two spaces (a fast line's subject and predicate are ASCII, so find's byte
    # offsets are slice's character offsets); 4x cheaper than str.splitn
    line, cut1, cut2 = pl.col("l"), pl.col("cut1"), pl.col("cut2")
    parts = ((frame.lazy() if every else frame.lazy().filter(pl.col("fast")))
             .select("row", "l", cut1=line.str.find(" ", literal=True))
             .with_columns(rest=line.str.slice(cut1 + 1))
             .with_columns(cut2=pl.col("rest").str.find(" ", literal=True))
             .select("row", s=line.str.slice(0, cut1), p=pl.col("rest").str.slice(0, cut2),
                     o=pl.col("rest").str.slice(cut2 + 1).str.strip_suffix(" ."))
             .collect())
    if n_slow:
        extra = _slow_rows(path, frame.filter(pl.col("slow")), warnings, limits, bnode_prefix)
        parts = pl.concat([parts, extra]).sort("row")
    n = parts.height
    # one spelling per term: pyoxigraph lower-cases language tags and drops ^^xsd:string
    o = parts["o"].str.strip_suffix(f"^^<{XSD_STRING}>")
    upper = o.str.contains(r'"@[a-zA-Z0-9-]*[A-Z][a-zA-Z0-9-]*$')
    if upper.any():
        o = (pl.select(pl.when(upper).then(o.str.extract(r'^(.*"@)') + o.str.extract(r'"@([^"]*)$')
                                            .str.to_lowercase()).otherwise(o)).to_series())
    # a fresh category table numbers the tokens 0..k-1 in order of first appearance
    stacked = pl.concat([parts["s"], parts["p"], o]).cast(pl.Categorical(pl.Categories.random()))
    codes = stacked.to_physical().to_numpy().astype(np.int64)
    distinct = stacked.unique()
    table = pl.DataFrame({"t": distinct.cast(pl.Utf8), "id": distinct.to_physical().cast(pl.Int64)}).sort("id")
    return np.ascontiguousarray(codes.reshape(3, n).T), table


def _slow_rows(path, rows, warnings, limits, bnode_prefix):
    """The lines the fast expression left, parsed by pyoxigraph one by one, as token rows."""
    import polars as pl
    import pyoxigraph as ox

    out_row, out_s, out_p, out_o = [], [], [], []
    fmt = ox.RdfFormat.N_TRIPLES
    for row, line in zip(rows["row"].to_list(), rows["l"].to_list()):
        try:
            found = list(ox.parse(line.encode("utf-8"), fmt))
        except SyntaxError:
            # the streaming path raises the same error with its line number (and its message)
            for _ in _oxigraph_batches(path, "ntriples", None, None, Counter(), bnode_prefix, limits, 4096):
                pass
            raise RDFParseError(f"a line pyoxigraph refuses (row {row + 1} of the non-blank lines)",
                                str(path)) from None
        for q in found:
            s, p, o = _token(q.subject), _token(q.predicate), _token(q.object)
            if s is None or o is None:
                warnings["RDF-star quoted triple skipped"] += 1
                continue
            out_row.append(row)
            out_s.append(s)
            out_p.append(p)
            out_o.append(o)
    return pl.DataFrame({"row": pl.Series(out_row, dtype=pl.UInt32), "s": out_s, "p": out_p, "o": out_o},
                        schema={"row": pl.UInt32, "s": pl.Utf8, "p": pl.Utf8, "o": pl.Utf8})


def _check_literals(terms: list[Term], triples: np.ndarray, limits: Limits, path: Path) -> None:
    """The streaming path's literal-length limit, raised for the first such triple in file order."""
    cap = limits.max_literal_chars
    long = [k for k, t in enumerate(terms) if type(t) is Literal and len(t.value) > cap]
    if not long:
        return
    rows = np.flatnonzero(np.isin(triples[:, 2], long))
    s, p, o = triples[rows[0]]
    raise _too_long(terms[o].value, limits, path, terms[s], terms[p])
