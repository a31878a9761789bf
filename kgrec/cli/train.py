"""``kgrec train``: fit one model, evaluate it and save it (under torchrun with DDP)."""

from __future__ import annotations

import dataclasses
import time

from kgrec.cli.common import (
    SPLITS,
    Formatter,
    check_model,
    data_args,
    empty_part,
    epoch_logger,
    fit_timed,
    ks_arg,
    load_graph,
    log,
    metric_columns,
    note_warnings,
    params_of,
    parse_param,
    progress_arg,
    progress_bars,
    ratios_arg,
    scenario_arg,
    scenario_split,
    store_args,
    typed_params,
    version,
    with_run_params,
)
from kgrec.reports.tables import markdown_table, write_results


def _train(args) -> int:
    from kgrec import api
    from kgrec.training import distributed

    check_model(args.model)
    params = typed_params(args.param or [], params_of(args.model), f"model '{args.model}'")
    params = with_run_params(args.model, params, progress_bars(args))
    rec = api.Recommender(args.model, **params)  # unknown parameters fail here, before loading
    kg = load_graph(args.paths, args.mapping, args.format, args)
    note_warnings(kg)
    sp = api.split(kg, args.split, ratios=args.ratios, seed=args.seed)
    sp = scenario_split(kg, sp, args.scenario)  # train, validate and test on these scenarios only
    st = sp.stats()
    log(f"{kg!r}; split {sp.name}: {st['train']} train / {st['valid']} valid / {st['test']} test")
    log(f"fitting {args.model}")
    ckpt = args.out if (args.checkpoint or args.resume) else None
    fit_s = fit_timed(rec, kg, sp, checkpoint_dir=ckpt, resume=args.resume)
    served, refit = rec, None
    if args.refit_all:  # on every rank: under torchrun the refit trains with DDP too
        if distributed.is_main():
            log(f"refitting {args.model} on all {len(kg.interactions)} interactions with the chosen settings")
        t0 = time.perf_counter()
        served = rec.refit_all(kg, log=epoch_logger(rec.model_name), scenarios=args.scenario)
        refit = {"seconds": time.perf_counter() - t0, **served.fit_info}
    if not distributed.is_main():
        return 0
    ks = args.ks
    valid = rec.evaluate(sp, ks=ks, part="valid") if len(sp.valid) else None
    # --ratios 1,0,0 trains on every interaction (a model to deploy): saved, not evaluated
    no_test = empty_part(sp, "test", args.ratios, args.scenario)
    test = None if no_test else rec.evaluate(sp, ks=ks, part="test")
    out = served.save(args.out)
    rows = ([{"part": "valid", **valid}] if valid else []) + ([{"part": "test", **test}] if test else [])
    columns = [("part", "part"), *metric_columns(ks)]
    payload = {
        "command": "train", "kgrec_version": version(), "model": args.model,
        "params": dataclasses.asdict(rec.config),
        "data": {"paths": [str(p) for p in args.paths], "store": args.store, "mapping": args.mapping,
                 "format": args.format},
        "graph": kg.stats(), "split": sp.stats(), "scenarios": args.scenario, "ks": list(ks),
        "fit": {"seconds": fit_s, **rec.fit_info}, "valid": valid, "test": test,
    }
    if refit is not None:  # the saved model; valid/test above are the split fit's
        payload["refit_all"] = refit
    inputs = ", ".join(f"`{p}`" for p in args.paths or [args.store])
    text = (f"Model `{args.model}` trained on {inputs}; split {sp.name} "
            f"(ratios {'/'.join(f'{r:g}' for r in sp.ratios)}); fit {fit_s:.1f} s. Saved in `{out}`"
            + (" after a refit on all interactions with the chosen settings (the metrics are the split "
               "fit's)." if refit is not None else ".")
            + (f" No test metrics: {no_test}." if no_test else ""))
    json_path, md_path = write_results(out, "metrics", payload, rows, columns, title=f"kgrec train: {args.model}",
                                       text=text)
    from kgrec.reports.run_details import write_run_details

    if test is not None:  # report.json: test metrics and hits of sample test users
        write_run_details(out, {args.model: rec}, kg, sp, seed=args.seed, explain_options={"max_candidates": 6})
    if rows:
        print(markdown_table(rows, columns))
    if no_test:
        print(f"no test metrics: {no_test}")
    print(f"\nsaved {'the model refitted on all interactions' if refit is not None else 'model'} to {out}; "
          f"wrote {json_path.name} and {md_path.name} there")
    return 0


