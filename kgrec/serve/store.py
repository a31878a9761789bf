"""Where the live service keeps its events: an embedded Oxigraph store or a SPARQL 1.1 endpoint.

Both hold the events as RDF in the kgrec vocabulary (:mod:`kgrec.serve.events`), and both
acknowledge an event only once it is committed:

* :class:`EmbeddedStore` (the default): pyoxigraph's on-disk ``Store`` (RocksDB) in a directory.
  ``extend`` writes a batch in one transaction, through RocksDB's write-ahead log, before it
  returns, so events acknowledged survive a ``kill -9`` of the service. The directory is held by
  one process at a time.
* :class:`SparqlStore`: any SPARQL 1.1 endpoint (Oxigraph server, Fuseki...). A batch is one
  ``INSERT DATA`` request to its update URL; the endpoint's 2xx answer is its commit.

One service writes to a store (it numbers events with ``kgr:sequence``); other triples in the
store (the graph itself, kept there by a team that has one) are read through the same queries
and left alone.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pyoxigraph as ox

from kgrec.errors import EventStoreError
from kgrec.serve.events import KGR, Event, event_quads, parse_time

__all__ = ["EventStore", "EmbeddedStore", "SparqlStore", "open_store"]

_PREFIX = f"PREFIX kgr: <{KGR}>\n"
_SINCE = _PREFIX + """SELECT ?e ?u ?i ?t ?w ?s WHERE {{
  ?e kgr:sequence ?s ; kgr:user ?u ; kgr:item ?i .
  OPTIONAL {{ ?e kgr:timestamp ?t }} OPTIONAL {{ ?e kgr:rating ?w }}
  FILTER(?s > {after})
}} ORDER BY ?s"""
_LAST = _PREFIX + "SELECT (MAX(?s) AS ?m) (COUNT(?s) AS ?n) WHERE { ?e kgr:sequence ?s }"
_EXISTING = _PREFIX + "SELECT ?e WHERE {{ VALUES ?e {{ {nodes} }} ?e a kgr:Interaction }}"


class EventStore:
    """The interface of both stores; subclasses give ``_select`` and ``_insert``.

    Writes are serialised by a lock (one writer per store): a batch is numbered, checked for
    events the store already holds (retries) and committed as one unit.
    """

    location: str

    def __init__(self):
        self._lock = threading.Lock()
        self._last, self._count = self._read_last()

    # ---------------------------------------------------------------- subclass parts
    def _select(self, query: str) -> list[dict[str, str | None]]:
        raise NotImplementedError

    def _insert(self, events: list[Event]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the store."""

    # ---------------------------------------------------------------- shared
    def _read_last(self) -> tuple[int, int]:
        row = self._select(_LAST)[0]
        return int(float(row["m"])) if row.get("m") else 0, int(row.get("n") or 0)

    @property
    def last_sequence(self) -> int:
        """The sequence number of the last stored event (0: none)."""
        return self._last

    def count(self) -> int:
        """Events this service (or an earlier run of it) stored."""
        return self._count

    def add(self, events: list[Event]) -> tuple[list[Event], list[Event]]:
        """Commit ``events`` in one unit; ``(stored, duplicates)``, the stored ones numbered.

        An event whose node the store already holds (a retry, see :mod:`kgrec.serve.events`) is not
        written again; nor is the second of two equal events in one batch.

        Raises:
            EventStoreError: the store did not commit (nothing of the batch is acknowledged).
        """
        with self._lock:
            nodes = list(dict.fromkeys(e.node for e in events))
            existing = set()
            for b in range(0, len(nodes), 500):
                values = " ".join(f"<{n}>" for n in nodes[b:b + 500])
                existing |= {r["e"] for r in self._select(_EXISTING.format(nodes=values))}
            stored, dups, seen, seq = [], [], set(existing), self._last
            for e in events:
                if e.node in seen:
                    dups.append(e)
                    continue
                seen.add(e.node)
                seq += 1
                stored.append(Event(e.user, e.item, e.time, e.weight, e.node, seq))
            if stored:
                self._insert(stored)
                self._last, self._count = seq, self._count + len(stored)
            return stored, dups

    def since(self, after: int) -> list[Event]:
        """Events stored after sequence number ``after``, in the order they were stored."""
        out = []
        for r in self._select(_SINCE.format(after=int(after))):
            t = parse_time(r["t"], "kgr:timestamp") if r.get("t") else 0.0
            out.append(Event(r["u"], r["i"], t, float(r["w"]) if r.get("w") else 1.0, r["e"], int(float(r["s"]))))
        return out


