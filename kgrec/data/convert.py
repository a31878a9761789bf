"""Converters from public recommendation datasets to RDF in the kgrec vocabulary.

Each converter reads a dataset folder exactly as its publisher distributes it and writes one
N-Triples file (gzip'd when the output path ends in ``.gz``) that :func:`kgrec.data.loader.load`
reads with the default ``kgrec`` mapping. The output uses:

* ``kgr: <https://w3id.org/kgrec/vocab#>``; users ``rdf:type kgr:User``, items ``rdf:type kgr:Item``.
* Interactions with a rating or time as reified events
  ``<.../event/<n>> rdf:type kgr:Interaction; kgr:user <u>; kgr:item <i>;
  kgr:rating "4"^^xsd:integer; kgr:timestamp "1997-12-04T15:55:49Z"^^xsd:dateTime``, numbered
  ``n = 1, 2, ...`` in source-file order; interactions with neither as ``<u> kgr:interactedWith <i>``.
  MovieLens latest-small with ``tag_events=True`` also writes each tag application as a
  ``<.../tagging/<n>> rdf:type kgr:Tagging`` event with ``kgr:user``, ``kgr:item``,
  ``kgr:timestamp`` and the tag as ``kgr:text``.
* Item literals ``kgr:title``, ``kgr:year`` (``xsd:integer``), ``dbo:abstract`` (``@en``); KG edges
  as IRI-valued predicates (``kgr:genre``, ``dbo:director``, Freebase relations..., and
  ``kgr:tag`` only when MovieLens latest-small is converted with ``tags=True``: tag edges leak).
* ``owl:sameAs`` from an item to the external entity it denotes, so that the loader attaches the
  external KG (whose triples use the entity's IRI) to the item while items keep dataset IRIs.

Minted IRIs are ``https://w3id.org/kgrec/data/<dataset>/{user,item,event,tagging,genre,tag,entity,relation}/<id>``
with the dataset's own ids kept. Lines are written by hand (no rdflib) because that is much faster
and the escaping rules of N-Triples are short: see :func:`literal` and :func:`iri`.

The datasets themselves are NOT shipped (their terms forbid it, except MovieLens latest-small);
obtain them from their publishers (sources and terms: ``benchmarks/RESULTS.md``, "Datasets").
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import unicodedata
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from kgrec.errors import KgrecError, SourceFormatError

__all__ = [
    "BASE",
    "KGR",
    "CONVERTERS",
    "SourceFormatError",
    "convert",
    "convert_movielens_100k",
    "convert_movielens_latest_small",
    "convert_lastfm",
    "convert_book_crossing",
    "iri",
    "literal",
    "tag_slug",
]

KGR = "https://w3id.org/kgrec/vocab#"
BASE = "https://w3id.org/kgrec/data/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
OWL_SAME_AS = "http://www.w3.org/2002/07/owl#sameAs"
XSD = "http://www.w3.org/2001/XMLSchema#"
DBO = "http://dbpedia.org/ontology/"
DCT_SUBJECT = "http://purl.org/dc/terms/subject"
FREEBASE = "http://rdf.freebase.com/ns/"

#: ``u.genre`` of MovieLens-100K, used when that file is absent (flag column order of ``u.item``).
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western")

#: Genre names that mean "no genre": no ``kgr:genre`` edge is written for them.
NO_GENRE = frozenset({"unknown", "(no genres listed)"})

#: ``dbpedia/enriched.csv`` column -> predicate IRI of the edge from the item.
DBPEDIA_EDGES = {
    "director": DBO + "director",
    "starring": DBO + "starring",
    "writer": DBO + "writer",
    "producer": DBO + "producer",
    "distributor": DBO + "distributor",
    "cinematography": DBO + "cinematography",
    "subject": DCT_SUBJECT,
}


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


def tag_slug(tag: str) -> str:
    """The normalised form of a free-text tag used in its IRI.

    NFKC, case-folded, every run of characters other than letters/digits/underscore turned into
    one ``-``, leading/trailing ``-`` dropped: ``"Sci-Fi"``, ``"sci fi"`` and ``" SCI-FI!"`` all
    give ``"sci-fi"``. A tag made only of punctuation keeps its case-folded text. ``""`` for a
    blank tag.
    """
    text = " ".join(unicodedata.normalize("NFKC", tag).casefold().split())
    slug = re.sub(r"[^\w]+", "-", text).strip("-")
    return slug or text


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


# ------------------------------------------------------------------------------- source reading
def _need(path: Path) -> Path:
    if not path.is_file():
        raise KgrecError(f"'{path}' is missing: the dataset folder does not hold the expected file")
    return path


def _read_text(path: Path) -> str:
    data = _need(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # The GroupLens MovieLens-100K files are ISO-8859-1.
        return data.decode("latin-1")


def _rows(path: Path, sep: str | None, n: int, header: bool = False, what: str = ""):
    """Yield ``(line_no, fields)`` of a delimited text file with exactly ``n`` fields per row.

    ``sep=None`` splits on any whitespace. Blank lines are skipped; CRLF is accepted.
    """
    # split("\n"), not splitlines(): the latter also breaks at \x85, \x1c, U+2028... inside fields.
    lines = _read_text(path).split("\n")
    for no, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if header and no == 1:
            continue
        if not line.strip():
            continue
        fields = line.split(sep) if sep is not None else line.split()
        if sep == "\t":
            fields = [f.strip() for f in fields]
        if len(fields) != n:
            raise SourceFormatError(f"expected {n} fields ({what}), found {len(fields)}", path, no)
        yield no, fields


def _int(value: str, path: Path, line: int, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SourceFormatError(f"'{name}' must be an integer (got {value!r})", path, line) from None


def _decimal(value: str, path: Path, line: int, name: str) -> str:
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", value.strip()):
        raise SourceFormatError(f"'{name}' must be a decimal number (got {value!r})", path, line)
    return value.strip()


def _csv_dicts(path: Path, columns: tuple[str, ...]):
    """Yield ``(line_no, row dict)`` of a CSV file whose header holds ``columns``."""
    with open(_need(path), newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise SourceFormatError("empty file, expected a header row", path, 1)
        # FranKGraphBench headers carry types ("item_id::string"); MovieLens ones do not.
        names = [h.split("::", 1)[0].strip() for h in header]
        missing = [c for c in columns if c not in names]
        if missing:
            raise SourceFormatError(f"header lacks column(s) {missing} (found {names})", path, 1)
        for row in reader:
            if not row:
                continue
            if len(row) != len(names):
                raise SourceFormatError(f"expected {len(names)} fields, found {len(row)}", path,
                                        reader.line_num)
            yield reader.line_num, dict(zip(names, row))


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


def _genre(w: _Writer, mint: _Minter, written: set[str], item: str, name: str) -> bool:
    """Write ``item kgr:genre <genre>`` (+ the genre's label once); False for a "no genre" name."""
    name = name.strip()
    if not name or name in NO_GENRE:
        return False
    g = mint("genre", name)
    if name not in written:
        written.add(name)
        w(g, _LABEL, literal(name))
    w(item, _T["genre"], g)
    return True


# ------------------------------------------------------------------------------- MovieLens-100K
def convert_movielens_100k(root: str | os.PathLike, out: str | os.PathLike, kg: bool = True,
                           dbpedia: bool = True, dataset: str = "movielens-100k") -> dict[str, int]:
    """Convert MovieLens-100K (+ the RecBole Freebase KG and FranKGraphBench DBpedia data) to RDF.

    Reads ``u.data`` (every rating as an event with ``kgr:rating`` ``xsd:integer`` and
    ``kgr:timestamp``), ``u.item`` (``kgr:title`` as published, e.g. ``"Toy Story (1995)"``,
    ``kgr:year`` from the release date, ``kgr:genre`` edges to genre IRIs with ``rdfs:label``; the
    ``unknown`` genre flag writes no edge), ``u.genre`` (genre names, optional) and ``u.user``
    (optional: ``kgr:age`` ``xsd:integer``, ``kgr:gender``, ``kgr:occupation``, ``kgr:zip``
    literals on the user).

    With ``kg``: ``recbole/ml-100k.link`` gives ``item owl:sameAs fb:<entity>`` and every triple
    of ``recbole/ml-100k.kg`` is written as ``fb:<head> fb:<relation> fb:<tail>`` with
    ``fb: <http://rdf.freebase.com/ns/>`` (RecBole/KB4Rec, Zhao et al. 2019). The file holds both
    directions of several relations (``film.film.directed_by`` and ``film.director.film``); they
    are kept as published.

    With ``dbpedia``: ``dbpedia/map.csv`` gives ``item owl:sameAs dbr:<Film>`` and
    ``dbpedia/enriched.csv`` (FranKGraphBench) gives, ON THE ITEM, ``dbo:abstract "..."@en`` and
    ``dbo:director``/``starring``/``writer``/``producer``/``distributor``/``cinematography`` and
    ``dct:subject`` edges to DBpedia IRIs (its list cells join IRIs with ``::``). MovieLens-100K
    lists some films twice under two item ids and both map to one DBpedia IRI; no ``owl:sameAs``
    is written for such a shared IRI (the loader would merge the two items into one), the
    facts are still written on both items (count ``dbpedia_same_as_shared_skipped``).

    Args:
        root: the dataset folder (``u.data``, ``u.item``... and the ``recbole/``, ``dbpedia/`` folders).
        out: the output file; gzip'd when it ends in ``.gz`` (``.nt.gz`` recommended).
        kg: write the Freebase KG (default ``True``).
        dbpedia: write the DBpedia links, abstracts and edges (default ``True``).
        dataset: the ``<dataset>`` part of minted IRIs (default ``"movielens-100k"``).

    Returns:
        Counts written: ``users``, ``items``, ``interactions``, ``genres``, ``genre_edges``,
        ``same_as_freebase``, ``freebase_triples``, ``dbpedia_items``, ``same_as_dbpedia``,
        ``dbpedia_same_as_shared_skipped``, ``dbpedia_edges``, ``abstracts``, ``triples`` (lines).
    """
    root = Path(root)
    mint = _Minter(dataset)
    counts: Counter = Counter()
    genres = ML100K_GENRES
    if (root / "u.genre").is_file():
        # u.genre lists "name|index"; the index is the flag column in u.item.
        pairs = [(_int(f[1], root / "u.genre", no, "index"), f[0])
                 for no, f in _rows(root / "u.genre", "|", 2, what="genre|index")]
        genres = tuple(name for _, name in sorted(pairs))
    with _Writer(out) as w:
        users: set[int] = set()
        if (root / "u.user").is_file():
            path = root / "u.user"
            for no, (uid, age, gender, occupation, zipc) in _rows(path, "|", 5,
                                                                  what="user|age|gender|occupation|zip"):
                uid_i = _int(uid, path, no, "user id")
                u = mint("user", uid_i)
                users.add(uid_i)
                w(u, _TYPE, _T["User"])
                w(u, _T["age"], _int_literal(_int(age, path, no, "age")))
                w(u, _T["gender"], literal(gender))
                w(u, _T["occupation"], literal(occupation))
                w(u, _T["zip"], literal(zipc))
        path = root / "u.item"
        items: set[int] = set()
        written_genres: set[str] = set()
        what = f"id|title|release|video release|IMDb URL|{len(genres)} genre flags"
        for no, f in _rows(path, "|", 5 + len(genres), what=what):
            iid = _int(f[0], path, no, "item id")
            items.add(iid)
            i = mint("item", iid)
            w(i, _TYPE, _T["Item"])
            w(i, _T["title"], literal(f[1]))
            year = re.search(r"(\d{4})\s*$", f[2])
            if year:
                w(i, _T["year"], _int_literal(int(year.group(1))))
            for flag, name in zip(f[5:], genres):
                if flag.strip() not in ("0", "1"):
                    raise SourceFormatError(f"genre flag '{name}' must be 0 or 1 (got {flag!r})", path, no)
                if flag.strip() == "1" and _genre(w, mint, written_genres, i, name):
                    counts["genre_edges"] += 1
        path = root / "u.data"
        n_events = 0
        for no, (uid, iid, rating, ts) in _rows(path, None, 4, what="user item rating timestamp"):
            uid_i, iid_i = _int(uid, path, no, "user id"), _int(iid, path, no, "item id")
            if iid_i not in items:
                raise SourceFormatError(f"item {iid_i} is not in u.item", path, no)
            u = mint("user", uid_i)
            if uid_i not in users:
                users.add(uid_i)
                w(u, _TYPE, _T["User"])
            n_events += 1
            _event(w, mint, n_events, u, mint("item", iid_i),
                   _int_literal(_int(rating, path, no, "rating")),
                   _datetime_literal(_int(ts, path, no, "timestamp")))
        counts.update(users=len(users), items=len(items), interactions=n_events,
                      genres=len(written_genres))
        if kg:
            counts.update(_ml100k_freebase(w, root / "recbole", mint, items))
        if dbpedia:
            counts.update(_ml100k_dbpedia(w, root / "dbpedia", mint, items))
        counts["triples"] = w.count
    return _result(counts, ("same_as_freebase", "freebase_triples") if kg else (),
                   ("dbpedia_items", "same_as_dbpedia", "dbpedia_same_as_shared_skipped",
                    "dbpedia_edges", "abstracts") if dbpedia else ())


def _ml100k_freebase(w: _Writer, folder: Path, mint: _Minter, items: set[int]) -> Counter:
    counts: Counter = Counter()
    path = folder / "ml-100k.link"
    for no, (iid, ent) in _rows(path, "\t", 2, header=True, what="item_id entity_id"):
        iid_i = _int(iid, path, no, "item_id")
        if iid_i not in items:
            raise SourceFormatError(f"item {iid_i} is not in u.item", path, no)
        w(mint("item", iid_i), _SAME_AS, iri(FREEBASE + ent))
        counts["same_as_freebase"] += 1
    path = folder / "ml-100k.kg"
    for _, (h, r, t) in _rows(path, "\t", 3, header=True, what="head_id relation_id tail_id"):
        w(iri(FREEBASE + h), iri(FREEBASE + r), iri(FREEBASE + t))
        counts["freebase_triples"] += 1
    return counts


def _split_iris(cell: str) -> list[str]:
    # The SPARQL GROUP_CONCAT separator is "::"; split only where an IRI starts so that an IRI
    # holding "::" itself survives.
    return [p.strip() for p in re.split(r"::(?=https?://)", cell) if p.strip()] if cell.strip() else []


def _ml100k_dbpedia(w: _Writer, folder: Path, mint: _Minter, items: set[int]) -> Counter:
    counts: Counter = Counter()
    path = folder / "map.csv"
    links: dict[int, str] = {}
    for no, row in _csv_dicts(path, ("item_id", "URI")):
        iid = _int(row["item_id"], path, no, "item_id")
        if row["URI"].strip():
            links[iid] = row["URI"].strip()
    shared = {u for u, c in Counter(links.values()).items() if c > 1}
    for iid in sorted(links):
        if iid not in items:
            continue
        if links[iid] in shared:
            counts["dbpedia_same_as_shared_skipped"] += 1
            continue
        w(mint("item", iid), _SAME_AS, iri(links[iid]))
        counts["same_as_dbpedia"] += 1
    path = folder / "enriched.csv"
    abstract = f"<{DBO}abstract>"
    preds = {col: f"<{p}>" for col, p in DBPEDIA_EDGES.items()}
    for no, row in _csv_dicts(path, ("item_id", "abstract", *DBPEDIA_EDGES)):
        iid = _int(row["item_id"], path, no, "item_id")
        if iid not in items:
            raise SourceFormatError(f"item {iid} is not in u.item", path, no)
        i = mint("item", iid)
        counts["dbpedia_items"] += 1
        if row["abstract"].strip():
            w(i, abstract, literal(row["abstract"].strip(), lang="en"))
            counts["abstracts"] += 1
        for col, pred in preds.items():
            for target in _split_iris(row[col]):
                w(i, pred, iri(target))
                counts["dbpedia_edges"] += 1
    return counts


def _result(counts: Counter, *optional: tuple[str, ...]) -> dict[str, int]:
    # Keys a caller asked for are present even when zero, so counts compare across runs.
    for group in optional:
        for key in group:
            counts.setdefault(key, 0)
    return dict(counts)


# ---------------------------------------------------------------------- MovieLens latest-small
_TITLE_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?)?\)\s*$")


