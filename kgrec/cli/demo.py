"""``kgrec demo``: train and compare the models on the shipped MovieLens graph."""

from __future__ import annotations

import dataclasses
from typing import Any

from kgrec.cli.common import (
    Formatter,
    check_model,
    data_args,
    default_data_dir,
    fit_timed,
    load_graph,
    log,
    metric_columns,
    note_warnings,
    params_of,
    positive_int,
    progress_arg,
    progress_bars,
    version,
    with_run_params,
)
from kgrec.errors import KgrecError
from kgrec.reports.tables import markdown_table, write_results

#: Models ``kgrec demo`` trains, in table order.
DEMO_MODELS: tuple[str, ...] = ("mostpop", "itemknn", "ease", "bprmf", "lightgcn", "hybrid")


#: Per-model parameters of ``kgrec demo`` (on top of each model's defaults; ``--epochs`` and
#: ``--seed`` override ``epochs`` / ``seed`` of the models that have them).
DEMO_PARAMS: dict[str, dict[str, Any]] = {
    "mostpop": {},
    "itemknn": {"k": 100, "shrink": 10.0},
    "ease": {"reg": 250.0},
    "bprmf": {"epochs": 40, "lr": 2e-3, "reg": 0.0, "patience": 5, "eval_every": 2},
    "lightgcn": {"epochs": 40, "lr": 5e-3, "reg": 1e-4, "patience": 5, "eval_every": 2},
    # one short text segment per item keeps MiniLM's CPU encoding of the 9,742 items short (the demo's
    # phases are timed in benchmarks/results/demo.md);
    # the closed-form priors' validation search is the size of the benchmark's hybrid space
    # (benchmarks/tuning.py): one EASE reg (the EASE row's) and one rule window x recency, each an I x I fit
    "hybrid": {"epochs": 20, "text_segments": 1, "text_max_length": 64,
               "priors": {"ease_reg": (250.0,), "ease_weight": (0.0, 0.5, 1.0, 2.0), "seq_window": (3.0,),
                          "seq_recency": (1.0,), "seq_weight": (0.0, 1.0, 2.0)}},
}


#: The shipped default dataset, relative to the data folder (``kg_data`` or ``$KGREC_DATA_DIR``).
DEMO_DATASET = "movielens-small/movielens-small.nt.gz"


def run(args) -> int:
    from kgrec import api

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise KgrecError(f"'--models' must name at least one model (got {args.models!r})")
    for m in models:
        check_model(m, "--models")
    if args.data:
        paths = args.data
    else:
        default = default_data_dir() / DEMO_DATASET
        if not default.is_file():
            raise KgrecError(f"the default dataset '{default}' is missing (set KGREC_DATA_DIR to the folder holding "
                             f"'{DEMO_DATASET}', or pass --data)")
        paths = [str(default)]
    log(f"loading {', '.join(paths)}")
    kg = load_graph(paths, args.mapping, args.format, args)
    note_warnings(kg)
    sp = api.split(kg, "random", seed=args.seed)
    st = sp.stats()
    log(f"{kg!r}; split random-seed{args.seed}: {st['train']} train / {st['valid']} valid / {st['test']} test")
    progress = progress_bars(args)
    ks = (10, 20)
    rows, results = [], {}
    from kgrec.reports.run_details import RunDetails, write_details

    # what `kgrec report` shows beyond the metrics, recorded model by model (see kgrec.reports.run_details)
    details = RunDetails(kg, sp, seed=args.seed, explain_options={"max_candidates": 6})
    for m in models:
        accepted = params_of(m)
        params = dict(DEMO_PARAMS.get(m, {}))
        if args.epochs is not None and "epochs" in accepted:
            params["epochs"] = args.epochs
        if "seed" in accepted:
            params["seed"] = args.seed
        params = with_run_params(m, params, progress)
        log(f"fitting {m}")
        rec = api.Recommender(m, **params)
        fit_s = fit_timed(rec, kg, sp)
        test = rec.evaluate(sp, ks=ks, part="test")
        log(f"{m}: fit {fit_s:.1f} s, test NDCG@10 {test['ndcg@10']:.4f}")
        rows.append({"model": m, **test, "fit_seconds": fit_s})
        results[m] = {"params": dataclasses.asdict(rec.config), "fit_seconds": fit_s, "fit_info": rec.fit_info,
                      "test": test}
        details.add(m, rec)
        del rec
    columns = [("model", "model"), *metric_columns(ks), ("fit_seconds", "fit s")]
    payload = {"command": "demo", "kgrec_version": version(), "data": paths, "mapping": args.mapping,
               "graph": kg.stats(), "split": sp.stats(), "ks": list(ks), "models": results}
    text = (f"Data: {', '.join(f'`{p}`' for p in paths)} ({kg.num_users} users, {kg.num_items} items, "
            f"{len(kg.interactions)} interactions). Split: random 80/10/10, seed {args.seed}. "
            f"Full-ranking test metrics, training (and validation) items masked.")
    json_path, md_path = write_results(args.out, "results", payload, rows, columns, title="kgrec demo", text=text)
    write_details(args.out, details)
    print(markdown_table(rows, columns))
    print(f"\nwrote {json_path} and {md_path}; 'kgrec report {args.out}' makes a page of them")
    return 0


def add_parser(sub, models: str) -> None:
    """The ``kgrec demo`` sub-command's options."""
    p = sub.add_parser(
        "demo", formatter_class=Formatter, help="train and compare the models on the shipped MovieLens graph",
        description="Load the shipped dataset (MovieLens latest-small as RDF), split it at random (80/10/10), "
                    "train each model, evaluate on the test part (full ranking) and print a metrics table; "
                    "write results.json and results.md into --out.",
        epilog="examples:\n  kgrec demo\n  kgrec demo --models ease,lightgcn --epochs 20\n"
               "  kgrec demo --data kg_data/toy/toy.ttl --models mostpop,ease")
    p.add_argument("--data", metavar="PATH", action="append", default=None,
                   help=f"RDF file or folder (repeatable); default: <data dir>/{DEMO_DATASET}, the data dir being "
                        "$KGREC_DATA_DIR or the kg_data folder beside the package")
    p.add_argument("--models", metavar="LIST", default=",".join(DEMO_MODELS),
                   help=f"comma-separated models to train (known: {models})")
    p.add_argument("--epochs", metavar="N", type=positive_int, default=None,
                   help="maximum epochs of the trained models (default: per model, see DEMO_PARAMS)")
    p.add_argument("--out", metavar="DIR", default="kgrec-out/demo", help="where results.json / results.md go")
    p.add_argument("--seed", metavar="S", type=int, default=2020, help="seed of the split and of training")
    data_args(p)
    progress_arg(p)
    p.set_defaults(func=run)
