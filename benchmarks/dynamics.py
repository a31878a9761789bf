"""Interest dynamics on MovieLens: time decay, continual updates, cold-start users (issue 5).

Three protocols (PROTOCOL.md metrics: full ranking, train items masked, NDCG@10 and Recall@20):

* ``decay``: ``global-time`` and ``temporal`` splits (seed 2020); each model fitted with time decay
  off and with every half-life of ``--half-lives`` (EASE on ML-100K: ``decay_from`` "cut" and
  "user"; otherwise "cut" for global-time and "user" for the per-user temporal split); the half-life
  reported as "decay on" is the one with the best validation NDCG@10; the plot shows test NDCG@10
  against the half-life.
* ``continual``: interactions sorted by time; a base block (first 50%) and 5 blocks of 10%. After
  the base and after each block, the model predicts the next block (users known so far, items seen
  in training so far as candidates, the user's training items masked). Compared: no update (base
  model only), a full retrain on all data so far, and ``Recommender.update`` on each block. Also
  reported on the "earlier users" (users of the base block) to see whether ``update`` forgets them.
* ``coldstart``: 20% of the users (seeded) are held out of training entirely; each gets their first
  ``k`` interactions (by time, k = 1..5) at call time through ``recommend_for_history`` and is
  scored on the rest (Recall@20, NDCG@10) against MostPop, a random ranking and the oracle (the
  user's own rest ranked first: the highest Recall@20 a top-20 list can reach, below 1 when the
  user has more than 20 items left). Models here are fitted without a validation part;
  ``coldstart_users.py`` measures the same held-out users against the models the suite tunes on
  validation (the hybrid as ``fit`` gives it), with EASE fold-in and paired tests.

Example::

    python benchmarks/dynamics.py --datasets movielens-100k --protocols decay,continual,coldstart
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import (
    DEFAULT_CACHE,
    DEFAULT_DATA_ROOT,
    ROOT,
    load_dataset,
    machine,
    write_results,
)

import numpy as np
import torch

import kgrec
from kgrec.data.graph import Interactions
from kgrec.data.splits import Split
from kgrec.dynamics.update import old_interactions
from kgrec.evaluation import metrics
from kgrec.reports.tables import markdown_table

DATASETS = {"movielens-100k": "ML-100K", "movielens-small": "ML-latest-small"}
#: the trained model: BPR-MF, short schedule on two shared cores (say so with the results)
BPRMF = {"dim": 64, "lr": 2e-3, "reg": 0.0, "epochs": 40, "patience": 5, "eval_every": 2, "batch_size": 2048}
# the continual protocol has no validation part: a fixed number of epochs, and no EASE prior (its
# weight is chosen on validation), so this is the hybrid's neural part (KG + text + CF)
HYBRID = {"epochs": 20, "ease_prior": False}
EASE_REG = {"movielens-100k": 250.0, "movielens-small": 250.0}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ metrics
def rank_metrics(scores: torch.Tensor, truth: list[set[int]], masks: list[list[int]]) -> dict:
    """NDCG@10 and Recall@20 of score rows ``[B, I]`` (masked items -> -inf) against ``truth``."""
    scores = scores.clone()
    for r, m in enumerate(masks):
        if m:
            scores[r, m] = -torch.inf
    top = torch.topk(scores, 20, dim=1).indices.tolist()
    ndcg, rec = _ndcg_recall(top, truth)
    return {"ndcg@10": float(ndcg.mean()), "recall@20": float(rec.mean()), "users": len(truth)}


def _ndcg_recall(top: list[list[int]], truth: list[set[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row NDCG@10 and Recall@20 (``kgrec.evaluation.metrics``) of ranked item lists against relevant sets."""
    hits = torch.tensor([[i in t for i in row] + [False] * (20 - len(row)) for t, row in zip(truth, top)],
                        dtype=torch.bool).view(len(top), 20)
    n_rel = torch.tensor([len(t) for t in truth])
    return metrics.ndcg(hits, n_rel, k=10), metrics.recall(hits, n_rel, k=20)


