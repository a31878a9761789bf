"""The triples of one build, grouped by predicate, and the look-ups every extraction rule reads.

:class:`TripleIndex` holds the de-duplicated integer triples (:class:`~kgrec.data.idcolumns.IdColumns`)
and, per predicate, their (subject, object) pairs built on first use; on top of them it answers
what the mapping's rules ask: a predicate's subject -> objects index (and its inverse for ``^p``),
the values of alternative property paths from a node, the subclasses the data declares, the
language filter of text literals. It holds the state every step of a build shares (the compiled
mapping, the warnings counter, the same-as merges in ``canon``); the interaction rules
(:class:`~kgrec.data.events.EventReader`) and the graph build (:mod:`kgrec.data.extract`) extend it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from operator import itemgetter

import numpy as np

from kgrec.data.idcolumns import IdColumns, LazyPairs, first_distinct_rows
from kgrec.data.mapping import CompiledMapping, InversePath, Mapping
from kgrec.data.rdf import RDF, IdTriples, Term

__all__ = ["TripleIndex", "RDF_TYPE", "RDFS_SUBCLASS_OF", "OWL_IMPORTS", "IMPORTS_WARNING"]

RDF_TYPE = RDF + "type"
RDFS_SUBCLASS_OF = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
OWL_IMPORTS = "http://www.w3.org/2002/07/owl#imports"
#: Key of ``kg.warnings`` counting ``owl:imports`` statements (kgrec reads only the files it is given).
IMPORTS_WARNING = "owl:imports not followed (kgrec reads only the files it is given)"
_FIRST = itemgetter(0)  # of a (subject, object) pair


class TripleIndex:
    """Triples grouped by predicate for one build (see the module docstring)."""

    def __init__(self, mapping: Mapping, warnings: Counter, sources: Sequence[str]):
        self.mapping = mapping
        self.cm: CompiledMapping = mapping.compile()
        self.W = warnings
        self.sources = list(sources)
        self.by_pred: dict[str, list] = defaultdict(list)
        self.n_triples = 0
        self._index: dict[str, dict[str, list[Term]]] = {}
        self.canon: dict[str, str] = {}  # IRI -> the item it is merged into (same-as)
        self.cols: IdColumns | None = None  # the integer triples (None: no triples)
        self._subclasses: dict[str, list[str]] | None = None  # class -> its declared direct subclasses
        self._subclass_cache: dict[frozenset, frozenset] = {}

    # ---------------------------------------------------------------- reading
    def read_ids(self, idt: IdTriples) -> None:
        """Group the triples by predicate, de-duplicated: per predicate, its distinct (subject,
        object) id columns in order of first appearance, predicates in order of first appearance.
        """
        terms, ids = idt.terms, idt.triples
        rw = self.cm.rewrite
        if rw:  # rewrite the distinct terms; two that become one share the first one's id
            hits = idt.iris_starting_with(tuple(k for k, _ in rw))
            if hits:
                new_terms = list(terms)
                for k in hits:
                    t = terms[k]
                    old, rep = next(r for r in rw if t.startswith(r[0]))
                    new_terms[k] = rep + t[len(old):]
                first: dict = {}
                remap = np.fromiter((first.setdefault(t, k) for k, t in enumerate(new_terms)), dtype=np.int64,
                                    count=len(new_terms))
                ids = remap[ids]
                terms = new_terms
        n = len(ids)
        if n:
            # distinct rows in order of first appearance, then grouped by predicate (stable)
            rows = first_distinct_rows(ids)
            order = np.argsort(rows[:, 1], kind="stable")
            rows = rows[order]
            preds, starts = np.unique(rows[:, 1], return_index=True)
            ends = np.append(starts[1:], len(rows))
            # predicates in order of first appearance, as the dicts of :meth:`read` keep them
            first_seen = order[starts]
            cols = {terms[int(preds[k])]: (rows[int(starts[k]):int(ends[k]), 0], rows[int(starts[k]):int(ends[k]), 2])
                    for k in np.argsort(first_seen).tolist()}
            self.cols = IdColumns(terms, cols)
            self.by_pred = LazyPairs(self.cols)
            self._read_done(n, len(rows))
            return
        self._read_done(n)

    def _read_done(self, n: int, n_distinct: int | None = None) -> None:
        by_pred = self.by_pred
        self.n_triples = n
        n_dup = n - (sum(len(v) for v in by_pred.values()) if n_distinct is None else n_distinct)
        if n_dup:
            self.W["duplicate triple"] += n_dup
        n_imports = len(by_pred.get(OWL_IMPORTS, ()))
        if n_imports:
            self.W[IMPORTS_WARNING] += n_imports

    def index(self, p: str) -> dict[str, list[Term]]:
        """Map each subject to its objects under predicate ``p`` (built on first use)."""
        ix = self._index.get(p)
        if ix is None:
            ix = defaultdict(list)
            for s, o in self.by_pred.get(p, ()):
                ix[s].append(o)
            ix = self._index[p] = dict(ix)
        return ix

    def inverse_index(self, p: str) -> dict[str, list[str]]:
        """Map each IRI object of predicate ``p`` to its subjects (``^p`` in a path; built on first use)."""
        key = "^" + p  # predicates are IRIs, so this never collides with one
        ix = self._index.get(key)
        if ix is None:
            ix = defaultdict(list)
            for s, o in self.by_pred.get(p, ()):
                if type(o) is str:
                    ix[o].append(s)
            ix = self._index[key] = dict(ix)
        return ix

    def _step(self, step):
        """A path step as a look-up: a subject -> values dict, or a list of compiled branches."""
        if type(step) is str:
            return self.index(step)
        if isinstance(step, InversePath):
            return self.inverse_index(step.iri)
        return [self._compile_path(p) for p in step.paths]

    def _compile_path(self, path) -> tuple:
        return tuple(self._step(step) for step in path)

    def paths(self, paths) -> list[tuple]:
        """Alternative property paths as tuples of look-ups (see :meth:`_step`)."""
        return [self._compile_path(path) for path in paths]

    @classmethod
    def _walk(cls, frontier: list[Term], path: tuple) -> list[Term]:
        """Values of a compiled path from every node of ``frontier`` (literals end a walk)."""
        for ix in path:
            nxt: list[Term] = []
            if type(ix) is dict:
                for x in frontier:
                    if type(x) is str:
                        nxt.extend(ix.get(x, ()))
            else:  # an alternative: the values of every branch
                for branch in ix:
                    nxt.extend(cls._walk(frontier, branch))
            frontier = nxt
            if not frontier:
                break
        return frontier

    @classmethod
    def resolve(cls, node: str, paths: list[tuple]) -> list[Term]:
        """Values of the first alternative path (from :meth:`paths`) that yields any, from ``node``.

        A multi-step path yields each value once (two routes to one value are one value).
        """
        for path in paths:
            if len(path) == 1 and type(path[0]) is dict:  # the common case: one property
                found = path[0].get(node)
                if found:
                    return found
                continue
            found = cls._walk([node], path)
            if found:
                return list(dict.fromkeys(found))
        return []

    def path_starts(self, step) -> set[str]:
        """Nodes from which the path step ``step`` leads anywhere (the candidate events of a
        rule without a class are the start nodes of the first step of its agent and object).
        """
        if type(step) is str:
            return set(map(_FIRST, self.by_pred.get(step, ())))
        if isinstance(step, InversePath):
            return {o for _, o in self.by_pred.get(step.iri, ()) if type(o) is str}
        out: set[str] = set()
        for path in step.paths:
            out |= self.path_starts(path[0])
        return out

    def with_subclasses(self, classes: frozenset[str]) -> frozenset[str]:
        """``classes`` and every class the data declares ``rdfs:subClassOf`` one of them, transitively."""
        key = frozenset(classes)
        done = self._subclass_cache.get(key)
        if done is not None:
            return done
        if self._subclasses is None:
            children: dict[str, list[str]] = defaultdict(list)
            for s, o in self.by_pred.get(RDFS_SUBCLASS_OF, ()):
                if type(o) is str and s != o:
                    children[o].append(s)
            self._subclasses = dict(children)
        out, stack = set(key), list(key)
        while stack:
            for sub in self._subclasses.get(stack.pop(), ()):
                if sub not in out:
                    out.add(sub)
                    stack.append(sub)
        done = self._subclass_cache[key] = frozenset(out)
        return done

    def short(self, iri: str) -> str:
        return self.cm.shorten(iri)

    def lang_ok(self, lang: str | None) -> bool:
        langs = self.cm.languages
        if "*" in langs:
            return True
        if not lang:
            return "" in langs
        return any(lang == x or lang.startswith(x + "-") for x in langs if x)
