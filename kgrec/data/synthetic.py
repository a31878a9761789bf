"""A seeded generator of realistic recommendation knowledge graphs, streamed as N-Triples.

``generate(out, users=N, items=M, seed=S)`` writes users, items and reified interaction events in
the kgrec vocabulary (``kg_data/vocab/kgrec.ttl``), so ``kgrec.load(out)`` reads the file with the
default mapping. Triples are written line by line (no rdflib ``Graph`` is built), gzip'd when the
path ends in ``.gz``, and the same arguments always give identical bytes.

What makes the graph realistic enough to test scale and temporal code on:

* **Heavy tails.** Item popularity is Zipf-like (``weight ∝ rank^-popularity_exponent``), user
  activity is Pareto (shape ``activity_shape``), directors' numbers of items are Zipf-like too.
* **A small attribute hierarchy.** ``genres`` top genres, each with ``subgenres`` subgenres
  (``skos:broader`` edges); each item has one subgenre of its main genre (``kgr:genre``), sometimes
  a second one from another genre, one director (``dbo:director``) and a year (``kgr:year``).
* **Interest drift.** Each user starts in one genre and moves to another: the ``j``-th of ``n``
  interactions comes from the late genre with probability ``drift * j / (n - 1)``, from the early
  genre otherwise, except that a share ``explore`` of interactions follows global popularity.
* **Text.** Items have an English title and description (``kgr:title``, ``kgr:description``),
  genres and directors an ``rdfs:label``.

Interactions are ``kgr:Interaction`` events with ``kgr:user``, ``kgr:item``, ``kgr:rating`` (1-5,
higher inside the user's current genre) and ``kgr:timestamp`` (``xsd:dateTime``, increasing per
user). A user never interacts with the same item twice.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from kgrec.checks import check_int
from kgrec.data.convert.ntriples import BASE, DBO, KGR, RDF_TYPE, RDFS_LABEL, XSD, _Writer, literal
from kgrec.errors import KgrecError

__all__ = ["generate", "SKOS_BROADER"]

SKOS_BROADER = "http://www.w3.org/2004/02/skos/core#broader"

_ADJ = ("Silent", "Crimson", "Hidden", "Last", "Broken", "Golden", "Distant", "Electric", "Frozen", "Wild",
        "Secret", "Burning", "Lonely", "Iron", "Midnight", "Paper", "Restless", "Velvet", "Hollow", "Bright")
_NOUN = ("River", "Empire", "Garden", "Signal", "Harbor", "Machine", "Island", "Promise", "Shadow", "Road",
         "Winter", "Kingdom", "Letter", "Orbit", "Mirror", "Forest", "Station", "Voyage", "Echo", "Crown")
_PLOT = ("a reluctant hero", "two old friends", "a young inventor", "a retired detective", "a family",
         "a lost crew", "a small town", "an unlikely pair", "a rebel", "a musician")
_ACTION = ("searches for the truth", "fights to survive", "finds an unexpected home", "plans one last job",
           "uncovers a conspiracy", "learns to let go", "races against time", "falls in love")
_GENRE_NAMES = ("Drama", "Comedy", "Thriller", "Science fiction", "Romance", "Horror", "Animation",
                "Documentary", "Adventure", "Crime", "Fantasy", "Musical")
_FIRST = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Luca")
_LAST = ("Adler", "Brandt", "Costa", "Duval", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jansen")

_ROOT = BASE + "synthetic/"
_T = {k: f"<{KGR}{k}>" for k in ("User", "Item", "Interaction", "user", "item", "rating", "timestamp",
                                 "title", "description", "year", "genre")}
_TYPE, _LABEL, _BROADER, _DIRECTOR = f"<{RDF_TYPE}>", f"<{RDFS_LABEL}>", f"<{SKOS_BROADER}>", f"<{DBO}director>"
_INT, _DATETIME = f"^^<{XSD}integer>", f"^^<{XSD}dateTime>"


def _check_float(value, name: str, low: float, high: float | None = None) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if not ok or not (value >= low and (high is None or value <= high)):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise KgrecError(f"'{name}' must be a number {bound} (got {value!r})")
    return float(value)


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``[n]`` float64 weights ``rank^-exponent`` over a random permutation of ranks, summing to 1."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    w = w[rng.permutation(n)]
    return w / w.sum()


@dataclass(frozen=True)
class _Settings:
    """:func:`generate`'s arguments, checked."""

    n_users: int
    n_items: int
    seed: int
    n_genres: int
    n_sub: int
    n_dir: int
    mean_act: float
    alpha: float
    shape: float
    drift: float
    explore: float
    compresslevel: int