# -------------------------------------------------------------------------------------- decay
def run_decay(kg, name: str, half_lives: list[float], models: list[str], both_refs: bool,
              trained_half_lives: list[float]) -> list[dict]:
    rows = []
    for strategy in ("global-time", "temporal"):
        sp = kgrec.split(kg, strategy, seed=2020)
        for model in models:
            base = {"reg": EASE_REG[name]} if model == "ease" else dict(BPRMF, seed=2020)
            ref_of_split = "user" if strategy == "temporal" else "cut"
            if model == "ease" and both_refs:
                settings = [(None, "cut")] + [(h, ref) for ref in ("cut", "user") for h in half_lives]
            else:  # fewer fits on shared cores: the reference that matches the split
                hl = half_lives if model == "ease" else trained_half_lives
                settings = [(None, "cut")] + [(h, ref_of_split) for h in hl]
            for h, ref in settings:
                t0 = time.perf_counter()
                rec = kgrec.Recommender(model, half_life_days=h, decay_from=ref, **base).fit(kg, sp)
                v = rec.evaluate(sp, ks=(10, 20), part="valid")
                t = rec.evaluate(sp, ks=(10, 20), part="test")
                rows.append({"dataset": DATASETS[name], "split": strategy, "model": model, "half_life_days": h,
                             "decay_from": ref if h else None, "valid ndcg@10": v["ndcg@10"],
                             "ndcg@10": t["ndcg@10"], "recall@20": t["recall@20"], "test users": t["users"],
                             "seconds": time.perf_counter() - t0, "best_epoch": rec.fit_info.get("best_epoch")})
                log(f"[decay] {name} {strategy} {model} h={h} {ref}: valid {v['ndcg@10']:.4f} "
                    f"test ndcg@10 {t['ndcg@10']:.4f} recall@20 {t['recall@20']:.4f} ({rows[-1]['seconds']:.0f} s)")
    return rows


def decay_summary(rows: list[dict]) -> list[dict]:
    out = []
    keys = list(dict.fromkeys((r["dataset"], r["split"], r["model"]) for r in rows))
    for key in keys:
        rs = [r for r in rows if (r["dataset"], r["split"], r["model"]) == key]
        off = next(r for r in rs if r["half_life_days"] is None)
        on = max((r for r in rs if r["half_life_days"]), key=lambda r: r["valid ndcg@10"])
        out.append({"dataset": key[0], "split": key[1], "model": key[2], "off ndcg@10": off["ndcg@10"],
                    "off recall@20": off["recall@20"], "selected half-life (days)": on["half_life_days"],
                    "decay_from": on["decay_from"], "on ndcg@10": on["ndcg@10"], "on recall@20": on["recall@20"],
                    "change ndcg@10 %": 100 * (on["ndcg@10"] / off["ndcg@10"] - 1), "test users": off["test users"]})
    return out


