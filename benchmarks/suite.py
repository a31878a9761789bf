"""The benchmark suite: datasets x splits x models in one command, results as JSON + Markdown + PNG.

Used by ``python benchmarks/run.py`` and ``kgrec benchmark`` from a source checkout (same arguments, same
code); it lives beside the other benchmark scripts, outside the library, because it needs the checkout:
it writes into ``benchmarks/results`` and reads the shared data beside the repository. Every dataset
goes through the RDF path: the publisher's files -> :mod:`kgrec.data.convert` -> N-Triples ->
:func:`kgrec.load` -> a cached :class:`~kgrec.data.graph.KnowledgeGraph`. Per (dataset, split) it writes
``<out>/<dataset>/<split>.json`` (every run: config, seed, all figures, training curve, commit,
machine, package versions), ``<split>.md`` (the table) and ``<split>.png`` (metric vs K, training
curves, accuracy vs training time); then ``RESULTS.md`` from all the JSON files found under ``<out>``.

Protocols (PROTOCOL.md): ranking splits are kgrec's per-user splits with split seed 2020 (MovieLens-100K
``random``/``temporal``: the RecBole peer splits of ANCHORS.md), full ranking, selection on validation
NDCG@10; ``ctr`` is the RippleNet/KGCN protocol (random 6:2:2 of the labelled rows, AUC and F1 on test).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from kgrec.data import convert as cv
from kgrec.data.convert import convert
from kgrec.data.graph import KnowledgeGraph
from kgrec.data.splits import split_from_pairs
from kgrec.errors import KgrecError
from kgrec.evaluation.significance import paired_test, per_user_means, verdict
from kgrec.reports.tables import atomic_write_text, markdown_table, write_results
from kgrec.version import __version__

from tuning import DEFAULT_BUDGET, SPACES, trials

__all__ = ["DATASETS", "ALIASES", "peer_rows", "tree_state", "model_commit", "add_arguments", "run", "main", "machine",
           "load_dataset", "fit_one", "peer_split", "ctr_rows", "write_results_md"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = os.environ.get("KGREC_DATA_ROOT", str(ROOT.parent / "shared" / "data"))
DEFAULT_CACHE = os.environ.get("KGREC_BENCH_CACHE", str(ROOT / ".cache" / "bench"))
DEFAULT_OUT = str(ROOT / "benchmarks" / "results")
IRI_BASE = "https://w3id.org/kgrec/data/"
KS = (1, 5, 10, 20, 50)


# --------------------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives under the data root, how it becomes RDF, and where users get it."""

    name: str
    folder: str
    title: str
    source: str
    terms: str
    iri_name: str  # the <dataset> part of the converter's minted IRIs
    ctr_file: str | None = None  # labelled rows (user item label) of the CTR protocol, in ``folder``
    has_time: bool = False
    convert_kwargs: dict = field(default_factory=dict)

    def convert(self, src: Path, out: Path) -> dict:
        fn = {"movielens-100k": cv.convert_movielens_100k, "movielens-small": cv.convert_movielens_latest_small,
              "lastfm": cv.convert_book_crossing, "book-crossing": cv.convert_book_crossing}[self.name]
        return fn(src, out, **self.convert_kwargs)


DATASETS: dict[str, DatasetSpec] = {d.name: d for d in (
    DatasetSpec("movielens-100k", "movielens-100k", "MovieLens-100K + Freebase KG + DBpedia abstracts",
                "https://grouplens.org/datasets/movielens/100k/ (ratings); RecBole's ml-100k.kg/.link "
                "(RUCAIBox/RecBole dataset_example); DBpedia enrichment from AKSW/frankgraphbench",
                "GroupLens research terms: non-commercial, no redistribution; RecBole files MIT; "
                "FranKGraphBench Apache-2.0, DBpedia text CC BY-SA", "movielens-100k", has_time=True),
    # no tag edges (tags=False, also the converter's default): a tag says who met which item and leaks
    # held-out (user, item) pairs and the future into random / temporal evaluations
    DatasetSpec("movielens-small", "movielens-latest-small", "MovieLens latest-small (2018) + genres, years (no tags)",
                "https://grouplens.org/datasets/movielens/latest/ (ml-latest-small.zip)",
                "GroupLens: non-commercial; transformations may be redistributed under the same terms "
                "(kgrec ships it as kg_data/movielens-small)", "movielens-small", has_time=True,
                convert_kwargs={"tags": False}),
    DatasetSpec("lastfm", "lastfm-kg/processed", "Last.FM (hetrec2011) + Microsoft Satori KG, KGCN/MCCLK form",
                "hetrec2011 Last.fm (https://grouplens.org/datasets/hetrec-2011/) with the Satori KG and "
                "preprocessing of hwwang55/KGCN data/music (processed form: CCIIPLab/MCCLK data/music)",
                "hetrec2011: non-commercial research use; KGCN repository MIT", "lastfm-kgcn",
                ctr_file="ratings_final.txt", convert_kwargs={"dataset": "lastfm-kgcn"}),
    DatasetSpec("book-crossing", "book-crossing-kg", "Book-Crossing + Microsoft Satori KG, RippleNet/MCCLK form",
                "Book-Crossing (Ziegler et al. 2005) with the Satori KG, as preprocessed by hwwang55/RippleNet "
                "and CCIIPLab/MCCLK data/book", "no licence stated; cite RippleNet/MKR/MCCLK", "book-crossing",
                ctr_file="ratings_final.txt"),
)}


def tree_state(ignore=()) -> tuple[str, list[str]]:
    """The full commit hash of the checkout and its tracked files with uncommitted changes, leaving out
    paths under ``ignore`` (the results being written: a rerun in the same checkout is still clean).
    """
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip() or "unknown"
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True).stdout.splitlines()
    except OSError:
        return "unknown", []
    skip = [Path(p).resolve() for p in ignore]
    dirty = []
    for line in status:
        path = (ROOT / line[3:].split(" -> ")[-1].strip('"')).resolve()
        if not any(path == s or s in path.parents for s in skip):
            dirty.append(line[3:])
    return commit, dirty


