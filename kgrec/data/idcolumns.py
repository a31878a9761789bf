"""The integer triples behind a graph build: per predicate, (subject id, object id) columns.

:meth:`kgrec.data.extract._Builder.read_ids` keeps the parsed triples
(:class:`kgrec.data.rdf.IdTriples`) as integer columns instead of (subject, object) pairs of
Python terms: the builder's per-predicate pairs are made on first use (:class:`LazyPairs`), and
the event predicates, most of a recommendation graph's triples, are read straight from the
columns and never become pairs.
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np

from kgrec.data.rdf import RDF, XSD, Term

__all__ = ["IRI", "BLANK", "PLAIN", "TYPED", "IdColumns", "LazyPairs", "first_distinct_rows"]

_DATATYPE = itemgetter(1)  # of a Literal
_PLAIN_TYPES = frozenset((XSD + "string", RDF + "langString"))

IRI, BLANK, PLAIN, TYPED = 0, 1, 2, 3  # term kinds of IdColumns.kind (literals: >= PLAIN)


def first_distinct_rows(ids: np.ndarray) -> np.ndarray:
    """The distinct rows of an ``(n, 3)`` id array, each where it first appears, in that order."""
    bs, bp, bo = (int(ids[:, k].max()).bit_length() for k in range(3))
    if bs + bp + bo <= 63:  # one int64 key per row (predicates are few): much faster than axis=0
        key = (ids[:, 0] << (bp + bo)) | (ids[:, 1] << bo) | ids[:, 2]
        _, first_row = np.unique(key, return_index=True)
    else:
        _, first_row = np.unique(ids, axis=0, return_index=True)
    return ids[np.sort(first_row)]


class IdColumns:
    """The term table and, per predicate, the distinct (subject id, object id) columns in file
    order; ``kind`` gives each term's kind (:data:`IRI`, :data:`BLANK`, :data:`PLAIN` literal
    (``xsd:string`` / ``rdf:langString``), other :data:`TYPED` literal).
    """

    def __init__(self, terms: list[Term], cols: dict[str, tuple[np.ndarray, np.ndarray]]):
        self.terms = terms
        # object-array fancy indexing runs in C (fromiter keeps each Literal tuple whole)
        self.table = np.fromiter(terms, dtype=object, count=len(terms))
        self.cols = cols
        # a literal is any tuple (Literal, or a plain (value, datatype, language) tuple)
        is_str = np.fromiter(map(str.__instancecheck__, terms), dtype=bool, count=len(terms))
        kind = np.where(is_str, IRI, TYPED).astype(np.int8)
        lit = np.flatnonzero(kind == TYPED)
        plain = [k for k, d in zip(lit.tolist(), map(_DATATYPE, self.table[lit].tolist())) if d in _PLAIN_TYPES]
        kind[plain] = PLAIN
        blank = [k for k in np.flatnonzero(kind == IRI).tolist() if terms[k].startswith("_:")]
        kind[blank] = BLANK
        self.kind = kind
        self._single: dict = {}

    def pairs(self, p: str) -> list[tuple[Term, Term]]:
        s, o = self.cols[p]
        return list(zip(self.table[s].tolist(), self.table[o].tolist()))

    def subjects(self, p: str) -> list[Term]:
        return self.table[self.cols[p][0]].tolist()

    def n_literal_objects(self, p: str) -> int:
        return int((self.kind[self.cols[p][1]] >= PLAIN).sum())

    def has_plain_literal(self, p: str) -> bool:
        return bool((self.kind[self.cols[p][1]] == PLAIN).any())

    def subjects_with_object(self, p: str, objects) -> np.ndarray:
        """Distinct ids of the subjects that have one of ``objects`` (terms) under ``p``."""
        if p not in self.cols:
            return np.empty(0, dtype=np.int64)
        s, o = self.cols[p]
        distinct = self._distinct(o)
        wanted = [k for k, t in zip(distinct.tolist(), self.table[distinct].tolist()) if t in objects]
        return self._distinct(s[np.isin(o, wanted)])

    def all_subjects(self, preds) -> np.ndarray:
        """Distinct ids of the subjects of any of ``preds``."""
        found = [self.cols[p][0] for p in preds if p in self.cols]
        return self._distinct(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)

    def _distinct(self, ids: np.ndarray) -> np.ndarray:
        """Sorted distinct values of ``ids`` (a counting pass: ids are dense, under len(terms))."""
        return np.flatnonzero(np.bincount(ids, minlength=len(self.terms)))

    def single_values(self, p: str) -> np.ndarray | None:
        """Object id per term id under ``p`` (-1: none); ``None`` if a subject has several."""
        if p not in self._single:
            v = None
            if p not in self.cols:
                v = np.full(len(self.terms), -1, dtype=np.int64)
            else:
                s, o = self.cols[p]
                if len(s) == 0 or int(np.bincount(s).max()) <= 1:
                    v = np.full(len(self.terms), -1, dtype=np.int64)
                    v[s] = o
            self._single[p] = v
        return self._single[p]


class LazyPairs(dict):
    """``by_pred`` over :class:`IdColumns`: a predicate's (subject, object) pairs are built on
    first access, so the event predicates that only the array paths read are never built.
    """

    def __init__(self, cols: IdColumns):
        super().__init__(dict.fromkeys(cols.cols))
        self._cols = cols

    def __getitem__(self, p):
        v = dict.__getitem__(self, p)
        if v is None:
            v = self._cols.pairs(p)
            dict.__setitem__(self, p, v)
        return v

    def get(self, p, default=None):
        return self[p] if p in self else default

    def values(self):
        return [self[p] for p in self]

    def items(self):
        return [(p, self[p]) for p in self]
