"""kgrec: knowledge-graph-augmented recommendation from RDF.

The public API: :func:`load` (RDF -> :class:`KnowledgeGraph`), :func:`load_store` (a SPARQL endpoint
or an Oxigraph store -> :class:`KnowledgeGraph`), :func:`load_arrays` (pre-mapped NPZ),
:func:`split`, :class:`Recommender`.
"""

__version__ = "0.1.0"

from kgrec.api import Recommender, load, split  # noqa: E402
from kgrec.data.arrays import load_arrays, save_arrays  # noqa: E402
from kgrec.data.graph import Interactions, KnowledgeGraph  # noqa: E402
from kgrec.data.mapping import Mapping  # noqa: E402
from kgrec.data.stores import load_store  # noqa: E402
from kgrec.data.splits import Split  # noqa: E402
from kgrec.errors import (  # noqa: E402
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

__all__ = [
    "__version__", "load", "load_store", "load_arrays", "save_arrays", "split", "Recommender", "Mapping", "KnowledgeGraph", "Interactions", "Split",
    "KgrecError", "RDFFormatError", "RDFParseError", "MappingError", "EmptyGraphError", "SplitError",
    "CheckpointError", "UnknownIRIError", "InputLimitError", "NetworkAccessError", "StoreError",
    "StoreTimeoutError",
]
