r"""Who a change helps: per-user test NDCG@10 of two rows, grouped by the users' training activity.

A table's mean can hide a change that helps users with little history and hurts the others (or the
reverse). For each pair of rows (two suite result files of the same dataset and split, or one file),
the test users are grouped by their number of training interactions (quartiles of the test users;
quartile edges that coincide, as on Book-Crossing where half the users have one interaction, merge
groups), and each group gets both rows' mean per-user NDCG@10 (mean over seeds), the relative gap
and a paired Wilcoxon test (docs/protocol.md). The split is rebuilt from the data to count the
training interactions; the files' split records must match it.

    python benchmarks/user_activity.py --data-root ../shared/data --cache ../bench-cache \\
        --pair "vs LightGCN=$F:LightGCN,$F:Hybrid w/o priors" --name user-activity

with ``F=benchmarks/results/movielens-100k/random.json``.

Writes ``<out>/<name>.json``, ``.md`` and ``.png`` (relative gap per group, one panel per pair).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import DEFAULT_CACHE, DEFAULT_DATA_ROOT, ROOT, machine, write_results

import numpy as np
import torch

from kgrec.errors import KgrecError
from kgrec.evaluation.significance import paired_test, per_user_means

from suite import load_dataset, make_split, model_commit


def parse_pair(spec: str) -> tuple[str, list[tuple[str, str]]]:
    """``LABEL=FILE:MODEL,FILE:MODEL`` -> (label, [(file, model) base, (file, model) new])."""
    label, eq, rest = spec.partition("=")
    sides = rest.split(",") if eq else []
    parsed = [s.rpartition(":") for s in sides]
    if not label or len(sides) != 2 or any(not f or not m for f, _, m in parsed):
        raise KgrecError(f"'--pair': {spec!r} must be LABEL=FILE:MODEL,FILE:MODEL (base first)")
    return label, [(f, m) for f, _, m in parsed]


def activity_groups(counts: np.ndarray, groups: int = 4) -> list[tuple[int, int]]:
    """Inclusive ``(low, high)`` training-count ranges: quantiles of ``counts``, coinciding edges merged.

    >>> activity_groups(np.array([1, 1, 1, 1, 2, 3, 5, 9]))
    [(1, 1), (2, 3), (4, 9)]
    """
    edges = np.quantile(counts, np.linspace(0, 1, groups + 1)[1:-1], method="lower").astype(int).tolist()
    out, low = [], int(counts.min())
    for e in sorted(set(edges)) + [int(counts.max())]:
        if e >= low:
            out.append((low, e))
            low = e + 1
    return out


def compare(label: str, sides: list[tuple[str, str]], data_root: str, cache: str, groups: int) -> list[dict]:
    """Read both files, rebuild their split to count each user's training interactions, group."""
    payloads = []
    for path, model in sides:
        try:
            payloads.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as e:
            raise KgrecError(f"'--pair' {label!r}: cannot read {path}: {e}") from None
    a = payloads[0]
    same_split(label, *payloads)
    kg = load_dataset(a["dataset"], data_root, cache)
    sp = make_split(kg, a["dataset"], a["split"], data_root)
    if len(sp.train) != a["split_stats"]["train"] or len(sp.test) != a["split_stats"]["test"]:
        raise KgrecError(f"'--pair' {label!r}: the rebuilt {a['dataset']} {a['split']} split has "
                         f"{len(sp.train)}/{len(sp.test)} train/test pairs, the files "
                         f"{a['split_stats']['train']}/{a['split_stats']['test']}")
    counts = torch.bincount(sp.train.user, minlength=kg.num_users).numpy()
    return group_rows(label, sides, payloads, counts, groups)


def same_split(label: str, a: dict, b: dict) -> None:
    if (a["dataset"], a["split"], a["split_stats"]) != (b["dataset"], b["split"], b["split_stats"]):
        raise KgrecError(f"'--pair' {label!r}: the two files hold different splits ({a['dataset']} {a['split']} "
                         f"vs {b['dataset']} {b['split']}, or other pairs): nothing to pair")


