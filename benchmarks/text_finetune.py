"""The hybrid with frozen MiniLM against MiniLM's top layers fine-tuned: accuracy and cost per epoch.

On MovieLens-100K (random per-user split, seed 2020), the hybrid is fitted twice with the same
settings and seed, ``text_mode="frozen"`` (item and behaviour texts encoded once) and
``text_mode="top-k"`` (the last ``--top-k`` BERT layers trained end to end: each step re-encodes the
behaviour texts of the batch's users with gradients). Both run the same number of epochs
(``--epochs``, patience off) without the closed-form priors, so the rows compare the neural model
only. One seed on the CPU: a cost measurement with an indicative accuracy, not a significance test.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/text_finetune.py --threads 1 --epochs 6
"""

from __future__ import annotations

import argparse
import sys
import time

from common import DEFAULT_CACHE, DEFAULT_DATA_ROOT, ROOT, load_dataset, machine, write_results

import torch

from kgrec import api


def fit(kg, sp, mode: str, args) -> dict:
    # validated every epoch (a few tenths of a second on ML-100K) so that the log shows each epoch's
    # progress; patience = epochs, so every fit runs all its epochs
    params = {"epochs": args.epochs, "patience": args.epochs, "eval_every": 1, "seed": 2020,
              "ease_prior": False, "seq_prior": False, "text_mode": mode, "text_top_k": args.top_k,
              "text_segments": 1, "text_max_length": 64, "cache_dir": ""}
    rec = api.Recommender("hybrid", **params)
    t0 = time.perf_counter()
    rec.fit(kg, sp, log=lambda line: print(f"[text_finetune {mode}] {line}", file=sys.stderr, flush=True))
    seconds = time.perf_counter() - t0
    test = rec.evaluate(sp, ks=(10, 20), part="test")
    info = rec.fit_info
    return {"mode": mode, "epochs": info.get("epochs_run"), "s/epoch": info.get("seconds_per_epoch_median"),
            "fit s": seconds, "test ndcg@10": test["ndcg@10"], "test recall@20": test["recall@20"],
            "peak RSS MB": info.get("peak_rss_mb"), "params": params}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--epochs", type=int, default=6, help="epochs of each fit (default 6)")
    p.add_argument("--top-k", type=int, default=2, help="BERT layers fine-tuned in top-k mode (default 2)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--allow-dirty", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    info = machine(ignore=[args.out])
    if info["dirty"] and not args.allow_dirty:
        raise SystemExit(f"uncommitted changes in {', '.join(info['dirty_files'])}: commit first or pass --allow-dirty")
    kg = load_dataset("movielens-100k", args.data_root, args.cache)
    sp = api.split(kg, "random", seed=2020)
    rows = []
    for mode in ("frozen", "top-k"):  # results written after each fit: a run cut short keeps the first
        rows.append(fit(kg, sp, mode, args))
        write(args, info, rows)
    for r in rows:
        print({k: v for k, v in r.items() if k != "params"})
    return 0


def write(args, info: dict, rows: list[dict]) -> None:
    text = (f"`python benchmarks/text_finetune.py --threads {args.threads} --epochs {args.epochs} --top-k "
            f"{args.top_k}` at commit {info['commit']}{' (uncommitted changes)' if info['dirty'] else ''}; "
            f"{info['cpu']}, {args.threads} torch thread(s), {info['date']}. MovieLens-100K, random per-user "
            "split (seed 2020), hybrid without the closed-form priors, one seed, the same epochs for both "
            "modes (every epoch runs; the best validation epoch is kept), 1 text segment of 64 tokens per item. "
            "'s/epoch' is the median epoch.")
    columns = [(c, c) for c in ("mode", "epochs", "s/epoch", "fit s", "test ndcg@10", "test recall@20",
                                "peak RSS MB")]
    if len(rows) < 2:
        text += " **Partial: the top-k fit has not finished.**"
    write_results(args.out, "text_finetune", {"machine": info, "args": vars(args), "rows": rows}, rows, columns,
                  title="Hybrid text encoder: frozen vs top layers fine-tuned (CPU)", text=text)


if __name__ == "__main__":
    raise SystemExit(main())
