"""Interaction records from the mapping's interaction rules (rule 5 of :mod:`kgrec.data.extract`).

:meth:`EventReader.interactions` reads every rule into raw records ``(rule index, agent IRI,
object IRI, weight or nan, time or nan, text or None)``. A direct rule reads its predicate's (or
path's) pairs. An event rule reads its event nodes by one of three paths that give the same
records and warnings: whole integer columns when every event is clean
(:meth:`~EventReader._clean_events_ids`), else one dict look-up per event when every path is a
single property (:meth:`~EventReader._single_valued`), else the general per-event walk of the
alternative paths (:meth:`~EventReader._event_record`), which also takes every event the faster
paths refuse and counts its problems. :func:`merge_repeats` then makes one interaction per
(user, item) pair.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import repeat
from operator import itemgetter

import numpy as np

from kgrec.data.idcolumns import IRI, PLAIN
from kgrec.data.literal_values import event_times, parse_timestamp
from kgrec.data.rdf import Literal, Term
from kgrec.data.triple_index import RDF_TYPE, TripleIndex
from kgrec.data.validation import REPEATS_WARNING

__all__ = ["EventReader", "merge_repeats"]

_VALUE = itemgetter(0)  # of a Literal


class EventReader(TripleIndex):
    """:class:`~kgrec.data.triple_index.TripleIndex` plus the interaction rules (module docstring)."""

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

    @staticmethod
    def _single_properties(rule) -> list[str | None] | None:
        """Per path of an event rule (agent, object, time, weight, text) its one property, ``None``
        for an absent optional one; ``None`` when some path is not a single property.
        """
        props = []
        for k, paths in enumerate((rule.agent, rule.object, rule.time, rule.weight, rule.text)):
            if not paths and k >= 2:
                props.append(None)
                continue
            if len(paths) != 1 or len(paths[0]) != 1 or type(paths[0][0]) is not str:
                return None
            props.append(paths[0][0])
        return props

    def _single_valued(self, rule):
        """Look-ups for an event rule whose paths are all one property each, else ``None``.

        Per path (agent, object, time, weight, text; ``None`` for an absent optional one):
        ``(get, several)``, where ``get(event)`` is the event's value (one of them when it has
        several) and ``several`` is the set of events with more than one value.
        """
        props = self._single_properties(rule)
        if props is None:
            return None
        out = []
        for p in props:
            if p is None:
                out.append(None)
                continue
            pairs = self.by_pred.get(p, ())
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
        steps = self._single_properties(rule)
        if steps is None:
            return None
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
            times = event_times(table[t].tolist())
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
        recs = []  # (rule index, agent IRI, object IRI, weight or nan, time or nan, text or None)
        events: set[str] = set()
        for ri, rule in enumerate(self.cm.rules):
            if rule.is_direct:
                self._direct_records(ri, rule, events, recs)
                continue
            cands = self._event_candidates(rule)
            events |= cands
            clean = self._clean_events_ids(ri, rule)
            if clean is not None:
                recs.extend(clean)
                continue
            self._event_records(ri, rule, cands, recs)
        return recs, events

    def _direct_records(self, ri: int, rule, events: set[str], recs: list) -> None:
        """Append the records of a direct rule (``user predicate item``, or a path) to ``recs``."""
        W, name = self.W, rule.name
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

    def _event_candidates(self, rule) -> set[str]:
        """The event nodes of an event rule: instances of its classes, else its paths' start nodes."""
        if rule.classes:
            classes = self.with_subclasses(rule.classes)
            return {s for s, o in self.by_pred.get(RDF_TYPE, ()) if o in classes}
        cands = set()
        for path in rule.agent + rule.object:
            cands |= self.path_starts(path[0])
        return cands

    def _event_records(self, ri: int, rule, cands, recs: list) -> None:
        """Append the records of an event rule's events by dict look-ups where its paths are single
        properties (:meth:`_single_valued`), each event the look-ups refuse by :meth:`_event_record`.
        """
        paths: list = []  # the general path's look-ups, built on its first use
        fast = self._single_valued(rule)
        # events in IRI order: the order of records is the order repeats of one (user, item) pair
        # join their texts in, which must not depend on the interpreter's string hashing
        cands = sorted(cands)
        if fast is None:
            for e in cands:
                self._event_record(e, ri, rule, paths, recs)
            return
        name = rule.name
        (ga, ma), (go, mo), tm, wt, tx = fast
        for e in cands:
            # the common case (one IRI agent, one IRI object, one literal time and weight, no
            # text) by plain dict look-ups; any other event takes the general path
            a, o = ga(e), go(e)
            if (a is None or o is None or type(a) is not str or type(o) is not str or e in ma or e in mo
                    or a.startswith("_:") or o.startswith("_:")):
                self._event_record(e, ri, rule, paths, recs)
                continue
            if tm is not None:
                lt = tm[0](e)
                if lt is None or type(lt) is str or e in tm[1]:
                    self._event_record(e, ri, rule, paths, recs)
                    continue
            if wt is not None:
                lw = wt[0](e)
                if lw is None or type(lw) is str or e in wt[1]:
                    self._event_record(e, ri, rule, paths, recs)
                    continue
            if tx is not None and (tx[0](e) is not None or e in tx[1]):
                self._event_record(e, ri, rule, paths, recs)
                continue
            t = self._event_time(lt, name) if tm is not None else math.nan
            w = self._event_weight(lw, name) if wt is not None else math.nan
            recs.append((ri, a, o, w, t, None))

    def _event_record(self, e: str, ri: int, rule, paths: list, recs: list) -> None:
        """The general case: alternatives, multi-step paths, several or odd values."""
        W, name = self.W, rule.name
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
        t = self._event_value(resolve(e, p_time), name, "timestamp", self._event_time) if rule.time else math.nan
        w = self._event_value(resolve(e, p_weight), name, "weight", self._event_weight) if rule.weight else math.nan
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

    def _event_value(self, values: list[Term], name: str, role: str, parse) -> float:
        """``parse(literal, name)`` of an event's ``role`` literal; ``nan`` (counted) when it has none."""
        lit = self._literal_value(values, name, role)
        if lit is None:
            self.W[f"interaction '{name}': event without {role}"] += 1
            return math.nan
        return parse(lit, name)

    def _event_time(self, lit: Literal, name: str) -> float:
        """Unix seconds of an event's time literal; a problem met is counted under the rule ``name``."""
        t, problem = parse_timestamp(lit)
        if problem:
            self.W[f"interaction '{name}': {problem}"] += 1
        return t

    def _event_weight(self, lit: Literal, name: str) -> float:
        """An event's weight; ``nan`` when it is not a number, counted under the rule ``name``."""
        try:
            return float(lit.value)
        except ValueError:
            self.W[f"interaction '{name}': non-numeric weight"] += 1
            return math.nan

def merge_repeats(u, i, w, t, sc, texts, W: Counter, by_scenario: bool = False):
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
