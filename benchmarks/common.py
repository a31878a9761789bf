"""Shared helpers of the benchmark scripts: machine facts, data loading with a cache, aggregation, plots.

Benchmarks use kgrec's public API only (``kgrec.load``, ``kgrec.split``, ``kgrec.Recommender``) plus
``kgrec.data.convert`` to turn the original dataset files into RDF once.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import kgrec  # noqa: E402
from kgrec.data.graph import KnowledgeGraph  # noqa: E402

DEFAULT_DATA_ROOT = os.environ.get("KGREC_DATA_ROOT", str(ROOT.parent / "shared" / "data"))
DEFAULT_CACHE = os.environ.get("KGREC_BENCH_CACHE", str(ROOT / ".cache" / "bench"))


def machine() -> dict:
    """Where a figure was measured: CPU model, threads, GPU, versions, commit."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit, dirty = os.environ.get("KGREC_COMMIT", ""), False  # a copy without .git (a GPU machine) says it
    if not commit:
        try:
            commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                    text=True).stdout.strip() or "unknown"
            dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                        capture_output=True, text=True).stdout.strip())
        except OSError:
            commit = "unknown"
    import torch_geometric
    import transformers

    return {
        "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__, "transformers": transformers.__version__,
        "kgrec": kgrec.__version__, "commit": commit + ("+dirty" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def load_dataset(name: str, data_root: str, cache: str) -> KnowledgeGraph:
    """Convert the original files to RDF once, load them through ``kgrec.load``, cache the graph."""
    from kgrec.data.convert import convert

    cache_dir = Path(cache) / name
    graph_dir = cache_dir / "graph"
    if (graph_dir / "graph.json").is_file():
        return KnowledgeGraph.load(graph_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    rdf = cache_dir / f"{name}.nt.gz"
    t0 = time.perf_counter()
    counts = convert(name, data_root, rdf)
    t1 = time.perf_counter()
    kg = kgrec.load(rdf)
    print(f"[{name}] converted to RDF in {t1 - t0:.1f} s ({counts.get('triples')} triples), "
          f"loaded in {time.perf_counter() - t1:.1f} s: {kg}", file=sys.stderr)
    kg.save(graph_dir)
    return kg


def mean_std(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None]
    if not vals:
        return float("nan"), float("nan")
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def fmt_pm(mean: float, std: float) -> str:
    return f"{mean:.4f} ± {std:.4f}"
