"""Property paths in a mapping: the SPARQL subset kgrec reads, parsed into tuples of steps.

A path is written ``a/b`` (sequence), ``^a`` (inverse: from an object back to its subject),
``a|b`` (alternative: the values of both) with parentheses; repetition (``*``, ``+``, ``?``,
``{n}``) and negation (``!``) are refused. :class:`PathParser` turns the text into a tuple of
steps, each an IRI, an :class:`InversePath` or an :class:`AlternativePath`; :func:`format_path`
writes one back. Terms inside a path are expanded by the caller's ``expand`` (the mapping's
prefixes), and errors are made by its ``error``, so they name the mapping's source and key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kgrec.errors import MappingError

__all__ = ["InversePath", "AlternativePath", "Path_", "PATH_OPERATORS", "PathParser", "format_path"]


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
PATH_OPERATORS = frozenset("/|^()*+?!")


class PathParser:
    """Recursive descent over ``path := seq ('|' seq)*``, ``seq := elt ('/' elt)*``,
    ``elt := '^'? (term | '(' path ')')``: the SPARQL property-path subset without repetition or
    negation. Errors name the mapping key, the rule and the whole term.

    Args:
        expand: a term (CURIE, ``<IRI>``) and the mapping key -> its absolute IRI.
        error: a mapping key and a message -> the :class:`MappingError` to raise.
        text: the path, stripped; ``original``: as written (for messages).
        key: the mapping key holding the path; ``where``: the rule, as ``"('name') "`` or ``""``.
    """

    def __init__(self, expand: Callable[[str, str], str], error: Callable[[str, str], MappingError],
                 text: str, original: str, key: str, where: str):
        self.expand, self.error = expand, error
        self.s, self.original, self.key, self.where = text, original, key, where
        self.i, self.n = 0, len(text)

    def err(self, msg: str) -> MappingError:
        return self.error(self.key, f"{self.where}{msg} in the property path {self.original!r}")

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
            inner = (self.expand(self.s[self.i:j + 1], self.key),)
            self.i = j + 1
        else:
            j = self.i
            while j < self.n and self.s[j] not in _PATH_STOP and not self.s[j].isspace():
                j += 1
            if j == self.i:
                raise self.err(f"has an unexpected {c!r}")
            inner = (self.expand(self.s[self.i:j], self.key),)
            self.i = j
        c = self.peek()
        if c in _UNSUPPORTED_PATH:
            raise self.unsupported(c)
        return _inverse(inner) if inverse else inner