def convert_movielens_latest_small(root: str | os.PathLike, out: str | os.PathLike,
                                   tags: bool = False, links: bool = True, tag_events: bool = False,
                                   dataset: str = "movielens-small") -> dict[str, int]:
    """Convert MovieLens latest-small (Harper & Konstan 2015) to RDF.

    ``ratings.csv`` -> one event per rating (``kgr:rating`` ``xsd:decimal`` 0.5-5.0 as written,
    ``kgr:timestamp``); ``movies.csv`` -> ``kgr:title`` (as published), ``kgr:year`` from the
    trailing ``(1995)`` of the title (the first year of a ``(2006–2007)`` range; no year when the
    title has none) and ``kgr:genre`` edges (``(no genres listed)`` writes none); ``links.csv`` ->
    ``kgr:imdb "tt0114709"`` literal.

    The default output is leak-free: ``tags.csv`` is not read and the graph holds no ``kgr:tag``
    edge and no tag text. Tags are opt-in because they leak: a tag is applied by a user at a
    time, so an ``item kgr:tag <tag>`` edge (and the tag label that text encoders read as part of
    the item's text, e.g. ``"tag: pixar"``) reveals that some user met this item, often the very
    (user, item) pair that a random or temporal split holds out for validation or test, and with
    a temporal split a tag applied after the training cut puts the future into the training
    graph. Ask for them (``tags=True``) only for evaluations that accept this (or where tags are
    the side information of a cold-start or explanation study), never for the main benchmark.

    With ``tags=True``: each (item, tag) pair of ``tags.csv`` becomes ONE ``item kgr:tag <tag>``
    edge, the tag IRI built from :func:`tag_slug` and labelled (``rdfs:label``) with the tag's
    most frequent original spelling. Who tagged and when is dropped (but see the leak above).

    With ``tag_events``: each row of ``tags.csv`` (blank tags skipped) ALSO becomes a tagging event
    ``<tagging/n> rdf:type kgr:Tagging; kgr:user <user/u>; kgr:item <item/i>; kgr:timestamp ...;
    kgr:text "sci fi"`` (the tag as written, stripped), numbered ``n = 1, 2, ...`` in file order;
    a user who only tags is declared ``kgr:User`` too. The default ``kgrec`` mapping reads every
    node with ``kgr:user``/``kgr:item`` as an interaction, so it reads these events as interactions
    (with the tag as interaction text) in the same scenario as the ratings; the
    ``kgrec-behaviours`` mapping reads them as scenario ``tag`` and the ratings as ``rating``.
    Each application is one event: a user who puts three tags on one movie gives three events.

    Args:
        root: the folder with ``ratings.csv``, ``movies.csv``, ``tags.csv``, ``links.csv``.
        out: the output file; gzip'd when it ends in ``.gz``.
        tags: write ``item kgr:tag <tag>`` edges and the tags' ``rdfs:label`` text (default
            ``False``: they leak who met which item, see above; the shipped
            ``kg_data/movielens-small`` has none).
        links: write ``kgr:imdb`` literals (default ``True``).
        tag_events: write each tag application as a ``kgr:Tagging`` event (default ``False``:
            ratings are the only interactions, as in the shipped ``kg_data/movielens-small``).
            These are interactions, not KG edges: a split puts each in one part, so they do not
            leak the way ``tags`` edges do.
        dataset: the ``<dataset>`` part of minted IRIs (default ``"movielens-small"``).

    Returns:
        Counts: ``users`` (raters and, with ``tag_events``, taggers), ``items``, ``interactions``
        (rating events), ``genres``, ``genre_edges``, ``items_with_year``, ``tags`` and
        ``tag_edges`` (with ``tags``), ``tag_applications`` (with ``tags`` or ``tag_events``),
        ``tag_events`` (with ``tag_events``), ``imdb_links`` (with ``links``), ``triples``.

    Raises:
        SourceFormatError: a malformed row (the message names the file and line), e.g. a
            ``movieId`` not in ``movies.csv`` or, with ``tag_events``, a non-integer ``timestamp``.
        KgrecError: a needed file is missing.
    """
    root = Path(root)
    mint = _Minter(dataset)
    counts: Counter = Counter()
    with _Writer(out) as w:
        path = root / "movies.csv"
        items: set[int] = set()
        written_genres: set[str] = set()
        for no, row in _csv_dicts(path, ("movieId", "title", "genres")):
            iid = _int(row["movieId"], path, no, "movieId")
            items.add(iid)
            i = mint("item", iid)
            title = row["title"].strip()
            w(i, _TYPE, _T["Item"])
            w(i, _T["title"], literal(title))
            year = _TITLE_YEAR.search(title)
            if year:
                w(i, _T["year"], _int_literal(int(year.group(1))))
                counts["items_with_year"] += 1
            for name in row["genres"].split("|"):
                if _genre(w, mint, written_genres, i, name):
                    counts["genre_edges"] += 1
        path = root / "ratings.csv"
        users: set[int] = set()
        n_events = 0
        for no, row in _csv_dicts(path, ("userId", "movieId", "rating", "timestamp")):
            uid, iid = _int(row["userId"], path, no, "userId"), _int(row["movieId"], path, no, "movieId")
            if iid not in items:
                raise SourceFormatError(f"movieId {iid} is not in movies.csv", path, no)
            u = mint("user", uid)
            if uid not in users:
                users.add(uid)
                w(u, _TYPE, _T["User"])
            n_events += 1
            _event(w, mint, n_events, u, mint("item", iid),
                   _decimal_literal(_decimal(row["rating"], path, no, "rating")),
                   _datetime_literal(_int(row["timestamp"], path, no, "timestamp")))
        counts.update(users=len(users), items=len(items), interactions=n_events,
                      genres=len(written_genres))
        if tags or tag_events:
            counts.update(_ml_tags(w, root / "tags.csv", mint, items, users, tags, tag_events))
            counts["users"] = len(users)  # with the users who only tag
        if links:
            path = root / "links.csv"
            for no, row in _csv_dicts(path, ("movieId", "imdbId")):
                iid = _int(row["movieId"], path, no, "movieId")
                imdb = row["imdbId"].strip()
                if iid in items and imdb:
                    w(mint("item", iid), _T["imdb"], literal("tt" + imdb))
                    counts["imdb_links"] += 1
        counts["triples"] = w.count
    return _result(counts, ("items_with_year", "genre_edges"),
                   ("tags", "tag_edges") if tags else (),
                   ("tag_applications",) if tags or tag_events else (),
                   ("tag_events",) if tag_events else (),
                   ("imdb_links",) if links else ())


