"""The compiled form of a mapping: every term expanded to an IRI, every path parsed.

:meth:`Mapping.compile <kgrec.data.mapping.Mapping.compile>` builds a :class:`CompiledMapping`
(with one :class:`CompiledRule` per interaction rule, its ``positive`` expression parsed into a
:class:`PositiveRule`); the extraction step and the triple stores read only this form.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

from kgrec.data.mapping_paths import Path_
from kgrec.errors import MappingError

__all__ = ["PositiveRule", "CompiledRule", "CompiledMapping"]

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
