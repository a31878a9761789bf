"""Full-ranking throughput as a fraction of the machine's matrix-multiply rate, and faiss top-K.

Full ranking of ``B`` users over ``I`` items is one ``[B, d] @ [d, I]`` product (``2 B d I``
FLOPs) followed by seen-item masking and a top-k over ``[B, I]`` scores. For each catalogue:

1. the machine's fp32 ``torch.mm`` rate for exactly that shape, with 1 thread and with all threads
   (best of ``--repeats``);
2. the ranking stages on the same shape, timed separately (median of ``--repeats`` passes over
   the users): the product, ``kgrec.evaluation.rank.mask_seen`` (the evaluator's masking),
   ``kgrec.evaluation.rank.topk`` (deterministic ties), and the whole evaluator path (product + mask +
   top-k), reported as users/s and as the FLOP rate it reaches over the matmul rate (``fraction``);
3. ``Recommender.recommend`` end to end (users/s, IRIs out), and for the real model
   ``Recommender.evaluate`` (the validation/test path, metrics included);
4. faiss (:mod:`kgrec.ann`): exact ``flat`` and approximate ``ivf`` / ``hnsw`` indexes, build
   seconds, users/s of masked top-10 and recall@10 against exact full ranking.

Catalogues: MovieLens-100K with a BPR-MF model fitted on the cached graph (``--cache``), and
synthetic catalogues of ``--sizes`` items with random Gaussian vectors (``d = --dim``) and ~20 seen
items per user (no structure: the worst case for approximate indexes). ``B`` is 1024 users, fewer
where ``B x I`` would exceed ``--max-cells`` scores.

Usage::

    OMP_NUM_THREADS=1 flock /work/cpu.lock python benchmarks/ranking_rate.py   # writes benchmarks/results/
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

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
from kgrec.ann import ItemIndex, recall_at_k
from kgrec.data.vocab import Vocab
from kgrec.evaluation.rank import mask_seen, seen_csr, topk


def _timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def matmul_gflops(B: int, d: int, n_items: int, threads: int, repeats: int, out: bool = False) -> float:
    """Best fp32 ``[B, d] @ [d, I]`` rate (GFLOP/s) with ``threads`` torch threads; ``out``: into a
    preallocated result (no allocation: over glibc's 32 MiB mmap threshold each new result is fresh
    pages, first-touch page faults included in the plain rate).
    """
    torch.set_num_threads(threads)
    a, b = torch.randn(B, d), torch.randn(n_items, d)
    buf = torch.empty(B, n_items)
    t = min(_timed((lambda: torch.mm(a, b.t(), out=buf)) if out else (lambda: torch.mm(a, b.t())), repeats))
    return 2 * B * d * n_items / t / 1e9


def stage_rates(u: torch.Tensor, items: torch.Tensor, seen: tuple[torch.Tensor, torch.Tensor], B: int, k: int,
                repeats: int) -> dict:
    """Seconds per user of each ranking stage over all rows of ``u`` in blocks of ``B``."""
    indptr, indices = seen
    n = u.size(0)
    blocks = [(torch.arange(s, min(s + B, n)), u[s:s + B]) for s in range(0, n, B)]
    scores = [q @ items.t() for _, q in blocks]

    def mm():
        for _, q in blocks:
            q @ items.t()

    def mask():
        for (ids, _), s in zip(blocks, scores):
            mask_seen(s, ids, indptr, indices)

    def rank():
        for s in scores:
            topk(s, k)

    def raw_topk():
        for s in scores:
            torch.topk(s, k, dim=1)

    def pipeline():
        for ids, q in blocks:
            topk(mask_seen(q @ items.t(), ids, indptr, indices, inplace=True), k)

    out = {name: statistics.median(_timed(fn, repeats)) / n
           for name, fn in (("mm", mm), ("mask", mask), ("topk", rank), ("torch_topk", raw_topk),
                            ("pipeline", pipeline))}
    scores.clear()  # free the blocks' scores: the stage closures above have run
    return out


def vector_recommender(user_vecs: torch.Tensor, item_vecs: torch.Tensor,
                       seen: tuple[torch.Tensor, torch.Tensor]) -> kgrec.Recommender:
    """A ``bprmf`` Recommender holding given vectors (a catalogue too large to fit in this benchmark)."""
    rec = kgrec.Recommender("bprmf", dim=user_vecs.size(1))
    est = rec.estimator
    est.meta = {"num_users": user_vecs.size(0), "num_items": item_vecs.size(0)}
    est.context = {"hist_indptr": seen[0], "hist_indices": seen[1]}
    est.build()
    with torch.no_grad():
        est.module.user_emb.weight.copy_(user_vecs)
        est.module.item_emb.weight.copy_(item_vecs)
    rec.users = Vocab([f"u{i:08d}" for i in range(user_vecs.size(0))], name="user")
    rec.items = Vocab([f"i{i:08d}" for i in range(item_vecs.size(0))], name="item")
    return rec


def faiss_rows(u: torch.Tensor, items: torch.Tensor, seen, k: int, threads: int, hnsw_max: int) -> list[dict]:
    import faiss

    faiss.omp_set_num_threads(threads)
    users = torch.arange(u.size(0))
    exact = None
    rows = []
    n_items = items.size(0)
    configs = [("flat", {}), ("ivf", {"nprobe": 8}), ("ivf", {"nprobe": 32})]
    if n_items <= hnsw_max:
        configs.append(("hnsw", {"hnsw_m": 32, "ef_search": 128}))
    for kind, opts in configs:
        t0 = time.perf_counter()
        index = ItemIndex(items, kind, **opts)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, got = index.search(u, k, seen=seen, users=users)
        secs = time.perf_counter() - t0
        if exact is None:
            exact = got
        rows.append({"kind": kind, **{k_: v for k_, v in index.options.items() if k_ in opts or
                                       (kind == "ivf" and k_ == "nlist")},
                     "build_s": build, "users_per_s": u.size(0) / secs, "recall@10": recall_at_k(got, exact)})
    return rows


def measure(name: str, u: torch.Tensor, items: torch.Tensor, seen, args, rec=None, extra: dict | None = None):
    n_users, d = u.shape
    n_items = items.size(0)
    B = max(1, min(1024, args.max_cells // n_items, n_users))
    n_rank = min(n_users, B * args.blocks)
    u_r = u[:n_rank].contiguous()
    row = {"catalogue": name, "items": n_items, "dim": d, "batch_users": B, "users_ranked": n_rank}
    row["matmul_gflops_1t"] = matmul_gflops(B, d, n_items, 1, args.repeats)
    row["matmul_gflops_1t_prealloc"] = matmul_gflops(B, d, n_items, 1, args.repeats, out=True)
    row["matmul_gflops_all"] = matmul_gflops(B, d, n_items, torch.get_num_threads() or 1, args.repeats) \
        if args.all_threads == 1 else matmul_gflops(B, d, n_items, args.all_threads, args.repeats)
    torch.set_num_threads(1)
    st = stage_rates(u_r, items, seen, B, args.k, args.repeats)
    flops_per_user = 2 * d * n_items
    row.update({f"{s}_us_per_user": v * 1e6 for s, v in st.items()})
    row["pipeline_users_per_s"] = 1 / st["pipeline"]
    row["pipeline_gflops"] = flops_per_user / st["pipeline"] / 1e9
    row["fraction_of_matmul"] = row["pipeline_gflops"] / row["matmul_gflops_1t"]
    row["fraction_of_prealloc_matmul"] = row["pipeline_gflops"] / row["matmul_gflops_1t_prealloc"]
    row["share_mm"] = st["mm"] / (st["mm"] + st["mask"] + st["topk"])
    row["share_mask"] = st["mask"] / (st["mm"] + st["mask"] + st["topk"])
    row["share_topk"] = st["topk"] / (st["mm"] + st["mask"] + st["topk"])
    if rec is None:
        rec = vector_recommender(u, items, seen)
    labels = rec.users.labels[:n_rank]
    t = statistics.median(_timed(lambda: rec.recommend(labels, k=args.k, batch_size=B), args.repeats))
    row["recommend_users_per_s"] = n_rank / t
    row["recommend_fraction_of_matmul"] = flops_per_user * n_rank / t / 1e9 / row["matmul_gflops_1t"]
    row.update(extra or {})
    row["faiss"] = faiss_rows(u_r, items, seen, args.k, 1, args.hnsw_max)
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return row


def random_catalogue(n_users: int, n_items: int, d: int, seen_per_user: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n_users, d, generator=g) / d ** 0.5
    items = torch.randn(n_items, d, generator=g) / d ** 0.5
    su = torch.arange(n_users).repeat_interleave(seen_per_user)
    si = torch.randint(0, n_items, (su.numel(),), generator=g)
    return u, items, seen_csr(su, si, n_users, n_items)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="synthetic catalogue sizes")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--blocks", type=int, default=3, help="user blocks ranked per timing (default: 3)")
    ap.add_argument("--max-cells", type=int, default=64_000_000, help="most scores in one block")
    ap.add_argument("--all-threads", type=int, default=0, help="threads for the 'all' matmul (0: all cores)")
    ap.add_argument("--hnsw-max", type=int, default=100_000, help="largest catalogue given an HNSW index")
    ap.add_argument("--no-real", action="store_true", help="skip MovieLens-100K")
    ap.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="ranking_rate", help="output file stem")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output folder")
    args = ap.parse_args(argv)
    import os

    if args.all_threads == 0:
        args.all_threads = os.cpu_count() or 1
    torch.set_num_threads(1)
    rows = []
    if not args.no_real:
        kg = load_dataset("movielens-100k", args.data_root, args.cache)
        sp = kgrec.split(kg, "random", seed=2020)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = kgrec.Recommender("bprmf", epochs=20, dim=args.dim, lr=5e-3, seed=args.seed).fit(kg, sp)
        ev = rec.evaluate(sp)
        u, items = (t.detach().contiguous() for t in rec.estimator.vectors())
        ctx = rec.estimator.context
        rows.append(measure("movielens-100k (bprmf)", u, items, (ctx["hist_indptr"], ctx["hist_indices"]), args,
                            rec=rec, extra={"evaluate_users_per_s": ev["users_per_second"],
                                            "test_ndcg@10": ev["ndcg@10"]}))
    for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
        n_users = min(4096, max(1024, 3 * max(1, min(1024, args.max_cells // n))))
        u, items, seen = random_catalogue(n_users, n, args.dim, 20, args.seed)
        rows.append(measure(f"random {n:,}", u, items, seen, args))
    mach = machine()
    table = [{k: v for k, v in r.items() if k != "faiss"} for r in rows]
    cols = {"catalogue": "catalogue", "batch_users": "B", "matmul_gflops_1t": "mm GFLOP/s 1t",
            "matmul_gflops_1t_prealloc": "mm GFLOP/s 1t, out=",
            "matmul_gflops_all": f"mm GFLOP/s {args.all_threads}t", "pipeline_users_per_s": "rank users/s",
            "fraction_of_matmul": "fraction", "fraction_of_prealloc_matmul": "fraction (out=)",
            "share_mm": "mm share", "share_mask": "mask share",
            "share_topk": "topk share", "recommend_users_per_s": "recommend() users/s",
            "recommend_fraction_of_matmul": "recommend() fraction"}
    faiss_table = [{"catalogue": r["catalogue"], **f} for r in rows for f in r["faiss"]]
    fcols = {"catalogue": "catalogue", "kind": "index", "nlist": "nlist", "nprobe": "nprobe",
             "ef_search": "ef_search", "build_s": "build s", "users_per_s": "users/s", "recall@10": "recall@10"}
    from kgrec.reports.tables import markdown_table

    text = ("`fraction` = FLOP rate of the evaluator path (product + `mask_seen` + "
            "`kgrec.evaluation.rank.topk`, top-%d, 1 thread) over the 1-thread `torch.mm` rate for the same "
            "[B, %d] x [%d, I] shape (a new result each call, as ranking does; `out=`: into a preallocated "
            "result, the pure compute rate); the shares split "
            "the three stages' summed time. `recommend()` adds IRIs in and out. Synthetic catalogues: random "
            "Gaussian vectors, 20 seen items per user.\n\nMachine: %s (%s cores, shared), commit %s, %s.\n\n"
            "## faiss (1 thread, masked top-%d, recall@10 against exact full ranking)\n\n%s\n\n## Full ranking"
            % (args.k, args.dim, args.dim, mach["cpu"], mach["cpu_count"], mach["commit"], mach["date"], args.k,
               markdown_table(faiss_table, fcols, floatfmt=".3f")))
    _, md = write_results(args.out, args.name, {"machine": mach, "args": vars(args), "rows": rows}, table, cols,
                          title="Full-ranking throughput vs matmul rate", text=text, floatfmt=".3f")
    print(open(md).read())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
