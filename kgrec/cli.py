"""The ``kgrec`` command line: ``demo``, ``inspect``, ``validate``, ``train``, ``evaluate``, ``recommend``,
``users``, ``items``, ``explain``, ``report``, ``update``, ``convert``, ``generate``, ``serve``, ``benchmark``.

Every command goes through the public API (:func:`kgrec.load`, :func:`kgrec.split`,
:class:`kgrec.Recommender`) and writes its tables with :mod:`kgrec.reports.tables`. Results go to stdout,
progress and training logs to stderr. A :class:`~kgrec.errors.KgrecError` (bad input, bad argument)
ends the command with ``kgrec: error: <message>`` on stderr and exit status 2, without a
traceback; ``kgrec validate`` reports an invalid file with exit status 2 too. Any other exception is a
bug and propagates.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import io
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kgrec.data.convert import CONVERTERS
from kgrec.errors import KgrecError, UnknownIRIError
from kgrec.reports.tables import markdown_table, write_results
from kgrec.serve import command as serve_command

__all__ = ["main", "build_parser", "parse_param", "default_threads", "THREADS_ENV", "DEMO_MODELS", "DEMO_PARAMS",
           "DEMO_DATASET", "graph_report"]

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
    # one short text segment per item keeps MiniLM's CPU encoding of 9,742 items to about a minute
    "hybrid": {"epochs": 20, "text_segments": 1, "text_max_length": 64},
}

#: The shipped default dataset, relative to the data folder (``kg_data`` or ``$KGREC_DATA_DIR``).
DEMO_DATASET = "movielens-small/movielens-small.nt.gz"

_SPLITS = ("random", "temporal", "global-time", "cold-item")
_DEFAULT_SPLIT = {"strategy": "random", "seed": 2020, "ratios": [0.8, 0.1, 0.1]}
_RUN_FILE = "metrics.json"  # written by `kgrec train` beside the saved model
_QUIET_WARNINGS = (r"Sparse CSR tensor support is in beta", r"Sparse invariant checks are implicitly disabled")
THREADS_ENV = "KGREC_THREADS"  # torch threads when --threads is not given
_MAX_DEFAULT_THREADS = 4
_SIGPIPE_STATUS = 141  # what a shell reports for a process killed by SIGPIPE (128 + 13)


# ------------------------------------------------------------------------------------ helpers
#: ``--quiet`` of the running command (set by :func:`main` for each call): no progress lines on stderr.
_quiet = False


def _log(message: str) -> None:
    from tqdm import tqdm

    from kgrec.training import distributed

    if _quiet or not distributed.is_main():  # under torchrun only rank 0 talks
        return
    # tqdm.write moves an open progress bar below the line instead of breaking it
    tqdm.write(message, file=sys.stderr)


def _data_dir() -> Path:
    from kgrec.data.mapping import data_dir

    return data_dir()


def _models() -> dict:
    from kgrec.models import MODELS

    return MODELS


def _check_model(name: str, option: str = "--model") -> str:
    models = _models()
    if name not in models:
        raise KgrecError(f"'{option}' must be one of {', '.join(sorted(models))} (got {name!r})")
    return name


def _params_of(model: str) -> dict[str, Any]:
    from kgrec.api import Recommender

    return Recommender.params_of(_check_model(model))


def _scalar(raw: str) -> Any:
    """``true``/``false`` -> bool, ``none``/``null`` -> None, then int, then float, else the string."""
    low = raw.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def parse_param(text: str) -> tuple[str, str]:
    """``"key=value"`` -> ``("key", "value")`` (the value is typed later, against the model's config)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value (got {text!r})")
    return key, value


def _typed_params(pairs: Sequence[tuple[str, str]], defaults: dict[str, Any], what: str) -> dict[str, Any]:
    """Type ``--param`` values after the default of the same field.

    Unknown keys are passed on untyped: the model's (or converter's) error lists the accepted ones.
    """
    out: dict[str, Any] = {}
    for key, raw in pairs:
        value = _scalar(raw)
        if key in defaults:
            default = defaults[key]
            where = f"'--param {key}' of {what}"
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise KgrecError(f"{where} must be true or false (got {raw!r})")
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise KgrecError(f"{where} must be an integer (got {raw!r})")
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise KgrecError(f"{where} must be a number (got {raw!r})")
                value = float(value)
            elif isinstance(default, str):
                value = raw  # a string field keeps digits as text ("--param device=0" stays "0")
            elif default is None and value is not None and not isinstance(value, bool):
                value = raw  # optional fields (text_model, cache_dir) are paths: keep the text
        out[key] = value
    return out


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        ks = ()
    if not ks or any(k <= 0 for k in ks):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers such as 10,20 (got {text!r})")
    return ks


def _ratios(text: str) -> tuple[float, float, float]:
    try:
        r = tuple(float(x) for x in text.split(","))
    except ValueError:
        r = ()
    if len(r) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated shares such as 0.8,0.1,0.1 (got {text!r})")
    return r  # type: ignore[return-value]


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer (got {text!r})")
    return v


def _load(paths: Sequence[str], mapping: str | None, fmt: str | None, args=None):
    """``kgrec.load`` with its summary warning silenced (commands print ``kg.warnings`` themselves) and
    the input limits of :func:`_data_args` when the command has them."""
    import kgrec

    names = ("allow_network", "max_file_bytes", "max_literal_chars", "max_line_bytes", "max_xml_depth",
             "max_expansion_ratio")
    limits = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"kgrec\.load\(", category=UserWarning)
        return kgrec.load(list(paths), mapping=mapping, format=fmt, **limits)


def _note_warnings(kg) -> None:
    if kg.warnings:
        total = sum(kg.warnings.values())
        _log(f"kgrec: note: {total} problem(s) of {len(kg.warnings)} kind(s) while loading; "
             f"'kgrec validate' lists them")


