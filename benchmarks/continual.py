r"""The continual protocol with a validation part (issue 21): ``update()`` against full retraining of
the model ``fit`` gives users.

``dynamics.py --protocols continual`` trains the hybrid for a fixed number of epochs without a
validation part, so its closed-form priors are never calibrated and early stopping never runs: its
figures are not of the model users get. Here every fit is the benchmark suite's "Hybrid"
(``tuning.SPACES``: the default model, early stopping and the EASE / sequential-rule priors chosen on
validation NDCG@10). Protocol, per dataset and model seed:

* **Blocks.** All interactions sorted by time (stable): a base block (the first 50%) and 5 blocks
  of 10% (the blocks of ``dynamics.py``).
* **A validation part in every training window.** The window (blocks ``0..b``) is cut per user by
  time with ``kgrec.split(..., "temporal", ratios=(0.9, 0.1, 0.0))``: each user's last 10% (at least
  one for a user with 3 or more interactions in the window) is validation, the rest train.
* **Full retrain.** A fresh fit on window ``0..b`` (train part; validation for early stopping and
  the priors): what a user who retrains from scratch gets.
* **refit_all.** The deployment path: the full retrain's settings (the prior weights it chose and
  its best epoch, :meth:`kgrec.Recommender.refit_all`) fitted again on *every* interaction of the
  window, validation part included. Its seconds are the retrain's plus the refit's (choosing the
  settings is part of its cost). This is the retrain that sees what update() sees.
* **update().** The base model (fitted on block 0 as above) continued block by block with
  ``Recommender.update`` (``--update-epochs`` epochs, ``--replay`` of old interactions replayed):
  at the first update the new interactions are block 1 plus the base fit's validation part (data
  the model had not trained on), then each next block. No validation, no re-calibration: the
  priors keep the weights chosen at the base fit (EASE and the rules are refitted on all data).
* **No update.** The base model throughout.
* **Scoring.** After window ``0..b`` each variant ranks for block ``b + 1``: users with window
  history, candidates the items of the window, every window interaction of the user masked (train
  and validation parts alike, so no variant is helped or hurt by the carve), relevant the user's
  block ``b + 1`` items among the candidates. NDCG@10 and Recall@20 per user
  (``kgrec.evaluation.metrics``), averaged per block; "earlier users" are the users of block 0.
* **Summary.** Blocks 2-5 (block 1 is predicted by the base model, or for refit_all by the base
  settings refitted on block 0, for every variant), per seed: mean NDCG@10 of each variant,
  update() as % of the full retrain's and of refit_all's NDCG@10 and seconds (retrain: the whole
  fit with early stopping and calibration; refit_all: that fit plus the refit; update(): the whole
  call); then mean ± std over seeds. Targets (issue 21): update() >= 95% of retraining's NDCG@10
  in <= 20% of its time, earlier users not collapsing; the verdict is given against both retrains.

What each comparison favours: the full retrain is what ``fit`` gives, so each user's latest 10% of
the window is validation, not training, and is neither in its history nor in its priors when it
ranks the next block; update() has trained on those interactions (the first update takes the base
fit's validation part). With sequential rules and recency the latest interactions are the most
telling, so update() can score above that retrain. refit_all removes that advantage: it trains on
the whole window, as update() does, and is the fair yardstick for update()'s accuracy (and the
costlier one, so the fairer one for update()'s time is the full retrain alone).

Seeds can run in separate processes (one ``--seeds`` each, their own ``--out-dir``) and be folded into
one table with ``--merge-from`` (``--seeds ''`` fits nothing): each seed keeps the commit and command
that made it, and files of another dataset, other protocol settings or a dirty tree are refused.

Each dataset writes ``<out-dir>/dynamics-continual-<dataset>.{json,md,png}``. The tree must be
committed (``--allow-dirty`` marks the results otherwise). Example::

    OMP_NUM_THREADS=1 python benchmarks/continual.py --datasets movielens-100k \
        --data-root ../shared/data --cache ../bench-cache
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from common import (
    DEFAULT_CACHE,
    DEFAULT_DATA_ROOT,
    ROOT,
    add_output_arguments,
    fmt_pm,
    load_dataset,
    machine,
    mean_std,
    run_datasets,
    write_results,
)

import numpy as np
import torch

import kgrec
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.errors import KgrecError
from kgrec.reports.tables import markdown_table, relative_paths

from dynamics import rank_metrics
from suite import _extra
from tuning import SPACES

SHORT = {"movielens-100k": "ml100k", "movielens-small": "mlsmall"}
TITLES = {"movielens-100k": "ML-100K", "movielens-small": "ML-latest-small"}
VARIANTS = ("no update", "full retrain", "refit_all", "update()")
GROUPS = ("all users", "earlier users")
SHARES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # cumulative ends of the base block and the 5 blocks
VALID = 0.1  # the last share of each user's window interactions held out for validation
TARGET_NDCG, TARGET_TIME = 95.0, 20.0  # issue 21: >= 95% of retrain's NDCG@10 in <= 20% of its time


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def time_blocks(inter: Interactions, shares=SHARES) -> list[Interactions]:
    """The base block and the next blocks: interactions in time order (stable), cut at ``shares`` of the total."""
    order = torch.argsort(inter.time, stable=True)
    cuts = [0] + [int(len(inter) * f) for f in shares]
    return [inter.select(order[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]


def window_split(kg: KnowledgeGraph, window: Interactions, seed: int) -> Split:
    """Window interactions (ids of ``kg``) cut per user by time: the last ``VALID`` share to validation."""
    sp = kgrec.split(dataclasses.replace(kg, interactions=window), "temporal", ratios=(1.0 - VALID, VALID, 0.0),
                     seed=seed)
    return Split("continual-window", seed, sp.ratios, kg.num_users, kg.num_items, sp.train, sp.valid,
                 Interactions.empty())


def block_eval(rec, kg: KnowledgeGraph, window: Interactions, nxt: Interactions,
               users_filter: set[int] | None) -> dict:
    """NDCG@10 / Recall@20 of ``rec`` on block ``nxt``: window users, window items as candidates, window pairs
    masked.
    """
    seen: dict[int, set[int]] = {}
    for u, i in zip(window.user.tolist(), window.item.tolist()):
        seen.setdefault(u, set()).add(i)
    cand_set = set(window.item.tolist())
    cand = sorted(cand_set)
    truth: dict[int, set[int]] = {}
    for u, i in zip(nxt.user.tolist(), nxt.item.tolist()):
        if u in seen and i not in seen[u] and (users_filter is None or u in users_filter) and i in cand_set:
            truth.setdefault(u, set()).add(i)
    users = sorted(truth)
    if not users:
        return {"ndcg@10": float("nan"), "recall@20": float("nan"), "users": 0}
    to_rec = torch.tensor([rec.items.id(kg.items[i]) for i in cand])
    ndcg, recall = [], []
    for s in range(0, len(users), 512):
        b = users[s:s + 512]
        sc = rec.score(torch.tensor([rec.users.id(kg.users[u]) for u in b]))[:, to_rec]  # [B, C] candidate columns
        sc = torch.nn.functional.pad(sc.float(), (0, max(0, 20 - sc.shape[1])), value=-torch.inf)  # top-20 of < 20
        pos = {i: j for j, i in enumerate(cand)}
        m = rank_metrics(sc, [{pos[i] for i in truth[u]} for u in b], [[pos[i] for i in seen[u]] for u in b])
        ndcg.append(m["ndcg@10"] * len(b))
        recall.append(m["recall@20"] * len(b))
    return {"ndcg@10": sum(ndcg) / len(users), "recall@20": sum(recall) / len(users), "users": len(users)}


def run_seed(kg: KnowledgeGraph, seed: int, epochs: int, replay: float, l2_pull: float,
             extra: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Every block's figures for one model seed, and the fits' details (``extra``: overrides of the
    suite's "Hybrid" settings, for smoke runs and tests).
    """
    blocks = time_blocks(kg.interactions)
    base_users = set(blocks[0].user.tolist())
    params = dict(SPACES["Hybrid"].fixed, **(extra or {}), seed=seed)
    fits: list[dict] = []

    def fit_on(window: Interactions, label: str):
        sp = window_split(kg, window, seed)
        t0 = time.perf_counter()
        rec = kgrec.Recommender("hybrid", **params).fit(kg, sp)
        secs = time.perf_counter() - t0
        info = rec.estimator.fit_info
        fits.append({"seed": seed, "window": label, "train": len(sp.train), "valid": len(sp.valid),
                     "best epoch": info.get("best_epoch"), "seconds": secs,
                     "chosen": rec.estimator.chosen_params() if hasattr(rec.estimator, "chosen_params") else None})
        log(f"[continual] seed {seed} fit on {label}: {len(sp.train)} train / {len(sp.valid)} valid, "
            f"best epoch {info.get('best_epoch')}, {secs:.0f} s")
        return rec, sp, secs

    def refit_on(rec, window: Interactions, label: str, fit_s: float):
        t0 = time.perf_counter()
        out = rec.refit_all(dataclasses.replace(kg, interactions=window))
        secs = time.perf_counter() - t0
        fits.append({"seed": seed, "window": f"{label} refit_all", "train": len(window), "valid": 0,
                     "best epoch": out.fit_info.get("epochs_run", rec.fit_info.get("best_epoch")), "seconds": secs,
                     "chosen": None})
        log(f"[continual] seed {seed} refit_all on {label}: {len(window)} interactions, {secs:.0f} s")
        return out, fit_s + secs

    base, base_sp, base_s = fit_on(blocks[0], "0-0")
    updated, pending = base, base_sp.valid  # the base fit's validation part: not yet trained on
    window, rows = blocks[0], []
    for step in range(5):
        if step == 0:
            retrain, retrain_s, update_s = base, base_s, base_s
        else:
            window = window.concat(blocks[step])
            retrain, _, retrain_s = fit_on(window, f"0-{step}")
            t0 = time.perf_counter()
            updated = copy.deepcopy(updated).update(kg, pending.concat(blocks[step]), epochs=epochs, replay=replay,
                                                    l2_pull=l2_pull)
            update_s, pending = time.perf_counter() - t0, Interactions.empty()
        refit, refit_s = refit_on(retrain, window, f"0-{step}", retrain_s)
        for variant, rec, secs in zip(VARIANTS, (base, retrain, refit, updated),
                                      (0.0 if step else base_s, retrain_s, refit_s, update_s)):
            for group, filt in zip(GROUPS, (None, base_users)):
                m = block_eval(rec, kg, window, blocks[step + 1], filt)
                rows.append({"seed": seed, "trained on blocks": f"0-{step}", "predicts block": step + 1,
                             "variant": variant, "user group": group, "ndcg@10": m["ndcg@10"],
                             "recall@20": m["recall@20"], "users": m["users"], "seconds": secs})
        log(f"[continual] seed {seed} step {step}: " + ", ".join(
            f"{r['variant']} {r['ndcg@10']:.4f}" for r in rows[-2 * len(VARIANTS):] if r["user group"] == "all users")
            + f" (retrain {retrain_s:.0f} s, refit_all {refit_s:.0f} s, update {update_s:.1f} s)")
    return rows, fits


