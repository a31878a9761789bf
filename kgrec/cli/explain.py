"""``kgrec explain``: why a saved model recommends an item to a user."""

from __future__ import annotations

import json
from pathlib import Path

from kgrec.cli.common import (
    Formatter,
    add_load_options,
    check_known,
    data_args,
    load_graph,
    load_model,
    positive_int,
    saved_run,
)
from kgrec.errors import KgrecError


def run(args) -> int:
    model_dir = Path(args.model_dir)
    rec = load_model(model_dir, args)
    saved = saved_run(model_dir).get("data") or {}
    mapping = args.mapping if args.mapping is not None else saved.get("mapping")
    fmt = args.format if args.format is not None else saved.get("format")
    kg = load_graph(args.data, mapping, fmt, args)
    if rec.users != kg.users or rec.items != kg.items:
        raise KgrecError(f"'--data' holds {kg.num_users} users / {kg.num_items} items, not the ones the model in "
                         f"'{model_dir}' was trained on ({len(rec.users)} / {len(rec.items)}): pass the same files "
                         "and mapping")
    check_known(rec.users, args.user, "user", "--user", model_dir)
    check_known(rec.items, args.item, "item", "--item", model_dir)
    exp = rec.explain(args.user, args.item, max_paths=args.max_paths, kg=kg, max_hops=args.max_hops)
    if args.json:
        from kgrec.reports.tables import to_jsonable

        print(json.dumps(to_jsonable(exp.to_dict()), indent=2, ensure_ascii=False))
    else:
        print(exp.to_text())
    return 0


def add_parser(sub, models: str) -> None:
    """The ``kgrec explain`` sub-command's options."""
    p = sub.add_parser(
        "explain", formatter_class=Formatter, help="why a saved model recommends an item to a user",
        description="Reload a saved model and the graph it was trained on (--data, with the mapping and format "
                    "recorded in MODEL_DIR/metrics.json unless given) and print the evidence for one "
                    "recommendation: KG paths from the user's training items to the item, ranked by the "
                    "model; the history items the model ties to it; for the hybrid, the cross-attention "
                    "weights over the history and the score's share per branch (CF, KG, text, EASE prior).",
        epilog="example:\n  kgrec explain kgrec-out/ease --data kg_data/toy/toy.ttl "
               "--user https://w3id.org/kgrec/data/toy/user/u1 --item https://w3id.org/kgrec/data/toy/item/i3")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="directory written by 'kgrec train'")
    p.add_argument("--data", metavar="PATH", action="append", required=True,
                   help="the RDF file(s) the model was trained on (repeatable)")
    p.add_argument("--user", metavar="IRI", required=True, help="user IRI")
    p.add_argument("--item", metavar="IRI", required=True, help="item IRI")
    p.add_argument("--max-paths", metavar="N", type=positive_int, default=3, help="KG paths to show")
    p.add_argument("--max-hops", metavar="N", type=positive_int, default=3, help="KG edges per path")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    data_args(p)
    add_load_options(p)
    p.set_defaults(func=run)
