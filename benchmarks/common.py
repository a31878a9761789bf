"""Shared helpers of the benchmark scripts: machine facts, data loading with a cache, aggregation.

``machine`` and ``load_dataset`` live in ``suite.py`` (the suite behind ``benchmarks/run.py`` and
``kgrec benchmark``) and are re-exported here for the single-purpose scripts.

Benchmarks use kgrec's public API only (``kgrec.load``, ``kgrec.split``, ``kgrec.Recommender``) plus
``kgrec.data.convert`` to turn the original dataset files into RDF once.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from kgrec.reports.tables import write_results as _write_results  # noqa: E402

from suite import DEFAULT_CACHE, DEFAULT_DATA_ROOT, load_dataset, machine  # noqa: E402,F401


def write_results(*args, **kwargs):
    """:func:`kgrec.reports.tables.write_results` with paths written relative to the repository."""
    return _write_results(*args, relative_to=ROOT, **kwargs)


def mean_std(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None]
    if not vals:
        return float("nan"), float("nan")
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def fmt_pm(mean: float, std: float) -> str:
    return f"{mean:.4f} ± {std:.4f}"
