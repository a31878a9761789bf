"""Saving and loading a fitted model: safetensors + JSON, written atomically, hashed, never pickle.

A checkpoint directory holds ``config.json`` (metadata), ``model.safetensors`` (tensors) and
``manifest.json`` (size and SHA-256 of both). Saving writes a sibling temporary directory, checks
it against its manifest, and only then moves it into place; the checkpoint it replaces is kept as
``<directory>.prev`` when it was itself intact. Loading verifies the manifest, so a truncated or
corrupted file is a :class:`~kgrec.errors.CheckpointError`, never silently wrong weights.

The manifest proves integrity, not sanity: anyone can edit a file and recompute its hashes. So
loading also reads ``config.json`` through a nesting-depth guard (no recursion blow-up in the JSON
parser), and checks the safetensors header (every tensor's dtype, shape and byte range, which must
tile the data exactly) before a single tensor is allocated: a file can never make the loader
allocate more than its own size. What the header declares is then handed to a ``check`` callback
(:meth:`kgrec.Recommender.load` compares it with the model config, see
:mod:`kgrec.training.checkpoint_schema`) still before the data is read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from kgrec.errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "verify_checkpoint", "previous_checkpoint", "read_json",
           "read_safetensors_header", "FORMAT", "MANIFEST", "MAX_JSON_DEPTH", "MAX_HEADER_BYTES"]

FORMAT = "kgrec.model/1"
MANIFEST = "manifest.json"
_FILES = ("config.json", "model.safetensors")
MAX_JSON_DEPTH = 32  # a saved config nests a few levels (fit_info's trial lists); deeper is an edit
MAX_HEADER_BYTES = 100 * 1024**2  # the safetensors format's own cap on its JSON header
#: safetensors dtype codes -> (torch dtype, bytes per element)
SAFETENSORS_DTYPES = {"F64": (torch.float64, 8), "F32": (torch.float32, 4), "F16": (torch.float16, 2),
                      "BF16": (torch.bfloat16, 2), "I64": (torch.int64, 8), "I32": (torch.int32, 4),
                      "I16": (torch.int16, 2), "I8": (torch.int8, 1), "U8": (torch.uint8, 1),
                      "BOOL": (torch.bool, 1)}
_MAX_NDIM = 8
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # unrolled: one pass, no alternation per byte


def _json_depth(raw: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text ``raw``, brackets inside strings not counted.

    A linear scan (strings blanked by one regex, then a cumulative sum), so that a file of a million
    ``[`` is refused before :func:`json.loads` recurses into it.
    """
    b = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
    marks = b[(b == ord("[")) | (b == ord("{")) | (b == ord("]")) | (b == ord("}"))]  # brackets only
    if marks.size == 0:
        return 0
    step = np.where((marks == ord("[")) | (marks == ord("{")), 1, -1)
    return int(np.cumsum(step).max(initial=0))


