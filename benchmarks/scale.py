"""Scale curve: load time, one training epoch and peak memory as the synthetic graph grows.

For each ``--sizes`` entry (approximate *interactions + triples*: the file's triples, which include
the 5 triples of each reified interaction event, plus the interactions), a fresh subprocess
generates a synthetic graph (:mod:`kgrec.data.synthetic`, uncompressed N-Triples under ``--tmp``),
loads it with ``kgrec.load``, splits it randomly and fits ``Recommender(--model, epochs=1,
**--param)`` (one epoch of training plus its one validation pass). The child reports wall seconds
of the load and of the fit; the parent samples the child's resident memory every 0.2 s and kills
it when it passes ``--max-rss-gib`` (the size is then recorded as ``exceeded``, and larger sizes
are skipped). Peak RSS is the child's ``ru_maxrss``. A least-squares line through ``log(y)``
against ``log(size)`` over the sizes >= ``--fit-from`` gives each growth exponent (1 = linear;
below ~1e6 fixed costs dominate).

Usage::

    OMP_NUM_THREADS=1 flock /work/cpu.lock python benchmarks/scale.py --sizes 1e5,3e5,1e6,3e6,1e7
    python benchmarks/scale.py --sizes 1e5,3e5 --out /tmp/scale --param batch_size=8192
    python benchmarks/scale.py --model lightgcn --param sampled=true     # params typed like `kgrec train`
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

from common import (
    ROOT,
    machine,
    write_results,
)

import numpy as np

from kgrec.cli.common import parse_param
from kgrec.cli.common import typed_params as _typed_params

#: Default LightGCN parameters: a large batch keeps an epoch at 1e7 within a few minutes on 2 cores.
DEFAULT_PARAMS = {"dim": 64, "batch_size": 65536}
#: File triples + interactions per synthetic user (~80 triples and ~19 interactions with items = users / 2).
UNITS_PER_USER = 99


def child(size: int, seed: int, model: str, params: dict, tmp: str) -> dict:
    import warnings

    import kgrec
    from kgrec.data.synthetic import generate

    users = max(10, round(size / UNITS_PER_USER))
    with tempfile.TemporaryDirectory(prefix="kgrec-scale-", dir=tmp) as d:
        path = Path(d) / "g.nt"
        t0 = time.perf_counter()
        counts = generate(path, users=users, items=max(10, users // 2), seed=seed)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kg = kgrec.load(path, max_file_bytes=2**40)  # our own file: above the 2 GiB default cap
        load_s = time.perf_counter() - t0
        load_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    split = kgrec.split(kg, "random", seed=seed)
    rec = kgrec.Recommender(model, **{**params, "epochs": 1, "seed": seed})
    t0 = time.perf_counter()
    rec.fit(kg, split)
    fit_s = time.perf_counter() - t0
    n_inter = len(kg.interactions)
    return {"size": counts["triples"] + n_inter, "triples": counts["triples"], "interactions": n_inter,
            "users": kg.num_users, "items": kg.num_items, "kg_triples": int(kg.triples.shape[0]),
            "generate_s": gen_s, "load_s": load_s, "epoch_s": fit_s, "load_peak_rss_mib": load_rss,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "status": "ok"}


def slope(x: list[float], y: list[float]) -> float | None:
    """Least-squares slope of ``log(y)`` on ``log(x)``; ``None`` with fewer than two points."""
    if len(x) < 2:
        return None
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_size(size: int, args, params: dict) -> dict:
    """One size in a fresh subprocess, killed when its RSS passes ``args.max_rss_gib``."""
    cmd = [sys.executable, __file__, "--child", str(size), "--seed", str(args.seed), "--model", args.model,
           "--tmp", args.tmp, "--params-json", json.dumps(params)]
    limit = args.max_rss_gib * 1024
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=ROOT,
                                env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
        t0, seen = time.perf_counter(), 0.0
        while proc.poll() is None:
            seen = max(seen, _rss_mib(proc.pid))
            if seen > limit or time.perf_counter() - t0 > args.max_seconds:
                proc.kill()
                proc.wait()
                why = "exceeded" if seen > limit else "timeout"
                return {"size": size, "status": why, "rss_when_stopped_mib": seen,
                        "seconds_when_stopped": time.perf_counter() - t0}
            time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            tail = err.read().strip().splitlines()
            print(f"size {size} failed:\n" + "\n".join(tail[-20:]), file=sys.stderr, flush=True)
            return {"size": size, "status": "failed: " + (tail[-1][:300] if tail else f"exit {proc.returncode}")}
        return json.loads(out.read().strip().splitlines()[-1])


def plot(rows: list[dict], path: Path, fit_from: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    x = [r["size"] for r in ok]
    for key, label in (("load_s", "load (s)"), ("epoch_s", "1 epoch + validation (s)")):
        axes[0].loglog(x, [r[key] for r in ok], "o-", label=label)
    axes[1].loglog(x, [r["peak_rss_mib"] / 1024 for r in ok], "o-", color="C2", label="peak RSS (GiB)")
    for ax in axes:
        ax.axvline(fit_from, color="grey", lw=0.5, ls=":")
        ax.set_xlabel("interactions + triples")
        ax.grid(True, which="both", lw=0.3)
        ax.legend()
    axes[0].set_title("time")
    axes[1].set_title("memory")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(rows: list[dict], args, params: dict) -> Path:
    """Write ``<out>/<name>.{json,md,png}`` from the rows so far; returns the Markdown path."""
    ok = [r for r in rows if r["status"] == "ok"]
    fit = [r for r in ok if r["size"] >= args.fit_from]
    x = [r["size"] for r in fit]
    exps = {k: slope(x, [r[k] for r in fit]) for k in ("load_s", "epoch_s", "peak_rss_mib")}
    largest = max((r["size"] for r in ok), default=None)
    mach = machine()
    stopped = [r for r in rows if r["status"] != "ok"]
    exp_text = ", ".join(f"{k} **{v:.2f}**" for k, v in exps.items() if v is not None) or "n/a"
    text = (f"Synthetic graphs (`kgrec.data.synthetic`, seed {args.seed}; size = triples in the file + "
            f"interactions), each size in a fresh subprocess. `epoch_s` is `Recommender({args.model!r}, "
            f"epochs=1, {', '.join(f'{k}={v!r}' for k, v in params.items())}).fit` on a random split (one "
            f"epoch + one validation pass with full ranking). `load s` is `kgrec.load` of the uncompressed "
            f"N-Triples file. Growth exponents (log-log slope against size, sizes >= {args.fit_from:.0e}, "
            f"{len(fit)} points): {exp_text}.\n\nLargest size that trained: "
            + (f"**{largest:,}** interactions + triples" if largest else "none"))
    text += (f" (RSS limit {args.max_rss_gib:g} GiB on a "
             f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f}"
             f" GiB machine)." + "".join(f" Size {r['size']:.0e}: {r['status']}." for r in stopped))
    if any("commit" in r for r in rows):
        text += " Combined from several runs (`--combine`): each row names the commit it ran at."
    text += (f"\n\nMachine: {mach['cpu']} ({mach['cpu_count']} cores, shared), OMP_NUM_THREADS="
             f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, commit {mach['commit']}, {mach['date']}.\n\n"
             f"![scale curve]({args.name}.png)")
    cols = {"size": "interactions + triples", "triples": "triples", "interactions": "interactions",
            "users": "users", "items": "items", "load_s": "load s", "epoch_s": "1 epoch s",
            "load_peak_rss_mib": "peak RSS after load MiB", "peak_rss_mib": "peak RSS MiB", "status": "status"}
    if any("commit" in r for r in rows):
        cols["commit"] = "commit"
    payload = {"machine": mach, "model": args.model, "params": params, "rows": rows, "growth_exponent": exps,
               "fit_from": args.fit_from, "largest_trained_size": largest, "max_rss_gib": args.max_rss_gib,
               "seed": args.seed}
    _, md = write_results(args.out, args.name, payload, rows, cols, title="Scale curve (synthetic)", text=text,
                          floatfmt=".2f")
    if ok:
        plot(rows, Path(args.out) / f"{args.name}.png", args.fit_from)
    return Path(md)


def combine_rows(files: list[Path], args) -> tuple[list[dict], dict]:
    """Rows of several scale result files, sorted by size, each tagged with its file's commit. A row
    that did not finish is dropped when another file has a finished size within a factor of 1.5.
    """
    rows, params = [], None
    for f in files:
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"scale.py: error: '--combine': cannot read {f}: {e}")
        if params is not None and (d["params"] != params or d["model"] != args.model):
            raise SystemExit(f"scale.py: error: '--combine': {f} used {d['model']} {d['params']}, "
                             f"not {args.model} {params}")
        params = d["params"]
        rows += [dict(r, commit=d["machine"]["commit"][:7]) for r in d["rows"]]
    ok = [r["size"] for r in rows if r["status"] == "ok"]
    rows = [r for r in rows if r["status"] == "ok" or not any(r["size"] / 1.5 <= o <= r["size"] * 1.5 for o in ok)]
    return sorted(rows, key=lambda r: r["size"]), params


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1e5,3e5,1e6,3e6,1e7",
                    help="comma-separated approximate interactions + triples (1e6 style accepted)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="lightgcn", help="model trained for one epoch (default lightgcn)")
    ap.add_argument("--param", metavar="KEY=VALUE", type=parse_param, action="append", default=[],
                    help=f"model parameter, typed as in `kgrec train` (defaults {DEFAULT_PARAMS}); repeatable")
    ap.add_argument("--fit-from", type=float, default=1e6, help="sizes >= this enter the growth exponents")
    ap.add_argument("--max-rss-gib", type=float, default=20.0, help="stop a size whose RSS passes this")
    ap.add_argument("--max-seconds", type=float, default=1200.0, help="stop a size that runs longer")
    ap.add_argument("--tmp", default=tempfile.gettempdir(), help="folder for the generated files")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for scale.{json,md,png}")
    ap.add_argument("--name", default="scale", help="file stem of the results")
    ap.add_argument("--combine", metavar="JSON,JSON", default=None,
                    help="no run: one curve from the rows of earlier result files (same model and params), "
                         "e.g. a curve and a later run of a size that hit --max-seconds; each row keeps its commit")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--params-json", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.seed, args.model, json.loads(args.params_json), args.tmp)))
        return 0
    if args.combine:
        rows, params = combine_rows([Path(f) for f in args.combine.split(",") if f.strip()], args)
        print(Path(report(rows, args, params)).read_text())
        return 0
    try:
        sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        ap.error(f"'--sizes' must be comma-separated numbers such as 1e5,1e6 (got {args.sizes!r})")
    import kgrec

    defaults = kgrec.Recommender.params_of(args.model)
    params = {k: v for k, v in DEFAULT_PARAMS.items() if k in defaults} if args.model == "lightgcn" else {}
    params.update(_typed_params(args.param, defaults, f"model {args.model!r}"))

    rows = []
    for n in sizes:
        if rows and rows[-1]["status"] != "ok":
            rows.append({"size": n, "status": f"skipped (a smaller size {rows[-1]['status'].split(':')[0]})"})
        else:
            rows.append(run_size(n, args, params))
        print(rows[-1], flush=True)
        report(rows, args, params)  # after every size, so a stopped run keeps what it measured
    md = report(rows, args, params)
    print(Path(md).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
