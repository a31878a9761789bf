"""RDF ingest speed and memory: kgrec's one parser against rdflib's, in the same run.

Generates a synthetic N-Triples file with :mod:`kgrec.data.synthetic` (about ``--triples``
triples, uncompressed so only parsing is compared; ``--turtle`` also writes it as Turtle), then
measures, each in a fresh subprocess so resident memory is clean:

* ``kgrec ids``: the file to integer ids: :func:`kgrec.data.rdf.read_ids` (pyoxigraph parse; an
  ``(n, 3)`` int64 array of term ids and the decoded term table), with its default ``workers``
  (the file cut at line boundaries into one piece per worker process, up to 2);
* ``kgrec.load``: RDF file -> mapping -> :class:`kgrec.KnowledgeGraph` (id maps, triples tensor,
  interactions, literals), through ``read_ids``, default ``workers``;
* ``kgrec.load 1 worker`` / ``kgrec.load 2 workers``: the same with ``workers=1`` / ``workers=2``
  (the default takes 2 only when a CPU is idle: on a busy machine a second process shares the
  first one's time);
* ``kgrec.load ttl``: the same from the Turtle file (with ``--turtle``);
* ``rdflib parse``: ``rdflib.Graph().parse(path, format="nt")`` (parsing into an in-memory graph),
  the baseline every ratio divides by.

Every mode runs on one thread per process (``OMP_NUM_THREADS`` of the children defaults to 1);
the ``workers`` column says how many processes parsed. Other processes may share the machine's
cores, so every ratio compares modes of the same run, in turns; the load average before and after
the run is recorded.

Per mode: wall seconds of the operation only (imports excluded; best of ``--repeats`` runs),
triples/second, and peak memory: the child's ``ru_maxrss`` minus its RSS just before the
operation, per triple, and the largest worker process's peak RSS (forked workers share the
parent's pages until they write them, so the two columns overlap). The two parsers must report
the same triple count (the generator writes no duplicate triples, so rdflib's set semantics do
not change the count).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/ingest.py --triples 575000 --turtle   # the results file: 716k triples
    python benchmarks/ingest.py --triples 100000 --out /tmp/ingest
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (  # first: it puts this checkout ahead of an installed kgrec on sys.path
    ROOT,
    machine,
    write_results,
)

# isort: split
import kgrec
from kgrec.data.synthetic import generate

MODES = ("kgrec ids", "kgrec.load", "kgrec.load 1 worker", "kgrec.load 2 workers", "kgrec.load ttl", "rdflib parse")
#: mode -> the workers argument of kgrec.load
LOADS = {"kgrec.load": None, "kgrec.load 1 worker": 1, "kgrec.load 2 workers": 2, "kgrec.load ttl": None}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(mode: str, path: str) -> dict:
    """Run one measurement in this process (called in a fresh subprocess)."""
    import warnings

    from kgrec.data import rdfparse

    if mode in LOADS:
        src = str(Path(path).with_suffix(".ttl")) if mode == "kgrec.load ttl" else path

        def op():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kg = kgrec.load(src, workers=LOADS[mode])
            return {"users": kg.num_users, "items": kg.num_items, "interactions": len(kg.interactions),
                    "kg_triples": int(kg.triples.shape[0])}
    elif mode == "kgrec ids":
        from kgrec.data.rdf import read_ids

        def op():
            idt = read_ids(path)
            return {"triples": len(idt), "terms": len(idt.terms)}
    elif mode == "rdflib parse":
        import rdflib

        def op():
            g = rdflib.Graph()
            g.parse(path, format="nt")
            return {"triples": len(g)}
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    workers = 1
    if mode != "rdflib parse":
        parsed = src if mode in LOADS else path
        workers = len(rdfparse.plan_spans(rdfparse.check_source(parsed, None, None, None), LOADS.get(mode)))
    before = _rss_bytes()
    t0 = time.perf_counter()
    out = op()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {**out, "seconds": seconds, "workers": workers, "rss_before_bytes": before, "peak_rss_bytes": peak,
            "worker_peak_rss_bytes": worker_peak, "kgrec_file": str(Path(kgrec.__file__).resolve())}


def measure(mode: str, path: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    res = subprocess.run([sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True,
                         env=env, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--triples", type=int, default=1_000_000, help="approximate size of the generated file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="runs per mode; the fastest is reported")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of: " + ", ".join(MODES))
    ap.add_argument("--turtle", action="store_true", help="also write the file as Turtle and load it")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for ingest.{json,md}")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in MODES for m in modes):
        ap.error(f"'--modes' must be a subset of {', '.join(MODES)} (got {args.modes!r})")
    if not args.turtle and "kgrec.load ttl" in modes:
        modes.remove("kgrec.load ttl")

    payload = _run(args, modes)
    payload["command"] = "python benchmarks/ingest.py " + " ".join(sys.argv[1:] if argv is None else argv)
    rows, checks, ratios = _summary(payload["runs"], payload["file"]["generator"])
    payload.update(machine=machine(), rows=rows, checks=checks, speedup=ratios)
    cols = {"mode": "mode", "workers": "workers", "seconds": "seconds", "triples_per_s": "triples/s",
            "peak_mib": "peak RSS MiB", "worker_peak_mib": "worker peak RSS MiB", "bytes_per_triple": "bytes/triple",
            "triples_seen": "triples parsed"}
    j, md = write_results(args.out, "ingest", payload, rows, cols, title="RDF ingest: kgrec vs rdflib",
                          text=_text(payload), floatfmt=".1f")
    print(Path(md).read_text())
    return 0 if all(checks.values()) else 1


def _run(args, modes: list[str]) -> dict:
    """Generate the file(s) and measure every mode, ``--repeats`` times in turns."""
    # measured: ~80 triples per user (events of 5 triples, activity capped) with items = users / 2
    users = max(10, round(args.triples / 80))
    items = max(10, users // 2)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kgrec-ingest-") as tmp:
        path = Path(tmp) / "synthetic.nt"
        t0 = time.perf_counter()
        counts = generate(path, users=users, items=items, seed=args.seed)
        gen_s = time.perf_counter() - t0
        size = path.stat().st_size
        print(f"generated {counts['triples']:,} triples ({size / 2**20:.0f} MiB) in {gen_s:.1f} s", flush=True)
        turtle_size = 0
        if args.turtle:
            _write_turtle(path, path.with_suffix(".ttl"))
            turtle_size = path.with_suffix(".ttl").stat().st_size
        runs = {m: [] for m in modes}
        for _ in range(args.repeats):  # in turns: a busy spell of the shared cores hits every mode alike
            for mode in modes:
                runs[mode].append(measure(mode, path))
        for mode in modes:
            best = min(runs[mode], key=lambda r: r["seconds"])
            print(f"{mode:20s} {best['seconds']:.2f} s  ({[round(r['seconds'], 2) for r in runs[mode]]})", flush=True)
    return {"file": {"triples": counts["triples"], "bytes": size, "generator": counts, "generate_seconds": gen_s,
                     "seed": args.seed, "users": users, "items": items},
            "repeats": args.repeats, "turtle_bytes": turtle_size, "runs": runs,
            "load_average_before": list(load_before), "load_average_after": list(os.getloadavg())}


def _summary(runs: dict, counts: dict) -> tuple[list[dict], dict, dict]:
    """``(a row per mode, checks, speed-ups over rdflib)``."""
    n = counts["triples"]
    rows = []
    for mode, rs in runs.items():
        best = min(rs, key=lambda r: r["seconds"])
        peak_over = max(r["peak_rss_bytes"] - r["rss_before_bytes"] for r in rs)
        rows.append({"mode": mode, "workers": best["workers"], "seconds": best["seconds"],
                     "triples_per_s": n / best["seconds"], "peak_mib": max(r["peak_rss_bytes"] for r in rs) / 2**20,
                     "worker_peak_mib": (max(r["worker_peak_rss_bytes"] for r in rs) / 2**20
                                         if best["workers"] > 1 else ""),
                     "bytes_per_triple": peak_over / n, "triples_seen": best.get("triples", "")})
    checks = {"kgrec imported from this checkout": all(
        r["kgrec_file"].startswith(str(ROOT / "kgrec")) for rs in runs.values() for r in rs)}
    parsed = {m: runs[m][0]["triples"] for m in ("kgrec ids", "rdflib parse") if m in runs}
    if len(parsed) >= 2:
        checks["same_triple_count"] = len(set(parsed.values())) == 1 and n in parsed.values()
    for m in LOADS:
        if m in runs:
            r = runs[m][0]
            checks[f"{m}: counts match the generator"] = (r["users"], r["items"], r["interactions"]) == (
                counts["users"], counts["items"], counts["interactions"])
    speed = {row["mode"]: row["triples_per_s"] for row in rows}
    ratios = {}
    if "rdflib parse" in speed:
        for m in ("kgrec ids", *LOADS):
            if m in speed:
                ratios[f"{m} / rdflib parse"] = speed[m] / speed["rdflib parse"]
    return rows, checks, ratios


def _text(payload: dict) -> str:
    """The Markdown above the table: what each mode does, the speed-ups, the checks, where and how."""
    f, mach, omp = payload["file"], payload["machine"], os.environ.get("OMP_NUM_THREADS", "unset")
    return (f"Synthetic N-Triples file (`kgrec.data.synthetic.generate`, seed {f['seed']}): {f['triples']:,} "
            f"triples, {f['bytes'] / 2**20:.0f} MiB uncompressed. Each mode in a fresh subprocess on one thread, "
            f"the modes in turns, best of {payload['repeats']}; "
            "`bytes_per_triple` = (child's peak RSS - RSS before the operation) / triples. "
            "`kgrec ids` is the file to an (n, 3) integer-id array and its term table "
            "(`kgrec.data.rdf.read_ids`: pyoxigraph parse, terms numbered batch by batch, the file cut at line "
            "boundaries into one piece per worker process); `kgrec.load` goes on to "
            "build the whole KnowledgeGraph through the mapping (users, items, interactions, KG triples, literals), "
            "`kgrec.load 1 worker` / `2 workers` the same with `workers=1` / `2` (the default takes 2 only when "
            "a CPU is idle by the load average: on a busy machine the second process shares the first one's time)"
            + (", `kgrec.load ttl` the same from the same graph written as Turtle (one process: Turtle is not "
               "line-based)" if payload["turtle_bytes"] else "")
            + "; `rdflib parse` only parses. `workers`: the processes that parsed; `worker peak RSS MiB`: the "
            "largest worker's peak (forked, it shares the parent's pages: the columns overlap). "
            f"The machine's {mach['cpu_count']} cores are shared with other sessions' jobs (load average "
            f"{payload['load_average_before'][0]:.1f} before the run, {payload['load_average_after'][0]:.1f} "
            "after): compare the rows of this run with each other, not with other runs.\n\n"
            + "".join(f"- speed-up {k}: **{v:.1f}x**\n" for k, v in payload["speedup"].items())
            + "".join(f"- check {k}: {v}\n" for k, v in payload["checks"].items())
            + f"\nMachine: {mach['cpu']} ({mach['cpu_count']} cores, shared), OMP_NUM_THREADS={omp}, rdflib "
              f"{mach.get('rdflib')}, commit {mach['commit']}, {mach['date']}.\n\n"
              f"Command: `OMP_NUM_THREADS={omp} {payload['command']}`.")


def _write_turtle(nt: Path, ttl: Path) -> None:
    """The N-Triples file as Turtle (prefixes, subjects grouped), by pyoxigraph's serializer."""
    import pyoxigraph as ox

    prefixes = {"kgr": "https://w3id.org/kgrec/vocab#", "syn": "https://w3id.org/kgrec/data/synthetic/",
                "xsd": "http://www.w3.org/2001/XMLSchema#", "rdfs": "http://www.w3.org/2000/01/rdf-schema#"}
    with open(nt, "rb") as src:
        ox.serialize(ox.parse(src, ox.RdfFormat.N_TRIPLES), str(ttl), ox.RdfFormat.TURTLE, prefixes=prefixes)


if __name__ == "__main__":
    raise SystemExit(main())
