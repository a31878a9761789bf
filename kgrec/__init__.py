"""kgrec: knowledge-graph-augmented recommendation from RDF.

The public API: :func:`load` (RDF -> :class:`KnowledgeGraph`), :func:`load_store` (a SPARQL endpoint
or an Oxigraph store -> :class:`KnowledgeGraph`), :func:`load_arrays` (pre-mapped NPZ),
:func:`split`, :class:`Recommender` (the priors' search space of the hybrid and ease+rules:
:class:`PriorSearch`).
"""

from kgrec.api import Recommender, load, split
from kgrec.data.arrays import load_arrays, save_arrays
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.mapping import Mapping
from kgrec.data.splits import Split
from kgrec.data.stores import load_store
from kgrec.errors import (
    CheckpointError,
    EmptyGraphError,
    InputLimitError,
    KgrecError,
    MappingError,
    NetworkAccessError,
    RDFFormatError,
    RDFParseError,
    SplitError,
    StoreError,
    StoreTimeoutError,
    UnknownIRIError,
)
from kgrec.models.priors_select import PriorSearch
from kgrec.version import __version__

__all__ = [
    "__version__", "load", "load_store", "load_arrays", "save_arrays", "split", "Recommender", "Mapping",
    "KnowledgeGraph", "Interactions", "Split", "PriorSearch",
    "KgrecError", "RDFFormatError", "RDFParseError", "MappingError", "EmptyGraphError", "SplitError",
    "CheckpointError", "UnknownIRIError", "InputLimitError", "NetworkAccessError", "StoreError",
    "StoreTimeoutError",
]
