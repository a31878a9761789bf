"""``kgrec recommend``: top-k items for users of a saved model."""

from __future__ import annotations

import json

from kgrec.cli.common import Formatter, add_load_options, check_known, load_model
from kgrec.reports.tables import markdown_table


def run(args) -> int:
    rec = load_model(args.model_dir, args)
    users = list(dict.fromkeys(args.user))
    for u in users:
        check_known(rec.users, u, "user", "--user", args.model_dir)
    result = rec.recommend(users, k=args.k, exclude_seen=not args.include_seen, exclude=args.exclude)
    labels = rec.item_labels

    def label(iri: str) -> str | None:
        return labels[rec.items.id(iri)] if labels else None

    if args.format == "ttl":
        from kgrec.reports.rdf import recommendations_to_turtle

        print(recommendations_to_turtle(result, model=rec.model_name), end="")
        return 0
    out = {u: [{"rank": r, "item": i, "score": s, "label": label(i)} for r, (i, s) in enumerate(items, 1)]
           for u, items in result.items()}
    if args.json or args.format == "json":
        from kgrec.reports.tables import to_jsonable

        print(json.dumps(to_jsonable(out), indent=2, ensure_ascii=False))
        return 0
    for n, (u, items) in enumerate(out.items()):
        if n:
            print()
        print(f"{u}:")
        cols = ["rank", "item", "score"] + (["label"] if labels else [])
        print(markdown_table(items, cols) if items else "(no items left to recommend)")
    return 0


def add_parser(sub, models: str) -> None:
    """The ``kgrec recommend`` sub-command's options."""
    p = sub.add_parser(
        "recommend", formatter_class=Formatter, help="top-k items for users of a saved model",
        description="Reload a saved model and print each user's top-k items with scores (and item labels), "
                    "leaving out every item the user already has in the graph the model was fitted on "
                    "(training, validation and test interactions alike).",
        epilog="example:\n  kgrec recommend kgrec-out/ease --user https://w3id.org/kgrec/data/toy/user/u1 -k 3")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="directory written by 'kgrec train'")
    p.add_argument("--user", metavar="IRI", action="append", required=True, help="user IRI (repeatable)")
    p.add_argument("-k", type=int, default=10, help="items per user")
    p.add_argument("--include-seen", action="store_true",
                   help="also rank the items the user already has in the fitted graph")
    p.add_argument("--exclude", metavar="IRI", action="append", default=None,
                   help="leave out this item for every user too (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables (same as --format json)")
    p.add_argument("--format", choices=("table", "json", "ttl"), default="table",
                   help="output: Markdown tables, JSON, or Turtle (schema:Recommendation with rank and score, "
                        "see kgrec.reports.rdf) to load back into the graph")
    add_load_options(p)
    p.set_defaults(func=run)
