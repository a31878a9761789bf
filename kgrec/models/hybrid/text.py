"""The hybrid's text side: item text segments and behaviour texts encoded by a local BERT-family model."""

from __future__ import annotations

import os
import re

import torch
from torch import Tensor

from kgrec.data.graph import LABEL_PREDICATES, Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.data.text import item_texts, user_history, user_texts
from kgrec.data.textcache import TextEmbeddingCache, model_key
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError
from kgrec.nn.text_encoder import TextEncoder, default_text_model_dir, load_text_model

__all__ = ["HybridText", "segment_text"]


def segment_text(text: str, segments: int) -> list[str]:
    """Split a rendered item text into at most ``segments`` consecutive chunks of sentences.

    The first chunk always starts with the title, so segment 0 names the item.
    """
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    if not sentences:
        return [text]
    if len(sentences) <= segments:
        return sentences
    total = sum(len(s) for s in sentences)
    target = total / segments
    out, cur = [], ""
    for s in sentences:
        if cur and len(cur) + len(s) > target and len(out) < segments - 1:
            out.append(cur)
            cur = s
        else:
            cur = f"{cur} {s}".strip()
    out.append(cur)
    return out


class HybridText:
    """The hybrid's text side (a mixin of :class:`~kgrec.models.hybrid.HybridEstimator`): MiniLM item
    segments and behaviour texts through the disk cache, the fine-tuning modes, and the text vector of
    a user known only by a history given at call time.
    """

    def _text_model(self):

        if self.text_encoder is None:
            path = self.config.text_model or default_text_model_dir()
            model, self.tokenizer = load_text_model(path, allow_pickle=self.config.text_allow_pickle)
            self.text_encoder = TextEncoder(model, pooling="mean")
            self.text_encoder.set_trainable(self.config.text_mode, top_k=self.config.text_top_k)
        return self.text_encoder

    def prepare_load(self) -> None:
        """A fine-tuned text encoder is part of the module: load its architecture (from the
        ``text_model`` argument of :meth:`kgrec.Recommender.load`) before the module is built.
        """
        if self.tunes_text:
            self._text_model()

    @property
    def tunes_text(self) -> bool:
        return self.config.use_text and self.config.text_mode != "frozen" and self.meta.get("text_dim", 0) > 0

    def param_groups(self) -> list[dict]:
        """The hybrid's weights at ``lr``; fine-tuned BERT layers at ``text_lr``."""
        if not self.tunes_text:
            return super().param_groups()
        bert = [p for p in self.text_encoder.parameters() if p.requires_grad]
        ids = {id(p) for p in self.text_encoder.parameters()}
        rest = [p for p in self.module.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": rest}, {"params": bert, "lr": self.config.text_lr}]

    def to(self, device):
        super().to(device)
        if self.text_encoder is not None:
            self.text_encoder.to(device)
        return self

    def _user_tokens(self, users: Tensor) -> tuple[Tensor, Tensor]:
        enc = self.tokenizer([self._user_text_list[u] for u in users.tolist()], truncation=True, padding=True,
                             max_length=self.config.text_max_length, return_tensors="pt")
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def batch_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        if not self.tunes_text:
            return super().batch_loss(users, pos, neg)
        # behaviour texts of the batch's users through BERT with gradients; others stay cached
        uniq = torch.unique(users)
        uniq = uniq[torch.tensor([self._user_text_list[u] != "" for u in uniq.tolist()], dtype=torch.bool,
                                 device=uniq.device)]
        cached = self.context["user_text"]
        self._text_stale = True
        if len(uniq):
            self.text_encoder.train()
            prefix = self._user_prefix()
            if prefix is None:
                fresh = self.text_encoder(*self._user_tokens(uniq))
            else:  # the frozen layers' output was computed once: only the top layers run
                fresh = self.text_encoder.forward_from_prefix(*_rows(prefix, uniq))
            self.context["user_text"] = cached.index_copy(0, uniq, fresh.to(cached.dtype))
        try:
            return super().batch_loss(users, pos, neg)
        finally:
            self.context["user_text"] = cached


    def _user_prefix(self) -> tuple[Tensor, Tensor] | None:
        """``text_prefix_cache`` in ``"top-k"`` mode: the frozen layers' output for every user's
        behaviour text ``[U, L, H]`` and its mask ``[U, L]``, computed once (until the behaviour texts
        change) in batches of ``text_batch_size``; ``None`` when not used (other modes, switched off,
        or a model whose layers do not reproduce its forward on the first users' texts).
        """
        cfg = self.config
        if not (self.tunes_text and cfg.text_mode == "top-k" and cfg.text_prefix_cache):
            return None
        if self._prefix is None:
            enc = self._text_model()
            users = torch.arange(len(self._user_text_list), device=self.device)
            ids, mask = self._user_tokens(users)
            probe = ids[:8], mask[:8]
            if not enc.prefix_matches(*probe):
                self._prefix = False
            else:
                step = cfg.text_batch_size
                states = torch.cat([enc.prefix_states(ids[s:s + step], mask[s:s + step])
                                    for s in range(0, len(users), step)])
                self._prefix = (states, mask)
        return self._prefix or None

    def _refresh_user_texts(self) -> None:
        """Re-encode every user's behaviour text with the current (fine-tuned) weights before scoring."""
        if self.tunes_text and self._text_stale:
            enc = self._text_model()
            prefix = self._user_prefix()
            if prefix is None:
                vec = enc.encode_all(self.tokenizer, self._user_text_list, batch_size=self.config.text_batch_size,
                                     max_length=self.config.text_max_length)
            else:
                vec = self._encode_from_prefix(prefix)
            vec[torch.tensor([t == "" for t in self._user_text_list], device=vec.device)] = 0.0
            self.context["user_text"] = vec.to(self.context["user_text"].dtype)
            self._text_stale = False

    def _encode_from_prefix(self, prefix: tuple[Tensor, Tensor]) -> Tensor:
        """``[U, H]``: every user's vector from the cached prefix states, in eval mode, no gradients."""
        enc, step = self.text_encoder, self.config.text_batch_size
        was_training = enc.training
        enc.eval()
        try:
            with torch.no_grad():
                users = torch.arange(prefix[0].shape[0], device=prefix[0].device)
                return torch.cat([enc.forward_from_prefix(*_rows(prefix, users[s:s + step]))
                                  for s in range(0, users.numel(), step)])
        finally:
            enc.train(was_training)

    def _encode(self, texts: list[str]) -> Tensor:
        """``[len(texts), H]`` embeddings through the disk cache (frozen weights only)."""
        enc = self._text_model()
        cfg = self.config

        def compute(batch: list[str]) -> Tensor:
            return enc.encode_all(self.tokenizer, batch, batch_size=cfg.text_batch_size,
                                  max_length=cfg.text_max_length, progress=cfg.progress).cpu()

        cache_dir = cfg.cache_dir if cfg.cache_dir is not None else os.environ.get(
            "KGREC_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "kgrec"))
        if not cache_dir:
            return compute(texts)
        key = model_key(cfg.text_model or default_text_model_dir(), cfg.text_max_length, "mean")
        return TextEmbeddingCache(os.path.join(cache_dir, "text")).get_or_compute(texts, key, compute)

    def _encode_texts(self, kg: KnowledgeGraph, split: Split) -> tuple[Tensor, Tensor, Tensor]:
        cfg = self.config
        S = cfg.text_segments
        # update(): the first items keep the text vectors of the model being updated (set by
        # kgrec.dynamics.update_hybrid as (item_seg [I0, S, H], mask [I0, S])); only the others are encoded
        reuse = self._reuse_item_text
        start = 0 if reuse is None else reuse[0].shape[0]
        segs = [segment_text(t, S) for t in item_texts(kg)[start:]]
        flat = [s for seg in segs for s in seg]
        emb = self._encode(flat) if flat else reuse[0].new_zeros(0, reuse[0].shape[-1])
        H = emb.shape[1]
        if reuse is not None and reuse[0].shape[-1] != H:
            raise KgrecError(f"the text model gives {H}-dimensional vectors but this model's item texts have "
                             f"{reuse[0].shape[-1]}: pass the text model it was trained with "
                             "(Recommender.load(..., text_model=DIR); a checkpoint never names it)")
        item_seg = torch.zeros(kg.num_items, S, H)
        mask = torch.zeros(kg.num_items, S, dtype=torch.bool)
        if reuse is not None:
            item_seg[:start], mask[:start] = reuse[0].cpu(), reuse[1].cpu()
        pos = 0
        for n, seg in enumerate(segs, start=start):
            item_seg[n, : len(seg)] = emb[pos:pos + len(seg)]
            mask[n, : len(seg)] = True
            pos += len(seg)
        self._user_text_list = user_texts(kg, split.train, max_items=cfg.max_history_text)
        self._prefix = None  # the behaviour texts changed: their frozen-layer states are recomputed
        user_vec = self._encode(self._user_text_list)
        empty = torch.tensor([t == "" for t in self._user_text_list])
        user_vec[empty] = 0.0  # a user with no history has no behaviour text
        return item_seg, mask, user_vec

    @torch.no_grad()
    def history_text_vector(self, items: Tensor, times: Tensor | None, labels: list[str]) -> Tensor | None:
        """The text-branch vector ``[d]`` (before its gate) of a user known only by ``items`` ``[n]``
        and ``times`` ``[n]`` (unix seconds or ``None``), exactly as the model computes it for a
        training user with that history: the behaviour text is rendered (titles from ``labels``,
        most recent first, relative times), encoded by the text model, and attends over the
        history items' KG vectors. ``None`` when the model has no text branch.
        """
        m = self.module
        if not m.use_text:
            return None
        n = items.numel()
        t = torch.full((n,), float("nan"), dtype=torch.float64) if times is None else times.double()
        hist = Interactions(torch.zeros(n, dtype=torch.long), items.cpu(), torch.ones(n), t)
        I = self.meta["num_items"]
        ids = [f"urn:kgrec:item:{i}" for i in range(I)]  # titles only: the rendering reads labels
        mini = KnowledgeGraph(Vocab(["urn:kgrec:user"], name="user"), Vocab(ids, sort=False, name="item"),
                              Vocab(ids, sort=False, name="entity"), Vocab([], name="relation"),
                              torch.empty(0, 3, dtype=torch.long), hist,
                              literals={i: {LABEL_PREDICATES[0]: [labels[i]]} for i in set(items.tolist())})
        text = user_texts(mini, hist, max_items=self.config.max_history_text)
        if self.tunes_text:  # fine-tuned weights: encode with them, never through the frozen-weights cache
            vec = self._text_model().encode_all(self.tokenizer, text, batch_size=1,
                                                max_length=self.config.text_max_length)
        else:
            vec = self._encode(text)
        vec = vec.to(self.device, torch.float32)
        h_items, h_mask, h_age = user_history(hist, 1, max_len=self.config.max_history)

        def item_views():  # the KG (or CF) view the user side attends over, and the text view
            parts: dict = {}
            m.eval()
            self.embed(parts=parts)
            return parts["item_ctx"].float(), parts["item_txt"].float()

        ctx, txt = self.derived("item_views", item_views)
        dev = ctx.device
        return m.user_text_vector(ctx, vec, h_items.to(dev), h_mask.to(dev), h_age.float().to(dev),
                                  item_txt=txt)[0]


def _rows(prefix: tuple[Tensor, Tensor], users: Tensor) -> tuple[Tensor, Tensor]:
    """These users' rows of the cached prefix states and mask, cut to their longest text."""
    states, mask = prefix[0][users], prefix[1][users]
    width = int(mask.sum(1).max()) if users.numel() else 1
    return states[:, :width], mask[:, :width]
