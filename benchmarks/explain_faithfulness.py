"""Are the hybrid's explanations faithful? MovieLens-100K, random split seed 2020.

Trains the hybrid (a quick config: ``--epochs``, default 10, instead of the default 200 with early
stopping; everything else at its defaults), then for ``--users`` random users (seeded) explains
their top-1 item with :meth:`kgrec.Recommender.explain` and checks:

(i) every hop of every returned path exists in the training graph: the first hop is one of the
    user's *training* interactions, every other hop a triple of the KG (checked against
    ``kg.triples`` and ``split.train`` directly, not through the explainer's own graph);
(ii) removing the top path's attribute edge (the KG triple of the path that touches the recommended
    item, both directions) from the edges the KG encoder passes messages over lowers the item's
    score: the fraction of users where it does and the mean drop, against removing a random other
    attribute edge of the same item (control, seeded). Both for the default ranking (occlusion of
    the whole path) and for the model-agnostic ranking (similarity of the history item to the
    target under the model's item vectors), which does not look at occlusion at all.

Example::

    OMP_NUM_THREADS=1 python benchmarks/explain_faithfulness.py --cache /work/main/.cache/bench
"""

from __future__ import annotations

import argparse
import random
import statistics
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

import torch

import kgrec
from kgrec.explain import Explainer


