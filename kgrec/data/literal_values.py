"""Numbers and times read from RDF literals: event timestamps, weights and numeric features.

Every reader gives unix seconds or a float and never depends on the machine: a date or
``xsd:dateTime`` without a zone is read as UTC. :func:`parse_timestamp` also names the problem it
met, which extraction (:mod:`kgrec.data.extract`) counts in ``kg.warnings``; :func:`event_times`
parses one rule's whole column of time literals at once for the array path of
:mod:`kgrec.data.events`.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from operator import itemgetter

import numpy as np

from kgrec.data.rdf import RDF, XSD, Literal

__all__ = ["parse_timestamp", "parse_number", "event_times", "iso_seconds", "iso_seconds_many", "NUMERIC_TYPES",
           "DATETIME_TYPES", "PLAIN_TYPES", "DATE_TYPES"]

NUMERIC_TYPES = frozenset(XSD + t for t in (
    "integer", "long", "int", "short", "byte", "decimal", "double", "float", "nonNegativeInteger",
    "positiveInteger", "nonPositiveInteger", "negativeInteger", "unsignedLong", "unsignedInt",
    "unsignedShort", "unsignedByte"))
DATETIME_TYPES = frozenset((XSD + "dateTime", XSD + "dateTimeStamp"))
#: Datatypes of a plain string literal (an untyped one reads as ``xsd:string``).
PLAIN_TYPES = frozenset((XSD + "string", RDF + "langString"))
DATE_TYPES = DATETIME_TYPES | {XSD + "date"}
_VALUE, _DATATYPE = itemgetter(0), itemgetter(1)  # of a Literal


def iso_seconds(value: str) -> float:
    """Unix seconds of an ISO date or date-time (no zone = UTC); ``ValueError`` if it is not one."""
    v = value.strip()
    if v.endswith(("Z", "z")):  # Python < 3.11 fromisoformat rejects the 'Z' zone
        v = v[:-1] + "+00:00"
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is None:  # xsd:dateTime without a zone: read as UTC so results never depend on the machine
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


_UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ?")


def iso_seconds_many(values: list[str]) -> list[float]:
    """:func:`iso_seconds` of every value; a column of plain ``YYYY-MM-DDThh:mm:ss[Z]`` values
    (UTC either way) is parsed by numpy in one call instead of one Python call per value.
    """
    if values and all(map(_UTC_SECONDS.fullmatch, values)):
        try:
            stamps = np.array([v[:19] for v in values], dtype="datetime64[s]")
        except ValueError:  # an impossible date (month 13...): the per-value path raises it
            return list(map(iso_seconds, values))
        return stamps.astype(np.int64).astype(np.float64).tolist()
    return list(map(iso_seconds, values))


def event_times(lits: list[Literal]) -> list[float] | None:
    """Unix seconds of one rule's time literals when all are dates or all numbers and all parse;
    else ``None`` (the per-event path then counts each problem).
    """
    dts = set(map(_DATATYPE, lits))
    values = list(map(_VALUE, lits))
    try:
        if dts <= DATE_TYPES:
            return iso_seconds_many(values)
        if dts <= NUMERIC_TYPES:
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
        if dt in DATETIME_TYPES or dt == XSD + "date":
            return iso_seconds(lit.value), None
        if dt in NUMERIC_TYPES:
            return float(lit.value), None
    except ValueError:
        return math.nan, "unparseable timestamp"
    if dt in PLAIN_TYPES:
        v = lit.value.strip()
        try:
            return float(v), "timestamp without datatype"
        except ValueError:
            pass
        try:
            return iso_seconds(v), "timestamp without datatype"
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
        return iso_seconds(v)
    except ValueError:
        return math.nan
