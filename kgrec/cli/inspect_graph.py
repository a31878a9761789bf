"""``kgrec inspect``: statistics of an RDF dataset after mapping."""

from __future__ import annotations

import json
from typing import Any

from kgrec.cli.common import Formatter, data_args, load_graph, store_args, utc_date
from kgrec.reports.tables import markdown_table


def _summary(values) -> dict[str, float]:
    """Count, min, median, p90, max and mean of integer counts (degrees)."""
    import numpy as np

    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {"count": 0, "min": None, "median": None, "p90": None, "max": None, "mean": None}
    return {"count": int(a.size), "min": int(a.min()), "median": float(np.median(a)),
            "p90": float(np.percentile(a, 90)), "max": int(a.max()), "mean": float(a.mean())}


def graph_report(kg) -> dict[str, Any]:
    """``kg.stats()`` plus the structure seen through ``kg.to_networkx()``.

    Adds degree summaries per node kind (all edges, interactions included), item popularity
    (interactions per item) and the weakly connected components.
    """
    import networkx as nx
    import torch

    st = kg.stats()
    g = kg.to_networkx(interactions=True)
    by_kind: dict[str, list[int]] = {"user": [], "item": [], "entity": []}
    for node, deg in g.degree():
        by_kind[g.nodes[node]["kind"]].append(deg)
    popularity = torch.bincount(kg.interactions.item, minlength=kg.num_items).tolist() if len(kg.interactions) \
        else [0] * kg.num_items
    sizes = sorted((len(c) for c in nx.weakly_connected_components(g)), reverse=True)
    return {
        **st,
        "degrees": {"users": _summary(by_kind["user"]), "items": _summary(by_kind["item"]),
                    "entities": _summary(by_kind["entity"]), "item_interactions": _summary(popularity)},
        "components": {"count": len(sizes), "largest": sizes[0] if sizes else 0,
                       "largest_share": sizes[0] / g.number_of_nodes() if sizes else 0.0},
    }


def run(args) -> int:
    kg = load_graph(args.paths, args.mapping, args.format, args)
    rep = graph_report(kg)
    rep["sources"] = list(kg.sources)
    if args.json:
        from kgrec.reports.tables import to_jsonable

        print(json.dumps(to_jsonable(rep), indent=2, ensure_ascii=False))
        return 0
    print(f"sources: {', '.join(kg.sources)}")
    counts = [{"what": k, "count": rep[k]} for k in
              ("users", "items", "attribute_entities", "entities", "relations", "triples", "interactions",
               "users_without_interactions", "items_without_interactions", "items_with_text",
               "interactions_with_time")]
    counts.append({"what": "density", "count": rep["density"]})
    print(markdown_table(counts, ["what", "count"], floatfmt=".6f"))
    if rep["time_range"]:
        lo, hi = rep["time_range"]
        print(f"\ntime range: {utc_date(lo)} .. {utc_date(hi)}")
    rels = [{"relation": r, "triples": n} for r, n in sorted(rep["triples_per_relation"].items(),
                                                             key=lambda kv: (-kv[1], kv[0]))]
    print("\nrelations:")
    print(markdown_table(rels, ["relation", "triples"]) if rels else "(none)")
    print("\ndegrees (all edges; item_interactions: interactions only):")
    deg = [{"nodes": k, **v} for k, v in rep["degrees"].items()]
    print(markdown_table(deg, ["nodes", "count", "min", "median", "p90", "max", "mean"], floatfmt=".2f"))
    c = rep["components"]
    print(f"\nweakly connected components: {c['count']} (largest: {c['largest']} nodes, "
          f"{100 * c['largest_share']:.1f}%)")
    print("\nwarnings:")
    if rep["warnings"]:
        w = [{"warning": k, "count": n} for k, n in sorted(rep["warnings"].items(), key=lambda kv: (-kv[1], kv[0]))]
        print(markdown_table(w, ["warning", "count"]))
    else:
        print("(none)")
    return 0


def add_parser(sub, models: str) -> None:
    """The ``kgrec inspect`` sub-command's options."""
    p = sub.add_parser(
        "inspect", formatter_class=Formatter, help="print statistics of an RDF dataset after mapping",
        description="Load RDF file(s) through a mapping and print counts, density, triples per relation, "
                    "degree summaries (min/median/p90/max) of users, items and attribute entities, weakly "
                    "connected components, users/items without interactions and the loader's warnings.",
        epilog="example:\n  kgrec inspect kg_data/toy/toy.ttl\n  kgrec inspect data.ttl --mapping schema-org --json")
    p.add_argument("paths", metavar="PATH", nargs="*", help="RDF file(s) or folder(s), merged into one graph")
    data_args(p)
    store_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=run)
