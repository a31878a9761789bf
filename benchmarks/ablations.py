r"""Does each part of the hybrid earn its place? One table of multi-seed ablations over several splits.

An ablation removes one part of a model (the KG branch, the text branch, the cross-attention fusion)
and refits it at the point the whole model chose on validation, with the same seeds. For every
ablation and every split, the table gives both rows' test NDCG@10 and Recall@20 (mean ± std over
seeds), the gap (ablated - whole), the paired Wilcoxon test on per-user NDCG@10 (mean over seeds)
and the verdict of docs/protocol.md: the removal *lowers* NDCG@10 only with p < 0.05 and a gap
beyond both seed spreads, *raises* it under the same rule, and is a tie otherwise. A part earns its
place when its removal lowers NDCG@10 on at least ``--need`` of the splits (the hybrid issue asks
for 3 of 4 datasets: give one split per dataset).

    python benchmarks/ablations.py --model "Hybrid w/o priors" \\
        --full benchmarks/results/movielens-100k/random.json \\
        --full benchmarks/results/lastfm/random.json \\
        --ablation "w/o KG=benchmarks/results/hybrid-ablations/no-kg" \\
        --ablation "w/o text=benchmarks/results/hybrid-ablations/no-text" \\
        --name hybrid-ablations --title "..."

Each ablation folder holds suite result files laid out as ``run.py --out`` writes them
(``<folder>/<dataset>/<split>.json``) with a row of the same model name; every file must hold the
same split as the whole model's file (the script refuses otherwise, naming both).

Writes ``<out>/<name>.json``, ``.md`` and ``.png`` (relative gap per split, one bar per ablation).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import ROOT, machine, mean_std, write_results

from kgrec.errors import KgrecError
from kgrec.evaluation.significance import paired_test, per_user_means, verdict

from suite import model_commit

#: what the protocol's verdict on (ablated vs whole) says about the removed part
EFFECT = {"behind": "lowers", "ahead": "raises", "tie": "tie"}


def parse_ablation(spec: str) -> tuple[str, Path]:
    """``LABEL=FOLDER`` -> (label, folder)."""
    label, eq, folder = spec.partition("=")
    if not eq or not label.strip() or not folder.strip():
        raise KgrecError(f"'--ablation': {spec!r} must be LABEL=FOLDER")
    return label.strip(), Path(folder.strip())


def load(path: Path, what: str) -> dict:
    if not path.is_file():
        raise KgrecError(f"{what}: no result file {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise KgrecError(f"{what}: {path} is not JSON ({e.msg}, line {e.lineno})") from None


def model_runs(payload: dict, model: str, path: Path) -> list[dict]:
    runs = [r for r in payload["runs"] if r.get("name") == model]
    if not runs:
        names = ", ".join(sorted({str(r.get("name")) for r in payload["runs"]}))
        raise KgrecError(f"{path}: no runs of '{model}' (it holds {names})")
    return runs


def summary(runs: list[dict], metric: str) -> tuple[float, float]:
    return mean_std([r["test"][metric] for r in runs])


def compare(label: str, model: str, whole: tuple[Path, dict], ablated: tuple[Path, dict]) -> dict:
    """One table row: the ablated model against the whole one on one split."""
    (wpath, w), (apath, a) = whole, ablated
    if (w["dataset"], w["split"], w["split_stats"]) != (a["dataset"], a["split"], a["split_stats"]):
        raise KgrecError(f"'{label}': {apath} and {wpath} hold different splits: nothing to pair")
    wruns, aruns = model_runs(w, model, wpath), model_runs(a, model, apath)
    (wm, ws), (am, as_) = summary(wruns, "ndcg@10"), summary(aruns, "ndcg@10")
    (wr, wrs), (ar, ars) = summary(wruns, "recall@20"), summary(aruns, "recall@20")
    test = paired_test(per_user_means(aruns), per_user_means(wruns))
    return {"ablation": label, "dataset": w["dataset"], "split": w["split"], "seeds": len(aruns),
            "whole ndcg@10": f"{wm:.4f} ± {ws:.4f}", "ablated ndcg@10": f"{am:.4f} ± {as_:.4f}",
            "gap": am - wm, "relative": (am - wm) / wm if wm else float("nan"), "p": test["p"],
            "whole recall@20": f"{wr:.4f} ± {wrs:.4f}", "ablated recall@20": f"{ar:.4f} ± {ars:.4f}",
            "removal": EFFECT[verdict(am - wm, as_, ws, test["p"])],
            "whole commit": model_commit(w, model), "ablated commit": model_commit(a, model)}


def part_verdicts(rows: list[dict], need: int) -> list[dict]:
    """Per ablation: on how many splits its removal lowers / raises NDCG@10, and whether it earns its place."""
    out = []
    for label in dict.fromkeys(r["ablation"] for r in rows):
        mine = [r for r in rows if r["ablation"] == label]
        lowers = sum(r["removal"] == "lowers" for r in mine)
        out.append({"ablation": label, "splits": len(mine), "lowers": lowers,
                    "raises": sum(r["removal"] == "raises" for r in mine),
                    "earns its place": "yes" if lowers >= need else f"no ({lowers} of {need} needed)"})
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(dict.fromkeys(f"{r['dataset']}\n{r['split']}" for r in rows))
    labels = list(dict.fromkeys(r["ablation"] for r in rows))
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(3.0 + 1.6 * len(splits), 3.8))
    for k, label in enumerate(labels):
        mine = [r for r in rows if r["ablation"] == label]
        xs = [splits.index(f"{r['dataset']}\n{r['split']}") + (k - (len(labels) - 1) / 2) * width for r in mine]
        ax.bar(xs, [100 * r["relative"] for r in mine], width, color=f"C{k}", label=label,
               hatch=["" if r["removal"] == "tie" else "//" for r in mine], edgecolor="black", linewidth=0.5)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(splits)), splits)
    ax.set_ylabel("NDCG@10, ablated vs whole (%)")
    ax.set_title("Ablations (hatched: a gap beyond the seed spread\nwith p < 0.05)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="row name of the whole model (and of its ablations)")
    p.add_argument("--full", action="append", required=True, help="suite JSON holding the whole model (repeat)")
    p.add_argument("--ablation", action="append", required=True, help="LABEL=FOLDER of ablated runs (repeat)")
    p.add_argument("--need", type=int, default=3, help="splits on which a removal must lower NDCG@10")
    p.add_argument("--name", required=True, help="results file name")
    p.add_argument("--title", required=True)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="results folder")
    args = p.parse_args(argv)
    if args.need < 1:
        raise KgrecError(f"'--need' must be >= 1 (got {args.need})")
    wholes = [(Path(f), load(Path(f), "'--full'")) for f in args.full]
    rows = []
    for label, folder in map(parse_ablation, args.ablation):
        for wpath, w in wholes:
            apath = folder / w["dataset"] / f"{w['split']}.json"
            rows.append(compare(label, args.model, (wpath, w), (apath, load(apath, f"'{label}'"))))
    parts = part_verdicts(rows, args.need)
    shown = [dict(r, gap=f"{r['gap']:+.4f}", relative=f"{100 * r['relative']:+.1f}%", p=f"{r['p']:.3g}")
             for r in rows]
    cols = ["ablation", "dataset", "split", "seeds", "whole ndcg@10", "ablated ndcg@10", "gap", "relative", "p",
            "removal", "whole recall@20", "ablated recall@20", "whole commit", "ablated commit"]
    lines = [f"| {q['ablation']} | {q['lowers']} of {q['splits']} | {q['raises']} | {q['earns its place']} |"
             for q in parts]
    text = (f"Whole model: **{args.model}** at the point its validation NDCG@10 chose on each split; "
            "each ablation refits that point with one part removed or replaced, with the same seeds. "
            "Paired Wilcoxon test on per-user NDCG@10 (mean over seeds), ablated against whole; "
            "'lowers' / 'raises' need p < 0.05 and a gap beyond both seed spreads (docs/protocol.md), "
            "anything else is a tie. A part earns its place when its removal lowers NDCG@10 on at "
            f"least {args.need} splits.\n\n"
            "| ablation (a part removed or replaced) | lowers NDCG@10 on | raises it on "
            "| the whole model's part earns its place |\n"
            "|:--|:--|:--|:--|\n"
            + "\n".join(lines))
    out = Path(args.out)
    payload = {"model": args.model, "need": args.need, "rows": rows, "parts": parts, "machine": machine(),
               "command": "python benchmarks/ablations.py " + " ".join(
                   f"'{a}'" if " " in a else a for a in (argv if argv is not None else sys.argv[1:]))}
    write_results(out, args.name, payload, shown, cols, title=args.title, text=text)
    plot(rows, out / f"{args.name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
