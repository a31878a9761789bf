"""``kgrec benchmark``: the benchmark suite (datasets x splits x models) of a source checkout.

The suite is not part of the library: it lives in ``benchmarks/suite.py`` beside the other benchmark
scripts, because everything it does needs the checkout (it writes ``benchmarks/results`` and
``benchmarks/RESULTS.md`` and reads the shared data beside the repository). This command runs that
file, with the same arguments as ``python benchmarks/run.py``, when kgrec is installed from a checkout
(``pip install -e .``); elsewhere it says where the suite is instead of failing on an import.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from kgrec.cli.common import Formatter
from kgrec.errors import KgrecError

#: ``benchmarks/`` of the checkout this package was installed from (absent in a wheel install).
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def suite():
    """The checkout's ``benchmarks/suite.py`` as a module, or ``None`` outside a checkout.

    Imported by name with ``benchmarks/`` on ``sys.path``, as ``python benchmarks/run.py`` does, so the
    suite's own imports (``tuning``, ``common``) resolve the same way in both.
    """
    if not (BENCHMARKS / "suite.py").is_file():
        return None
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module("suite")


def run(args) -> int:
    bench = suite()
    if bench is None:
        raise KgrecError(f"the benchmark suite is part of the source checkout ('{BENCHMARKS / 'suite.py'}' "
                         "is missing): clone the repository, 'pip install -e .' there and run "
                         "'python benchmarks/run.py' or 'kgrec benchmark'")
    return bench.run(args, prog="kgrec")


def add_parser(sub, models: str) -> None:
    """The ``kgrec benchmark`` sub-command's options (the suite's own ``add_arguments``)."""
    p = sub.add_parser(
        "benchmark", formatter_class=Formatter, help="run the benchmark suite: datasets x splits x models",
        description="Convert each dataset to RDF, load it with kgrec.load, fit every model on every split and "
                    "write <out>/<dataset>/<split>.{json,md,png} and RESULTS.md (same as benchmarks/run.py; "
                    "needs a source checkout).",
        epilog="examples:\n  kgrec benchmark --quick --datasets lastfm --models mostpop,ease,cke\n"
               "  kgrec benchmark --data-root ../shared/data --jobs 4")
    bench = suite()
    if bench is not None:
        bench.add_arguments(p)
        p.set_defaults(func=run)
    else:  # accept any arguments: run() explains where the suite is
        p.set_defaults(func=run, any_arguments=True)