def attribute_edges(kg, item: int) -> list[tuple[str, str, str]]:
    """KG triples between ``item`` and an attribute entity (not another item), as IRIs."""
    t = kg.triples
    rows = t[((t[:, 0] == item) & (t[:, 2] >= kg.num_items)) | ((t[:, 2] == item) & (t[:, 0] >= kg.num_items))]
    return [(kg.entities[h], kg.relations[r], kg.entities[o]) for h, r, o in rows.tolist()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="converted-graph cache (read if present)")
    ap.add_argument("--epochs", type=int, default=10, help="hybrid epochs (quick config)")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2020, help="seed of the split, the model, the users, the control")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model-dir", default=None, help="reuse a hybrid saved here (saved there after training)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    kg = load_dataset("movielens-100k", args.data_root, args.cache)
    sp = kgrec.split(kg, "random", seed=args.seed)
    params = {"epochs": args.epochs, "seed": args.seed}
    t0 = time.perf_counter()
    reloaded = bool(args.model_dir and (Path(args.model_dir) / "config.json").is_file())
    if reloaded:
        rec = kgrec.Recommender.load(args.model_dir)
    else:
        rec = kgrec.Recommender("hybrid", **params).fit(kg, sp, log=lambda s: print(s, file=sys.stderr))
        if args.model_dir:
            rec.save(args.model_dir)
    fit_s = time.perf_counter() - t0
    test = rec.evaluate(sp, ks=(10,))
    print(f"hybrid: {fit_s:.0f} s, test ndcg@10 {test['ndcg@10']:.4f}", file=sys.stderr)

    triples = {(kg.entities[h], kg.relations[r], kg.entities[o]) for h, r, o in kg.triples.tolist()}
    train = {(kg.users[u], kg.items[i]) for u, i in zip(sp.train.user.tolist(), sp.train.item.tolist())}
    rng = random.Random(args.seed)
    users = sorted({kg.users[u] for u in sp.train.user.tolist()})
    users = rng.sample(users, args.users)

    records = []
    t_explain = time.perf_counter()
    ex = Explainer(rec, kg)  # converts the training graph to networkx once
    for user in users:
        item = rec.recommend([user], k=1)[user][0][0]
        i = kg.items.id(item)
        u = kg.users.id(user)
        rows = {"user": user, "item": item, "item_label": kg.label(i)}
        base = None
        for method in ("occlusion", "similarity"):
            t1 = time.perf_counter()
            exp = ex.explain(user, item, max_paths=3, method=method)
            rows["shares"] = exp.shares
            base = exp.score
            hops_ok = all((h.head, h.tail) in train if h.relation == "interaction" else (h.head, h.relation, h.tail)
                          in triples for p in exp.paths for h in p.hops)
            n_hops = sum(len(p.hops) for p in exp.paths)
            r = {"paths": len(exp.paths), "hops": n_hops, "hops_in_training_graph": hops_ok,
                 "seconds": time.perf_counter() - t1, "top_path": exp.paths[0].text() if exp.paths else None}
            if exp.paths:
                last = exp.paths[0].hops[-1]
                edge = (last.head, last.relation, last.tail)
                r["top_edge"] = list(edge)
                r["drop"] = base - ex.occlusion_score(u, i, [edge])
                others = [e for e in attribute_edges(kg, i) if e != edge]
                if others:
                    ctrl = random.Random(f"{args.seed}-{user}").choice(others)
                    r["control_edge"] = list(ctrl)
                    r["control_drop"] = base - ex.occlusion_score(u, i, [ctrl])
            rows[method] = r
        rows["score"] = base
        records.append(rows)
        print(f"{user}: {rows['item_label']}: " + "; ".join(
            f"{m} drop {rows[m].get('drop', float('nan')):+.4f} vs {rows[m].get('control_drop', float('nan')):+.4f}"
            for m in ("occlusion", "similarity")), file=sys.stderr)
    explain_s = time.perf_counter() - t_explain

    summary = {"scores": {"mean_score": statistics.fmean(r["score"] for r in records),
                          **{f"mean_{b}_share": statistics.fmean(r["shares"][b] for r in records)
                             for b in records[0]["shares"]}}}
    for m in ("occlusion", "similarity"):
        with_path = [r[m] for r in records if r[m]["paths"]]
        drops = [r["drop"] for r in with_path]
        ctrl = [r["control_drop"] for r in with_path if "control_drop" in r]
        summary[m] = {
            "users_with_path": len(with_path),
            "all_hops_in_training_graph": all(r[m]["hops_in_training_graph"] for r in records),
            "hops_checked": sum(r[m]["hops"] for r in records),
            "fraction_score_lowered": sum(d > 0 for d in drops) / len(drops) if drops else None,
            "mean_drop": statistics.fmean(drops) if drops else None,
            "median_drop": statistics.median(drops) if drops else None,
            "control_users": len(ctrl),
            "control_fraction_score_lowered": sum(d > 0 for d in ctrl) / len(ctrl) if ctrl else None,
            "control_mean_drop": statistics.fmean(ctrl) if ctrl else None,
            "control_median_drop": statistics.median(ctrl) if ctrl else None,
            "mean_seconds_per_explanation": statistics.fmean(r[m]["seconds"] for r in records),
        }
    cmd = "python benchmarks/explain_faithfulness.py " + " ".join(sys.argv[1:] if argv is None else argv)
    payload = {"command": cmd, "machine": machine(), "dataset": "movielens-100k", "split": sp.stats(),
               "model": "hybrid", "params": params, "reloaded": reloaded, "fit_seconds": fit_s, "test": test,
               "explain_seconds": explain_s, "users": args.users, "summary": summary, "records": records}
    rows = [{"ranking": m, **{k: v for k, v in s.items()}} for m, s in summary.items() if m != "scores"]
    cols = [("ranking", "top path ranked by"), ("users_with_path", "users with a path"),
            ("all_hops_in_training_graph", "every hop in training graph"), ("hops_checked", "hops checked"),
            ("fraction_score_lowered", "removing its attribute edge lowers score"), ("mean_drop", "mean drop"),
            ("median_drop", "median drop"), ("control_fraction_score_lowered", "control: lowers score"),
            ("control_mean_drop", "control: mean drop"), ("control_median_drop", "control: median drop")]
    mach = payload["machine"]
    text = (f"Command: `{cmd}`.\n\nMovieLens-100K + Freebase KG + DBpedia abstracts, `kgrec.split` random "
            f"80/10/10 seed {args.seed}; hybrid with defaults except epochs={args.epochs} (quick config; "
            f"{'reloaded from ' + args.model_dir if reloaded else f'fit {fit_s:.0f} s'}, test NDCG@10 "
            f"{test['ndcg@10']:.4f}). {args.users} users drawn with "
            f"`random.Random({args.seed})`; each user's top-1 item explained (3 paths, at most 3 KG hops). "
            f"'drop' = score before - score after removing the top path's KG edge that touches the item "
            f"(both directions) from the KG encoder's message-passing edges; control = a random other "
            f"attribute edge of the same item. Score scale: mean top-1 score "
            f"{summary['scores']['mean_score']:.3f}, of which the KG branch "
            f"{summary['scores'].get('mean_kg_share', float('nan')):.3f} (CF "
            f"{summary['scores'].get('mean_cf_share', float('nan')):.3f}, text "
            f"{summary['scores'].get('mean_text_share', float('nan')):.3f}, EASE prior "
            f"{summary['scores'].get('mean_prior_share', float('nan')):.3f}). Machine: {mach['cpu']}, "
            f"{mach['torch_threads']} torch threads; "
            f"commit {mach['commit']}; {mach['date']}.")
    write_results(args.out, "explain_faithfulness", payload, rows, cols, title="Explanation faithfulness (hybrid)",
                  text=text, floatfmt=".5f")
    print(f"wrote {args.out}/explain_faithfulness.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
