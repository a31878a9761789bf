"""``kgrec evaluate``: a saved model on a rebuilt split."""

from __future__ import annotations

from pathlib import Path

from kgrec.cli.common import (
    DEFAULT_SPLIT,
    SPLITS,
    Formatter,
    add_load_options,
    check_part,
    data_args,
    ks_arg,
    load_graph,
    load_model,
    metric_columns,
    note_warnings,
    ratios_arg,
    saved_run,
    scenario_arg,
    scenario_split,
    store_args,
    version,
)
from kgrec.errors import KgrecError
from kgrec.reports.tables import markdown_table, write_results


def run(args) -> int:
    from kgrec import api

    model_dir = Path(args.model_dir)
    rec = load_model(model_dir, args)
    recorded = saved_run(model_dir)
    saved_split = {**DEFAULT_SPLIT, **(recorded.get("split") or {})}
    saved_data = recorded.get("data") or {}
    strategy = args.split or saved_split["strategy"]
    seed = args.seed if args.seed is not None else int(saved_split["seed"])
    ratios = args.ratios or tuple(saved_split["ratios"])
    mapping = args.mapping if args.mapping is not None else saved_data.get("mapping")
    fmt = args.format if args.format is not None else saved_data.get("format")
    kg = load_graph(args.paths, mapping, fmt, args)
    note_warnings(kg)
    # the split has to number users and items as the model does, or every metric is noise
    for what, mine, theirs in (("users", rec.users, kg.users), ("items", rec.items, kg.items)):
        if mine != theirs:
            raise KgrecError(f"the data's {what} ({len(theirs)}) are not the {what} the model in '{model_dir}' was "
                             f"trained on ({len(mine)}): evaluate on the same files and mapping")
    sp = api.split(kg, strategy, ratios=ratios, seed=seed)
    # the test (valid) interactions of these scenarios, masking their training ones, as train --scenario
    # does; default: the scenarios the model was trained on (recorded by kgrec train)
    scenarios = args.scenario if args.scenario is not None else recorded.get("scenarios")
    sp = scenario_split(kg, sp, scenarios)
    check_part(sp, args.part, ratios, scenarios)
    metrics = rec.evaluate(sp, ks=args.ks, part=args.part)
    row = {"model": rec.model_name, "part": args.part, **metrics}
    columns = [("model", "model"), ("part", "part"), *metric_columns(args.ks)]
    payload = {"command": "evaluate", "kgrec_version": version(), "model_dir": str(model_dir),
               "model": rec.model_name, "data": {"paths": [str(p) for p in args.paths], "store": args.store,
                                                 "mapping": mapping, "format": fmt},
               "split": sp.stats(), "scenarios": scenarios, "ks": list(args.ks), "part": args.part,
               "metrics": metrics}
    out = Path(args.out) if args.out else model_dir
    inputs = ", ".join(f"`{p}`" for p in args.paths or [args.store])
    text = (f"Model `{model_dir}` on {inputs}; split {sp.name}, part {args.part}"
            + (f", scenario(s) {', '.join(scenarios)}." if scenarios else "."))
    json_path, md_path = write_results(out, "evaluation", payload, [row], columns,
                                       title=f"kgrec evaluate: {rec.model_name}", text=text)
    print(markdown_table([row], columns))
    print(f"\nwrote {json_path} and {md_path}")
    return 0


def add_parser(sub, models: str) -> None:
    """The ``kgrec evaluate`` sub-command's options."""
    p = sub.add_parser(
        "evaluate", formatter_class=Formatter, help="evaluate a saved model on a rebuilt split",
        description="Reload a model saved by 'kgrec train' (or Recommender.save), rebuild the split from the data "
                    "(by default with the strategy, ratios, seed, mapping and format recorded in MODEL_DIR/"
                    "metrics.json, else random 80/10/10 seed 2020), evaluate and write evaluation.json and "
                    "evaluation.md (into --out, default MODEL_DIR).",
        epilog="example:\n  kgrec evaluate kgrec-out/ease kg_data/toy/toy.ttl --ks 5,10")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="directory written by 'kgrec train'")
    p.add_argument("paths", metavar="PATH", nargs="*", help="the RDF file(s) the model was trained on")
    data_args(p)
    store_args(p)
    p.add_argument("--split", choices=SPLITS, default=None, help="split strategy (default: as recorded)")
    p.add_argument("--ratios", metavar="T,V,E", type=ratios_arg, default=None, help="shares (default: as recorded)")
    p.add_argument("--seed", metavar="S", type=int, default=None, help="split seed (default: as recorded)")
    p.add_argument("--part", choices=("test", "valid"), default="test", help="the part to evaluate")
    p.add_argument("--ks", metavar="K,K", type=ks_arg, default=(10, 20), help="metric cut-offs")
    p.add_argument("--out", metavar="DIR", default=None, help="where the result files go (default: MODEL_DIR)")
    scenario_arg(p, "evaluate on the test (--part) interactions of this scenario only, masking its training "
                     "ones, as 'kgrec train --scenario' does (repeatable; default: the scenarios the model was "
                     "trained on, from MODEL_DIR/metrics.json)")
    add_load_options(p)
    p.set_defaults(func=run)
