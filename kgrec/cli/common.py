"""What the commands share: logging under ``--quiet``, argument types, typed ``--param`` values, the
data and load options, saved-run records and IRI checks with close-match hints.

Each command lives in its own module of :mod:`kgrec.cli` and imports from here; nothing here imports a command.
Heavy imports (torch, the models) are deferred to the functions that need them, so ``kgrec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import sys
import time
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kgrec.errors import KgrecError, UnknownIRIError

#: ``--quiet`` of the running command (set by :func:`kgrec.cli.main.main` for each call).
quiet = False

SPLITS = ("random", "temporal", "global-time", "cold-item")
DEFAULT_SPLIT = {"strategy": "random", "seed": 2020, "ratios": [0.8, 0.1, 0.1]}
RUN_FILE = "metrics.json"  # written by `kgrec train` beside the saved model
QUIET_WARNINGS = (r"Sparse CSR tensor support is in beta", r"Sparse invariant checks are implicitly disabled")


def log(message: str) -> None:
    from tqdm import tqdm

    from kgrec.training import distributed

    if quiet or not distributed.is_main():  # under torchrun only rank 0 talks
        return
    # tqdm.write moves an open progress bar below the line instead of breaking it
    tqdm.write(message, file=sys.stderr)


def default_data_dir() -> Path:
    from kgrec.data.mapping import data_dir

    return data_dir()


def model_registry() -> dict:
    from kgrec.models import MODELS

    return MODELS


def check_model(name: str, option: str = "--model") -> str:
    models = model_registry()
    if name not in models:
        raise KgrecError(f"'{option}' must be one of {', '.join(sorted(models))} (got {name!r})")
    return name


def params_of(model: str) -> dict[str, Any]:
    from kgrec.api import Recommender

    return Recommender.params_of(check_model(model))


def scalar(raw: str) -> Any:
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


def typed_params(pairs: Sequence[tuple[str, str]], defaults: dict[str, Any], what: str) -> dict[str, Any]:
    """Type ``--param`` values after the default of the same field.

    Unknown keys are passed on untyped: the model's (or converter's) error lists the accepted ones. A key
    ``name.field`` sets one field of a nested settings object (``priors.ease_reg=500``,
    ``priors.seq_weight=0,1,2``).
    """
    out: dict[str, Any] = {}
    for key, raw in pairs:
        value = scalar(raw)
        head, dot, field = key.partition(".")
        if dot and dataclasses.is_dataclass(defaults.get(head)):  # a nested setting: --param priors.ease_reg=500
            nested = out.setdefault(head, {})
            if isinstance(nested, dict):  # comma-separated candidates: priors.seq_weight=0,1,2
                nested[field] = [scalar(x) for x in raw.split(",")] if "," in raw else value
                continue
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


def ks_arg(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        ks = ()
    if not ks or any(k <= 0 for k in ks):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers such as 10,20 (got {text!r})")
    return ks


def ratios_arg(text: str) -> tuple[float, float, float]:
    try:
        r = tuple(float(x) for x in text.split(","))
    except ValueError:
        r = ()
    if len(r) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated shares such as 0.8,0.1,0.1 (got {text!r})")
    return r  # type: ignore[return-value]


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer (got {text!r})")
    return v


def load_graph(paths: Sequence[str], mapping: str | None, fmt: str | None, args=None):
    """``kgrec.load`` with its summary warning silenced (commands print ``kg.warnings`` themselves) and
    the input limits of :func:`data_args` when the command has them.
    """
    from kgrec import api
    from kgrec.data.stores import load_store

    names = ("allow_network", "max_file_bytes", "max_literal_chars", "max_line_bytes", "max_xml_depth",
             "max_expansion_ratio")
    limits = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    store = getattr(args, "store", None)
    if store is not None and paths:
        raise KgrecError("give RDF files or --store, not both (a store directory is given as a PATH)")
    if store is None and not paths:
        raise KgrecError("give RDF files or folders, or --store URL (a SPARQL endpoint)")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"kgrec\.load\(", category=UserWarning)
        if store is not None:
            return load_store(store, mapping=mapping, page_size=args.page_size, timeout=args.store_timeout,
                                  **{k: v for k, v in limits.items() if k in ("max_file_bytes", "max_literal_chars")})
        return api.load(list(paths), mapping=mapping, format=fmt, **limits)


def note_warnings(kg) -> None:
    if kg.warnings:
        total = sum(kg.warnings.values())
        log(f"kgrec: note: {total} problem(s) of {len(kg.warnings)} kind(s) while loading; "
             f"'kgrec validate' lists them")


def progress_bars(args) -> bool:
    """Progress bars: as ``--progress`` / ``--no-progress`` say, else off with ``--quiet``, else when stderr is a
    terminal (a log file or a pipe gets no bars).
    """
    if args.progress is not None:
        return bool(args.progress)
    return not args.quiet and sys.stderr.isatty()


def with_run_params(model: str, params: dict[str, Any], progress: bool) -> dict[str, Any]:
    accepted = params_of(model)
    if "progress" in accepted and "progress" not in params:
        params = {**params, "progress": progress}
    return params


def epoch_logger(model: str):
    def log_line(line: str) -> None:
        log(f"[{model}] {line}")

    return log_line


def metric_columns(ks: Sequence[int]) -> list[tuple[str, str]]:
    """Recall and NDCG at every k; hit, MRR and coverage at the first k."""
    k0 = ks[0]
    return ([(f"recall@{k}", f"Recall@{k}") for k in ks] + [(f"ndcg@{k}", f"NDCG@{k}") for k in ks]
            + [(f"hit@{k0}", f"Hit@{k0}"), (f"mrr@{k0}", f"MRR@{k0}"), (f"coverage@{k0}", f"coverage@{k0}")])


def fit_timed(rec, kg, sp, checkpoint_dir=None, resume: bool = False) -> float:
    t0 = time.perf_counter()
    rec.fit(kg, sp, log=epoch_logger(rec.model_name), checkpoint_dir=checkpoint_dir, resume=resume)
    return time.perf_counter() - t0


def version() -> str:
    from kgrec.version import __version__

    return __version__


def utc_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")



class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
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


def data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mapping", metavar="M", default=None,
                   help="mapping profile name (kgrec, schema-org) or a .toml/.yaml mapping file "
                        "(default: the kgrec profile)")
    p.add_argument("--format", metavar="F", default=None,
                   help="RDF format of every file (turtle, ntriples, nquads, trig, xml, json-ld, n3); "
                        "default: guessed from each suffix")
    p.add_argument("--allow-network", action="store_true", default=None,
                   help="let http(s) URLs be read as inputs (off: nothing is ever fetched)")
    p.add_argument("--max-file-bytes", metavar="N", type=positive_int, default=None,
                   help="refuse an input larger than N bytes after decompression (default 2 GiB)")
    p.add_argument("--max-literal-chars", metavar="N", type=positive_int, default=None,
                   help="refuse a literal longer than N characters (default 1 Mi)")
    p.add_argument("--max-line-bytes", metavar="N", type=positive_int, default=None,
                   help="refuse a line (or triple-quoted string) of a text RDF file longer than N bytes, "
                        "while reading (default 8 MiB)")
    p.add_argument("--max-xml-depth", metavar="N", type=positive_int, default=None,
                   help="refuse RDF/XML whose elements nest deeper than N (default 256)")
    p.add_argument("--max-expansion-ratio", metavar="N", type=positive_int, default=None,
                   help="refuse a compressed input that expands more than N times (default 200)")


def store_args(p: argparse.ArgumentParser) -> None:
    """``--store URL`` in place of the PATH arguments (logic in :mod:`kgrec.data.stores`)."""
    from kgrec.data.stores import DEFAULT_PAGE_SIZE, DEFAULT_TIMEOUT

    p.add_argument("--store", metavar="URL", default=None,
                   help="read the graph from a SPARQL 1.1 endpoint (http://HOST:PORT/query for oxigraph serve) "
                        "instead of files: the triples the mapping reads, in pages; an Oxigraph store directory "
                        "is given as a PATH")
    p.add_argument("--page-size", metavar="N", type=positive_int, default=DEFAULT_PAGE_SIZE,
                   help="triples per request to --store")
    p.add_argument("--store-timeout", metavar="S", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds to wait for --store's answer to one page")


def progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="tqdm progress bars while fitting (default: when stderr is a terminal)")


def scenario_arg(p, help_text: str) -> None:
    p.add_argument("--scenario", metavar="NAME", action="append", default=None,
                   help=help_text + "; names come from the mapping (see kg_data/mappings/README.md)")


def scenario_split(kg, sp, names):
    """``sp`` with every part restricted to the scenarios ``names`` (``--scenario``); as is without names."""
    if not names:
        return sp
    from kgrec.data.scenarios import select

    return select(kg, sp, names, "--scenario")


def empty_part(sp, part: str, ratios: Sequence[float], scenarios: Sequence[str] | None) -> str | None:
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


def check_part(sp, part: str, ratios: Sequence[float], scenarios: Sequence[str] | None) -> None:
    """Refuse to evaluate an empty part.

    Raises:
        KgrecError: ``sp.<part>`` holds no interaction; the message names ``--ratios`` (and ``--scenario``).
    """
    why = empty_part(sp, part, ratios, scenarios)
    if why:
        raise KgrecError(f"{why}: there is nothing to evaluate; give the {part} part a share, "
                         f"e.g. --ratios 0.8,0.1,0.1")


def saved_run(model_dir: Path) -> dict[str, Any]:
    """What ``kgrec train`` recorded beside the model (split, mapping, format), or ``{}``."""
    path = model_dir / RUN_FILE
    if not path.is_file():
        return {}
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise KgrecError(f"'{path}' line {e.lineno}: invalid JSON ({e.msg})") from None
    return run if isinstance(run, dict) else {}


def load_model(directory, args):
    """``Recommender.load`` with the text model given on the command line: a checkpoint never
    names the code or files it loads (:mod:`kgrec.training.checkpoint_schema`).
    """
    from kgrec import api

    return api.Recommender.load(directory, text_model=args.text_model, text_allow_pickle=args.text_allow_pickle)


def add_load_options(p) -> None:
    p.add_argument("--text-model", metavar="DIR", default=None,
                   help="local text model directory of a hybrid/content-knn model (default: the packaged "
                        "MiniLM); needed when the model was trained with another one, never read from the "
                        "checkpoint")
    p.add_argument("--text-allow-pickle", action="store_true",
                   help="accept a --text-model directory holding only pickle weights (only if you trust it)")


def local_name(iri: str) -> str:
    return iri.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def closest(iri: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Up to ``n`` known IRIs whose local name is close to the one of ``iri``, case aside: the same name
    first (``u1`` for ``.../user/u1``), then difflib's closest. Names are compared, not whole IRIs: IRIs
    share long namespaces, so any two of them look alike to difflib.
    """
    by_name: dict[str, list[str]] = {}
    for k in known:
        by_name.setdefault(local_name(k).lower(), []).append(k)
    name = local_name(iri).lower()
    picked = list(by_name.get(name, []))
    for close_name in difflib.get_close_matches(name, list(by_name), n=n, cutoff=0.6):
        picked += by_name[close_name]
    return list(dict.fromkeys(picked))[:n]


def check_known(vocab, iri: str, what: str, option: str, model_dir) -> None:
    """Raise :class:`UnknownIRIError` for an IRI the model does not know, with the closest known ones.

    Raises:
        UnknownIRIError: ``iri`` is not in ``vocab``; names ``option``, up to three close IRIs (difflib) and the
            ``kgrec users`` / ``kgrec items`` command that lists them all.
    """
    if iri in vocab:
        return
    known = vocab.to_list()
    close = closest(iri, known)
    hint = f"; closest known: {', '.join(close)}" if close else ""
    raise UnknownIRIError(f"'{option}': unknown {what} {iri!r} ({len(known)} {what}s known to the model in "
                          f"'{model_dir}'){hint}; 'kgrec {what}s {model_dir}' lists them")
