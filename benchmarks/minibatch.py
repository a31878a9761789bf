"""LightGCN full-batch vs mini-batch on sampled subgraphs: epoch time, memory, test NDCG@10.

For each graph and mode a fresh subprocess loads the graph, splits it (random 80/10/10, seed 2020)
and fits ``Recommender("lightgcn", sampled=..., fanouts=...)`` with the same settings otherwise;
it reports the median training seconds per epoch (validation excluded), the RSS just before the
fit and the process's peak RSS (``ru_maxrss``; their difference is what training added), and test
NDCG@10 / Recall@20 at the selected epoch (scoring uses the exact full propagation in both modes).

Each child first times a few training steps (``step_profile``: seconds and added peak memory per
step, the quantity that sampling bounds), then fits when the graph has epochs to run.

Graphs: MovieLens-100K from the benchmark cache (``--cache``) and synthetic graphs
(:mod:`kgrec.data.synthetic`, ``--sizes``) generated once in a subprocess and kept as ``.npz``
(``kgrec.save_arrays``) so that the children do not parse RDF.

Usage::

    OMP_NUM_THREADS=1 flock /work/cpu.lock python benchmarks/minibatch.py   # writes benchmarks/results/
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from common import (
    DEFAULT_CACHE,
    DEFAULT_DATA_ROOT,
    ROOT,
    load_dataset,
    machine,
    write_results,
)

import kgrec


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def hwm_mib() -> float:
    """Peak RSS of this process image (``VmHWM``; unlike ``ru_maxrss`` not inherited across exec)."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024


