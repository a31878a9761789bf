"""MovieLens to RDF: MovieLens-100K (with the RecBole Freebase and FranKGraphBench DBpedia data)
and MovieLens latest-small (with opt-in tag edges and tagging events).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

from kgrec.data.convert.ntriples import (
    _LABEL,
    _SAME_AS,
    _T,
    _TYPE,
    DBO,
    DCT_SUBJECT,
    FREEBASE,
    _datetime_literal,
    _decimal_literal,
    _declared,
    _event,
    _int_literal,
    _Minter,
    _result,
    _Writer,
    iri,
    literal,
)
from kgrec.data.convert.sources import _csv_dicts, _decimal, _int, _rows
from kgrec.errors import SourceFormatError

__all__ = ["convert_movielens_100k", "convert_movielens_latest_small", "tag_slug", "ML100K_GENRES", "NO_GENRE",
           "DBPEDIA_EDGES"]

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
    genres = _ml100k_genres(root)
    with _Writer(out) as w:
        users = _ml100k_users(w, root / "u.user", mint)
        items, written_genres = _ml100k_items(w, root / "u.item", mint, genres, counts)
        n_events = _ml100k_ratings(w, root / "u.data", mint, items, users)
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


def _ml100k_genres(root: Path) -> tuple[str, ...]:
    """The genre names in the flag column order of ``u.item``: from ``u.genre``, else :data:`ML100K_GENRES`."""
    genres = ML100K_GENRES
    if (root / "u.genre").is_file():
        # u.genre lists "name|index"; the index is the flag column in u.item.
        pairs = [(_int(f[1], root / "u.genre", no, "index"), f[0])
                 for no, f in _rows(root / "u.genre", "|", 2, what="genre|index")]
        genres = tuple(name for _, name in sorted(pairs))
    return genres


def _ml100k_users(w: _Writer, path: Path, mint: _Minter) -> set[int]:
    """Write the users of ``u.user`` (optional) with their literals; the ids written."""
    users: set[int] = set()
    if path.is_file():
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
    return users


def _ml100k_items(w: _Writer, path: Path, mint: _Minter, genres: tuple[str, ...],
                  counts: Counter) -> tuple[set[int], set[str]]:
    """Write the items of ``u.item`` with title, year and genre edges; the item ids and genre names written."""
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
    return items, written_genres


def _ml100k_ratings(w: _Writer, path: Path, mint: _Minter, items: set[int], users: set[int]) -> int:
    """Write one event per rating of ``u.data`` (declaring users not in ``users``); the number of events."""
    n_events = 0
    for no, (uid, iid, rating, ts) in _rows(path, None, 4, what="user item rating timestamp"):
        uid_i, iid_i = _int(uid, path, no, "user id"), _int(iid, path, no, "item id")
        if iid_i not in items:
            raise SourceFormatError(f"item {iid_i} is not in u.item", path, no)
        u = _declared(w, mint, users, "user", uid_i, "User")
        n_events += 1
        _event(w, mint, n_events, u, mint("item", iid_i),
               _int_literal(_int(rating, path, no, "rating")),
               _datetime_literal(_int(ts, path, no, "timestamp")))
    return n_events


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
        items, written_genres = _ml_small_movies(w, root / "movies.csv", mint, counts)
        users, n_events = _ml_small_ratings(w, root / "ratings.csv", mint, items)
        counts.update(users=len(users), items=len(items), interactions=n_events,
                      genres=len(written_genres))
        if tags or tag_events:
            counts.update(_ml_tags(w, root / "tags.csv", mint, items, users, tags, tag_events))
            counts["users"] = len(users)  # with the users who only tag
        if links:
            _ml_small_links(w, root / "links.csv", mint, items, counts)
        counts["triples"] = w.count
    return _result(counts, ("items_with_year", "genre_edges"),
                   ("tags", "tag_edges") if tags else (),
                   ("tag_applications",) if tags or tag_events else (),
                   ("tag_events",) if tag_events else (),
                   ("imdb_links",) if links else ())


def _ml_small_movies(w: _Writer, path: Path, mint: _Minter, counts: Counter) -> tuple[set[int], set[str]]:
    """Write the items of ``movies.csv`` with title, year and genre edges; the item ids and genre names written."""
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
    return items, written_genres


def _ml_small_ratings(w: _Writer, path: Path, mint: _Minter, items: set[int]) -> tuple[set[int], int]:
    """Write one event per rating of ``ratings.csv`` and declare its users; the user ids and the number of events."""
    users: set[int] = set()
    n_events = 0
    for no, row in _csv_dicts(path, ("userId", "movieId", "rating", "timestamp")):
        uid, iid = _int(row["userId"], path, no, "userId"), _int(row["movieId"], path, no, "movieId")
        if iid not in items:
            raise SourceFormatError(f"movieId {iid} is not in movies.csv", path, no)
        u = _declared(w, mint, users, "user", uid, "User")
        n_events += 1
        _event(w, mint, n_events, u, mint("item", iid),
               _decimal_literal(_decimal(row["rating"], path, no, "rating")),
               _datetime_literal(_int(row["timestamp"], path, no, "timestamp")))
    return users, n_events


def _ml_small_links(w: _Writer, path: Path, mint: _Minter, items: set[int], counts: Counter) -> None:
    """Write ``kgr:imdb`` literals of ``links.csv`` for known items with an IMDb id."""
    for no, row in _csv_dicts(path, ("movieId", "imdbId")):
        iid = _int(row["movieId"], path, no, "movieId")
        imdb = row["imdbId"].strip()
        if iid in items and imdb:
            w(mint("item", iid), _T["imdb"], literal("tt" + imdb))
            counts["imdb_links"] += 1


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
            u = _declared(w, mint, users, "user", uid, "User")
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
