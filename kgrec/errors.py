"""Exceptions raised by kgrec for user errors.

Every error that comes from input data names the file and, when known, the line, so that a
user can fix the input without reading kgrec's code.
"""

from __future__ import annotations

import os

__all__ = [
    "KgrecError",
    "RDFFormatError",
    "DataFileError",
    "RDFParseError",
    "SourceFormatError",
    "ArrayFileError",
    "EvaluationError",
    "TextModelError",
    "MappingError",
    "EmptyGraphError",
    "SplitError",
    "CheckpointError",
    "UnknownIRIError",
    "InputLimitError",
    "NetworkAccessError",
    "DistributedError",
    "ResourceLimitError",
    "StoreError",
    "StoreTimeoutError",
    "EventError",
    "EventStoreError",
    "ServeError",
]


class KgrecError(Exception):
    """Base class of every error kgrec raises for bad input or bad arguments."""


class RDFFormatError(KgrecError, ValueError):
    """The RDF serialisation of a file is unknown or cannot be guessed from its suffix."""


class DataFileError(KgrecError, ValueError):
    """An input file is malformed. ``path`` and ``line`` (1-based, or ``None``) say where."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line

    def __reduce__(self):
        # pickled with its parts (an error raised in a worker process keeps its path and line)
        return type(self), (self.message, self.path, self.line)


class RDFParseError(DataFileError):
    """An RDF file is malformed."""


class InputLimitError(DataFileError):
    """An input file exceeds a configured limit (file size, literal length)."""


class SourceFormatError(DataFileError):
    """A source file of a dataset converter does not have the documented format."""


class ArrayFileError(DataFileError):
    """A pre-mapped integer input file (``kgrec.load_arrays``) misses an array or holds a bad one."""


class EvaluationError(KgrecError, ValueError):
    """A ranking or metric argument is invalid (bad ``k``, wrong score shape, NaN scores...)."""


class TextModelError(KgrecError, ValueError):
    """A text model argument is not a usable local model directory."""


class MappingError(KgrecError, ValueError):
    """A mapping file is invalid, or a mapping matches nothing in the graph."""


class EmptyGraphError(KgrecError, ValueError):
    """The graph holds no users, items or interactions after mapping."""


class SplitError(KgrecError, ValueError):
    """A split cannot be made (unknown strategy, bad ratios, missing timestamps...)."""


class CheckpointError(KgrecError, ValueError):
    """A saved model directory is missing files or was written by an incompatible version."""


class NetworkAccessError(KgrecError, PermissionError):
    """Something tried to reach the network while kgrec was reading input (never allowed there)."""


class DistributedError(KgrecError, RuntimeError):
    """A distributed (torchrun) launch cannot be set up: bad backend, no GPU for NCCL, bad env."""


class ResourceLimitError(KgrecError, MemoryError):
    """A fit would need more memory than is available (or than ``max_memory_gb`` allows); raised
    from an estimate before anything large is allocated.
    """


class StoreError(KgrecError, OSError):
    """A triple store cannot be read: a SPARQL endpoint that cannot be reached or answers an HTTP
    error, or a store directory that is not an Oxigraph store or is open for writing elsewhere.
    ``location`` is the endpoint URL or the directory; ``page`` the 1-based page of the query
    being fetched, or ``None``.
    """

    def __init__(self, message: str, location: str | os.PathLike | None = None, page: int | None = None):
        super().__init__(message)
        self.location = None if location is None else str(location)
        self.page = page

    def __str__(self) -> str:  # OSError formats several arguments as a tuple; keep the message
        return str(self.args[0]) if self.args else ""


class StoreTimeoutError(StoreError, TimeoutError):
    """A SPARQL endpoint did not answer one page of the query within the timeout."""


class EventError(KgrecError, ValueError):
    """An interaction event posted to the live service (``kgrec serve``) is malformed; the message
    names the field (``'[2].time'``).
    """


class EventStoreError(KgrecError, RuntimeError):
    """The event store of the live service cannot be opened, read or written (a SPARQL endpoint that
    does not answer, a store directory another process holds); nothing is acknowledged then.
    """


class ServeError(KgrecError, ValueError):
    """The live service cannot start as asked (a bad option, a missing token file, a state
    directory of another model).
    """


class UnknownIRIError(KgrecError, KeyError):
    """An IRI passed to the API is not a known user or item."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