@dataclass(frozen=True)
class _Items:
    """The items' drawn attributes, and the popularity CDFs that interactions are drawn from."""

    genre_share: np.ndarray  # [genres] share of items per main genre
    genre: np.ndarray  # [items] main genre
    sub: np.ndarray  # [items] subgenre of the main genre
    has_second: np.ndarray  # [items] bool: a second subgenre from another genre
    second_genre: np.ndarray
    second_sub: np.ndarray
    director: np.ndarray
    year: np.ndarray
    words: np.ndarray  # [items, 4] random words of the title and description
    genre_items: list[np.ndarray]  # per genre, its items
    genre_cdf: list[np.ndarray | None]  # per genre, cumulative popularity of its items (None: no item)
    global_cdf: np.ndarray  # cumulative popularity of all items
    nonempty: np.ndarray  # [genres] bool: the genre has items


def generate(out: str | os.PathLike, users: int, items: int, seed: int = 0, *,
             interactions_per_user: float = 20.0, genres: int = 8, subgenres: int = 3,
             directors: int | None = None, popularity_exponent: float = 1.0, activity_shape: float = 1.5,
             drift: float = 0.8, explore: float = 0.2, compresslevel: int = 6) -> dict[str, int]:
    """Write a synthetic recommendation KG to ``out`` (N-Triples, gzip'd when it ends in ``.gz``).

    Args:
        out: the output file (``.nt`` or ``.nt.gz``); written atomically.
        users: number of users (each has at least one interaction).
        items: number of items (all declared ``kgr:Item``, some may have no interaction).
        seed: random seed; the same arguments give identical bytes.
        interactions_per_user: mean of the Pareto user activity before capping at ``items // 2``
            (default ``20``).
        genres: number of top genres (default ``8``).
        subgenres: subgenres per top genre (default ``3``).
        directors: number of directors (default ``max(1, items // 8)``).
        popularity_exponent: Zipf exponent of item popularity (default ``1.0``).
        activity_shape: Pareto shape of user activity; smaller = heavier tail (default ``1.5``).
        drift: how far a user's genre moves from the early to the late genre over their history,
            ``0`` (none) to ``1`` (all of the last interactions in the late genre) (default ``0.8``).
        explore: share of interactions drawn by global popularity regardless of genre (default ``0.2``).
        compresslevel: gzip level for ``.gz`` output (default ``6``).

    Returns:
        Counts: ``triples``, ``users``, ``items``, ``interactions``, ``genres``, ``directors``.

    Raises:
        KgrecError: an argument is out of range (the message names it).
    """
    cfg = _settings(out, users, items, seed, interactions_per_user, genres, subgenres, directors,
                    popularity_exponent, activity_shape, drift, explore, compresslevel)
    rng = np.random.default_rng(cfg.seed)
    it = _draw_items(rng, cfg)
    item_iri = [f"<{_ROOT}item/i{i}>" for i in range(cfg.n_items)]
    counts: Counter = Counter()
    with _Writer(out, compresslevel=cfg.compresslevel) as w:
        sub_iri, person_iri = _write_attributes(w, cfg)
        _write_items(w, cfg, it, item_iri, sub_iri, person_iri)
        event = _write_users(w, rng, cfg, it, item_iri)
        counts.update(triples=w.count, users=cfg.n_users, items=cfg.n_items, interactions=event,
                      genres=cfg.n_genres * (1 + cfg.n_sub), directors=cfg.n_dir)
    return dict(counts)


