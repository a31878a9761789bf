"""Training-step cost of the KG peers: kgrec's sparse products against the per-edge formulas.

KGIN and KGAT propagate over the whole collaborative KG at every training step, and KGAT and CKE
project a batch of triples by TransR's relation matrices. Written edge by edge (gather each edge's
source vector, scale it, scatter-add it to its target; gather ``W_r`` per triple for a batched
product) every step allocates ``[M, d]`` (and ``[B, d, k]``) tensors each way, which dominated an
epoch when profiled. kgrec's modules use sparse products over a fixed pattern
(:class:`kgrec.nn.sparse.SparsePattern`) and one product per relation
(:func:`kgrec.nn.kgraph.project_by_relation`). This script times both formulations in the same run,
on MovieLens-100K's real collaborative KG (training pairs of the RecBole peer split), with the
same parameters, and checks that they give the same outputs and gradients.

Per part, forward + backward milliseconds (median and min of ``--runs`` after a warm-up, the two
formulations interleaved run by run so that a burst of load from other processes hits both); the
ratio uses the medians. Tests (``tests/test_kg_peers.py``) import the edge formulas from here.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/kg_peer_speed.py --data-root ../shared/data --cache ../bench-cache
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from common import DEFAULT_CACHE, DEFAULT_DATA_ROOT, add_output_arguments, load_dataset, machine, write_results

import torch
import torch.nn.functional as F
from torch_geometric.utils import scatter

import kgrec
from kgrec.errors import KgrecError
from kgrec.nn.kgraph import interaction_part, keep_mask, kg_part, project_by_relation

from suite import make_split


def kgin_edge_formula(m, kg_edge_index, kg_edge_type, ui_user, ui_item):
    """KGIN's propagation edge by edge (gather, scale by the relation, scatter-mean), with the same
    dropout draws as :meth:`kgrec.nn.kgin.KGIN.forward` (KG edges first, then user-item edges).
    """
    ei, et, uu, ui = kg_edge_index, kg_edge_type, ui_user, ui_item
    if m.training and m.node_dropout > 0:
        keep = keep_mask(et.numel(), m.node_dropout, et.device)
        ei, et = ei[:, keep], et[keep]
        keep = keep_mask(uu.numel(), m.node_dropout, uu.device)
        uu, ui = uu[keep], ui[keep]
    head, tail = ei
    rel, intents = m.relation_emb.weight, m.intents()
    e, u = m.entity_emb.weight, m.user_emb.weight
    e_sum, u_sum = e, u
    for _ in range(m.num_layers):
        e_next = scatter(e[tail] * rel[et], head, dim=0, dim_size=m.num_entities, reduce="mean")
        agg = scatter(e[ui], uu, dim=0, dim_size=m.num_users, reduce="mean")
        u_next = (torch.softmax(u @ m.intent_query.weight.t(), -1) @ intents) * agg + agg
        e, u = F.normalize(m.dropout(e_next), dim=1), F.normalize(m.dropout(u_next), dim=1)
        e_sum, u_sum = e_sum + e, u_sum + u
    return u_sum, e_sum[: m.num_items]


def kgat_edge_formula(m, edge_index, attention):
    """KGAT's propagation edge by edge: each head sums its tails' vectors scaled by the attention."""
    head, tail = edge_index
    x = m.node_emb.weight
    outs = [x]
    for w1, w2 in zip(m.w1, m.w2):
        side = scatter(x[tail] * attention[:, None], head, dim=0, dim_size=x.size(0), reduce="sum")
        x = m.dropout(F.leaky_relu(w1(x + side)) + F.leaky_relu(w2(x * side)))
        outs.append(F.normalize(x, dim=1))
    z = torch.cat(outs, 1)
    E = m.num_entities
    return z[E:E + m.num_users], z[: m.num_items]


def gathered_projection(x, rel, weight):
    """TransR's ``x[:, b] @ weight[rel[b]]`` by gathering ``[B, d, k]`` matrices (``[V, B, d]`` -> ``[V, B, k]``)."""
    return torch.einsum("vbd,bdk->vbk", x, weight[rel])


def random_projection(outputs) -> torch.Tensor:
    """``sum_o <o, R_o>`` with each ``R_o`` a fixed standard-normal tensor of ``o``'s shape (seed 0)."""
    g = torch.Generator().manual_seed(0)
    return sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outputs)


def _step(fn, params, seed: int):
    """Forward + backward of ``fn``; returns (seconds, outputs, gradients). The loss weighs every output
    entry by a fixed random number: a sum of squares would be constant over KGAT's L2-normalised layer
    outputs and leave its layer weights without gradient.
    """
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    out = fn()
    loss = random_projection(out)
    grads = torch.autograd.grad(loss, params)
    return time.perf_counter() - t0, [o.detach() for o in out], grads