def run(args) -> int:
    """``kgrec train``; under torchrun, DDP training (:mod:`kgrec.training.distributed`) with rank 0 writing."""
    from kgrec import api
    from kgrec.training import distributed

    if not distributed.launched():
        return _train(args)
    rank, world, _ = distributed.launch_env()
    if not api.Recommender(check_model(args.model)).estimator.trainable:
        if rank:  # a closed-form fit has no steps to share: rank 0 fits it alone
            return 0
        return _train(args)
    with distributed.session(args.dist_backend, dict(args.param or []).get("device", "auto")) as ctx:
        log(f"torchrun: {world} processes, backend {ctx.backend}, batch_size is per process")
        return _train(args)


def add_parser(sub, models: str) -> None:
    """The ``kgrec train`` sub-command's options."""
    p = sub.add_parser(
        "train", formatter_class=Formatter, help="train one model, save it with its valid/test metrics",
        description="Load, split, fit one model (validation lines on stderr), evaluate on the valid and test "
                    "parts, save the model into --out (safetensors + JSON) and write metrics.json and "
                    "metrics.md there. 'kgrec evaluate' reuses the recorded split settings.",
        epilog="examples:\n  kgrec train kg_data/toy/toy.ttl --model ease\n"
               "  kgrec train data.nt.gz --model lightgcn --split temporal --param epochs=50 --param dim=128\n"
               "  torchrun --nproc_per_node=2 -m kgrec train data.nt.gz --model lightgcn  "
               "# DDP; batch_size is per process (docs/distributed.md)")
    p.add_argument("paths", metavar="PATH", nargs="*", help="RDF file(s) or folder(s)")
    p.add_argument("--model", required=True, help=f"model name ({models})")
    data_args(p)
    store_args(p)
    p.add_argument("--split", choices=SPLITS, default="random", help="split strategy")
    p.add_argument("--ratios", metavar="T,V,E", type=ratios_arg, default=(0.8, 0.1, 0.1),
                   help="train,valid,test shares")
    p.add_argument("--seed", metavar="S", type=int, default=2020, help="seed of the split")
    p.add_argument("--param", metavar="KEY=VALUE", type=parse_param, action="append",
                   help="model parameter (repeatable), typed like its default: int, float, true/false, none "
                        "or text; see the model's config for the keys")
    p.add_argument("--ks", metavar="K,K", type=ks_arg, default=(10, 20), help="metric cut-offs")
    p.add_argument("--out", metavar="DIR", default=None, help="model directory (default: kgrec-out/<model>)")
    p.add_argument("--checkpoint", action="store_true",
                   help="save the model into --out at every new best validation epoch (atomic), not only at the end")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out (same model and settings); implies --checkpoint")
    p.add_argument("--refit-all", action="store_true",
                   help="after the split's fit and evaluation, refit on all interactions with the settings it "
                        "chose (its validation choices, and its best epoch count for a gradient model) and save "
                        "that model instead; the metrics stay those of the split's fit")
    p.add_argument("--dist-backend", choices=("auto", "gloo", "nccl"), default="auto",
                   help="process-group backend under torchrun (auto: nccl with CUDA, else gloo); "
                        "see docs/distributed.md")
    scenario_arg(p, "train, validate and test on the interactions of this scenario only (repeatable)")
    progress_arg(p)
    p.set_defaults(func=run)
