"""Triples + :class:`~kgrec.data.mapping.Mapping` -> :class:`~kgrec.data.graph.KnowledgeGraph`.

The triples arrive as integer ids over a term table (:class:`~kgrec.data.rdf.IdTriples`: what
:func:`kgrec.data.rdf.read_ids` parses, or what :func:`build_graph_batched` numbers from plain
triples); one pass of array operations de-duplicates them and groups them by predicate
(:class:`~kgrec.data.idcolumns.IdColumns`), and every rule then reads those groups. The order of
the input triples never changes the result: ids come from sorted IRIs, triples and interactions
are sorted, literal lists are sorted.

Rules, in order:

1. users = instances of the user classes (+ interaction agents when ``users.infer``) that are
   the agent of at least one interaction; items = instances of the item classes (+ interaction
   objects when ``items.infer``).
2. ``items.same_as`` links from an item to a non-item IRI (either direction) merge that IRI into
   the item: every triple naming it is read as naming the item.
3. KG edges are followed from the items (and, step by step, from the attribute entities they
   reach); objects that are not items become attribute entities. Users, event nodes, blank
   nodes and literals never become entities.
4. Text literals (filtered by language) go to ``literals`` / ``user_literals``; numeric
   feature literals to ``features``.

5. Interactions: one per (user, item) pair (and scenario, when the rules name scenarios), the
   events of a pair merged into the latest time and the largest weight (:func:`_merge_repeats`).
   Every input (a parsed file, triples from another source) ends in :meth:`_Builder.build`.

What each rule produced and the mapping terms that match nothing are kept as
``kg.mapping_report`` (:mod:`kgrec.data.validation`).

Problems are counted in ``KnowledgeGraph.warnings`` (rule -> count) instead of failing; a mapping
that finds no users, items or interactions raises :class:`MappingError` listing what the data
does contain.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from itertools import repeat
from operator import itemgetter, methodcaller

import numpy as np
import torch

from kgrec.data.graph import DEFAULT_SCENARIOS, Interactions, KnowledgeGraph
from kgrec.data.idcolumns import IRI, PLAIN, IdColumns, LazyPairs, first_distinct_rows
from kgrec.data.mapping import CompiledMapping, InversePath, Mapping, format_path
from kgrec.data.rdf import RDF, RELATIVE_IRI_WARNING, XSD, IdTriples, Literal, Term, Triple, paused_gc
from kgrec.data.scenarios import assign_domains
from kgrec.data.validation import DROPPED_USERS_WARNING, REPEATS_WARNING, RuleCount, mapping_report
from kgrec.data.vocab import Vocab
from kgrec.errors import EmptyGraphError, MappingError

__all__ = ["build_graph", "build_graph_batched", "build_graph_ids", "parse_timestamp", "parse_number", "RDF_TYPE",
           "RDFS_SUBCLASS_OF", "OWL_IMPORTS", "IMPORTS_WARNING"]

RDF_TYPE = RDF + "type"
RDFS_SUBCLASS_OF = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
OWL_IMPORTS = "http://www.w3.org/2002/07/owl#imports"
#: Key of ``kg.warnings`` counting ``owl:imports`` statements (kgrec reads only the files it is given).
IMPORTS_WARNING = "owl:imports not followed (kgrec reads only the files it is given)"

_NUMERIC_TYPES = frozenset(XSD + t for t in (
    "integer", "long", "int", "short", "byte", "decimal", "double", "float", "nonNegativeInteger",
    "positiveInteger", "nonPositiveInteger", "negativeInteger", "unsignedLong", "unsignedInt",
    "unsignedShort", "unsignedByte"))
_DATETIME_TYPES = frozenset((XSD + "dateTime", XSD + "dateTimeStamp"))
_PLAIN_TYPES = frozenset((XSD + "string", RDF + "langString"))
_DATE_TYPES = _DATETIME_TYPES | {XSD + "date"}
_VALUE, _DATATYPE = itemgetter(0), itemgetter(1)  # of a Literal
_FIRST, _SECOND = itemgetter(0), itemgetter(1)  # of a (subject, object) pair
_is_blank = methodcaller("startswith", "_:")
# fields of an interaction record (rule index, agent, object, weight, time, text)
_RULE, _AGENT, _OBJECT, _WEIGHT, _TIME, _TEXT = (itemgetter(k) for k in range(6))


def _iso_seconds(value: str) -> float:
    v = value.strip()
    if v.endswith(("Z", "z")):  # Python < 3.11 fromisoformat rejects the 'Z' zone
        v = v[:-1] + "+00:00"
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is None:  # xsd:dateTime without a zone: read as UTC so results never depend on the machine
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


_UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ?")


def _iso_seconds_many(values: list[str]) -> list[float]:
    """:func:`_iso_seconds` of every value; a column of plain ``YYYY-MM-DDThh:mm:ss[Z]`` values
    (UTC either way) is parsed by numpy in one call instead of one Python call per value.
    """
    if values and all(map(_UTC_SECONDS.fullmatch, values)):
        try:
            stamps = np.array([v[:19] for v in values], dtype="datetime64[s]")
        except ValueError:  # an impossible date (month 13...): the per-value path raises it
            return list(map(_iso_seconds, values))
        return stamps.astype(np.int64).astype(np.float64).tolist()
    return list(map(_iso_seconds, values))


def _event_times(lits: list[Literal]) -> list[float] | None:
    """Unix seconds of one rule's time literals when all are dates or all numbers and all parse;
    else ``None`` (the per-event path then counts each problem).
    """
    dts = set(map(_DATATYPE, lits))
    values = list(map(_VALUE, lits))
    try:
        if dts <= _DATE_TYPES:
            return _iso_seconds_many(values)
        if dts <= _NUMERIC_TYPES:
            return list(map(float, values))
    except ValueError:
        return None
    return None


def parse_timestamp(lit: Literal) -> tuple[float, str | None]:
    """Unix seconds of a timestamp literal, and the problem met (``None`` when fine).

    ``xsd:dateTime`` / ``xsd:date`` (no zone = UTC) and numeric types (unix seconds) are read;
    a plain literal is read if it looks like an ISO date or a number, flagged
    ``"timestamp without datatype"``. Anything else gives ``nan``.
    """
    dt = lit.datatype
    try:
        if dt in _DATETIME_TYPES or dt == XSD + "date":
            return _iso_seconds(lit.value), None
        if dt in _NUMERIC_TYPES:
            return float(lit.value), None
    except ValueError:
        return math.nan, "unparseable timestamp"
    if dt in _PLAIN_TYPES:
        v = lit.value.strip()
        try:
            return float(v), "timestamp without datatype"
        except ValueError:
            pass
        try:
            return _iso_seconds(v), "timestamp without datatype"
        except ValueError:
            return math.nan, "unparseable timestamp"
    return math.nan, f"timestamp with unsupported datatype <{dt}>"


def parse_number(lit: Literal) -> float:
    """A literal's number (``nan`` if not numeric); dates give unix seconds, ``xsd:gYear`` its year."""
    v = lit.value.strip()
    try:
        return float(v)
    except ValueError:
        pass
    if lit.datatype == XSD + "gYear" and len(v) >= 4:
        try:
            return float(v[:4] if v[0] != "-" else v[:5])
        except ValueError:
            return math.nan
    try:
        return _iso_seconds(v)
    except ValueError:
        return math.nan


