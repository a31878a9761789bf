"""The Satori-KG benchmarks of KGCN and RippleNet to RDF: Last.fm (hetrec2011) and Book-Crossing.

Both ship preprocessed interaction files and a KG over Satori entity indices (the Satori ids are
not published), so entities and relations get dataset-local IRIs.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from kgrec.data.convert.ntriples import _SAME_AS, _T, _TYPE, _declared, _event, _int_literal, _Minter, _result, _Writer
from kgrec.data.convert.sources import _int, _rows
from kgrec.errors import SourceFormatError

__all__ = ["convert_lastfm", "convert_book_crossing"]


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
            u = _declared(w, mint, users, "user", uid_i, "User")
            i = _declared(w, mint, items, "item", aid_i, "Item")
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
            u = _declared(w, mint, users, "user", uid_i, "User")
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
