"""Pre-mapped integer input: a :class:`KnowledgeGraph` from NPZ or Parquet arrays instead of RDF.

Data prepared upstream (a Spark or Dask job that already turned IRIs into integer ids) skips RDF
parsing and the mapping: :func:`load_arrays` reads integer triples, interactions and the id maps
from one ``.npz`` file or from a folder of Parquet files and validates them; :func:`save_arrays`
writes either layout.

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
``interactions_scenario``   ``[N]``     optional integer ids into ``scenarios`` (default 0)
``scenarios``               ``[S]``     optional scenario names (default ``["default"]``)
``features``                ``[E, F]``  optional float numeric entity features
``feature_names``           ``[F]``     predicate IRIs of ``features`` (with ``features``)
==========================  ==========  =====================================================

Parquet layout (a folder; pyarrow needed, ``pip install pyarrow``), the same arrays as tables:

=========================  ===============================================  =====================
file                       columns                                          NPZ arrays
=========================  ===============================================  =====================
``users.parquet``          ``label`` (string)                               ``users``
``items.parquet``          ``label`` (string)                               ``items``
``entities.parquet``       ``label`` (string)                               ``entities``
``relations.parquet``      ``label`` (string)                               ``relations``
``triples.parquet``        ``head``, ``relation``, ``tail`` (integer)       ``triples``
``interactions.parquet``   ``user``, ``item`` (integer); optional           ``interactions_*``
                           ``weight``, ``time`` (float), ``scenario``
                           (integer)
``scenarios.parquet``      optional; ``label`` (string)                     ``scenarios``
``features.parquet``       optional; one float column per feature           ``features``,
                           predicate IRI, one row per entity                ``feature_names``
=========================  ===============================================  =====================

Scenarios (:mod:`kgrec.data.scenarios`): ``interactions_scenario`` indexes the names in
``scenarios``; a file without them (written before kgrec kept scenarios) loads as one ``default``
scenario. :func:`save_arrays` writes the names when the graph has other scenarios than ``default``
and the ids when its interactions carry them.

A Spark ``df.write.parquet("triples.parquet")`` folder of part files is read as one table too.
Triples are de-duplicated and sorted on loading, as :func:`kgrec.load` does (duplicates are
counted in ``kg.warnings``).
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from kgrec.data.graph import DEFAULT_SCENARIOS, Interactions, KnowledgeGraph
from kgrec.data.mapping import SCENARIO_NAME_RE
from kgrec.data.vocab import Vocab
from kgrec.errors import ArrayFileError, KgrecError

__all__ = ["load_arrays", "save_arrays", "REQUIRED", "OPTIONAL", "PARQUET_TABLES", "FORMATS"]

REQUIRED = ("users", "items", "entities", "relations", "triples", "interactions_user", "interactions_item")
OPTIONAL = ("interactions_weight", "interactions_time", "interactions_scenario", "scenarios", "features",
            "feature_names")
#: Parquet file stem -> (required columns, optional columns); see the module docstring.
PARQUET_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "users": (("label",), ()), "items": (("label",), ()), "entities": (("label",), ()),
    "relations": (("label",), ()), "triples": (("head", "relation", "tail"), ()),
    "interactions": (("user", "item"), ("weight", "time", "scenario")),
}
#: Optional Parquet files (not in PARQUET_TABLES): ``features`` and ``scenarios``.
_PARQUET_OPTIONAL = ("features", "scenarios")
FORMATS = ("npz", "parquet")
_PARQUET_HINT = "reading and writing Parquet needs pyarrow: pip install pyarrow"


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ImportError(_PARQUET_HINT) from None
    return pyarrow


def save_arrays(kg: KnowledgeGraph, path: str | os.PathLike, format: str | None = None) -> Path:
    """Write ``kg``'s id maps, triples, interactions and features to ``path``.

    Args:
        kg: the graph.
        path: an ``.npz`` file (``format="npz"``, compressed) or a folder of Parquet files
            (``format="parquet"``; the folder is replaced as a whole).
        format: ``"npz"`` or ``"parquet"``; default: ``"npz"`` when ``path`` ends in ``.npz``,
            else ``"parquet"``.

    Literals (texts) are not written: the formats carry integer data only. Scenarios are: their
    names (when not the single ``default``) and the interactions' scenario ids (when set).

    Raises:
        KgrecError: unknown ``format``, or ``format="npz"`` with a path not ending in ``.npz``.
        ImportError: Parquet without pyarrow (the message says ``pip install pyarrow``).
    """
    path = Path(path)
    if format is None:
        format = "npz" if path.suffix == ".npz" else "parquet"
    if format not in FORMATS:
        raise KgrecError(f"'format' must be one of {', '.join(FORMATS)} (got {format!r})")
    if format == "npz" and path.suffix != ".npz":
        raise KgrecError(f"'path' must end in .npz (got '{path}')")
    arrays = {
        "users": np.asarray(kg.users.labels, dtype=str), "items": np.asarray(kg.items.labels, dtype=str),
        "entities": np.asarray(kg.entities.labels, dtype=str),
        "relations": np.asarray(kg.relations.labels, dtype=str),
        "triples": kg.triples.numpy().astype(np.int64).reshape(-1, 3),
        "interactions_user": kg.interactions.user.numpy(), "interactions_item": kg.interactions.item.numpy(),
        "interactions_weight": kg.interactions.weight.numpy(), "interactions_time": kg.interactions.time.numpy(),
    }
    if kg.interactions.scenario is not None:
        arrays["interactions_scenario"] = kg.interactions.scenario.numpy().astype(np.int64)
    if kg.scenarios != DEFAULT_SCENARIOS:
        arrays["scenarios"] = np.asarray(kg.scenarios, dtype=str)
    if kg.features is not None:
        arrays["features"] = kg.features.numpy()
        arrays["feature_names"] = np.asarray(kg.feature_names, dtype=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "parquet":
        return _save_parquet(arrays, path)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_arrays(path: str | os.PathLike) -> KnowledgeGraph:
    """Read pre-mapped arrays (layouts in this module's docstring) into a KnowledgeGraph.

    Args:
        path: an ``.npz`` file, or a folder of Parquet files (``users.parquet``...).

    Raises:
        KgrecError: ``path`` does not exist, or is neither an ``.npz`` file nor a folder.
        ImportError: a Parquet folder without pyarrow (the message says ``pip install pyarrow``).
        ArrayFileError: the file is not readable NPZ / Parquet, an array (a file or column) is
            missing, has the wrong dtype or shape, an id is out of range, a label repeats, or
            ``entities`` does not start with ``items``, a scenario id is not an index of
            ``scenarios``; the message names the file and the array or column.
    """
    path = Path(path)
    data = _read_arrays(path)
    vocabs = _id_maps(data, path)
    n_u, n_i, n_e, n_r = (len(vocabs[k]) for k in ("users", "items", "entities", "relations"))

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
    scenarios, scenario = _scenarios(data, path, n)
    features, names = _features(data, path, n_e)

    warnings: Counter = Counter()
    t = torch.from_numpy(triples.astype(np.int64)).view(-1, 3)
    unique = torch.unique(t, dim=0) if len(t) else t  # sorted lexicographically
    if len(unique) < len(t):
        warnings["duplicate triple"] = len(t) - len(unique)
    inter = Interactions(torch.from_numpy(user.astype(np.int64)), torch.from_numpy(item.astype(np.int64)),
                         torch.from_numpy(weight), torch.from_numpy(time), scenario)
    return KnowledgeGraph(users=vocabs["users"], items=vocabs["items"], entities=vocabs["entities"],
                          relations=vocabs["relations"], triples=unique, interactions=inter,
                          features=features, feature_names=names, warnings=warnings, sources=[str(path)],
                          scenarios=scenarios)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file or a Parquet folder, exactly the names of REQUIRED and OPTIONAL."""
    if path.is_dir():
        data = _read_parquet(path)
    elif path.suffix != ".npz":
        raise KgrecError(f"'path' must be an .npz file or a folder of Parquet files (got '{path}')")
    elif not path.is_file():
        raise KgrecError(f"'path': no such file '{path}'")
    else:
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
    return data


def _id_maps(data: dict, path: Path) -> dict[str, Vocab]:
    """The users, items, entities and relations vocabularies; ``entities`` must start with ``items``."""
    vocabs = {name: _vocab(data, name, path) for name in ("users", "items", "entities", "relations")}
    n_i, n_e = len(vocabs["items"]), len(vocabs["entities"])
    if vocabs["entities"].labels[:n_i] != vocabs["items"].labels:
        first = next((k for k in range(n_i) if k >= n_e or vocabs["entities"][k] != vocabs["items"][k]), n_i)
        found = vocabs["entities"][first] if first < n_e else "the end of 'entities'"
        raise ArrayFileError(f"'entities' must start with the {n_i} 'items' in the same order; entry {first} is "
                             f"{found!r}, expected {vocabs['items'][first]!r}", path)
    return vocabs


def _features(data: dict, path: Path, n_e: int) -> tuple[torch.Tensor | None, list[str]]:
    """``(features [E, F] or None, feature names)`` from ``features`` / ``feature_names`` (given together)."""
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
    return features, names


def _scenarios(data: dict, path: Path, n: int) -> tuple[list[str], torch.Tensor | None]:
    """``(names, [N] ids or None)`` from ``scenarios`` / ``interactions_scenario`` (both optional).

    Errors name the file and the array; in a Parquet folder, ``scenarios.parquet`` /
    ``interactions.parquet`` and its column ``scenario``.
    """
    parquet = path.is_dir()
    names = list(DEFAULT_SCENARIOS)
    if "scenarios" in data:
        where = path / "scenarios.parquet" if parquet else path
        names = _vocab(data, "scenarios", where).labels
        bad = [x for x in names if not SCENARIO_NAME_RE.fullmatch(x)]
        if not names or bad:
            raise ArrayFileError(f"'scenarios' must name at least one scenario, each a letter, then letters, digits, "
                                 f"'_', '.' or '-' (got {bad[0] if bad else names!r})", where)
    if "interactions_scenario" not in data:
        return names, None
    where, what = ((path / "interactions.parquet", "column 'scenario'") if parquet
                   else (path, "'interactions_scenario'"))
    a = data["interactions_scenario"]
    if a.dtype.kind not in "iu" or a.shape != (n,):
        raise ArrayFileError(f"{what} must be an integer array of shape [{n}] (got {a.dtype} {list(a.shape)})",
                             where)
    _in_range(a, len(names), f"{what} (indices of 'scenarios': {', '.join(names)})", where)
    return names, torch.from_numpy(a.astype(np.int64))


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


# ------------------------------------------------------------------------------------- Parquet
def _save_parquet(arrays: dict[str, np.ndarray], folder: Path) -> Path:
    """Write ``arrays`` (NPZ names) as the Parquet tables of the module docstring, atomically."""
    import shutil
    import tempfile

    pa = _pyarrow()
    tables = {name: {"label": arrays[name]} for name in ("users", "items", "entities", "relations")}
    t = arrays["triples"]
    tables["triples"] = {"head": t[:, 0], "relation": t[:, 1], "tail": t[:, 2]}
    tables["interactions"] = {k: arrays[f"interactions_{k}"] for k in ("user", "item", "weight", "time", "scenario")
                              if f"interactions_{k}" in arrays}
    if "scenarios" in arrays:
        tables["scenarios"] = {"label": arrays["scenarios"]}
    if "features" in arrays:
        tables["features"] = {n: arrays["features"][:, j] for j, n in enumerate(arrays["feature_names"].tolist())}
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        for name, cols in tables.items():
            table = pa.table({k: (v.tolist() if v.dtype.kind == "U" else v) for k, v in cols.items()})
            pa.parquet.write_table(table, tmp / f"{name}.parquet")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


def _read_parquet(folder: Path) -> dict[str, np.ndarray]:
    """The NPZ-named arrays of a Parquet folder; schema errors name the file and the column."""
    pa = _pyarrow()
    unknown = sorted(f.name for f in folder.iterdir() if f.suffix == ".parquet"
                     and f.stem not in PARQUET_TABLES and f.stem not in _PARQUET_OPTIONAL)
    if unknown:
        raise ArrayFileError(f"unknown Parquet file(s) {', '.join(unknown)}; expected "
                             f"{', '.join(n + '.parquet' for n in PARQUET_TABLES)} and optionally "
                             f"{', '.join(n + '.parquet' for n in _PARQUET_OPTIONAL)}", folder)

    def read(name: str):
        f = folder / f"{name}.parquet"
        try:
            return pa.parquet.read_table(f), f
        except (OSError, pa.ArrowException) as e:
            raise ArrayFileError(f"not a readable Parquet file ({e})", f) from None

    missing = [n + ".parquet" for n in PARQUET_TABLES if not (folder / f"{n}.parquet").exists()]
    if missing:
        raise ArrayFileError(f"missing Parquet file(s) {', '.join(missing)} (a folder of pre-mapped arrays needs "
                             f"{', '.join(n + '.parquet' for n in PARQUET_TABLES)})", folder)
    data: dict[str, np.ndarray] = {}
    for name, (required, optional) in PARQUET_TABLES.items():
        table, f = read(name)
        cols = table.column_names
        lacking = [c for c in required if c not in cols]
        extra = [c for c in cols if c not in required + optional]
        if lacking or extra:
            what = (f"missing column(s) {', '.join(repr(c) for c in lacking)}" if lacking
                    else f"unknown column(s) {', '.join(repr(c) for c in extra)}")
            raise ArrayFileError(f"{what}; columns must be {', '.join(repr(c) for c in required)}"
                                 + (f" and optionally {', '.join(repr(c) for c in optional)}" if optional else ""), f)
        arrays = {c: _column(table, c, f, pa) for c in cols}
        if name == "triples":
            data["triples"] = np.stack([arrays["head"], arrays["relation"], arrays["tail"]], axis=1) \
                if len(table) else np.empty((0, 3), dtype=np.int64)
        elif name == "interactions":
            data.update({f"interactions_{c}": a for c, a in arrays.items()})
        else:
            data[name] = arrays["label"]
    if (folder / "scenarios.parquet").exists():
        table, f = read("scenarios")
        if table.column_names != ["label"]:
            raise ArrayFileError(f"columns must be 'label' (got {', '.join(repr(c) for c in table.column_names)})", f)
        data["scenarios"] = _column(table, "label", f, pa)
    if (folder / "features.parquet").exists():
        table, f = read("features")
        cols = {c: _column(table, c, f, pa) for c in table.column_names}
        bad = [c for c, a in cols.items() if a.dtype.kind not in "fiu"]
        if bad:
            raise ArrayFileError(f"column {bad[0]!r} must hold numbers (got {cols[bad[0]].dtype})", f)
        data["feature_names"] = np.asarray(list(cols), dtype=str)
        data["features"] = np.stack(list(cols.values()), axis=1) if cols else np.zeros((len(table), 0))
    return data


def _column(table, name: str, f: Path, pa) -> np.ndarray:
    """One column as a NumPy array: strings as fixed-width unicode, numbers as they are."""
    col = table.column(name)
    typ = col.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        if col.null_count:
            raise ArrayFileError(f"column {name!r} holds {col.null_count} null label(s)", f)
        return np.asarray(col.to_pylist(), dtype=str) if len(col) else np.empty(0, dtype=str)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        if col.null_count and pa.types.is_integer(typ):
            raise ArrayFileError(f"column {name!r} holds {col.null_count} null id(s)", f)
        return col.to_numpy()
    raise ArrayFileError(f"column {name!r} must hold strings or numbers (got {typ})", f)
