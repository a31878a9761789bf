"""``kgrec update``: continue a saved model on new interactions."""

from __future__ import annotations

from pathlib import Path

from kgrec.cli.common import (
    Formatter,
    add_load_options,
    data_args,
    load_graph,
    load_model,
    log,
    note_warnings,
    scenario_arg,
)
from kgrec.errors import KgrecError
from kgrec.reports.tables import markdown_table


def run(args) -> int:
    src, out = Path(args.checkpoint), Path(args.out)
    if src.resolve() == out.resolve():
        raise KgrecError(f"'--out' must differ from CHECKPOINT ('{src}'): an update never overwrites the old model")
    rec = load_model(src, args)
    kg = load_graph(args.data, args.mapping, args.format, args)
    note_warnings(kg)
    if args.scenario:  # name the option in the error, as train and evaluate do
        from kgrec.data.scenarios import scenario_ids

        scenario_ids(kg, args.scenario, "--scenario")
    log(f"updating {rec!r} with {kg!r}")
    rec.update(kg, epochs=args.epochs, replay=args.replay, l2_pull=args.l2_pull, log=log, scenarios=args.scenario)
    rec.save(out)
    info = rec.fit_info["update"]
    print(markdown_table([info], [k for k in info]))
    print(f"\nsaved the updated model to {out} ({src} unchanged)")
    return 0


def add_parser(sub, models: str) -> None:
    """The ``kgrec update`` sub-command's options."""
    p = sub.add_parser(
        "update", formatter_class=Formatter, help="continue a saved model on new interactions",
        description="Reload CHECKPOINT, add the users, items and interactions of the new RDF data "
                    "(Recommender.update: closed-form models refit on old + new data; embedding models train "
                    "a few epochs on the new interactions with replay of old ones) and save the result into "
                    "--out. CHECKPOINT is never modified.",
        epilog="example:\n  kgrec update kgrec-out/lightgcn --data week2.ttl --out kgrec-out/lightgcn-week2")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="model directory written by 'kgrec train'")
    p.add_argument("--data", metavar="PATH", action="append", required=True, help="RDF file(s) with the new data")
    p.add_argument("--out", metavar="DIR", required=True, help="directory of the updated model")
    p.add_argument("--epochs", metavar="N", type=int, default=5, help="epochs of embedding models")
    p.add_argument("--replay", metavar="R", type=float, default=0.2,
                   help="share of the old interactions replayed each epoch")
    p.add_argument("--l2-pull", metavar="W", type=float, default=0.0,
                   help="L2 weight pulling old embedding rows towards their previous values")
    scenario_arg(p, "add only the new interactions of this scenario (repeatable): a model trained on a source "
                     "scenario continued on a target one is a transfer")
    data_args(p)
    add_load_options(p)
    p.set_defaults(func=run)