# --------------------------------------------------------------------------------- continual
def _block_eval(rec, inter: Interactions, kg, users_filter: set[int] | None, candidates: set[int]) -> dict:
    """Score ``inter`` (ids of ``kg``) with ``rec``: known users, candidate items, training items masked."""
    train = old_interactions(rec.estimator)
    seen: dict[int, set[int]] = {}
    for u, i in zip(train.user.tolist(), train.item.tolist()):
        seen.setdefault(u, set()).add(i)
    truth: dict[int, set[int]] = {}
    for u, i in zip(inter.user.tolist(), inter.item.tolist()):
        if users_filter is not None and u not in users_filter:
            continue
        uid = rec.users.get(kg.users[u])
        iid = rec.items.get(kg.items[i])
        if uid is None or iid is None or iid in seen.get(uid, ()) or i not in candidates:
            continue
        if uid in seen:  # users with training history only
            truth.setdefault(uid, set()).add(iid)
    users = sorted(truth)
    if not users:
        return {"ndcg@10": float("nan"), "recall@20": float("nan"), "users": 0}
    cand_ids = torch.tensor(sorted(rec.items.id(kg.items[i]) for i in candidates if kg.items[i] in rec.items))
    out = {"ndcg@10": [], "recall@20": [], "users": 0}
    for s in range(0, len(users), 512):
        b = users[s:s + 512]
        sc = rec.score(torch.tensor(b))
        keep = torch.full_like(sc, -torch.inf)
        keep[:, cand_ids] = sc[:, cand_ids]
        m = rank_metrics(keep, [truth[u] for u in b], [sorted(seen[u]) for u in b])
        out["ndcg@10"].append(m["ndcg@10"] * len(b))
        out["recall@20"].append(m["recall@20"] * len(b))
        out["users"] += len(b)
    return {"ndcg@10": sum(out["ndcg@10"]) / out["users"], "recall@20": sum(out["recall@20"]) / out["users"],
            "users": out["users"]}


def run_continual(kg, name: str, model: str, epochs: int, replay: float, l2_pull: float) -> list[dict]:
    inter = kg.interactions
    order = torch.argsort(inter.time, stable=True)
    n = len(inter)
    cuts = [int(n * f) for f in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)]
    blocks = [inter.select(order[:cuts[0]])] + [inter.select(order[cuts[j]:cuts[j + 1]]) for j in range(5)]
    base_users = set(blocks[0].user.tolist())
    params = ({"reg": EASE_REG[name]} if model == "ease" else dict(HYBRID, seed=2020) if model == "hybrid"
              else dict(BPRMF, seed=2020))
    empty = Interactions.empty()

    def fit_on(data: Interactions):
        t0 = time.perf_counter()
        sp = Split("time-blocks", 0, (1.0, 0.0, 0.0), kg.num_users, kg.num_items, data, empty, empty)
        return kgrec.Recommender(model, **params).fit(kg, sp), time.perf_counter() - t0

    base, base_s = fit_on(blocks[0])
    updated = base
    rows = []
    so_far = blocks[0]
    for step in range(5):
        if step > 0:
            so_far = so_far.concat(blocks[step])
            retrain, retrain_s = fit_on(so_far)
            t0 = time.perf_counter()
            updated = _copy(updated).update(kg, blocks[step], epochs=epochs, replay=replay, l2_pull=l2_pull)
            update_s = time.perf_counter() - t0
        else:
            retrain, retrain_s, update_s = base, base_s, base_s
        candidates = set(so_far.item.tolist())
        nxt = blocks[step + 1]
        for variant, rec, secs in (("no update", base, 0.0 if step else base_s), ("full retrain", retrain, retrain_s),
                                   ("update()", updated, update_s)):
            for who, filt in (("all users", None), ("earlier users", base_users)):
                m = _block_eval(rec, nxt, kg, filt, candidates)
                rows.append({"dataset": DATASETS[name], "model": model, "trained on blocks": f"0-{step}",
                             "predicts block": step + 1, "variant": variant, "user group": who,
                             "ndcg@10": m["ndcg@10"], "recall@20": m["recall@20"], "users": m["users"],
                             "seconds": secs})
        log(f"[continual] {name} {model} step {step}: " + ", ".join(
            f"{r['variant']} {r['ndcg@10']:.4f}" for r in rows[-6:] if r["user group"] == "all users")
            + f" (retrain {retrain_s:.1f} s, update {update_s:.1f} s)")
    return rows


def _copy(rec):
    import copy

    return copy.deepcopy(rec)