def step_profile(kg, sp, params: dict, steps: int) -> dict:
    """Seconds and added peak RSS per training step, measured over ``steps`` steps after 2 warm-up steps.

    The step is the trainer's (:func:`kgrec.training.trainer.fit_pairwise`): BPR loss of a batch of training pairs
    with one sampled negative, backward, Adam. ``VmHWM`` is reset (``/proc/self/clear_refs``) after the
    warm-up, so the added peak is what a step needs beyond the model, graph and optimizer state.
    """
    import torch

    from kgrec.data.sampling import NegativeSampler

    est = kgrec.Recommender("lightgcn", **params).estimator
    est.prepare(kg, sp)
    torch.manual_seed(params["seed"])
    est.build()
    opt = torch.optim.Adam(est.param_groups(), lr=params["lr"])
    neg = NegativeSampler(sp.train, kg.num_items, seed=params["seed"])
    perm = torch.randperm(len(sp.train), generator=torch.Generator().manual_seed(0))
    B = params["batch_size"]

    def step(i: int) -> None:
        b = perm[(i * B) % len(perm):][:B]
        u, p = sp.train.user[b], sp.train.item[b]
        loss = est.batch_loss(u, p, neg.sample(u, 1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(0)
    step(1)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = rss_mib()
    t0 = time.perf_counter()
    for i in range(steps):
        step(2 + i)
    sec = (time.perf_counter() - t0) / steps
    return {"step_s": sec, "step_added_mib": hwm_mib() - base, "steps_per_epoch": -(-len(sp.train) // B),
            "epoch_s_from_steps": sec * -(-len(sp.train) // B)}


def child(spec: dict) -> dict:
    if spec["graph"] == "movielens-100k":
        kg = load_dataset("movielens-100k", spec["data_root"], spec["cache"])
    else:
        kg = kgrec.load_arrays(spec["graph"])
    sp = kgrec.split(kg, "random", seed=2020)
    params = dict(epochs=spec["epochs"], patience=spec["patience"], lr=5e-3, dim=64, batch_size=spec["batch_size"],
                  seed=spec["seed"], sampled=spec["mode"] == "sampled", fanouts=spec["fanouts"])
    out = {"users": kg.num_users, "items": kg.num_items, "train": len(sp.train),
           **step_profile(kg, sp, params, spec["steps"])}
    if not spec["epochs"]:
        return out
    rss0 = rss_mib()
    t0 = time.perf_counter()
    rec = kgrec.Recommender("lightgcn", **params).fit(kg, sp)
    fit_s = time.perf_counter() - t0
    peak = hwm_mib()
    m = rec.evaluate(sp, ks=(10, 20))
    info = rec.fit_info
    return {**out, "epoch_s": info["seconds_per_epoch_median"],
            "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"], "fit_s": fit_s,
            "rss_before_fit_mib": rss0, "peak_rss_mib": peak, "fit_added_mib": peak - rss0,
            "test_ndcg@10": m["ndcg@10"], "test_recall@20": m["recall@20"]}


def make_graph(users: int, items: int, npz: Path) -> None:
    from kgrec.data.synthetic import generate

    nt = npz.with_suffix(".nt.gz")
    generate(nt, users=users, items=items, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kgrec.save_arrays(kgrec.load(nt), npz)
    nt.unlink()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000x10000;60000x30000",
                    help="synthetic graphs USERSxITEMS; the first is fitted, the others only step-timed")
    ap.add_argument("--epochs-ml", type=int, default=20, help="max epochs on MovieLens-100K")
    ap.add_argument("--epochs-large", type=int, default=1, help="epochs on the first synthetic graph")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps per graph and mode")
    ap.add_argument("--fanouts", default="10,5,5")
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "kgrec-minibatch"),
                    help="folder for the generated graph")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--generate", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    if args.generate:
        users, items, path = args.generate.split(",")
        make_graph(int(users), int(items), Path(path))
        return 0
    fanouts = [int(f) for f in args.fanouts.split(",")]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    graphs = [("movielens-100k", "MovieLens-100K", args.epochs_ml)]
    for i, size in enumerate(s for s in args.sizes.split(";") if s.strip()):
        users, items = (int(v) for v in size.split("x"))
        npz = work / f"synthetic-{users}-{items}.npz"
        if not npz.is_file():  # in a subprocess: parsing must not inflate this process's memory
            subprocess.run([sys.executable, __file__, "--generate", f"{users},{items},{npz}"], check=True, cwd=ROOT,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        graphs.append((str(npz), f"synthetic {users}x{items}", args.epochs_large if i == 0 else 0))
    rows = []
    for graph, name, epochs in graphs:
        for mode in ("full", "sampled"):
            spec = {"graph": graph, "mode": mode, "epochs": epochs, "patience": 5, "fanouts": fanouts,
                    "batch_size": args.batch_size, "seed": args.seed, "data_root": args.data_root, "cache": args.cache,
                    "steps": args.steps}
            res = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                 text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if res.returncode != 0:
                raise SystemExit(f"{name} {mode} failed:\n{res.stderr[-3000:]}")
            row = {"graph": name, "mode": mode, **json.loads(res.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(row, flush=True)
    for r in rows:
        full = next(f for f in rows if f["graph"] == r["graph"] and f["mode"] == "full")
        r["step_speedup"] = full["step_s"] / r["step_s"]
    mach = machine()
    text = ("`Recommender('lightgcn', dim=64, num_layers=3, lr=5e-3, batch_size=%d)`; `sampled` adds "
            "`sampled=True, fanouts=%s`. Max epochs: %d on MovieLens-100K (patience 5), %d on the synthetic "
            "graph, none on the larger ones (step timing only; `epoch s est.` = step s x steps per epoch); `epoch s` = "
            "median training seconds per epoch (validation excluded); `fit added` = peak RSS (`VmHWM`) minus RSS "
            "before the fit; `step s` / `step added MiB` = mean seconds and added peak RSS of one training step "
            "(%d timed steps after 2 warm-up steps, `VmHWM` reset). Each row in a fresh subprocess.\n\nMachine: %s "
            "(%s cores, shared), OMP_NUM_THREADS=1, commit %s, %s." % (args.batch_size, fanouts, args.epochs_ml,
                                                                       args.epochs_large, args.steps,
                                                   mach["cpu"], mach["cpu_count"], mach["commit"], mach["date"]))
    cols = {"graph": "graph", "mode": "mode", "train": "train pairs", "step_s": "step s",
            "step_speedup": "step speed-up", "step_added_mib": "step added MiB",
            "epoch_s_from_steps": "epoch s est.", "epoch_s": "epoch s", "epochs_run": "epochs",
            "best_epoch": "best", "peak_rss_mib": "peak RSS MiB", "fit_added_mib": "fit added MiB",
            "test_ndcg@10": "test NDCG@10", "test_recall@20": "test Recall@20"}
    _, md = write_results(args.out, "minibatch", {"machine": mach, "args": vars(args), "rows": rows}, rows, cols,
                          title="LightGCN: full-batch vs sampled mini-batch", text=text, floatfmt=".3f")
    print(Path(md).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
