"""Converters from public recommendation datasets to RDF in the kgrec vocabulary.

Each converter reads a dataset folder exactly as its publisher distributes it and writes one
N-Triples file (gzip'd when the output path ends in ``.gz``) that :func:`kgrec.data.loader.load`
reads with the default ``kgrec`` mapping. The output uses:

* ``kgr: <https://w3id.org/kgrec/vocab#>``; users ``rdf:type kgr:User``, items ``rdf:type kgr:Item``.
* Interactions with a rating or time as reified events
  ``<.../event/<n>> rdf:type kgr:Interaction; kgr:user <u>; kgr:item <i>;
  kgr:rating "4"^^xsd:integer; kgr:timestamp "1997-12-04T15:55:49Z"^^xsd:dateTime``, numbered
  ``n = 1, 2, ...`` in source-file order; interactions with neither as ``<u> kgr:interactedWith <i>``.
  MovieLens latest-small with ``tag_events=True`` also writes each tag application as a
  ``<.../tagging/<n>> rdf:type kgr:Tagging`` event with ``kgr:user``, ``kgr:item``,
  ``kgr:timestamp`` and the tag as ``kgr:text``.
* Item literals ``kgr:title``, ``kgr:year`` (``xsd:integer``), ``dbo:abstract`` (``@en``); KG edges
  as IRI-valued predicates (``kgr:genre``, ``dbo:director``, Freebase relations..., and
  ``kgr:tag`` only when MovieLens latest-small is converted with ``tags=True``: tag edges leak).
* ``owl:sameAs`` from an item to the external entity it denotes, so that the loader attaches the
  external KG (whose triples use the entity's IRI) to the item while items keep dataset IRIs.

Minted IRIs are ``https://w3id.org/kgrec/data/<dataset>/{user,item,event,tagging,genre,tag,entity,relation}/<id>``
with the dataset's own ids kept. Lines are written by hand (no rdflib) because that is much faster
and the escaping rules of N-Triples are short: see :func:`literal` and :func:`iri`.

The datasets themselves are NOT shipped (their terms forbid it, except MovieLens latest-small);
obtain them from their publishers (sources and terms: ``benchmarks/RESULTS.md``, "Datasets").

The package: :mod:`~kgrec.data.convert.ntriples` writes (terms, minted IRIs, the atomic writer),
:mod:`~kgrec.data.convert.sources` reads the publishers' files, :mod:`~kgrec.data.convert.movielens`
and :mod:`~kgrec.data.convert.satori` hold the converters; this module registers them
(:data:`CONVERTERS`) and re-exports every public name.
"""

from __future__ import annotations

import os
from pathlib import Path

from kgrec.data.convert.movielens import DBPEDIA_EDGES as DBPEDIA_EDGES
from kgrec.data.convert.movielens import ML100K_GENRES as ML100K_GENRES
from kgrec.data.convert.movielens import NO_GENRE as NO_GENRE
from kgrec.data.convert.movielens import convert_movielens_100k, convert_movielens_latest_small, tag_slug
from kgrec.data.convert.ntriples import BASE, KGR, iri, literal
from kgrec.data.convert.ntriples import DBO as DBO
from kgrec.data.convert.ntriples import DCT_SUBJECT as DCT_SUBJECT
from kgrec.data.convert.ntriples import FREEBASE as FREEBASE
from kgrec.data.convert.ntriples import OWL_SAME_AS as OWL_SAME_AS
from kgrec.data.convert.ntriples import RDF_TYPE as RDF_TYPE
from kgrec.data.convert.ntriples import RDFS_LABEL as RDFS_LABEL
from kgrec.data.convert.ntriples import XSD as XSD
from kgrec.data.convert.satori import convert_book_crossing, convert_lastfm
from kgrec.errors import KgrecError, SourceFormatError

__all__ = [
    "BASE",
    "KGR",
    "CONVERTERS",
    "SourceFormatError",
    "convert",
    "convert_movielens_100k",
    "convert_movielens_latest_small",
    "convert_lastfm",
    "convert_book_crossing",
    "iri",
    "literal",
    "tag_slug",
]

# -------------------------------------------------------------------------------------- registry
#: Dataset name -> (folder under the data root, converter). Output files are ``<name>.nt.gz``.
CONVERTERS = {
    "movielens-100k": ("movielens-100k", convert_movielens_100k),
    "movielens-small": ("movielens-latest-small", convert_movielens_latest_small),
    "lastfm": ("lastfm-kg", convert_lastfm),
    "book-crossing": ("book-crossing-kg", convert_book_crossing),
}


def convert(name: str, data_root: str | os.PathLike, out: str | os.PathLike, **kwargs) -> dict[str, int]:
    """Run the converter registered as ``name`` on ``<data_root>/<its folder>``, writing ``out``."""
    if name not in CONVERTERS:
        raise KgrecError(f"'name' must be one of {sorted(CONVERTERS)} (got {name!r})")
    folder, fn = CONVERTERS[name]
    src = Path(data_root) / folder
    if not src.is_dir():
        raise KgrecError(f"'{src}' is missing: download the {name} dataset there "
                         f"(see the converter's docstring for its source)")
    return fn(src, out, **kwargs)
