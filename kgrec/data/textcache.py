"""An on-disk cache of text embeddings, keyed by model and text content.

Encoding every item description with a transformer takes minutes on a CPU; the same texts come
back in every run of every model that uses the same frozen text encoder, so their vectors are
kept in ``<directory>/<sha256(model_key)>.safetensors`` (one shard per model key) and only texts
never seen before are encoded.

Only cache the outputs of a frozen encoder: the key says which weights were loaded, not what
fine-tuning later did to them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["TextEmbeddingCache", "model_key"]

_FORMAT = "kgrec.data.textcache/1"
# Files of a model directory whose change must change the key (weights and tokenizer); their
# size and mtime are hashed, which is cheap even for large weights.
_MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".model",
                        ".json", ".txt")


def model_key(model_dir_or_name: str | os.PathLike, max_length: int, pooling: str,
              normalize: bool = False) -> str:
    """A string naming exactly what produced an embedding, for :class:`TextEmbeddingCache`.

    For a local directory the key hashes ``config.json``'s content and the name, size and mtime
    of the weight and tokenizer files, so replacing the weights changes the key. Any other value
    is taken as an opaque model name.

    Args:
        model_dir_or_name: the model directory (or a name when there is none).
        max_length: tokens kept per text.
        pooling: the pooling (``"mean"``, ``"cls"``).
        normalize: whether vectors are L2-normalised (default ``False``).

    Returns:
        e.g. ``"model-3f2a9c1d0b7e4a55-len128-mean"`` (``-norm`` appended when normalised).
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"'max_length' must be a positive integer (got {max_length!r})")
    if not isinstance(pooling, str) or not pooling:
        raise ValueError(f"'pooling' must be a non-empty string (got {pooling!r})")
    name = os.fspath(model_dir_or_name)
    path = Path(name)
    if path.is_dir():
        h = hashlib.sha256()
        config = path / "config.json"
        if config.is_file():
            h.update(config.read_bytes())
        for f in sorted(path.iterdir()):
            if f.is_file() and f.name.endswith(_MODEL_FILE_SUFFIXES):
                st = f.stat()
                h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        base = f"{path.resolve().name}-{h.hexdigest()[:16]}"
    else:
        base = name
    return f"{base}-len{max_length}-{pooling}" + ("-norm" if normalize else "")


