"""Saving and loading a fitted model: safetensors + JSON, written atomically, hashed, never pickle.

A checkpoint directory holds ``config.json`` (metadata), ``model.safetensors`` (tensors) and
``manifest.json`` (size and SHA-256 of both). Saving writes a sibling temporary directory, checks
it against its manifest, and only then moves it into place; the checkpoint it replaces is kept as
``<directory>.prev`` when it was itself intact. Loading verifies the manifest, so a truncated or
corrupted file is a :class:`~kgrec.errors.CheckpointError`, never silently wrong weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from kgrec.errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "verify_checkpoint", "previous_checkpoint", "FORMAT",
           "MANIFEST"]

FORMAT = "kgrec.model/1"
MANIFEST = "manifest.json"
_FILES = ("config.json", "model.safetensors")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def previous_checkpoint(directory: str | os.PathLike) -> Path | None:
    """``<directory>.prev``, the checkpoint a save replaced, if it holds one."""
    d = Path(directory)
    prev = d.with_name(d.name + ".prev")
    return prev if (prev / "config.json").is_file() else None


def _prev_hint(d: Path) -> str:
    prev = previous_checkpoint(d)
    return f"; the previous checkpoint is kept in '{prev}'" if prev is not None else ""


def verify_checkpoint(directory: str | os.PathLike) -> None:
    """Check every file of ``directory`` against its ``manifest.json`` (size, then SHA-256).

    Raises:
        CheckpointError: a file or the manifest is missing, truncated or changed; the message
            names the file and, when there is one, the previous checkpoint kept beside it.
    """
    d = Path(directory)
    if not d.is_dir():
        raise CheckpointError(f"'{d}' is not a directory holding a saved kgrec model{_prev_hint(d)}")
    for name in (*_FILES, MANIFEST):
        if not (d / name).is_file():
            raise CheckpointError(f"'{d / name}' is missing: not a complete kgrec model directory{_prev_hint(d)}")
    try:
        manifest = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        assert all(isinstance(files.get(n), dict) for n in _FILES)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise CheckpointError(f"'{d / MANIFEST}' is not a valid manifest (truncated or edited)"
                              f"{_prev_hint(d)}") from None
    for name in _FILES:
        entry, path = files[name], d / name
        size = path.stat().st_size
        if size != entry.get("bytes"):
            raise CheckpointError(f"'{path}' has {size} bytes but {MANIFEST} records {entry.get('bytes')}: "
                                  f"the file is truncated or corrupted{_prev_hint(d)}")
        if _sha256(path) != entry.get("sha256"):
            raise CheckpointError(f"'{path}' does not match its SHA-256 in {MANIFEST}: the file is "
                                  f"corrupted{_prev_hint(d)}")


def save_checkpoint(directory: str | os.PathLike, meta: dict, tensors: dict[str, torch.Tensor]) -> Path:
    """Write ``meta`` (JSON) and ``tensors`` (safetensors) into ``directory`` atomically.

    The files and their manifest are written to a sibling temporary directory, flushed to disk and
    verified; only then does it replace ``directory``. An intact checkpoint already there becomes
    ``<directory>.prev`` (a damaged one is dropped, keeping the older ``.prev``), so a crash at any
    point leaves at least one complete checkpoint.
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
        files = {}
        for name in _FILES:
            _fsync(tmp / name)
            files[name] = {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)}
        (tmp / MANIFEST).write_text(json.dumps({"format": FORMAT, "files": files}, indent=1), encoding="utf-8")
        _fsync(tmp / MANIFEST)
        verify_checkpoint(tmp)
        if d.exists():
            prev = d.with_name(d.name + ".prev")
            try:
                verify_checkpoint(d)
                intact = True
            except CheckpointError:
                intact = False
            if intact:
                if prev.exists():
                    shutil.rmtree(prev)
                os.replace(d, prev)
            else:
                shutil.rmtree(d)
        os.replace(tmp, d)
        _fsync(d.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return d


def load_checkpoint(directory: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read a directory written by :func:`save_checkpoint` -> ``(meta, tensors)``, verified first."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory)
    if (d / "config.json").is_file():
        try:
            meta = json.loads((d / "config.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            line = f" line {e.lineno}" if isinstance(e, json.JSONDecodeError) else ""
            raise CheckpointError(f"'{d / 'config.json'}'{line}: invalid JSON ({e}){_prev_hint(d)}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise CheckpointError(f"'{d / 'config.json'}' has format {found!r}, expected {FORMAT!r}")
    verify_checkpoint(d)
    try:
        tensors = load_file(str(d / "model.safetensors"))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"'{d / 'model.safetensors'}' cannot be read: {e}") from None
    return meta, tensors