def _progress(args) -> bool:
    """Progress bars: as ``--progress`` / ``--no-progress`` say, else off with ``--quiet``, else when stderr is a
    terminal (a log file or a pipe gets no bars)."""
    if args.progress is not None:
        return bool(args.progress)
    return not args.quiet and sys.stderr.isatty()


def _with_run_params(model: str, params: dict[str, Any], progress: bool) -> dict[str, Any]:
    accepted = _params_of(model)
    if "progress" in accepted and "progress" not in params:
        params = {**params, "progress": progress}
    return params


def _epoch_logger(model: str):
    def log(line: str) -> None:
        _log(f"[{model}] {line}")

    return log


def _metric_columns(ks: Sequence[int]) -> list[tuple[str, str]]:
    """Recall and NDCG at every k; hit, MRR and coverage at the first k."""
    k0 = ks[0]
    return ([(f"recall@{k}", f"Recall@{k}") for k in ks] + [(f"ndcg@{k}", f"NDCG@{k}") for k in ks]
            + [(f"hit@{k0}", f"Hit@{k0}"), (f"mrr@{k0}", f"MRR@{k0}"), (f"coverage@{k0}", f"coverage@{k0}")])


def _fit(rec, kg, sp, checkpoint_dir=None, resume: bool = False) -> float:
    t0 = time.perf_counter()
    rec.fit(kg, sp, log=_epoch_logger(rec.model_name), checkpoint_dir=checkpoint_dir, resume=resume)
    return time.perf_counter() - t0


def _version() -> str:
    from kgrec import __version__

    return __version__


