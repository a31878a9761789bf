"""``kgrec validate``: do RDF files parse and map; the mapping report and the warnings."""

from __future__ import annotations

from kgrec.cli.common import Formatter, data_args, load_graph, store_args
from kgrec.errors import KgrecError
from kgrec.reports.tables import markdown_table


def run(args) -> int:
    """Load, print the counts, the mapping report (kgrec.data.validation) and the warnings.

    Exit status 2 when the files do not load, or with ``--strict`` when a mapping term matches
    nothing in the graph (a blocking one, see kgrec.data.validation); data warnings never fail.
    """
    try:
        kg = load_graph(args.paths, args.mapping, args.format, args)
    except KgrecError as e:
        print(f"invalid: {e}")
        return 2
    print(f"ok: {', '.join(kg.sources)}: {kg.num_users} users, {kg.num_items} items, "
          f"{kg.num_entities - kg.num_items} attribute entities, {kg.num_relations} relations, "
          f"{kg.triples.shape[0]} triples, {len(kg.interactions)} interactions")
    report = getattr(kg, "mapping_report", None)
    if report is not None:
        print(report.format())
    if kg.warnings:
        total = sum(kg.warnings.values())
        print(f"{total} warning(s) of {len(kg.warnings)} kind(s):")
        w = [{"warning": k, "count": n} for k, n in sorted(kg.warnings.items(), key=lambda kv: (-kv[1], kv[0]))]
        print(markdown_table(w, ["warning", "count"]))
    else:
        print("no warnings")
    if args.strict and report is not None and report.blocking:
        names = ", ".join(u.short for u in report.blocking)
        print(f"invalid: --strict and {len(report.blocking)} mapping term(s) match nothing in the graph: {names}")
        return 2
    return 0


def add_parser(sub, models: str) -> None:
    """The ``kgrec validate`` sub-command's options."""
    p = sub.add_parser(
        "validate", formatter_class=Formatter, help="check that RDF files parse and map; list warnings",
        description="Parse and map RDF file(s); print what was found and the warnings with their counts. "
                    "Per mapping rule, what it produced; every mapping term (class, predicate) that matches "
                    "nothing in the graph, with the closest terms the graph uses. Exit status 0 when the "
                    "files load, 2 with the error (file and line) when they do not.",
        epilog="example:\n  kgrec validate kg_data/toy/toy.ttl --strict")
    p.add_argument("paths", metavar="PATH", nargs="*", help="RDF file(s) or folder(s)")
    data_args(p)
    store_args(p)
    p.add_argument("--strict", action="store_true", help="also exit 2 when a mapping term matches nothing in the graph "
                   "(data warnings never fail)")
    p.set_defaults(func=run)
