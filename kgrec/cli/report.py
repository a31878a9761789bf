"""``kgrec report``: an HTML page of a run."""

from __future__ import annotations

from kgrec.cli.common import Formatter


def run(args) -> int:
    from kgrec.reports.html import write_report

    path = write_report(args.run_dir, args.out)
    print(f"wrote {path}")
    return 0


def add_parser(sub, models: str) -> None:
    """The ``kgrec report`` sub-command's options."""
    p = sub.add_parser(
        "report", formatter_class=Formatter, help="an HTML page of a run: metrics, curves, long tail, users",
        description="Turn a run directory (what 'kgrec demo --out DIR' or 'kgrec train --out DIR' wrote: "
                    "results.json or metrics.json, and report.json) into one self-contained HTML page (plots "
                    "embedded, nothing fetched): metrics table, metrics vs K, training curves, popularity / long "
                    "tail / coverage of the recommendations, and sample users with their history, top-10 and "
                    "explanations.",
        epilog="example:\n  kgrec demo && kgrec report kgrec-out/demo")
    p.add_argument("run_dir", metavar="RUN_DIR", help="directory written by 'kgrec demo' or 'kgrec train'")
    p.add_argument("--out", metavar="FILE", default=None, help="the page (default: RUN_DIR/report.html)")
    p.set_defaults(func=run)
