"""Forward+backward time and memory of each KGEncoder convolution on a MovieLens-100K-sized CKG.

The graph is synthetic but shaped like MovieLens-100K's collaborative KG (943 users, 1,682 items,
attribute entities up to 25,000 nodes, 46 KG relations -> 92 edge types with inverses, plus the two
user-item types = 94, about 190,000 KG edges and 160,000 user-item edges), with Zipf-skewed
relation, entity, user and item frequencies as in real data. PyG's ``RGCNConv`` (which loops over
relations without pyg-lib) runs as a reference for the hand-written R-GCN.

Each measurement runs in its own subprocess so that its peak resident memory is its own, and the
``--repeats`` rounds interleave the configurations (round-robin, order rotated each round) so
that a burst of load from other processes does not land on one configuration only. Reported per
configuration: forward+backward milliseconds (median and min over all timed runs; each round
times ``--runs`` runs after a warm-up run; ratios use the min, the least disturbed by other
load), eval-mode forward milliseconds, MB of distinct tensors saved for
backward (deterministic), and the peak RSS growth during the runs (allocator dependent). The CPU
is shared with other work, so compare the ratio columns rather than absolute times.

Usage::

    python benchmarks/kg_encoder_speed.py                 # full size, writes benchmarks/results/
    python benchmarks/kg_encoder_speed.py --nodes 2000 --kg-edges 8000 --ui-edges 6000 --in-process
    python benchmarks/kg_encoder_speed.py --kg-dir .cache/bench/movielens-100k/graph --out-name kg_encoder_speed_ml100k
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from kgrec.nn.kg_encoder import KGEncoder  # noqa: E402

#: name -> KGEncoder kwargs (``pyg_rgcn`` is the PyG reference, not a KGEncoder). ``prepared``:
#: the graph's index structures are built once by ``KGEncoder.prepare_graph`` outside the timed
#: region, as a trainer without edge dropout does; otherwise every forward builds them.
CONFIGS: dict[str, dict] = {
    "compgcn": {"conv": "compgcn", "comp": "sub"},
    "compgcn_mult": {"conv": "compgcn", "comp": "mult"},
    "rgcn": {"conv": "rgcn"},
    "rgcn_b8": {"conv": "rgcn", "num_bases": 8},
    "kgat": {"conv": "kgat"},
    "pyg_rgcn": {"conv": "pyg_rgcn"},
    "compgcn_prepared": {"conv": "compgcn", "comp": "sub", "prepared": True},
    "rgcn_prepared": {"conv": "rgcn", "prepared": True},
    "compgcn_prepared_targets": {"conv": "compgcn", "comp": "sub", "prepared": True, "targets": True},
    "rgcn_prepared_targets": {"conv": "rgcn", "prepared": True, "targets": True},
}
#: ``targets``: the forward asks only for the rows the hybrid scores with (items, then users), so
#: the last layer skips the attribute entities (``KGEncoder.forward(targets=)``); the loss is the
#: same function of those rows in both, so compare with the same config without ``targets``.
BASELINE = "compgcn"


def synthetic_ckg(nodes: int, users: int, items: int, relations: int, kg_edges: int,
                  ui_edges: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A collaborative KG laid out like :func:`kgrec.data.graph.collaborative_edges`.

    Nodes: entities (items first) then users; types ``2r``/``2r+1`` for the ``relations // 2 - 1``
    KG relations and their inverses, then user->item and item->user.
    """
    rng = np.random.default_rng(seed)
    n_ent = nodes - users
    n_attr = n_ent - items
    n_kg_rel = relations // 2 - 1

    def zipf_choice(n: int, size: int, a: float = 1.1) -> np.ndarray:
        p = 1.0 / np.arange(1, n + 1) ** a
        return rng.choice(n, size=size, p=p / p.sum())

    n_triples = kg_edges // 2
    # Most triples are item -> attribute; a fifth link attribute entities among themselves.
    from_item = rng.random(n_triples) < 0.8
    head = np.where(from_item, rng.integers(0, items, n_triples),
                    items + zipf_choice(n_attr, n_triples))
    tail = items + rng.permutation(n_attr)[zipf_choice(n_attr, n_triples)]
    rel = zipf_choice(n_kg_rel, n_triples, a=1.0)
    n_inter = ui_edges // 2
    user = n_ent + zipf_choice(users, n_inter, a=0.6)
    item = zipf_choice(items, n_inter, a=0.8)
    src = np.concatenate([head, tail, user, item])
    dst = np.concatenate([tail, head, item, user])
    etype = np.concatenate([2 * rel, 2 * rel + 1,
                            np.full(n_inter, 2 * n_kg_rel), np.full(n_inter, 2 * n_kg_rel + 1)])
    return torch.from_numpy(np.stack([src, dst])).long(), torch.from_numpy(etype).long()