def per_seed(rows: list[dict]) -> list[dict]:
    """Per seed and user group, blocks 2-5: each variant's mean NDCG@10, update() as % of retrain."""
    out = []
    for seed, group in dict.fromkeys((r["seed"], r["user group"]) for r in rows):
        rs = [r for r in rows if r["seed"] == seed and r["user group"] == group and r["predicts block"] > 1]
        nd = {v: float(np.mean([r["ndcg@10"] for r in rs if r["variant"] == v])) for v in VARIANTS}
        secs = {v: float(np.mean([r["seconds"] for r in rs if r["variant"] == v])) for v in VARIANTS[1:]}
        out.append({"seed": seed, "user group": group, **{f"{v} ndcg@10": nd[v] for v in VARIANTS},
                    "update % of retrain ndcg": 100 * nd["update()"] / nd["full retrain"],
                    "update % of refit_all ndcg": 100 * nd["update()"] / nd["refit_all"],
                    "no update % of retrain ndcg": 100 * nd["no update"] / nd["full retrain"],
                    "retrain s": secs["full retrain"], "refit_all s": secs["refit_all"], "update() s": secs["update()"],
                    "update % of retrain time": 100 * secs["update()"] / secs["full retrain"],
                    "update % of refit_all time": 100 * secs["update()"] / secs["refit_all"]})
    return out


