"""Rewrite absolute machine paths in committed result files as paths relative to the repository.

Result files written before :func:`kgrec.reports.tables.write_results` made paths relative recorded where
they ran (``/work/<checkout>/...``, the data root, temporary caches). This rewrites each such path
relative to the repository root (:func:`kgrec.reports.tables.relative_paths`), so no table names a
machine's folders; figures are untouched. Run from the repository root::

    python benchmarks/relative_paths.py            # README.md, benchmarks/RESULTS.md, benchmarks/results/**
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kgrec.reports.tables import atomic_write_text, relative_paths  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", help="files to rewrite (default: the README and every result file)")
    args = p.parse_args(argv)
    files = [Path(f) for f in args.files] or [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md",
                                              *sorted((ROOT / "benchmarks" / "results").rglob("*.json")),
                                              *sorted((ROOT / "benchmarks" / "results").rglob("*.md"))]
    changed = 0
    for f in files:
        text = f.read_text(encoding="utf-8")
        new = relative_paths(text, ROOT)
        if new != text:
            atomic_write_text(f, new)
            changed += 1
    print(f"{changed} of {len(files)} files rewritten", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