class _PygRGCN(torch.nn.Module):
    """PyG ``RGCNConv`` stacked with the same ReLU and layer-mean as ``KGEncoder(conv='rgcn')``."""

    def __init__(self, num_relations: int, dim: int, num_layers: int, num_bases: int | None = None):
        super().__init__()
        from torch_geometric.nn import RGCNConv

        self.convs = torch.nn.ModuleList(
            [RGCNConv(dim, dim, num_relations, num_bases=num_bases) for _ in range(num_layers)])

    def forward(self, x, edge_index, edge_type):
        total, h = x, x
        for conv in self.convs:
            h = torch.relu(conv(h, edge_index, edge_type))
            total = total + h
        return total / (len(self.convs) + 1)


def build_model(name: str, num_relations: int, dim: int, layers: int) -> torch.nn.Module:
    kw = dict(CONFIGS[name])
    kw.pop("prepared", None)
    kw.pop("targets", None)
    if kw["conv"] == "pyg_rgcn":
        return _PygRGCN(num_relations, dim, layers, kw.get("num_bases"))
    return KGEncoder(num_relations, dim, num_layers=layers, **kw)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _saved_bytes(model, x, edge_index, edge_type, **kw) -> int:
    """Bytes of distinct storages autograd keeps for backward (parameters included)."""
    seen: dict[int, int] = {}

    def pack(t):
        parts = (t._indices(), t._values()) if t.layout == torch.sparse_coo else (t,)
        for p in parts:
            s = p.untyped_storage()
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x, edge_index, edge_type, **kw)
    del out
    return sum(seen.values())


def scored_nodes(graph: dict) -> torch.Tensor:
    """The nodes the hybrid reads from the encoder's output: items ``[0, I)``, users (the last ``U``)."""
    n, i, u = graph["nodes"], graph["items"], graph["users"]
    return torch.cat([torch.arange(i), torch.arange(n - u, n)])


def load_graph(args) -> tuple[torch.Tensor, torch.Tensor, int, int, dict]:
    """``(edge_index, edge_type, num_nodes, num_edge_types, description)`` of the benchmark graph."""
    if args.kg_dir is None:
        ei, et = synthetic_ckg(args.nodes, args.users, args.items, args.relations, args.kg_edges,
                               args.ui_edges, args.seed)
        ui = int((et >= args.relations - 2).sum())
        return ei, et, args.nodes, args.relations, {
            "source": "synthetic", "nodes": args.nodes, "users": args.users, "items": args.items,
            "relations": args.relations, "edges": int(ei.size(1)), "kg_edges": int(ei.size(1)) - ui,
            "ui_edges": ui}
    from kgrec.data.graph import KnowledgeGraph, collaborative_edges

    kg = KnowledgeGraph.load(args.kg_dir)
    ei, et, n, r = collaborative_edges(kg, kg.interactions)
    ui = int((et >= r - 2).sum())
    return ei, et, n, r, {
        "source": str(args.kg_dir), "nodes": n, "users": kg.num_users, "items": kg.num_items,
        "relations": r, "edges": int(ei.size(1)), "kg_edges": int(ei.size(1)) - ui, "ui_edges": ui}


