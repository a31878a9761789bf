"""``kgrec benchmark``: the benchmark suite (datasets x splits x models), as ``benchmarks/run.py`` runs it."""

from __future__ import annotations

from kgrec import bench
from kgrec.cli.common import Formatter


def run(args) -> int:
    return bench.run(args, prog="kgrec")


def add_parser(sub, models: str) -> None:
    """The ``kgrec benchmark`` sub-command's options (the suite's own: :func:`kgrec.bench.add_arguments`)."""
    p = sub.add_parser(
        "benchmark", formatter_class=Formatter, help="run the benchmark suite: datasets x splits x models",
        description="Convert each dataset to RDF, load it with kgrec.load, fit every model on every split and "
                    "write <out>/<dataset>/<split>.{json,md,png} and RESULTS.md (same as benchmarks/run.py).",
        epilog="examples:\n  kgrec benchmark --quick --datasets lastfm --models mostpop,ease,cke\n"
               "  kgrec benchmark --data-root ../shared/data --jobs 4")
    bench.add_arguments(p)
    p.set_defaults(func=run)
