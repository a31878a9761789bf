"""The FastAPI application of ``kgrec serve`` (:func:`create_app`).

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``):

* ``GET /recommend?user=IRI&k=10``: top-k for a user. A user the model does not know gets
  scores from their pending events (``"source": "history"``) when they have some, else the most
  popular items with ``"fallback": "most-popular"``, never an error. Items of a user's pending
  events are left out.
* ``POST /recommend`` ``{"items": [...], "times": [...], "k": 10}``: a new user scored from their
  interactions without refitting (:meth:`kgrec.Recommender.recommend_for_history`).
* ``GET /explain?user=IRI&item=IRI``: :meth:`kgrec.Recommender.explain` on the graph given with
  ``data`` (the graph the served model was trained on).
* ``POST /events`` (bearer token): a JSON list of ``{user, item, time?, weight?, id?}``, or an
  RDF body (``text/turtle``, ``application/n-triples``) read through the service's mapping.
  Answered once the store committed them (:mod:`kgrec.serve.store`).
* ``POST /update`` (bearer token): run an update now and wait for it.
* ``GET /health``: model version, store, pending events, the last update (a failed one too).
* ``GET /metrics``: Prometheus text (``prometheus_client``, one registry per app).

Errors are JSON ``{"error": message, "field": name or null}``: 401 without a token, 403 with a
wrong one, 404 for an unknown IRI where one must be known, 413 for a body over ``max_body_bytes``,
415 for an unknown content type, 422 for a bad field (named), 503 when the store did not commit.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import tempfile
import time
import warnings
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Callable

try:
    from fastapi import Depends, FastAPI, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
    from pydantic import BaseModel, ConfigDict, Field
except ImportError as e:  # the optional extra
    raise ImportError(f"'kgrec serve' needs the serve extra: pip install 'kgrec[serve]' ({e})") from None

from kgrec import api
from kgrec.errors import EventError, EventStoreError, KgrecError, ServeError, UnknownIRIError
from kgrec.reports.tables import to_jsonable
from kgrec.serve.events import event_from_json, events_from_graph
from kgrec.serve.models import ModelManager, claim_state_dir
from kgrec.serve.store import open_store
from kgrec.version import __version__

__all__ = ["create_app"]

#: RDF content types POST /events reads, and the format kgrec.load gets for each.
RDF_TYPES = {"text/turtle": ("turtle", ".ttl"), "application/n-triples": ("ntriples", ".nt"),
             "application/x-turtle": ("turtle", ".ttl"), "text/plain": ("ntriples", ".nt")}
_ENDPOINTS = ("/recommend", "/explain", "/events", "/update", "/health", "/metrics", "/docs", "/openapi.json")
_QUOTED = re.compile(r"'([^']+)'")


class HistoryRequest(BaseModel):
    """A new user's interactions, scored without refitting."""

    model_config = ConfigDict(extra="forbid")
    items: list[str] = Field(min_length=1, max_length=10_000, description="item IRIs the user interacted with")
    times: list[float] | None = Field(None, description="unix seconds of each interaction (same length as items)")
    k: int = Field(10, ge=1, description="items to return")