def measure(name: str, args, runs: int, threads: int) -> dict:
    """Time and memory of one configuration, in this process: a warm-up, then ``runs`` timed runs."""
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    edge_index, edge_type, num_nodes, num_relations, graph = load_graph(args)
    model = build_model(name, num_relations, args.dim, args.layers)
    x = torch.randn(num_nodes, args.dim, requires_grad=True)
    n_params = sum(p.numel() for p in model.parameters())
    kw, prepare_ms = {}, None
    scored = scored_nodes(graph)
    if CONFIGS[name].get("targets"):
        kw["targets"] = scored
    if CONFIGS[name].get("prepared"):
        t0 = time.perf_counter()
        kw["graph"] = model.prepare_graph(edge_index, edge_type, num_nodes, targets=kw.get("targets"))
        prepare_ms = (time.perf_counter() - t0) * 1e3
    saved = _saved_bytes(model, x, edge_index, edge_type, **kw)

    rss0 = _rss_bytes()
    times, cpu_times = [], []
    for i in range(runs + 1):  # run 0 is the warm-up
        model.zero_grad(set_to_none=True)
        x.grad = None
        t0, c0 = time.perf_counter(), time.process_time()
        out = model(x, edge_index, edge_type, **kw)
        (out if "targets" in kw else out[scored]).square().mean().backward()  # the scored rows' loss
        if i:
            times.append((time.perf_counter() - t0) * 1e3)
            cpu_times.append((time.process_time() - c0) * 1e3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    model.eval()
    eval_times = []
    with torch.no_grad():
        for i in range(runs + 1):
            t0 = time.perf_counter()
            model(x, edge_index, edge_type, **kw)
            if i:
                eval_times.append((time.perf_counter() - t0) * 1e3)
    return {
        "name": name, "threads": threads, "config": CONFIGS[name], "params": n_params,
        "fwd_bwd_ms": times, "fwd_bwd_cpu_ms": cpu_times, "eval_fwd_ms": eval_times,
        "prepare_ms": prepare_ms,
        "saved_for_backward_mb": saved / 2**20,
        "peak_rss_growth_mb": [max(peak - rss0, 0) / 2**20],
    }


def _summarise(runs: list[dict]) -> dict:
    r = dict(runs[0])
    for k in ("fwd_bwd_ms", "fwd_bwd_cpu_ms", "eval_fwd_ms", "peak_rss_growth_mb"):
        r[k] = [v for run in runs for v in run[k]]
    r["fwd_bwd_ms_median"] = statistics.median(r["fwd_bwd_ms"])
    r["fwd_bwd_ms_min"] = min(r["fwd_bwd_ms"])
    r["fwd_bwd_cpu_ms_min"] = min(r["fwd_bwd_cpu_ms"])
    r["eval_fwd_ms_median"] = statistics.median(r["eval_fwd_ms"])
    rss = [v for v in r["peak_rss_growth_mb"] if v is not None]
    r["peak_rss_growth_mb_median"] = statistics.median(rss) if rss else None
    return r


def _worker_args(args) -> list[str]:
    keys = ("nodes", "users", "items", "relations", "kg_edges", "ui_edges", "dim", "layers",
            "runs", "seed")
    out = []
    for k in keys:
        out += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
    if args.kg_dir is not None:
        out += ["--kg-dir", str(args.kg_dir)]
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        return res.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no commit yet)"


