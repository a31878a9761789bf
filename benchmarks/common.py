"""Shared helpers of the benchmark scripts: machine facts, data loading with a cache, aggregation.

``machine`` and ``load_dataset`` live in ``suite.py`` (the suite behind ``benchmarks/run.py`` and
``kgrec benchmark``) and are re-exported here for the single-purpose scripts.

Importing this module puts the checkout's own kgrec first on ``sys.path`` (and refuses to go on
when another kgrec was imported already). Benchmarks use kgrec's public API only (``kgrec.load``,
``kgrec.split``, ``kgrec.Recommender``) plus ``kgrec.data.convert`` to turn the original dataset
files into RDF once.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# this checkout first, before any installed kgrec (an editable install of another checkout, say):
# every script imports this module before kgrec (ruff's isort section "checkout"), so the code that
# runs is the code whose commit the results name
if str(ROOT) in sys.path:
    sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))

import kgrec  # noqa: E402
from kgrec.reports.tables import write_results as _write_results  # noqa: E402


def check_checkout(module=kgrec, root: Path = ROOT) -> None:
    """Refuse to measure a kgrec that is not this checkout's (it was imported before this module)."""
    where = Path(module.__file__).resolve().parent.parent
    if where != root:
        raise SystemExit(f"benchmarks: kgrec was imported from '{where}', not from this checkout ('{root}'): the "
                         "results would name a commit whose code did not run; import common before kgrec")


check_checkout()

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


def add_output_arguments(p) -> None:
    """``--threads``, ``--out-dir`` and ``--allow-dirty``: the options every per-dataset protocol script shares."""
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--allow-dirty", action="store_true",
                   help="write results from a tree with uncommitted changes (the tables then say so)")


def run_datasets(p, argv: list[str] | None, run_dataset) -> int:
    """Parse ``argv``, set the torch threads and call ``run_dataset(name, args, argv)`` for each of
    ``--datasets``; a :class:`kgrec.errors.KgrecError` becomes the parser's error message.
    """
    import torch

    from kgrec.errors import KgrecError

    args = p.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    try:
        for name in args.datasets.split(","):
            run_dataset(name, args, argv)
    except KgrecError as e:
        p.error(str(e))
    return 0