class _Builder:
    def __init__(self, mapping: Mapping, warnings: Counter, sources: Sequence[str]):
        self.mapping = mapping
        self.cm: CompiledMapping = mapping.compile()
        self.W = warnings
        self.sources = list(sources)
        self.by_pred: dict[str, list] = defaultdict(list)
        self.n_triples = 0
        self._index: dict[str, dict[str, list[Term]]] = {}
        self.canon: dict[str, str] = {}
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

    def _direct_path_pairs(self, path, events: set[str]) -> list[tuple[Term, Term]]:
        """Every (start, end) pair a direct rule's path links, each once. The nodes between start
        and end (a rating between its user and its item) are the interaction's own nodes: they are
        added to ``events``, so they never become KG entities.
        """
        steps = self._compile_path(path)
        last = len(steps) - 1
        pairs = []
        for s in sorted(self.path_starts(path[0])):
            frontier: list[Term] = [s]
            for k, step in enumerate(steps):
                frontier = self._walk(frontier, (step,))
                if k < last:
                    events.update(x for x in frontier if type(x) is str)
                if not frontier:
                    break
            pairs.extend((s, o) for o in dict.fromkeys(frontier))
        return pairs

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

    # ---------------------------------------------------------- interactions
    def _pick_iri(self, values: list[Term], rule: str, role: str) -> str | None:
        if len(values) == 1:
            v = values[0]
            if type(v) is str and not v.startswith("_:"):
                return v
        iris = sorted({v for v in values if type(v) is str and not v.startswith("_:")})
        if len(iris) != len(values):
            n_lit = sum(1 for v in values if type(v) is not str)
            if n_lit:
                self.W[f"interaction '{rule}': {role} is a literal, not an IRI (skipped)"] += n_lit
            n_bn = sum(1 for v in values if type(v) is str and v.startswith("_:"))
            if n_bn:
                self.W[f"interaction '{rule}': {role} is a blank node, not an IRI (skipped)"] += n_bn
        if not iris:
            return None
        if len(iris) > 1:
            self.W[f"interaction '{rule}': event with several {role}s, the first (sorted) used"] += 1
        return iris[0]

    def _literal_value(self, values: list[Term], rule: str, role: str) -> Literal | None:
        if len(values) == 1 and type(values[0]) is not str:
            return values[0]
        lits = sorted(v for v in values if type(v) is not str)
        if len(lits) != len(values):
            self.W[f"interaction '{rule}': {role} is an IRI, not a literal (skipped)"] += len(values) - len(lits)
        return lits[0] if lits else None

    def _single_valued(self, rule):
        """Look-ups for an event rule whose paths are all one property each, else ``None``.

        Per path (agent, object, time, weight, text; ``None`` for an absent optional one):
        ``(get, several)``, where ``get(event)`` is the event's value (one of them when it has
        several) and ``several`` is the set of events with more than one value.
        """
        out = []
        for k, paths in enumerate((rule.agent, rule.object, rule.time, rule.weight, rule.text)):
            if not paths and k >= 2:
                out.append(None)
                continue
            if len(paths) != 1 or len(paths[0]) != 1 or type(paths[0][0]) is not str:
                return None
            pairs = self.by_pred.get(paths[0][0], ())
            first = dict(pairs)
            several: set = set()
            if len(first) != len(pairs):
                several = {s for s, c in Counter(s for s, _ in pairs).items() if c > 1}
            out.append((first.get, several))
        return out

    def _clean_events_ids(self, ri: int, rule) -> list[tuple] | None:
        """Records of the rule's events when every one of them is clean, else ``None``.

        Clean: one IRI (not blank) agent and object, one typed time and weight literal when the
        rule has them, no text, and times and weights that parse without a problem. This is the
        per-event path of :meth:`interactions` run as whole-column array operations on the
        integer columns (records in event-id order, which nothing downstream depends on), without
        building the (event, value) pairs of the event predicates; any other case returns
        ``None`` and the events take the per-event path, which counts each problem.
        """
        cols = self.cols
        steps = []
        for k, paths in enumerate((rule.agent, rule.object, rule.time, rule.weight, rule.text)):
            if not paths and k >= 2:
                steps.append(None)
                continue
            if len(paths) != 1 or len(paths[0]) != 1 or type(paths[0][0]) is not str:
                return None
            steps.append(paths[0][0])
        if rule.classes:
            E = cols.subjects_with_object(RDF_TYPE, self.with_subclasses(rule.classes))
        else:
            E = cols.all_subjects([path[0] for path in rule.agent + rule.object])
        if len(E) == 0:
            return []
        values = []
        for p in steps:
            if p is None:
                values.append(None)
                continue
            v = cols.single_values(p)  # object id per subject id, -1 for none; None: some subject has several
            if v is None:
                return None
            values.append(v[E])
        a, o, t, w, x = values
        kind = cols.kind
        if (a < 0).any() or (o < 0).any() or (kind[a] != IRI).any() or (kind[o] != IRI).any():
            return None  # a missing value, a literal or a blank node
        if x is not None and (x >= 0).any():
            return None
        n = len(E)
        table = cols.table
        times = weights = [math.nan] * n
        if t is not None:
            if (t < 0).any() or (kind[t] < PLAIN).any():
                return None
            times = _event_times(table[t].tolist())
            if times is None:
                return None
        if w is not None:
            if (w < 0).any() or (kind[w] < PLAIN).any():
                return None
            distinct, inverse = np.unique(w, return_inverse=True)
            try:
                parsed = list(map(float, map(_VALUE, table[distinct].tolist())))
            except ValueError:
                return None
            weights = np.asarray(parsed, dtype=np.float64)[inverse].tolist()
        return list(zip(repeat(ri, n), table[a].tolist(), table[o].tolist(), weights, times, repeat(None, n)))

    def interactions(self):
        """Raw interaction records and the set of event nodes."""
        W = self.W
        recs = []  # (rule index, agent IRI, object IRI, weight or nan, time or nan, text or None)
        events: set[str] = set()
        type_pairs = self.by_pred.get(RDF_TYPE, ())
        for ri, rule in enumerate(self.cm.rules):
            name = rule.name
            if rule.is_direct:
                if rule.predicate is not None:
                    pairs = self.by_pred.get(rule.predicate, ())
                else:
                    pairs = self._direct_path_pairs(rule.predicate_path, events)
                for s, o in pairs:
                    if rule.inverse:
                        s, o = o, s
                    if type(o) is not str or type(s) is not str:
                        W[f"interaction '{name}': literal where an IRI is expected (skipped)"] += 1
                        continue
                    if s.startswith("_:") or o.startswith("_:"):
                        W[f"interaction '{name}': blank node where an IRI is expected (skipped)"] += 1
                        continue
                    recs.append((ri, s, o, math.nan, math.nan, None))
                continue
            if rule.classes:
                classes = self.with_subclasses(rule.classes)
                cands = {s for s, o in type_pairs if o in classes}
            else:
                cands = set()
                for path in rule.agent + rule.object:
                    cands |= self.path_starts(path[0])
            events |= cands
            paths: list = []  # the slow path's indexes, built on its first use

            def slow(e: str, name=name, rule=rule, ri=ri, paths=paths) -> None:
                """The general case: alternatives, multi-step paths, several or odd values."""
                if not paths:
                    paths.extend(self.paths(x) for x in (rule.agent, rule.object, rule.time, rule.weight,
                                                         rule.text))
                p_agent, p_object, p_time, p_weight, p_text = paths
                resolve = self.resolve
                agent = self._pick_iri(resolve(e, p_agent), name, "agent")
                obj = self._pick_iri(resolve(e, p_object), name, "object")
                if agent is None or obj is None:
                    # one count per event: an event missing both parts is one lost event
                    missing = "agent and object" if agent is None and obj is None else (
                        "agent" if agent is None else "object")
                    W[f"interaction '{name}': event without {missing} (skipped)"] += 1
                    return
                t = math.nan
                if rule.time:
                    lit = self._literal_value(resolve(e, p_time), name, "timestamp")
                    if lit is None:
                        W[f"interaction '{name}': event without timestamp"] += 1
                    else:
                        t, problem = parse_timestamp(lit)
                        if problem:
                            W[f"interaction '{name}': {problem}"] += 1
                w = math.nan
                if rule.weight:
                    lit = self._literal_value(resolve(e, p_weight), name, "weight")
                    if lit is None:
                        W[f"interaction '{name}': event without weight"] += 1
                    else:
                        try:
                            w = float(lit.value)
                        except ValueError:
                            W[f"interaction '{name}': non-numeric weight"] += 1
                text = None
                if rule.text:
                    vals = resolve(e, p_text)
                    kept = sorted({v.value for v in vals if type(v) is not str and self.lang_ok(v.language)})
                    dropped = [v for v in vals if type(v) is not str and not self.lang_ok(v.language)]
                    for v in dropped:
                        W[f"text literal in language '{v.language or ''}' dropped"] += 1
                    if kept:
                        text = "\n".join(kept)
                recs.append((ri, agent, obj, w, t, text))

            clean = self._clean_events_ids(ri, rule)
            if clean is not None:
                recs.extend(clean)
                continue
            fast = self._single_valued(rule)
            if fast is None:
                for e in cands:
                    slow(e)
                continue
            (ga, ma), (go, mo), tm, wt, tx = fast
            for e in cands:
                # the common case (one IRI agent, one IRI object, one literal time and weight, no
                # text) by plain dict look-ups; any other event takes the general path
                a, o = ga(e), go(e)
                if (a is None or o is None or type(a) is not str or type(o) is not str or e in ma or e in mo
                        or a.startswith("_:") or o.startswith("_:")):
                    slow(e)
                    continue
                if tm is not None:
                    lt = tm[0](e)
                    if lt is None or type(lt) is str or e in tm[1]:
                        slow(e)
                        continue
                if wt is not None:
                    lw = wt[0](e)
                    if lw is None or type(lw) is str or e in wt[1]:
                        slow(e)
                        continue
                if tx is not None and (tx[0](e) is not None or e in tx[1]):
                    slow(e)
                    continue
                t = w = math.nan
                if tm is not None:
                    t, problem = parse_timestamp(lt)
                    if problem:
                        W[f"interaction '{name}': {problem}"] += 1
                if wt is not None:
                    try:
                        w = float(lw.value)
                    except ValueError:
                        W[f"interaction '{name}': non-numeric weight"] += 1
                recs.append((ri, a, o, w, t, None))
        return recs, events

    # --------------------------------------------------------------- same-as
    def same_as_graph(self) -> tuple[dict[str, set[str]], list[tuple[str, str]]]:
        """Same-as links as an undirected adjacency, and as sorted (subject, object) pairs."""
        sa: dict[str, set[str]] = defaultdict(set)
        pairs = set()
        for p in sorted(self.cm.same_as):
            for s, o in self.by_pred.get(p, ()):
                if type(o) is not str:
                    self.W[f"literal where an IRI is expected ({self.short(p)})"] += 1
                    continue
                if s != o:
                    sa[s].add(o)
                    sa[o].add(s)
                    pairs.add((s, o))
        return sa, sorted(pairs)

    def absorb(self, new_items: Iterable[str], items: set[str], users: set[str], sa) -> None:
        """Merge the same-as neighbours of ``new_items`` into them (first item, sorted, wins)."""
        canon = self.canon
        for item in sorted(new_items):
            for x in sorted(sa.get(item, ())):
                if x in items:
                    if item < x:
                        self.W["same-as link between two items ignored"] += 1
                elif x.startswith("_:") or x in users:
                    continue
                elif x in canon:
                    if canon[x] != item:
                        self.W["IRI same-as several items: merged into the first (sorted)"] += 1
                else:
                    canon[x] = item

    # ---------------------------------------------------------------- build
    def build(self) -> KnowledgeGraph:
        cm, W, by_pred = self.cm, self.W, self.by_pred
        if self.n_triples == 0:
            raise EmptyGraphError(f"no triples in {self._where()}: the file is empty or holds only prefixes/comments")

        type_pairs = by_pred.get(RDF_TYPE, ())
        ucls, icls = self.with_subclasses(cm.user_classes), self.with_subclasses(cm.item_classes)
        users: set[str] = {s for s, o in type_pairs if o in ucls}
        items: set[str] = {s for s, o in type_pairs if o in icls}
        for found in (users, items):  # blank nodes are never users or items
            if any(map(_is_blank, found)):
                found.difference_update([x for x in found if x.startswith("_:")])
        n_type_lit = len(type_pairs) - list(map(type, map(_SECOND, type_pairs))).count(str)
        if n_type_lit:
            W[f"literal where an IRI is expected ({self.short(RDF_TYPE)})"] += n_type_lit

        recs, events = self.interactions()
        names = [r.name for r in cm.rules]

        if cm.infer_users:
            users.update(map(_AGENT, recs))
        else:
            kept = [r for r in recs if r[1] in users]
            for r in recs:
                if r[1] not in users:
                    W[f"interaction '{names[r[0]]}': agent is not of a user class (skipped)"] += 1
            recs = kept

        sa, sa_pairs = self.same_as_graph()
        self.absorb(items, items, users, sa)
        canon = self.canon
        if canon:
            recs = [(r[0], r[1], canon.get(r[2], r[2]), *r[3:]) for r in recs]
        if cm.infer_items:
            new = set(map(_OBJECT, recs)) - items
            # two untyped objects linked by same-as (events naming both the dataset IRI and the
            # external one): the subject of the link is the item, its object is merged into it
            targets: set[str] = set()
            for s, o in sa_pairs:
                if s in new and o in new and s not in canon and o not in canon and o not in targets:
                    canon[o] = s
                    targets.add(s)
            new = {x for x in new if x not in canon}
            items |= new
            self.absorb(new, items, users, sa)
            if canon:
                recs = [(r[0], r[1], canon.get(r[2], r[2]), *r[3:]) for r in recs]
        else:
            for r in recs:
                if r[2] not in items:
                    W[f"interaction '{names[r[0]]}': object is not of an item class (skipped)"] += 1
            recs = [r for r in recs if r[2] in items]

        # users are the agents of at least one complete interaction: an instance of a user class
        # that never interacts (an author or an actor typed like the users) is not a user, and
        # may become an attribute entity like any other IRI
        active = set(map(_AGENT, recs))
        dropped = users - active
        if dropped:
            W[DROPPED_USERS_WARNING] += len(dropped)
            users = users & active

        # the positivity rule drops interactions but not the users/items they name
        kept = [] if any(rule.positive.op is not None for rule in cm.rules) else recs
        for r in recs if kept is not recs else ():
            rule = cm.rules[r[0]]
            if rule.positive(r[3]):
                kept.append(r)
            else:
                W[f"interaction '{rule.name}': dropped by positive rule '{rule.positive.text}'"] += 1
        n_complete = len(recs)
        recs = kept

        if not users or not items or not recs:
            self._no_match(users, items, n_complete)

        # ------------------------------------------------------------- KG
        blocked = (users | events) - items
        skip = {RDF_TYPE} | set(cm.same_as) | {r.predicate for r in cm.rules if r.predicate} | set(cm.exclude) \
            | set(cm.text_predicates) | set(cm.numeric)
        # ``^p`` in a list of edges: p is followed from its object to its subject (as ``incoming``
        # does for every predicate); the triple keeps its direction
        backward = cm.inverse_edges - set(cm.exclude)
        if cm.edges is None:
            preds = [p for p in by_pred if p not in skip]
        else:
            preds = [p for p in (cm.edges | backward) - set(cm.exclude) if p in by_pred]
        out_adj: dict[str, list] = defaultdict(list)
        in_adj: dict[str, list] = defaultdict(list)
        # edges out of a user or an event (``blocked``) are never followed (the walk below never
        # visits them, and skips them as the subject of an incoming edge): not stored
        cget = canon.get
        cols = self.cols
        for p in sorted(preds):
            if blocked and not canon and blocked.issuperset(cols.subjects(p)):
                # only users' or events' out-edges (an event's agent, time...): none is stored
                n_lit = cols.n_literal_objects(p)
                if n_lit and cm.edges is not None:
                    W[f"literal where an IRI is expected ({self.short(p)})"] += n_lit
                continue
            pairs = by_pred[p]
            n_lit = 0
            fwd = cm.edges is None or p in cm.edges
            bwd = cm.incoming or p in backward
            for s, o in pairs:
                if type(o) is not str:
                    n_lit += 1
                    continue
                s = cget(s, s)
                if s in blocked:
                    continue
                o = cget(o, o)
                if fwd:
                    out_adj[s].append((p, o))
                if bwd:
                    in_adj[o].append((p, s))
            if n_lit and cm.edges is not None:
                W[f"literal where an IRI is expected ({self.short(p)})"] += n_lit

        entities = set(items)
        kg_triples: set[tuple[str, str, str]] = set()
        frontier = sorted(items)
        hop = 0
        while frontier and (cm.max_hops is None or hop < cm.max_hops):
            hop += 1
            nxt = []
            for node in frontier:
                for p, o in out_adj.get(node, ()):
                    if o == node:
                        W["KG self-loop (subject = object) skipped"] += 1
                        continue
                    if o.startswith("_:"):
                        W["KG edge to a blank node skipped"] += 1
                        continue
                    if o in blocked:
                        W["KG edge to a user or an interaction event skipped"] += 1
                        continue
                    kg_triples.add((node, p, o))
                    if o not in entities:
                        entities.add(o)
                        nxt.append(o)
                if in_adj:
                    for p, s in in_adj.get(node, ()):
                        if s == node or s.startswith("_:") or s in blocked:  # self-loops counted above
                            continue
                        kg_triples.add((s, p, node))
                        if s not in entities:
                            entities.add(s)
                            nxt.append(s)
            frontier = sorted(nxt)

        item_labels = sorted(items)
        user_vocab = Vocab(users, name="user")
        item_vocab = Vocab(item_labels, sort=False, name="item")
        entity_vocab = Vocab(item_labels + sorted(entities - items), sort=False, name="entity")
        relation_vocab = Vocab({p for _, p, _ in kg_triples}, name="relation")
        if kg_triples:
            eix, rix = entity_vocab._index, relation_vocab._index
            arr = np.array([(eix[h], rix[r], eix[t]) for h, r, t in kg_triples], dtype=np.int64)
            arr = np.unique(arr, axis=0)
            triples = torch.from_numpy(arr)
        else:
            triples = torch.empty(0, 3, dtype=torch.long)

        literals, user_literals = self.literals(entity_vocab, user_vocab)
        features = self.features(entity_vocab)
        self.iri_like_literals(entity_vocab, skip)

        # ------------------------------------------------------ interactions
        uix, iix = user_vocab._index, item_vocab._index
        n = len(recs)
        u = np.fromiter(map(uix.__getitem__, map(_AGENT, recs)), dtype=np.int64, count=n)
        i = np.fromiter(map(iix.__getitem__, map(_OBJECT, recs)), dtype=np.int64, count=n)
        w = np.fromiter(map(_WEIGHT, recs), dtype=np.float64, count=n)
        w = np.where(np.isnan(w), 1.0, w)
        t = np.fromiter(map(_TIME, recs), dtype=np.float64, count=n)
        rule_of = np.fromiter(map(_RULE, recs), dtype=np.int64, count=n)
        # scenarios of the rules (sorted names); a mapping without any keeps scenario=None
        rule_sc = [r.scenario or DEFAULT_SCENARIOS[0] for r in cm.rules]
        scenarios = sorted(set(rule_sc)) if any(r.scenario for r in cm.rules) else list(DEFAULT_SCENARIOS)
        rule_ix = [scenarios.index(x) for x in rule_sc]
        sc = np.asarray(rule_ix, dtype=np.int64)[rule_of] if n else np.zeros(0, dtype=np.int64)
        texts = list(map(_TEXT, recs))
        u_events, i_events = u, i  # per event, for the report's per-rule counts
        u, i, w, t, sc, texts = _merge_repeats(u, i, w, t, sc, texts, W, by_scenario=len(scenarios) > 1)
        inter = Interactions.from_lists(u, i, w, t)
        if len(scenarios) > 1 or scenarios != DEFAULT_SCENARIOS:
            inter.scenario = torch.as_tensor(sc)

        kg = KnowledgeGraph(
            users=user_vocab, items=item_vocab, entities=entity_vocab, relations=relation_vocab,
            triples=triples, interactions=inter, literals=literals, user_literals=user_literals,
            features=features, feature_names=list(cm.numeric), warnings=W, sources=self.sources,
            scenarios=scenarios,
        )
        if cm.domain_predicate is not None:
            kg = assign_domains(kg, cm.domain_predicate, [(n, sorted(a)) for n, a in cm.domains], cm.domain_rest)
        # per-interaction texts (reviews, tags) have no field in KnowledgeGraph yet
        kg.interaction_text = texts
        kg.mapping_report = self.report(u_events, i_events, rule_of, triples, relation_vocab, literals,
                                        user_literals, len(users), len(items))
        return kg

    def report(self, u_events, i_events, rule_of, triples, relation_vocab: Vocab, literals,
               user_literals, n_users: int, n_items: int):
        """The :class:`~kgrec.data.validation.MappingReport` of this build (per-rule counts from
        the user and item ids of the interaction events, before repeated pairs are merged).
        """
        cm = self.cm
        ucls = ", ".join(map(self.short, sorted(cm.user_classes))) or "(none)"
        icls = ", ".join(map(self.short, sorted(cm.item_classes))) or "(none)"
        rows = [RuleCount("users", f"classes {ucls}" + (" + agents" if cm.infer_users else ""), users=n_users),
                RuleCount("items", f"classes {icls}" + (" + objects" if cm.infer_items else ""), items=n_items)]
        for ri, rule in enumerate(cm.rules):
            mine = rule_of == ri
            rows.append(RuleCount("interactions", rule.name, interactions=int(mine.sum()),
                                  users=len(np.unique(u_events[mine])), items=len(np.unique(i_events[mine]))))
        per_rel = np.bincount(triples[:, 1].numpy(), minlength=len(relation_vocab)) if len(triples) else []
        for k, p in enumerate(relation_vocab.labels):
            rows.append(RuleCount("kg", self.short(p), kg_edges=int(per_rel[k])))
        for p in cm.text_predicates:
            n_ent = sum(len(v.get(p, ())) for v in literals.values())
            n_usr = sum(len(v.get(p, ())) for v in user_literals.values())
            rows.append(RuleCount("text", self.short(p), texts=n_ent + n_usr,
                                  items=sum(1 for k, v in literals.items() if k < n_items and p in v),
                                  users=sum(1 for v in user_literals.values() if p in v)))
        classes = {o for _, o in self.by_pred.get(RDF_TYPE, ()) if type(o) is str}
        return mapping_report(cm, self.mapping.name, list(self.by_pred), classes, rows, self.W)

    # -------------------------------------------------------- literals etc.
    def literals(self, entity_vocab: Vocab, user_vocab: Vocab):
        canon, W = self.canon, self.W
        eix, uix = entity_vocab._index, user_vocab._index
        ent: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        usr: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        lang_cache: dict = {}
        for p in self.cm.text_predicates:
            n_iri = 0
            for s, o in self.by_pred.get(p, ()):
                s = canon.get(s, s)
                k = eix.get(s)
                target = ent
                if k is None:
                    k = uix.get(s)
                    target = usr
                    if k is None:
                        continue
                if type(o) is str:
                    n_iri += 1
                    continue
                lang = o.language
                ok = lang_cache.get(lang)
                if ok is None:
                    ok = lang_cache[lang] = self.lang_ok(lang)
                if not ok:
                    W[f"text literal in language '{lang or ''}' dropped"] += 1
                    continue
                target[k][p].add(o.value)
            if n_iri:
                W[f"IRI where a literal is expected ({self.short(p)})"] += n_iri
        order = {p: j for j, p in enumerate(self.cm.text_predicates)}

        def finish(d):
            return {k: {p: sorted(v[p]) for p in sorted(v, key=order.__getitem__)} for k, v in sorted(d.items())}

        return finish(ent), finish(usr)

    def features(self, entity_vocab: Vocab) -> torch.Tensor | None:
        numeric = self.cm.numeric
        if not numeric:
            return None
        canon, W, eix = self.canon, self.W, entity_vocab._index
        total = np.zeros((len(entity_vocab), len(numeric)), dtype=np.float64)
        count = np.zeros((len(entity_vocab), len(numeric)), dtype=np.int64)
        for j, p in enumerate(numeric):
            bad = 0
            for s, o in self.by_pred.get(p, ()):
                k = eix.get(canon.get(s, s))
                if k is None:
                    continue
                x = parse_number(o) if type(o) is not str else math.nan
                if math.isnan(x):
                    bad += 1
                    continue
                total[k, j] += x
                count[k, j] += 1
            if bad:
                W[f"non-numeric value of feature ({self.short(p)}) ignored"] += bad
            if (count[:, j] > 1).any():
                W[f"several values of feature ({self.short(p)}): mean used"] += int((count[:, j] > 1).sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            feats = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return torch.from_numpy(feats.astype(np.float32))

    def iri_like_literals(self, entity_vocab: Vocab, skip: set[str]) -> None:
        """Count string literals holding an IRI on entities: a common export mistake."""
        canon, eix = self.canon, entity_vocab._index
        for p in list(self.by_pred):
            if p in skip or not self.cols.has_plain_literal(p):
                continue
            pairs = self.by_pred[p]
            objects = list(map(_SECOND, pairs))
            if Literal not in set(map(type, objects)) or not (
                    _PLAIN_TYPES & {o.datatype for o in objects if type(o) is not str}):
                continue  # no plain string literal under p
            n = 0
            for s, o in pairs:
                if type(o) is str or o.datatype not in _PLAIN_TYPES:
                    continue
                v = o.value
                if v.startswith(("http://", "https://")) and " " not in v and canon.get(s, s) in eix:
                    n += 1
            if n:
                self.W[f"string literal that looks like an IRI ({self.short(p)}): not a KG edge"] += n

    # --------------------------------------------------------------- errors
    def _where(self) -> str:
        if not self.sources:
            return "the given triples"
        return ", ".join(f"'{s}'" for s in self.sources)

    def _no_match(self, users: set, items: set, n_complete: int) -> None:
        classes = Counter(o for _, o in self.by_pred.get(RDF_TYPE, ()) if type(o) is str)
        preds = Counter({p: len(v) for p, v in self.by_pred.items()})
        if not users and not items:
            what = "no users and no items"
        elif not users:
            what = "no users"
        elif not items:
            what = "no items"
        elif n_complete:
            what = (f"no positive interactions ({n_complete} interactions found, all dropped by the "
                    "'positive' rules)")
        else:
            what = "no interactions"
        def top(counter: Counter) -> str:
            ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
            return ", ".join(f"{self.short(k)} ({n})" for k, n in ranked) or "(none)"

        top_c, top_p = top(classes), top(preds)
        rules = "; ".join(
            f"{r.name}: " + (f"predicate {format_path(r.predicate_path or (r.predicate,), self.short)}"
                             if r.is_direct else
                             f"agent {format_path(r.agent[0], self.short)}, "
                             f"object {format_path(r.object[0], self.short)}")
            for r in self.cm.rules)
        n_rel = self.W.get(RELATIVE_IRI_WARNING, 0)
        note = (f" {n_rel} IRIs were relative (no @base) and were resolved against the file location: "
                "pass base_iri= to choose their namespace." if n_rel else "")
        raise MappingError(
            f"mapping {self.mapping.name!r} ({self.mapping.source}) finds {what} in {self._where()} "
            f"({self.n_triples} triples). Its interaction rules look for: {rules}. "
            f"Most frequent rdf:type classes in the data: {top_c}. "
            f"Most frequent predicates: {top_p}. Edit the mapping's [users], [items] and "
            f"[[interactions]] to use these terms (see kg_data/mappings/README.md), or try another "
            f"profile (mapping='schema-org').{note}")


def _merge_repeats(u, i, w, t, sc, texts, W: Counter, by_scenario: bool = False):
    """One interaction per (user, item) pair, sorted by (user, item).

    The events of one pair (two rules, or the same rule repeated) become one interaction with the
    latest time (``nan`` only when no event has one), the largest weight and the scenario of the
    latest event (ties: the largest weight, then the last scenario); their distinct texts are
    joined. The merged events are counted in ``W`` under :data:`REPEATS_WARNING`. With
    ``by_scenario`` (a mapping whose rules name scenarios) the pair is (user, item) within one
    scenario: behaviour types the mapping keeps apart (a rating and a tag) stay two interactions.

    Returns:
        ``(user, item, weight, time, scenario, texts)``: numpy arrays and a list.
    """
    n = len(u)
    tkey = np.where(np.isnan(t), -np.inf, t)  # an event without time is never the latest
    order = np.lexsort((w, tkey, sc, i, u) if by_scenario else (sc, w, tkey, i, u))
    u, i, w, t, sc = u[order], i[order], w[order], t[order], sc[order]
    all_none = texts.count(None) == n
    texts = [None] * n if all_none else [texts[k] for k in order.tolist()]
    first = np.ones(n, dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    if by_scenario:
        first[1:] |= sc[1:] != sc[:-1]
    starts = np.flatnonzero(first)
    if len(starts) < n:
        W[REPEATS_WARNING] += n - len(starts)
        last = np.append(starts[1:], n) - 1
        w = np.maximum.reduceat(w, starts)
        if not all_none:
            merged = []
            for a, b in zip(starts.tolist(), (last + 1).tolist()):
                kept = list(dict.fromkeys(x for x in texts[a:b] if x is not None))
                merged.append("\n".join(kept) if kept else None)
            texts = merged
        else:
            texts = [None] * len(starts)
        u, i, t, sc = u[starts], i[starts], t[last], sc[last]
    if by_scenario and n > 1:  # the order of the other case: (user, item, time, weight, scenario)
        order = np.lexsort((sc, w, t, i, u))
        u, i, w, t, sc = u[order], i[order], w[order], t[order], sc[order]
        texts = [texts[k] for k in order.tolist()]
    return u, i, w, t, sc, texts


def build_graph(
    triples: Iterable[Triple],
    mapping: Mapping | None = None,
    *,
    warnings: Counter | None = None,
    sources: Sequence[str] = (),
) -> KnowledgeGraph:
    """Build a :class:`KnowledgeGraph` from triples (see :mod:`kgrec.data.rdf` for the terms).

    Args:
        triples: ``(subject, predicate, object)`` tuples, read once.
        mapping: the :class:`Mapping` (default ``Mapping()``, the kgrec vocabulary).
        warnings: a ``Counter`` the parser counts into while ``triples`` is streamed; it is
            extended in place and becomes ``KnowledgeGraph.warnings``.
        sources: file names for messages and ``KnowledgeGraph.sources``.

    Returns:
        The graph; ``kg.interaction_text`` (a list aligned with ``kg.interactions``) holds the
        text of each interaction (``None`` when it has none).

    Raises:
        EmptyGraphError: no triples at all.
        MappingError: the mapping finds no users, no items or no (positive) interactions; the
            message lists the most frequent classes and predicates of the data.
    """
    return build_graph_batched((triples,), mapping, warnings=warnings, sources=sources)


def build_graph_batched(
    batches: Iterable[Iterable[Triple]],
    mapping: Mapping | None = None,
    *,
    warnings: Counter | None = None,
    sources: Sequence[str] = (),
) -> KnowledgeGraph:
    """:func:`build_graph` over batches of plain triples: the entry for triples that do not come
    from a file (another parser, a SPARQL endpoint's rows...).

    ``batches`` is an iterable of iterables of ``(subject, predicate, object)`` with the terms of
    :mod:`kgrec.data.rdf` (``str`` IRI, ``"_:..."`` blank node, :class:`~kgrec.data.rdf.Literal`),
    e.g. lists of a few thousand rows as a source pages through its results; it is read once,
    each batch numbered as it arrives (:meth:`~kgrec.data.rdf.IdTriples.from_triples`), so only
    the distinct terms and the integer triples are held. A source that already holds integer ids
    and a term table gives an :class:`~kgrec.data.rdf.IdTriples` to :func:`build_graph_ids`.
    """
    return build_graph_ids(IdTriples.from_triples(batches), mapping, warnings=warnings, sources=sources)


def build_graph_ids(
    idt: IdTriples,
    mapping: Mapping | None = None,
    *,
    warnings: Counter | None = None,
    sources: Sequence[str] = (),
) -> KnowledgeGraph:
    """:func:`build_graph` of integer-id triples (:func:`kgrec.data.rdf.read_ids`,
    :meth:`~kgrec.data.rdf.IdTriples.concat` of several files).
    """
    # the same Counter object: the parser's counts (named graphs, relative IRIs...) go on in it
    b = _Builder(mapping if mapping is not None else Mapping(), warnings if warnings is not None else Counter(),
                 sources)
    with paused_gc():
        b.read_ids(idt)
        return b.build()