def machine(ignore=()) -> dict:
    """Where a figure was measured: CPU model, threads, GPU, versions, the full commit and whether the
    tree had uncommitted changes (outside ``ignore``).
    """
    import torch_geometric
    import transformers

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit, dirty = os.environ.get("KGREC_COMMIT", ""), []  # a copy without .git (a GPU machine) says it
    if not commit:
        commit, dirty = tree_state(ignore)
    versions = {}
    for mod in ("numpy", "scipy", "sklearn", "rdflib"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    return {
        "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__, "transformers": transformers.__version__, **versions,
        "kgrec": __version__, "commit": commit, "dirty": bool(dirty), "dirty_files": dirty[:10],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def dataset_source(name: str, data_root: str | os.PathLike) -> Path:
    """The dataset's folder under ``data_root``; a clear error naming the path when it is missing."""
    if name not in DATASETS:
        raise KgrecError(f"'--datasets': unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    src = Path(data_root) / DATASETS[name].folder
    if not src.is_dir():
        spec = DATASETS[name]
        raise KgrecError(f"'--data-root': the {name} folder '{src}' is missing; download it from "
                         f"{spec.source} (terms: {spec.terms}) and unpack it there")
    return src


def load_dataset(name: str, data_root: str, cache: str) -> "KnowledgeGraph":  # noqa: F821
    """Convert the original files to RDF once, load them through ``kgrec.load``, cache the graph.

    The conversion and RDF load timings of the first run are kept in ``<cache>/<name>/load.json``.
    """
    from kgrec import api

    cache_dir = Path(cache) / name
    graph_dir = cache_dir / "graph"
    if (graph_dir / "graph.json").is_file():
        return KnowledgeGraph.load(graph_dir)
    src = dataset_source(name, data_root) if name in DATASETS else None
    cache_dir.mkdir(parents=True, exist_ok=True)
    rdf = cache_dir / f"{name}.nt.gz"
    t0 = time.perf_counter()
    if src is not None:
        counts = DATASETS[name].convert(src, rdf)
    else:  # a name only kgrec.data.convert knows

        counts = convert(name, data_root, rdf)
    t1 = time.perf_counter()
    kg = api.load(rdf)
    t2 = time.perf_counter()
    info = {"convert_seconds": t1 - t0, "rdf_triples": counts.get("triples"), "load_seconds": t2 - t1,
            "load_triples_per_second": (counts.get("triples") or 0) / max(t2 - t1, 1e-9),
            "rdf_bytes": rdf.stat().st_size, "counts": counts, "torch_threads": torch.get_num_threads()}
    print(f"[{name}] converted to RDF in {t1 - t0:.1f} s ({counts.get('triples')} triples), "
          f"loaded in {t2 - t1:.1f} s: {kg}", file=sys.stderr)
    kg.save(graph_dir)
    (cache_dir / "load.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return kg


def model_commit(payload: dict, model: str) -> str:
    """The commit that produced ``model``'s runs in a suite result file: the file's own, or for runs kept
    from an earlier file by ``--merge``, the commit of that earlier run (its ``"merged"`` entry).
    """
    kept = {m: run["commit"] for run in payload.get("merged") or [] for m in run["models"]}
    return kept.get(model, payload["machine"]["commit"])


def load_info(name: str, cache: str) -> dict | None:
    f = Path(cache) / name / "load.json"
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None


# ----------------------------------------------------------------------------------------- splits
def peer_split(kg, data_root: str, kind: str):
    """MovieLens-100K ``random``/``temporal``: the RecBole peer splits of ANCHORS.md; else kgrec's own."""
    from kgrec import api

    if kind not in ("random", "temporal"):
        return api.split(kg, kind, seed=2020)
    base = f"{IRI_BASE}movielens-100k/"
    parts = {}
    for part in ("train", "valid", "test"):
        a = np.loadtxt(Path(data_root) / "movielens-100k" / "peer-splits" / kind / f"{part}.tsv", dtype=np.int64,
                       skiprows=1, ndmin=2)
        parts[part] = [(f"{base}user/{u}", f"{base}item/{i}") for u, i in a]
    return split_from_pairs(kg, parts, name=f"peer-{kind}", seed=2020)


def ctr_rows(name: str, data_root: str, seed: int = 2020) -> dict[str, np.ndarray]:
    """The CTR protocol's labelled rows ``[n, 3]`` (user, item, label), randomly cut 6:2:2 (seeded)."""
    spec = DATASETS[name]
    if spec.ctr_file is None:
        raise KgrecError(f"'--splits': the ctr protocol needs labelled rows; {name} has none "
                         f"(datasets with them: {', '.join(d for d, s in DATASETS.items() if s.ctr_file)})")
    rows = np.loadtxt(dataset_source(name, data_root) / spec.ctr_file, dtype=np.int64, ndmin=2)[:, :3]
    perm = np.random.default_rng(seed).permutation(len(rows))
    a, b = int(0.6 * len(rows)), int(0.8 * len(rows))
    return {"train": rows[perm[:a]], "valid": rows[perm[a:b]], "test": rows[perm[b:]]}


def make_split(kg, name: str, kind: str, data_root: str, seed: int = 2020):
    """The split ``kind`` of dataset ``name`` (``ctr``: the positives of each part of the 6:2:2 cut)."""
    from kgrec import api

    if kind == "ctr":
        base = f"{IRI_BASE}{DATASETS[name].iri_name}/"
        parts = {p: [(f"{base}user/{u}", f"{base}item/{i}") for u, i, y in rows if y == 1]
                 for p, rows in ctr_rows(name, data_root, seed).items()}
        return split_from_pairs(kg, parts, name="ctr-6:2:2", seed=seed)
    if name == "movielens-100k":
        return peer_split(kg, data_root, kind)
    if kind in ("temporal", "global-time") and name in DATASETS and not DATASETS[name].has_time:
        raise KgrecError(f"'--splits': {kind!r} needs interaction times; {name} has none")
    return api.split(kg, kind, seed=seed)


# ----------------------------------------------------------------------------------------- models
#: in --quick mode, catalogues larger than this search only the first trial (EASE's O(I^3) inverse and
#: ItemKNN's dense I x I co-occurrence dominate there)
QUICK_LARGE_ITEMS = 5000
#: --quick: epoch caps and patience of the trained models (a smoke run, not headline figures)
QUICK_TRAIN = {"epochs": 20, "patience": 3}
QUICK_HYBRID = {"epochs": 8, "patience": 2}


def _alias(name: str) -> str:
    return "".join(c for c in name.lower().replace("w/o", "no") if c.isalnum() or c == "+")


#: ``--models`` names: each label of ``tuning.SPACES`` in lower case without spaces or
#: dashes (``bprmf``, ``ease+rules``, ``hybridnopriors``), and the kgrec model names
ALIASES = {**{_alias(s.model): label for label, s in reversed(list(SPACES.items()))},
           **{_alias(label): label for label in SPACES}}


def _is_hybrid(label: str) -> bool:
    return SPACES[label].model == "hybrid"


def fit_one(kg, sp, model: str, params: dict | list[dict], seed: int, extra: dict, ks=(10, 20),
            select: Callable | None = None, test: Callable | None = None,
            select_epochs: bool = False, cost: Callable[[dict], int] | None = None) -> tuple["Recommender", dict]:  # noqa: F821
    """Fit ``model`` with each candidate configuration, keep the best on validation, score it on test once.

    Args:
        params: one configuration, a list of them (the trials of ``tuning.trials``), or a
            configuration holding ``"grid"`` (every combination of its values).
        select: ``select(rec) -> (score, valid figures)`` to choose among candidates (default:
            validation NDCG@10 of full ranking).
        test: ``test(rec) -> test figures`` (default: full-ranking metrics at ``ks`` on ``split.test``,
            with each test user's NDCG@10 and Recall@20 kept in the record's ``per_user`` for the
            paired tests of :mod:`kgrec.evaluation.significance`).
        select_epochs: also select a gradient-trained model's epoch on ``select``'s score (called
            on every validated epoch) instead of validation NDCG@10.
        cost: validation evaluations one candidate makes (default one): the record's ``trials``.
    """
    from kgrec import api

    accepted = api.Recommender.params_of(model)
    candidates = params if isinstance(params, list) else _candidates(params)
    select = select or (lambda rec: (lambda v: (v["ndcg@10"], v))(rec.evaluate(sp, ks=ks, part="valid")))
    best, best_rec, best_params, best_valid, searched = -np.inf, None, None, None, []
    t0 = time.perf_counter()
    for cand in candidates:
        cand = dict(cand)
        if "seed" in accepted:
            cand["seed"] = seed
        cand.update({k: v for k, v in extra.items() if k in accepted})
        fit_kw = {"validate": lambda r: {"select": select(r)[0]}, "metric": "select"} if select_epochs else {}
        rec = api.Recommender(model, **cand).fit(kg, sp, **fit_kw)
        score, valid = select(rec)
        info = rec.fit_info
        searched.append({"params": cand, "valid_score": score, "best_epoch": info.get("best_epoch"),
                         "epochs_run": info.get("epochs_run"), "hit_epoch_cap": _hit_cap(rec)})
        if score > best or best_rec is None:
            best, best_rec, best_params, best_valid = score, rec, cand, valid
    search_seconds = time.perf_counter() - t0
    if test:
        test_figures, per_user = test(best_rec), None
    else:
        test_figures = best_rec.evaluate(sp, ks=ks, part="test", per_user=True)
        pu = test_figures.pop("per_user")
        per_user = {k: pu[k] for k in ("users", "ndcg@10", "recall@20") if k in pu}
    info = best_rec.fit_info
    record = {
        "model": model, "params": best_params, "seed": seed, "valid": best_valid, "test": test_figures,
        "per_user": per_user, "best_epoch": info.get("best_epoch"), "epochs_run": info.get("epochs_run"),
        "seconds_per_epoch_median": info.get("seconds_per_epoch_median"),
        "seconds_to_best": info.get("seconds_to_best", info.get("fit_seconds")),
        "fit_seconds": info.get("fit_seconds"), "search_seconds": search_seconds,
        "peak_rss_mb": info.get("peak_rss_mb"), "peak_gpu_mb": info.get("peak_gpu_mb"),
        "users_per_second": test_figures.get("users_per_second"), "searched": searched,
        "trials": sum((cost or (lambda c: 1))(c) for c in candidates),
        "cap_hits": sum(bool(s["hit_epoch_cap"]) for s in searched),
        "chosen_params": {**best_params, **best_rec.estimator.chosen_params()},
        "fit_info": {k: v for k, v in info.items() if k != "valid"},
    }
    return best_rec, record


def _candidates(params: dict) -> list[dict]:
    params = dict(params)
    grid = params.pop("grid", None)
    if not grid:
        return [params]
    keys = list(grid)
    combos = np.array(np.meshgrid(*[grid[k] for k in keys], indexing="ij")).reshape(len(keys), -1).T
    return [dict(params, **{k: type(grid[k][0])(v) for k, v in zip(keys, row)}) for row in combos]


def _hit_cap(rec) -> bool | None:
    """Whether a trained model's selected epoch is its last allowed one (None: not trained by epochs)."""
    best, cap = rec.fit_info.get("best_epoch"), getattr(rec.config, "epochs", None)
    if not best or cap is None:
        return None
    return int(best) >= int(cap)


# ---------------------------------------------------------------------------------------- CTR
def _pair_scores(rec, kg, name: str, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Raw model scores of (user, item) rows; users/items unknown to the graph score the minimum."""
    base = f"{IRI_BASE}{DATASETS[name].iri_name}/"
    uid = np.array([kg.users.id(f"{base}user/{u}") if f"{base}user/{u}" in kg.users else -1 for u in rows[:, 0]])
    iid = np.array([kg.items.id(f"{base}item/{i}") if f"{base}item/{i}" in kg.items else -1 for i in rows[:, 1]])
    out = np.full(len(rows), np.nan)
    ok = (uid >= 0) & (iid >= 0)
    users = np.unique(uid[ok])
    for start in range(0, len(users), 1024):
        batch = users[start:start + 1024]
        s = rec.score(torch.as_tensor(batch)).numpy()
        sel = ok & np.isin(uid, batch)
        out[sel] = s[np.searchsorted(batch, uid[sel]), iid[sel]]
    unknown = int((~ok).sum())
    out[~ok] = np.nanmin(out) if ok.any() else 0.0
    return out, unknown


def ctr_figures(scores: np.ndarray, labels: np.ndarray, calib: tuple[float, float] | None = None) -> dict:
    """AUC (sklearn ``roc_auc_score``) and F1 at 0.5 of sigmoid(score) and of the calibrated sigmoid."""
    from sklearn.metrics import f1_score, roc_auc_score

    p_raw = 1.0 / (1.0 + np.exp(-np.clip(scores, -50, 50)))
    out = {"auc": float(roc_auc_score(labels, scores)), "f1_sigmoid": float(f1_score(labels, p_raw >= 0.5)),
           "rows": int(len(labels))}
    if calib is not None:
        a, b = calib
        out["f1"] = float(f1_score(labels, (a * scores + b) >= 0.0))  # sigmoid(a s + b) >= 0.5
        out["accuracy"] = float(np.mean(((a * scores + b) >= 0.0) == labels))
    return out


def platt(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling ``p = sigmoid(a s + b)`` fitted on validation rows (sklearn logistic regression)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=1000).fit(scores.reshape(-1, 1), labels)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


# ------------------------------------------------------------------------------------------ runs
def _task(job: dict) -> dict:
    """One (dataset, split, model, seed) search or refit -> its record. Runs in-process or in a fresh worker."""
    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    name, kind, label, seed = job["dataset"], job["split"], job["name"], job["seed"]
    t_load = time.perf_counter()
    kg = load_dataset(name, job["data_root"], job["cache"])
    sp = make_split(kg, name, kind, job["data_root"])
    t_load = time.perf_counter() - t_load
    spec = SPACES[label]
    t = time.perf_counter()
    if kind == "ctr":
        rows = ctr_rows(name, job["data_root"])
        calib: dict[int, tuple[float, float]] = {}  # per candidate: Platt (a, b) fitted on its valid rows

        def select(rec):
            s, unknown = _pair_scores(rec, kg, name, rows["valid"])
            calib[id(rec)] = platt(s, rows["valid"][:, 2])
            f = ctr_figures(s, rows["valid"][:, 2], calib[id(rec)])
            f["unknown_pairs"] = unknown
            return f["auc"], f

        def test(rec):
            s, unknown = _pair_scores(rec, kg, name, rows["test"])
            f = ctr_figures(s, rows["test"][:, 2], calib[id(rec)])
            f.update(unknown_pairs=unknown, platt_a=calib[id(rec)][0], platt_b=calib[id(rec)][1])
            return f

        _, record = fit_one(kg, sp, spec.model, job["candidates"], seed, job["extra"], ks=(10, 20), select=select,
                            test=test, select_epochs=True, cost=spec.cost)
        msg = f"test AUC {record['test']['auc']:.4f} F1 {record['test']['f1']:.4f}"
    else:
        _, record = fit_one(kg, sp, spec.model, job["candidates"], seed, job["extra"], ks=KS, cost=spec.cost)
        msg = f"test ndcg@10 {record['test']['ndcg@10']:.4f} recall@20 {record['test']['recall@20']:.4f}"
    record.update(name=label, split=kind, dataset=name, isolated=job["isolate"], data_seconds=t_load,
                  split_stats=sp.stats(), role=job["role"], budget=job["budget"])
    print(f"[{name} {kind}] {label} seed {seed} ({job['role']}, {record['trials']} trials): {msg} "
          f"({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    return record


def _mean_std(values) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def _pm(values) -> str | None:
    m, s = _mean_std(values)
    return None if m is None else f"{m:.4f} ± {s:.4f}"


RANK_COLS = ["model", "seeds", "trials", "cap hits", "valid ndcg@10", "recall@10", "recall@20", "ndcg@10", "ndcg@20",
             "hit@10", "mrr@10", "map@10", "gauc", "coverage@10", "gini@10", "entropy@10", "tail@10", "s/epoch",
             "best epoch", "s to best", "fit s", "peak RSS MB", "users/s"]
CTR_COLS = ["model", "seeds", "trials", "cap hits", "valid AUC", "AUC", "F1", "F1 sigmoid@0.5", "accuracy", "s/epoch",
            "best epoch", "s to best", "fit s", "peak RSS MB"]


def table(runs: list[dict], kind: str) -> list[dict]:
    """One row per model: mean ± std over seeds of the test figures, plus the cost columns."""
    rows = []
    for label in dict.fromkeys(r["name"] for r in runs):
        rs = [r for r in runs if r["name"] == label]
        trained = bool(rs[0]["best_epoch"])
        search = [r for r in rs if r.get("role", "search") == "search"]
        row = {"model": label, "seeds": len(rs), "trials": search[0].get("trials") if search else None,
               "cap hits": sum(r.get("cap_hits") or 0 for r in rs),
               "s/epoch": _mean_std([r["seconds_per_epoch_median"] for r in rs])[0]
               if trained else None, "best epoch": _mean_std([r["best_epoch"] for r in rs])[0] if trained else None,
               "s to best": _mean_std([r["seconds_to_best"] for r in rs])[0],
               "fit s": _mean_std([r["search_seconds"] for r in rs])[0],
               "peak RSS MB": max(r["peak_rss_mb"] or 0 for r in rs) or None}
        if kind == "ctr":
            row["valid AUC"] = _mean_std([r["valid"]["auc"] for r in rs])[0]
            row["AUC"] = _pm([r["test"]["auc"] for r in rs])
            row["F1"] = _pm([r["test"]["f1"] for r in rs])
            row["F1 sigmoid@0.5"] = _pm([r["test"]["f1_sigmoid"] for r in rs])
            row["accuracy"] = _mean_std([r["test"]["accuracy"] for r in rs])[0]
        else:
            row["valid ndcg@10"] = _mean_std([r["valid"]["ndcg@10"] for r in rs])[0]
            for m in ("recall@10", "recall@20", "ndcg@10", "ndcg@20", "hit@10", "mrr@10"):
                row[m] = _pm([r["test"][m] for r in rs])
            for m in ("map@10", "gauc", "coverage@10", "gini@10", "entropy@10", "tail@10"):
                row[m] = _mean_std([r["test"].get(m) for r in rs])[0]
            row["users/s"] = _mean_std([r["users_per_second"] for r in rs])[0]
        rows.append(row)
    return rows


def _extra(args) -> dict:
    extra = {}
    for kv in args.param:
        k, _, v = kv.partition("=")
        try:  # numbers, lists, true/false as JSON; anything else as a string
            extra[k] = json.loads(v)
        except ValueError:
            extra[k] = v
    return extra


def _search_jobs(args, names: list[str], items: dict[str, int]) -> list[dict]:
    """The search jobs: per dataset, split and model, the trials of ``tuning.trials`` with
    the first seed (``--quick``: epochs capped, at most two trials, one above 5,000 items).
    """
    seed = int(str(args.seeds).split(",")[0])
    jobs = []
    for ds in args.datasets.split(","):
        for kind in args.splits.split(","):
            if kind == "ctr" and not DATASETS[ds].ctr_file:
                continue  # CTR only where the labelled rows exist
            if kind in ("temporal", "global-time") and not DATASETS[ds].has_time:
                continue
            for label in names:
                spec = SPACES[label]
                cands = trials(spec, args.budget, seed=seed)
                if args.quick:
                    cands = cands[:1 if items[ds] > QUICK_LARGE_ITEMS else 2]
                    cap = QUICK_HYBRID if _is_hybrid(label) else QUICK_TRAIN
                    cands = [dict(c, **cap) if "epochs" in c else c for c in cands]
                jobs.append({"dataset": ds, "split": kind, "name": label, "seed": seed, "data_root": args.data_root,
                             "cache": args.cache, "quick": args.quick, "extra": _extra(args),
                             "threads": args.threads, "isolate": args.isolate, "candidates": cands,
                             "role": "search", "budget": args.budget})
    return jobs


def _refit_jobs(args, searched: list[tuple[dict, dict]]) -> list[dict]:
    """The other seeds of every seeded model, each refitting the point its search chose."""
    seeds = [int(s) for s in str(args.seeds).split(",")][1:]
    if args.quick:
        return []
    jobs = []
    for job, record in searched:
        if not SPACES[job["name"]].seeded:
            continue
        chosen = {k: v for k, v in record["chosen_params"].items() if k != "seed"}
        jobs += [dict(job, seed=s, candidates=[chosen], role="refit") for s in seeds]
    return jobs


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The suite's options (shared by ``benchmarks/run.py`` and ``kgrec benchmark``)."""
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT,
                   help="folder holding the datasets as their publishers ship them (default: %(default)s)")
    p.add_argument("--cache", default=DEFAULT_CACHE, help="converted graphs are cached here (default: %(default)s)")
    p.add_argument("--datasets", default=",".join(DATASETS), help=f"comma list of {', '.join(DATASETS)}")
    p.add_argument("--models", default="random,mostpop,itemknn,ease,ease+rules,bprmf,lightgcn,cke,hybrid",
                   help=f"comma list of {', '.join(sorted(ALIASES))}")
    p.add_argument("--splits", default="random,ctr",
                   help="comma list of random, temporal, global-time, cold-item, ctr (ctr: Last.FM and "
                        "Book-Crossing only; time splits skipped where there is no time)")
    p.add_argument("--seeds", default="2020,2021,2022",
                   help="model seeds: the first runs each model's search, the others refit the chosen point "
                        "(deterministic models run once)")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET,
                   help="validation trials per model and split, the hybrid's internal prior choices included "
                        "(docs/protocol.md; default %(default)s)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="write results from a tree with uncommitted changes (every table then says so); by "
                        "default the suite refuses, so that each figure names the commit that made it")
    p.add_argument("--quick", action="store_true",
                   help="one seed, few epochs, small grids: a smoke run of minutes, not headline figures")
    p.add_argument("--param", action="append", default=[], help="key=value applied to every model that has it")
    p.add_argument("--jobs", type=int, default=1, help="fits run in parallel worker processes")
    p.add_argument("--threads", type=int, default=None, help="torch threads per fit")
    p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=True,
                   help="run each fit in a fresh process so that its peak memory is its own (default: on)")
    p.add_argument("--out", default=DEFAULT_OUT, help="results folder (default: %(default)s)")
    p.add_argument("--results-md", default=None,
                   help="the generated overview (default: <out>/../RESULTS.md)")
    p.add_argument("--merge", action="store_true",
                   help="keep the runs of other models already in <out>/<dataset>/<split>.json (same split and "
                        "mode): add or redo some models without refitting the rest")
    p.add_argument("--report-only", action="store_true",
                   help="fit nothing: rewrite every <split>.md/.png and RESULTS.md from the JSON files in --out")
    p.add_argument("--merge-from", action="append", default=[], metavar="SPLIT_JSON",
                   help="fit nothing: fold the runs of a result file written elsewhere (another worktree's "
                        "--out) into <out>/<dataset>/<split>.json as --merge would (its models replace "
                        "theirs, the others are kept with their provenance); repeatable")


def run(args: argparse.Namespace, argv: list[str] | None = None, prog: str = "python benchmarks/run.py") -> int:
    """Run the suite described by ``args`` (see :func:`add_arguments`); ``argv``/``prog`` are recorded."""
    if args.merge_from:
        out = Path(args.out)
        for f in args.merge_from:
            merge_from(Path(f), out)
        write_results_md(out, Path(args.results_md) if args.results_md else out.parent / "RESULTS.md")
        return 0
    if args.report_only:
        out = Path(args.out)
        for f in sorted(out.glob("*/*.json")):
            payload = json.loads(f.read_text(encoding="utf-8"))
            if payload.get("suite"):
                write_results(f.parent, f.stem, payload, payload["table"], payload["columns"],
                              title=f"{payload['title']}: {payload['split']}", text=_describe(payload),
                              relative_to=ROOT)
                plot(payload, f.with_suffix(".png"))
        write_results_md(out, Path(args.results_md) if args.results_md else out.parent / "RESULTS.md")
        return 0
    names = [ALIASES.get(_alias(m.strip()), m.strip()) for m in args.models.split(",") if m.strip()]
    unknown = [n for n in names if n not in SPACES]
    if unknown:
        raise KgrecError(f"'--models': unknown model(s) {unknown}; known: {', '.join(sorted(ALIASES))}")
    kinds = args.splits.split(",")
    bad = [k for k in kinds if k not in ("random", "temporal", "global-time", "cold-item", "ctr")]
    if bad:
        raise KgrecError(f"'--splits': unknown split(s) {bad}; known: random, temporal, global-time, cold-item, ctr")
    if not Path(args.data_root).is_dir():
        raise KgrecError(f"'--data-root': folder '{args.data_root}' does not exist")
    datasets = args.datasets.split(",")
    for ds in datasets:
        dataset_source(ds, args.data_root)  # fail before any fit
    out = Path(args.out)
    results_md = Path(args.results_md) if args.results_md else out.parent / "RESULTS.md"
    info = machine(ignore=[out, results_md])
    if info["dirty"] and not getattr(args, "allow_dirty", False):
        raise KgrecError(f"the working tree at {info['commit']} has uncommitted changes ({info['dirty_files']}); "
                         "commit them so that the results name the code that made them, or pass "
                         "'--allow-dirty' (every table is then marked)")
    if args.threads:
        torch.set_num_threads(args.threads)
        info["torch_threads"] = args.threads
    info.update(jobs=args.jobs, isolated=args.isolate)
    loads = {}
    for ds in datasets:  # convert + load once, in this process, before the workers read the cache
        t = time.perf_counter()
        kg = load_dataset(ds, args.data_root, args.cache)
        loads[ds] = {"stats": kg.stats(), "rdf": load_info(ds, args.cache),
                     "cached_load_seconds": time.perf_counter() - t}
        del kg
    jobs = _search_jobs(args, names, {ds: loads[ds]["stats"]["items"] for ds in datasets})
    command = f"{prog} " + " ".join(argv if argv is not None else sys.argv[1:])  # written relative to ROOT
    pool = None
    if args.isolate or args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max(args.jobs, 1), mp_context=mp.get_context("spawn"),
                                   max_tasks_per_child=1 if args.isolate else None)

    def run_all(group):
        return list(pool.map(_task, group)) if pool is not None else [_task(j) for j in group]

    try:
        # one dataset/split at a time, written as soon as its fits are done: an interrupted run keeps them
        for ds in datasets:
            for kind in kinds:
                group = [j for j in jobs if j["dataset"] == ds and j["split"] == kind]
                if not group:
                    continue
                searched = run_all(group)
                refits = run_all(_refit_jobs(args, list(zip(group, searched))))
                order = {label: i for i, label in enumerate(names)}
                runs = sorted(searched + refits, key=lambda r: (order[r["name"]], r["seed"]))
                _write(out / ds, ds, kind, runs, loads[ds], info, args, command)
                write_results_md(out, results_md)
    finally:
        if pool is not None:
            pool.shutdown()
    return 0


def _merge(path: Path, runs: list[dict], split_stats: dict, quick: bool) -> tuple[list[dict], list[dict]]:
    """``runs`` plus the runs of ``path`` (an earlier result of the same split) of the other models.

    Returns the runs (earlier models first, in their order) and the provenance of the kept ones:
    per earlier command, its models, command, commit and date (also those it had merged itself).
    """
    old = json.loads(path.read_text(encoding="utf-8"))
    if old.get("quick") != quick or old.get("split_stats") != split_stats:
        raise KgrecError(f"'--merge': '{path}' holds a different run (quick={old.get('quick')}, split "
                         f"{old.get('split_stats')}); it can only take models of the same split and mode")
    new_models = {r["name"] for r in runs}
    kept = [r for r in old["runs"] if r["name"] not in new_models]
    if not kept:
        return runs, []
    provenance = [dict(m, models=[x for x in m["models"] if x not in new_models]) for m in old.get("merged", [])]
    provenance = [m for m in provenance if m["models"]]
    earlier = {r["name"] for r in kept} - {x for m in provenance for x in m["models"]}
    if earlier:
        mach = old["machine"]
        provenance.insert(0, {"models": sorted(earlier), "command": old["command"], "commit": mach["commit"],
                              "date": mach["date"], "cpu": mach["cpu"]})
    return kept + runs, provenance


def merge_from(path: Path, out: Path) -> Path:
    """Fold the suite result file ``path`` (one dataset and split, fitted elsewhere) into
    ``<out>/<dataset>/<split>.json``: the file's models replace theirs there, the others are kept
    with their provenance (``--merge``'s rule), and the table, Markdown and plot are rewritten.
    Returns the written JSON path.
    """
    try:
        new = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise KgrecError(f"'--merge-from': cannot read '{path}' as a result file ({e})") from None
    if not isinstance(new, dict) or not new.get("suite"):
        raise KgrecError(f"'--merge-from': '{path}' is not a benchmarks/run.py result file (no \"suite\" key)")
    missing = [k for k in ("dataset", "split", "runs", "split_stats", "quick", "title", "columns") if k not in new]
    if missing:
        raise KgrecError(f"'--merge-from': '{path}' lacks {', '.join(missing)}: not a complete result file")
    target = Path(out) / new["dataset"] / f"{new['split']}.json"
    if Path(path).resolve() == target.resolve():
        raise KgrecError(f"'--merge-from': '{path}' is the file it would merge into")
    payload = dict(new)
    if target.is_file():
        runs, merged = _merge(target, new["runs"], new["split_stats"], new["quick"])
        # the new file's own provenance (runs it had kept itself) stays true of its runs
        payload.update(runs=runs, merged=merged + list(new.get("merged") or []))
    _write_payload(target.parent, payload)
    return target


def _write_payload(folder: Path, payload: dict) -> None:
    """``<folder>/<split>.json/.md/.png`` of a suite payload, its table recomputed from its runs."""
    kind = payload["split"]
    payload["table"] = table(payload["runs"], kind)
    write_results(folder, kind, payload, payload["table"], payload["columns"],
                  title=f"{payload['title']}: {kind}", text=_describe(payload), relative_to=ROOT)
    plot(payload, folder / f"{kind}.png")


def _write(folder: Path, ds: str, kind: str, runs: list[dict], load: dict, info: dict, args, command: str) -> None:
    sp = runs[0]["split_stats"]
    merged = []
    if getattr(args, "merge", False) and (folder / f"{kind}.json").is_file():
        runs, merged = _merge(folder / f"{kind}.json", runs, sp, args.quick)
    cols = CTR_COLS if kind == "ctr" else RANK_COLS
    payload = {"suite": True, "dataset": ds, "title": DATASETS[ds].title, "split": kind, "split_seed": 2020,
               "quick": args.quick, "command": command, "machine": info, "args": vars(args), "graph": load["stats"],
               "rdf_load": load["rdf"], "cached_load_seconds": load["cached_load_seconds"], "split_stats": sp,
               "source": DATASETS[ds].source, "terms": DATASETS[ds].terms, "runs": runs, "table": None,
               "columns": cols, "merged": merged}
    _write_payload(folder, payload)


def _describe(p: dict) -> str:
    m, sp = p["machine"], p["split_stats"]
    what = ("CTR protocol: random 6:2:2 of the labelled rows (seed 2020), models trained on the label-1 rows of "
            "the 60% part; AUC = sklearn roc_auc_score of the raw score on the test rows; F1 at 0.5 of "
            "sigmoid(a*score+b), a and b fitted (Platt) on the validation rows; 'F1 sigmoid@0.5' without "
            "calibration. Trials and epochs chosen on validation AUC (the hybrid's prior weights on "
            "validation NDCG@10 of the validation positives)" if p["split"] == "ctr" else
            "per-user 80/10/10 (MovieLens-100K random/temporal: the RecBole peer split; elsewhere every user "
            "with 3 or more interactions has a validation and a test item), full ranking over all items with "
            "training items masked (and validation items when scoring test), selection on validation NDCG@10, "
            "test scored once")
    budget = p.get("args", {}).get("budget")
    tuning = (f" Tuning (docs/protocol.md): at most {budget} validation trials per model from its declared space "
              "(benchmarks/tuning.py), the hybrid's and EASE+rules' internal prior choices counted as trials; the "
              "search runs with the first seed and the other seeds refit the chosen point; 'trials' = validation "
              "evaluations of the search, 'cap hits' = fits whose best epoch was the epoch cap." if budget else
              " Tuning: the grids of the run's command (before the one-budget protocol).")
    dirty = (" **Written from a tree with uncommitted changes (--allow-dirty)**: " + ", ".join(m.get("dirty_files", []))
             + "." if m.get("dirty") else "")
    merged = "".join(f" Runs of {', '.join(x['models'])} kept from an earlier run (`--merge`): command "
                     f"`{x['command']}`, commit {x['commit']}, {x['date']}, {x['cpu']}." for x in p.get("merged", []))
    mode = ("**Quick mode** (one seed, epochs capped, at most two trials, one above 5,000 items: a smoke run, "
            "not headline figures)"
            if p["quick"] else "Full mode")
    return (f"{mode}. Command: `{p['command']}`. {what}. Split: {sp}. Machine: {m['cpu']}, {m['torch_threads']} "
            f"torch threads, {m['jobs']} fit(s) at a time, GPU {m['gpu']}; commit {m['commit']}; {m['date']}."
            f"{dirty}{tuning} Figures: mean ± std over model seeds. " + (
                "Peak RSS is each fit's own (one fresh process per fit)." if m["isolated"] else
                "Fits ran in one process (--no-isolate): peak RSS is that process's peak so far, an upper "
                "bound that includes the graph, earlier fits and Python/torch (~1 GB).")) + merged


# ------------------------------------------------------------------------------------------ plots
def plot(payload: dict, path: Path) -> None:
    """Metric vs K per model, validation curves per epoch, accuracy vs training time (one PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    runs, ctr = payload["runs"], payload["split"] == "ctr"
    names = list(dict.fromkeys(r["name"] for r in runs))
    fig, axes = plt.subplots(1, 3 if ctr else 4, figsize=(5 * (3 if ctr else 4), 4))
    ax_iter = iter(axes)
    if not ctr:
        for metric, ax in (("recall", next(ax_iter)), ("ndcg", next(ax_iter))):
            for n in names:
                rs = [r for r in runs if r["name"] == n]
                ks = [k for k in KS if f"{metric}@{k}" in rs[0]["test"]]
                ax.plot(ks, [np.mean([r["test"][f"{metric}@{k}"] for r in rs]) for k in ks], marker="o", label=n)
            ax.set_xscale("log")
            ax.set_xticks(list(KS), [str(k) for k in KS])
            ax.set_xlabel("K")
            ax.set_title(f"test {metric.upper() if metric == 'ndcg' else metric.capitalize()}@K")
        if axes[0].lines:
            axes[0].legend(fontsize=8)
    ax = next(ax_iter)
    for n in names:
        r = next(r for r in runs if r["name"] == n)
        vkey = "select" if ctr else "ndcg@10"  # ctr: the selection score (validation AUC) per epoch
        pts = [(c["epoch"], c["valid"][vkey]) for c in r["fit_info"].get("curve", []) if vkey in c.get("valid", {})]
        if pts:
            ax.plot(*zip(*pts), label=n)
    ax.set_xlabel("epoch")
    ax.set_title(f"validation {'AUC' if ctr else 'NDCG@10'} per epoch (first seed)")
    if ax.lines:
        ax.legend(fontsize=8)
    ax = next(ax_iter)
    key = "auc" if ctr else "ndcg@10"
    for n in names:
        rs = [r for r in runs if r["name"] == n]
        x = np.mean([max(r["search_seconds"] or 0, 1e-2) for r in rs])
        ax.scatter([x], [np.mean([r["test"][key] for r in rs])], label=n)
        ax.annotate(n, (x, np.mean([r["test"][key] for r in rs])), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("fit seconds (grid included)")
    ax.set_title(f"test {'AUC' if ctr else 'NDCG@10'} vs training time")
    if ctr:
        ax = next(ax_iter)
        ax.barh(names, [np.mean([r["test"]["auc"] for r in runs if r["name"] == n]) for n in names])
        ax.set_xlim(0.5, 1.0)
        ax.invert_yaxis()
        ax.set_title("test AUC")
    fig.suptitle(f"{payload['title']} / {payload['split']}" + (" (quick mode)" if payload["quick"] else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ------------------------------------------------------------------------------------- RESULTS.md
def write_results_md(results: Path, out: Path) -> Path:
    """``RESULTS.md`` from every suite JSON under ``results/<dataset>/<split>.json``."""
    found = sorted(results.glob("*/*.json"))
    payloads = [p for p in (json.loads(f.read_text(encoding="utf-8")) for f in found) if p.get("suite")]
    rel = os.path.relpath(results, out.parent)
    lines = ["# Benchmark results: every dataset, baseline and peer side by side", "",
             "Generated by `python benchmarks/run.py` (or `kgrec benchmark`) from the JSON files under "
             f"[`{rel}/`]({rel}/); every figure below is in the JSON file linked with its table, with the "
             "config, seed, commit, machine and package versions of its run. Protocol: "
             f"[`docs/protocol.md`]({os.path.relpath(ROOT / 'docs' / 'protocol.md', out.parent)}) (splits, "
             "one tuning budget for every model, metrics, paired significance; ranking: full ranking, training "
             "items masked, selection on validation NDCG@10; CTR: random 6:2:2 of the labelled rows, AUC/F1 on "
             "test). The CTR protocol is "
             "the one of the RippleNet / KGCN / MCCLK papers on the same Last.FM and Book-Crossing files; their "
             "figures are not quoted here because their tables could not be checked against the papers offline "
             "(ANCHORS.md: quote them only from the papers' tables).", ""]
    if any(p["quick"] for p in payloads):
        lines += ["**Quick mode.** Tables marked *quick* come from `--quick`: one seed, epochs capped (BPR-MF / "
                  "CKE 40, LightGCN 30, Hybrid 8), small grids. They show that every model runs end to end on "
                  "every dataset and what it costs; they are NOT tuned headline figures (trained models stop "
                  "early, before converging). The full run is `python benchmarks/run.py --jobs N` (3 seeds, "
                  "patience 10, default epochs 200, full grids).", ""]
    lines += ["## Datasets and where to get them", "",
              "No dataset is shipped except MovieLens latest-small (`kg_data/movielens-small`, allowed by its "
              "terms); pass the folder that holds them as `--data-root` (layout: one folder per dataset as named "
              "below).", "", "| dataset | folder under --data-root | source | terms |", "|:--|:--|:--|:--|"]
    for d in DATASETS.values():
        lines.append(f"| {d.title} | `{d.folder}` | {d.source} | {d.terms} |")
    lines.append("")
    # overview: test NDCG@10 per dataset (random split) and AUC (ctr)
    over: dict[str, dict[str, str]] = {}
    cols = []
    for p in payloads:
        col = f"{p['dataset']} {p['split']}"
        cols.append(col)
        for r in p["table"]:
            over.setdefault(r["model"], {})[col] = r["AUC"] if p["split"] == "ctr" else r["ndcg@10"]
    if over:
        lines += ["## Overview: test NDCG@10 (ranking splits) and test AUC (ctr)", "",
                  markdown_table([{"model": m, **v} for m, v in over.items()], ["model", *cols]), ""]
    gpus = sorted({p["machine"]["gpu"] for p in payloads if p["machine"].get("gpu")})
    lines += ["## GPU", "",
              (f"Results run on GPU: {', '.join(gpus)} (see each table's machine line)." if gpus else
               "No result here ran on a GPU: no GPU machine was lent to this project's sessions (see the "
               "README's GPU notes). On a CUDA machine the same command trains there (each model picks the "
               "device once; the hybrid trains under bf16 autocast, and `--param text_mode=top-k` fine-tunes its "
               "top BERT layers), and each JSON records the GPU's name; run it with `--out` to another folder to "
               "keep the CPU figures for the speed-up."), ""]
    standing = hybrid_standing(payloads)
    if standing:
        lines += ["## Where the hybrid stands", "",
                  "Per dataset and split: the hybrid against the best other model on the headline metric (test "
                  "NDCG@10; AUC for ctr), mean ± std over seeds, and against EASE+rules (its closed-form priors "
                  "alone). p: two-sided Wilcoxon signed-rank test on per-user test NDCG@10 averaged over seeds. "
                  "*ahead* / *behind*: p < 0.05 and the gap larger than both seed spreads; *tie*: otherwise "
                  "(CTR AUC has no per-user pairing: n/a, a tie).", "",
                  markdown_table(standing, list(standing[0])), "",
                  "Why the ties and how far the CF baselines can be pushed (the linear ceiling of "
                  "[`results/linear_ceiling-random.md`](results/linear_ceiling-random.md) and "
                  "[`-temporal.md`](results/linear_ceiling-temporal.md)), with the next step for each: the "
                  "README's \"What the tables below say\".", ""]
    neural = neural_standing(payloads)
    if neural:
        lines += ["## Where the neural hybrid stands (without its closed-form priors)", "",
                  "The same tests for **Hybrid w/o priors** (KG + text + CF trained by gradient, no EASE, no "
                  "sequential rules) against tuned LightGCN (its CF branch is one), XSimGCL (LightGCN with the "
                  "contrastive loss its CF stage can train: what the CF stage alone can reach) and EASE: what the "
                  "trained model reaches on its own. Each comparison has its own verdict, with the rule above.",
                  "", markdown_table(neural, list(neural[0])), ""]
    for ds in dict.fromkeys(p["dataset"] for p in payloads):
        ps = [p for p in payloads if p["dataset"] == ds]
        g, rdf = ps[0]["graph"], ps[0]["rdf_load"]
        lines += [f"## {ps[0]['title']}", "",
                  f"Graph after `kgrec.load`: {g['users']} users, {g['items']} items, {g['entities']} entities, "
                  f"{g['relations']} relations, {g['triples']} KG triples, {g['interactions']} interactions."]
        if rdf:
            lines.append(f"RDF path: conversion {rdf['convert_seconds']:.1f} s to {rdf['rdf_triples']} N-Triples "
                         f"({rdf['rdf_bytes'] / 2**20:.1f} MiB gzip), `kgrec.load` {rdf['load_seconds']:.1f} s = "
                         f"{rdf['load_triples_per_second']:,.0f} triples/s ({rdf['torch_threads']} torch threads).")
        lines += [f"Reloading the cached graph: {ps[0]['cached_load_seconds']:.2f} s.", ""]
        for p in ps:
            name = f"{ds}/{p['split']}"
            lines += [f"### {ds} / {p['split']}" + (" (quick)" if p["quick"] else ""), "", _describe(p), "",
                      markdown_table(p["table"], p["columns"]), "",
                      f"![{name}]({rel}/{name}.png)", "", f"Data: [`{rel}/{name}.json`]({rel}/{name}.json)", ""]
            if ds == "movielens-100k" and p["split"] in ("random", "temporal"):
                lines += ["Same split as the RecBole peer table of ANCHORS.md (RecBole 1.2.1, default "
                          "hyper-parameters, seed 2020): " + ", ".join(
                              f"{r['model']} NDCG@10 {r['ndcg@10']:.4f}" for r in peer_rows()
                              if r["split"] == p["split"])
                          + " ([`peers/recbole-ml100k.json`](peers/recbole-ml100k.json)).",
                          ""]
    return atomic_write_text(out, "\n".join(lines))


def _runs_by_model(p: dict) -> dict[str, list[dict]]:
    by_model: dict[str, list[dict]] = {}
    for r in p["runs"]:
        by_model.setdefault(r["name"], []).append(r)
    return by_model


def _versus(by_model: dict[str, list[dict]], model: str, other: str, metric: str) -> dict:
    """``model`` against ``other`` on one result: both mean ± std over seeds, the gap, the per-user
    paired Wilcoxon p (each user's figure averaged over seeds; ``None`` without per-user figures, as
    for CTR AUC) and the verdict of :func:`verdict`.
    """
    (h, hs), (b, bs) = (_mean_std([float(r["test"][metric]) for r in by_model[m]]) for m in (model, other))
    mine, theirs = per_user_means(by_model[model], metric), per_user_means(by_model[other], metric)
    test = paired_test(mine, theirs) if mine and theirs else None
    pv = test["p"] if test else None
    return {"mean": b, "std": bs, "n": len(by_model[other]), "gap": h - b, "p": pv,
            "p_text": "n/a" if pv is None else f"{pv:.2g}", "verdict": verdict(h - b, hs, bs, pv)}


def _figure(by_model: dict[str, list[dict]], model: str, metric: str) -> str:
    m, s = _mean_std([float(r["test"][metric]) for r in by_model[model]])
    return f"{m:.4f} ± {s:.4f} ({len(by_model[model])})"


def hybrid_standing(payloads: list[dict]) -> list[dict]:
    """Per suite result holding the hybrid: its headline figure against the best other model's.

    The headline is test NDCG@10 (AUC on ctr), as mean and sample std over the model's runs (seeds).
    Other rows are every model that is not a variant of the hybrid. On ranking splits a per-user paired
    Wilcoxon test (each user's NDCG@10 averaged over seeds, :mod:`kgrec.evaluation.significance`) is made against
    the best other row and against ``EASE+rules`` (the hybrid's closed-form priors alone);
    ``verdict`` is ``ahead``/``behind`` only when p < 0.05 and the gap exceeds both seed spreads,
    else ``tie``. CTR AUC has no per-user pairing: its cells are ties unless a paired test exists.
    """
    out = []
    for p in payloads:
        metric = "auc" if p["split"] == "ctr" else "ndcg@10"
        by_model = _runs_by_model(p)
        others = [m for m in by_model if not m.startswith("Hybrid")]
        if "Hybrid" not in by_model or not others:
            continue
        best = max(others, key=lambda m: _mean_std([float(r["test"][metric]) for r in by_model[m]])[0])
        row = {"dataset": p["dataset"], "split": p["split"] + (" (quick)" if p["quick"] else ""),
               "metric": "AUC" if metric == "auc" else "NDCG@10", "hybrid": _figure(by_model, "Hybrid", metric)}
        v = _versus(by_model, "Hybrid", best, metric)
        row["best other"] = (f"{best} {v['mean']:.4f} ± {v['std']:.4f} ({v['n']}); gap {v['gap']:+.4f} "
                             f"({100 * v['gap'] / v['mean']:+.1f}%)")
        row["p (best other)"] = v["p_text"]
        if "EASE+rules" in by_model:
            e = _versus(by_model, "Hybrid", "EASE+rules", metric)
            row["EASE+rules"] = f"{e['mean']:.4f}; gap {e['gap']:+.4f} ({100 * e['gap'] / e['mean']:+.1f}%)"
            row["p (EASE+rules)"] = e["p_text"]
        else:
            row["EASE+rules"] = row["p (EASE+rules)"] = "—"
        row["verdict"] = v["verdict"]
        out.append(row)
    return out


def neural_standing(payloads: list[dict], model: str = "Hybrid w/o priors",
                    against: tuple[str, ...] = ("LightGCN", "XSimGCL", "EASE")) -> list[dict]:
    """Per suite result holding ``model`` (by default the neural hybrid without its closed-form
    priors): its headline figure against each row named in ``against`` (by default tuned LightGCN,
    the CF model its CF branch is, XSimGCL, the same LightGCN with the contrastive loss its CF stage
    can train, and EASE), each with its own paired test and verdict as in
    :func:`hybrid_standing`. Results lacking ``model`` are skipped; a missing comparison row is "—".
    """
    out = []
    for p in payloads:
        metric = "auc" if p["split"] == "ctr" else "ndcg@10"
        by_model = _runs_by_model(p)
        if model not in by_model:
            continue
        row = {"dataset": p["dataset"], "split": p["split"] + (" (quick)" if p["quick"] else ""),
               "metric": "AUC" if metric == "auc" else "NDCG@10", model: _figure(by_model, model, metric)}
        for other in against:
            if other not in by_model:
                row[other] = row[f"p ({other})"] = row[f"verdict ({other})"] = "—"
                continue
            v = _versus(by_model, model, other, metric)
            row[other] = (f"{v['mean']:.4f} ± {v['std']:.4f} ({v['n']}); gap {v['gap']:+.4f} "
                          f"({100 * v['gap'] / v['mean']:+.1f}%)")
            row[f"p ({other})"], row[f"verdict ({other})"] = v["p_text"], v["verdict"]
        out.append(row)
    return out


#: the peers' published / measured figures: one JSON file per source, never typed a second time
PEERS_DIR = ROOT / "benchmarks" / "peers"


def peer_rows(source: str = "recbole-ml100k") -> list[dict]:
    """Rows ``{"model", "split", metric: value}`` of ``benchmarks/peers/<source>.json`` (empty when the
    file is absent, e.g. in an installed package without the repository).
    """
    f = PEERS_DIR / f"{source}.json"
    return json.loads(f.read_text(encoding="utf-8"))["rows"] if f.is_file() else []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args, argv)
    except KgrecError as e:
        p.error(str(e))
        return 2