def _settings(out, users, items, seed, interactions_per_user, genres, subgenres, directors, popularity_exponent,
              activity_shape, drift, explore, compresslevel) -> _Settings:
    """:func:`generate`'s arguments checked in the order written (the first bad one raises)."""
    n_users = check_int(users, "users", 1)
    n_items = check_int(items, "items", 2)
    seed = check_int(seed, "seed", 0)
    n_genres = check_int(genres, "genres", 2)
    n_sub = check_int(subgenres, "subgenres", 1)
    n_dir = max(1, n_items // 8) if directors is None else check_int(directors, "directors", 1)
    mean_act = _check_float(interactions_per_user, "interactions_per_user", 1.0)
    alpha = _check_float(popularity_exponent, "popularity_exponent", 0.0)
    shape = _check_float(activity_shape, "activity_shape", 1.01)
    drift = _check_float(drift, "drift", 0.0, 1.0)
    explore = _check_float(explore, "explore", 0.0, 1.0)
    compresslevel = check_int(compresslevel, "compresslevel", 0)
    if compresslevel > 9:
        raise KgrecError(f"'compresslevel' must be an integer in [0, 9] (got {compresslevel!r})")
    name = os.fspath(out)
    if not (name.endswith(".nt") or name.endswith(".nt.gz")):
        raise KgrecError(f"'out' must end in .nt or .nt.gz (got '{name}')")
    return _Settings(n_users, n_items, seed, n_genres, n_sub, n_dir, mean_act, alpha, shape, drift, explore,
                     compresslevel)


def _draw_items(rng: np.random.Generator, cfg: _Settings) -> _Items:
    """Draw every item's genres, director, year and words, and the popularity CDFs (``rng`` order fixed)."""
    n_items, n_genres, n_sub, n_dir, alpha = cfg.n_items, cfg.n_genres, cfg.n_sub, cfg.n_dir, cfg.alpha
    # main genre (mildly skewed), subgenre, optional cross-genre subgenre, director, year
    genre_share = _zipf_weights(n_genres, 0.5, rng)
    item_genre = rng.choice(n_genres, size=n_items, p=genre_share)
    item_sub = rng.integers(0, n_sub, size=n_items)
    has_second = rng.random(n_items) < 0.3
    second_genre = (item_genre + rng.integers(1, n_genres, size=n_items)) % n_genres
    second_sub = rng.integers(0, n_sub, size=n_items)
    item_dir = rng.choice(n_dir, size=n_items, p=_zipf_weights(n_dir, 1.1, rng))
    item_year = rng.integers(1950, 2025, size=n_items)
    popularity = _zipf_weights(n_items, alpha, rng)
    words = rng.integers(0, 1 << 30, size=(n_items, 4))

    # per-genre cumulative popularity, for inverse-CDF draws inside one genre
    genre_items = [np.flatnonzero(item_genre == g) for g in range(n_genres)]
    genre_cdf = [np.cumsum(popularity[ix]) / popularity[ix].sum() if ix.size else None for ix in genre_items]
    global_cdf = np.cumsum(popularity)
    nonempty = np.array([ix.size > 0 for ix in genre_items])
    return _Items(genre_share, item_genre, item_sub, has_second, second_genre, second_sub, item_dir, item_year,
                  words, genre_items, genre_cdf, global_cdf, nonempty)


def _write_attributes(w: _Writer, cfg: _Settings) -> tuple[list[list[str]], list[str]]:
    """Write the genres, their subgenres (``skos:broader``) and the directors; the subgenre and director IRIs."""
    n_genres, n_sub, n_dir = cfg.n_genres, cfg.n_sub, cfg.n_dir
    genre_iri = [f"<{_ROOT}genre/g{g}>" for g in range(n_genres)]
    sub_iri = [[f"<{_ROOT}genre/g{g}-{s}>" for s in range(n_sub)] for g in range(n_genres)]
    person_iri = [f"<{_ROOT}person/p{d}>" for d in range(n_dir)]
    for g in range(n_genres):
        w(genre_iri[g], _LABEL, literal(_GENRE_NAMES[g % len(_GENRE_NAMES)] + ("" if g < len(_GENRE_NAMES)
                                                                              else f" {g}"), "en"))
        for s in range(n_sub):
            w(sub_iri[g][s], _BROADER, genre_iri[g])
            w(sub_iri[g][s], _LABEL, literal(f"{_GENRE_NAMES[g % len(_GENRE_NAMES)]} / style {s + 1}", "en"))
    for d in range(n_dir):
        w(person_iri[d], _LABEL, literal(f"{_FIRST[d % len(_FIRST)]} {_LAST[(d // len(_FIRST)) % len(_LAST)]}"
                                         f" {d}"))
    return sub_iri, person_iri


def _write_items(w: _Writer, cfg: _Settings, it: _Items, item_iri: list[str], sub_iri: list[list[str]],
                 person_iri: list[str]) -> None:
    """Write every item: type, English title and description, year, genres, director."""
    for i in range(cfg.n_items):
        a, b, c, e = (int(x) for x in it.words[i])
        g = int(it.genre[i])
        t = item_iri[i]
        w(t, _TYPE, _T["Item"])
        w(t, _T["title"], literal(f"The {_ADJ[a % 20]} {_NOUN[b % 20]} {i}", "en"))
        w(t, _T["description"], literal(
            f"A {_GENRE_NAMES[g % len(_GENRE_NAMES)].lower()} story: {_PLOT[c % 10]} "
            f"{_ACTION[e % 8]}.", "en"))
        w(t, _T["year"], f'"{int(it.year[i])}"{_INT}')
        w(t, _T["genre"], sub_iri[g][int(it.sub[i])])
        if it.has_second[i]:
            w(t, _T["genre"], sub_iri[int(it.second_genre[i])][int(it.second_sub[i])])
        w(t, _DIRECTOR, person_iri[int(it.director[i])])


def _write_users(w: _Writer, rng: np.random.Generator, cfg: _Settings, it: _Items, item_iri: list[str]) -> int:
    """Write every user and their interaction events (Pareto activity, increasing timestamps); the event count."""
    cap = max(1, cfg.n_items // 2)
    xm = cfg.mean_act * (cfg.shape - 1) / cfg.shape  # Pareto scale giving mean `mean_act`
    activity = np.minimum(np.floor(xm * (1 + rng.pareto(cfg.shape, size=cfg.n_users))).astype(np.int64), cap)
    activity = np.maximum(activity, 1)
    ok_genres = np.flatnonzero(it.nonempty)
    gp = it.genre_share[ok_genres] / it.genre_share[ok_genres].sum()
    start = 1_577_836_800 + rng.integers(0, 2 * 365 * 86400, size=cfg.n_users)  # 2020-01-01 + up to 2 years
    event = 0
    for u in range(cfg.n_users):
        ui = f"<{_ROOT}user/u{u}>"
        w(ui, _TYPE, _T["User"])
        chosen, times, ratings = _history(rng, cfg, it, int(activity[u]), start[u], ok_genres, gp)
        for k in range(chosen.size):
            e = f"<{_ROOT}event/{event}>"
            event += 1
            w(e, _TYPE, _T["Interaction"])
            w(e, _T["user"], ui)
            w(e, _T["item"], item_iri[int(chosen[k])])
            w(e, _T["rating"], f'"{int(ratings[k])}"{_INT}')
            w(e, _T["timestamp"], f'"{np.datetime_as_string(np.datetime64(int(times[k]), "s"))}Z"{_DATETIME}')
    return event


def _history(rng: np.random.Generator, cfg: _Settings, it: _Items, n: int, start: np.int64,
             ok_genres: np.ndarray, gp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One user's ``n`` distinct items drifting from an early to a late genre, with their times and ratings."""
    early, late = rng.choice(ok_genres, size=2, replace=len(ok_genres) < 2, p=gp)
    m = 3 * n + 8  # oversample, keep the first n distinct items
    pos = np.arange(m) / max(n - 1, 1)
    r_mode, r_genre, r_item = rng.random(m), rng.random(m), rng.random(m)
    use_late = r_genre < cfg.drift * np.minimum(pos, 1.0)
    picked = np.empty(m, dtype=np.int64)
    glob = r_mode < cfg.explore
    picked[glob] = np.searchsorted(it.global_cdf, r_item[glob] * it.global_cdf[-1], side="right")
    for g, sel in ((early, ~glob & ~use_late), (late, ~glob & use_late)):
        ix = it.genre_items[g]
        picked[sel] = ix[np.minimum(np.searchsorted(it.genre_cdf[g], r_item[sel], side="right"), ix.size - 1)]
    picked = np.minimum(picked, cfg.n_items - 1)
    _, first = np.unique(picked, return_index=True)
    chosen = picked[np.sort(first)[:n]]
    gaps = rng.exponential(2 * 86400, size=chosen.size).astype(np.int64) + 60
    times = start + np.cumsum(gaps)
    current = np.where(np.arange(chosen.size) / max(n - 1, 1) * cfg.drift > 0.5, late, early)
    in_genre = it.genre[chosen] == current
    ratings = np.clip(np.where(in_genre, 4, 2) + rng.integers(-1, 2, size=chosen.size), 1, 5)
    return chosen, times, ratings
