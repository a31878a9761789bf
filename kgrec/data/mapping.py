"""How RDF terms map onto users, items, interactions, KG edges, texts and numeric features.

A :class:`Mapping` is plain data: it can be written as TOML or YAML (see
``kg_data/mappings/README.md`` for every field), built from a ``dict``, or constructed in Python.
``Mapping()`` equals the shipped ``kgrec`` profile (the kgrec vocabulary,
``https://w3id.org/kgrec/vocab#``); ``Mapping.profile("schema-org")`` reads schema.org
Actions and Reviews.

Terms are written as CURIEs (``"kgr:user"``) expanded with :attr:`Mapping.prefixes`, as
``"<http://...>"``, or as bare absolute IRIs (``"http://..."``). Fields holding a *path* (an
event rule's agent, object, time, weight and text, a direct rule's predicate) read the SPARQL property-path subset
sequence ``a/b`` (``"schema:reviewRating/schema:ratingValue"``), inverse ``^a`` (from an
object back to its subject), alternative ``a|b`` (the values of both) and parentheses; inside
a path write full IRIs in angle brackets. Repetition (``*``, ``+``, ``?``) and negation (``!``)
are refused. Fields accepting alternatives take a string or a list; the first alternative that
yields a value wins. Classes match their subclasses declared in the data with
``rdfs:subClassOf`` (transitively).
"""

from __future__ import annotations

import math
import operator
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kgrec.errors import MappingError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 needs the tomli backport
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

__all__ = [
    "DEFAULT_PREFIXES",
    "DEFAULT_TEXT_PREDICATES",
    "UserRule",
    "ItemRule",
    "InteractionRule",
    "KGRule",
    "TextRule",
    "FeatureRule",
    "ScenarioRule",
    "Mapping",
    "PositiveRule",
    "CompiledRule",
    "CompiledMapping",
    "InversePath",
    "AlternativePath",
    "format_path",
    "data_dir",
    "profiles",
]

DEFAULT_PREFIXES: dict[str, str] = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "schema": "http://schema.org/",
    "kgr": "https://w3id.org/kgrec/vocab#",
    "dbo": "http://dbpedia.org/ontology/",
    "dct": "http://purl.org/dc/terms/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "foaf": "http://xmlns.com/foaf/0.1/",
}

DEFAULT_TEXT_PREDICATES: list[str] = [
    "kgr:title", "kgr:description", "rdfs:label", "schema:name", "schema:description",
    "dct:title", "dbo:abstract", "skos:prefLabel",
]

#: schema.org is published under both schemes; data in https form is read as http.
DEFAULT_REWRITE: dict[str, str] = {"https://schema.org/": "http://schema.org/"}


