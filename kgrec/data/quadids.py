"""The one conversion of pyoxigraph quads into integer ids: :func:`quad_id_batches`.

Files (:func:`kgrec.data.rdf.read_ids`, each piece of a file parsed in a worker process) and triple
stores (:mod:`kgrec.data.stores`) alike go through it, so a graph reads the same from any of them.

Per triple, Python only picks a key per term: the IRI string, ``{bnode_prefix}{label}`` for a
blank node, a literal's N-Triples spelling (``"v"@en``: it starts with a quote, so it is never an
IRI's or a blank node's key; pyoxigraph writes it canonically, so one literal has one spelling),
``None`` for an RDF 1.2 triple term. :class:`~kgrec.data.rdfterms.Numbering` numbers a batch's
keys in C, and only the new literals are decoded into :class:`~kgrec.data.rdfterms.Literal`
(and checked against ``max_literal_chars`` before the next batch is read).

Per triple the work is pyoxigraph's parse, the Python term objects it hands out and the key loop
below; the numbering is C-level dictionary work over the keys, which a vectorised numbering could
shave but not remove (each key still has to be hashed and looked up). What a large file gains
most from is parsing its pieces in parallel (:mod:`kgrec.data.rdfparse`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice

import numpy as np

from kgrec.data.rdfterms import Literal, Numbering, Term
from kgrec.data.safety import Limits
from kgrec.data.validation import NAMED_GRAPHS_WARNING
from kgrec.errors import InputLimitError

__all__ = ["quad_id_batches", "ID_BATCH", "RELATIVE_IRI_WARNING", "QUOTED_TRIPLE_WARNING"]

#: Triples numbered at a time: the dictionary calls run over one batch of keys in C; a batch's
#: keys are dropped once numbered.
ID_BATCH = 8192

#: Key of ``kg.warnings`` counting IRIs that were relative and resolved against the file path.
RELATIVE_IRI_WARNING = "relative IRI resolved against the file location (no @base)"
#: Key of ``kg.warnings`` counting triples skipped for an RDF 1.2 triple term.
QUOTED_TRIPLE_WARNING = "RDF-star quoted triple skipped"


def too_long(value: str, limits: Limits, source: str, subject: str, predicate: str) -> InputLimitError:
    return InputLimitError(f"a literal of {len(value)} characters (subject <{subject}>, predicate <{predicate}>) "
                           f"is longer than max_literal_chars={limits.max_literal_chars}; raise the limit "
                           "(kgrec.load(..., max_literal_chars=N)) if the file is trusted", source)


class _Converter:
    """The state :func:`quad_id_batches` keeps from batch to batch: the numbering, the term table,
    the ids of relative IRIs, the named graphs met and how literal spellings end.
    """

    def __init__(self, bnode_prefix: str, relative_prefix: str | None, named_graphs: bool):
        import pyoxigraph as ox

        self.ox = ox
        self.bnode_prefix, self.relative_prefix, self.named_graphs = bnode_prefix, relative_prefix, named_graphs
        self.numbering = Numbering()
        self.terms: list[Term] = []
        self.relative: list[int] = []  # ids of the IRIs resolved against the file's location
        self.graphs: set = set()  # the named graphs met (their triples are merged into one graph)
        self.suffixes: dict = {}  # a literal spelling's end -> (datatype, language)

    def keys(self, quads: Iterable) -> tuple[list, dict]:
        """``(the key of each term of each quad, s p o in turn; new literal spellings -> pyoxigraph literal)``."""
        ox = self.ox
        NamedNode, BlankNode, OxLiteral, DefaultGraph = ox.NamedNode, ox.BlankNode, ox.Literal, ox.DefaultGraph
        bnode_prefix, named_graphs, graphs = self.bnode_prefix, self.named_graphs, self.graphs
        keys: list = []
        add = keys.append
        literals: dict = {}
        for s, p, o, g in quads:
            if named_graphs and g is not None and type(g) is not DefaultGraph:
                graphs.add(g)
            ts = type(s)
            if ts is NamedNode:
                add(s.value)
            elif ts is BlankNode:
                add(bnode_prefix + s.value)
            else:
                add(None)
            add(p.value)
            to = type(o)
            if to is NamedNode:
                add(o.value)
            elif to is OxLiteral:
                # its spelling: a str, whose hash is kept, where the literal's is not
                key = str(o)
                literals[key] = o
                add(key)
            elif to is BlankNode:
                add(bnode_prefix + o.value)
            else:
                add(None)
        return keys, literals

    def decode(self, new: list, literals: dict, max_literal_chars: int) -> list[int]:
        """Turn the batch's new keys into terms, in place (literals decoded, the ids of relative
        IRIs noted), append them to the table; the ids of the literals over ``max_literal_chars``.
        """
        suffixes, relative_prefix = self.suffixes, self.relative_prefix
        new_literal = tuple.__new__  # Literal(...) without NamedTuple's Python-level __new__
        first = len(self.terms)
        too_long_ids = []
        for k, key in enumerate(new):
            lit = literals.get(key)
            if lit is not None:
                # what follows the closing quote ('', '@en', '^^<...>') gives the datatype and
                # language: read from the first literal spelled with it
                suffix = key[key.rfind('"') + 1:]
                dt_lang = suffixes.get(suffix)
                if dt_lang is None:
                    lang = lit.language
                    dt_lang = suffixes[suffix] = (lit.datatype.value, lang.lower() if lang else None)
                value = lit.value
                new[k] = new_literal(Literal, (value, *dt_lang))
                if len(value) > max_literal_chars:
                    too_long_ids.append(first + k)
            elif relative_prefix is not None and key.startswith(relative_prefix):
                self.relative.append(first + k)
        self.terms.extend(new)
        return too_long_ids


def quad_id_batches(quads: Iterable, source: str, *, warnings: Counter, bnode_prefix: str, limits: Limits,
                    relative_prefix: str | None = None, named_graphs: bool = True, batch_size: int = ID_BATCH,
                    graph_names: set | None = None) -> Iterator[tuple[list[Term], np.ndarray]]:
    """The one conversion of pyoxigraph terms: ``(new terms, (k, 3) ids)`` per batch of up to
    ``batch_size`` of ``quads``, for files (:func:`kgrec.data.rdf.read_ids`) and triple stores
    (:mod:`kgrec.data.stores`) alike, so a graph reads the same from either.

    A batch's ids index the terms of every batch so far, each batch's new terms appended in
    order of first appearance. Triples with an RDF 1.2 triple term as subject or object are dropped.

    Args:
        quads: ``(subject, predicate, object, graph)`` of pyoxigraph terms as ``pyoxigraph.parse``
            or a store yields them; ``graph`` a graph name, ``DefaultGraph`` or ``None``.
        source: the file or store, named in errors.
        warnings: counts RDF 1.2 triple terms skipped, named graphs met (``named_graphs``) and IRIs
            starting with ``relative_prefix`` (resolved against a file's location).
        bnode_prefix: prefix of every blank node id (keeps the blank nodes of two sources apart).
        limits: ``max_literal_chars`` is checked on every new literal.
        graph_names: if given, the named graphs met are added to it (their N-Triples spelling)
            instead of counted in ``warnings``: the pieces of one file may meet the same graph.
    """
    conv = _Converter(bnode_prefix, relative_prefix, named_graphs)
    terms = conv.terms
    n_relative = n_quoted = 0
    quads = iter(quads)
    try:
        while True:
            keys, literals = conv.keys(islice(quads, batch_size))
            if not keys:
                break
            new, ids = conv.numbering.number(keys)
            ids = ids.reshape(-1, 3)
            over = conv.decode(new, literals, limits.max_literal_chars)
            quoted = (ids[:, 0] < 0) | (ids[:, 2] < 0)
            if quoted.any():  # a triple term as subject or object: not a graph node kgrec can use
                n_quoted += int(quoted.sum())
                ids = ids[~quoted]
            if over:
                hit = np.flatnonzero(np.isin(ids[:, 2], over))
                if len(hit):
                    s, p, o = ids[hit[0]].tolist()
                    raise too_long(terms[o].value, limits, source, terms[s], terms[p])
            if conv.relative:
                n_relative += int(np.isin(ids, conv.relative).sum())
            yield new, ids
    finally:
        if n_quoted:
            warnings[QUOTED_TRIPLE_WARNING] += n_quoted
        if n_relative:
            warnings[RELATIVE_IRI_WARNING] += n_relative
        if graph_names is not None:
            graph_names.update(map(str, conv.graphs))
        elif conv.graphs:
            warnings[NAMED_GRAPHS_WARNING] += len(conv.graphs)
