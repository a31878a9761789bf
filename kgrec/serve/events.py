"""Interaction events as the service receives, stores and replays them.

An event is one user-item interaction: ``Event(user, item, time, weight, id)``. In a store it is a
reified ``kgr:Interaction`` in the kgrec vocabulary (``kg_data/vocab/kgrec.ttl``), exactly as in
``kg_data/toy/toy.ttl``, so ``kgrec.load`` of a dump of the store reads the events back as
interactions with the default mapping::

    <urn:kgrec:event:9f2c...> a kgr:Interaction ;
        kgr:user <https://example.org/user/7> ; kgr:item <https://example.org/item/3> ;
        kgr:timestamp "2024-05-01T10:00:00Z"^^xsd:dateTime ; kgr:rating 1.0 ;
        kgr:sequence 42 .

``kgr:sequence`` is the order in which this service stored the event (1, 2, ...; gaps where a
retry was recognised): a checkpoint records the last sequence number it includes, so a restarted
service replays exactly the events after it.

**Retries are idempotent** when the event names itself: the node IRI is a hash of the client's
``id`` when given, else of ``(user, item, time, weight)`` when the client gives a ``time``. The
same event posted twice (a client retrying after a timeout) is then stored once and reported as a
duplicate. An event with neither ``id`` nor ``time`` gets the server's clock and a random node, so
its retry is a second event: clients that retry should send an ``id`` or a ``time``.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import pyoxigraph as ox

from kgrec.errors import EventError

__all__ = ["Event", "KGR", "XSD", "event_from_json", "events_from_graph", "event_quads", "to_ntriples",
           "parse_time", "format_time"]

KGR = "https://w3id.org/kgrec/vocab#"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
_P = {name: ox.NamedNode(KGR + name) for name in ("user", "item", "timestamp", "rating", "sequence")}
_INTERACTION = ox.NamedNode(KGR + "Interaction")
_FIELDS = ("user", "item", "time", "weight", "id")


@dataclass(frozen=True)
class Event:
    """One interaction: IRIs of the user and item, unix seconds, a weight, and the node IRI."""

    user: str
    item: str
    time: float
    weight: float
    node: str
    sequence: int = 0  # set when stored

    def to_dict(self) -> dict:
        return {"id": self.node, "user": self.user, "item": self.item, "time": self.time, "weight": self.weight,
                "sequence": self.sequence}


def parse_time(value, field: str) -> float:
    """Unix seconds of ``value``: a number of seconds or an ISO 8601 date-time (no zone = UTC)."""
    if isinstance(value, bool):
        raise EventError(f"'{field}' must be unix seconds or an ISO 8601 date-time (got {value!r})")
    if isinstance(value, (int, float)):
        t = float(value)
    elif isinstance(value, str):
        v = value.strip()
        try:
            dt = datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith(("Z", "z")) else v)
        except ValueError:
            raise EventError(f"'{field}' must be unix seconds or an ISO 8601 date-time (got {value!r:.80})") from None
        t = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
    else:
        raise EventError(f"'{field}' must be unix seconds or an ISO 8601 date-time (got {type(value).__name__})")
    if not math.isfinite(t) or not -62135596800 <= t <= 253402300799:  # years 1..9999, what xsd:dateTime holds
        raise EventError(f"'{field}' is out of range (got {value!r})")
    return t


def format_time(t: float) -> str:
    """``t`` as an ``xsd:dateTime`` lexical form in UTC (microseconds only when there are any)."""
    dt = datetime.fromtimestamp(t, tz=timezone.utc)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    return text + "Z"


def _iri(value, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise EventError(f"'{field}' must be an IRI string (got {value!r:.80})")
    try:
        ox.NamedNode(value)
    except ValueError as e:
        raise EventError(f"'{field}' is not a valid IRI ({e}): {value!r:.120}") from None
    if ":" not in value:
        raise EventError(f"'{field}' must be an absolute IRI (got {value!r:.120})")
    return value


def _node(key: str) -> str:
    return "urn:kgrec:event:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def event_from_json(obj, where: str, now: float) -> Event:
    """An :class:`Event` from one JSON object ``{user, item, time?, weight?, id?}``.

    Args:
        obj: the decoded JSON value.
        where: how error messages name it (``"[3]"``: the 4th event of the body).
        now: the server's clock, the time of an event without one.

    Raises:
        EventError: naming the field (``"[3].weight"``) and what was expected.
    """
    if not isinstance(obj, dict):
        raise EventError(f"'{where}' must be an object with 'user' and 'item' (got {type(obj).__name__})")
    unknown = sorted(set(obj) - set(_FIELDS))
    if unknown:
        raise EventError(f"'{where}.{unknown[0]}' is not a field of an event (fields: {', '.join(_FIELDS)})")
    for need in ("user", "item"):
        if need not in obj:
            raise EventError(f"'{where}.{need}' is required")
    user, item = _iri(obj["user"], f"{where}.user"), _iri(obj["item"], f"{where}.item")
    weight = obj.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise EventError(f"'{where}.weight' must be a finite number (got {weight!r:.80})")
    given = obj.get("time")
    t = now if given is None else parse_time(given, f"{where}.time")
    cid = obj.get("id")
    if cid is not None and (not isinstance(cid, str) or not cid or len(cid) > 512):
        raise EventError(f"'{where}.id' must be a non-empty string of at most 512 characters (got {cid!r:.80})")
    if cid is not None:
        node = _node("id\0" + cid)
    elif given is not None:
        node = _node(f"event\0{user}\0{item}\0{t!r}\0{float(weight)!r}")
    else:  # nothing names this event: a retry is a new event (see the module docstring)
        node = "urn:uuid:" + str(uuid.uuid4())
    return Event(user, item, t, float(weight), node)


def events_from_graph(kg, now: float) -> list[Event]:
    """The interactions of a graph read through the service's mapping (an RDF body of
    ``POST /events``) as events; each is named by its content, so a re-posted body is idempotent.
    """
    ia = kg.interactions
    out = []
    for u, i, w, t in zip(ia.user.tolist(), ia.item.tolist(), ia.weight.tolist(), ia.time.tolist()):
        user, item = kg.users[u], kg.items[i]
        has_time = not math.isnan(t)
        t = t if has_time else now
        node = _node(f"event\0{user}\0{item}\0{t!r}\0{float(w)!r}") if has_time else "urn:uuid:" + str(uuid.uuid4())
        out.append(Event(user, item, float(t), float(w), node))
    return out


def event_quads(e: Event) -> list[ox.Quad]:
    """The triples of one stored event (in the default graph)."""
    s = ox.NamedNode(e.node)
    return [ox.Quad(s, RDF_TYPE, _INTERACTION),
            ox.Quad(s, _P["user"], ox.NamedNode(e.user)),
            ox.Quad(s, _P["item"], ox.NamedNode(e.item)),
            ox.Quad(s, _P["timestamp"], ox.Literal(format_time(e.time), datatype=ox.NamedNode(XSD + "dateTime"))),
            ox.Quad(s, _P["rating"], ox.Literal(repr(e.weight), datatype=ox.NamedNode(XSD + "double"))),
            ox.Quad(s, _P["sequence"], ox.Literal(str(e.sequence), datatype=ox.NamedNode(XSD + "integer")))]


def to_ntriples(events) -> str:
    """N-Triples of ``events`` (what ``kgrec.load`` reads back as interactions)."""
    lines = []
    for e in events:
        for q in event_quads(e):
            lines.append(f"{q.subject} {q.predicate} {q.object} .")
    return "\n".join(lines) + ("\n" if lines else "")
