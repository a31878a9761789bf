"""RDF terms as plain Python, and triples as integer ids over one table of distinct terms.

Terms are plain Python, so that the extraction step never touches ``pyoxigraph`` objects:

* an IRI is a ``str`` holding the absolute IRI;
* a blank node is a ``str`` starting with ``"_:"`` (no absolute IRI can start that way, since a
  scheme starts with a letter); its id is prefixed with the file's index so that ``_:b1`` of
  two different files never merge;
* a literal is a :class:`Literal` named tuple ``(value, datatype, language)``.

:class:`IdTriples` is what every reader gives (:func:`kgrec.data.rdf.read_ids`, the pieces of a
file parsed in worker processes, a triple store) and what :func:`kgrec.data.extract.build_graph_ids`
reads: an ``(n, 3)`` integer array over a term table. :class:`Numbering` gives those ids: keys are
numbered in order of first appearance, one batch of keys at a time, by C-level dictionary calls.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from itertools import chain, count, filterfalse
from operator import methodcaller
from typing import NamedTuple, Union

import numpy as np

from kgrec.errors import KgrecError

__all__ = ["XSD", "RDF", "XSD_STRING", "RDF_LANGSTRING", "Literal", "Term", "Triple", "is_blank", "is_iri",
           "paused_gc", "Numbering", "IdTriples", "Concat"]

XSD = "http://www.w3.org/2001/XMLSchema#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XSD_STRING = XSD + "string"
RDF_LANGSTRING = RDF + "langString"


class Literal(NamedTuple):
    """An RDF literal.

    ``datatype`` is always set (``xsd:string`` for plain literals, ``rdf:langString`` for
    language-tagged ones, as in RDF 1.1); ``language`` is lower-cased or ``None``.
    """

    value: str
    datatype: str = XSD_STRING
    language: str | None = None


Term = Union[str, Literal]
Triple = tuple[str, str, Term]


def is_blank(term: Term) -> bool:
    """Whether ``term`` is a blank node (``"_:..."``)."""
    return isinstance(term, str) and term.startswith("_:")


def is_iri(term: Term) -> bool:
    """Whether ``term`` is an IRI (neither a literal nor a blank node)."""
    return type(term) is str and not term.startswith("_:")


@contextmanager
def paused_gc():
    """The cyclic garbage collector off for the block (and back on after, if it was on).

    Parsing and graph building create hundreds of thousands of objects, none of them in a
    cycle; with the collector on, its collections keep traversing them as they are made.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Numbering:
    """Keys -> consecutive ids ``0, 1, 2...``, one batch of keys at a time, in order of first
    appearance; ``None`` is numbered ``-1``.

    The dictionary work runs in C (``map`` over ``dict.setdefault``): no Python bytecode runs per
    key. A batch is first numbered locally (each key -> the position of its first occurrence, in
    a dictionary the size of the batch, which stays in cache), and only its distinct keys are
    looked up in the table of every key so far; numpy then maps each key's local number to its
    id. That is one lookup per key in the large table where numbering every key there takes two.
    """

    def __init__(self):
        self.ids: dict = {None: -1}
        self.n = 0

    def number(self, keys: list) -> tuple[list, np.ndarray]:
        """``(the keys never seen before, in order; the id of every key)``."""
        size = len(keys)
        local: dict = {}
        first = np.fromiter(map(local.setdefault, keys, count()), dtype=np.int64, count=size)
        distinct = list(local)  # in order of first appearance, as the positions below
        ids, n = self.ids, self.n
        # new keys get n + their index in `distinct`, above every id given so far ...
        known = np.fromiter(map(ids.setdefault, distinct, count(n)), dtype=np.int64, count=len(distinct))
        fresh = np.flatnonzero(known >= n)
        new = list(map(distinct.__getitem__, fresh.tolist()))
        if new:  # ... and are renumbered n, n + 1, ... in order
            known[fresh] = np.arange(n, n + len(new))
            ids.update(zip(new, count(n)))
            self.n = n + len(new)
        by_position = np.empty(size, dtype=np.int64)
        by_position[np.flatnonzero(first == np.arange(size))] = known
        return new, by_position[first]


def _no_triples() -> np.ndarray:
    return np.empty((0, 3), dtype=np.int64)


