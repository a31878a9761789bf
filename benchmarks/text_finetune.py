"""The hybrid with frozen MiniLM against MiniLM's top layers fine-tuned: accuracy and cost per epoch.

On MovieLens-100K (random per-user split, seed 2020), the hybrid is fitted with the same settings and
seed three times:

* ``text_mode="frozen"``: item and behaviour texts encoded once;
* ``text_mode="top-k"``: the last ``--top-k`` BERT layers trained end to end. Each step re-encodes the
  behaviour texts of the batch's users with gradients, from the frozen layers' output computed once
  per fit (``text_prefix_cache``, the default);
* ``text_mode="top-k"`` with ``text_prefix_cache=False``: the same, each step re-encoding through every
  layer (the code before the prefix cache), for ``--baseline-epochs`` epochs: the cost the cache saves,
  measured in the same run.

The fits run without the closed-form priors, so the rows compare the neural model only, with patience
off. One seed on the CPU: a cost measurement with an indicative accuracy after few epochs, not a
significance test (the frozen hybrid reaches its best epoch after ~10-20 epochs).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/text_finetune.py --threads 1 --epochs 2 --baseline-epochs 1
"""

from __future__ import annotations

import argparse
import sys
import time

from common import DEFAULT_CACHE, DEFAULT_DATA_ROOT, ROOT, load_dataset, machine, write_results

import torch

from kgrec import api


def fit(kg, sp, mode: str, cache: bool, epochs: int, args) -> dict:
    # validated every epoch so that the log shows each epoch's progress; patience = epochs, so every
    # fit runs all its epochs
    params = {"epochs": epochs, "patience": epochs, "eval_every": 1, "seed": 2020,
              "ease_prior": False, "seq_prior": False, "text_mode": mode, "text_top_k": args.top_k,
              "text_prefix_cache": cache, "text_segments": 1, "text_max_length": 64, "cache_dir": ""}
    rec = api.Recommender("hybrid", **params)
    label = mode if mode == "frozen" or cache else f"{mode}, no prefix cache"
    t0 = time.perf_counter()
    rec.fit(kg, sp, log=lambda line: print(f"[text_finetune {label}] {line}", file=sys.stderr, flush=True))
    seconds = time.perf_counter() - t0
    test = rec.evaluate(sp, ks=(10, 20), part="test")
    info = rec.fit_info
    return {"mode": label, "epochs": info.get("epochs_run"), "s/epoch": info.get("seconds_per_epoch_median"),
            "fit s": seconds, "test ndcg@10": test["ndcg@10"], "test recall@20": test["recall@20"],
            "peak RSS MB": info.get("peak_rss_mb"), "params": params}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--epochs", type=int, default=2, help="epochs of the frozen and top-k fits (default 2)")
    p.add_argument("--baseline-epochs", type=int, default=1,
                   help="epochs of the top-k fit without the prefix cache (default 1; 0 skips it)")
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
    runs = [("frozen", True, args.epochs), ("top-k", True, args.epochs)]
    runs += [("top-k", False, args.baseline_epochs)] if args.baseline_epochs > 0 else []
    for mode, cache, epochs in runs:  # results written after each fit: a run cut short keeps the first
        rows.append(fit(kg, sp, mode, cache, epochs, args))
        write(args, info, rows, len(runs))
    for r in rows:
        print({k: v for k, v in r.items() if k != "params"})
    return 0


def write(args, info: dict, rows: list[dict], planned: int) -> None:
    text = (f"`python benchmarks/text_finetune.py --threads {args.threads} --epochs {args.epochs} "
            f"--baseline-epochs {args.baseline_epochs} --top-k {args.top_k}` at commit {info['commit']}"
            f"{' (uncommitted changes)' if info['dirty'] else ''}; {info['cpu']}, {args.threads} torch thread(s), "
            f"{info['date']}. MovieLens-100K, random per-user split (seed 2020), hybrid without the closed-form "
            "priors, one seed, every epoch runs (the best validation epoch is kept), 1 text segment of 64 tokens "
            "per item. 'top-k' fine-tunes the last BERT layers from the frozen layers' output computed once per "
            "fit; 'no prefix cache' re-encodes through every layer at each step (the baseline, same run). "
            "'s/epoch' is the median epoch, validation included. Test figures after so few epochs are "
            "indicative only. One process runs the fits in this order, so 'peak RSS MB' is the process's "
            "peak so far: a row's own only where it exceeds the rows above.")
    columns = [(c, c) for c in ("mode", "epochs", "s/epoch", "fit s", "test ndcg@10", "test recall@20",
                                "peak RSS MB")]
    if len(rows) < planned:
        text += f" **Partial: {planned - len(rows)} of the {planned} fits had not finished.**"
    write_results(args.out, "text_finetune", {"machine": info, "args": vars(args), "rows": rows}, rows, columns,
                  title="Hybrid text encoder: frozen vs top layers fine-tuned (CPU)", text=text)


if __name__ == "__main__":
    raise SystemExit(main())