def summarise(seed_rows: list[dict]) -> list[dict]:
    """Mean ± std over seeds of :func:`per_seed`'s figures, per user group, with the targets' verdicts."""
    out = []
    for group in GROUPS:
        rs = [r for r in seed_rows if r["user group"] == group]
        row = {"user group": group, "seeds": len(rs)}
        for key in (*(f"{v} ndcg@10" for v in VARIANTS), "update % of retrain ndcg", "update % of refit_all ndcg",
                    "no update % of retrain ndcg", "retrain s", "refit_all s", "update() s", "update % of retrain time",
                    "update % of refit_all time"):
            row[key] = fmt_pm(*mean_std([r[key] for r in rs]))
        for against in ("retrain", "refit_all"):
            nd, tm = (mean_std([r[f"update % of {against} {k}"] for r in rs])[0] for k in ("ndcg", "time"))
            row[f"target met vs {against}"] = "yes" if nd >= TARGET_NDCG and tm <= TARGET_TIME else "no"
        out.append(row)
    return out


def block_table(rows: list[dict]) -> list[dict]:
    """Every block and variant: mean ± std over seeds, with the users scored (the same for every seed)."""
    out = []
    for blk, variant, group in dict.fromkeys((r["predicts block"], r["variant"], r["user group"]) for r in rows):
        rs = [r for r in rows if (r["predicts block"], r["variant"], r["user group"]) == (blk, variant, group)]
        out.append({"predicts block": blk, "variant": variant, "user group": group,
                    "users": "/".join(sorted({str(r["users"]) for r in rs})),
                    "ndcg@10": fmt_pm(*mean_std([r["ndcg@10"] for r in rs])),
                    "recall@20": fmt_pm(*mean_std([r["recall@20"] for r in rs])),
                    "seconds": fmt_pm(*mean_std([r["seconds"] for r in rs]))})
    return out


