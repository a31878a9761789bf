"""The sections of a :class:`~kgrec.data.mapping.Mapping` as written by its author: one dataclass each.

These are plain data with defaults (the ``kgrec`` profile's); fields accepting alternatives take a
string or a list and hold a list. Nothing here expands a term or checks a value:
:meth:`Mapping.compile <kgrec.data.mapping.Mapping.compile>` does, so errors name the mapping's source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["DEFAULT_TEXT_PREDICATES", "SCENARIO_NAME_RE", "UserRule", "ItemRule", "InteractionRule", "KGRule",
           "TextRule", "FeatureRule", "ScenarioRule"]

DEFAULT_TEXT_PREDICATES: list[str] = [
    "kgr:title", "kgr:description", "rdfs:label", "schema:name", "schema:description",
    "dct:title", "dbo:abstract", "skos:prefLabel",
]


def _as_list(v) -> list:
    """``v`` as a list: ``None`` -> ``[]``, a list or tuple copied, anything else wrapped."""
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return list(v)
    return [v]


# --------------------------------------------------------------------------- rule dataclasses
@dataclass
class UserRule:
    """Which nodes are users.

    Args:
        classes: ``rdf:type`` classes whose instances are users (default ``["kgr:User"]``).
        infer: also take every interaction's agent as a user (default ``True``); with ``False``
            interactions whose agent is not of a user class are skipped and counted.
    """

    classes: list[str] = field(default_factory=lambda: ["kgr:User"])
    infer: bool = True

    def __post_init__(self) -> None:
        self.classes = _as_list(self.classes)


@dataclass
class ItemRule:
    """Which nodes are items, and which predicates merge external IRIs into them.

    Args:
        classes: ``rdf:type`` classes whose instances are items (default ``["kgr:Item"]``).
        infer: also take every interaction's object as an item (default ``True``).
        same_as: predicates (either direction) that merge an external IRI into an item, so the
            triples of the external IRI become the item's (default ``["owl:sameAs"]``).
    """

    classes: list[str] = field(default_factory=lambda: ["kgr:Item"])
    infer: bool = True
    same_as: list[str] = field(default_factory=lambda: ["owl:sameAs"])

    def __post_init__(self) -> None:
        self.classes = _as_list(self.classes)
        self.same_as = _as_list(self.same_as)


@dataclass
class InteractionRule:
    """One way interactions are stated in the data: a direct predicate or a reified event.

    Direct form: ``predicate`` (``user -> item``, or ``item -> user`` with ``inverse``).
    Event form: nodes of class ``cls`` (or, without a class, every subject of the first step of
    ``agent`` or ``object``) with paths to the user (``agent``), the item (``object``) and
    optionally a time, a weight and a text.

    Args:
        name: a name used in warnings and errors.
        predicate: direct interaction predicate, or a path from the user to the item such as
            ``"^ex:ratedBy/ex:ratedItem"`` (default ``None``).
        inverse: the direct predicate points from item to user (default ``False``).
        cls: event classes (TOML key ``class``; default ``[]``: no class needed).
        agent, object: paths from the event to the user / the item (alternatives allowed).
        time: path to the timestamp literal (``xsd:dateTime``, ``xsd:date`` or unix seconds).
        weight: path to a numeric literal (rating, count); missing -> weight 1.0.
        text: path to a text literal (a review, a tag) kept per interaction.
        positive: ``"all"`` (default) or ``"weight OP number"`` with OP one of
            ``>= > <= < == !=``; interactions failing it are dropped and counted.
        scenario: the scenario (behaviour type) of the interactions this rule finds, e.g.
            ``"rating"`` or ``"tag"`` (default ``None``: scenario ``"default"``). Rules may share a
            scenario; scenario ids follow the sorted names (``KnowledgeGraph.scenarios``).
    """

    name: str
    predicate: str | None = None
    inverse: bool = False
    cls: list[str] = field(default_factory=list)
    agent: list[str] = field(default_factory=list)
    object: list[str] = field(default_factory=list)
    time: list[str] = field(default_factory=list)
    weight: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    positive: str = "all"
    scenario: str | None = None

    def __post_init__(self) -> None:
        for name in ("cls", "agent", "object", "time", "weight", "text"):
            setattr(self, name, _as_list(getattr(self, name)))

    @property
    def is_direct(self) -> bool:
        return self.predicate is not None


@dataclass
class KGRule:
    """Which IRI-valued triples become KG edges.

    Args:
        edges: ``"*"`` (default: every predicate except ``rdf:type``, the same-as and direct
            interaction predicates, text/feature predicates and ``exclude``) or a list of predicates;
            an entry ``"a|b"`` lists both, ``"^p"`` follows ``p`` from its object to its subject.
        exclude: predicates never used as edges (default ``[]``).
        max_hops: how far from the items edges are followed (``1``: only item -> X edges);
            ``None`` (default) follows every reachable edge.
        incoming: also follow edges pointing *into* items / attribute entities, making their
            subject an attribute entity (default ``False``).
    """

    edges: str | list[str] = "*"
    exclude: list[str] = field(default_factory=list)
    max_hops: int | None = None
    incoming: bool = False

    def __post_init__(self) -> None:
        if self.edges != "*":
            self.edges = _as_list(self.edges)
        self.exclude = _as_list(self.exclude)


@dataclass
class TextRule:
    """Which literals are text, and in which languages.

    Args:
        predicates: literal predicates kept as text (default: ``kgr:title``, ``kgr:description``,
            ``rdfs:label``, ``schema:name``, ``schema:description``, ``dct:title``, ``dbo:abstract``,
            ``skos:prefLabel``).
        languages: language tags kept (``"en"`` also keeps ``"en-GB"``; ``""`` = no tag;
            ``"*"`` = all). Default ``["en", ""]``; other literals are dropped and counted.
    """

    predicates: list[str] = field(default_factory=lambda: list(DEFAULT_TEXT_PREDICATES))
    languages: list[str] = field(default_factory=lambda: ["en", ""])

    def __post_init__(self) -> None:
        self.predicates = _as_list(self.predicates)
        self.languages = _as_list(self.languages)


@dataclass
class FeatureRule:
    """Numeric literal predicates turned into ``KnowledgeGraph.features`` columns.

    Args:
        numeric: predicates, one column each (default ``["kgr:year"]``).
    """

    numeric: list[str] = field(default_factory=lambda: ["kgr:year"])

    def __post_init__(self) -> None:
        self.numeric = _as_list(self.numeric)


@dataclass
class ScenarioRule:
    """Scenarios as item domains: each interaction's scenario from an attribute of its item.

    Args:
        item_predicate: the KG predicate from an item to its domain attribute, e.g. ``"kgr:genre"``
            (default ``None``: no domains).
        domains: ``{scenario name: [attribute IRIs]}``; an item is in the first domain (in the
            order written) one of whose attributes it has (default ``{}``).
        rest: the scenario of interactions with items in no domain (default ``"other"``).

    Domains cannot be combined with ``scenario`` on interaction rules (one scenario per interaction).
    """

    item_predicate: str | None = None
    domains: dict[str, list[str]] = field(default_factory=dict)
    rest: str = "other"


#: Scenario names: a letter, then letters, digits, ``_``, ``.`` or ``-``.
SCENARIO_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