def continual_summary(rows: list[dict]) -> list[dict]:
    out = []
    for (ds, model, who) in dict.fromkeys((r["dataset"], r["model"], r["user group"]) for r in rows):
        rs = [r for r in rows if (r["dataset"], r["model"], r["user group"]) == (ds, model, who)
              and r["predicts block"] > 1]
        get = lambda v, k: [r[k] for r in rs if r["variant"] == v]  # noqa: E731
        nd = {v: float(np.nanmean(get(v, "ndcg@10"))) for v in ("no update", "full retrain", "update()")}
        secs = {v: float(np.mean(get(v, "seconds"))) for v in ("full retrain", "update()")}
        out.append({"dataset": ds, "model": model, "user group": who, "no update ndcg@10": nd["no update"],
                    "retrain ndcg@10": nd["full retrain"], "update() ndcg@10": nd["update()"],
                    "update % of retrain ndcg": 100 * nd["update()"] / nd["full retrain"],
                    "no update % of retrain ndcg": 100 * nd["no update"] / nd["full retrain"],
                    "retrain s": secs["full retrain"], "update() s": secs["update()"],
                    "update % of retrain time": 100 * secs["update()"] / secs["full retrain"]})
    return out


# -------------------------------------------------------------------------------- cold start
def run_coldstart(kg, name: str, models: list[str], ks=(1, 2, 3, 4, 5), share: float = 0.2) -> list[dict]:
    inter = kg.interactions
    rng = np.random.default_rng(2020)
    users = np.unique(inter.user.numpy())
    held = set(rng.choice(users, size=int(round(share * len(users))), replace=False).tolist())
    is_held = torch.tensor([u in held for u in inter.user.tolist()])
    empty = Interactions.empty()
    train = inter.select(~is_held)
    sp = Split("held-out-users", 2020, (1.0, 0.0, 0.0), kg.num_users, kg.num_items, train, empty, empty)
    warm_items = set(train.item.tolist())
    hist: dict[int, list[tuple[float, int]]] = {}
    for u, i, t in zip(inter.user.tolist(), inter.item.tolist(), inter.time.tolist()):
        if u in held:
            hist.setdefault(u, []).append((t, i))
    for u in hist:
        hist[u].sort()
    rows = []
    fitted = {}
    for model in models:
        params = ({"reg": EASE_REG[name]} if model == "ease" else dict(BPRMF, seed=2020, epochs=30)
                  if model == "bprmf" else dict(HYBRID, seed=2020) if model == "hybrid" else {})
        t0 = time.perf_counter()
        fitted[model] = kgrec.Recommender(model, **params).fit(kg, sp)
        log(f"[coldstart] {name} {model} fitted in {time.perf_counter() - t0:.0f} s")
    for k in ks:
        for model in list(models) + ["random", "oracle"]:
            nd, rc, n_users, t0 = [], [], 0, time.perf_counter()
            for u, h in sorted(hist.items()):
                given = [i for _, i in h[:k]]
                rest = {i for _, i in h[k:] if i in warm_items} - set(given)
                if len(h) <= k or not rest:
                    continue
                if model == "random":
                    r = np.random.default_rng(u + 1000 * k).permutation(sorted(warm_items - set(given)))[:20].tolist()
                elif model == "oracle":  # the best any ranking can do: the user's own rest first
                    r = sorted(rest)[:20]
                else:
                    rec = fitted[model]
                    out = rec.recommend_for_history([kg.items[i] for i in given], times=[t for t, _ in h[:k]], k=20)
                    r = [kg.items.id(i) for i, _ in out]
                n, r20 = _ndcg_recall([r], [rest])
                nd.append(float(n[0]))
                rc.append(float(r20[0]))
                n_users += 1
            rows.append({"dataset": DATASETS[name], "given k": k, "model": model, "recall@20": float(np.mean(rc)),
                         "ndcg@10": float(np.mean(nd)), "users": n_users,
                         "ms per user": 1000 * (time.perf_counter() - t0) / max(n_users, 1)})
            log(f"[coldstart] {name} k={k} {model}: recall@20 {rows[-1]['recall@20']:.4f}")
    return rows


