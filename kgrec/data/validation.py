"""What a mapping found in a graph: per-rule counts and the mapping terms that matched nothing.

:func:`mapping_report` is computed by the extraction step (:mod:`kgrec.data.extract`) while it
builds a :class:`~kgrec.data.graph.KnowledgeGraph` and is kept as ``kg.mapping_report``;
``kgrec validate`` prints it (:meth:`MappingReport.format`).

A mapping term (a class or a predicate IRI) *matches* when the graph uses it: a class as the
object of an ``rdf:type`` triple, a predicate as the predicate of a triple. Terms are grouped by
the mapping field that holds them (``users.classes``, the ``agent`` of one interaction rule,
``text.predicates``...). The alternatives of one field stand in for each other, so an unmatched
alternative only matters when no alternative of its field matched: such a term is *blocking*
(``kgrec validate --strict`` fails on it), the others are listed as unused alternatives. Every
unmatched term comes with the closest terms of the same kind that the graph does use (difflib,
on the IRIs' local names, and on the full IRIs for a misspelt namespace), which is what a
misspelling needs.

Required fields (an interaction rule's ``predicate``, ``class``, ``agent`` and ``object``; the user
/ item classes when they are not inferred; an explicit ``kg.edges`` list; the domain predicate)
block whenever none of their terms matched, with one exception: the interaction rules of a mapping
are alternatives too (a profile such as ``schema-org`` reads many kinds of events, and one graph
rarely holds them all), so when another rule produced interactions, a rule whose class or predicate
the graph does not use blocks only where its term looks misspelt, as an optional field does (a rule
whose events are in the graph still needs its ``agent`` and ``object`` to match). Optional fields (a
rule's ``time``, ``weight`` and ``text``, ``text.predicates``, ``features.numeric``, inferred user /
item classes) may well be absent from a correct graph (a shipped profile lists terms for many
vocabularies), so they block only when the graph has a term close enough to be the intended one
(:data:`MISSPELT_CUTOFF` on the local names): the misspelling case.

Fields never reported: ``kg.exclude`` and ``items.same_as`` (their absence loses nothing).
Each predicate of an explicit ``kg.edges`` list is a field of its own (they are not alternatives).
"""

from __future__ import annotations

import difflib
import warnings as _warnings
from collections.abc import Iterable, Iterator
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field

from kgrec.data.mapping import CompiledMapping

__all__ = ["RuleCount", "UnmatchedTerm", "MappingReport", "mapping_report", "suggest", "local_name",
           "NAMED_GRAPHS_WARNING", "REPEATS_WARNING", "DROPPED_USERS_WARNING", "INCOMPLETE_EVENT_MARKS",
           "warn_load_problems"]

#: Key of ``kg.warnings`` whose count is the number of named graphs merged into one graph.
NAMED_GRAPHS_WARNING = "named graphs merged into one graph (graph names ignored)"
#: Key of ``kg.warnings`` counting interactions merged into an earlier one of the same (user, item) pair.
REPEATS_WARNING = "repeated (user, item) pair merged into one interaction (latest time, largest weight)"
#: Key of ``kg.warnings`` counting instances of a user class without any interaction.
DROPPED_USERS_WARNING = "instance of a user class without interactions: not a user"
#: The parts of warning keys that mark an interaction event skipped for a missing user or item
#: (``event without agent``, ``... object``, ``... agent and object``: one count per event).
INCOMPLETE_EVENT_MARKS = (": event without agent", ": event without object")

#: The least difflib similarity (local names) of a suggestion.
SUGGEST_CUTOFF = 0.6
#: The least similarity (local names) that makes an unmatched optional term a likely misspelling.
MISSPELT_CUTOFF = 0.8
#: The least similarity of two full IRIs for a suggestion whose local names differ more.
IRI_CUTOFF = 0.95


def local_name(iri: str) -> str:
    """The part of ``iri`` after its last ``#``, ``/`` or ``:`` (the IRI itself when none)."""
    stem = iri.rstrip("/#")
    for sep in ("#", "/", ":"):
        if sep in stem:
            stem = stem.rsplit(sep, 1)[-1]
            break
    return stem or iri


