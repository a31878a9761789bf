"""The served model, its versions on disk, and the worker that keeps it learning from events.

State directory layout (``--state-dir``, default ``MODEL_DIR.serve``)::

    service.json          which MODEL_DIR this state belongs to
    current               pointer to the served checkpoint (JSON, replaced atomically)
    models/v000001/       checkpoints written by updates (Recommender.save), the newest few kept
    models/v000001.json   what each one includes: version, events_through, update summary
    store/                the embedded event store (unless --store names another one)
    token                 the bearer token, when the service generated it

Version 0 is ``MODEL_DIR`` itself; it is read, never written. An update (every ``update_every``
new events or ``update_seconds`` seconds, or on ``POST /update``) runs in one background thread:

1. read the events stored after the served checkpoint's ``events_through`` from the store (the
   store, not memory, is the record: what a restarted service replays is what an update reads);
2. load them through ``kgrec.load`` (N-Triples in the kgrec vocabulary, the same path a dump of
   the store takes) and run :meth:`kgrec.Recommender.update` on a *fresh copy* of the served model
   loaded from its checkpoint, so the object serving requests is never modified;
3. save the result to a new version directory, write its sidecar JSON, then replace ``current``
   (``os.replace`` of a flushed temporary file, the directory flushed after it);
4. swap: one assignment of :attr:`ModelManager.served` under a lock. A request holds the object
   it started with, so requests in flight finish on the old model.

Any failure leaves ``current`` and the served model as they were and is recorded in
:attr:`ModelManager.last_update` (shown by ``/health`` and ``/metrics``); the events stay pending
and the next trigger retries. A restarted service loads the checkpoint ``current`` names (or, if
that one fails its manifest, the newest older one that loads) and replays the events stored after
it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from kgrec import api
from kgrec.errors import CheckpointError, KgrecError, ServeError
from kgrec.evaluation.rank import topk
from kgrec.serve.events import Event, to_ntriples
from kgrec.serve.store import EventStore

__all__ = ["Served", "ModelManager", "claim_state_dir", "write_json_atomic"]

POINTER = "current"


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` so that a reader (or a crash) sees the old file or the new one, whole."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself is durable once its directory is
    finally:
        os.close(fd)


def claim_state_dir(state_dir: Path, model_dir: Path) -> None:
    """Record which model a state directory grows from; refuse one of another model (before
    anything in it, the store included, is opened).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    marker = state_dir / "service.json"
    origin = str(model_dir.resolve())
    if marker.is_file():
        try:
            saved = json.loads(marker.read_text(encoding="utf-8")).get("model_dir")
        except (json.JSONDecodeError, AttributeError):
            raise ServeError(f"'{marker}' is not the JSON the service writes: remove it or pick another "
                             "--state-dir") from None
        if saved != origin:
            raise ServeError(f"the state directory '{state_dir}' belongs to the model '{saved}', not "
                             f"'{origin}': pass another --state-dir")
    else:
        write_json_atomic(marker, {"model_dir": origin, "created": time.time()})


@dataclass
class Served:
    """One model version as served: never modified after it is built (an update builds another)."""

    rec: api.Recommender
    version: int
    path: Path
    events_through: int
    _popular: torch.Tensor | None = field(default=None, repr=False)

    @property
    def popularity(self) -> torch.Tensor:
        """``[I]`` interactions per item of the model's graph (the MostPop fallback's scores)."""
        if self._popular is None:
            self._popular = torch.bincount(self.rec.known_items[1], minlength=len(self.rec.items)).float()
        return self._popular

    def most_popular(self, k: int, exclude: list[str] = ()) -> list[tuple[str, float]]:
        """The ``k`` items most interacted with, ``exclude`` left out (ties: lower item id first)."""
        scores = self.popularity.clone().unsqueeze(0)
        ids = [self.rec.items.get(x) for x in exclude]
        ids = [i for i in ids if i is not None]
        if ids:
            scores[0, ids] = -math.inf
        vals, idx = topk(scores, min(k, scores.shape[1]))
        return [(self.rec.items[i], v) for v, i in zip(vals[0].tolist(), idx[0].tolist()) if v != -math.inf]