def _ml_tags(w: _Writer, path: Path, mint: _Minter, items: set[int], users: set[int],
             edges: bool, events: bool) -> Counter:
    """Read ``tags.csv``: ``item kgr:tag <tag>`` edges (``edges``) and/or tagging events (``events``).

    ``users`` (the user ids declared ``kgr:User`` so far) gains the taggers declared here.
    """
    counts: Counter = Counter()
    spellings: dict[str, Counter] = defaultdict(Counter)
    pairs: dict[tuple[int, str], None] = {}
    columns = ("userId", "movieId", "tag", "timestamp") if events else ("userId", "movieId", "tag")
    for no, row in _csv_dicts(path, columns):
        iid = _int(row["movieId"], path, no, "movieId")
        if iid not in items:
            raise SourceFormatError(f"movieId {iid} is not in movies.csv", path, no)
        slug = tag_slug(row["tag"])
        if not slug:
            counts["blank_tags_skipped"] += 1
            continue
        counts["tag_applications"] += 1
        spellings[slug][row["tag"].strip()] += 1
        pairs[(iid, slug)] = None
        if events:
            uid = _int(row["userId"], path, no, "userId")
            u = mint("user", uid)
            if uid not in users:
                users.add(uid)
                w(u, _TYPE, _T["User"])
            counts["tag_events"] += 1
            _event(w, mint, counts["tag_events"], u, mint("item", iid),
                   time=_datetime_literal(_int(row["timestamp"], path, no, "timestamp")),
                   text=literal(row["tag"].strip()), kind="tagging", cls="Tagging")
    if not edges:
        return counts
    for slug in sorted(spellings):
        # Most frequent spelling, ties broken by sorting: the label does not depend on row order.
        label = min(spellings[slug].items(), key=lambda kv: (-kv[1], kv[0]))[0]
        w(mint("tag", slug), _LABEL, literal(label))
    for iid, slug in sorted(pairs):
        w(mint("item", iid), _T["tag"], mint("tag", slug))
    counts.update(tags=len(spellings), tag_edges=len(pairs))
    return counts