def _ratio(sm: difflib.SequenceMatcher, a: str, b: str, cutoff: float) -> float:
    """The ``difflib`` ratio of ``a`` and ``b``, or 0 when its cheap upper bounds are under ``cutoff``
    (a graph may use thousands of predicates: most candidates stop at the bounds).
    """
    sm.set_seqs(a, b)
    if sm.real_quick_ratio() < cutoff or sm.quick_ratio() < cutoff:
        return 0.0
    return sm.ratio()


def _similarity(term: str, name: str, cand: str, sm: difflib.SequenceMatcher,
                cutoff: float) -> tuple[float, float]:
    """(local-name ratio, full-IRI ratio) of ``term`` (local name ``name``, case-folded) and
    ``cand``; a ratio under its cutoff (``cutoff``, :data:`IRI_CUTOFF`) may read 0.
    """
    return _ratio(sm, name, local_name(cand).lower(), cutoff), _ratio(sm, term, cand, IRI_CUTOFF)


def suggest(term: str, candidates: Iterable[str], n: int = 3, cutoff: float = SUGGEST_CUTOFF) -> list[str]:
    """The ``n`` candidates closest to ``term``, best first.

    A candidate qualifies when its local name's difflib ratio (case-folded) reaches ``cutoff``,
    or its full IRI's reaches :data:`IRI_CUTOFF` (a misspelt namespace); candidates rank by the
    larger of the two ratios, then by IRI. Comparing full IRIs alone
    would rank any term of the same namespace first (``schema:Book`` close to ``schema:Movie``).
    """
    name = local_name(term).lower()
    scored = []
    sm = difflib.SequenceMatcher()
    for c in set(candidates):
        if c == term:
            continue
        local, full = _similarity(term, name, c, sm, cutoff)
        if local >= cutoff or full >= IRI_CUTOFF:
            scored.append((-max(local, full if full >= IRI_CUTOFF else 0.0), c))
    return [c for _, c in sorted(scored)[:n]]


@dataclass
class RuleCount:
    """What one mapping rule produced.

    Attributes:
        section: ``"users"``, ``"items"``, ``"interactions"``, ``"kg"`` or ``"text"``.
        name: the rule's name (interactions), or the class / predicate it reads (CURIE).
        interactions, kg_edges, texts, users, items: what the rule produced (interactions before
            repeated pairs are merged; distinct users / items named by a rule's interactions).
    """

    section: str
    name: str
    interactions: int = 0
    kg_edges: int = 0
    texts: int = 0
    users: int = 0
    items: int = 0


@dataclass
class UnmatchedTerm:
    """A mapping term the graph never uses.

    Attributes:
        iri: the term's IRI; ``short``: the same as a CURIE of the mapping's prefixes.
        kind: ``"class"`` or ``"predicate"``.
        where: the mapping field holding it (``"interactions 'event'.agent"``...).
        suggestions: the closest terms of the same kind the graph uses (IRIs, best first).
        blocking: no alternative of its field matched either (``--strict`` fails on it).
    """

    iri: str
    short: str
    kind: str
    where: str
    suggestions: list[str] = field(default_factory=list)
    blocking: bool = True


