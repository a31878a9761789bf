"""``kgrec convert``: a public dataset as its publisher ships it -> kgrec N-Triples."""

from __future__ import annotations

import inspect
import time
from pathlib import Path

from kgrec.cli.common import Formatter, log, parse_param, typed_params
from kgrec.data.convert import CONVERTERS
from kgrec.errors import KgrecError
from kgrec.reports.tables import markdown_table


def run(args) -> int:
    from kgrec.data import convert as conv

    folder, fn = conv.CONVERTERS[args.dataset]
    root = Path(args.data_root)
    src = root / folder if (root / folder).is_dir() else root
    if not src.is_dir():
        raise KgrecError(f"'--data-root' must be a folder holding '{folder}/' or the {args.dataset} files "
                         f"themselves (got '{root}')")
    accepted = {name: p.default for name, p in inspect.signature(fn).parameters.items()
                if name not in ("root", "out")}
    pairs = args.param or []
    unknown = sorted({k for k, _ in pairs} - set(accepted))
    if unknown:
        raise KgrecError(f"unknown parameter(s) {', '.join(repr(u) for u in unknown)} for dataset "
                         f"'{args.dataset}'; accepted: {', '.join(sorted(accepted))}")
    kwargs = typed_params(pairs, accepted, f"dataset '{args.dataset}'")
    log(f"converting {src} -> {args.out}")
    t0 = time.perf_counter()
    counts = fn(src, args.out, **kwargs)
    rows = [{"what": k, "count": v} for k, v in counts.items()]
    print(markdown_table(rows, ["what", "count"]))
    print(f"\nwrote {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


def add_parser(sub, models: str) -> None:
    """The ``kgrec convert`` sub-command's options."""
    p = sub.add_parser(
        "convert", formatter_class=Formatter, help="convert a public dataset to kgrec RDF (N-Triples)",
        description="Convert a dataset as its publisher distributes it into N-Triples in the kgrec vocabulary "
                    "(gzip'd when --out ends in .gz). The datasets are not shipped: download them first.",
        epilog="example:\n  kgrec convert movielens-100k --data-root ../shared/data --out ml-100k.nt.gz\n"
               "  kgrec convert movielens-small --data-root data --out ml.nt.gz --param tags=false\n"
               "  kgrec convert movielens-small --data-root data --out ml-tags.nt.gz --param tag_events=true"
               "  # then: --mapping kgrec-behaviours")
    p.add_argument("dataset", metavar="DATASET", choices=sorted(CONVERTERS),
                   help=f"one of {', '.join(sorted(CONVERTERS))}")
    p.add_argument("--data-root", metavar="ROOT", required=True,
                   help="folder holding the dataset's folder (" + ", ".join(f"{k}: {v[0]}/" for k, v in
                                                                          sorted(CONVERTERS.items()))
                        + ") or the dataset folder itself")
    p.add_argument("--out", metavar="FILE", required=True, help="output file (.nt or .nt.gz)")
    p.add_argument("--param", metavar="KEY=VALUE", type=parse_param, action="append",
                   help="converter option (repeatable), e.g. tags=false, tag_events=true, linked_only=true, kg=false")
    p.set_defaults(func=run)