class _Metrics:
    """The Prometheus series of one app, in a registry of its own (two apps in one process never mix)."""

    def __init__(self, manager: ModelManager):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("kgrec_requests", "HTTP requests answered", ["endpoint", "method", "status"],
                                registry=r)
        self.latency = Histogram("kgrec_request_seconds", "time to answer a request", ["endpoint"], registry=r,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.received = Counter("kgrec_events_received", "events received in valid requests", registry=r)
        self.stored = Counter("kgrec_events_stored", "events committed to the store", registry=r)
        self.duplicates = Counter("kgrec_events_duplicate", "events the store already held (retries)", registry=r)
        self.updates = Counter("kgrec_updates", "model updates attempted", ["result"], registry=r)
        self.update_seconds = Histogram("kgrec_update_seconds", "time of one model update", registry=r,
                                        buckets=(.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
        Gauge("kgrec_model_version", "version of the served model (0: MODEL_DIR)",
              registry=r).set_function(lambda: manager.served.version)
        Gauge("kgrec_events_pending", "events stored but not yet in the served model",
              registry=r).set_function(lambda: len(manager.pending))
        Gauge("kgrec_last_update_ok", "1 when the last update succeeded (or none ran), 0 when it failed",
              registry=r).set_function(lambda: 0 if manager.last_update and not manager.last_update["ok"] else 1)
        for result in ("ok", "failed"):
            self.updates.labels(result)

    def on_update(self, ok: bool, seconds: float) -> None:
        self.updates.labels("ok" if ok else "failed").inc()
        self.update_seconds.observe(seconds)


def _error(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers)


def _field_of(message: str) -> str | None:
    m = _QUOTED.search(message)
    return m.group(1) if m else None


class _Limits:
    """Pure ASGI middleware: bodies over ``max_body_bytes`` get 413 before the app reads them (the
    declared length is checked first; a chunked body is counted while it arrives), and every
    request is counted and timed per endpoint.
    """

    def __init__(self, app, max_body_bytes: int, metrics: _Metrics):
        self.app, self.limit, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        path = scope["path"]
        endpoint = path if path in _ENDPOINTS else "other"
        status = {"code": 500}

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            declared = dict(scope.get("headers") or []).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.limit:
                return await self._too_large(scope, receive, counting_send)
            if scope["method"] in ("POST", "PUT", "PATCH"):
                chunks, size = [], 0
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    if size > self.limit:
                        return await self._too_large(scope, receive, counting_send)
                    if not message.get("more_body"):
                        break
                body, sent = b"".join(chunks), False

                async def replay():
                    nonlocal sent
                    if not sent:
                        sent = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                return await self.app(scope, replay, counting_send)
            return await self.app(scope, receive, counting_send)
        finally:
            self.metrics.requests.labels(endpoint, scope["method"], str(status["code"])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)

    async def _too_large(self, scope, receive, send):
        resp = _error(413, f"the request body is larger than max_body_bytes={self.limit}", "body")
        await resp(scope, receive, send)


def create_app(model_dir, *, state_dir=None, store=None, token: str | None = None, token_file=None,
               update_every: int = 100, update_seconds: float = 60.0, update_epochs: int = 5,
               update_replay: float = 0.2, keep_versions: int = 3, max_body_bytes: int = 1_000_000,
               max_k: int = 1000, data=None, mapping=None, text_model: str | None = None,
               text_allow_pickle: bool = False, log: Callable[[str], None] | None = None) -> FastAPI:
    """The live recommendation service for the checkpoint in ``model_dir``.

    Args:
        model_dir: a checkpoint written by :meth:`kgrec.Recommender.save` / ``kgrec train``; served as
            version 0 and never written.
        state_dir: versions, pointer and the default store (default ``<model_dir>.serve``).
        store: an event store directory or an ``http(s)://`` SPARQL endpoint URL (default
            ``<state_dir>/store``, an embedded Oxigraph store).
        token: the bearer token of the write endpoints.
        token_file: a file holding it instead. Neither: a random token is written to
            ``<state_dir>/token`` (mode 0600) and logged.
        update_every: update after that many new events (0: not by count).
        update_seconds: update when events are pending and that long passed since the last
            attempt (0: not by time); ``POST /update`` forces one either way.
        update_epochs: ``epochs`` of :meth:`kgrec.Recommender.update`.
        update_replay: ``replay`` of :meth:`kgrec.Recommender.update`.
        keep_versions: update checkpoints kept on disk.
        max_body_bytes: the largest request body accepted (413 above it).
        max_k: the largest ``k`` a request may ask for.
        data: the graph file(s) the model was trained on, for ``/explain``.
        mapping: the mapping of ``data`` and of RDF bodies of ``POST /events`` (default: kgrec).
        text_model: :meth:`kgrec.Recommender.load`'s ``text_model`` (hybrid, content-knn).
        text_allow_pickle: :meth:`kgrec.Recommender.load`'s ``text_allow_pickle``.
        log: called with one line per notable event (default: nothing).

    Raises:
        ServeError: a bad option or token file; CheckpointError: no checkpoint loads;
        EventStoreError: the store cannot be opened.
    """
    log = log or (lambda line: None)
    for name, value, low in (("max_body_bytes", max_body_bytes, 1), ("max_k", max_k, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ServeError(f"'{name}' must be a positive integer (got {value!r})")
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ServeError(f"'MODEL_DIR' must be a model directory (kgrec train --out DIR); '{model_dir}' is not one")
    state = Path(state_dir) if state_dir is not None else model_dir.with_name(model_dir.name + ".serve")
    claim_state_dir(state, model_dir)
    token = _token(token, token_file, state, log)
    event_store = open_store(store if store is not None else state / "store")
    manager = ModelManager(model_dir, state, event_store, update_every=update_every, update_seconds=update_seconds,
                           update_epochs=update_epochs, update_replay=update_replay, keep=keep_versions,
                           load_options={"text_model": text_model, "text_allow_pickle": text_allow_pickle},
                           log=log)
    metrics = _Metrics(manager)
    manager.on_update = metrics.on_update
    started = time.time()
    app = FastAPI(title="kgrec live recommendations", version=__version__,
                  lifespan=_lifespan(manager, event_store, log),
                  description="Top-k recommendations from a kgrec model that keeps learning from posted events.")
    app.state.manager, app.state.store = manager, event_store
    _add_error_handlers(app)
    _add_recommend_routes(app, manager, max_k)
    _add_explain_route(app, manager, data, mapping)
    _add_write_routes(app, manager, event_store, metrics, mapping, _token_check(token))
    _add_status_routes(app, manager, event_store, metrics, started)
    app.add_middleware(_Limits, max_body_bytes=max_body_bytes, metrics=metrics)
    return app


def _lifespan(manager: ModelManager, event_store, log: Callable[[str], None]):
    """The app's lifespan: the update worker runs while the app serves; the store is closed after."""

    @asynccontextmanager
    async def lifespan(app):
        manager.start()
        log(f"serving {manager.served.rec!r} version {manager.served.version}; events in {event_store.location}")
        try:
            yield
        finally:
            manager.stop()
            event_store.close()

    return lifespan


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON ``{"error", "field"}``: 422 for a bad field, 404 for an unknown IRI, 503 when
    nothing was stored, 401/403 for a missing/wrong token.
    """

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("query", "body", "path", "header")]
        field = ".".join(loc) or None
        return JSONResponse({"error": f"'{field}': {first.get('msg', 'invalid')}", "field": field,
                             "detail": [{k: e.get(k) for k in ("loc", "msg", "type")} for e in errors]},
                            status_code=422)

    @app.exception_handler(UnknownIRIError)
    async def _unknown(request, exc):
        return _error(404, str(exc), _field_of(str(exc)))

    @app.exception_handler(EventStoreError)
    async def _store_down(request, exc):
        return _error(503, f"nothing was stored: {exc}", None)

    @app.exception_handler(KgrecError)
    async def _bad(request, exc):
        return _error(422, str(exc), _field_of(str(exc)))

    @app.exception_handler(_Refused)
    async def _refused(request, exc: _Refused):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.message, "Authorization", headers)


def _token_check(token: str) -> Callable[[Request], None]:
    """The dependency of the write endpoints: a bearer ``token`` (compared in constant time) or 401/403."""

    def require_token(request: Request) -> None:
        header = request.headers.get("authorization")
        if not header or not header.lower().startswith("bearer "):
            raise _Refused(401, "this endpoint needs 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(header[7:].strip().encode(), token.encode()):
            raise _Refused(403, "the bearer token is wrong")

    return require_token


def _items(pairs, rec) -> list[dict]:
    """``[(item IRI, score), ...]`` as the JSON items of an answer, with labels when the model has them."""
    labels = rec.item_labels if len(rec.item_labels or []) == len(rec.items) else None
    return [{"item": i, "score": s, **({"label": labels[rec.items.id(i)]} if labels else {})} for i, s in pairs]


def _add_recommend_routes(app: FastAPI, manager: ModelManager, max_k: int) -> None:
    """``GET /recommend`` (a user by IRI) and ``POST /recommend`` (a new user's items)."""

    @app.get("/recommend", summary="top-k items for a user")
    def recommend(user: str = Query(..., min_length=1, description="the user's IRI"),
                  k: int = Query(10, ge=1, le=max_k, description="items to return")):
        served = manager.served  # this request's model, whatever a swap does meanwhile
        rec = served.rec
        pending = [e.item for e in manager.pending_of(user)]
        out = {"user": user, "k": k, "model_version": served.version, "fallback": None}
        if user in rec.users:
            extra = [i for i in dict.fromkeys(pending) if i in rec.items]
            pairs = rec.recommend([user], k=k, exclude={user: extra} if extra else None)[user]
            return {**out, "source": "model", "items": _items(pairs, rec)}
        known = [i for i in dict.fromkeys(pending) if i in rec.items]
        if known:
            return {**out, "source": "history", "items": _items(rec.recommend_for_history(known, k=k), rec)}
        return {**out, "source": "most-popular", "fallback": "most-popular",
                "items": _items(served.most_popular(k, exclude=pending), rec)}

    @app.post("/recommend", summary="top-k items for a new user from their interactions")
    def recommend_history(body: HistoryRequest):
        served = manager.served
        rec = served.rec
        if body.k > max_k:
            return _error(422, f"'k' must be at most {max_k} (got {body.k})", "k")
        if body.times is not None and len(body.times) != len(body.items):
            return _error(422, f"'times' must give one time per item ({len(body.items)} items, "
                               f"got {len(body.times)} times)", "times")
        keep = [n for n, i in enumerate(body.items) if i in rec.items]
        unknown = [i for i in body.items if i not in rec.items]
        out = {"k": body.k, "model_version": served.version, "unknown_items": unknown, "fallback": None}
        if not keep:
            return {**out, "source": "most-popular", "fallback": "most-popular",
                    "items": _items(served.most_popular(body.k, exclude=body.items), rec)}
        times = None if body.times is None else [body.times[n] for n in keep]
        pairs = rec.recommend_for_history([body.items[n] for n in keep], times=times, k=body.k)
        return {**out, "source": "history", "items": _items(pairs, rec)}


def _add_explain_route(app: FastAPI, manager: ModelManager, data, mapping) -> None:
    """``GET /explain`` on the graph of ``data`` (read once, at the first request)."""
    explain_graph: dict = {}

    @app.get("/explain", summary="why an item is recommended to a user")
    def explain(user: str = Query(..., min_length=1), item: str = Query(..., min_length=1),
                max_paths: int = Query(3, ge=1, le=50)):
        served = manager.served
        rec = served.rec
        if data is None:
            return _error(409, "explanations need the graph the model was trained on: start the service with "
                               "--data FILE (and --mapping)", "data")
        if user not in rec.users:
            raise UnknownIRIError(f"'user': {user!r} is not a user of the served model")
        if item not in rec.items:
            raise UnknownIRIError(f"'item': {item!r} is not an item of the served model")
        if "kg" not in explain_graph:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                explain_graph["kg"] = api.load(data, mapping=mapping)
        kg = explain_graph["kg"]
        if rec.users != kg.users or rec.items != kg.items:
            return _error(409, f"the served model (version {served.version}: {len(rec.users)} users / "
                               f"{len(rec.items)} items) has grown past the graph of --data ({kg.num_users} / "
                               f"{kg.num_items}); explanations cover the users and items of that graph", "data")
        exp = rec.explain(user, item, max_paths=max_paths, kg=kg)
        return {"model_version": served.version, **to_jsonable(exp.to_dict())}


def _add_write_routes(app: FastAPI, manager: ModelManager, event_store, metrics: _Metrics, mapping,
                      require_token: Callable[[Request], None]) -> None:
    """``POST /events`` (JSON or RDF, answered once stored) and ``POST /update``, both behind the token."""

    @app.post("/events", summary="add interactions (JSON or RDF); answered once stored",
              dependencies=[Depends(require_token)], status_code=201)
    async def post_events(request: Request):
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        raw = await request.body()
        now = time.time()
        if ctype == "application/json":
            events = _json_events(raw, now)
        elif ctype in RDF_TYPES:
            events = await run_in_threadpool(_rdf_events, raw, *RDF_TYPES[ctype], mapping, now)
        else:
            return _error(415, f"Content-Type {ctype!r} is not read here: send application/json, text/turtle "
                               "or application/n-triples", "Content-Type")
        if isinstance(events, JSONResponse):
            return events
        metrics.received.inc(len(events))
        stored, dups = await run_in_threadpool(event_store.add, events)  # committed before we answer
        metrics.stored.inc(len(stored))
        metrics.duplicates.inc(len(dups))
        manager.add_events(stored)
        return {"stored": len(stored), "duplicates": len(dups), "ids": [e.node for e in events],
                "last_sequence": event_store.last_sequence, "model_version": manager.served.version}

    @app.post("/update", summary="run a model update now and wait for it", dependencies=[Depends(require_token)])
    async def force_update():
        status = await run_in_threadpool(manager.update_now)
        return JSONResponse(status, status_code=200 if status.get("ok") else 500)


def _add_status_routes(app: FastAPI, manager: ModelManager, event_store, metrics: _Metrics, started: float) -> None:
    """``GET /health`` and ``GET /metrics`` (Prometheus text)."""

    @app.get("/health", summary="model version, store and the last update")
    def health():
        served = manager.served
        last = manager.last_update
        return {"status": "degraded" if last and not last["ok"] else "ok",
                "model": served.rec.model_name, "model_version": served.version,
                "users": len(served.rec.users), "items": len(served.rec.items),
                "events_stored": event_store.count(), "events_pending": len(manager.pending),
                "events_through": served.events_through, "store": event_store.location,
                "updates": {"ok": manager.updates_ok, "failed": manager.updates_failed},
                "last_update": last, "uptime_seconds": time.time() - started}

    @app.get("/metrics", summary="Prometheus metrics")
    def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _json_events(raw: bytes, now: float):
    """Events of a JSON body: a list of events or ``{"events": [...]}`` (a 400/422 response when it is not one)."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return _error(400, f"the body is not JSON ({e})", "body")
    if isinstance(body, dict) and set(body) == {"events"}:
        body = body["events"]
    if not isinstance(body, list) or not body:
        return _error(422, "the body must be a non-empty JSON list of events {user, item, time?, "
                           "weight?, id?}", "body")
    try:
        return [event_from_json(obj, f"[{n}]", now) for n, obj in enumerate(body)]
    except EventError as e:
        return _error(422, str(e), _field_of(str(e)))


def _rdf_events(raw: bytes, fmt: str, suffix: str, mapping, now: float):
    """Events of an RDF body read through ``mapping`` (a 422 response when it holds none or does not parse)."""
    with tempfile.TemporaryDirectory(prefix="kgrec-body-") as tmp:
        path = Path(tmp) / f"body{suffix}"
        path.write_bytes(raw)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kg = api.load(path, mapping=mapping, format=fmt)
        except KgrecError as e:
            message = str(e).replace(str(path), f"body{suffix}").replace(tmp + "/", "")
            return _error(422, message, "body")
    return events_from_graph(kg, now)


def _token(token, token_file, state: Path, log) -> str:
    if token is not None and token_file is not None:
        raise ServeError("give 'token' or 'token_file', not both")
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ServeError(f"'--token-file' '{token_file}' cannot be read ({e.strerror})") from None
        if not token:
            raise ServeError(f"'--token-file' '{token_file}' is empty")
    if token is None:
        path = state / "token"
        if not path.is_file():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        token = path.read_text(encoding="utf-8").strip()
        log(f"write endpoints take the bearer token in '{path}'")
    if len(token) < 8 or any(c.isspace() for c in token):
        raise ServeError("the bearer token must be at least 8 characters without spaces")
    return token