def read_json(raw: bytes, path: Path, max_depth: int = MAX_JSON_DEPTH):
    """Parse JSON bytes read from ``path`` with a nesting-depth guard.

    Raises:
        CheckpointError: invalid UTF-8 or JSON, or nested deeper than ``max_depth`` (the message
            names the file, and the line for a syntax error).
    """
    depth = _json_depth(raw)
    if depth > max_depth:
        raise CheckpointError(f"'{path}' nests {depth} levels of arrays/objects (at most {max_depth}): "
                              "not a file kgrec writes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        line = f" line {e.lineno}" if isinstance(e, json.JSONDecodeError) else ""
        raise CheckpointError(f"'{path}'{line}: invalid JSON ({e}){_prev_hint(path.parent)}") from None


def read_safetensors_header(path: str | os.PathLike) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    """``{name: (dtype, shape)}`` of a safetensors file, from its header alone (no tensor is read).

    The header is an 8-byte little-endian length then that many bytes of JSON. Each tensor must
    declare a known dtype, a shape of non-negative integers and a byte range ``[begin, end)`` of
    exactly ``prod(shape) * itemsize`` bytes; the ranges must tile the data that follows the header
    without gap or overlap. So a tiny file cannot declare a huge tensor, and a truncated file is
    refused here rather than by a reader that has already allocated.

    Raises:
        CheckpointError: naming the file, and the tensor and field at fault.
    """
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"'{p}' field 'header length': {len(head)} bytes, a safetensors file "
                                  "starts with 8 (truncated)")
        n = int.from_bytes(head, "little")
        if n > min(size - 8, MAX_HEADER_BYTES):
            raise CheckpointError(f"'{p}' field 'header length': declares {n} bytes but the file holds "
                                  f"{size - 8} after it (at most {MAX_HEADER_BYTES}): truncated or not safetensors")
        raw = fh.read(n)
    header = read_json(raw, p, max_depth=3)
    if not isinstance(header, dict):
        raise CheckpointError(f"'{p}' field 'header': a JSON object is expected, got {type(header).__name__}")
    data_len = size - 8 - n
    out, spans = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise CheckpointError(f"'{p}' field '__metadata__': must map names to strings")
            continue
        where = f"'{p}' tensor '{name}'"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{where}: must hold exactly 'dtype', 'shape' and 'data_offsets' "
                                  f"(got {entry!r:.200})")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            raise CheckpointError(f"{where} field 'dtype': {dtype!r:.50} is not one of "
                                  f"{', '.join(SAFETENSORS_DTYPES)}")
        if not isinstance(shape, list) or len(shape) > _MAX_NDIM or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
            raise CheckpointError(f"{where} field 'shape': must be a list of at most {_MAX_NDIM} non-negative "
                                  f"integers (got {shape!r:.200})")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_len):
            raise CheckpointError(f"{where} field 'data_offsets': must be [begin, end] within the {data_len} "
                                  f"data bytes of the file (got {offsets!r:.200}): truncated or edited")
        nbytes = math.prod(shape) * SAFETENSORS_DTYPES[dtype][1]
        if offsets[1] - offsets[0] != nbytes:
            raise CheckpointError(f"{where} field 'shape': {shape} of {dtype} needs {nbytes} bytes but "
                                  f"'data_offsets' give {offsets[1] - offsets[0]}")
        spans.append((offsets[0], offsets[1], name))
        out[name] = (SAFETENSORS_DTYPES[dtype][0], tuple(shape))
    end = 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            raise CheckpointError(f"'{p}' tensor '{name}' field 'data_offsets': starts at byte {begin}, "
                                  f"expected {end} (tensors must tile the data without gap or overlap)")
        end = stop
    if end != data_len:
        raise CheckpointError(f"'{p}' field 'data_offsets': the tensors cover {end} of the {data_len} data "
                              "bytes (truncated or edited)")
    return out


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


def load_checkpoint(directory: str | os.PathLike,
                    check: Callable[[dict, dict[str, tuple[torch.dtype, tuple[int, ...]]]], None] | None = None
                    ) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read a directory written by :func:`save_checkpoint` -> ``(meta, tensors)``, verified first.

    Args:
        directory: the checkpoint directory.
        check: called as ``check(meta, header)`` with the parsed ``config.json`` and
            :func:`read_safetensors_header`'s ``{name: (dtype, shape)}`` before any tensor is read;
            it raises :class:`CheckpointError` to refuse the checkpoint.

    Raises:
        CheckpointError: a missing, damaged or insane file (see :func:`verify_checkpoint`,
            :func:`read_json`, :func:`read_safetensors_header`), or whatever ``check`` refuses.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory)
    if (d / "config.json").is_file():
        meta = read_json((d / "config.json").read_bytes(), d / "config.json")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise CheckpointError(f"'{d / 'config.json'}' has format {found!r:.100}, expected {FORMAT!r}")
    verify_checkpoint(d)
    header = read_safetensors_header(d / "model.safetensors")
    if check is not None:
        check(meta, header)
    try:
        tensors = load_file(str(d / "model.safetensors"))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"'{d / 'model.safetensors'}' cannot be read: {e}") from None
    for name, t in tensors.items():  # what was read is what the checked header declared
        if (t.dtype, tuple(t.shape)) != header.get(name):
            raise CheckpointError(f"'{d / 'model.safetensors'}' tensor '{name}': read as {t.dtype} "
                                  f"{tuple(t.shape)}, header declares {header.get(name)}")
    return meta, tensors
