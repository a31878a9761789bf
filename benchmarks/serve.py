"""Load test of ``kgrec serve``: ``GET /recommend`` throughput and latency while events stream in
and updates swap models.

For each model, on the shipped MovieLens latest-small graph (``kg_data/movielens-small``: 610 users,
9,742 items): a global-time split keeps the last ``--stream-share`` of the interactions out of
training; the model is fitted on the rest, saved, and served by ``python -m kgrec serve`` (a
subprocess on 127.0.0.1, embedded Oxigraph store, ``--update-every`` events per update). Then, for
at most ``--seconds`` and ``--requests`` requests, ``--concurrency`` async httpx clients ask
``/recommend?user=U&k=10`` for random users (``--unknown-share`` of them unknown: the MostPop
fallback), while one more client posts the held-out interactions in time order, ``--event-batch``
at a time at ``--event-rate`` events per second, each acknowledged only once stored. The
service updates the model on them in its background thread and swaps the new version in while the
requests go on; the versions the answers carry show the swaps.

A request fails when it gets no answer or a status other than 200 (target: none). Latencies are
client-side (connection reuse, one process of clients). The hybrid's configuration is reduced
(``--hybrid-params``) so that its fit and its updates fit a CPU budget; the result says which.

Usage::

    python benchmarks/serve.py                      # writes benchmarks/results/serve.{json,md,png}
    python benchmarks/serve.py --models ease --seconds 20 --out /tmp/serve
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from common import ROOT, machine, write_results

import numpy as np

import kgrec

DATA = ROOT / "kg_data" / "movielens-small" / "movielens-small.nt.gz"
TOKEN = "benchmark-token-0123456789"
# the demo's hybrid (one short text segment per item: MiniLM's CPU encoding stays about a minute, and
# the cache of 'kgrec demo' is reused) with fewer epochs and a smaller dimension
HYBRID = {"epochs": 4, "dim": 32, "text_segments": 1, "text_max_length": 64, "patience": 100, "eval_every": 2}
PARAMS = {"ease": {"reg": 250.0}, "hybrid": HYBRID}


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def start_service(model_dir: Path, work: Path, args, update_epochs: int) -> tuple[subprocess.Popen, str]:
    """``python -m kgrec serve`` on a free port; returns once ``/health`` answers."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (work / "token").write_text(TOKEN)
    cmd = [sys.executable, "-m", "kgrec", "--threads", str(args.threads), "serve", str(model_dir),
           "--port", str(port), "--state-dir", str(work / "state"), "--token-file", str(work / "token"),
           "--update-every", str(args.update_every), "--update-seconds", "0", "--update-epochs", str(update_epochs)]
    log = open(work / "serve.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kgrec serve exited: {(work / 'serve.log').read_text()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("kgrec serve did not answer within 300 s")


async def load(url: str, users: list[str], stream: list[dict], args) -> dict:
    """The request clients and the event poster, together; every request and post recorded."""
    import httpx

    rng = random.Random(args.seed)
    requests, posts = [], []
    t0 = time.perf_counter()
    stop_at = t0 + args.seconds
    limits = httpx.Limits(max_connections=args.concurrency + 2, max_keepalive_connections=args.concurrency + 2)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        for user in users[:20]:  # warm-up, not measured
            await client.get("/recommend", params={"user": user, "k": 10})
        t0 = time.perf_counter()
        stop_at = t0 + args.seconds
        issued = 0

        async def requester():
            nonlocal issued
            while time.perf_counter() < stop_at and issued < args.requests:
                issued += 1
                unknown = rng.random() < args.unknown_share
                user = f"https://example.org/unknown/{rng.randrange(10**6)}" if unknown else rng.choice(users)
                t = time.perf_counter()
                try:
                    r = await client.get("/recommend", params={"user": user, "k": 10})
                    ok, version = r.status_code == 200, r.json().get("model_version") if r.status_code == 200 else None
                    status = r.status_code
                except httpx.HTTPError as e:
                    ok, version, status = False, None, type(e).__name__
                requests.append((t - t0, time.perf_counter() - t, ok, version, status))

        async def poster():
            interval = args.event_batch / args.event_rate
            sent = 0
            while sent < len(stream) and time.perf_counter() < stop_at and issued < args.requests:
                batch = stream[sent:sent + args.event_batch]
                t = time.perf_counter()
                try:
                    r = await client.post("/events", json=batch, headers={"Authorization": f"Bearer {TOKEN}"})
                    ok, status = r.status_code == 201, r.status_code
                except httpx.HTTPError as e:
                    ok, status = False, type(e).__name__
                posts.append((t - t0, time.perf_counter() - t, ok, len(batch), status))
                sent += len(batch)
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - t)))

        await asyncio.gather(poster(), *(requester() for _ in range(args.concurrency)))
        wall = time.perf_counter() - t0
        health = (await client.get("/health")).json()
    return {"requests": requests, "posts": posts, "wall": wall, "health": health}


