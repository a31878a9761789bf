"""Pre-mapped integer input: a :class:`KnowledgeGraph` from NPZ arrays instead of RDF.

Data prepared upstream (a Spark or Dask job that already turned IRIs into integer ids) skips RDF
parsing and the mapping: :func:`load_arrays` reads integer triples, interactions and the id maps
from one ``.npz`` file and validates them; :func:`save_arrays` writes the same layout.

Arrays of the file (``allow_pickle`` is off: strings must be fixed-width unicode, not objects):

==========================  ==========  =====================================================
name                        shape       meaning
==========================  ==========  =====================================================
``users``                   ``[U]``     user IRIs; a user's id is its index
``items``                   ``[I]``     item IRIs; an item's id is its index
``entities``                ``[E]``     entity IRIs; the first ``I`` are ``items``, in order
``relations``               ``[R]``     KG relation (predicate) IRIs
``triples``                 ``[T, 3]``  integer (head entity, relation, tail entity) ids
``interactions_user``       ``[N]``     integer user ids
``interactions_item``       ``[N]``     integer item ids
``interactions_weight``     ``[N]``     optional float weights (default 1.0)
``interactions_time``       ``[N]``     optional float unix seconds (``nan`` = unknown)
``features``                ``[E, F]``  optional float numeric entity features
``feature_names``           ``[F]``     predicate IRIs of ``features`` (with ``features``)
==========================  ==========  =====================================================

Triples are de-duplicated and sorted on loading, as :func:`kgrec.load` does (duplicates are
counted in ``kg.warnings``). Parquet input is not supported (pyarrow is not a dependency).
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.vocab import Vocab
from kgrec.errors import ArrayFileError, KgrecError

__all__ = ["load_arrays", "save_arrays", "REQUIRED", "OPTIONAL"]

REQUIRED = ("users", "items", "entities", "relations", "triples", "interactions_user", "interactions_item")
OPTIONAL = ("interactions_weight", "interactions_time", "features", "feature_names")


def save_arrays(kg: KnowledgeGraph, path: str | os.PathLike) -> Path:
    """Write ``kg``'s id maps, triples, interactions and features to ``path`` (``.npz``, compressed).

    Literals (texts) are not written: the format carries integer data only.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise KgrecError(f"'path' must end in .npz (got '{path}')")
    arrays = {
        "users": np.asarray(kg.users.labels, dtype=str), "items": np.asarray(kg.items.labels, dtype=str),
        "entities": np.asarray(kg.entities.labels, dtype=str),
        "relations": np.asarray(kg.relations.labels, dtype=str),
        "triples": kg.triples.numpy().astype(np.int64).reshape(-1, 3),
        "interactions_user": kg.interactions.user.numpy(), "interactions_item": kg.interactions.item.numpy(),
        "interactions_weight": kg.interactions.weight.numpy(), "interactions_time": kg.interactions.time.numpy(),
    }
    if kg.features is not None:
        arrays["features"] = kg.features.numpy()
        arrays["feature_names"] = np.asarray(kg.feature_names, dtype=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_arrays(path: str | os.PathLike) -> KnowledgeGraph:
    """Read a pre-mapped ``.npz`` file (layout in this module's docstring) into a KnowledgeGraph.

    Raises:
        KgrecError: ``path`` does not exist or does not end in ``.npz``.
        ArrayFileError: the file is not a readable NPZ, an array is missing, has the wrong dtype or
            shape, an id is out of range, a label repeats, or ``entities`` does not start with
            ``items``; the message names the file and the array.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise KgrecError(f"'path' must be an .npz file (got '{path}'); Parquet is not supported")
    if not path.is_file():
        raise KgrecError(f"'path': no such file '{path}'")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ArrayFileError(f"not a readable NPZ file ({e})", path) from None

    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ArrayFileError(f"missing array(s) {', '.join(repr(m) for m in missing)}; required: "
                             f"{', '.join(REQUIRED)}", path)
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ArrayFileError(f"unknown array(s) {', '.join(repr(u) for u in unknown)}; allowed: "
                             f"{', '.join(REQUIRED + OPTIONAL)}", path)

    vocabs = {name: _vocab(data, name, path) for name in ("users", "items", "entities", "relations")}
    n_u, n_i, n_e, n_r = (len(vocabs[k]) for k in ("users", "items", "entities", "relations"))
    if vocabs["entities"].labels[:n_i] != vocabs["items"].labels:
        first = next((k for k in range(n_i) if k >= n_e or vocabs["entities"][k] != vocabs["items"][k]), n_i)
        found = vocabs["entities"][first] if first < n_e else "the end of 'entities'"
        raise ArrayFileError(f"'entities' must start with the {n_i} 'items' in the same order; entry {first} is "
                             f"{found!r}, expected {vocabs['items'][first]!r}", path)

    triples = _ints(data, "triples", path, ndim=2)
    if triples.shape[1] != 3:
        raise ArrayFileError(f"'triples' must have shape [T, 3] (got {list(triples.shape)})", path)
    for col, (what, n) in enumerate((("head", n_e), ("relation", n_r), ("tail", n_e))):
        _in_range(triples[:, col], n, f"'triples' column {col} ({what} ids)", path)

    user = _ints(data, "interactions_user", path, ndim=1)
    item = _ints(data, "interactions_item", path, ndim=1)
    _in_range(user, n_u, "'interactions_user'", path)
    _in_range(item, n_i, "'interactions_item'", path)
    n = user.shape[0]
    if item.shape[0] != n:
        raise ArrayFileError(f"'interactions_item' has {item.shape[0]} entries, 'interactions_user' has {n}", path)
    weight = _floats(data, "interactions_weight", path, n, np.float32, 1.0)
    time = _floats(data, "interactions_time", path, n, np.float64, np.nan)

    features, names = None, []
    if ("features" in data) != ("feature_names" in data):
        raise ArrayFileError("'features' and 'feature_names' must be given together", path)
    if "features" in data:
        names = _strings(data, "feature_names", path)
        f = data["features"]
        if f.dtype.kind not in "fiu" or f.ndim != 2 or f.shape != (n_e, len(names)):
            raise ArrayFileError(f"'features' must be a number array of shape [{n_e}, {len(names)}] "
                                 f"(entities x feature_names) (got {f.dtype} {list(f.shape)})", path)
        features = torch.from_numpy(f.astype(np.float32))

    warnings: Counter = Counter()
    t = torch.from_numpy(triples.astype(np.int64)).view(-1, 3)
    unique = torch.unique(t, dim=0) if len(t) else t  # sorted lexicographically
    if len(unique) < len(t):
        warnings["duplicate triple"] = len(t) - len(unique)
    inter = Interactions(torch.from_numpy(user.astype(np.int64)), torch.from_numpy(item.astype(np.int64)),
                         torch.from_numpy(weight), torch.from_numpy(time))
    return KnowledgeGraph(users=vocabs["users"], items=vocabs["items"], entities=vocabs["entities"],
                          relations=vocabs["relations"], triples=unique, interactions=inter,
                          features=features, feature_names=names, warnings=warnings, sources=[str(path)])


def _strings(data: dict, name: str, path: Path) -> list[str]:
    a = data[name]
    if a.ndim != 1 or (a.dtype.kind != "U" and a.size):
        raise ArrayFileError(f"'{name}' must be a 1-D array of strings (got {a.dtype} {list(a.shape)})", path)
    return a.tolist()


def _vocab(data: dict, name: str, path: Path) -> Vocab:
    labels = _strings(data, name, path)
    if len(set(labels)) != len(labels):
        seen: set[str] = set()
        dup = next(x for x in labels if x in seen or seen.add(x))
        raise ArrayFileError(f"'{name}' repeats the label {dup!r}: ids must be a bijection", path)
    return Vocab.from_list(labels, name.rstrip("s"))


def _ints(data: dict, name: str, path: Path, ndim: int) -> np.ndarray:
    a = data[name]
    if a.size == 0 and a.ndim == ndim:
        return a.astype(np.int64).reshape((0, 3) if ndim == 2 else (0,))
    if a.dtype.kind not in "iu" or a.ndim != ndim:
        want = "[T, 3]" if ndim == 2 else "[N]"
        raise ArrayFileError(f"'{name}' must be an integer array of shape {want} (got {a.dtype} "
                             f"{list(a.shape)})", path)
    return a


def _in_range(a: np.ndarray, n: int, what: str, path: Path) -> None:
    if a.size and (int(a.min()) < 0 or int(a.max()) >= n):
        bad = int(a.min()) if int(a.min()) < 0 else int(a.max())
        raise ArrayFileError(f"{what} must be ids in [0, {n}) (found {bad} at row "
                             f"{int(np.flatnonzero(a == bad)[0])})", path)


def _floats(data: dict, name: str, path: Path, n: int, dtype, default: float) -> np.ndarray:
    if name not in data:
        return np.full(n, default, dtype=dtype)
    a = data[name]
    if a.dtype.kind not in "fiu" or a.shape != (n,):
        raise ArrayFileError(f"'{name}' must be a number array of shape [{n}] (got {a.dtype} {list(a.shape)})",
                             path)
    return a.astype(dtype)
