"""``load(paths, mapping=None, format=None) -> KnowledgeGraph``: RDF files in, graph out."""

from __future__ import annotations

import os
import warnings as _warnings
from collections import Counter
from collections.abc import Sequence

from kgrec.data.extract import build_graph
from kgrec.data.graph import KnowledgeGraph
from kgrec.data.mapping import Mapping
from kgrec.data.rdf import iter_triples, rdf_files

__all__ = ["load"]


def load(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    mapping: Mapping | dict | str | os.PathLike | None = None,
    format: str | None = None,
    *,
    engine: str = "oxigraph",
    base_iri: str | None = None,
) -> KnowledgeGraph:
    """Read RDF files into a :class:`~kgrec.data.graph.KnowledgeGraph`.

    Args:
        paths: one file, a folder (every RDF file below it, sorted) or a list of them; all are
            merged into one graph. ``.gz`` / ``.bz2`` files are decompressed.
        mapping: how RDF terms map to users, items, interactions, KG edges and texts: a
            :class:`~kgrec.data.mapping.Mapping`, a ``dict`` in the same form as the TOML file,
            a profile name (``"kgrec"``, ``"schema-org"``) or a ``.toml`` / ``.yaml`` file.
            Default: the ``kgrec`` profile.
        format: RDF format of every file (``"turtle"``, ``"ntriples"``, ``"nquads"``, ``"trig"``,
            ``"xml"``, ``"json-ld"``, ``"n3"`` or an alias such as ``"ttl"``); default: guessed
            from each file's suffix.
        engine: ``"oxigraph"`` (default) or ``"rdflib"`` (slower; collapses duplicate triples).
        base_iri: base of relative IRIs in files with no ``@base``; default: each file's
            ``file://`` URI (such IRIs are counted in ``kg.warnings``).

    Returns:
        The graph. Problems met (duplicate triples, dropped literals, incomplete events...) are
        counted in ``kg.warnings`` and summarised in one ``UserWarning``.

    Raises:
        KgrecError: a path does not exist.
        RDFFormatError: a format or suffix is unknown.
        RDFParseError: a file is malformed (the message names the file and line).
        MappingError: the mapping is invalid or finds no users / items / interactions.
        EmptyGraphError: the files hold no triples.
    """
    m = Mapping.coerce(mapping)
    files = rdf_files(paths)
    counter: Counter = Counter()
    sources = [str(f) for f in files]

    def stream():
        for k, f in enumerate(files):
            n = 0
            for t in iter_triples(f, format, engine=engine, base_iri=base_iri, warnings=counter, file_index=k):
                n += 1
                yield t
            if n == 0 and len(files) > 1:
                counter[f"empty file '{f}'"] += 1

    kg = build_graph(stream(), m, warnings=counter, sources=sources)
    if kg.warnings:
        total = sum(kg.warnings.values())
        top = sorted(kg.warnings.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = "; ".join(f"{k} ({n})" for k, n in top[:5])
        more = f"; and {len(top) - 5} more kinds" if len(top) > 5 else ""
        what = sources[0] if len(sources) == 1 else f"{len(sources)} files"
        _warnings.warn(f"kgrec.load({what}): {total} problems of {len(top)} kinds: {shown}{more}. "
                       "See kg.warnings for the full counts.", UserWarning, stacklevel=2)
    return kg