@dataclass
class MappingReport:
    """What a mapping found in a graph (see the module docstring).

    Attributes:
        mapping: the mapping's name.
        rules: per-rule counts, in mapping order.
        unmatched: the mapping terms the graph never uses.
        typed_users_dropped: instances of a user class with no interaction (not users).
        repeats_merged: interactions merged into another of the same (user, item) pair.
        named_graphs_merged: named graphs (N-Quads, TriG) read into one graph.
        incomplete_events: interaction events skipped for a missing user or item (once each).
        warnings: every data warning of the load (``kg.warnings``).
    """

    mapping: str
    rules: list[RuleCount] = field(default_factory=list)
    unmatched: list[UnmatchedTerm] = field(default_factory=list)
    typed_users_dropped: int = 0
    repeats_merged: int = 0
    named_graphs_merged: int = 0
    incomplete_events: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    prefixes: tuple[tuple[str, str], ...] = ()

    def shorten(self, iri: str) -> str:
        """``iri`` as a CURIE of the mapping's prefixes (longest namespace), else ``<iri>``."""
        best = max(((p, ns) for p, ns in self.prefixes if iri.startswith(ns)), key=lambda x: len(x[1]), default=None)
        return f"{best[0]}:{iri[len(best[1]):]}" if best else f"<{iri}>"

    @property
    def blocking(self) -> list[UnmatchedTerm]:
        """The unmatched terms no alternative stands in for: what ``--strict`` fails on."""
        return [u for u in self.unmatched if u.blocking]

    def format(self) -> str:
        """The report as text: a table of rule counts, then the unmatched terms."""
        short = self.shorten
        lines = ["rules (what each mapping rule produced):"]
        head = ("section", "rule", "interactions", "kg_edges", "texts", "users", "items")
        rows = [(r.section, r.name, r.interactions, r.kg_edges, r.texts, r.users, r.items) for r in self.rules]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        for row in (head, *rows):
            lines.append("  " + "  ".join(str(x).ljust(w) if k < 2 else str(x).rjust(w)
                                          for k, (x, w) in enumerate(zip(row, widths))))
        for u in self.unmatched:
            sugg = ", ".join(short(s) for s in u.suggestions) or "(no close term in the graph)"
            what = "unmatched" if u.blocking else "unused"
            lines.append(f"{what} {u.kind} {u.short} ({u.where}): matches nothing; closest in the graph: {sugg}")
        if not self.blocking:
            lines.append("every required mapping term matches the graph" if self.unmatched
                         else "every mapping term matches the graph")
        if self.typed_users_dropped:
            lines.append(f"{self.typed_users_dropped} instance(s) of a user class without interactions: not users")
        if self.repeats_merged:
            lines.append(f"{self.repeats_merged} repeated (user, item) interaction(s) merged")
        if self.named_graphs_merged:
            lines.append(f"{self.named_graphs_merged} named graph(s) merged into one graph")
        if self.incomplete_events:
            lines.append(f"{self.incomplete_events} interaction event(s) without user or item skipped")
        return "\n".join(lines)


def _steps(paths) -> list[str]:
    """The predicate IRIs of alternative property paths (each a sequence of steps)."""
    out = []
    for path in paths:
        for step in path:
            out.append(step if isinstance(step, str) else str(getattr(step, "iri", step)))
    return out


#: One mapping field to check: (where, kind, alternatives: each a list of terms that must all match, required).
_Field = tuple[str, str, list[list[str]], bool]


def _unmatched(cm: CompiledMapping, used: set[str], where: str, kind: str, alternatives: list[list[str]],
               required: bool) -> list[UnmatchedTerm]:
    """The terms of one mapping field that ``used`` lacks: ``alternatives`` each a list of terms that must all match."""
    out: list[UnmatchedTerm] = []
    if not alternatives:
        return out
    none_matched = not any(all(t in used for t in alt) for alt in alternatives)
    seen = set()
    for alt in alternatives:
        for t in alt:
            if t in used or t in seen:
                continue
            seen.add(t)
            near = suggest(t, used)
            blocking = none_matched and (required or bool(suggest(t, used, 1, MISSPELT_CUTOFF)))
            out.append(UnmatchedTerm(t, cm.shorten(t), kind, where, near, blocking))
    return out


