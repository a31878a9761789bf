r"""Convert the public benchmark datasets to kgrec RDF (``<out>/<name>.nt.gz``) and print counts.

Usage::

    python benchmarks/convert_datasets.py --data-root ../shared/data --out .cache/kgrec-data \\
        --datasets movielens-100k lastfm

The datasets are not shipped with kgrec: download each from its publisher into
``<data-root>/<folder>`` (folders: see ``kgrec.data.convert.CONVERTERS``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

try:
    from kgrec.data.convert import CONVERTERS, convert
    from kgrec.errors import KgrecError
except ModuleNotFoundError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from kgrec.data.convert import CONVERTERS, convert
    from kgrec.errors import KgrecError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-root", default=os.environ.get("KGREC_DATA_ROOT", "../shared/data"),
                        help="folder holding the dataset folders (default: $KGREC_DATA_ROOT or ../shared/data)")
    parser.add_argument("--out", default=".cache/kgrec-data", help="output folder (default: .cache/kgrec-data)")
    parser.add_argument("--datasets", nargs="+", choices=sorted(CONVERTERS), default=list(CONVERTERS),
                        metavar="NAME", help=f"datasets to convert (default: all of {', '.join(CONVERTERS)})")
    parser.add_argument("--lastfm-linked-only", action="store_true",
                        help="Last.fm: keep only artists with a KG entity, as KGCN does")
    parser.add_argument("--tags", action="store_true",
                        help="MovieLens latest-small: also write the user tags as item kgr:tag edges. Off by "
                             "default: a tag says who met which item, so it leaks held-out interactions (and "
                             "the future) into random / temporal evaluations")
    # the former opt-out, now the default; still accepted
    parser.add_argument("--no-tags", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tags and args.no_tags:
        parser.error("--tags and --no-tags exclude each other")

    extra = {"lastfm": {"linked_only": args.lastfm_linked_only},
             "movielens-small": {"tags": args.tags}}
    out_dir = Path(args.out)
    for name in args.datasets:
        out = out_dir / f"{name}.nt.gz"
        start = time.perf_counter()
        try:
            counts = convert(name, args.data_root, out, **extra.get(name, {}))
        except KgrecError as exc:
            print(f"{name}: error: {exc}", file=sys.stderr)
            return 2
        seconds = time.perf_counter() - start
        print(f"{name}: {out} ({out.stat().st_size / 1e6:.1f} MB, {seconds:.1f} s)")
        print(json.dumps(counts, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
