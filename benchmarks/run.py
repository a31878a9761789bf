"""Every dataset, every baseline and peer side by side: one command, tables and plots.

A thin entry point over ``benchmarks/suite.py`` (the same code as ``kgrec benchmark``). Examples::

    # smoke run on all four datasets (minutes; not headline figures)
    python benchmarks/run.py --quick --threads 1
    # the full run: 3 seeds, full grids, early stopping with patience 10
    python benchmarks/run.py --jobs 4 --threads 4

Writes ``benchmarks/results/<dataset>/<split>.{json,md,png}`` and ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from suite import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