def group_rows(label: str, sides: list[tuple[str, str]], payloads: list[dict], counts: np.ndarray,
               groups: int) -> list[dict]:
    """One row per activity group (and one for all users) of the pair ``sides`` (base, new):
    ``counts[u]`` is user ``u``'s number of training interactions.
    """
    a, b = payloads
    means = []
    for payload, (path, model) in zip(payloads, sides):
        runs = [r for r in payload["runs"] if r.get("name") == model]
        if not runs:
            raise KgrecError(f"'--pair' {label!r}: no runs of {model!r} in {path}")
        means.append(per_user_means(runs))
    users = sorted(set(means[0]) & set(means[1]))
    act = counts[users]
    rows = []
    spans = [(f"{low}-{high}", low, high) for low, high in activity_groups(act, groups)]
    for name, low, high in spans + [(f"all ({act.min()}-{act.max()})", int(act.min()), int(act.max()))]:
        sel = [u for u, c in zip(users, act) if low <= c <= high]
        base, new = (np.array([m[u] for u in sel]) for m in means)
        test = paired_test(dict(zip(sel, new)), dict(zip(sel, base)))
        rows.append({"pair": label, "dataset": a["dataset"], "split": a["split"],
                     "training interactions": name,
                     "users": len(sel), "base": f"{sides[0][1]} @ {model_commit(a, sides[0][1])[:7]}",
                     "new": f"{sides[1][1]} @ {model_commit(b, sides[1][1])[:7]}",
                     "base ndcg@10": float(base.mean()), "new ndcg@10": float(new.mean()),
                     "gap": float(new.mean() - base.mean()),
                     "relative": float((new.mean() - base.mean()) / base.mean()) if base.mean() else float("nan"),
                     "p": test["p"]})
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((r["pair"], r["dataset"], r["split"]) for r in rows))  # one per --pair
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, (pair, dataset, split) in zip(axes[0], panels):
        sub = [r for r in rows if (r["pair"], r["dataset"], r["split"]) == (pair, dataset, split)
               and not r["training interactions"].startswith("all")]
        x = np.arange(len(sub))
        rel = [100 * r["relative"] for r in sub]
        ax.bar(x, rel, color=["tab:green" if v >= 0 else "tab:red" for v in rel])
        for xi, r, v in zip(x, sub, rel):
            ax.annotate(f"p={r['p']:.2g}", (xi, v), ha="center", va="bottom" if v >= 0 else "top", fontsize=7)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, [f"{r['training interactions']}\n(n={r['users']})" for r in sub], fontsize=7)
        ax.set_title(f"{pair}\n{dataset} {split}", fontsize=8)
        ax.set_ylabel("new vs base, NDCG@10 (%)")
        ax.set_xlabel("training interactions of the test user")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pair", action="append", required=True,
                   help="LABEL=FILE:MODEL,FILE:MODEL (base first); repeatable")
    p.add_argument("--groups", type=int, default=4, help="activity groups per pair (quantiles; default 4)")
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--name", default="user-activity", help="results file name under --out")
    p.add_argument("--title", default="Who a change helps: NDCG@10 by the users' training activity")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--allow-dirty", action="store_true",
                   help="write from a tree with uncommitted changes (the file then says so)")
    args = p.parse_args(argv)
    if args.groups < 1:
        p.error(f"'--groups' must be >= 1 (got {args.groups})")
    info = machine(ignore=[args.out])
    if info["dirty"] and not args.allow_dirty:
        p.error(f"uncommitted changes in {', '.join(info['dirty_files'])}: commit first or pass --allow-dirty")
    try:
        rows = [r for spec in args.pair for r in compare(*parse_pair(spec), args.data_root, args.cache, args.groups)]
    except KgrecError as e:
        p.error(str(e))
    cols = ["pair", "dataset", "split", "training interactions", "users", "base", "new", "base ndcg@10",
            "new ndcg@10", "gap", "relative", "p"]
    command = "python benchmarks/user_activity.py " + " ".join(
        f"'{a}'" if " " in a else a for a in (argv if argv is not None else sys.argv[1:]))
    text = (f"Command: `{command}` at commit {info['commit']}{' (uncommitted changes)' if info['dirty'] else ''}; "
            f"{info['cpu']}, {info['date']}. The rows' own commits are in the base / new columns. "
            "Per-user test NDCG@10 (mean over each row's seeds) of two rows, grouped by the test user's "
            "number of training interactions (quartiles of the test users, coinciding edges merged; the "
            "last line of each pair is all users). 'relative' = (new - base) / base; p: paired Wilcoxon "
            "signed-rank test within the group. Groups are not a verdict by the protocol's rule (no seed "
            f"spread per group); they show where a mean gap comes from. Plot: `{args.name}.png`.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(rows, out / f"{args.name}.png")
    table = [dict(r, relative=f"{100 * r['relative']:+.1f}%", p=f"{r['p']:.3g}") for r in rows]
    write_results(out, args.name, {"rows": rows, "machine": info, "command": command},
                  table, cols, title=args.title, text=text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