class EmbeddedStore(EventStore):
    """Events in a pyoxigraph on-disk ``Store`` in ``directory`` (created when missing)."""

    def __init__(self, directory: str | Path):
        self.location = str(directory)
        try:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self._store = ox.Store(str(directory))
        except OSError as e:
            raise EventStoreError(f"cannot open the event store '{directory}' ({e}); is another service "
                                  "using it?") from None
        super().__init__()

    def _select(self, query):
        try:
            result = self._store.query(query)
            names = result.variables
            return [{v.value: (None if sol[v] is None else sol[v].value) for v in names} for sol in result]
        except OSError as e:
            raise EventStoreError(f"event store '{self.location}': {e}") from None

    def _insert(self, events):
        try:
            self._store.extend([q for e in events for q in event_quads(e)])  # one transaction
        except OSError as e:
            raise EventStoreError(f"event store '{self.location}': the batch was not committed ({e})") from None

    def close(self):
        try:
            self._store.flush()
        except OSError:
            pass
        del self._store


class SparqlStore(EventStore):
    """Events in a SPARQL 1.1 endpoint: queries to ``query_url``, ``INSERT DATA`` to ``update_url``.

    ``url`` may be the server's base (``http://host:7878``: Oxigraph's ``/query`` and ``/update``),
    a query URL ending in ``/query`` or ``/sparql`` (its sibling ``/update`` takes the updates, as
    in Oxigraph and Fuseki), or give ``update_url`` explicitly.
    """

    def __init__(self, url: str, update_url: str | None = None, timeout: float = 30.0):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise EventStoreError(f"'--store' must be a directory or an http(s) SPARQL endpoint URL (got {url!r})")
        base = url.rstrip("/")
        if base.endswith(("/query", "/sparql")):
            self.query_url = base
            self.update_url = update_url or base.rsplit("/", 1)[0] + "/update"
        else:
            self.query_url, self.update_url = base + "/query", update_url or base + "/update"
        self.location, self.timeout = self.query_url, timeout
        super().__init__()

    def _request(self, url: str, body: str, content_type: str, accept: str | None = None) -> bytes:
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        req = urllib.request.Request(url, data=body.encode("utf-8"), method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (an http(s) URL, checked)
                return resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:300]
            raise EventStoreError(f"SPARQL endpoint '{url}' answered HTTP {e.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as e:
            raise EventStoreError(f"SPARQL endpoint '{url}' did not answer ({getattr(e, 'reason', e)}); "
                                  f"nothing was stored") from None

    def _select(self, query):
        data = json.loads(self._request(self.query_url, query, "application/sparql-query",
                                        "application/sparql-results+json"))
        return [{k: v.get("value") for k, v in b.items()} for b in data["results"]["bindings"]]

    def _insert(self, events):
        body = "INSERT DATA {\n" + "\n".join(f"{q.subject} {q.predicate} {q.object} ." for e in events
                                             for q in event_quads(e)) + "\n}"
        self._request(self.update_url, body, "application/sparql-update")


def open_store(location: str | Path) -> EventStore:
    """:class:`SparqlStore` for an ``http(s)://`` URL, else :class:`EmbeddedStore` in that directory."""
    text = str(location)
    if text.startswith(("http://", "https://")):
        return SparqlStore(text)
    return EmbeddedStore(text)