def coldstart_summary(rows: list[dict]) -> list[dict]:
    """Per dataset and k: the best model's Recall@20 as a multiple of MostPop's, and whether
    5x MostPop is attainable at all (at most the oracle's Recall@20: users keep more than 20 items
    to find, so no top-20 list can recall them all).
    """
    out = []
    for ds, k in dict.fromkeys((r["dataset"], r["given k"]) for r in rows):
        rs = {r["model"]: r for r in rows if (r["dataset"], r["given k"]) == (ds, k)}
        if "mostpop" not in rs or len(rs) < 4:  # MostPop, random, oracle and at least one model
            continue
        pop, oracle = rs["mostpop"]["recall@20"], rs["oracle"]["recall@20"]
        best = max((m for m in rs if m not in ("mostpop", "random", "oracle")), key=lambda m: rs[m]["recall@20"])
        out.append({"dataset": ds, "given k": k, "best model": best, "best recall@20": rs[best]["recall@20"],
                    "mostpop recall@20": pop, "best / mostpop": rs[best]["recall@20"] / pop,
                    "random recall@20": rs["random"]["recall@20"], "oracle recall@20": oracle,
                    "5x mostpop": 5 * pop, "5x attainable": bool(5 * pop <= oracle),
                    "oracle / mostpop": oracle / pop})
    return out


# -------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--datasets", default="movielens-100k,movielens-small")
    p.add_argument("--protocols", default="decay,continual,coldstart")
    p.add_argument("--half-lives", default="7,30,90,365,1095")
    p.add_argument("--decay-models", default="ease,bprmf")
    p.add_argument("--decay-models-large", default="ease",
                   help="decay models on ML-latest-small (9,742 items: EASE's inverse dominates)")
    p.add_argument("--half-lives-large", default="90,365,1095")
    p.add_argument("--trained-half-lives", default="30,365", help="half-lives of the trained model (BPR-MF)")
    p.add_argument("--continual-model", default="bprmf")
    p.add_argument("--update-epochs", type=int, default=5)
    p.add_argument("--replay", type=float, default=0.2)
    p.add_argument("--l2-pull", type=float, default=0.0)
    p.add_argument("--coldstart-models", default="mostpop,itemknn,ease,bprmf")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dynamics"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    info = machine()
    protocols = args.protocols.split(",")
    decay_rows, continual_rows, cold_rows = [], [], []
    t_start = time.perf_counter()
    for name in args.datasets.split(","):
        kg = load_dataset(name, args.data_root, args.cache)
        large = kg.num_items > 4000
        if "decay" in protocols:
            hl = [float(h) for h in (args.half_lives_large if large else args.half_lives).split(",")]
            models = (args.decay_models_large if large else args.decay_models).split(",")
            decay_rows += run_decay(kg, name, hl, models, both_refs=not large,
                                    trained_half_lives=[float(h) for h in args.trained_half_lives.split(",")])
        if "continual" in protocols:
            continual_rows += run_continual(kg, name, args.continual_model, args.update_epochs, args.replay,
                                            args.l2_pull)
        if "coldstart" in protocols:
            cold_models = [m for m in args.coldstart_models.split(",") if not (large and m == "ease")]
            cold_rows += run_coldstart(kg, name, cold_models)
    tables = []
    cmd = f"python benchmarks/dynamics.py {' '.join(argv if argv is not None else sys.argv[1:])}"
    head = (f"Command: `{cmd}`. Machine: {info['cpu']}, {info['torch_threads']} torch thread(s), GPU {info['gpu']}; "
            f"commit {info['commit']}; {info['date']}; total {time.perf_counter() - t_start:.0f} s. "
            f"BPR-MF: {BPRMF} (a short schedule for two shared CPU cores), one seed (2020)."
            + (f" Hybrid: {HYBRID}, other parameters at their defaults."
               if "hybrid" in (args.continual_model, *args.coldstart_models.split(",")) else ""))
    if decay_rows:
        tables.append(("Time decay: off vs the half-life selected on validation NDCG@10", decay_summary(decay_rows)))
    if continual_rows:
        tables.append((f"Continual: mean over blocks 2-5 (update(): {args.update_epochs} epochs, replay "
                       f"{args.replay}, l2_pull {args.l2_pull})", continual_summary(continual_rows)))
        tables.append(("Continual: every block", continual_rows))
    if cold_rows:
        tables.append(("Cold-start users: best model vs MostPop, and the most any top-20 list can recall (oracle)",
                       coldstart_summary(cold_rows)))
        tables.append(("Cold-start users: k interactions given at call time (recommend_for_history)", cold_rows))
    payload = {"machine": info, "args": vars(args), "decay": decay_rows, "continual": continual_rows,
               "coldstart": cold_rows, "tables": {t: r for t, r in tables}}
    out = Path(args.out)
    md_parts = []
    for title, rows in tables[1:]:
        md_parts.append(f"## {title}\n\n{markdown_table(rows, list(rows[0]))}")
    first_title, first_rows = tables[0]
    text = head + "\n\n" + "\n\n".join([f"## {first_title}"])
    write_results(out.parent, out.name, payload, first_rows, list(first_rows[0]), title="Interest dynamics",
                  text=text)
    md = out.with_suffix(".md")
    md.write_text(md.read_text() + "\n" + "\n\n".join(md_parts) + "\n")
    _plot(decay_rows, continual_rows, cold_rows, out.with_suffix(".png"))
    for title, rows in tables:
        if title != "Continual: every block":
            print(f"\n{title}\n" + markdown_table(rows, list(rows[0])))
    return 0