def run_model(name: str, kg, sp, args, work: Path) -> dict:
    params = {**PARAMS.get(name, {}), **(json.loads(args.hybrid_params) if name == "hybrid" and args.hybrid_params
                                        else {})}
    accepted = kgrec.Recommender.params_of(name)
    params.update({k: v for k, v in (("seed", args.seed), ("device", "cpu")) if k in accepted})
    t = time.perf_counter()
    rec = kgrec.Recommender(name, **params).fit(kg, sp)
    fit_s = time.perf_counter() - t
    model_dir = work / "model"
    rec.save(model_dir)
    users = list(rec.users)
    inproc = []  # the floor: one user's recommend() in this process, no HTTP
    for user in random.Random(args.seed).sample(users, 30):
        t = time.perf_counter()
        rec.recommend([user], k=10)
        inproc.append((time.perf_counter() - t) * 1000)
    del rec
    # the held-out interactions, in time order, as the application would post them
    part = sp.valid
    order = np.argsort(part.time.numpy(), kind="stable")
    stream = [{"id": f"ml-{int(part.user[i])}-{int(part.item[i])}", "user": kg.users[int(part.user[i])],
               "item": kg.items[int(part.item[i])], "time": float(part.time[i]), "weight": float(part.weight[i])}
              for i in order.tolist()]
    update_epochs = args.update_epochs if "epochs" in accepted else 0
    proc, url = start_service(model_dir, work, args, update_epochs)
    try:
        res = asyncio.run(load(url, users, stream, args))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    reqs, posts, health = res["requests"], res["posts"], res["health"]
    lat = [r[1] * 1000 for r in reqs if r[2]]
    versions = sorted({r[3] for r in reqs if r[3] is not None})
    failures = [r for r in reqs if not r[2]]
    return {
        "model": name, "params": params, "fit_seconds": fit_s, "stream_events": len(stream),
        "inprocess_recommend_p50_ms": percentile(inproc, 50),
        "requests": len(reqs), "seconds": res["wall"], "rps": len(reqs) / res["wall"],
        "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95), "p99_ms": percentile(lat, 99),
        "max_ms": max(lat) if lat else float("nan"),
        "failed": len(failures), "failure_statuses": sorted({str(r[4]) for r in failures}),
        "events_posted": sum(p[3] for p in posts), "events_acknowledged": sum(p[3] for p in posts if p[2]),
        "event_posts_failed": sum(1 for p in posts if not p[2]),
        "event_post_failure_statuses": sorted({str(p[4]) for p in posts if not p[2]}),
        "event_post_p50_ms": percentile([p[1] * 1000 for p in posts], 50),
        "updates_ok": health["updates"]["ok"], "updates_failed": health["updates"]["failed"],
        "last_update": health["last_update"], "versions_served": versions, "final_version": health["model_version"],
        "timeline": [[round(r[0], 4), round(r[1] * 1000, 3), r[3]] for r in reqs],
    }


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(9, 3.2 * len(results)), squeeze=False)
    for ax, r in zip(axes[:, 0], results):
        t = np.array([x[0] for x in r["timeline"]])
        ms = np.array([x[1] for x in r["timeline"]])
        v = [x[2] for x in r["timeline"]]
        ax.scatter(t, ms, s=2, alpha=0.4)
        for i in range(1, len(v)):
            if v[i] is not None and v[i - 1] is not None and v[i] > v[i - 1]:
                ax.axvline(t[i], color="red", lw=0.8, alpha=0.6)
        ax.set_yscale("log")
        ax.set_title(f"{r['model']}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                     f"{r['failed']} failed; red: a new model version answers")
        ax.set_xlabel("seconds")
        ax.set_ylabel("latency (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA), help="RDF graph (default: the shipped MovieLens latest-small)")
    ap.add_argument("--models", default="ease,hybrid", help="models, comma-separated (default: ease,hybrid)")
    ap.add_argument("--hybrid-params", default=None, help=f"JSON overriding the hybrid's settings {HYBRID}")
    ap.add_argument("--stream-share", type=float, default=0.05,
                    help="the latest share of interactions held out and posted as events (default: 0.05)")
    ap.add_argument("--seconds", type=float, default=180.0, help="the most seconds of load per model (default: 180)")
    ap.add_argument("--requests", type=int, default=20000, help="the most requests per model (default: 20000)")
    ap.add_argument("--concurrency", type=int, default=8, help="concurrent request clients (default: 8)")
    ap.add_argument("--unknown-share", type=float, default=0.05, help="share of unknown users (default: 0.05)")
    ap.add_argument("--event-rate", type=float, default=50.0, help="events per second (default: 50)")
    ap.add_argument("--event-batch", type=int, default=10, help="events per POST (default: 10)")
    ap.add_argument("--update-every", type=int, default=200, help="the service's --update-every (default: 200)")
    ap.add_argument("--update-epochs", type=int, default=1, help="epochs of an embedding model's update (default: 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the service (default: 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output folder")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.requests <= 0 or args.concurrency <= 0 or args.event_rate <= 0:
        ap.error("'--seconds', '--requests', '--concurrency' and '--event-rate' must be positive")
    if not 0 < args.stream_share < 1:
        ap.error("'--stream-share' must be in (0, 1)")

    import torch

    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kg = kgrec.load(args.data)
    sp = kgrec.split(kg, "global-time", ratios=(1 - args.stream_share, args.stream_share, 0.0))
    results = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        with tempfile.TemporaryDirectory(prefix=f"kgrec-serve-{name}-") as tmp:
            print(f"{name}: fitting, then {args.seconds:g} s of load", file=sys.stderr, flush=True)
            r = run_model(name, kg, sp, args, Path(tmp))
            print(f"{name}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                  f"{r['failed']} failed, versions {r['versions_served']}", file=sys.stderr, flush=True)
            results.append(r)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "serve.png"
    plot(results, png)
    columns = [("model", "model"), ("inprocess_recommend_p50_ms", "in-process ms"), ("requests", "requests"),
               ("seconds", "s"), ("rps", "req/s"), ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"),
               ("p99_ms", "p99 ms"), ("failed", "failed"),
               ("events_acknowledged", "events stored"), ("updates_ok", "updates"),
               ("updates_failed", "failed updates"), ("versions", "versions answering")]
    rows = [{key: r[key] for key, _ in columns[:-1]} | {"versions": ", ".join(map(str, r["versions_served"]))}
            for r in results]
    n_stream = results[0]["stream_events"] if results else 0
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/serve.py", *given])
    facts = machine()
    hybrid = [r["params"] for r in results if r["model"] == "hybrid"]
    text = (f"`{command}` at commit {facts['commit']}. Data: `{args.data}` ({kg.num_users} users, "
            f"{kg.num_items} items); "
            f"the latest {args.stream_share:g} of interactions by time ({n_stream}) are held out of the fit and "
            f"posted to `POST /events` at {args.event_rate:g} events/s in batches of {args.event_batch}; the service "
            f"(`kgrec serve --threads {args.threads} --update-every {args.update_every}`, embedded Oxigraph "
            f"store) updates the model every {args.update_every} events and swaps it in. Meanwhile "
            f"{args.concurrency} async httpx clients ask `GET /recommend?k=10` for random users "
            f"({args.unknown_share:g} unknown: MostPop fallback) for at most {args.seconds:g} s / {args.requests} "
            f"requests. A failure is no answer or a status other than 200. The hybrid is a reduced configuration "
            f"for the CPU budget: {json.dumps(hybrid[0]) if hybrid else 'n/a'}"
            f" ({args.update_epochs} epoch(s) per update). Clients and service share the machine's cores. "
            f"In-process ms: the p50 of one user's `Recommender.recommend` in the benchmark's process (no HTTP, "
            f"{args.threads} thread(s)): the model's own cost under the service's latency. "
            f"Latency over time, new versions marked: `serve.png`.")
    payload = {"command": command, "argv": given,
               "machine": facts, "data": args.data, "settings": vars(args), "results": results}
    json_path, md_path = write_results(out, "serve", payload, rows, columns, title="kgrec serve under load",
                                       text=text, floatfmt=".1f")
    with open(md_path, "a", encoding="utf-8") as fh:
        fh.write("\n![latency over time](serve.png)\n")
    print(f"wrote {json_path}, {md_path} and {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
