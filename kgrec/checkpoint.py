"""Saving and loading a fitted model: safetensors + JSON, written atomically, never pickle."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from kgrec.errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "FORMAT"]

FORMAT = "kgrec.model/1"
_FILES = ("config.json", "model.safetensors")


def save_checkpoint(directory: str | os.PathLike, meta: dict, tensors: dict[str, torch.Tensor]) -> Path:
    """Write ``meta`` (JSON) and ``tensors`` (safetensors) into ``directory`` atomically.

    The files are written to a sibling temporary directory which then replaces ``directory``; an
    existing checkpoint there is kept until the new one is complete, so a crash mid-save loses
    nothing already stored.
    """
    from safetensors.torch import save_file

    d = Path(directory).resolve()
    d.parent.mkdir(parents=True, exist_ok=True)
    if d.exists() and not d.is_dir():
        raise CheckpointError(f"'{d}' exists and is not a directory")
    tmp = Path(tempfile.mkdtemp(prefix=f".{d.name}.tmp-", dir=d.parent))
    try:
        (tmp / "config.json").write_text(json.dumps({"format": FORMAT, **meta}, indent=1), encoding="utf-8")
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": FORMAT})
        if d.exists():
            old = d.with_name(f".{d.name}.old-{os.getpid()}")
            os.replace(d, old)
            os.replace(tmp, d)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, d)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return d


def load_checkpoint(directory: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read a directory written by :func:`save_checkpoint` -> ``(meta, tensors)``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory)
    if not d.is_dir():
        raise CheckpointError(f"'{d}' is not a directory holding a saved kgrec model")
    for name in _FILES:
        if not (d / name).is_file():
            raise CheckpointError(f"'{d / name}' is missing: not a complete kgrec model directory")
    try:
        meta = json.loads((d / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"'{d / 'config.json'}' line {e.lineno}: invalid JSON ({e.msg})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"'{d / 'config.json'}' has format {meta.get('format')!r}, expected {FORMAT!r}")
    try:
        tensors = load_file(str(d / "model.safetensors"))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"'{d / 'model.safetensors'}' cannot be read: {e}") from None
    return meta, tensors