def compare(name: str, sparse, edge, params, runs: int) -> dict:
    """Time ``sparse`` and ``edge`` interleaved; check they agree."""
    times = {"sparse": [], "edge": []}
    worst = 0.0
    for r in range(runs + 1):
        (ts, out_s, g_s), (te, out_e, g_e) = _step(sparse, params, r), _step(edge, params, r)
        worst = max([worst] + [float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
                               for a, b in zip(out_s + list(g_s), out_e + list(g_e))])
        if r:  # the first run warms up
            times["sparse"].append(ts)
            times["edge"].append(te)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {"part": name, "edge_ms": med["edge"], "edge_ms_min": min(times["edge"]) * 1e3,
            "sparse_ms": med["sparse"], "sparse_ms_min": min(times["sparse"]) * 1e3,
            "speedup": med["edge"] / med["sparse"], "max_rel_diff": worst}


def measure(kg, sp, runs: int, batch: int) -> list[dict]:
    rows = []
    gen = torch.Generator().manual_seed(0)
    # KGIN: training mode (node and message dropout on), RecBole's default sizes
    est = kgrec.Recommender("kgin", seed=2020).estimator
    est.prepare(kg, sp)
    est.build()
    m = est.module.train()
    ei, et, meta = est.context["ckg_edge_index"], est.context["ckg_edge_type"], est.meta
    edges = (*kg_part(ei, et, meta["num_relations"]),
             *interaction_part(ei, et, meta["num_relations"], meta["num_entities"]))
    graph = est.graph()
    params = [m.entity_emb.weight, m.user_emb.weight, m.relation_emb.weight, m.intent_att, m.intent_query.weight]
    rows.append(compare("KGIN propagation (3 layers, train mode)", lambda: m(graph),
                        lambda: kgin_edge_formula(m, *edges), params, runs))
    # KGAT: eval mode (message dropout off, so both formulations draw nothing), the attention fixed
    est = kgrec.Recommender("kgat", seed=2020).estimator
    est.prepare(kg, sp)
    est.build()
    m = est.module.eval()
    att = est.attention()
    op = est.propagation()
    params = [m.node_emb.weight] + [p for lin in list(m.w1) + list(m.w2) for p in lin.parameters()]
    rows.append(compare("KGAT propagation (3 layers)", lambda: m(op),
                        lambda: kgat_edge_formula(m, est.context["ckg_edge_index"], att), params, runs))
    # TransR projection of a batch of CKG triples (head, tail, corrupted tail)
    idx = torch.randint(0, et.numel(), (batch,), generator=gen)
    nodes = torch.stack([ei[0, idx], ei[1, idx], torch.randint(0, meta["num_nodes"], (batch,), generator=gen)])
    rel = et[idx]
    x = m.node_emb(nodes).detach().requires_grad_()
    rows.append(compare(f"TransR projection ({batch} triples x 3 vectors, {meta['num_edge_types']} types)",
                        lambda: (project_by_relation(x, rel, m.proj),),
                        lambda: (gathered_projection(x, rel, m.proj),), [x, m.proj], runs))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=DEFAULT_CACHE)
    p.add_argument("--runs", type=int, default=7, help="timed runs per formulation (after one warm-up)")
    p.add_argument("--batch", type=int, default=2048, help="triples in the TransR batch (KGAT's kg_batch_size)")
    add_output_arguments(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    mach = machine()
    if mach["dirty"] and not args.allow_dirty:
        raise SystemExit(f"kg_peer_speed: the tree at {mach['commit']} has uncommitted changes "
                         f"({mach['dirty_files']}); commit them or pass --allow-dirty")
    try:
        kg = load_dataset("movielens-100k", args.data_root, args.cache)
        sp = make_split(kg, "movielens-100k", "random", args.data_root)
    except KgrecError as e:
        p.error(str(e))
    t0 = time.perf_counter()
    rows = measure(kg, sp, args.runs, args.batch)
    command = "python benchmarks/kg_peer_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = (f"MovieLens-100K ({kg}), collaborative KG of the RecBole peer split's training pairs. "
            f"Command: `{command}`. Machine: {mach['cpu']}, {args.threads} torch thread(s), commit "
            f"{mach['commit']}{' (dirty tree)' if mach['dirty'] else ''}; {mach['date']}; total "
            f"{time.perf_counter() - t0:.0f} s.\n\n"
            "Forward + backward milliseconds of one call (median and min of the timed runs, the two "
            "formulations interleaved); `edge`: gather / scale / scatter per edge and gathered TransR "
            "matrices, `sparse`: kgrec's `SparsePattern` products and `project_by_relation`; speed-up = "
            "edge median / sparse median; `max rel diff`: largest difference of any output or gradient "
            "between the two over that tensor's largest absolute value (same parameters, same dropout draws).")
    cols = {"part": "part", "edge_ms": "edge ms", "edge_ms_min": "edge ms min", "sparse_ms": "sparse ms",
            "sparse_ms_min": "sparse ms min", "speedup": "speed-up", "max_rel_diff": "max rel diff"}
    _, md = write_results(args.out_dir, "kg_peer_speed", {"machine": mach, "args": vars(args), "command": command,
                                                         "rows": rows}, rows, cols,
                          title="KG peers: sparse products vs per-edge formulas", text=text, floatfmt=".3g")
    print(md.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
