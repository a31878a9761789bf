"""``kgrec serve``: the real service (uvicorn in a subprocess on 127.0.0.1) spoken to over HTTP.

The model is EASE fitted on the toy graph (closed form: a fit and an update take milliseconds), so
every right answer is known: the service's lists equal ``Recommender.recommend`` of the same
checkpoint, the MostPop fallback is the toy graph's item counts, an update adds exactly the posted
users. Mutating tests start their own service; read-only ones share one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pyoxigraph as ox
import pytest

import kgrec
from kgrec.errors import EventError, ServeError
from kgrec.serve.events import event_from_json, format_time, parse_time, to_ntriples
from tests.conftest import REPO
from tests.oxigraph_server import oxigraph  # noqa: F401 (a fixture)

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

TOY = REPO / "kg_data" / "toy" / "toy.ttl"
USER = "https://w3id.org/kgrec/data/toy/user/"
ITEM = "https://w3id.org/kgrec/data/toy/item/"
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """``python -m kgrec serve`` in a subprocess: the same command a user runs."""

    def __init__(self, model_dir: Path, tmp: Path, *options: str, state: Path | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = state or tmp / "state"
        token = tmp / "token.txt"
        token.write_text(TOKEN + "\n")
        self.log = open(tmp / f"serve-{self.port}.log", "w")
        cmd = [sys.executable, "-m", "kgrec", "--threads", "1", "serve", str(model_dir), "--port", str(self.port),
               "--token-file", str(token), "--state-dir", str(self.state), *options]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        self.client = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kgrec serve exited with {self.proc.returncode}: "
                                   f"{Path(self.log.name).read_text()[-2000:]}")
            try:
                if self.client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("kgrec serve did not answer within 60 s")
            time.sleep(0.1)

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def post(self, path, **kw):
        return self.client.post(path, **kw)

    def events(self, events, **kw):
        return self.client.post("/events", json=events, headers=AUTH, **kw)

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.client.close()
        self.log.close()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kg = kgrec.load(TOY)
    d = tmp_path_factory.mktemp("model") / "ease"
    kgrec.Recommender("ease").fit(kg).save(d)
    return d


@pytest.fixture(scope="module")
def reader(model_dir, tmp_path_factory):
    """One service for the tests that store nothing (refused writes, reads)."""
    tmp = tmp_path_factory.mktemp("reader")
    svc = Service(model_dir, tmp, "--max-body-bytes", "2000", "--data", str(TOY), "--update-seconds", "0")
    yield svc
    svc.stop()


@pytest.fixture
def service(model_dir, tmp_path):
    started = []

    def start(*options, state=None):
        svc = Service(model_dir, tmp_path, *options, state=state)
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop(signal.SIGKILL)


def _stored_nodes(store_dir: Path) -> set[str]:
    """Event nodes in an embedded store (read after the service let go of it)."""
    store = ox.Store(str(store_dir))
    q = "SELECT ?e WHERE { ?e a <https://w3id.org/kgrec/vocab#Interaction> }"
    nodes = {sol["e"].value for sol in store.query(q)}
    del store
    return nodes


# ---------------------------------------------------------------------------------------- reads
def test_recommend_equals_the_checkpoint(reader, model_dir):
    rec = kgrec.Recommender.load(model_dir)
    users = [f"{USER}u{n}" for n in range(1, 7)]
    want = rec.recommend(users, k=4)
    for user in users:
        r = reader.get("/recommend", params={"user": user, "k": 4})
        assert r.status_code == 200
        body = r.json()
        assert body["source"] == "model" and body["fallback"] is None and body["model_version"] == 0
        assert [(x["item"], pytest.approx(x["score"], abs=1e-6)) for x in body["items"]] == want[user]
    history = [ITEM + "alien", ITEM + "heat"]
    r = reader.post("/recommend", json={"items": history, "times": [1.6e9, 1.6e9 + 60], "k": 3})
    expected = rec.recommend_for_history(history, times=[1.6e9, 1.6e9 + 60], k=3)
    assert [(x["item"], pytest.approx(x["score"], abs=1e-6)) for x in r.json()["items"]] == expected


def test_unknown_user_gets_most_popular_with_a_flag(reader):
    r = reader.get("/recommend", params={"user": USER + "nobody", "k": 3})
    assert r.status_code == 200
    body = r.json()
    # toy.ttl: heat has 3 interactions (u1, u4, u6); alien, blade-runner, jaws, jurassic-park,
    # toy-story, up 2 each; ties go to the lower item id (sorted IRIs): alien, blade-runner
    assert body["fallback"] == "most-popular"
    assert [(x["item"], x["score"]) for x in body["items"]] == [(ITEM + "heat", 3.0), (ITEM + "alien", 2.0),
                                                                 (ITEM + "blade-runner", 2.0)]
    r = reader.post("/recommend", json={"items": ["http://elsewhere/item"], "k": 2})
    assert r.json()["fallback"] == "most-popular" and r.json()["unknown_items"] == ["http://elsewhere/item"]


@pytest.mark.parametrize("method, path, kwargs, field", [
    ("get", "/recommend", {"params": {"user": USER + "u1", "k": 0}}, "k"),
    ("get", "/recommend", {"params": {"user": USER + "u1", "k": "ten"}}, "k"),
    ("get", "/recommend", {"params": {"user": USER + "u1", "k": 10**6}}, "k"),
    ("get", "/recommend", {"params": {"k": 3}}, "user"),
    ("post", "/recommend", {"json": {"items": [ITEM + "up"], "colour": "red"}}, "colour"),
    ("post", "/recommend", {"json": {"items": []}}, "items"),
    ("post", "/recommend", {"json": {"items": [ITEM + "up"], "times": [1, 2]}}, "times"),
    ("get", "/explain", {"params": {"user": USER + "u1"}}, "item"),
])
def test_bad_requests_name_the_field(reader, method, path, kwargs, field):
    r = getattr(reader, method)(path, **kwargs)
    assert r.status_code == 422
    assert r.json()["field"] == field and field in r.json()["error"]


@pytest.mark.parametrize("events, field", [
    ([{"user": USER + "u1", "item": ITEM + "up", "colour": "red"}], "[0].colour"),
    ([{"user": USER + "u1", "item": ITEM + "up"}, {"user": USER + "u1"}], "[1].item"),
    ([{"user": USER + "u1", "item": ITEM + "up", "time": "yesterday"}], "[0].time"),
    ([{"user": USER + "u1", "item": ITEM + "up", "weight": "lots"}], "[0].weight"),
    ([{"user": "not an iri", "item": ITEM + "up"}], "[0].user"),
    ([], "body"),
])
def test_bad_events_are_refused_naming_the_field_and_nothing_is_stored(reader, events, field):
    r = reader.events(events)
    assert r.status_code == 422 and r.json()["field"] == field
    assert reader.get("/health").json()["events_stored"] == 0


def test_write_endpoints_need_the_token(reader):
    event = [{"user": USER + "u1", "item": ITEM + "up"}]
    r = reader.post("/events", json=event)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = reader.post("/events", json=event, headers={"Authorization": "Bearer wrong-token-000"})
    assert r.status_code == 403 and r.json()["field"] == "Authorization"
    assert reader.post("/update").status_code == 401
    assert reader.get("/health").json()["events_stored"] == 0


def test_oversized_and_unreadable_bodies(reader):
    big = [{"user": USER + "u1", "item": ITEM + f"i{n}"} for n in range(100)]  # > --max-body-bytes 2000
    r = reader.events(big)
    assert r.status_code == 413 and "max_body_bytes=2000" in r.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"x" * 500

    r = reader.post("/events", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413
    r = reader.post("/events", content=b"<xml/>", headers={**AUTH, "Content-Type": "application/xml"})
    assert r.status_code == 415 and r.json()["field"] == "Content-Type"
    r = reader.post("/events", content=b"[{", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400
    r = reader.post("/events", content=b"<a> <b> .", headers={**AUTH, "Content-Type": "text/turtle"})
    assert r.status_code == 422 and "body.ttl" in r.json()["error"] and "/tmp" not in r.json()["error"]
    assert reader.get("/health").json()["events_stored"] == 0


def test_explain_openapi_and_metrics(reader):
    r = reader.get("/explain", params={"user": USER + "u1", "item": ITEM + "jaws"})
    assert r.status_code == 200
    assert r.json()["item_label"] == "Jaws" and r.json()["paths"]
    assert reader.get("/explain", params={"user": USER + "nobody", "item": ITEM + "jaws"}).status_code == 404
    spec = reader.get("/openapi.json").json()
    assert {"/recommend", "/explain", "/events", "/update", "/health", "/metrics"} <= set(spec["paths"])
    text = reader.get("/metrics").text
    assert 'kgrec_requests_total{endpoint="/explain",method="GET",status="200"}' in text
    assert "kgrec_request_seconds_bucket" in text and "kgrec_model_version 0.0" in text


# --------------------------------------------------------------------------------------- writes
def test_events_then_update_swaps_the_model(service, tmp_path):
    svc = service("--update-every", "0", "--update-seconds", "0")
    new = USER + "new"
    posted = [{"user": new, "item": ITEM + "alien", "time": 1.7e9}, {"user": new, "item": ITEM + "heat",
                                                                     "time": "2024-01-01T00:00:00Z", "weight": 4}]
    r = svc.events(posted)
    assert r.status_code == 201 and r.json()["stored"] == 2 and r.json()["duplicates"] == 0
    # before the update: scored from the pending events, which are left out
    body = svc.get("/recommend", params={"user": new, "k": 8}).json()
    assert body["source"] == "history" and body["model_version"] == 0
    assert not {ITEM + "alien", ITEM + "heat"} & {x["item"] for x in body["items"]}
    turtle = (f"@prefix kgr: <https://w3id.org/kgrec/vocab#> .\n<{USER}other> kgr:interactedWith <{ITEM}up> .\n")
    r = svc.post("/events", content=turtle.encode(), headers={**AUTH, "Content-Type": "text/turtle"})
    assert r.status_code == 201 and r.json()["stored"] == 1
    retry = svc.events(posted).json()  # a client retrying after a timeout: nothing stored twice
    assert retry["stored"] == 0 and retry["duplicates"] == 2 and retry["last_sequence"] == 3
    r = svc.post("/update", headers=AUTH)
    assert r.status_code == 200 and r.json()["ok"] and r.json()["version"] == 1 and r.json()["new_users"] == 2
    body = svc.get("/recommend", params={"user": new, "k": 8}).json()
    assert body["model_version"] == 1 and body["source"] == "model"
    assert body["items"] and not {ITEM + "alien", ITEM + "heat"} & {x["item"] for x in body["items"]}
    health = svc.get("/health").json()
    assert health["model_version"] == 1 and health["users"] == 8 and health["events_pending"] == 0
    assert health["events_stored"] == 3 and health["status"] == "ok"
    metrics = svc.get("/metrics").text
    assert 'kgrec_updates_total{result="ok"} 1.0' in metrics and "kgrec_events_duplicate_total 2.0" in metrics
    # the new version equals Recommender.load of the checkpoint the pointer names
    pointer = json.loads((svc.state / "current").read_text())
    rec = kgrec.Recommender.load(svc.state / pointer["path"])
    assert [x["item"] for x in body["items"]] == [i for i, _ in rec.recommend([new], k=8)[new]]
    svc.stop()
    # a dump of the store reads back, through the default mapping, as the posted interactions
    store = ox.Store(str(svc.state / "store"))
    store.dump(str(tmp_path / "dump.nt"), format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph())
    del store
    kg = kgrec.load(tmp_path / "dump.nt")
    pairs = {(kg.users[u], kg.items[i], w) for u, i, w in zip(kg.interactions.user.tolist(),
                                                               kg.interactions.item.tolist(),
                                                               kg.interactions.weight.tolist())}
    assert pairs == {(new, ITEM + "alien", 1.0), (new, ITEM + "heat", 4.0), (USER + "other", ITEM + "up", 1.0)}
    assert sorted(kg.interactions.time.tolist())[:2] == [1.7e9, 1704067200.0]


def test_kill9_mid_stream_loses_no_acknowledged_event(service):
    svc = service("--update-every", "7", "--update-seconds", "0")
    acked, stop = [], threading.Event()

    def stream():
        n = 0
        with httpx.Client(base_url=svc.url, timeout=10) as client:
            while not stop.is_set():
                event = {"id": f"e{n}", "user": f"{USER}s{n % 5}", "item": ITEM + ["up", "jaws", "heat"][n % 3],
                         "time": 1.7e9 + n}
                try:
                    r = client.post("/events", json=[event], headers=AUTH)
                except httpx.TransportError:
                    return  # the service died under this request: not acknowledged
                if r.status_code == 201:
                    acked.append(r.json()["ids"][0])
                n += 1

    thread = threading.Thread(target=stream)
    thread.start()
    deadline = time.monotonic() + 20
    while len(acked) < 30 and time.monotonic() < deadline:  # past a few updates
        time.sleep(0.02)
    svc.proc.send_signal(signal.SIGKILL)
    svc.proc.wait()
    stop.set()
    thread.join()
    assert len(acked) >= 30
    pointer = json.loads((svc.state / "current").read_text())  # the last good model at the kill
    assert pointer["version"] >= 1
    again = service("--update-every", "0", "--update-seconds", "0", state=svc.state)
    health = again.get("/health").json()
    assert health["model_version"] == pointer["version"]
    assert health["events_pending"] == health["events_stored"] - pointer["events_through"]
    again.stop()
    assert set(acked) <= _stored_nodes(svc.state / "store")


def test_failed_update_keeps_the_old_model_and_is_reported(service, model_dir):
    svc = service("--update-every", "0", "--update-seconds", "0")
    before = svc.get("/recommend", params={"user": USER + "u2", "k": 3}).json()
    (svc.state / "models").write_text("not a directory")  # where the next checkpoint must go: it cannot
    assert svc.events([{"user": USER + "late", "item": ITEM + "up", "time": 1.7e9}]).status_code == 201
    r = svc.post("/update", headers=AUTH)
    assert r.status_code == 500 and not r.json()["ok"] and r.json()["version"] == 0
    health = svc.get("/health").json()
    assert health["status"] == "degraded" and health["model_version"] == 0
    assert health["last_update"]["ok"] is False and "models" in health["last_update"]["error"]
    assert health["events_pending"] == 1 and not (svc.state / "current").exists()
    assert svc.get("/recommend", params={"user": USER + "u2", "k": 3}).json() == before
    metrics = svc.get("/metrics").text
    assert 'kgrec_updates_total{result="failed"} 1.0' in metrics and "kgrec_last_update_ok 0.0" in metrics
    (svc.state / "models").unlink()  # mended: the next update goes through with the kept events
    r = svc.post("/update", headers=AUTH)
    assert r.json()["ok"] and r.json()["version"] == 1 and svc.get("/health").json()["status"] == "ok"


def test_sparql_endpoint_store(service, oxigraph):  # noqa: F811 (the fixture)
    oxigraph.load(TOY.read_bytes(), "text/turtle")  # a team's store holds the graph too
    before = oxigraph.count()
    svc = service("--store", oxigraph.base_url, "--update-every", "0", "--update-seconds", "0")
    r = svc.events([{"user": USER + "sp", "item": ITEM + "up", "time": 1.7e9},
                    {"user": USER + "sp", "item": ITEM + "jaws", "time": 1.7e9 + 1}])
    assert r.status_code == 201 and r.json()["stored"] == 2
    assert oxigraph.count() == before + 2 * 6  # six triples per event, committed before the answer
    assert svc.events([{"user": USER + "sp", "item": ITEM + "up", "time": 1.7e9}]).json()["duplicates"] == 1
    r = svc.post("/update", headers=AUTH)
    assert r.json()["ok"] and r.json()["new_users"] == 1  # the update read the events back from the endpoint
    body = svc.get("/recommend", params={"user": USER + "sp", "k": 8}).json()
    assert body["model_version"] == 1 and not {ITEM + "up", ITEM + "jaws"} & {x["item"] for x in body["items"]}
    oxigraph.process.kill()  # the endpoint goes away: nothing is acknowledged
    oxigraph.process.wait()
    r = svc.events([{"user": USER + "sp", "item": ITEM + "heat"}])
    assert r.status_code == 503 and "nothing was stored" in r.json()["error"]


# ------------------------------------------------------------------------------ no HTTP needed
def test_event_ids_make_retries_idempotent():
    a = {"user": USER + "u1", "item": ITEM + "up", "time": 1.7e9}
    assert event_from_json(a, "[0]", 1.0).node == event_from_json(dict(a), "[0]", 2.0).node
    assert event_from_json({**a, "id": "x"}, "[0]", 1.0).node == event_from_json({**a, "id": "x", "time": 5}, "[0]",
                                                                                   1.0).node
    no_time = {"user": USER + "u1", "item": ITEM + "up"}
    assert event_from_json(no_time, "[0]", 1.0).node != event_from_json(no_time, "[0]", 1.0).node
    with pytest.raises(EventError, match=r"'\[2\].id'"):
        event_from_json({**a, "id": ""}, "[2]", 1.0)


def test_times_round_trip_through_the_loader(tmp_path):
    assert parse_time("2024-01-01T00:00:00Z", "t") == parse_time("2024-01-01T00:00:00", "t") == 1704067200.0
    assert format_time(1704067200.25) == "2024-01-01T00:00:00.25Z"
    events = [event_from_json({"user": USER + "a", "item": ITEM + "up", "time": 1704067200.25}, "[0]", 0.0)]
    (tmp_path / "e.nt").write_text(to_ntriples(events))
    kg = kgrec.load(tmp_path / "e.nt")
    assert kg.interactions.time.tolist() == [1704067200.25]
    with pytest.raises(EventError, match="'t' is out of range"):
        parse_time(1e20, "t")


def test_state_dir_of_another_model_is_refused(model_dir, tmp_path):
    import shutil

    from kgrec.serve import create_app

    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    create_app(model_dir, state_dir=tmp_path / "state", token=TOKEN).state.store.close()
    with pytest.raises(ServeError, match="belongs to the model"):
        create_app(other, state_dir=tmp_path / "state", token=TOKEN)
    with pytest.raises(ServeError, match="'--token-file' '.*missing' cannot be read"):
        create_app(model_dir, state_dir=tmp_path / "state", token_file=tmp_path / "missing")


def test_import_kgrec_needs_no_web_framework():
    code = ("import sys, kgrec, kgrec.cli, kgrec.serve; "
            "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