class IdTriples:
    """Triples as integer ids into one term table: what :func:`kgrec.data.rdf.read_ids` gives and
    what :func:`kgrec.data.extract.build_graph_ids` reads.

    Attributes:
        terms: id -> term (``str`` IRI, ``"_:f{file}.{label}"`` blank node, or :class:`Literal`);
            every term appears once, in order of first appearance in the triples.
        triples: ``(n, 3)`` int64 array of (subject, predicate, object) ids, in file order,
            duplicates kept (``kgrec.load`` collapses and counts them).
    """

    __slots__ = ("terms", "triples")

    def __init__(self, terms: list[Term], triples: np.ndarray):
        self.terms = terms
        self.triples = triples

    def __len__(self) -> int:
        return int(self.triples.shape[0])

    def iris_starting_with(self, prefixes: tuple[str, ...]) -> list[int]:
        """Ids of the IRI terms that start with one of ``prefixes`` (C-level ``map`` calls)."""
        terms = self.terms
        ids = np.flatnonzero(np.fromiter(map(str.__instancecheck__, terms), dtype=bool, count=len(terms)))
        hit = np.fromiter(map(methodcaller("startswith", prefixes), map(terms.__getitem__, ids.tolist())),
                          dtype=bool, count=len(ids))
        return ids[hit].tolist()

    def decoded(self) -> list[Triple]:
        """The triples as kgrec terms (what :func:`kgrec.data.rdf.read_triples` gives)."""
        t = self.terms
        return [(t[s], t[p], t[o]) for s, p, o in self.triples.tolist()]

    @classmethod
    def from_batches(cls, batches: Iterable[tuple[list[Term], np.ndarray]]) -> IdTriples:
        """One table of ``(new terms, (k, 3) ids)`` batches whose ids already index the terms of
        every batch so far (what :func:`kgrec.data.quadids.quad_id_batches` yields).
        """
        terms: list[Term] = []
        parts = []
        with paused_gc():
            for new, ids in batches:
                terms.extend(new)
                parts.append(ids)
        return cls(terms, np.concatenate(parts) if parts else _no_triples())

    @classmethod
    def from_triples(cls, batches: Iterable[Iterable[Triple]]) -> IdTriples:
        """Number plain triples (an iterable of iterables of ``(s, p, o)``: lists from
        :func:`kgrec.data.rdf.iter_triple_batches`, rows of another source): equal terms get one id.
        """
        numbering = Numbering()
        terms: list[Term] = []
        parts = []
        with paused_gc():
            for batch in batches:
                keys = list(chain.from_iterable(batch))
                if len(keys) % 3:
                    raise KgrecError("every triple must have three terms (subject, predicate, object)")
                new, ids = numbering.number(keys)
                terms.extend(new)
                parts.append(ids)
        return cls(terms, np.concatenate(parts).reshape(-1, 3) if parts else _no_triples())

    @classmethod
    def concat(cls, parts: Sequence[IdTriples]) -> IdTriples:
        """One table for several files' triples, or several pieces of one file (in order): equal
        terms get the first one's id, so the pieces of a file concatenated in file order give the
        table a single pass over the file gives, term for term (:class:`Concat`, part by part).
        """
        if len(parts) == 1:
            return parts[0]
        merged = Concat()
        for part in parts:
            merged.add(part)
        return merged.result()


class Concat:
    """:meth:`IdTriples.concat`, one part at a time: a part can be added while the next is still
    being parsed elsewhere.

    Each part's terms are distinct (as every reader makes them), so the first part keeps its ids
    and each later one is looked up once: a third of the dictionary work of numbering every
    part's terms as new keys, which shows when a large file's pieces are merged.
    """

    def __init__(self):
        self.terms: list[Term] = []
        self.ids: dict = {}
        self.arrays: list[np.ndarray] = []

    def add(self, part: IdTriples) -> None:
        with paused_gc():
            if not self.arrays:
                self.terms = list(part.terms)
                self.ids = dict(zip(self.terms, count()))
                self.arrays.append(part.triples)
                return
            ids, terms = self.ids, self.terms
            new = list(filterfalse(ids.__contains__, part.terms))
            ids.update(zip(new, count(len(terms))))
            terms.extend(new)
            remap = np.fromiter(map(ids.__getitem__, part.terms), dtype=np.int64, count=len(part.terms))
            self.arrays.append(remap[part.triples])

    def result(self) -> IdTriples:
        return IdTriples(self.terms, np.concatenate(self.arrays) if self.arrays else _no_triples())