class TextEmbeddingCache:
    """Text embeddings stored on disk, one safetensors shard per model key.

    Each shard holds ``keys`` (``[M, 32]`` uint8 sha256 digests of ``model_key + text``) and
    ``embeddings`` (``[M, H]`` float32). Shards are rewritten whole through a temporary file and
    ``os.replace``, so a crash never leaves a half-written shard; a shard that cannot be read is
    reported with a warning and rebuilt, and other model keys' shards are never touched. Two
    processes filling the same shard at once may each drop the other's new entries (they are
    recomputed later), never corrupt it.

    Args:
        directory: where shards live; created when needed.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def path(self, model_key: str) -> Path:
        """The shard file of ``model_key``."""
        return self.directory / f"{hashlib.sha256(model_key.encode()).hexdigest()}.safetensors"

    def get_or_compute(self, texts: Sequence[str], model_key: str,
                       compute: Callable[[list[str]], Tensor]) -> Tensor:
        """Embeddings of ``texts``, calling ``compute`` once on the texts not cached yet.

        Args:
            texts: the strings (duplicates are computed once).
            model_key: what produces the vectors (see :func:`model_key`).
            compute: maps a list of ``m`` strings to an ``[m, H]`` tensor.

        Shapes:
            return: ``[len(texts), H]`` float32 on the CPU (``[0, 0]`` when ``texts`` is empty
            and nothing is cached for ``model_key``).
        """
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError("'texts' must be a sequence of strings")
        if not isinstance(model_key, str) or not model_key:
            raise ValueError(f"'model_key' must be a non-empty string (got {model_key!r})")
        texts = list(texts)
        digests = [_digest(model_key, t) for t in texts]
        stamp = _stamp(self.path(model_key))
        keys, emb = self._read(model_key)
        index = {k: i for i, k in enumerate(keys)}
        missing = list(dict.fromkeys(d for d in digests if d not in index))
        if missing:
            text_of = dict(zip(digests, texts))
            new = compute([text_of[d] for d in missing])
            if not isinstance(new, Tensor) or new.dim() != 2 or new.shape[0] != len(missing):
                got = tuple(new.shape) if isinstance(new, Tensor) else type(new).__name__
                raise ValueError(f"'compute' must return a [{len(missing)}, H] tensor for "
                                 f"{len(missing)} texts (got {got})")
            new = new.detach().to("cpu", torch.float32)
            if _stamp(self.path(model_key)) != stamp:
                # another process rewrote the shard while we computed: keep its entries too
                keys2, emb2 = self._read(model_key, quiet=True)
                if emb2 is not None and (emb is None or len(keys2) >= len(keys)):
                    keys, emb = keys2, emb2
                    index = {k: i for i, k in enumerate(keys)}
            if emb is not None and new.shape[1] != emb.shape[1]:
                raise ValueError(f"'compute' returned vectors of size {new.shape[1]} but the cache "
                                 f"for model key {model_key!r} holds size {emb.shape[1]}; "
                                 "use a different model key for a different model")
            fresh = [j for j, d in enumerate(missing) if d not in index]
            keys = keys + [missing[j] for j in fresh]
            emb = new[fresh] if emb is None else torch.cat([emb, new[fresh]])
            self._write(model_key, keys, emb)
            index = {k: i for i, k in enumerate(keys)}
        if emb is None:
            return torch.empty(0, 0)
        return emb[torch.tensor([index[d] for d in digests], dtype=torch.long)]

    def clear(self, model_key: str | None = None) -> None:
        """Delete the shard of ``model_key``, or every shard when ``None``."""
        paths = [self.path(model_key)] if model_key is not None else self.directory.glob("*.safetensors")
        for p in paths:
            p.unlink(missing_ok=True)

    # ---------------------------------------------------------------- storage
    def _read(self, model_key: str, quiet: bool = False) -> tuple[list[bytes], Tensor | None]:
        path = self.path(model_key)
        if not path.is_file():
            return [], None
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                keys_t, emb = f.get_tensor("keys"), f.get_tensor("embeddings")
            if meta.get("format") != _FORMAT or meta.get("model_key") != model_key:
                raise ValueError(f"format {meta.get('format')!r}, model key {meta.get('model_key')!r}")
            if (keys_t.dtype != torch.uint8 or keys_t.dim() != 2 or keys_t.shape[1] != 32
                    or emb.dim() != 2 or emb.shape[0] != keys_t.shape[0]):
                raise ValueError(f"bad tensor shapes keys {tuple(keys_t.shape)}, embeddings {tuple(emb.shape)}")
        except Exception as err:  # a corrupt cache must never stop a run
            if not quiet:
                warnings.warn(f"text embedding cache file '{path}' is unreadable ({err}); "
                              "its embeddings will be recomputed", RuntimeWarning, stacklevel=3)
            return [], None
        return [bytes(row) for row in keys_t.numpy()], emb.float()

    def _write(self, model_key: str, keys: list[bytes], emb: Tensor) -> None:
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(model_key)
        keys_t = torch.frombuffer(bytearray(b"".join(keys)), dtype=torch.uint8).reshape(len(keys), 32)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=self.directory)
        os.close(fd)
        try:
            save_file({"keys": keys_t, "embeddings": emb.contiguous()}, tmp,
                      metadata={"format": _FORMAT, "model_key": model_key,
                                "info": json.dumps({"count": len(keys), "dim": int(emb.shape[1])})})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __repr__(self) -> str:
        return f"TextEmbeddingCache('{self.directory}')"


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _digest(model_key: str, text: str) -> bytes:
    # the NUL separator keeps ("ab", "c") and ("a", "bc") apart
    return hashlib.sha256(model_key.encode() + b"\0" + text.encode()).digest()
