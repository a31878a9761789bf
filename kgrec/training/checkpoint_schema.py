"""What a checkpoint's ``config.json`` and tensors may hold: checked on load, before anything is built.

A checkpoint is a file people download and share, and its ``manifest.json`` only proves that the
files were not changed *after* someone hashed them. So :meth:`kgrec.Recommender.load` treats
``config.json`` as untrusted input:

* **Known keys, right types.** The top level holds the keys :meth:`~kgrec.Recommender.save` writes;
  ``config`` holds exactly the model's config fields (:meth:`~kgrec.Recommender.params_of`), each
  of the type its dataclass annotation declares (``bool`` is not an ``int``; a ``tuple``/``list``
  field is a JSON list of numbers; ``float`` accepts an integer; numbers must be finite). Integer
  fields are checked with :func:`kgrec.nn.kgraph.check_int` (``>= 0``; sizes that shape a weight
  ``>= 1``; the seed is any integer), then the config's own ``__post_init__`` validation runs.
* **No code-loading or path setting is taken from a checkpoint** (:data:`LOAD_ARGUMENTS`): the
  text model directory, the permission to load pickle weights and the embedding-cache directory
  are recorded by ``save`` for information only; on load they come from the arguments of
  :meth:`~kgrec.Recommender.load` (defaults: the packaged MiniLM, pickle refused, the default
  cache). Whatever the checkpoint says there is type-checked and then ignored, so checkpoints
  saved before this rule still load. Any other key (``trust_remote_code``, ``weights_only``...)
  is an unknown key and refused.
* **Tensors agree with the config before they are read.** The model is built on PyTorch's
  ``meta`` device (shapes only, no memory) from the checked config and metadata, and every
  ``module.*`` tensor of the safetensors header must have its name, dtype and shape (a buffer
  that the built model leaves empty along a dimension, e.g. ItemKNN's sparse similarity, may have
  any length there); the metadata's user and item counts must be the lengths of the id lists,
  and the history CSR must have at least ``num_users + 1`` row pointers. After reading, the CSR's
  values and the item-item similarity ids are checked (monotone row pointers, item ids in range),
  so scoring never indexes out of bounds.

Every refusal is a :class:`~kgrec.errors.CheckpointError` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

import torch

from kgrec.checks import check_int
from kgrec.errors import CheckpointError, KgrecError

__all__ = ["LOAD_ARGUMENTS", "TOP_LEVEL_KEYS", "check_config", "check_top_level", "check_header", "check_known",
           "check_context_values"]

#: config fields that load code or name files: never read from a checkpoint (see the module doc)
LOAD_ARGUMENTS = ("text_model", "text_allow_pickle", "cache_dir")
#: top-level keys of config.json -> required
TOP_LEVEL_KEYS = {"format": True, "model": True, "config": True, "meta": True, "users": True, "items": True,
                  "fit_info": False, "item_labels": False, "kgrec_version": False, "progress": False}
_PROGRESS_KEYS = ("epoch", "valid", "trainer")
# integer config fields that shape a weight: 0 would build an empty model
_AT_LEAST_ONE = frozenset({"dim", "relation_dim", "num_heads", "num_intents", "text_segments", "batch_size",
                           "kg_batch_size", "text_batch_size", "text_max_length", "eval_every"})
_ANY_INT = frozenset({"seed"})


def _where(path: Path, field: str) -> str:
    return f"'{path}' field '{field}'"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_value(value: Any, hint: Any, name: str) -> str | None:
    """``None`` when ``value`` (parsed JSON) fits the annotation ``hint``, else what was expected."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        wants = [w for w in (_check_value(value, a, name) for a in args if a is not type(None))]
        return None if any(w is None for w in wants) else " or ".join(
            w for w in wants if w) + (" or null" if type(None) in args else "")
    if hint is bool:
        return None if isinstance(value, bool) else "a boolean"
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return "an integer"
        if name not in _ANY_INT:
            check_int(value, name, 1 if name in _AT_LEAST_ONE else 0)
        return None
    if hint is float:
        return None if _is_number(value) else "a finite number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if hint in (tuple, list) or origin in (tuple, list):
        item = args[0] if args and args[0] is not Ellipsis else float
        if not isinstance(value, list):
            return "a list of numbers"
        for v in value:
            if isinstance(v, list) or isinstance(v, dict):
                return "a flat list of numbers"
            if (item is int and (isinstance(v, bool) or not isinstance(v, int))) or not _is_number(v):
                return f"a list of {'integers' if item is int else 'finite numbers'}"
        return None
    if dataclasses.is_dataclass(hint):  # a nested settings object, saved as a JSON object of its fields
        if not isinstance(value, dict):
            return "an object"
        sub = typing.get_type_hints(hint)
        names = [f.name for f in dataclasses.fields(hint)]
        unknown = sorted(set(value) - set(names))
        if unknown:
            return f"an object of the fields {', '.join(names)} (unknown: {unknown[0]!r})"
        for key, v in value.items():
            wanted = _check_value(v, sub[key], f"{name}.{key}")
            if wanted is not None:
                return f"an object whose {key!r} is {wanted}"
        return None
    return f"a value of type {hint}"  # an annotation this schema does not know: refuse, never guess