def _plot(decay_rows, continual_rows, cold_rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [x for x in (decay_rows, continual_rows, cold_rows) if x]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    ax_iter = iter(axes[0])
    if decay_rows:
        ax = next(ax_iter)
        for key in dict.fromkeys((r["dataset"], r["split"], r["model"], r["decay_from"]) for r in decay_rows
                                 if r["half_life_days"]):
            rs = sorted((r for r in decay_rows if (r["dataset"], r["split"], r["model"], r["decay_from"]) == key),
                        key=lambda r: r["half_life_days"])
            off = next(r for r in decay_rows if (r["dataset"], r["split"], r["model"]) == key[:3]
                       and r["half_life_days"] is None)
            line, = ax.plot([r["half_life_days"] for r in rs], [r["ndcg@10"] for r in rs], "o-",
                            label=f"{key[0]} {key[1]} {key[2]} ({key[3]})")
            ax.axhline(off["ndcg@10"], color=line.get_color(), ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("half-life (days); dotted = no decay")
        ax.set_ylabel("test NDCG@10")
        ax.set_title("Time decay")
        ax.legend(fontsize=6)
    if continual_rows:
        ax = next(ax_iter)
        for key in dict.fromkeys((r["dataset"], r["variant"]) for r in continual_rows):
            rs = [r for r in continual_rows if (r["dataset"], r["variant"]) == key and r["user group"] == "all users"]
            ax.plot([r["predicts block"] for r in rs], [r["ndcg@10"] for r in rs], "o-", label=f"{key[0]} {key[1]}")
        ax.set_xlabel("predicted block")
        ax.set_ylabel("NDCG@10 on the next block")
        ax.set_title("Continual updates")
        ax.legend(fontsize=7)
    if cold_rows:
        ax = next(ax_iter)
        for key in dict.fromkeys((r["dataset"], r["model"]) for r in cold_rows):
            rs = [r for r in cold_rows if (r["dataset"], r["model"]) == key]
            ax.plot([r["given k"] for r in rs], [r["recall@20"] for r in rs], "o-", label=f"{key[0]} {key[1]}")
        ax.set_xlabel("interactions given at call time")
        ax.set_ylabel("Recall@20 of the rest")
        ax.set_title("Cold-start users")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
