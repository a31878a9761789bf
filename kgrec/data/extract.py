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
   events of a pair merged into the latest time and the largest weight
   (:func:`~kgrec.data.events.merge_repeats`). Every input (a parsed file, triples from another
   source) ends in :meth:`_Builder.build`.

What each rule produced and the mapping terms that match nothing are kept as
``kg.mapping_report`` (:mod:`kgrec.data.validation`).

Problems are counted in ``KnowledgeGraph.warnings`` (rule -> count) instead of failing; a mapping
that finds no users, items or interactions raises :class:`MappingError` listing what the data
does contain.

The work is shared by four modules: :mod:`kgrec.data.triple_index` groups the triples by
predicate and answers the rules' look-ups, :mod:`kgrec.data.events` reads the interaction rules
(rule 5), :mod:`kgrec.data.attributes` the literals (rule 4), and this module's :class:`_Builder`
runs the rules in order and assembles the graph; :mod:`kgrec.data.literal_values` reads the
numbers and times of literals.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from operator import itemgetter, methodcaller

import numpy as np
import torch

from kgrec.data.attributes import AttributeReader
from kgrec.data.events import EventReader, merge_repeats
from kgrec.data.graph import DEFAULT_SCENARIOS, Interactions, KnowledgeGraph
from kgrec.data.literal_values import iso_seconds as _iso_seconds  # noqa: F401  (tests read it here)
from kgrec.data.literal_values import iso_seconds_many as _iso_seconds_many  # noqa: F401  (tests read it here)
from kgrec.data.literal_values import parse_number, parse_timestamp
from kgrec.data.mapping import Mapping, format_path
from kgrec.data.rdf import RELATIVE_IRI_WARNING, IdTriples, Triple, paused_gc
from kgrec.data.scenarios import assign_domains
from kgrec.data.triple_index import IMPORTS_WARNING, OWL_IMPORTS, RDF_TYPE, RDFS_SUBCLASS_OF
from kgrec.data.validation import DROPPED_USERS_WARNING, RuleCount, mapping_report
from kgrec.data.vocab import Vocab
from kgrec.errors import EmptyGraphError, MappingError

__all__ = ["build_graph", "build_graph_batched", "build_graph_ids", "parse_timestamp", "parse_number", "RDF_TYPE",
           "RDFS_SUBCLASS_OF", "OWL_IMPORTS", "IMPORTS_WARNING"]

_SECOND = itemgetter(1)  # of a (subject, object) pair
_is_blank = methodcaller("startswith", "_:")
# fields of an interaction record (rule index, agent, object, weight, time, text): see kgrec.data.events
_RULE, _AGENT, _OBJECT, _WEIGHT, _TIME, _TEXT = (itemgetter(k) for k in range(6))


