"""The dict form of a mapping (what a TOML or YAML mapping file holds): reading, checking, merging.

:meth:`Mapping.from_dict <kgrec.data.mapping.Mapping.from_dict>` starts from a base mapping's dict
(the defaults, or the mapping named by ``extends``) and lays the given dict over it section by
section; the functions here check the shape of that dict (known keys, tables where tables belong,
lists of strings) and build the interaction rules. Values are checked further, with every term
expanded, when the resulting :class:`~kgrec.data.mapping.Mapping` compiles. Errors name the source
(the file, or ``"mapping"`` for a dict) and the key.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from kgrec.data.mapping_rules import FeatureRule, InteractionRule, ItemRule, KGRule, ScenarioRule, TextRule, UserRule
from kgrec.errors import MappingError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 needs the tomli backport
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

__all__ = ["TOP_KEYS", "RULE_KEYS", "check_top_keys", "merge_over", "interaction_rules", "check_string_lists",
           "rule_to_dict", "read_mapping_file"]

_SECTIONS = {"users": UserRule, "items": ItemRule, "kg": KGRule, "text": TextRule, "features": FeatureRule,
             "scenarios": ScenarioRule}
#: The keys of a mapping's top level, and of one ``[[interactions]]`` table.
TOP_KEYS = ("name", "description", "extends", "prefixes", "rewrite", "users", "items",
            "interactions", "kg", "text", "features", "scenarios")
RULE_KEYS = ("name", "predicate", "inverse", "class", "agent", "object", "time", "weight", "text", "positive",
             "scenario")


def _err(source: str, key: str, msg: str) -> MappingError:
    """The error for ``key`` of the mapping read from ``source``."""
    return MappingError(f"{source}: '{key}' {msg}")


def check_top_keys(d: dict[str, Any], source: str) -> None:
    """Raise on the first top-level key of ``d`` that is not a mapping key."""
    unknown = [k for k in d if k not in TOP_KEYS]
    if unknown:
        raise _err(source, unknown[0], f"is not a mapping key (expected one of: {', '.join(TOP_KEYS)})")


def merge_over(out: dict[str, Any], d: dict[str, Any], source: str) -> None:
    """Lay ``d`` over the base mapping's dict ``out``: strings and interactions replaced, tables merged key by key."""
    for k in ("name", "description"):
        if k in d:
            if not isinstance(d[k], str):
                raise _err(source, k, f"must be a string (got {d[k]!r})")
            out[k] = d[k]
    for k in ("prefixes", "rewrite"):
        if k in d:
            if not isinstance(d[k], dict):
                raise _err(source, k, f"must be a table of name = IRI (got {d[k]!r})")
            out[k] = {**out[k], **d[k]}
    for sec, klass in _SECTIONS.items():
        if sec not in d:
            continue
        out.setdefault(sec, {})
        if not isinstance(d[sec], dict):
            raise _err(source, sec, f"must be a table (got {d[sec]!r})")
        allowed = [f.name for f in fields(klass)]
        for k, v in d[sec].items():
            if k not in allowed:
                raise _err(source, f"{sec}.{k}", f"is not a key of [{sec}] (expected one of: {', '.join(allowed)})")
            out[sec][k] = v
    if "interactions" in d:
        if not isinstance(d["interactions"], list) or not all(isinstance(r, dict) for r in d["interactions"]):
            raise _err(source, "interactions", "must be a list of tables ([[interactions]] in TOML)")
        out["interactions"] = d["interactions"]


def interaction_rules(tables: list[dict[str, Any]], source: str) -> list[InteractionRule]:
    """The ``[[interactions]]`` tables as rules (TOML key ``class`` is the field ``cls``)."""
    rules = []
    for i, r in enumerate(tables):
        for k in r:
            if k not in RULE_KEYS:
                raise _err(source, f"interactions[{i}].{k}",
                           f"is not a key of [[interactions]] (expected one of: {', '.join(RULE_KEYS)})")
        if "name" not in r:
            raise _err(source, f"interactions[{i}].name", "is required (a short name used in warnings)")
        kw = {("cls" if k == "class" else k): v for k, v in r.items()}
        for k in ("cls", "agent", "object", "time", "weight", "text"):
            if k in kw and not isinstance(kw[k], (str, list)):
                key = "class" if k == "cls" else k
                raise _err(source, f"interactions[{i}].{key}", f"must be a string or a list of strings (got {kw[k]!r})")
        rules.append(InteractionRule(**kw))
    return rules


def check_string_lists(out: dict[str, Any], source: str) -> None:
    """Raise on a list field of the sections that holds neither a list nor a string."""
    for sec in ("users", "items", "kg", "text", "features"):
        for k in ("classes", "same_as", "exclude", "predicates", "languages", "numeric"):
            v = out[sec].get(k)
            if v is not None and not isinstance(v, (list, str)):
                raise _err(source, f"{sec}.{k}", f"must be a list of strings (got {v!r})")


def rule_to_dict(r: InteractionRule) -> dict[str, Any]:
    """One interaction rule's ``[[interactions]]`` table: defaults left out, one alternative as a string."""
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


def read_mapping_file(p: Path) -> dict[str, Any]:
    """The dict of a ``.toml`` (tomllib) or ``.yaml`` / ``.yml`` (``yaml.safe_load``) mapping file.

    Raises:
        MappingError: the file is missing, has another suffix, or does not parse (the message
            names the file and, where the parser says, the line).
    """
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
    return d