def plot(rows: list[dict], title: str, path: Path) -> None:
    """Next-block NDCG@10 per block for each variant (all users; seed std as error bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for variant in VARIANTS:
        blocks = sorted({r["predicts block"] for r in rows})
        vals = [[r["ndcg@10"] for r in rows if r["predicts block"] == b and r["variant"] == variant
                 and r["user group"] == "all users"] for b in blocks]
        ax.errorbar(blocks, [np.mean(v) for v in vals], yerr=[np.std(v, ddof=1) if len(v) > 1 else 0 for v in vals],
                    marker="o", capsize=3, label=variant)
    ax.set_xlabel("predicted block (trained on the blocks before it)")
    ax.set_ylabel("next-block NDCG@10")
    ax.set_title(f"{title}: continual protocol with validation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_dataset(name: str, args, argv: list[str]) -> Path:
    t_start = time.perf_counter()
    out_dir = Path(args.out_dir)
    stem = f"dynamics-continual-{SHORT.get(name, name)}"
    info = machine(ignore=[out_dir / f"{stem}.{ext}" for ext in ("json", "md", "png")])
    if info["dirty"] and not args.allow_dirty:
        raise KgrecError(f"the working tree at {info['commit']} has uncommitted changes ({info['dirty_files']}); "
                         "commit them so that the results name the code that made them, or pass '--allow-dirty'")
    info["torch_threads"] = torch.get_num_threads()
    extra = _extra(args)
    wanted = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows, fits, merged = merged_seeds(name, args, wanted)
    if not wanted:  # only folding in seeds run elsewhere
        if not merged:
            raise KgrecError("'--seeds' is empty and nothing is given with '--merge-from': no seed to report")
        return write_dataset(name, args, argv, info, rows, fits, extra, [], [], t_start, merged)
    kg = load_dataset(name, args.data_root, args.cache)
    for n, seed in enumerate(wanted, 1):
        r, f = run_seed(kg, seed, args.update_epochs, args.replay, args.l2_pull, extra)
        rows += r
        fits += f
        # written after every seed (a later seed replaces the files), so a run cut short keeps its seeds
        md = write_dataset(name, args, argv, info, rows, fits, extra, wanted[:n], wanted, t_start, merged)
    return md


#: the settings two runs must share for their seeds to be one table
PROTOCOL_ARGS = ("update_epochs", "replay", "l2_pull", "param")


def merged_seeds(name: str, args, wanted: list[int]) -> tuple[list[dict], list[dict], list[dict]]:
    """The rows and fits of the seeds in ``--merge-from`` files (each written by this script for
    ``name``, seeds run in separate processes), and one provenance record per file (its seeds,
    commit, machine, date, command). Refused, naming the file: another dataset, other protocol
    settings (:data:`PROTOCOL_ARGS`), a file written from a dirty tree, or a seed given twice.
    """
    rows, fits, merged, seen = [], [], [], set(wanted)
    for path in getattr(args, "merge_from", None) or []:
        f = Path(path)
        try:
            payload = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise KgrecError(f"--merge-from {f}: not a readable result file ({e})") from None
        missing = [k for k in ("dataset", "machine", "command", "seeds_done", "rows", "fits") if k not in payload] \
            if isinstance(payload, dict) else ["a JSON object"]
        if missing:
            raise KgrecError(f"--merge-from {f}: not a result file of benchmarks/continual.py "
                             f"(no {', '.join(missing)})")
        if payload.get("dataset") != name:
            raise KgrecError(f"--merge-from {f}: its dataset is {payload.get('dataset')!r}, not {name!r}")
        theirs = payload.get("args", {})
        for key in PROTOCOL_ARGS:
            if theirs.get(key) != getattr(args, key):
                raise KgrecError(f"--merge-from {f}: ran with {key}={theirs.get(key)!r}, this run with "
                                 f"{getattr(args, key)!r}; seeds of one table share the protocol")
        if payload["machine"].get("dirty"):
            raise KgrecError(f"--merge-from {f}: written from a tree with uncommitted changes")
        seeds = list(payload["seeds_done"])
        twice = sorted(seen & set(seeds))
        if twice:
            raise KgrecError(f"--merge-from {f}: seed(s) {twice} given twice")
        seen |= set(seeds)
        rows += payload["rows"]
        fits += payload["fits"]
        # a file that itself folded seeds in keeps their own provenance; its run made the rest
        inner = payload.get("merged") or []
        merged += inner
        own = [s for s in seeds if s not in {x for m in inner for x in m["seeds"]}]
        if own:
            m = payload["machine"]
            merged.append({"file": f.name, "seeds": own, "commit": m["commit"], "cpu": m["cpu"], "date": m["date"],
                           "command": payload["command"]})
    return rows, fits, merged


def write_dataset(name: str, args, argv: list[str], info: dict, rows: list[dict], fits: list[dict], extra: dict,
                  done: list[int], wanted: list[int], t_start: float, merged: list[dict] = ()) -> Path:
    """The JSON, Markdown and plot of the seeds ``done`` so far (the text says when some are missing),
    with the seeds folded in from other runs (``merged``: :func:`merged_seeds`), each named with its
    commit and command.
    """
    out_dir = Path(args.out_dir)
    stem = f"dynamics-continual-{SHORT.get(name, name)}"
    seeds = per_seed(rows)
    summary = summarise(seeds)
    seconds = time.perf_counter() - t_start
    omp = os.environ.get("OMP_NUM_THREADS")
    command = ("OMP_NUM_THREADS=" + omp + " " if omp else "") + "python benchmarks/continual.py " + " ".join(argv)
    overrides = (f" **Overrides (--param), not the suite's Hybrid: {extra}** (a smoke run, not headline figures)."
                 if extra else "")
    dirty = (" **Written from a tree with uncommitted changes (--allow-dirty)**: "
             + ", ".join(info["dirty_files"]) + "." if info["dirty"] else "")
    if done != wanted:
        dirty += (f" **Partial: seeds {', '.join(map(str, done))} of {', '.join(map(str, wanted))}** (the others "
                  "did not finish).")
    for m in merged:
        dirty += (f" Seed(s) {', '.join(map(str, m['seeds']))} folded in (`--merge-from`) from a run at commit "
                  f"{m['commit']} ({m['cpu']}, {m['date']}; command `{m['command']}`).")
    done = [s for m in merged for s in m["seeds"]] + list(done)
    text = (f"{TITLES.get(name, name)}. Command: `{command}`. Machine: {info['cpu']}, {info['torch_threads']} torch "
            f"thread(s), GPU {info['gpu']}; commit {info['commit']}; {info['date']}; total {seconds:.0f} s."
            f"{dirty}{overrides}\n\n"
            f"Protocol (`benchmarks/continual.py`): a base block (first 50% by time) and 5 blocks of 10%; every fit "
            f"is the suite's \"Hybrid\" (`tuning.SPACES`: early stopping and the priors chosen on validation) on "
            f"the window so far, cut per user by time with its last 10% as validation (\"full retrain\"); "
            f"refit_all: that fit's chosen settings refitted on every window interaction (seconds: fit + refit); "
            f"update(): the base model "
            f"continued block by block ({args.update_epochs} epochs, replay {args.replay}, l2_pull {args.l2_pull}; "
            f"the base fit's validation part joins the first update). Each variant ranks for the next block (window "
            f"users, window items as candidates, window interactions masked). Blocks 2-5, mean per seed, then mean "
            f"± std over seeds {', '.join(map(str, done))}. Targets (issue 21): update() >= {TARGET_NDCG:.0f}% of "
            f"retraining's NDCG@10 in <= {TARGET_TIME:.0f}% of its time, judged against both retrains (the full "
            f"retrain lacks each user's latest 10%, which favours update(); refit_all trains on it, as update() "
            f"does).\n\n## Summary: blocks 2-5\n\n")
    rest = ("## Per seed (blocks 2-5)\n\n" + markdown_table(seeds, list(seeds[0])) + "\n\n"
            "## Every block (mean ± std over seeds; users scored per block)\n\n"
            + markdown_table(block_table(rows), list(block_table(rows)[0])) + "\n\n## Fits\n\n"
            + markdown_table([{k: v for k, v in f.items() if k != "chosen"} for f in fits],
                             [k for k in fits[0] if k != "chosen"]) + "\n")
    payload = {"dataset": name, "command": command, "machine": info, "args": vars(args), "seconds": seconds,
               "seeds_done": done, "merged": list(merged),
               "rows": rows, "fits": fits, "per_seed": seeds, "summary": summary}
    _, md = write_results(out_dir, stem, payload, summary, list(summary[0]),
                          title="Continual protocol with validation: update() vs full retraining", text=text)
    md.write_text(md.read_text(encoding="utf-8") + "\n" + relative_paths(rest, ROOT), encoding="utf-8")
    plot(rows, TITLES.get(name, name), out_dir / f"{stem}.png")
    log(f"[continual] {name}: wrote {md} ({seconds:.0f} s)")
    return md


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--datasets", default="movielens-100k,movielens-small")
    p.add_argument("--seeds", default="2020,2021,2022", help="model seeds (and seeds of the validation carve)")
    p.add_argument("--update-epochs", type=int, default=5)
    p.add_argument("--replay", type=float, default=0.2)
    p.add_argument("--l2-pull", type=float, default=0.0)
    p.add_argument("--param", action="append", default=[],
                   help="key=value overriding the Hybrid's settings (smoke runs only: results say so)")
    p.add_argument("--merge-from", action="append", default=[], metavar="JSON",
                   help="fold in the seeds of a result file of this script run elsewhere (same dataset and "
                        "protocol settings), so seeds can run in parallel processes; repeatable. With "
                        "--seeds '' nothing is fitted")
    add_output_arguments(p)
    return run_datasets(p, argv, run_dataset)


if __name__ == "__main__":
    raise SystemExit(main())