class ModelManager:
    """Loads the last good model, keeps the pending events, runs updates and swaps models.

    Args:
        model_dir: the checkpoint to serve first (version 0).
        state_dir: where versions, the pointer and (by default) the store live.
        store: the event store.
        update_every: update after this many new events (0: never by count).
        update_seconds: update when events are pending and this long has passed since the last
            attempt (0: never by time).
        update_epochs, update_replay: :meth:`kgrec.Recommender.update`'s ``epochs`` and ``replay``.
        keep: checkpoints written by updates to keep (older ones are deleted; version 0 never is).
        load_options: keyword arguments of :meth:`kgrec.Recommender.load` (``text_model``...).
        on_update: called with ``(ok, seconds)`` after every update attempt (metrics).
        log: called with one line per event worth logging.
    """

    def __init__(self, model_dir, state_dir, store: EventStore, *, update_every: int = 100,
                 update_seconds: float = 60.0, update_epochs: int = 5, update_replay: float = 0.2, keep: int = 3,
                 load_options: dict | None = None, on_update: Callable[[bool, float], None] | None = None,
                 log: Callable[[str], None] | None = None):
        if isinstance(update_every, bool) or not isinstance(update_every, int) or update_every < 0:
            raise ServeError(f"'update_every' must be a non-negative integer (got {update_every!r})")
        if isinstance(update_seconds, bool) or not isinstance(update_seconds, (int, float)) or update_seconds < 0:
            raise ServeError(f"'update_seconds' must be a non-negative number (got {update_seconds!r})")
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ServeError(f"'keep' must be a positive integer (got {keep!r})")
        self.model_dir, self.state_dir = Path(model_dir), Path(state_dir)
        self.models_dir = self.state_dir / "models"
        self.store = store
        self.update_every, self.update_seconds = update_every, float(update_seconds)
        self.update_epochs, self.update_replay, self.keep = update_epochs, update_replay, keep
        self.load_options = dict(load_options or {})
        self.on_update, self.log = on_update, log or (lambda line: None)
        self.updates_ok = self.updates_failed = 0
        self.last_update: dict | None = None
        self._lock = threading.Lock()  # guards served, pending and the trigger counters
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._forced = 0  # forced runs asked for
        self._runs = 0  # update attempts finished
        self._at_attempt = 0  # pending events at the last failed attempt (the count trigger waits for more)
        self._last_attempt = time.monotonic()
        self._thread: threading.Thread | None = None
        self.served = self._load_last_good()
        self.pending: list[Event] = store.since(self.served.events_through)  # replayed after a restart
        if self.pending:
            self.log(f"replaying {len(self.pending)} event(s) stored after version {self.served.version}")

    # ------------------------------------------------------------------ start-up
    def _candidates(self) -> list[dict]:
        """Checkpoints to try at start-up, best first: the pointer's, then older sidecars, then MODEL_DIR."""
        out = []
        pointer = self.state_dir / POINTER
        if pointer.is_file():
            try:
                out.append(json.loads(pointer.read_text(encoding="utf-8")))
            except json.JSONDecodeError:
                self.log(f"'{pointer}' is damaged; trying the checkpoints it may have named")
        sidecars = sorted(self.models_dir.glob("v*.json"), reverse=True) if self.models_dir.is_dir() else []
        for path in sidecars:
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                continue
            if not out or meta.get("version", 0) < out[0].get("version", 0):
                out.append(meta)
        out.append({"version": 0, "path": str(self.model_dir.resolve()), "events_through": 0})
        return out

    def _load(self, path) -> api.Recommender:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return api.Recommender.load(path, **self.load_options)

    def _load_last_good(self) -> Served:
        errors = []
        for meta in self._candidates():
            path = Path(meta["path"])
            if not path.is_absolute():
                path = self.state_dir / path
            try:
                rec = self._load(path)
            except CheckpointError as e:
                errors.append(str(e))
                self.log(f"cannot load version {meta.get('version')} ('{path}'): {e}")
                continue
            return Served(rec, int(meta["version"]), path, int(meta["events_through"]))
        raise CheckpointError(f"no checkpoint of '{self.model_dir}' loads: {'; '.join(errors)}")

    # ------------------------------------------------------------------ events
    def add_events(self, events: list[Event]) -> None:
        """Events the store committed: pending for the next update; may trigger one."""
        if not events:
            return
        with self._wake:
            self.pending.extend(events)
            self._wake.notify_all()

    def pending_of(self, user: str) -> list[Event]:
        """The pending events of one user (not yet in the served model)."""
        with self._lock:
            return [e for e in self.pending if e.user == user]

    # ------------------------------------------------------------------ worker
    def start(self) -> None:
        """Start the background update worker."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="kgrec-update", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker (an update in progress finishes first, up to ``timeout`` seconds)."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def update_now(self, timeout: float = 600.0) -> dict:
        """Ask for an update at once and wait for it; the result as in :attr:`last_update`."""
        if self._thread is None:
            raise ServeError("the update worker is not running")
        with self._wake:
            target = self._runs + 1 + (1 if self._running else 0)
            self._forced += 1
            self._wake.notify_all()
            if not self._wake.wait_for(lambda: self._runs >= target or self._stop, timeout):
                raise ServeError(f"the update did not finish within {timeout:g} s")
            return dict(self.last_update or {})

    _running = False

    def _due(self) -> bool:
        n = len(self.pending)
        if self._forced:
            return True
        if self.update_every and n - self._at_attempt >= self.update_every:
            return True
        return bool(self.update_seconds and n and time.monotonic() - self._last_attempt >= self.update_seconds)

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._stop and not self._due():
                    self._wake.wait(timeout=min(1.0, self.update_seconds) if self.update_seconds else None)
                if self._stop:
                    return
                self._forced = 0
                self._running = True
            try:
                self.run_update()
            finally:
                with self._wake:
                    self._running = False
                    self._runs += 1
                    self._wake.notify_all()

    def _next_version(self) -> int:
        taken = [self.served.version]
        if self.models_dir.is_dir():
            for p in self.models_dir.iterdir():
                digits = p.name[1:].split(".")[0]
                if p.name.startswith("v") and digits.isdigit():
                    taken.append(int(digits))
        return max(taken) + 1

    def run_update(self) -> dict:
        """One update now, in the calling thread (the worker's body); returns :attr:`last_update`."""
        t0 = time.perf_counter()
        served = self.served
        self._last_attempt = time.monotonic()
        n_pending = len(self.pending)
        status: dict = {"at": time.time(), "from_version": served.version}
        try:
            events = self.store.since(served.events_through)
            if not events:
                status.update(ok=True, version=served.version, events=0, note="no new events")
            else:
                status.update(self._update_with(served, events))
            self.updates_ok += 1
            with self._lock:
                self._at_attempt = 0
        except Exception as e:  # noqa: BLE001 (any failure keeps the old model; it is reported, not raised)
            self.updates_failed += 1
            with self._lock:
                self._at_attempt = n_pending
            status.update(ok=False, version=served.version, error=f"{type(e).__name__}: {e}")
            self.log(f"update failed, still serving version {served.version}: {status['error']}"
                     + ("" if isinstance(e, KgrecError) else "\n" + traceback.format_exc(limit=8)))
        status["seconds"] = time.perf_counter() - t0
        self.last_update = status
        if self.on_update is not None:
            self.on_update(status["ok"], status["seconds"])
        return status

    def _update_with(self, served: Served, events: list[Event]) -> dict:
        through = events[-1].sequence
        with tempfile.TemporaryDirectory(prefix="kgrec-events-") as tmp:
            path = Path(tmp) / "events.nt"
            path.write_text(to_ntriples(events), encoding="utf-8")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # repeated pairs merge, as the loader documents
                kg = api.load(path)
        rec = self._load(served.path)  # a fresh copy: the served object is never modified
        rec.update(kg, epochs=self.update_epochs, replay=self.update_replay)
        version = self._next_version()
        out = self.models_dir / f"v{version:06d}"
        self.models_dir.mkdir(parents=True, exist_ok=True)
        rec.save(out)
        meta = {"version": version, "path": str(out.relative_to(self.state_dir)), "events_through": through,
                "events": len(events), "created": time.time(), "update": rec.fit_info.get("update", {})}
        write_json_atomic(out.with_name(out.name + ".json"), meta)
        write_json_atomic(self.state_dir / POINTER, meta)
        new = Served(rec, version, out, through)
        with self._lock:
            self.served = new  # the swap: requests that already hold the old Served finish on it
            self.pending = [e for e in self.pending if e.sequence > through]
        self.log(f"version {version}: {len(events)} event(s) through #{through}, "
                 f"{len(rec.users)} users / {len(rec.items)} items")
        self._prune(version)
        return {"ok": True, "version": version, "events": len(events), "events_through": through,
                "new_users": meta["update"].get("new_users"), "new_items": meta["update"].get("new_items")}

    def _prune(self, current: int) -> None:
        """Delete update checkpoints older than the newest ``keep`` (never the served one)."""
        versions = sorted(int(p.name[1:]) for p in self.models_dir.glob("v*") if p.is_dir() and p.name[1:].isdigit())
        for v in versions[:-self.keep]:
            if v == current:
                continue
            shutil.rmtree(self.models_dir / f"v{v:06d}", ignore_errors=True)
            (self.models_dir / f"v{v:06d}.json").unlink(missing_ok=True)