def _fields(cm: CompiledMapping, preds: set[str], cls: set[str], rules: list[RuleCount]) -> Iterator[_Field]:
    """Every mapping field the report checks, in report order."""
    if cm.user_classes:
        yield "users.classes", "class", [[c] for c in sorted(cm.user_classes)], not cm.infer_users
    if cm.item_classes:
        yield "items.classes", "class", [[c] for c in sorted(cm.item_classes)], not cm.infer_items
    yield from _rule_fields(cm, preds, cls, rules)
    if cm.edges is not None:
        for p in sorted(cm.edges - cm.exclude):
            yield "kg.edges", "predicate", [[p]], True
    if cm.text_predicates:
        yield "text.predicates", "predicate", [[p] for p in cm.text_predicates], False
    if cm.numeric:
        yield "features.numeric", "predicate", [[p] for p in cm.numeric], False
    if cm.domain_predicate is not None:
        yield "scenarios.domain_predicate", "predicate", [[cm.domain_predicate]], True


def _rule_fields(cm: CompiledMapping, preds: set[str], cls: set[str], rules: list[RuleCount]) -> Iterator[_Field]:
    """The fields of the interaction rules; when each is required: see the module docstring."""
    produced = {rc.name for rc in rules if rc.section == "interactions" and rc.interactions > 0}
    for r in cm.rules:
        where = f"interactions '{r.name}'"
        alone = not (produced - {r.name})  # the only rule, or no other rule produced anything
        # the rule's events are in the graph (its class or predicate is used): its parts must match
        present = (r.predicate in preds if r.predicate is not None else True) and (
            not r.classes or any(c in cls for c in r.classes))
        if r.predicate is not None:
            yield f"{where}.predicate", "predicate", [[r.predicate]], alone
        if r.classes:
            yield f"{where}.class", "class", [[c] for c in sorted(r.classes)], alone
        for part in ("agent", "object", "time", "weight", "text"):
            paths = getattr(r, part)
            if paths:
                yield (f"{where}.{part}", "predicate", [_steps([p]) for p in paths],
                       (alone or present) and part in ("agent", "object"))


def mapping_report(
    cm: CompiledMapping,
    name: str,
    predicates: Iterable[str],
    classes: Iterable[str],
    rules: list[RuleCount],
    warnings: AbcMapping[str, int],
) -> MappingReport:
    """The report of mapping ``cm`` (named ``name``) on a graph.

    Args:
        cm: the compiled mapping.
        name: the mapping's name.
        predicates: every predicate IRI of the graph.
        classes: every ``rdf:type`` object IRI of the graph.
        rules: the per-rule counts, computed by the extraction step.
        warnings: the load's warnings (``kg.warnings``).

    Returns:
        The report.
    """
    preds, cls = set(predicates), set(classes)
    unmatched: list[UnmatchedTerm] = []
    for where, kind, alternatives, required in _fields(cm, preds, cls, rules):
        unmatched += _unmatched(cm, cls if kind == "class" else preds, where, kind, alternatives, required)

    return MappingReport(
        mapping=name,
        rules=rules,
        unmatched=unmatched,
        typed_users_dropped=int(warnings.get(DROPPED_USERS_WARNING, 0)),
        repeats_merged=int(warnings.get(REPEATS_WARNING, 0)),
        named_graphs_merged=int(warnings.get(NAMED_GRAPHS_WARNING, 0)),
        incomplete_events=sum(int(n) for k, n in warnings.items() if any(m in k for m in INCOMPLETE_EVENT_MARKS)),
        warnings=dict(warnings),
        prefixes=cm.prefixes,
    )


def warn_load_problems(kg, sources: list[str], stacklevel: int = 4) -> None:
    """One ``UserWarning`` summing up ``kg.warnings`` (the five most frequent kinds), if any: what
    :func:`kgrec.load` and :func:`kgrec.load_store` say about the problems met while reading
    ``sources`` (``stacklevel`` points it at the caller of the public function).
    """
    if kg.warnings:
        total = sum(kg.warnings.values())
        top = sorted(kg.warnings.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = "; ".join(f"{k} ({n})" for k, n in top[:5])
        more = f"; and {len(top) - 5} more kinds" if len(top) > 5 else ""
        what = sources[0] if len(sources) == 1 else f"{len(sources)} files"
        _warnings.warn(f"kgrec.load({what}): {total} problems of {len(top)} kinds: {shown}{more}. "
                       "See kg.warnings for the full counts.", UserWarning, stacklevel=stacklevel)
