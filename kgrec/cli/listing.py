"""``kgrec users`` / ``kgrec items``: what a saved model knows, one IRI a line."""

from __future__ import annotations

from collections.abc import Sequence

from kgrec.cli.common import Formatter, add_load_options, load_model, positive_int


def _list_lines(iris: Sequence[str], labels: Sequence[str] | None, limit: int | None) -> None:
    """One IRI a line, a tab and its label when there are labels: plain text for ``grep``, ``cut``, ``head``."""
    n = len(iris) if limit is None else min(limit, len(iris))
    for i in range(n):
        print(f"{iris[i]}\t{labels[i]}" if labels else iris[i])


def run_users(args) -> int:
    rec = load_model(args.model_dir, args)
    _list_lines(rec.users.to_list(), None, args.limit)
    return 0


def run_items(args) -> int:
    rec = load_model(args.model_dir, args)
    items = rec.items.to_list()
    labels = rec.item_labels if len(rec.item_labels or []) == len(items) else None
    _list_lines(items, labels, args.limit)
    return 0


def add_parser(sub, models: str) -> None:
    for what, func in (("users", run_users), ("items", run_items)):
        labels = " and a tab and its label" if what == "items" else ""
        p = sub.add_parser(
            what, formatter_class=Formatter, help=f"list the {what} of a saved model, one IRI a line",
            description=f"Print the {what} a saved model knows, one IRI a line{labels}, in the model's order "
                        f"(its integer ids): plain text to pipe into grep, cut or head.",
            epilog=f"examples:\n  kgrec {what} kgrec-out/ease\n  kgrec {what} kgrec-out/ease --limit 5\n"
                   f"  kgrec {what} kgrec-out/ease | grep -i star" + (" | cut -f1" if labels else ""))
        p.add_argument("model_dir", metavar="MODEL_DIR", help="directory written by 'kgrec train'")
        p.add_argument("--limit", metavar="N", type=positive_int, default=None,
                       help=f"print the first N {what} only (default: all)")
        add_load_options(p)
        p.set_defaults(func=func)