def _date(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else str(v)
    return str(v)


# ----------------------------------------------------------------------------------- threads
def _threads_value(raw: str, where: str) -> int:
    """``raw`` as a positive thread count; ``where`` (the option or variable) names it in the error."""
    try:
        n = int(raw.strip())
    except ValueError:
        n = 0
    if n <= 0:
        raise KgrecError(f"'{where}' must be a positive integer number of threads (got {raw!r})")
    return n


def _threads_arg(text: str) -> int:
    try:
        return _threads_value(text, "--threads")
    except KgrecError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def default_threads() -> int:
    """The torch thread count when neither ``--threads`` nor ``KGREC_THREADS`` is given.

    The cores this process may run on (its CPU affinity) minus the one-minute load average, between 1
    and 4. torch's own default is one thread per core: when other jobs already keep the cores busy, its
    threads wait on each other at every parallel kernel and an epoch runs many times slower than with one
    thread. The cap leaves room for other runs on a large machine. The count follows the load, so runs
    that must be repeatable to the last bit (or timed) fix it with ``--threads``.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    return max(1, min(_MAX_DEFAULT_THREADS, int(math.floor(cores - busy))))


def _set_threads(option: int | None) -> int | None:
    """Set torch's intra-op (and, while still allowed, inter-op) threads before any work.

    ``option`` (``--threads``) wins over ``$KGREC_THREADS``; without either, ``OMP_NUM_THREADS`` (which torch
    reads itself) is left in charge, else :func:`default_threads`. Returns the count set, or ``None``.

    Raises:
        KgrecError: ``KGREC_THREADS`` is not a positive integer.
    """
    import torch

    n = option
    if n is None and os.environ.get(THREADS_ENV, "").strip():
        n = _threads_value(os.environ[THREADS_ENV], THREADS_ENV)
    if n is None:
        if os.environ.get("OMP_NUM_THREADS", "").strip():
            return None
        n = default_threads()
    torch.set_num_threads(n)
    if torch.get_num_interop_threads() != n:
        try:  # allowed once per process, before any inter-op work: a second main() in one process keeps it
            torch.set_num_interop_threads(n)
        except RuntimeError:
            pass
    return n


# -------------------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    import kgrec

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise KgrecError(f"'--models' must name at least one model (got {args.models!r})")
    for m in models:
        _check_model(m, "--models")
    if args.data:
        paths = args.data
    else:
        default = _data_dir() / DEMO_DATASET
        if not default.is_file():
            raise KgrecError(f"the default dataset '{default}' is missing (set KGREC_DATA_DIR to the folder holding "
                             f"'{DEMO_DATASET}', or pass --data)")
        paths = [str(default)]
    _log(f"loading {', '.join(paths)}")
    kg = _load(paths, args.mapping, args.format, args)
    _note_warnings(kg)
    sp = kgrec.split(kg, "random", seed=args.seed)
    st = sp.stats()
    _log(f"{kg!r}; split random-seed{args.seed}: {st['train']} train / {st['valid']} valid / {st['test']} test")
    progress = _progress(args)
    ks = (10, 20)
    rows, results = [], {}
    from kgrec.reports.run_details import RunDetails, write_details

    # what `kgrec report` shows beyond the metrics, recorded model by model (see kgrec.reports.run_details)
    details = RunDetails(kg, sp, seed=args.seed, explain_options={"max_candidates": 6})
    for m in models:
        accepted = _params_of(m)
        params = dict(DEMO_PARAMS.get(m, {}))
        if args.epochs is not None and "epochs" in accepted:
            params["epochs"] = args.epochs
        if "seed" in accepted:
            params["seed"] = args.seed
        params = _with_run_params(m, params, progress)
        _log(f"fitting {m}")
        rec = kgrec.Recommender(m, **params)
        fit_s = _fit(rec, kg, sp)
        test = rec.evaluate(sp, ks=ks, part="test")
        _log(f"{m}: fit {fit_s:.1f} s, test NDCG@10 {test['ndcg@10']:.4f}")
        rows.append({"model": m, **test, "fit_seconds": fit_s})
        results[m] = {"params": dataclasses.asdict(rec.config), "fit_seconds": fit_s, "fit_info": rec.fit_info,
                      "test": test}
        details.add(m, rec)
        del rec
    columns = [("model", "model"), *_metric_columns(ks), ("fit_seconds", "fit s")]
    payload = {"command": "demo", "kgrec_version": _version(), "data": paths, "mapping": args.mapping,
               "graph": kg.stats(), "split": sp.stats(), "ks": list(ks), "models": results}
    text = (f"Data: {', '.join(f'`{p}`' for p in paths)} ({kg.num_users} users, {kg.num_items} items, "
            f"{len(kg.interactions)} interactions). Split: random 80/10/10, seed {args.seed}. "
            f"Full-ranking test metrics, training (and validation) items masked.")
    json_path, md_path = write_results(args.out, "results", payload, rows, columns, title="kgrec demo", text=text)
    write_details(args.out, details)
    print(markdown_table(rows, columns))
    print(f"\nwrote {json_path} and {md_path}; 'kgrec report {args.out}' makes a page of them")
    return 0


# ----------------------------------------------------------------------------------- inspect
def _summary(values) -> dict[str, float]:
    """Count, min, median, p90, max and mean of integer counts (degrees)."""
    import numpy as np

    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {"count": 0, "min": None, "median": None, "p90": None, "max": None, "mean": None}
    return {"count": int(a.size), "min": int(a.min()), "median": float(np.median(a)),
            "p90": float(np.percentile(a, 90)), "max": int(a.max()), "mean": float(a.mean())}


def graph_report(kg) -> dict[str, Any]:
    """``kg.stats()`` plus the structure seen through ``kg.to_networkx()``.

    Adds degree summaries per node kind (all edges, interactions included), item popularity
    (interactions per item) and the weakly connected components.
    """
    import networkx as nx
    import torch

    st = kg.stats()
    g = kg.to_networkx(interactions=True)
    by_kind: dict[str, list[int]] = {"user": [], "item": [], "entity": []}
    for node, deg in g.degree():
        by_kind[g.nodes[node]["kind"]].append(deg)
    popularity = torch.bincount(kg.interactions.item, minlength=kg.num_items).tolist() if len(kg.interactions) \
        else [0] * kg.num_items
    sizes = sorted((len(c) for c in nx.weakly_connected_components(g)), reverse=True)
    return {
        **st,
        "degrees": {"users": _summary(by_kind["user"]), "items": _summary(by_kind["item"]),
                    "entities": _summary(by_kind["entity"]), "item_interactions": _summary(popularity)},
        "components": {"count": len(sizes), "largest": sizes[0] if sizes else 0,
                       "largest_share": sizes[0] / g.number_of_nodes() if sizes else 0.0},
    }


def cmd_inspect(args) -> int:
    kg = _load(args.paths, args.mapping, args.format, args)
    rep = graph_report(kg)
    rep["sources"] = list(kg.sources)
    if args.json:
        from kgrec.reports.tables import to_jsonable

        print(json.dumps(to_jsonable(rep), indent=2, ensure_ascii=False))
        return 0
    print(f"sources: {', '.join(kg.sources)}")
    counts = [{"what": k, "count": rep[k]} for k in
              ("users", "items", "attribute_entities", "entities", "relations", "triples", "interactions",
               "users_without_interactions", "items_without_interactions", "items_with_text",
               "interactions_with_time")]
    counts.append({"what": "density", "count": rep["density"]})
    print(markdown_table(counts, ["what", "count"], floatfmt=".6f"))
    if rep["time_range"]:
        lo, hi = rep["time_range"]
        print(f"\ntime range: {_date(lo)} .. {_date(hi)}")
    rels = [{"relation": r, "triples": n} for r, n in sorted(rep["triples_per_relation"].items(),
                                                             key=lambda kv: (-kv[1], kv[0]))]
    print("\nrelations:")
    print(markdown_table(rels, ["relation", "triples"]) if rels else "(none)")
    print("\ndegrees (all edges; item_interactions: interactions only):")
    deg = [{"nodes": k, **v} for k, v in rep["degrees"].items()]
    print(markdown_table(deg, ["nodes", "count", "min", "median", "p90", "max", "mean"], floatfmt=".2f"))
    c = rep["components"]
    print(f"\nweakly connected components: {c['count']} (largest: {c['largest']} nodes, "
          f"{100 * c['largest_share']:.1f}%)")
    print("\nwarnings:")
    if rep["warnings"]:
        w = [{"warning": k, "count": n} for k, n in sorted(rep["warnings"].items(), key=lambda kv: (-kv[1], kv[0]))]
        print(markdown_table(w, ["warning", "count"]))
    else:
        print("(none)")
    return 0


# ---------------------------------------------------------------------------------- validate
def cmd_validate(args) -> int:
    """Load, print the counts, the mapping report (kgrec.data.validation) and the warnings.

    Exit status 2 when the files do not load, or with ``--strict`` when a mapping term matches
    nothing in the graph (a blocking one, see kgrec.data.validation); data warnings never fail.
    """
    try:
        kg = _load(args.paths, args.mapping, args.format, args)
    except KgrecError as e:
        print(f"invalid: {e}")
        return 2
    print(f"ok: {', '.join(kg.sources)}: {kg.num_users} users, {kg.num_items} items, "
          f"{kg.num_entities - kg.num_items} attribute entities, {kg.num_relations} relations, "
          f"{kg.triples.shape[0]} triples, {len(kg.interactions)} interactions")
    report = getattr(kg, "mapping_report", None)
    if report is not None:
        print(report.format())
    if kg.warnings:
        total = sum(kg.warnings.values())
        print(f"{total} warning(s) of {len(kg.warnings)} kind(s):")
        w = [{"warning": k, "count": n} for k, n in sorted(kg.warnings.items(), key=lambda kv: (-kv[1], kv[0]))]
        print(markdown_table(w, ["warning", "count"]))
    else:
        print("no warnings")
    if args.strict and report is not None and report.blocking:
        names = ", ".join(u.short for u in report.blocking)
        print(f"invalid: --strict and {len(report.blocking)} mapping term(s) match nothing in the graph: {names}")
        return 2
    return 0


def _scenario_arg(p, help_text: str) -> None:
    p.add_argument("--scenario", metavar="NAME", action="append", default=None,
                   help=help_text + "; names come from the mapping (see kg_data/mappings/README.md)")


def _scenario_split(kg, sp, names):
    """``sp`` with every part restricted to the scenarios ``names`` (``--scenario``); as is without names."""
    if not names:
        return sp
    from kgrec.data.scenarios import select

    return select(kg, sp, names, "--scenario")


# ------------------------------------------------------------------------------------- train
def _empty_part(sp, part: str, ratios: Sequence[float], scenarios: Sequence[str] | None) -> str | None:
    """Why ``sp.<part>`` holds no interaction (naming ``--ratios``, and ``--scenario`` when given), or ``None``.

    An empty part is never evaluated: its metrics would be a row of NaN.
    """
    if len(getattr(sp, part)):
        return None
    shares = ",".join(f"{r:g}" for r in ratios)
    st = sp.stats()
    counts = f"{st['train']} train / {st['valid']} valid / {st['test']} test interactions"
    if ratios[{"valid": 1, "test": 2}[part]] == 0:
        why = f"'--ratios {shares}' gives the {part} part a share of 0"
    else:
        why = f"'--ratios {shares}' leaves the {part} part empty on this data"
        if scenarios:
            why += f" and '--scenario {' '.join(scenarios)}'"
    return f"{why} ({counts})"


def _check_part(sp, part: str, ratios: Sequence[float], scenarios: Sequence[str] | None) -> None:
    """Refuse to evaluate an empty part.

    Raises:
        KgrecError: ``sp.<part>`` holds no interaction; the message names ``--ratios`` (and ``--scenario``).
    """
    why = _empty_part(sp, part, ratios, scenarios)
    if why:
        raise KgrecError(f"{why}: there is nothing to evaluate; give the {part} part a share, "
                         f"e.g. --ratios 0.8,0.1,0.1")


def cmd_train(args) -> int:
    """``kgrec train``; under torchrun, DDP training (:mod:`kgrec.training.distributed`) with rank 0 writing."""
    import kgrec
    from kgrec.training import distributed

    if not distributed.launched():
        return _train(args)
    rank, world, _ = distributed.launch_env()
    if not kgrec.Recommender(_check_model(args.model)).estimator.trainable:
        if rank:  # a closed-form fit has no steps to share: rank 0 fits it alone
            return 0
        return _train(args)
    with distributed.session(args.dist_backend, dict(args.param or []).get("device", "auto")) as ctx:
        _log(f"torchrun: {world} processes, backend {ctx.backend}, batch_size is per process")
        return _train(args)


def _train(args) -> int:
    import kgrec
    from kgrec.training import distributed

    _check_model(args.model)
    params = _typed_params(args.param or [], _params_of(args.model), f"model '{args.model}'")
    params = _with_run_params(args.model, params, _progress(args))
    rec = kgrec.Recommender(args.model, **params)  # unknown parameters fail here, before loading
    kg = _load(args.paths, args.mapping, args.format, args)
    _note_warnings(kg)
    sp = kgrec.split(kg, args.split, ratios=args.ratios, seed=args.seed)
    sp = _scenario_split(kg, sp, args.scenario)  # train, validate and test on these scenarios only
    st = sp.stats()
    _log(f"{kg!r}; split {sp.name}: {st['train']} train / {st['valid']} valid / {st['test']} test")
    _log(f"fitting {args.model}")
    ckpt = args.out if (args.checkpoint or args.resume) else None
    fit_s = _fit(rec, kg, sp, checkpoint_dir=ckpt, resume=args.resume)
    served, refit = rec, None
    if args.refit_all:  # on every rank: under torchrun the refit trains with DDP too
        if distributed.is_main():
            _log(f"refitting {args.model} on all {len(kg.interactions)} interactions with the chosen settings")
        t0 = time.perf_counter()
        served = rec.refit_all(kg, log=_epoch_logger(rec.model_name), scenarios=args.scenario)
        refit = {"seconds": time.perf_counter() - t0, **served.fit_info}
    if not distributed.is_main():
        return 0
    ks = args.ks
    valid = rec.evaluate(sp, ks=ks, part="valid") if len(sp.valid) else None
    # --ratios 1,0,0 trains on every interaction (a model to deploy): saved, not evaluated
    no_test = _empty_part(sp, "test", args.ratios, args.scenario)
    test = None if no_test else rec.evaluate(sp, ks=ks, part="test")
    out = served.save(args.out)
    rows = ([{"part": "valid", **valid}] if valid else []) + ([{"part": "test", **test}] if test else [])
    columns = [("part", "part"), *_metric_columns(ks)]
    payload = {
        "command": "train", "kgrec_version": _version(), "model": args.model,
        "params": dataclasses.asdict(rec.config),
        "data": {"paths": [str(p) for p in args.paths], "mapping": args.mapping, "format": args.format},
        "graph": kg.stats(), "split": sp.stats(), "scenarios": args.scenario, "ks": list(ks),
        "fit": {"seconds": fit_s, **rec.fit_info}, "valid": valid, "test": test,
    }
    if refit is not None:  # the saved model; valid/test above are the split fit's
        payload["refit_all"] = refit
    text = (f"Model `{args.model}` trained on {', '.join(f'`{p}`' for p in args.paths)}; split {sp.name} "
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


# ---------------------------------------------------------------------------------- evaluate
def _saved_run(model_dir: Path) -> dict[str, Any]:
    """What ``kgrec train`` recorded beside the model (split, mapping, format), or ``{}``."""
    path = model_dir / _RUN_FILE
    if not path.is_file():
        return {}
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise KgrecError(f"'{path}' line {e.lineno}: invalid JSON ({e.msg})") from None
    return run if isinstance(run, dict) else {}


def _load_model(directory, args):
    """``Recommender.load`` with the text model given on the command line: a checkpoint never
    names the code or files it loads (:mod:`kgrec.training.checkpoint_schema`)."""
    import kgrec

    return kgrec.Recommender.load(directory, text_model=args.text_model, text_allow_pickle=args.text_allow_pickle)


def _add_load_options(p) -> None:
    p.add_argument("--text-model", metavar="DIR", default=None,
                   help="local text model directory of a hybrid/content-knn model (default: the packaged "
                        "MiniLM); needed when the model was trained with another one, never read from the "
                        "checkpoint")
    p.add_argument("--text-allow-pickle", action="store_true",
                   help="accept a --text-model directory holding only pickle weights (only if you trust it)")


def cmd_evaluate(args) -> int:
    import kgrec

    model_dir = Path(args.model_dir)
    rec = _load_model(model_dir, args)
    run = _saved_run(model_dir)
    saved_split = {**_DEFAULT_SPLIT, **(run.get("split") or {})}
    saved_data = run.get("data") or {}
    strategy = args.split or saved_split["strategy"]
    seed = args.seed if args.seed is not None else int(saved_split["seed"])
    ratios = args.ratios or tuple(saved_split["ratios"])
    mapping = args.mapping if args.mapping is not None else saved_data.get("mapping")
    fmt = args.format if args.format is not None else saved_data.get("format")
    kg = _load(args.paths, mapping, fmt, args)
    _note_warnings(kg)
    # the split has to number users and items as the model does, or every metric is noise
    for what, mine, theirs in (("users", rec.users, kg.users), ("items", rec.items, kg.items)):
        if mine != theirs:
            raise KgrecError(f"the data's {what} ({len(theirs)}) are not the {what} the model in '{model_dir}' was "
                             f"trained on ({len(mine)}): evaluate on the same files and mapping")
    sp = kgrec.split(kg, strategy, ratios=ratios, seed=seed)
    # the test (valid) interactions of these scenarios, masking their training ones, as train --scenario
    # does; default: the scenarios the model was trained on (recorded by kgrec train)
    scenarios = args.scenario if args.scenario is not None else run.get("scenarios")
    sp = _scenario_split(kg, sp, scenarios)
    _check_part(sp, args.part, ratios, scenarios)
    metrics = rec.evaluate(sp, ks=args.ks, part=args.part)
    row = {"model": rec.model_name, "part": args.part, **metrics}
    columns = [("model", "model"), ("part", "part"), *_metric_columns(args.ks)]
    payload = {"command": "evaluate", "kgrec_version": _version(), "model_dir": str(model_dir),
               "model": rec.model_name, "data": {"paths": [str(p) for p in args.paths], "mapping": mapping,
                                                 "format": fmt},
               "split": sp.stats(), "scenarios": scenarios, "ks": list(args.ks), "part": args.part,
               "metrics": metrics}
    out = Path(args.out) if args.out else model_dir
    text = (f"Model `{model_dir}` on {', '.join(f'`{p}`' for p in args.paths)}; split {sp.name}, part {args.part}"
            + (f", scenario(s) {', '.join(scenarios)}." if scenarios else "."))
    json_path, md_path = write_results(out, "evaluation", payload, [row], columns,
                                       title=f"kgrec evaluate: {rec.model_name}", text=text)
    print(markdown_table([row], columns))
    print(f"\nwrote {json_path} and {md_path}")
    return 0


# ------------------------------------------------------------------------------- users / items
def _list_lines(iris: Sequence[str], labels: Sequence[str] | None, limit: int | None) -> None:
    """One IRI a line, a tab and its label when there are labels: plain text for ``grep``, ``cut``, ``head``."""
    n = len(iris) if limit is None else min(limit, len(iris))
    for i in range(n):
        print(f"{iris[i]}\t{labels[i]}" if labels else iris[i])


def cmd_users(args) -> int:
    rec = _load_model(args.model_dir, args)
    _list_lines(rec.users.to_list(), None, args.limit)
    return 0


def cmd_items(args) -> int:
    rec = _load_model(args.model_dir, args)
    items = rec.items.to_list()
    labels = rec.item_labels if len(rec.item_labels or []) == len(items) else None
    _list_lines(items, labels, args.limit)
    return 0


def _local_name(iri: str) -> str:
    return iri.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _closest(iri: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Up to ``n`` known IRIs whose local name is close to the one of ``iri``, case aside: the same name
    first (``u1`` for ``.../user/u1``), then difflib's closest. Names are compared, not whole IRIs: IRIs
    share long namespaces, so any two of them look alike to difflib."""
    by_name: dict[str, list[str]] = {}
    for k in known:
        by_name.setdefault(_local_name(k).lower(), []).append(k)
    name = _local_name(iri).lower()
    picked = list(by_name.get(name, []))
    for close_name in difflib.get_close_matches(name, list(by_name), n=n, cutoff=0.6):
        picked += by_name[close_name]
    return list(dict.fromkeys(picked))[:n]


def _check_known(vocab, iri: str, what: str, option: str, model_dir) -> None:
    """Raise :class:`UnknownIRIError` for an IRI the model does not know, with the closest known ones.

    Raises:
        UnknownIRIError: ``iri`` is not in ``vocab``; names ``option``, up to three close IRIs (difflib) and the
            ``kgrec users`` / ``kgrec items`` command that lists them all.
    """
    if iri in vocab:
        return
    known = vocab.to_list()
    close = _closest(iri, known)
    hint = f"; closest known: {', '.join(close)}" if close else ""
    raise UnknownIRIError(f"'{option}': unknown {what} {iri!r} ({len(known)} {what}s known to the model in "
                          f"'{model_dir}'){hint}; 'kgrec {what}s {model_dir}' lists them")


# --------------------------------------------------------------------------------- recommend
def cmd_recommend(args) -> int:
    rec = _load_model(args.model_dir, args)
    users = list(dict.fromkeys(args.user))
    for u in users:
        _check_known(rec.users, u, "user", "--user", args.model_dir)
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


# ----------------------------------------------------------------------------------- explain
def cmd_explain(args) -> int:
    model_dir = Path(args.model_dir)
    rec = _load_model(model_dir, args)
    saved = _saved_run(model_dir).get("data") or {}
    mapping = args.mapping if args.mapping is not None else saved.get("mapping")
    fmt = args.format if args.format is not None else saved.get("format")
    kg = _load(args.data, mapping, fmt, args)
    if rec.users != kg.users or rec.items != kg.items:
        raise KgrecError(f"'--data' holds {kg.num_users} users / {kg.num_items} items, not the ones the model in "
                         f"'{model_dir}' was trained on ({len(rec.users)} / {len(rec.items)}): pass the same files "
                         "and mapping")
    _check_known(rec.users, args.user, "user", "--user", model_dir)
    _check_known(rec.items, args.item, "item", "--item", model_dir)
    exp = rec.explain(args.user, args.item, max_paths=args.max_paths, kg=kg, max_hops=args.max_hops)
    if args.json:
        from kgrec.reports.tables import to_jsonable

        print(json.dumps(to_jsonable(exp.to_dict()), indent=2, ensure_ascii=False))
    else:
        print(exp.to_text())
    return 0


# ------------------------------------------------------------------------------------ report
def cmd_report(args) -> int:
    from kgrec.reports.html import write_report

    path = write_report(args.run_dir, args.out)
    print(f"wrote {path}")
    return 0


# ------------------------------------------------------------------------------------ update
def cmd_update(args) -> int:
    src, out = Path(args.checkpoint), Path(args.out)
    if src.resolve() == out.resolve():
        raise KgrecError(f"'--out' must differ from CHECKPOINT ('{src}'): an update never overwrites the old model")
    rec = _load_model(src, args)
    kg = _load(args.data, args.mapping, args.format, args)
    _note_warnings(kg)
    if args.scenario:  # name the option in the error, as train and evaluate do
        from kgrec.data.scenarios import scenario_ids

        scenario_ids(kg, args.scenario, "--scenario")
    _log(f"updating {rec!r} with {kg!r}")
    rec.update(kg, epochs=args.epochs, replay=args.replay, l2_pull=args.l2_pull, log=_log, scenarios=args.scenario)
    rec.save(out)
    info = rec.fit_info["update"]
    print(markdown_table([info], [k for k in info]))
    print(f"\nsaved the updated model to {out} ({src} unchanged)")
    return 0


# ----------------------------------------------------------------------------------- convert
def cmd_convert(args) -> int:
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
    kwargs = _typed_params(pairs, accepted, f"dataset '{args.dataset}'")
    _log(f"converting {src} -> {args.out}")
    t0 = time.perf_counter()
    counts = fn(src, args.out, **kwargs)
    rows = [{"what": k, "count": v} for k, v in counts.items()]
    print(markdown_table(rows, ["what", "count"]))
    print(f"\nwrote {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_generate(args) -> int:
    from kgrec.data.synthetic import generate

    t0 = time.perf_counter()
    counts = generate(args.out, users=args.users, items=args.items, seed=args.seed,
                      interactions_per_user=args.interactions_per_user, drift=args.drift)
    print(markdown_table([{"what": k, "count": v} for k, v in counts.items()], ["what", "count"]))
    print(f"\nwrote {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


# ------------------------------------------------------------------------------------ parser
class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the examples' line breaks and show each default once.

    ``ArgumentDefaultsHelpFormatter`` appends ``(default: ...)`` to every option; an option whose help already
    states its default (in words: "default: the kgrec profile"), or whose default is ``None`` or a flag's
    ``False`` (nothing to tell), keeps its help as written.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default is None or action.default is False:
            return text
        if isinstance(action.default, (tuple, list)):  # as typed on the command line: 0.8,0.1,0.1
            shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in action.default)
            return f"{text} (default: {shown.replace('%', '%%')})"
        return super()._get_help_string(action)


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mapping", metavar="M", default=None,
                   help="mapping profile name (kgrec, schema-org) or a .toml/.yaml mapping file "
                        "(default: the kgrec profile)")
    p.add_argument("--format", metavar="F", default=None,
                   help="RDF format of every file (turtle, ntriples, nquads, trig, xml, json-ld, n3); "
                        "default: guessed from each suffix")
    p.add_argument("--allow-network", action="store_true", default=None,
                   help="let http(s) URLs be read as inputs (off: nothing is ever fetched)")
    p.add_argument("--max-file-bytes", metavar="N", type=_positive_int, default=None,
                   help="refuse an input larger than N bytes after decompression (default 2 GiB)")
    p.add_argument("--max-literal-chars", metavar="N", type=_positive_int, default=None,
                   help="refuse a literal longer than N characters (default 1 Mi)")
    p.add_argument("--max-line-bytes", metavar="N", type=_positive_int, default=None,
                   help="refuse a line (or triple-quoted string) of a text RDF file longer than N bytes, "
                        "while reading (default 8 MiB)")
    p.add_argument("--max-xml-depth", metavar="N", type=_positive_int, default=None,
                   help="refuse RDF/XML whose elements nest deeper than N (default 256)")
    p.add_argument("--max-expansion-ratio", metavar="N", type=_positive_int, default=None,
                   help="refuse a compressed input that expands more than N times (default 200)")


def _progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="tqdm progress bars while fitting (default: when stderr is a terminal)")


