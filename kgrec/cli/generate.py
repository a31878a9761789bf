"""``kgrec generate``: a seeded synthetic recommendation KG."""

from __future__ import annotations

import time

from kgrec.cli.common import Formatter
from kgrec.reports.tables import markdown_table


def run(args) -> int:
    from kgrec.data.synthetic import generate

    t0 = time.perf_counter()
    counts = generate(args.out, users=args.users, items=args.items, seed=args.seed,
                      interactions_per_user=args.interactions_per_user, drift=args.drift)
    print(markdown_table([{"what": k, "count": v} for k, v in counts.items()], ["what", "count"]))
    print(f"\nwrote {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


def add_parser(sub, models: str) -> None:
    """The ``kgrec generate`` sub-command's options."""
    p = sub.add_parser(
        "generate", formatter_class=Formatter, help="write a synthetic recommendation KG (N-Triples)",
        description="Write a seeded synthetic KG in the kgrec vocabulary: power-law item popularity and user "
                    "activity, a genre -> subgenre hierarchy, directors, titles, timestamped rating events "
                    "with interest drift. The same arguments give identical bytes.",
        epilog="example:\n  kgrec generate --users 10000 --items 5000 --out synth.nt.gz --seed 0")
    p.add_argument("--users", metavar="N", type=int, required=True, help="number of users")
    p.add_argument("--items", metavar="M", type=int, required=True, help="number of items")
    p.add_argument("--out", metavar="FILE", required=True, help="output file (.nt or .nt.gz)")
    p.add_argument("--seed", metavar="S", type=int, default=0, help="random seed")
    p.add_argument("--interactions-per-user", metavar="X", type=float, default=20.0,
                   help="mean user activity (Pareto, capped at items/2)")
    p.add_argument("--drift", metavar="D", type=float, default=0.8,
                   help="interest drift from a user's early to late genre, 0 (none) to 1")
    p.set_defaults(func=run)
