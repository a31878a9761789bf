"""A :class:`~kgrec.api.recommender.Recommender` on disk: what :meth:`~kgrec.api.recommender.Recommender.save`
writes, what :meth:`~kgrec.api.recommender.Recommender.load` checks before it builds the model, and
the state a ``fit(..., resume=True)`` continues from.

A checkpoint is ``config.json`` (model name, settings, id maps, fit information, training progress)
beside ``model.safetensors`` (the estimator's tensors, the known items of each user, and the
trainer's optimizer and RNG state as ``trainer.*``), written and verified by
:mod:`kgrec.training.checkpoint`; every field is checked by :mod:`kgrec.training.checkpoint_schema`
before a tensor is read. The functions take the recommender (or its class) as an argument, so this
module does not import :mod:`kgrec.api.recommender`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from kgrec.data.vocab import Vocab
from kgrec.errors import CheckpointError, KgrecError
from kgrec.models import MODELS
from kgrec.training.checkpoint import load_checkpoint, previous_checkpoint, save_checkpoint
from kgrec.training.checkpoint_schema import (
    check_config,
    check_context_values,
    check_header,
    check_known,
    check_top_level,
)
from kgrec.version import __version__

__all__ = ["save_recommender", "load_recommender", "resume_state", "jsonable"]


def resume_state(rec, directory) -> dict | None:
    """What a resumed fit of ``rec`` loads from the checkpoint in ``directory`` (``None``: none there).

    Raises:
        CheckpointError: the checkpoint holds another model, other settings (``epochs``, ``progress``
            and ``device`` may differ), no training progress, or other users or items.
    """
    if not (Path(directory) / "config.json").is_file():
        directory = previous_checkpoint(directory)  # a crash between the two renames of a save
        if directory is None:
            return None
    # keys and types of config.json (its settings must then equal this model's, compared below)
    meta, tensors = load_checkpoint(directory, check=lambda meta, header: check_top_level(
        meta, Path(directory) / "config.json"))
    # as save() writes it (JSON: tuples come back as lists), so that equal settings compare equal
    mine = jsonable(dataclasses.asdict(rec.estimator.config))
    theirs = meta.get("config", {})
    differ = sorted(k for k in mine if k not in ("epochs", "progress", "device") and theirs.get(k) != mine[k])
    if meta.get("model") != rec.model_name or differ or not meta.get("progress"):
        raise CheckpointError(f"cannot resume from '{directory}': it holds model {meta.get('model')!r}"
                              + (f" with other settings for {', '.join(differ)}" if differ else "")
                              + ("" if meta.get("progress") else " and no training progress"))
    for what, saved, mine in (("users", meta.get("users"), rec.users), ("items", meta.get("items"), rec.items)):
        if saved != mine.to_list():
            n = len(saved) if isinstance(saved, list) else 0
            raise CheckpointError(f"cannot resume from '{directory}': it was trained on other {what} ({n} "
                                  f"{what}, this graph has {len(mine)}{_first_difference(saved, mine)}); "
                                  "resume on the same graph and mapping, or use another checkpoint directory")
    state = {k[7:]: v for k, v in tensors.items() if k.startswith("module.")}
    trainer = {k[8:]: v for k, v in tensors.items() if k.startswith("trainer.")}
    return {"state": state, **meta["progress"], "trainer_tensors": trainer,
            "path": Path(directory) / "model.safetensors"}


def save_recommender(rec, directory: str | os.PathLike, progress: dict | None = None,
                     trainer_tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the fitted ``rec`` into ``directory`` atomically (see ``Recommender.save``)."""
    info = rec.estimator.fit_info
    if progress is None and info.get("best_epoch") and info.get("valid"):
        progress = {"epoch": info["best_epoch"], "valid": info["valid"]}
    meta = {
        "model": rec.model_name,
        "config": dataclasses.asdict(rec.estimator.config),
        "meta": rec.estimator.meta,
        "fit_info": jsonable(rec.estimator.fit_info),
        "users": rec.users.to_list(),
        "items": rec.items.to_list(),
        "item_labels": rec.item_labels,
        "kgrec_version": _version(),
        "progress": jsonable(progress),
    }
    tensors = rec.estimator.state_tensors()
    if rec._known is not None:
        tensors.update({"known.indptr": rec._known[0].contiguous(), "known.indices": rec._known[1].contiguous()})
    tensors.update({f"trainer.{k}": v.detach().cpu() for k, v in (trainer_tensors or {}).items()})
    return save_checkpoint(directory, meta, tensors)


def load_recommender(cls, d: Path, device: str, loading: dict):
    """A ``cls`` (the Recommender class) rebuilt from the checkpoint in ``d``, its settings and tensor
    headers checked before a tensor is read; ``loading`` holds the settings taken from the caller,
    never from the checkpoint (``text_model``, ``text_allow_pickle``, ``cache_dir``).
    """
    holder: dict = {}

    def check(meta: dict, header: dict) -> None:
        check_top_level(meta, d / "config.json")
        if meta["model"] not in MODELS:
            raise CheckpointError(f"'{d / 'config.json'}' field 'model': unknown model {meta['model']!r:.100}")
        config_cls = MODELS[meta["model"]].Config
        params = check_config(config_cls, meta["config"], d / "config.json", meta["model"])
        fields = {f.name for f in dataclasses.fields(config_cls)}
        params.update({k: v for k, v in loading.items() if k in fields})
        try:
            rec = cls(meta["model"], **params)
        except KgrecError as e:
            raise CheckpointError(f"'{d / 'config.json'}' field 'config': {e}") from None
        rec.estimator.meta = meta["meta"]
        check_header(rec.estimator, header, d / "model.safetensors")
        holder["rec"] = rec

    meta, tensors = load_checkpoint(d, check=check)
    rec = holder["rec"]
    est = rec.estimator
    est.fit_info = meta.get("fit_info", {})
    try:
        est.load_state_tensors(tensors)
    except (RuntimeError, KeyError, ValueError) as e:  # what the header check did not foresee
        raise CheckpointError(f"'{d / 'model.safetensors'}': the tensors do not fit the model ({e})") from None
    check_context_values(est, d / "model.safetensors")
    est.to(device)
    rec.users = Vocab.from_list(meta["users"], "user")
    rec.items = Vocab.from_list(meta["items"], "item")
    rec.item_labels = meta.get("item_labels", [])
    if "known.indptr" in tensors:  # older checkpoints lack it: known_items falls back to training
        rec._known = check_known(tensors, len(rec.users), len(rec.items), d / "model.safetensors")
    return rec


def _first_difference(saved, mine: Vocab) -> str:
    """Where a saved id map first differs from this one (``""``: nowhere, or not a list)."""
    if not isinstance(saved, list):
        return ""
    for i, (a, b) in enumerate(zip(saved, mine.to_list())):
        if a != b:
            return f"; id {i} is {a!r} there, {b!r} here"
    return ""


def _version() -> str:
    """The kgrec version a checkpoint records."""
    return __version__


def jsonable(x):
    """``x`` with tuples as lists and tensors as (nested) lists, as JSON stores it."""
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.tolist()
    return x