_THREADS_HELP = (f"torch CPU threads, set before any work; overrides ${THREADS_ENV}. Default: ${THREADS_ENV}, "
                 "else OMP_NUM_THREADS when set, else the idle cores (cores available to kgrec minus the "
                 f"1-minute load average), at least 1 and at most {_MAX_DEFAULT_THREADS}. torch alone takes every "
                 "core: when other jobs keep them busy, its threads wait on each other at every step and "
                 "training runs many times slower than with one thread")


_QUIET_HELP = ("no progress lines (loading, fitting, validation epochs) and no progress bars on stderr; results, "
               "warnings and errors still print. An explicit --progress still shows the bars")


def build_parser() -> argparse.ArgumentParser:
    """The ``kgrec`` argument parser (one sub-parser per command)."""
    parser = argparse.ArgumentParser(
        prog="kgrec", formatter_class=_Formatter,
        description="Knowledge-graph-augmented recommendation from RDF.",
        epilog="Run 'kgrec COMMAND --help' for the options of a command. Start with 'kgrec demo'.")
    parser.add_argument("--version", action="version", version=f"kgrec {_version()}")
    parser.add_argument("--threads", metavar="N", dest="global_threads", type=_threads_arg, default=None,
                        help=_THREADS_HELP)
    parser.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    models = ", ".join(sorted(_models()))

    p = sub.add_parser(
        "demo", formatter_class=_Formatter, help="train and compare the models on the shipped MovieLens graph",
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
    p.add_argument("--epochs", metavar="N", type=_positive_int, default=None,
                   help="maximum epochs of the trained models (default: per model, see DEMO_PARAMS)")
    p.add_argument("--out", metavar="DIR", default="kgrec-out/demo", help="where results.json / results.md go")
    p.add_argument("--seed", metavar="S", type=int, default=2020, help="seed of the split and of training")
    _data_args(p)
    _progress_arg(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "inspect", formatter_class=_Formatter, help="print statistics of an RDF dataset after mapping",
        description="Load RDF file(s) through a mapping and print counts, density, triples per relation, "
                    "degree summaries (min/median/p90/max) of users, items and attribute entities, weakly "
                    "connected components, users/items without interactions and the loader's warnings.",
        epilog="example:\n  kgrec inspect kg_data/toy/toy.ttl\n  kgrec inspect data.ttl --mapping schema-org --json")
    p.add_argument("paths", metavar="PATH", nargs="+", help="RDF file(s) or folder(s), merged into one graph")
    _data_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser(
        "validate", formatter_class=_Formatter, help="check that RDF files parse and map; list warnings",
        description="Parse and map RDF file(s); print what was found and the warnings with their counts. "
                    "Per mapping rule, what it produced; every mapping term (class, predicate) that matches "
                    "nothing in the graph, with the closest terms the graph uses. Exit status 0 when the "
                    "files load, 2 with the error (file and line) when they do not.",
        epilog="example:\n  kgrec validate kg_data/toy/toy.ttl --strict")
    p.add_argument("paths", metavar="PATH", nargs="+", help="RDF file(s) or folder(s)")
    _data_args(p)
    p.add_argument("--strict", action="store_true", help="also exit 2 when a mapping term matches nothing in the graph "
                   "(data warnings never fail)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "train", formatter_class=_Formatter, help="train one model, save it with its valid/test metrics",
        description="Load, split, fit one model (validation lines on stderr), evaluate on the valid and test "
                    "parts, save the model into --out (safetensors + JSON) and write metrics.json and "
                    "metrics.md there. 'kgrec evaluate' reuses the recorded split settings.",
        epilog="examples:\n  kgrec train kg_data/toy/toy.ttl --model ease\n"
               "  kgrec train data.nt.gz --model lightgcn --split temporal --param epochs=50 --param dim=128\n"
               "  torchrun --nproc_per_node=2 -m kgrec train data.nt.gz --model lightgcn  "
               "# DDP; batch_size is per process (docs/distributed.md)")
    p.add_argument("paths", metavar="PATH", nargs="+", help="RDF file(s) or folder(s)")
    p.add_argument("--model", required=True, help=f"model name ({models})")
    _data_args(p)
    p.add_argument("--split", choices=_SPLITS, default="random", help="split strategy")
    p.add_argument("--ratios", metavar="T,V,E", type=_ratios, default=(0.8, 0.1, 0.1), help="train,valid,test shares")
    p.add_argument("--seed", metavar="S", type=int, default=2020, help="seed of the split")
    p.add_argument("--param", metavar="KEY=VALUE", type=parse_param, action="append",
                   help="model parameter (repeatable), typed like its default: int, float, true/false, none "
                        "or text; see the model's config for the keys")
    p.add_argument("--ks", metavar="K,K", type=_ks, default=(10, 20), help="metric cut-offs")
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
    _scenario_arg(p, "train, validate and test on the interactions of this scenario only (repeatable)")
    _progress_arg(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate", formatter_class=_Formatter, help="evaluate a saved model on a rebuilt split",
        description="Reload a model saved by 'kgrec train' (or Recommender.save), rebuild the split from the data "
                    "(by default with the strategy, ratios, seed, mapping and format recorded in MODEL_DIR/"
                    "metrics.json, else random 80/10/10 seed 2020), evaluate and write evaluation.json and "
                    "evaluation.md (into --out, default MODEL_DIR).",
        epilog="example:\n  kgrec evaluate kgrec-out/ease kg_data/toy/toy.ttl --ks 5,10")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="directory written by 'kgrec train'")
    p.add_argument("paths", metavar="PATH", nargs="+", help="the RDF file(s) the model was trained on")
    _data_args(p)
    p.add_argument("--split", choices=_SPLITS, default=None, help="split strategy (default: as recorded)")
    p.add_argument("--ratios", metavar="T,V,E", type=_ratios, default=None, help="shares (default: as recorded)")
    p.add_argument("--seed", metavar="S", type=int, default=None, help="split seed (default: as recorded)")
    p.add_argument("--part", choices=("test", "valid"), default="test", help="the part to evaluate")
    p.add_argument("--ks", metavar="K,K", type=_ks, default=(10, 20), help="metric cut-offs")
    p.add_argument("--out", metavar="DIR", default=None, help="where the result files go (default: MODEL_DIR)")
    _scenario_arg(p, "evaluate on the test (--part) interactions of this scenario only, masking its training "
                     "ones, as 'kgrec train --scenario' does (repeatable; default: the scenarios the model was "
                     "trained on, from MODEL_DIR/metrics.json)")
    _add_load_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "recommend", formatter_class=_Formatter, help="top-k items for users of a saved model",
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
    _add_load_options(p)
    p.set_defaults(func=cmd_recommend)

    for what, func in (("users", cmd_users), ("items", cmd_items)):
        labels = " and a tab and its label" if what == "items" else ""
        p = sub.add_parser(
            what, formatter_class=_Formatter, help=f"list the {what} of a saved model, one IRI a line",
            description=f"Print the {what} a saved model knows, one IRI a line{labels}, in the model's order "
                        f"(its integer ids): plain text to pipe into grep, cut or head.",
            epilog=f"examples:\n  kgrec {what} kgrec-out/ease\n  kgrec {what} kgrec-out/ease --limit 5\n"
                   f"  kgrec {what} kgrec-out/ease | grep -i star" + (" | cut -f1" if labels else ""))
        p.add_argument("model_dir", metavar="MODEL_DIR", help="directory written by 'kgrec train'")
        p.add_argument("--limit", metavar="N", type=_positive_int, default=None,
                       help=f"print the first N {what} only (default: all)")
        _add_load_options(p)
        p.set_defaults(func=func)

    p = sub.add_parser(
        "explain", formatter_class=_Formatter, help="why a saved model recommends an item to a user",
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
    p.add_argument("--max-paths", metavar="N", type=_positive_int, default=3, help="KG paths to show")
    p.add_argument("--max-hops", metavar="N", type=_positive_int, default=3, help="KG edges per path")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    _data_args(p)
    _add_load_options(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "report", formatter_class=_Formatter, help="an HTML page of a run: metrics, curves, long tail, users",
        description="Turn a run directory (what 'kgrec demo --out DIR' or 'kgrec train --out DIR' wrote: "
                    "results.json or metrics.json, and report.json) into one self-contained HTML page (plots "
                    "embedded, nothing fetched): metrics table, metrics vs K, training curves, popularity / long "
                    "tail / coverage of the recommendations, and sample users with their history, top-10 and "
                    "explanations.",
        epilog="example:\n  kgrec demo && kgrec report kgrec-out/demo")
    p.add_argument("run_dir", metavar="RUN_DIR", help="directory written by 'kgrec demo' or 'kgrec train'")
    p.add_argument("--out", metavar="FILE", default=None, help="the page (default: RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "update", formatter_class=_Formatter, help="continue a saved model on new interactions",
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
    _scenario_arg(p, "add only the new interactions of this scenario (repeatable): a model trained on a source "
                     "scenario continued on a target one is a transfer")
    _data_args(p)
    _add_load_options(p)
    p.set_defaults(func=cmd_update)

    p = sub.add_parser(
        "convert", formatter_class=_Formatter, help="convert a public dataset to kgrec RDF (N-Triples)",
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
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "generate", formatter_class=_Formatter, help="write a synthetic recommendation KG (N-Triples)",
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
    p.set_defaults(func=cmd_generate)

    # the service's options and body live in kgrec/serve/command.py
    p = sub.add_parser("serve", formatter_class=_Formatter, help="serve a model over HTTP, learning from posted events",
                       description=serve_command.DESCRIPTION, epilog=serve_command.EPILOG)
    serve_command.add_arguments(p)
    _add_load_options(p)
    p.set_defaults(func=serve_command.run)

    from kgrec import bench

    p = sub.add_parser(
        "benchmark", formatter_class=_Formatter, help="run the benchmark suite: datasets x splits x models",
        description="Convert each dataset to RDF, load it with kgrec.load, fit every model on every split and "
                    "write <out>/<dataset>/<split>.{json,md,png} and RESULTS.md (same as benchmarks/run.py).",
        epilog="examples:\n  kgrec benchmark --quick --datasets lastfm --models mostpop,ease,cke\n"
               "  kgrec benchmark --data-root ../shared/data --jobs 4")
    bench.add_arguments(p)
    p.set_defaults(func=lambda a: bench.run(a, prog="kgrec"))
    for name, p in sub.choices.items():
        if name != "benchmark":  # whose own --threads sets the threads of each fit
            # also after the command; SUPPRESS keeps a value given before it
            p.add_argument("--threads", metavar="N", dest="global_threads", type=_threads_arg,
                           default=argparse.SUPPRESS, help="torch threads (same as 'kgrec --threads N COMMAND')")
            p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                           help="no progress lines or bars (same as 'kgrec --quiet COMMAND')")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kgrec`` command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    A closed stdout (the reader of a pipe exited) ends any command quietly with status 141.
    """
    try:
        return _run(argv)
    except BrokenPipeError:
        return _stdout_closed()


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as e:  # --help, --version and usage errors: return the status instead of exiting
        sys.stdout.flush()  # --help | head: a closed pipe shows up here
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    if getattr(args, "out", None) is None and args.command == "train":
        args.out = os.path.join("kgrec-out", args.model)
    global _quiet
    _quiet = args.quiet
    try:
        _set_threads(args.global_threads)
        with warnings.catch_warnings():
            # torch's notes on its own sparse kernels say nothing a kgrec user can act on
            for message in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            status = int(args.func(args))
        sys.stdout.flush()  # a reader that went away shows up here at the latest, not at interpreter exit
        return status
    except KgrecError as e:
        print(f"kgrec: error: {e}", file=sys.stderr)
        return 2
    finally:
        _quiet = False


def _stdout_closed() -> int:
    """The reader of stdout went away (``kgrec recommend ... | head``): stop quietly, as a Unix tool does.

    stdout is pointed at the null device so that Python's flush at exit does not raise (and print) the same
    error again; the status is the shell's one for a process ended by SIGPIPE.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # stdout is no file (an in-process caller's buffer): nothing is flushed at exit
    return _SIGPIPE_STATUS


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