def to_markdown(report: dict) -> str:
    g = report["graph"]
    lines = [
        "# KGEncoder convolution speed (forward + backward)",
        "",
        f"Commit `{report['commit']}`; CPU {report['cpu']} ({os.cpu_count()} cores, shared with "
        f"other jobs: compare ratios); torch {report['torch']}, torch_geometric "
        f"{report['torch_geometric']}. Load average (1 min) at start / end: "
        f"{report['load_average_start'][0]:.1f} / {report['load_average_end'][0]:.1f}.",
        "",
        f"{'Synthetic CKG' if g['source'] == 'synthetic' else 'CKG of ' + g['source']}: "
        f"{g['nodes']:,} nodes, {g['edges']:,} edges "
        f"({g['kg_edges']:,} KG + {g['ui_edges']:,} user-item), {g['relations']} edge types, "
        f"dim {report['dim']}, {report['layers']} layers. {report['repeats']} interleaved rounds, "
        f"each a fresh process timing {report['runs']} runs after a warm-up. Ratios use the min "
        f"wall time (least disturbed by other load); CPU ms is process time (all threads).",
    ]
    for threads in report["threads"]:
        res = [r for r in report["results"] if r["threads"] == threads]
        base = next((r for r in res if r["name"] == BASELINE), res[0])
        lines += [
            "",
            f"## {threads} thread{'s' if threads > 1 else ''}",
            "",
            f"| conv | params | fwd+bwd ms median | min | min x {base['name']} | CPU ms min | "
            f"eval fwd ms median | saved for bwd MB | x {base['name']} | peak RSS growth MB | prepare ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in res:
            rss = r.get("peak_rss_growth_mb_median")
            rss = f"{rss:.0f}" if rss is not None else "n/a"
            prep = f"{r['prepare_ms']:.0f}" if r.get("prepare_ms") is not None else "-"
            lines.append(
                f"| {r['name']} | {r['params']:,} | {r['fwd_bwd_ms_median']:.1f} | {r['fwd_bwd_ms_min']:.1f} | "
                f"{r['fwd_bwd_ms_min'] / base['fwd_bwd_ms_min']:.2f} | {r['fwd_bwd_cpu_ms_min']:.1f} | "
                f"{r['eval_fwd_ms_median']:.1f} | {r['saved_for_backward_mb']:.1f} | "
                f"{r['saved_for_backward_mb'] / base['saved_for_backward_mb']:.2f} | {rss} | {prep} |")
    names = {r["name"] for r in report["results"]}
    lines += ["", "Configs: " + "; ".join(f"`{k}` = {v}" for k, v in CONFIGS.items() if k in names), ""]
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=25_000)
    p.add_argument("--users", type=int, default=943)
    p.add_argument("--items", type=int, default=1_682)
    p.add_argument("--relations", type=int, default=94, help="edge types incl. inverses and the 2 user-item types")
    p.add_argument("--kg-edges", type=int, default=190_000, help="KG edges incl. inverses")
    p.add_argument("--ui-edges", type=int, default=160_000, help="user-item edges incl. item->user")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (fresh process each)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per round, after one warm-up")
    p.add_argument("--threads", type=int, nargs="+", default=[2], help="torch.set_num_threads values to try")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kg-dir", type=Path, default=None,
                   help="a saved KnowledgeGraph directory to use (all interactions) instead of the synthetic graph")
    p.add_argument("--out-name", default="kg_encoder_speed", help="file name (without suffix) of the results")
    p.add_argument("--convs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--in-process", action="store_true",
                   help="run every config in this process (fast; peak RSS then not reported)")
    p.add_argument("--worker", choices=list(CONFIGS), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args, runs=args.runs, threads=args.threads[0])))
        return {}
    load_start = list(os.getloadavg())
    jobs = [(name, t) for t in args.threads for name in args.convs]
    runs: dict[tuple[str, int], list[dict]] = {job: [] for job in jobs}
    if args.in_process:
        for name, t in jobs:
            r = measure(name, args, runs=args.repeats * args.runs, threads=t)
            r["peak_rss_growth_mb"] = [None]
            runs[name, t].append(r)
    else:
        for rnd in range(args.repeats):
            k = rnd % len(jobs)
            for name, t in jobs[k:] + jobs[:k]:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name,
                       "--threads", str(t), *_worker_args(args)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                print(f"round {rnd} {name:12s} {t} threads: fwd+bwd ms "
                      f"{[round(v, 1) for v in r['fwd_bwd_ms']]}", file=sys.stderr)
                runs[name, t].append(r)
    graph = load_graph(args)[4]
    import torch_geometric

    report = {
        "commit": _commit(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "threads": args.threads,
        "torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
        "python": platform.python_version(), "load_average_start": load_start,
        "load_average_end": list(os.getloadavg()), "dim": args.dim, "layers": args.layers,
        "repeats": args.repeats, "runs": args.runs,
        "graph": graph,
        "results": [_summarise(runs[job]) for job in jobs],
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{args.out_name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / f"{args.out_name}.md").write_text(to_markdown(report))
    return report


if __name__ == "__main__":
    main()
