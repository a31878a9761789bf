"""The Python API: ``load``, ``split``, ``Recommender``. The only module (with the CLI) reading configs.

A package of two parts: :mod:`kgrec.api.recommender` (the :class:`Recommender`) and
:mod:`kgrec.api.storage` (its checkpoints on disk); every public name is imported here, so
``kgrec.api.X`` reads as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from kgrec.api.recommender import Recommender
from kgrec.data.graph import KnowledgeGraph
from kgrec.data.loader import load as _load
from kgrec.data.splits import Split
from kgrec.data.splits import split as _split
from kgrec.errors import KgrecError

__all__ = ["load", "split", "Recommender", "select_half_life"]


def load(paths, mapping=None, format: str | None = None, *, allow_network: bool = False,
         max_file_bytes: int = 2 * 1024**3, max_literal_chars: int = 1024**2,
         max_line_bytes: int = 8 * 1024**2, max_xml_depth: int = 256,
         max_expansion_ratio: int = 200, workers: int | None = None) -> KnowledgeGraph:
    """Read RDF file(s) into a :class:`KnowledgeGraph` through a mapping.

    Args:
        paths: one path or a list of paths (Turtle, N-Triples, N-Quads, TriG, RDF/XML, JSON-LD, N3,
            optionally ``.gz``/``.bz2``), merged into one graph.
        mapping: a :class:`~kgrec.data.mapping.Mapping`, a path to a TOML/YAML mapping, a profile
            name (``"kgrec"``, ``"schema-org"``), or ``None`` for the kgrec vocabulary.
        format: the RDF format for every file, instead of guessing from the suffix.
        allow_network: download URLs given in ``paths`` (default ``False``: refused). Parsing never
            fetches anything (remote JSON-LD contexts, ``owl:imports``, XML entities) either way.
        max_file_bytes: the most bytes one file may hold once decompressed (default 2 GiB).
        max_literal_chars: the most characters of one literal (default 1 Mi).
        max_line_bytes: the most bytes of one line of a text RDF file, and of one triple-quoted
            string (default 8 MiB), checked while reading, before a literal is built.
        max_xml_depth: the deepest element nesting of an RDF/XML file (default 256).
        max_expansion_ratio: the most decompressed bytes per compressed byte of a compressed
            file, checked while decompressing (default 200).
        workers: processes that parse a large uncompressed N-Triples / N-Quads file, each a piece
            of it (default: 2 for a file of 32 MiB or more when a CPU is idle); the graph is the same for
            any number.

    See ``docs/errors.md`` for what each kind of bad input raises.
    """
    return _load(paths, mapping=mapping, format=format, allow_network=allow_network,
                 max_file_bytes=max_file_bytes, max_literal_chars=max_literal_chars,
                 max_line_bytes=max_line_bytes, max_xml_depth=max_xml_depth,
                 max_expansion_ratio=max_expansion_ratio, workers=workers)


def split(kg: KnowledgeGraph, strategy: str = "random", ratios=(0.8, 0.1, 0.1), seed: int = 2020) -> Split:
    """Split the interactions of ``kg`` (``random``, ``temporal``, ``global-time``, ``cold-item``)."""
    return _split(kg, strategy=strategy, ratios=ratios, seed=seed)



def select_half_life(model: str, kg, split, grid: Sequence[float | None] = (None, 30.0, 90.0, 365.0, 1095.0),
                     **params):
    """The learned variant: fit ``model`` once per half-life in ``grid`` and keep the one with the best
    validation NDCG@10 (the test part is never read).

    Returns:
        ``(best Recommender, [{"half_life_days": h, "valid_ndcg@10": v}, ...])``.
    """
    if not len(split.valid):
        raise KgrecError("select_half_life needs a split with a validation part ('split.valid' is empty)")
    if not grid:
        raise KgrecError("'grid' must hold at least one half-life (got an empty grid)")
    best, best_rec, trials = -math.inf, None, []
    for h in grid:
        rec = Recommender(model, **dict(params, half_life_days=h)).fit(kg, split)
        v = rec.evaluate(split, ks=(10,), part="valid")["ndcg@10"]
        trials.append({"half_life_days": h, "valid_ndcg@10": v})
        if v > best:
            best, best_rec = v, rec
    return best_rec, trials