def data_dir() -> Path:
    """The folder of shipped data (``kg_data``): ``$KGREC_DATA_DIR`` or ``<repo>/kg_data``."""
    env = os.environ.get("KGREC_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "kg_data"


def profiles() -> list[str]:
    """Names of the shipped mapping profiles (``kg_data/mappings/*.toml``)."""
    d = data_dir() / "mappings"
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def _as_list(v) -> list:
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

# --------------------------------------------------------------------------- compiled form
_POSITIVE_RE = re.compile(
    r"^\s*weight\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
        "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class PositiveRule:
    """A parsed ``positive`` expression; ``op is None`` keeps everything."""

    text: str = "all"
    op: str | None = None
    threshold: float = math.nan

    @classmethod
    def parse(cls, text: str, where: str) -> "PositiveRule":
        if not isinstance(text, str):
            raise MappingError(f"{where} must be a string (got {text!r})")
        if text.strip().lower() == "all":
            return cls("all")
        m = _POSITIVE_RE.match(text)
        if not m:
            raise MappingError(f"{where} must be 'all' or 'weight OP number' with OP one of "
                               f"{', '.join(_OPS)} (got {text!r})")
        return cls(f"weight {m.group(1)} {m.group(2)}", m.group(1), float(m.group(2)))

    def __call__(self, weight: float) -> bool:
        """Whether an interaction of this weight is positive (``nan`` fails any comparison)."""
        if self.op is None:
            return True
        return bool(_OPS[self.op](weight, self.threshold)) and not math.isnan(weight)


@dataclass(frozen=True)
class InversePath:
    """``^p`` in a property path: property ``iri`` walked from its object back to its subject."""

    iri: str


@dataclass(frozen=True)
class AlternativePath:
    """``a|b`` in a property path: the values of every alternative, together (SPARQL's union).

    Unlike a list of alternatives in a mapping field (the first one that yields a value wins),
    every branch here contributes.
    """

    paths: tuple[tuple, ...]


#: One compiled property path: a sequence of steps, each an IRI (forward property), an
#: :class:`InversePath` or an :class:`AlternativePath` (whose branches are paths again).
Path_ = tuple


def _inverse(path: Path_) -> Path_:
    """``^path``: the steps reversed, each inverted (``^(a/b)`` is ``^b/^a``)."""
    out = []
    for step in reversed(path):
        if type(step) is str:
            out.append(InversePath(step))
        elif isinstance(step, InversePath):
            out.append(step.iri)
        else:
            out.append(AlternativePath(tuple(_inverse(p) for p in step.paths)))
    return tuple(out)


def format_path(path: Path_, short=lambda iri: f"<{iri}>") -> str:
    """A compiled path written back in the mapping syntax (``short`` writes one IRI)."""
    parts = []
    for step in path:
        if type(step) is str:
            parts.append(short(step))
        elif isinstance(step, InversePath):
            parts.append("^" + short(step.iri))
        else:
            parts.append("(" + "|".join(format_path(p, short) for p in step.paths) + ")")
    return "/".join(parts)


#: Path forms outside the subset kgrec reads, and how they are named in errors.
_UNSUPPORTED_PATH = {"*": "'*' (zero or more)", "+": "'+' (one or more)", "?": "'?' (zero or one)",
                     "!": "'!' (a negated property set)", "{": "'{' (a repetition count)"}
_PATH_STOP = frozenset("/|^()<>*+?!{}")
#: Characters that make a term a property path (outside angle brackets).
_PATH_OPERATORS = frozenset("/|^()*+?!")


class _PathParser:
    """Recursive descent over ``path := seq ('|' seq)*``, ``seq := elt ('/' elt)*``,
    ``elt := '^'? (term | '(' path ')')``: the SPARQL property-path subset without repetition or
    negation. Errors name the mapping key, the rule and the whole term.
    """

    def __init__(self, mapping: "Mapping", text: str, original: str, key: str, where: str):
        self.m, self.s, self.original, self.key, self.where = mapping, text, original, key, where
        self.i, self.n = 0, len(text)

    def err(self, msg: str) -> MappingError:
        return self.m._err(self.key, f"{self.where}{msg} in the property path {self.original!r}")

    def unsupported(self, c: str) -> MappingError:
        return self.err(f"uses {_UNSUPPORTED_PATH[c]}, which kgrec does not read (paths may use "
                        "'/' sequence, '^' inverse, '|' alternative and parentheses)")

    def peek(self) -> str:
        while self.i < self.n and self.s[self.i].isspace():
            self.i += 1
        return self.s[self.i] if self.i < self.n else ""

    def parse(self) -> Path_:
        out = self.alternative()
        c = self.peek()
        if c == ")":
            raise self.err("has an unmatched ')'")
        if c in _UNSUPPORTED_PATH:
            raise self.unsupported(c)
        if c:
            raise self.err(f"must separate steps with '/' or '|' (found {self.s[self.i:]!r})")
        return out

    def alternative(self) -> Path_:
        seqs = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            seqs.append(self.sequence())
        return seqs[0] if len(seqs) == 1 else (AlternativePath(tuple(seqs)),)

    def sequence(self) -> Path_:
        steps = list(self.element())
        while self.peek() == "/":
            self.i += 1
            steps.extend(self.element())
        return tuple(steps)

    def element(self) -> Path_:
        inverse = self.peek() == "^"
        if inverse:
            self.i += 1
        c = self.peek()
        if c in ("", "/", "|", ")", "^"):
            raise self.err("has an empty step")
        if c in _UNSUPPORTED_PATH:
            raise self.unsupported(c)
        if c == "(":
            self.i += 1
            inner = self.alternative()
            if self.peek() != ")":
                raise self.err("has an unclosed '('")
            self.i += 1
        elif c == "<":
            j = self.s.find(">", self.i)
            if j < 0:
                raise self.err("has an unclosed '<'")
            inner = (self.m.expand(self.s[self.i:j + 1], self.key),)
            self.i = j + 1
        else:
            j = self.i
            while j < self.n and self.s[j] not in _PATH_STOP and not self.s[j].isspace():
                j += 1
            if j == self.i:
                raise self.err(f"has an unexpected {c!r}")
            inner = (self.m.expand(self.s[self.i:j], self.key),)
            self.i = j
        c = self.peek()
        if c in _UNSUPPORTED_PATH:
            raise self.unsupported(c)
        return _inverse(inner) if inverse else inner


@dataclass(frozen=True)
class CompiledRule:
    """An :class:`InteractionRule` with every term expanded to an IRI and paths parsed (each
    path a tuple of steps: IRIs, :class:`InversePath` and :class:`AlternativePath`).
    """

    name: str
    predicate: str | None
    inverse: bool
    classes: frozenset[str]
    agent: tuple[Path_, ...]
    object: tuple[Path_, ...]
    time: tuple[Path_, ...]
    weight: tuple[Path_, ...]
    text: tuple[Path_, ...]
    positive: PositiveRule
    scenario: str | None = None
    predicate_path: Path_ = ()  # a direct rule whose predicate is a path (then ``predicate`` is None)

    @property
    def is_direct(self) -> bool:
        return self.predicate is not None or bool(self.predicate_path)


@dataclass(frozen=True)
class CompiledMapping:
    """A :class:`Mapping` with every CURIE expanded: what the extraction step reads."""

    user_classes: frozenset[str]
    infer_users: bool
    item_classes: frozenset[str]
    infer_items: bool
    same_as: frozenset[str]
    rules: tuple[CompiledRule, ...]
    edges: frozenset[str] | None  # None = "*"
    exclude: frozenset[str]
    max_hops: int | None
    incoming: bool
    text_predicates: tuple[str, ...]
    languages: tuple[str, ...]
    numeric: tuple[str, ...]
    rewrite: tuple[tuple[str, str], ...]
    prefixes: tuple[tuple[str, str], ...]
    domain_predicate: str | None = None  # [scenarios]: None = no item domains
    domains: tuple[tuple[str, frozenset[str]], ...] = ()
    domain_rest: str = "other"
    inverse_edges: frozenset[str] = frozenset()  # ``^p`` in kg.edges: p followed object -> subject

    def shorten(self, iri: str) -> str:
        """``iri`` as a CURIE when a prefix matches, else ``<iri>`` (for messages)."""
        best = None
        for p, ns in self.prefixes:
            if iri.startswith(ns) and (best is None or len(ns) > len(best[1])):
                best = (p, ns)
        return f"{best[0]}:{iri[len(best[1]):]}" if best else f"<{iri}>"


# --------------------------------------------------------------------------- the mapping
_SECTIONS = {"users": UserRule, "items": ItemRule, "kg": KGRule, "text": TextRule, "features": FeatureRule,
             "scenarios": ScenarioRule}
_TOP_KEYS = ("name", "description", "extends", "prefixes", "rewrite", "users", "items",
             "interactions", "kg", "text", "features", "scenarios")
_RULE_KEYS = ("name", "predicate", "inverse", "class", "agent", "object", "time", "weight", "text", "positive",
              "scenario")


@dataclass
class Mapping:
    """The full mapping from RDF to kgrec's graph; ``Mapping()`` is the ``kgrec`` profile.

    Args:
        name: a name for messages (default ``"kgrec"``).
        description: free text.
        prefixes: CURIE prefixes, added to / overriding :data:`DEFAULT_PREFIXES`.
        rewrite: IRI namespace rewrites applied to every IRI read (``{"https://schema.org/":
            "http://schema.org/"}`` by default).
        users, items, kg, text, features, scenarios: see :class:`UserRule`, :class:`ItemRule`,
            :class:`KGRule`, :class:`TextRule`, :class:`FeatureRule`, :class:`ScenarioRule`.
        interactions: :class:`InteractionRule` list (default: kgrec events ``kgr:user`` /
            ``kgr:item`` / ``kgr:timestamp`` / ``kgr:rating`` / ``kgr:text``, and the direct
            ``kgr:interactedWith``).
        source: where the mapping came from, for error messages (not compared).

    Raises:
        MappingError: a term uses an unknown prefix, a value has the wrong type, a rule is
            incomplete, or ``positive`` does not parse; the message names the source and key.
    """

    name: str = "kgrec"
    description: str = ("The kgrec vocabulary: kgr:User, kgr:Item, reified kgr:Interaction events "
                        "and kgr:interactedWith.")
    prefixes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PREFIXES))
    rewrite: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REWRITE))
    users: UserRule = field(default_factory=UserRule)
    items: ItemRule = field(default_factory=ItemRule)
    interactions: list[InteractionRule] = field(default_factory=lambda: [
        InteractionRule(name="event", agent=["kgr:user"], object=["kgr:item"], time=["kgr:timestamp"],
                        weight=["kgr:rating"], text=["kgr:text"]),
        InteractionRule(name="interactedWith", predicate="kgr:interactedWith"),
    ])
    kg: KGRule = field(default_factory=KGRule)
    text: TextRule = field(default_factory=TextRule)
    features: FeatureRule = field(default_factory=FeatureRule)
    scenarios: ScenarioRule = field(default_factory=ScenarioRule)
    source: str = field(default="mapping", compare=False, repr=False)

    def __post_init__(self) -> None:
        self.prefixes = {**DEFAULT_PREFIXES, **dict(self.prefixes)}
        self.compile()  # validate now, so errors surface where the mapping is written

    # ------------------------------------------------------------------ terms
    def _err(self, key: str, msg: str) -> MappingError:
        return MappingError(f"{self.source}: '{key}' {msg}")

    def expand(self, term: str, key: str = "term") -> str:
        """The absolute IRI of a CURIE / ``<IRI>`` / bare IRI; ``key`` names it in errors."""
        if not isinstance(term, str) or not term.strip():
            raise self._err(key, f"must be a CURIE like 'kgr:user' or an IRI like '<http://...>' (got {term!r})")
        t = term.strip()
        if t.startswith("<"):
            if not t.endswith(">") or len(t) < 3 or any(c in t[1:-1] for c in "<> "):
                raise self._err(key, f"must be an IRI in angle brackets like '<http://...>' (got {term!r})")
            return t[1:-1]
        if "://" in t or t.startswith("urn:"):
            return t
        if ":" not in t:
            raise self._err(key, f"must be a CURIE like 'kgr:user' or an IRI like '<http://...>' (got {term!r})")
        prefix, local = t.split(":", 1)
        if prefix not in self.prefixes:
            raise self._err(key, f"uses unknown prefix {prefix!r} in {term!r} (known: "
                                 f"{', '.join(sorted(self.prefixes))}); declare it under [prefixes] "
                                 "or write the full IRI as '<...>'")
        return self.prefixes[prefix] + local

    def expand_predicate(self, term: str, key: str = "term", rule: str | None = None) -> str:
        """:meth:`expand` of a field that names one property (a feature predicate,
        ``scenarios.item_predicate``): a property path there raises instead of being read as one
        odd IRI.
        """
        if isinstance(term, str):
            t = term.strip()
            outside = re.sub(r"<[^<>]*>", "", t)
            bare = "<" not in t and ("://" in t or t.startswith("urn:"))
            ops = [c for c in outside if c in ("|^" if bare else _PATH_OPERATORS)]
            if ops:
                where = f"({rule!r}) " if rule else ""
                raise self._err(key, f"{where}takes one property, not the property path {term!r} (operator "
                                     f"{ops[0]!r}): paths ('a/b', '^a', 'a|b') are read in the 'agent', 'object', "
                                     "'time', 'weight' and 'text' of an event rule and a direct rule's 'predicate'")
        return self.expand(term, key)

    def expand_predicates(self, term: str, key: str, inverse: bool = False) -> list[tuple[str, bool]]:
        """The properties of a list field's entry, as ``(IRI, inverse)`` pairs: one property, or an
        alternative of properties (``"a|b"``: both), each ``^p`` where ``inverse`` allows it.

        Raises:
            MappingError: a sequence (``a/b``), a ``^`` where it has no meaning, or a form outside
                the path subset; the message names the key and the term.
        """
        if not isinstance(term, str) or not any(c in _PATH_OPERATORS for c in re.sub(r"<[^<>]*>", "", term)):
            return [(self.expand_predicate(term, key), False)]
        t = term.strip()
        if "<" not in t and ("://" in t or t.startswith("urn:")):
            return [(self.expand_predicate(term, key), False)]
        path = self.expand_path(term, key)
        branches = path[0].paths if len(path) == 1 and isinstance(path[0], AlternativePath) else (path,)
        forms = "'p', 'a|b', '^p'" if inverse else "'p', 'a|b'"
        out = []
        for b in branches:
            if len(b) != 1 or isinstance(b[0], AlternativePath):
                raise self._err(key, f"takes properties ({forms}), not the sequence "
                                     f"path {term!r}: paths ('a/b') are read in the 'agent', 'object', 'time', "
                                     "'weight' and 'text' of an event rule and a direct rule's 'predicate'")
            if isinstance(b[0], InversePath):
                if not inverse:
                    raise self._err(key, f"takes properties ('p', 'a|b'), not the inverse {term!r}")
                out.append((b[0].iri, True))
            else:
                out.append((b[0], False))
        return out

    def expand_path(self, path: str, key: str = "path", rule: str | None = None) -> Path_:
        """A property path (the SPARQL subset ``a/b``, ``^a``, ``a|b``, ``( )``) as a tuple of steps.

        Each step is an IRI (a forward property), an :class:`InversePath` (``^p``) or an
        :class:`AlternativePath` (``a|b``: the values of every alternative together). ``^`` of a
        group is pushed down to its properties (``^(a/b)`` is ``^b/^a``), so :class:`InversePath`
        always holds one IRI. A bare absolute IRI (no angle brackets) is one property.

        Args:
            path: the path as written in the mapping.
            key: the mapping key, for error messages.
            rule: the interaction rule's name, for error messages.

        Raises:
            MappingError: an empty step, an unclosed ``<`` or ``(``, or a form outside the subset
                (``*``, ``+``, ``?``, ``!``...); the message names the key, the rule and the term.
        """
        where = f"({rule!r}) " if rule else ""
        if not isinstance(path, str) or not path.strip():
            raise self._err(key, f"{where}must be a property path like 'schema:reviewRating/schema:ratingValue' "
                                 f"(got {path!r})")
        p = path.strip()
        if "<" not in p and "://" in p:  # a bare absolute IRI
            bad = [c for c in "|^" if c in p]
            if bad:
                raise self._err(key, f"{where}mixes a bare IRI with the path operator {bad[0]!r} in {path!r}: "
                                     "write full IRIs in angle brackets inside a path ('<http://...>')")
            return (self.expand(p, key),)
        return _PathParser(self, p, path, key, where).parse()

    # ---------------------------------------------------------------- compile
    def compile(self) -> CompiledMapping:
        """Validate and expand every term; raises :class:`MappingError` naming the key."""
        def strs(v, key) -> list[str]:
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise self._err(key, f"must be a list of strings (got {v!r})")
            return v

        def boolean(v, key) -> bool:
            if not isinstance(v, bool):
                raise self._err(key, f"must be true or false (got {v!r})")
            return v

        for k, v in self.prefixes.items():
            ok_name = isinstance(k, str) and re.fullmatch(r"[A-Za-z_][\w.-]*|", k)
            ok_iri = isinstance(v, str) and ("://" in v or v.startswith("urn:"))
            if not (ok_name and ok_iri):
                raise self._err(f"prefixes.{k}", f"must map a prefix name to an absolute IRI (got {v!r})")
        for k, v in self.rewrite.items():
            if not isinstance(k, str) or not isinstance(v, str) or not k:
                raise self._err(f"rewrite.{k}", f"must map an IRI prefix to another IRI prefix (got {v!r})")

        u, it, kg, tx, ft = self.users, self.items, self.kg, self.text, self.features
        user_classes = frozenset(self.expand(c, "users.classes") for c in strs(u.classes, "users.classes"))
        item_classes = frozenset(self.expand(c, "items.classes") for c in strs(it.classes, "items.classes"))
        same_as = frozenset(p for c in strs(it.same_as, "items.same_as")
                            for p, _ in self.expand_predicates(c, "items.same_as"))
        boolean(u.infer, "users.infer")
        boolean(it.infer, "items.infer")

        if not isinstance(self.interactions, list) or not self.interactions:
            raise self._err("interactions", "must list at least one interaction rule")
        rules, names = [], set()
        for i, r in enumerate(self.interactions):
            where = f"interactions[{i}]"
            if not isinstance(r, InteractionRule):
                raise self._err(where, f"must be an InteractionRule (got {type(r).__name__})")
            if not isinstance(r.name, str) or not r.name:
                raise self._err(f"{where}.name", f"must be a non-empty string (got {r.name!r})")
            if r.name in names:
                raise self._err(f"{where}.name", f"must be unique (got {r.name!r} twice)")
            names.add(r.name)
            boolean(r.inverse, f"{where}.inverse")
            paths = {}
            for k in ("agent", "object", "time", "weight", "text"):
                paths[k] = tuple(self.expand_path(p, f"{where}.{k}", r.name)
                                 for p in strs(getattr(r, k), f"{where}.{k}"))
            classes = frozenset(self.expand(c, f"{where}.class") for c in strs(r.cls, f"{where}.class"))
            pred_path: Path_ = ()
            if r.predicate is not None:
                # a path (``^ex:ratedBy/ex:ratedItem``) links user and item through other nodes;
                # a plain property keeps the direct look-up
                pred_path = self.expand_path(r.predicate, f"{where}.predicate", r.name)
                pred = pred_path[0] if len(pred_path) == 1 and type(pred_path[0]) is str else None
                if pred is not None:
                    pred_path = ()
                extra = [k for k in ("agent", "object", "time", "weight", "text") if paths[k]]
                extra += ["class"] if classes else []
                if extra:
                    raise self._err(where, f"({r.name!r}) is a direct rule ('predicate'), so it takes no "
                                           f"{', '.join(repr(e) for e in extra)}; use an event rule instead")
            else:
                pred = None
                if r.inverse:
                    raise self._err(f"{where}.inverse", f"({r.name!r}) only applies to a direct rule with 'predicate'")
                missing = [k for k in ("agent", "object") if not paths[k]]
                if missing:
                    raise self._err(where, f"({r.name!r}) needs 'predicate' (direct) or both 'agent' and "
                                           f"'object' (event); missing {', '.join(repr(m) for m in missing)}")
            positive = PositiveRule.parse(r.positive, f"{self.source}: '{where}.positive'")
            if positive.op is not None and not paths["weight"]:
                raise self._err(f"{where}.positive",
                                f"({r.name!r}) compares the weight, but the rule has no 'weight' path")
            if r.scenario is not None:
                self._scenario_name(r.scenario, f"{where}.scenario")
            rules.append(CompiledRule(r.name, pred, r.inverse, classes, paths["agent"], paths["object"],
                                      paths["time"], paths["weight"], paths["text"], positive, r.scenario,
                                      pred_path))
        domain_pred, domains, rest = self._compile_domains(strs)
        if domain_pred is not None:
            tagged = [i for i, r in enumerate(self.interactions) if r.scenario is not None]
            if tagged:
                raise self._err(f"interactions[{tagged[0]}].scenario", "cannot be combined with "
                                "'scenarios.domains' (an interaction has one scenario): use one or the other")

        inverse_edges: frozenset[str] = frozenset()
        if kg.edges == "*":
            edges = None
        else:
            listed = [x for e in strs(kg.edges, "kg.edges") for x in self.expand_predicates(e, "kg.edges", True)]
            edges = frozenset(p for p, inv in listed if not inv)
            inverse_edges = frozenset(p for p, inv in listed if inv)
        exclude = frozenset(p for e in strs(kg.exclude, "kg.exclude")
                            for p, _ in self.expand_predicates(e, "kg.exclude"))
        hops = kg.max_hops
        if hops is not None and (isinstance(hops, bool) or not isinstance(hops, int) or hops < 1):
            raise self._err("kg.max_hops", f"must be a positive integer or absent (got {kg.max_hops!r})")
        boolean(kg.incoming, "kg.incoming")
        text_preds = tuple(dict.fromkeys(
            x for p in strs(tx.predicates, "text.predicates") for x, _ in self.expand_predicates(p, "text.predicates")))
        langs = strs(tx.languages, "text.languages")
        for lang in langs:
            if lang not in ("", "*") and not re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", lang):
                raise self._err("text.languages",
                                f"must hold language tags like 'en', '' (no tag) or '*' (got {lang!r})")
        numeric = tuple(dict.fromkeys(self.expand_predicate(p, "features.numeric")
                                      for p in strs(ft.numeric, "features.numeric")))
        if not isinstance(self.name, str) or not isinstance(self.description, str):
            raise self._err("name", "and 'description' must be strings")
        return CompiledMapping(
            user_classes=user_classes, infer_users=u.infer, item_classes=item_classes, infer_items=it.infer,
            same_as=same_as, rules=tuple(rules), edges=edges, exclude=exclude, max_hops=kg.max_hops,
            incoming=kg.incoming, text_predicates=text_preds, languages=tuple(x.lower() for x in langs),
            numeric=numeric, rewrite=tuple(sorted(self.rewrite.items(), key=lambda kv: -len(kv[0]))),
            prefixes=tuple(sorted(self.prefixes.items())),
            domain_predicate=domain_pred, domains=domains, domain_rest=rest, inverse_edges=inverse_edges,
        )

    def _scenario_name(self, name, key: str) -> str:
        if not isinstance(name, str) or not SCENARIO_NAME_RE.fullmatch(name):
            raise self._err(key, "must be a scenario name: a letter, then letters, digits, '_', '.' or '-' "
                                 f"(got {name!r})")
        return name

    def _compile_domains(self, strs) -> tuple[str | None, tuple[tuple[str, frozenset[str]], ...], str]:
        """The ``[scenarios]`` section as ``(predicate IRI or None, ((name, attribute IRIs), ...), rest)``."""
        sc = self.scenarios
        if not isinstance(sc, ScenarioRule):
            raise self._err("scenarios", f"must be a ScenarioRule (got {type(sc).__name__})")
        rest = self._scenario_name(sc.rest, "scenarios.rest")
        if not isinstance(sc.domains, dict):
            raise self._err("scenarios.domains", f"must be a table of name = [attribute IRIs] (got {sc.domains!r})")
        if sc.item_predicate is None:
            if sc.domains:
                raise self._err("scenarios.item_predicate", "is required with 'scenarios.domains' (the predicate "
                                                            "from an item to its domain attribute, e.g. 'kgr:genre')")
            return None, (), rest
        pred = self.expand_predicate(sc.item_predicate, "scenarios.item_predicate")
        if not sc.domains:
            raise self._err("scenarios.domains", "must name at least one domain, e.g. "
                                                 "{comedy = ['<https://.../genre/Comedy>']}")
        out = []
        for name, attrs in sc.domains.items():
            key = f"scenarios.domains.{name}"
            self._scenario_name(name, key)
            if name == rest:
                raise self._err(key, f"uses the name of 'scenarios.rest' ({rest!r}); rename one of them")
            attrs = strs([attrs] if isinstance(attrs, str) else attrs, key)
            if not attrs:
                raise self._err(key, "must list at least one attribute IRI")
            out.append((name, frozenset(self.expand(a, key) for a in attrs)))
        return pred, tuple(out), rest

    # -------------------------------------------------------------- dict form
    def to_dict(self) -> dict[str, Any]:
        """The TOML/YAML form (``Mapping.from_dict(m.to_dict()) == m``)."""
        def rule(r: InteractionRule) -> dict:
            d: dict[str, Any] = {"name": r.name}
            if r.predicate is not None:
                d["predicate"] = r.predicate
                if r.inverse:
                    d["inverse"] = True
            for k, key in (("cls", "class"), ("agent", "agent"), ("object", "object"), ("time", "time"),
                           ("weight", "weight"), ("text", "text")):
                v = getattr(r, k)
                if v:
                    d[key] = v[0] if len(v) == 1 else list(v)
            if r.positive != "all":
                d["positive"] = r.positive
            if r.scenario is not None:
                d["scenario"] = r.scenario
            return d

        kg = {"edges": self.kg.edges if self.kg.edges == "*" else list(self.kg.edges),
              "exclude": list(self.kg.exclude), "incoming": self.kg.incoming}
        if self.kg.max_hops is not None:
            kg["max_hops"] = self.kg.max_hops
        return {
            "name": self.name, "description": self.description,
            "prefixes": dict(self.prefixes), "rewrite": dict(self.rewrite),
            "users": {"classes": list(self.users.classes), "infer": self.users.infer},
            "items": {"classes": list(self.items.classes), "infer": self.items.infer,
                      "same_as": list(self.items.same_as)},
            "interactions": [rule(r) for r in self.interactions],
            "kg": kg,
            "text": {"predicates": list(self.text.predicates), "languages": list(self.text.languages)},
            "features": {"numeric": list(self.features.numeric)},
            # written only when used, so single-scenario mappings keep their former dict form
            **({"scenarios": {"item_predicate": self.scenarios.item_predicate,
                              "domains": {k: list(v) if isinstance(v, list) else v
                                          for k, v in self.scenarios.domains.items()},
                              "rest": self.scenarios.rest}}
               if self.scenarios != ScenarioRule() else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "mapping") -> "Mapping":
        """A mapping from its TOML/YAML form; missing sections and keys keep the defaults.

        ``extends = "schema-org"`` (a profile name or a file path) starts from that mapping
        instead of the defaults. Unknown keys and wrong types raise :class:`MappingError`
        naming ``source`` and the key.
        """
        def err(key: str, msg: str) -> MappingError:
            return MappingError(f"{source}: '{key}' {msg}")

        if not isinstance(d, dict):
            raise MappingError(f"{source}: a mapping must be a table/dict at top level (got {type(d).__name__})")
        unknown = [k for k in d if k not in _TOP_KEYS]
        if unknown:
            raise err(unknown[0], f"is not a mapping key (expected one of: {', '.join(_TOP_KEYS)})")
        if "extends" in d:
            base_ref = d["extends"]
            if not isinstance(base_ref, str):
                raise err("extends", f"must be a profile name ({', '.join(profiles())}) or a file path "
                                     f"(got {base_ref!r})")
            if base_ref in profiles():
                base = cls.profile(base_ref)
            else:
                p = Path(base_ref)
                if not p.is_absolute() and source not in ("mapping", "<dict>"):
                    p = Path(source).parent / p
                if not p.is_file():
                    raise err("extends", f"must be a profile name ({', '.join(profiles())}) or an existing "
                                         f"mapping file (got {base_ref!r})")
                base = cls.from_file(p)
        else:
            base = cls()
        out = base.to_dict()

        for k in ("name", "description"):
            if k in d:
                if not isinstance(d[k], str):
                    raise err(k, f"must be a string (got {d[k]!r})")
                out[k] = d[k]
        for k in ("prefixes", "rewrite"):
            if k in d:
                if not isinstance(d[k], dict):
                    raise err(k, f"must be a table of name = IRI (got {d[k]!r})")
                out[k] = {**out[k], **d[k]}
        for sec, klass in _SECTIONS.items():
            if sec not in d:
                continue
            out.setdefault(sec, {})
            if not isinstance(d[sec], dict):
                raise err(sec, f"must be a table (got {d[sec]!r})")
            allowed = [f.name for f in fields(klass)]
            for k, v in d[sec].items():
                if k not in allowed:
                    raise err(f"{sec}.{k}", f"is not a key of [{sec}] (expected one of: {', '.join(allowed)})")
                out[sec][k] = v
        if "interactions" in d:
            if not isinstance(d["interactions"], list) or not all(isinstance(r, dict) for r in d["interactions"]):
                raise err("interactions", "must be a list of tables ([[interactions]] in TOML)")
            out["interactions"] = d["interactions"]

        rules = []
        for i, r in enumerate(out["interactions"]):
            for k in r:
                if k not in _RULE_KEYS:
                    raise err(f"interactions[{i}].{k}",
                              f"is not a key of [[interactions]] (expected one of: {', '.join(_RULE_KEYS)})")
            if "name" not in r:
                raise err(f"interactions[{i}].name", "is required (a short name used in warnings)")
            kw = {("cls" if k == "class" else k): v for k, v in r.items()}
            for k in ("cls", "agent", "object", "time", "weight", "text"):
                if k in kw and not isinstance(kw[k], (str, list)):
                    key = "class" if k == "cls" else k
                    raise err(f"interactions[{i}].{key}", f"must be a string or a list of strings (got {kw[k]!r})")
            rules.append(InteractionRule(**kw))
        for sec in ("users", "items", "kg", "text", "features"):
            for k in ("classes", "same_as", "exclude", "predicates", "languages", "numeric"):
                v = out[sec].get(k)
                if v is not None and not isinstance(v, (list, str)):
                    raise err(f"{sec}.{k}", f"must be a list of strings (got {v!r})")
        return cls(
            name=out["name"], description=out["description"], prefixes=out["prefixes"], rewrite=out["rewrite"],
            users=UserRule(**out["users"]), items=ItemRule(**out["items"]), interactions=rules,
            kg=KGRule(**out["kg"]), text=TextRule(**out["text"]), features=FeatureRule(**out["features"]),
            scenarios=ScenarioRule(**out.get("scenarios", {})), source=source,
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Mapping":
        """Read a ``.toml`` (tomllib) or ``.yaml`` / ``.yml`` (``yaml.safe_load``) mapping file."""
        p = Path(path)
        if not p.is_file():
            raise MappingError(f"mapping file '{p}' does not exist")
        suffix = p.suffix.lower()
        text = p.read_text(encoding="utf-8")
        if suffix == ".toml":
            if tomllib is None:  # pragma: no cover
                raise MappingError(f"reading '{p}' needs Python >= 3.11 or the 'tomli' package; "
                                   "or write the mapping as YAML")
            try:
                d = tomllib.loads(text)
            except tomllib.TOMLDecodeError as e:
                m = re.search(r"at line (\d+)", str(e))
                where = f"{p}:{m.group(1)}" if m else str(p)
                raise MappingError(f"{where}: invalid TOML: {e}") from None
        elif suffix in (".yaml", ".yml"):
            import yaml

            try:
                d = yaml.safe_load(text)
            except yaml.YAMLError as e:
                mark = getattr(e, "problem_mark", None)
                where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
                raise MappingError(f"{where}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
            if d is None:
                d = {}
        else:
            raise MappingError(f"mapping file '{p}' must end in .toml, .yaml or .yml (got {suffix or 'no suffix'!r})")
        return cls.from_dict(d, source=str(p))

    @classmethod
    def profile(cls, name: str) -> "Mapping":
        """A shipped profile: ``"kgrec"`` (the kgrec vocabulary) or ``"schema-org"``."""
        available = profiles()
        if name not in available:
            raise MappingError(f"'profile' must be one of {', '.join(available) or '(none found)'} "
                               f"(got {name!r}; profiles are read from '{data_dir() / 'mappings'}')")
        return cls.from_file(data_dir() / "mappings" / f"{name}.toml")

    @classmethod
    def coerce(cls, mapping: "Mapping | dict | str | os.PathLike | None") -> "Mapping":
        """``None`` -> the kgrec profile; a profile name or file path; a dict; a Mapping."""
        if mapping is None:
            return cls.profile("kgrec") if "kgrec" in profiles() else cls()
        if isinstance(mapping, Mapping):
            return mapping
        if isinstance(mapping, dict):
            return cls.from_dict(mapping)
        if isinstance(mapping, str) and mapping in profiles():
            return cls.profile(mapping)
        if isinstance(mapping, (str, os.PathLike)):
            p = Path(mapping)
            if p.suffix.lower() in (".toml", ".yaml", ".yml") or p.exists():
                return cls.from_file(p)
            raise MappingError(f"'mapping' must be a profile name ({', '.join(profiles())}), a mapping file "
                               f"(.toml/.yaml), a dict or a Mapping (got {mapping!r})")
        raise MappingError(f"'mapping' must be a profile name, a file path, a dict or a Mapping "
                           f"(got {type(mapping).__name__})")
