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

This module holds :class:`Mapping` (terms, validation, the dict and file forms) and re-exports the
pieces it is built from, each in a module of its own: the section dataclasses
(:mod:`kgrec.data.mapping_rules`), property paths (:mod:`kgrec.data.mapping_paths`), the compiled
form the extraction reads (:mod:`kgrec.data.mapping_compiled`) and the checks of the dict form
(:mod:`kgrec.data.mapping_dict`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgrec.data.mapping_compiled import CompiledMapping, CompiledRule, PositiveRule
from kgrec.data.mapping_dict import (
    check_string_lists,
    check_top_keys,
    interaction_rules,
    merge_over,
    read_mapping_file,
    rule_to_dict,
)
from kgrec.data.mapping_paths import PATH_OPERATORS, AlternativePath, InversePath, Path_, PathParser, format_path
from kgrec.data.mapping_rules import (
    DEFAULT_TEXT_PREDICATES,
    SCENARIO_NAME_RE,
    FeatureRule,
    InteractionRule,
    ItemRule,
    KGRule,
    ScenarioRule,
    TextRule,
    UserRule,
)
from kgrec.errors import MappingError

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


# --------------------------------------------------------------------------- the mapping
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
            ops = [c for c in outside if c in ("|^" if bare else PATH_OPERATORS)]
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
        if not isinstance(term, str) or not any(c in PATH_OPERATORS for c in re.sub(r"<[^<>]*>", "", term)):
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
        return PathParser(self.expand, self._err, p, path, key, where).parse()

    # ---------------------------------------------------------------- compile
    def compile(self) -> CompiledMapping:
        """Validate and expand every term; raises :class:`MappingError` naming the key."""
        self._check_namespaces()
        u, it, kg, ft = self.users, self.items, self.kg, self.features
        user_classes = frozenset(self.expand(c, "users.classes") for c in self._strs(u.classes, "users.classes"))
        item_classes = frozenset(self.expand(c, "items.classes") for c in self._strs(it.classes, "items.classes"))
        same_as = frozenset(p for c in self._strs(it.same_as, "items.same_as")
                            for p, _ in self.expand_predicates(c, "items.same_as"))
        self._boolean(u.infer, "users.infer")
        self._boolean(it.infer, "items.infer")
        rules = self._compile_rules()
        domain_pred, domains, rest = self._compile_domains()
        if domain_pred is not None:
            tagged = [i for i, r in enumerate(self.interactions) if r.scenario is not None]
            if tagged:
                raise self._err(f"interactions[{tagged[0]}].scenario", "cannot be combined with "
                                "'scenarios.domains' (an interaction has one scenario): use one or the other")
        edges, inverse_edges, exclude = self._compile_edges()
        text_preds, langs = self._compile_text()
        numeric = tuple(dict.fromkeys(self.expand_predicate(p, "features.numeric")
                                      for p in self._strs(ft.numeric, "features.numeric")))
        if not isinstance(self.name, str) or not isinstance(self.description, str):
            raise self._err("name", "and 'description' must be strings")
        return CompiledMapping(
            user_classes=user_classes, infer_users=u.infer, item_classes=item_classes, infer_items=it.infer,
            same_as=same_as, rules=rules, edges=edges, exclude=exclude, max_hops=kg.max_hops,
            incoming=kg.incoming, text_predicates=text_preds, languages=tuple(x.lower() for x in langs),
            numeric=numeric, rewrite=tuple(sorted(self.rewrite.items(), key=lambda kv: -len(kv[0]))),
            prefixes=tuple(sorted(self.prefixes.items())),
            domain_predicate=domain_pred, domains=domains, domain_rest=rest, inverse_edges=inverse_edges,
        )

    def _strs(self, v, key: str) -> list[str]:
        """``v`` itself when it is a list of strings; else the error naming ``key``."""
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self._err(key, f"must be a list of strings (got {v!r})")
        return v

    def _boolean(self, v, key: str) -> bool:
        """``v`` itself when it is a bool; else the error naming ``key``."""
        if not isinstance(v, bool):
            raise self._err(key, f"must be true or false (got {v!r})")
        return v

    def _check_namespaces(self) -> None:
        """Check ``[prefixes]`` (name -> absolute IRI) and ``[rewrite]`` (IRI prefix -> IRI prefix)."""
        for k, v in self.prefixes.items():
            ok_name = isinstance(k, str) and re.fullmatch(r"[A-Za-z_][\w.-]*|", k)
            ok_iri = isinstance(v, str) and ("://" in v or v.startswith("urn:"))
            if not (ok_name and ok_iri):
                raise self._err(f"prefixes.{k}", f"must map a prefix name to an absolute IRI (got {v!r})")
        for k, v in self.rewrite.items():
            if not isinstance(k, str) or not isinstance(v, str) or not k:
                raise self._err(f"rewrite.{k}", f"must map an IRI prefix to another IRI prefix (got {v!r})")

    def _compile_rules(self) -> tuple[CompiledRule, ...]:
        """Every interaction rule compiled, in order; names must be unique."""
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
            rules.append(self._compile_rule(r, where))
        return tuple(rules)

    def _compile_rule(self, r: InteractionRule, where: str) -> CompiledRule:
        """One interaction rule (``where``: ``interactions[i]``) with its terms expanded and paths parsed."""
        self._boolean(r.inverse, f"{where}.inverse")
        paths = {}
        for k in ("agent", "object", "time", "weight", "text"):
            paths[k] = tuple(self.expand_path(p, f"{where}.{k}", r.name)
                             for p in self._strs(getattr(r, k), f"{where}.{k}"))
        classes = frozenset(self.expand(c, f"{where}.class") for c in self._strs(r.cls, f"{where}.class"))
        pred, pred_path = self._rule_predicate(r, where, paths, classes)
        positive = PositiveRule.parse(r.positive, f"{self.source}: '{where}.positive'")
        if positive.op is not None and not paths["weight"]:
            raise self._err(f"{where}.positive",
                            f"({r.name!r}) compares the weight, but the rule has no 'weight' path")
        if r.scenario is not None:
            self._scenario_name(r.scenario, f"{where}.scenario")
        return CompiledRule(r.name, pred, r.inverse, classes, paths["agent"], paths["object"],
                            paths["time"], paths["weight"], paths["text"], positive, r.scenario, pred_path)

    def _rule_predicate(self, r: InteractionRule, where: str, paths: dict[str, tuple[Path_, ...]],
                        classes: frozenset[str]) -> tuple[str | None, Path_]:
        """A rule's ``(predicate IRI, predicate path)``: a direct rule has one of them and no event
        parts; an event rule has neither, no ``inverse``, and both ``agent`` and ``object``.
        """
        if r.predicate is None:
            if r.inverse:
                raise self._err(f"{where}.inverse", f"({r.name!r}) only applies to a direct rule with 'predicate'")
            missing = [k for k in ("agent", "object") if not paths[k]]
            if missing:
                raise self._err(where, f"({r.name!r}) needs 'predicate' (direct) or both 'agent' and "
                                       f"'object' (event); missing {', '.join(repr(m) for m in missing)}")
            return None, ()
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
        return pred, pred_path

    def _compile_edges(self) -> tuple[frozenset[str] | None, frozenset[str], frozenset[str]]:
        """The ``[kg]`` section's ``(edges or None for "*", inverse edges, excluded)``; checks the rest."""
        kg = self.kg
        inverse_edges: frozenset[str] = frozenset()
        if kg.edges == "*":
            edges = None
        else:
            listed = [x for e in self._strs(kg.edges, "kg.edges") for x in self.expand_predicates(e, "kg.edges", True)]
            edges = frozenset(p for p, inv in listed if not inv)
            inverse_edges = frozenset(p for p, inv in listed if inv)
        exclude = frozenset(p for e in self._strs(kg.exclude, "kg.exclude")
                            for p, _ in self.expand_predicates(e, "kg.exclude"))
        hops = kg.max_hops
        if hops is not None and (isinstance(hops, bool) or not isinstance(hops, int) or hops < 1):
            raise self._err("kg.max_hops", f"must be a positive integer or absent (got {kg.max_hops!r})")
        self._boolean(kg.incoming, "kg.incoming")
        return edges, inverse_edges, exclude

    def _compile_text(self) -> tuple[tuple[str, ...], list[str]]:
        """The ``[text]`` section's ``(predicate IRIs, language tags as written)``."""
        tx = self.text
        text_preds = tuple(dict.fromkeys(
            x for p in self._strs(tx.predicates, "text.predicates")
            for x, _ in self.expand_predicates(p, "text.predicates")))
        langs = self._strs(tx.languages, "text.languages")
        for lang in langs:
            if lang not in ("", "*") and not re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", lang):
                raise self._err("text.languages",
                                f"must hold language tags like 'en', '' (no tag) or '*' (got {lang!r})")
        return text_preds, langs

    def _scenario_name(self, name, key: str) -> str:
        """``name`` itself when it is a valid scenario name; else the error naming ``key``."""
        if not isinstance(name, str) or not SCENARIO_NAME_RE.fullmatch(name):
            raise self._err(key, "must be a scenario name: a letter, then letters, digits, '_', '.' or '-' "
                                 f"(got {name!r})")
        return name

    def _compile_domains(self) -> tuple[str | None, tuple[tuple[str, frozenset[str]], ...], str]:
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
            attrs = self._strs([attrs] if isinstance(attrs, str) else attrs, key)
            if not attrs:
                raise self._err(key, "must list at least one attribute IRI")
            out.append((name, frozenset(self.expand(a, key) for a in attrs)))
        return pred, tuple(out), rest

    # -------------------------------------------------------------- dict form
    def to_dict(self) -> dict[str, Any]:
        """The TOML/YAML form (``Mapping.from_dict(m.to_dict()) == m``)."""
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
            "interactions": [rule_to_dict(r) for r in self.interactions],
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
        if not isinstance(d, dict):
            raise MappingError(f"{source}: a mapping must be a table/dict at top level (got {type(d).__name__})")
        check_top_keys(d, source)
        out = cls._base(d, source).to_dict()
        merge_over(out, d, source)
        rules = interaction_rules(out["interactions"], source)
        check_string_lists(out, source)
        return cls(
            name=out["name"], description=out["description"], prefixes=out["prefixes"], rewrite=out["rewrite"],
            users=UserRule(**out["users"]), items=ItemRule(**out["items"]), interactions=rules,
            kg=KGRule(**out["kg"]), text=TextRule(**out["text"]), features=FeatureRule(**out["features"]),
            scenarios=ScenarioRule(**out.get("scenarios", {})), source=source,
        )

    @classmethod
    def _base(cls, d: dict[str, Any], source: str) -> "Mapping":
        """The mapping that ``d`` is laid over: the one its ``extends`` names, else the defaults."""
        if "extends" not in d:
            return cls()
        base_ref = d["extends"]
        if not isinstance(base_ref, str):
            raise MappingError(f"{source}: 'extends' must be a profile name ({', '.join(profiles())}) or a file path "
                               f"(got {base_ref!r})")
        if base_ref in profiles():
            return cls.profile(base_ref)
        p = Path(base_ref)
        if not p.is_absolute() and source not in ("mapping", "<dict>"):
            p = Path(source).parent / p
        if not p.is_file():
            raise MappingError(f"{source}: 'extends' must be a profile name ({', '.join(profiles())}) or an "
                               f"existing mapping file (got {base_ref!r})")
        return cls.from_file(p)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Mapping":
        """Read a ``.toml`` (tomllib) or ``.yaml`` / ``.yml`` (``yaml.safe_load``) mapping file."""
        p = Path(path)
        return cls.from_dict(read_mapping_file(p), source=str(p))

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