def check_top_level(meta: dict, path: Path) -> None:
    """Keys and types of ``config.json``'s top level, its id lists and its ``meta``/``progress``."""
    unknown = sorted(set(meta) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise CheckpointError(f"{_where(path, unknown[0])}: unknown key (a kgrec checkpoint holds "
                              f"{', '.join(TOP_LEVEL_KEYS)})")
    for key, required in TOP_LEVEL_KEYS.items():
        if required and key not in meta:
            raise CheckpointError(f"{_where(path, key)}: missing")
    for key in ("model", "kgrec_version"):
        if key in meta and not isinstance(meta[key], str):
            raise CheckpointError(f"{_where(path, key)}: must be a string (got {type(meta[key]).__name__})")
    for key in ("config", "meta"):
        if not isinstance(meta[key], dict):
            raise CheckpointError(f"{_where(path, key)}: must be an object (got {type(meta[key]).__name__})")
    if not isinstance(meta.get("fit_info", {}), dict):
        raise CheckpointError(f"{_where(path, 'fit_info')}: must be an object")
    for key in ("users", "items", "item_labels"):
        ids = meta.get(key, [])
        if not isinstance(ids, list) or not all(isinstance(s, str) for s in ids):
            raise CheckpointError(f"{_where(path, key)}: must be a list of strings")
        if key != "item_labels" and len(set(ids)) != len(ids):
            raise CheckpointError(f"{_where(path, key)}: holds the same IRI twice")
    labels = meta.get("item_labels", [])
    if labels and len(labels) != len(meta["items"]):
        raise CheckpointError(f"{_where(path, 'item_labels')}: {len(labels)} labels for {len(meta['items'])} items")
    m = meta["meta"]
    for key, value in m.items():
        if key.startswith("num_") or key.endswith("_dim"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CheckpointError(f"{_where(path, 'meta.' + key)}: must be a non-negative integer "
                                      f"(got {value!r:.100})")
    for key, ids in (("num_users", "users"), ("num_items", "items")):
        if key not in m:
            raise CheckpointError(f"{_where(path, 'meta.' + key)}: missing")
        if m[key] != len(meta[ids]):
            raise CheckpointError(f"{_where(path, 'meta.' + key)}: {m[key]} but '{ids}' lists {len(meta[ids])}")
    progress = meta.get("progress")
    if progress is not None:
        if not isinstance(progress, dict) or not set(progress) <= set(_PROGRESS_KEYS):
            raise CheckpointError(f"{_where(path, 'progress')}: must be null or an object of "
                                  f"{', '.join(_PROGRESS_KEYS)}")
        if "epoch" in progress:
            try:
                check_int(progress["epoch"], "epoch", 0)
            except KgrecError as e:
                raise CheckpointError(f"{_where(path, 'progress.epoch')}: {e}") from None
        for key in ("valid", "trainer"):
            if not isinstance(progress.get(key, {}), dict):
                raise CheckpointError(f"{_where(path, 'progress.' + key)}: must be an object")


def check_config(config_cls: type, config: dict, path: Path, model: str) -> dict:
    """The checked config fields of ``config`` (``config.json``'s ``config``) for ``config_cls``,
    without :data:`LOAD_ARGUMENTS` (the caller supplies those).

    Raises:
        CheckpointError: an unknown or missing field, a wrong type or an out-of-range value.
    """
    upgrade = getattr(config_cls, "upgrade", None)  # settings renamed since the checkpoint was written
    if upgrade is not None:
        try:
            config = upgrade(dict(config), warn=False)
        except KgrecError as e:
            raise CheckpointError(f"{_where(path, 'config')}: {e}") from None
        config = {k: {f: list(x) if isinstance(x, tuple) else x for f, x in dataclasses.asdict(v).items()}
                  if dataclasses.is_dataclass(v) else v for k, v in config.items()}  # as JSON holds them
    hints = typing.get_type_hints(config_cls)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise CheckpointError(f"{_where(path, 'config.' + unknown[0])}: unknown setting for model '{model}' "
                              f"(accepted: {', '.join(sorted(fields))})")
    out = {}
    legacy = getattr(config_cls, "LEGACY_DEFAULTS", {})
    for name in sorted(fields):
        if name not in config:  # a field added after the checkpoint was saved: the value it was trained
            if name in legacy:  # with where the config class names one, else today's default
                out[name] = legacy[name]
            continue
        try:
            wanted = _check_value(config[name], hints[name], name)
        except KgrecError as e:  # check_int's range message
            raise CheckpointError(f"{_where(path, 'config.' + name)}: {e}") from None
        if wanted is not None:
            raise CheckpointError(f"{_where(path, 'config.' + name)}: must be {wanted} "
                                  f"(got {type(config[name]).__name__} {config[name]!r:.100})")
        if name not in LOAD_ARGUMENTS:
            value = config[name]
            out[name] = tuple(value) if isinstance(value, list) and not isinstance(
                getattr(config_cls(), name, None), list) else value
    return out


def check_header(est, header: dict[str, tuple[torch.dtype, tuple[int, ...]]], path: Path) -> None:
    """The tensors ``header`` declares against the model ``est`` builds from its config and meta.

    ``est.build()`` runs on the ``meta`` device (shapes, no memory), with ``context`` tensors of the
    declared shapes, so a config asking for a huge model is refused without allocating it.
    """
    U = est.meta["num_users"]
    for name in ("context.hist_indptr", "context.hist_indices"):
        got = header.get(name)
        if got is None:
            raise CheckpointError(f"'{path}' tensor '{name}': missing")
        # a row per user at least (scenario-mf keeps a row per user and scenario)
        rows_ok = name.endswith("indices") or (len(got[1]) == 1 and got[1][0] >= U + 1)
        if got[0] != torch.int64 or len(got[1]) != 1 or not rows_ok:
            raise CheckpointError(f"'{path}' tensor '{name}': {got[0]} {list(got[1])}, expected torch.int64 "
                                  f"{'[nnz]' if name.endswith('indices') else '[rows + 1]'} with at least "
                                  f"meta.num_users + 1 = {U + 1} row pointers")
    unknown = sorted(n for n in header if not n.startswith(("context.", "module.", "trainer."))
                     and n not in ("known.indptr", "known.indices"))
    if unknown:
        raise CheckpointError(f"'{path}' tensor '{unknown[0]}': unknown (names start with context., module. "
                              "or trainer., or are known.indptr / known.indices)")
    known = [n for n in ("known.indptr", "known.indices") if n in header]
    if known and len(known) != 2:
        raise CheckpointError(f"'{path}' tensor '{'known.indices' if known == ['known.indptr'] else 'known.indptr'}'"
                              f": missing (the checkpoint has '{known[0]}')")
    for name in known:
        got = header[name]
        if got[0] != torch.int64 or len(got[1]) != 1 or (name == "known.indptr" and got[1][0] != U + 1):
            raise CheckpointError(f"'{path}' tensor '{name}': {got[0]} {list(got[1])}, expected torch.int64 "
                                  f"{'[nnz]' if name.endswith('indices') else f'[{U + 1}]'}")
    est.context = {n[8:]: torch.empty(shape, dtype=dt, device="meta") for n, (dt, shape) in header.items()
                   if n.startswith("context.")}
    est.prepare_load()
    try:
        with torch.device("meta"):
            est.build()
    except (KgrecError, ValueError, TypeError, RuntimeError, KeyError, IndexError, NotImplementedError) as e:
        raise CheckpointError(f"'{path.with_name('config.json')}' fields 'config'/'meta': the model cannot "
                              f"be built from them ({type(e).__name__}: {e})") from None
    expected = {} if est.module is None else {
        f"module.{k}": (v.dtype, tuple(v.shape)) for k, v in est.module.state_dict().items()}
    buffers = set() if est.module is None else {f"module.{k}" for k, _ in est.module.named_buffers()}
    saved = {n: v for n, v in header.items() if n.startswith("module.")}
    for name in sorted(set(expected) | set(saved)):
        if name not in saved:
            raise CheckpointError(f"'{path}' tensor '{name}': missing (the model built from config.json has it)")
        if name not in expected:
            raise CheckpointError(f"'{path}' tensor '{name}': the model built from config.json has no such weight")
        (dt, shape), (want_dt, want_shape) = saved[name], expected[name]
        free = name in buffers and len(shape) == len(want_shape)
        ok = dt == want_dt and len(shape) == len(want_shape) and all(
            s == w or (free and w == 0) for s, w in zip(shape, want_shape))
        if not ok:
            raise CheckpointError(f"'{path}' tensor '{name}': {dt} {list(shape)} but the model built from "
                                  f"config.json expects {want_dt} {list(want_shape)}")
    est.module = None
    est.context = {}


def check_context_values(est, path: Path) -> None:
    """The index tensors' values, once read: the history CSR's row pointers from 0, non-decreasing,
    ending at the number of entries, its item ids in ``[0, num_items)``; similarity and graph edge
    ids within the node counts of the metadata.
    """
    indptr, indices = est.context["hist_indptr"], est.context["hist_indices"]
    I = est.meta["num_items"]
    if indptr[0] != 0 or bool((indptr[1:] < indptr[:-1]).any()) or int(indptr[-1]) != indices.numel():
        raise CheckpointError(f"'{path}' tensor 'context.hist_indptr': not the row pointers of "
                              f"'context.hist_indices' ({indices.numel()} entries)")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= I):
        raise CheckpointError(f"'{path}' tensor 'context.hist_indices': item ids must lie in [0, {I})")
    # these become sparse tensors built without index checks (or index embeddings): ids must be in range
    U, m = est.meta["num_users"], est.meta
    nodes = m["num_entities"] + U if "num_entities" in m else U + I  # the KG graph's nodes, else users + items
    for name, t, n in (("context.sim_index", est.context.get("sim_index"), I),
                       ("module.sim_index", getattr(est.module, "sim_index", None), I),
                       ("context.cf_edge_index", est.context.get("cf_edge_index"), U + I),
                       ("context.edge_index", est.context.get("edge_index"), nodes)):
        if isinstance(t, torch.Tensor) and (t.dim() != 2 or t.shape[0] != 2 or t.dtype != torch.int64 or (
                t.numel() and (int(t.min()) < 0 or int(t.max()) >= n))):
            raise CheckpointError(f"'{path}' tensor '{name}': must be int64 [2, nnz] node ids in [0, {n})")
    edge_type = est.context.get("edge_type")
    if isinstance(edge_type, torch.Tensor) and edge_type.numel() and (
            int(edge_type.min()) < 0 or int(edge_type.max()) >= m.get("num_edge_types", 0)):
        raise CheckpointError(f"'{path}' tensor 'context.edge_type': must be ids in [0, {m.get('num_edge_types', 0)})")


def check_known(tensors: dict[str, torch.Tensor], num_users: int, num_items: int,
                path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The known items CSR of a checkpoint (``known.indptr`` ``[U + 1]``, ``known.indices``
    ``[nnz]``, shapes already checked by :func:`check_header`) once read: row pointers from 0,
    non-decreasing, ending at the number of entries; item ids in ``[0, num_items)``.

    Raises:
        CheckpointError: naming the file and the tensor.
    """
    indptr, indices = tensors["known.indptr"], tensors["known.indices"]
    if indptr.numel() != num_users + 1 or indptr[0] != 0 or bool((indptr[1:] < indptr[:-1]).any()) or int(
            indptr[-1]) != indices.numel():
        raise CheckpointError(f"'{path}' tensor 'known.indptr': not the {num_users + 1} row pointers of "
                              f"'known.indices' ({indices.numel()} entries)")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= num_items):
        raise CheckpointError(f"'{path}' tensor 'known.indices': item ids must lie in [0, {num_items})")
    return indptr, indices


def check_resume_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path | None) -> None:
    """The weights a resumed fit is about to continue from, against the module the fit built.

    ``Recommender.load`` checks a checkpoint's tensors against a model built from its ``config.json``;
    a resume builds the model from the caller's settings instead, so the same facts are checked here,
    before ``load_state_dict``: every weight present, no unknown one, the same dtype and shape, and
    floating-point values finite (a NaN weight would only surface epochs later as a NaN loss).

    Raises:
        CheckpointError: naming ``path`` and the tensor.
    """
    where = f"'{path}'" if path is not None else "the checkpoint"
    expected = module.state_dict()
    for name in sorted(set(expected) | set(state)):
        if name not in state:
            raise CheckpointError(f"cannot resume from {where}: tensor 'module.{name}' is missing")
        if name not in expected:
            raise CheckpointError(f"cannot resume from {where}: tensor 'module.{name}' is not a weight of the model")
        got, want = state[name], expected[name]
        if got.dtype != want.dtype or tuple(got.shape) != tuple(want.shape):
            raise CheckpointError(f"cannot resume from {where}: tensor 'module.{name}' is {got.dtype} "
                                  f"{list(got.shape)}, the model expects {want.dtype} {list(want.shape)}")
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise CheckpointError(f"cannot resume from {where}: tensor 'module.{name}' holds NaN or infinite values")