# ------------------------------------------------------------------------------------- Last.fm
def convert_lastfm(root: str | os.PathLike, out: str | os.PathLike, linked_only: bool = False,
                   dataset: str = "lastfm") -> dict[str, int]:
    """Convert hetrec2011 Last.fm listening counts + the Satori KG of KGCN (Wang et al. 2019) to RDF.

    ``user_artists.dat`` (``userID artistID weight``, tab-separated, header) -> one event per row
    with ``kgr:rating`` = the listening count (``xsd:integer``; no time in this file).
    ``item_index2entity_id.txt`` (``artistID satori_index``) -> ``item owl:sameAs <.../entity/<index>>``;
    ``kg.txt`` (``head relation tail``: Satori indices, Freebase-style relation names) ->
    ``<.../entity/<h>> <.../relation/<name>> <.../entity/<t>>``. Satori ids are not published,
    so entities get dataset-local IRIs.

    Args:
        root: the folder with ``user_artists.dat``, ``item_index2entity_id.txt``, ``kg.txt``.
        out: the output file; gzip'd when it ends in ``.gz``.
        linked_only: keep only listening rows of artists that have a KG entity, as KGCN does
            (1,872 users / 3,846 artists / 21,173 rows); default ``False`` keeps all 92,834 rows.
        dataset: the ``<dataset>`` part of minted IRIs (default ``"lastfm"``).

    Returns:
        Counts: ``users``, ``items``, ``interactions``, ``skipped_unlinked``, ``same_as``,
        ``kg_triples``, ``relations``, ``triples``.
    """
    root = Path(root)
    mint = _Minter(dataset)
    counts: Counter = Counter()
    path = root / "item_index2entity_id.txt"
    entity_of: dict[int, int] = {}
    for no, (aid, ent) in _rows(path, None, 2, what="artistID entity_index"):
        entity_of[_int(aid, path, no, "artistID")] = _int(ent, path, no, "entity index")
    with _Writer(out) as w:
        path = root / "user_artists.dat"
        users: set[int] = set()
        items: set[int] = set()
        n_events = 0
        for no, (uid, aid, weight) in _rows(path, None, 3, header=True, what="userID artistID weight"):
            uid_i, aid_i = _int(uid, path, no, "userID"), _int(aid, path, no, "artistID")
            if linked_only and aid_i not in entity_of:
                counts["skipped_unlinked"] += 1
                continue
            u, i = mint("user", uid_i), mint("item", aid_i)
            if uid_i not in users:
                users.add(uid_i)
                w(u, _TYPE, _T["User"])
            if aid_i not in items:
                items.add(aid_i)
                w(i, _TYPE, _T["Item"])
            n_events += 1
            _event(w, mint, n_events, u, i, _int_literal(_int(weight, path, no, "weight")))
        for aid in sorted(entity_of):
            if aid in items:
                w(mint("item", aid), _SAME_AS, mint("entity", entity_of[aid]))
                counts["same_as"] += 1
        path = root / "kg.txt"
        relations: set[str] = set()
        for no, (h, r, t) in _rows(path, None, 3, what="head relation tail"):
            relations.add(r)
            w(mint("entity", _int(h, path, no, "head")), mint("relation", r),
              mint("entity", _int(t, path, no, "tail")))
            counts["kg_triples"] += 1
        counts.update(users=len(users), items=len(items), interactions=n_events,
                      relations=len(relations))
        counts["triples"] = w.count
    return _result(counts, ("skipped_unlinked", "same_as"))