class _Builder(EventReader, AttributeReader):
    """One build: the rules of the module docstring, over the interaction rules of
    :class:`~kgrec.data.events.EventReader` and the literal rules of
    :class:`~kgrec.data.attributes.AttributeReader` (both a :class:`~kgrec.data.triple_index.TripleIndex`).
    """

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
        """The graph of the read triples: the rules of the module docstring, in order."""
        cm = self.cm
        if self.n_triples == 0:
            raise EmptyGraphError(f"no triples in {self._where()}: the file is empty or holds only prefixes/comments")
        users, items = self._typed_users_items()
        recs, events = self.interactions()
        recs = self._agents_as_users(recs, users)
        recs = self._objects_as_items(recs, items, users)
        users = self._active_users(recs, users)
        recs, n_complete = self._positive_records(recs)
        if not users or not items or not recs:
            self._no_match(users, items, n_complete)

        blocked = (users | events) - items
        skip = self._skipped_predicates()
        entities, kg_triples = self._walk_kg(items, blocked, *self._adjacency(blocked, skip))
        user_vocab, item_vocab, entity_vocab, relation_vocab, triples = self._vocabularies(
            users, items, entities, kg_triples)
        literals, user_literals = self.literals(entity_vocab, user_vocab)
        features = self.features(entity_vocab)
        self.iri_like_literals(entity_vocab, skip)
        inter, texts, scenarios, per_event = self._interaction_table(recs, user_vocab, item_vocab)

        kg = KnowledgeGraph(
            users=user_vocab, items=item_vocab, entities=entity_vocab, relations=relation_vocab,
            triples=triples, interactions=inter, literals=literals, user_literals=user_literals,
            features=features, feature_names=list(cm.numeric), warnings=self.W, sources=self.sources,
            scenarios=scenarios,
        )
        if cm.domain_predicate is not None:
            kg = assign_domains(kg, cm.domain_predicate, [(n, sorted(a)) for n, a in cm.domains], cm.domain_rest)
        # per-interaction texts (reviews, tags) have no field in KnowledgeGraph yet
        kg.interaction_text = texts
        kg.mapping_report = self.report(*per_event, triples, relation_vocab, literals, user_literals, len(users),
                                        len(items))
        return kg

    def _typed_users_items(self) -> tuple[set[str], set[str]]:
        """Rule 1's typed part: the instances of the user and of the item classes (never blank nodes)."""
        cm, W = self.cm, self.W
        type_pairs = self.by_pred.get(RDF_TYPE, ())
        ucls, icls = self.with_subclasses(cm.user_classes), self.with_subclasses(cm.item_classes)
        users: set[str] = {s for s, o in type_pairs if o in ucls}
        items: set[str] = {s for s, o in type_pairs if o in icls}
        for found in (users, items):  # blank nodes are never users or items
            if any(map(_is_blank, found)):
                found.difference_update([x for x in found if x.startswith("_:")])
        n_type_lit = len(type_pairs) - list(map(type, map(_SECOND, type_pairs))).count(str)
        if n_type_lit:
            W[f"literal where an IRI is expected ({self.short(RDF_TYPE)})"] += n_type_lit
        return users, items

    def _agents_as_users(self, recs: list, users: set[str]) -> list:
        """Rule 1 for agents: with ``users.infer`` every agent joins ``users`` (in place), else the
        records whose agent is not a user are dropped and counted.
        """
        if self.cm.infer_users:
            users.update(map(_AGENT, recs))
            return recs
        names = [r.name for r in self.cm.rules]
        kept = [r for r in recs if r[1] in users]
        for r in recs:
            if r[1] not in users:
                self.W[f"interaction '{names[r[0]]}': agent is not of a user class (skipped)"] += 1
        return kept

    def _objects_as_items(self, recs: list, items: set[str], users: set[str]) -> list:
        """Rules 1 and 2 for objects: same-as neighbours merged into the items (``canon``), then with
        ``items.infer`` every other object joins ``items`` (in place), else its records are dropped
        and counted. Returns the records with their objects read through the merges.
        """
        sa, sa_pairs = self.same_as_graph()
        self.absorb(items, items, users, sa)
        canon = self.canon
        recs = self._merged_objects(recs)
        if self.cm.infer_items:
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
            return self._merged_objects(recs)
        names = [r.name for r in self.cm.rules]
        for r in recs:
            if r[2] not in items:
                self.W[f"interaction '{names[r[0]]}': object is not of an item class (skipped)"] += 1
        return [r for r in recs if r[2] in items]

    def _merged_objects(self, recs: list) -> list:
        """``recs`` with each object read through the same-as merges (``canon``)."""
        canon = self.canon
        if canon:
            recs = [(r[0], r[1], canon.get(r[2], r[2]), *r[3:]) for r in recs]
        return recs

    def _active_users(self, recs: list, users: set[str]) -> set[str]:
        """The users that are the agent of at least one record; the others are counted."""
        W = self.W
        # users are the agents of at least one complete interaction: an instance of a user class
        # that never interacts (an author or an actor typed like the users) is not a user, and
        # may become an attribute entity like any other IRI
        active = set(map(_AGENT, recs))
        dropped = users - active
        if dropped:
            W[DROPPED_USERS_WARNING] += len(dropped)
            users = users & active
        return users

    def _positive_records(self, recs: list) -> tuple[list, int]:
        """The records each rule's ``positive`` test keeps (the others counted), and how many there were."""
        cm, W = self.cm, self.W
        # the positivity rule drops interactions but not the users/items they name
        kept = [] if any(rule.positive.op is not None for rule in cm.rules) else recs
        for r in recs if kept is not recs else ():
            rule = cm.rules[r[0]]
            if rule.positive(r[3]):
                kept.append(r)
            else:
                W[f"interaction '{rule.name}': dropped by positive rule '{rule.positive.text}'"] += 1
        return kept, len(recs)

    # ------------------------------------------------------------- KG
    def _skipped_predicates(self) -> set[str]:
        """Predicates that are never KG edges under ``edges = "*"``: types, same-as, interaction,
        excluded, text and feature predicates.
        """
        cm = self.cm
        return {RDF_TYPE} | set(cm.same_as) | {r.predicate for r in cm.rules if r.predicate} | set(cm.exclude) \
            | set(cm.text_predicates) | set(cm.numeric)

    def _adjacency(self, blocked: set[str], skip: set[str]) -> tuple[dict[str, list], dict[str, list]]:
        """Rule 3's candidate edges: ``(out, in)`` adjacency of the followed predicates, subjects and
        objects read through ``canon``, without the out-edges of ``blocked`` nodes (users, events).
        """
        cm, W, by_pred, canon = self.cm, self.W, self.by_pred, self.canon
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
        return out_adj, in_adj

    def _walk_kg(self, items: set[str], blocked: set[str], out_adj: dict[str, list],
                 in_adj: dict[str, list]) -> tuple[set[str], set[tuple[str, str, str]]]:
        """Rule 3: ``(entities, triples)`` reached hop by hop from the items (at most ``max_hops``)."""
        cm, W = self.cm, self.W
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
        return entities, kg_triples

    def _vocabularies(self, users: set[str], items: set[str], entities: set[str],
                      kg_triples: set[tuple[str, str, str]]) -> tuple:
        """``(user, item, entity, relation vocabularies, [T, 3] triples)``: items first among the
        entities, triples de-duplicated and sorted.
        """
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
        return user_vocab, item_vocab, entity_vocab, relation_vocab, triples

    # ------------------------------------------------------ interactions
    def _interaction_table(self, recs: list, user_vocab: Vocab, item_vocab: Vocab) -> tuple:
        """``(interactions, texts, scenarios, (user, item, rule) per event)``: the records as id
        arrays (weight 1.0 when missing), repeated pairs merged (:func:`~kgrec.data.events.merge_repeats`).
        """
        cm, W = self.cm, self.W
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
        u, i, w, t, sc, texts = merge_repeats(u, i, w, t, sc, texts, W, by_scenario=len(scenarios) > 1)
        inter = Interactions.from_lists(u, i, w, t)
        if len(scenarios) > 1 or scenarios != DEFAULT_SCENARIOS:
            inter.scenario = torch.as_tensor(sc)
        return inter, texts, scenarios, (u_events, i_events, rule_of)

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