# -------------------------------------------------------------------------------- Book-Crossing
def convert_book_crossing(root: str | os.PathLike, out: str | os.PathLike,
                          dataset: str = "book-crossing") -> dict[str, int]:
    """Convert the Book-Crossing + Satori KG benchmark of RippleNet/MKR/MCCLK to RDF.

    ``ratings_final.txt`` (``user item label``): label-1 rows -> ``<u> kgr:interactedWith <i>``
    (no rating or time survives the preprocessing); label-0 rows are sampled negatives and write
    no interaction, but their items are still declared ``kgr:Item`` so the catalogue is complete.
    ``kg_final.txt`` (``head relation tail``, all indices): the preprocessing numbered items and
    entities together, item ``i`` IS entity ``i``, so each item gets
    ``owl:sameAs <.../entity/<i>>`` and each triple is written between ``<.../entity/<n>>`` IRIs with
    relation IRIs ``<.../relation/<index>>`` (the relation names are not recoverable: the KG in
    ``raw/`` is a different, smaller version). Entity-entity triples (multi-hop) are kept.

    Args:
        root: the folder with ``ratings_final.txt`` and ``kg_final.txt``.
        out: the output file; gzip'd when it ends in ``.gz``.
        dataset: the ``<dataset>`` part of minted IRIs (default ``"book-crossing"``).

    Returns:
        Counts: ``users``, ``items``, ``interactions``, ``negatives_skipped``, ``same_as``,
        ``kg_triples``, ``relations``, ``triples``.
    """
    root = Path(root)
    mint = _Minter(dataset)
    counts: Counter = Counter()
    with _Writer(out) as w:
        path = root / "ratings_final.txt"
        users: set[int] = set()
        items: set[int] = set()
        for no, (uid, iid, label) in _rows(path, None, 3, what="user item label"):
            uid_i, iid_i = _int(uid, path, no, "user"), _int(iid, path, no, "item")
            if label not in ("0", "1"):
                raise SourceFormatError(f"'label' must be 0 or 1 (got {label!r})", path, no)
            i = mint("item", iid_i)
            if iid_i not in items:
                items.add(iid_i)
                w(i, _TYPE, _T["Item"])
                w(i, _SAME_AS, mint("entity", iid_i))
            if label == "0":
                counts["negatives_skipped"] += 1
                continue
            u = mint("user", uid_i)
            if uid_i not in users:
                users.add(uid_i)
                w(u, _TYPE, _T["User"])
            w(u, _T["interactedWith"], i)
            counts["interactions"] += 1
        path = root / "kg_final.txt"
        relations: set[int] = set()
        for no, (h, r, t) in _rows(path, None, 3, what="head relation tail"):
            r_i = _int(r, path, no, "relation")
            relations.add(r_i)
            w(mint("entity", _int(h, path, no, "head")), mint("relation", r_i),
              mint("entity", _int(t, path, no, "tail")))
            counts["kg_triples"] += 1
        counts.update(users=len(users), items=len(items), same_as=len(items),
                      relations=len(relations))
        counts["triples"] = w.count
    return _result(counts, ("interactions", "negatives_skipped"))


# -------------------------------------------------------------------------------------- registry
#: Dataset name -> (folder under the data root, converter). Output files are ``<name>.nt.gz``.
CONVERTERS = {
    "movielens-100k": ("movielens-100k", convert_movielens_100k),
    "movielens-small": ("movielens-latest-small", convert_movielens_latest_small),
    "lastfm": ("lastfm-kg", convert_lastfm),
    "book-crossing": ("book-crossing-kg", convert_book_crossing),
}


def convert(name: str, data_root: str | os.PathLike, out: str | os.PathLike, **kwargs) -> dict[str, int]:
    """Run the converter registered as ``name`` on ``<data_root>/<its folder>``, writing ``out``."""
    if name not in CONVERTERS:
        raise KgrecError(f"'name' must be one of {sorted(CONVERTERS)} (got {name!r})")
    folder, fn = CONVERTERS[name]
    src = Path(data_root) / folder
    if not src.is_dir():
        raise KgrecError(f"'{src}' is missing: download the {name} dataset there "
                         f"(see the converter's docstring for its source)")
    return fn(src, out, **kwargs)
