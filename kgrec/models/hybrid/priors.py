"""The hybrid's closed-form priors (EASE and sequential rules) and their calibration on validation."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor
from tqdm.auto import tqdm

from kgrec.data.splits import Split
from kgrec.evaluation.evaluator import Evaluator
from kgrec.models.priors_select import (
    PriorSearch,
    candidates,
    pinned_rule_params,
    pinned_weight,
    positive,
    score_cache,
)
from kgrec.nn.linear import EASE, SequentialRules, recency_weights, rows_times, time_steps_back

__all__ = ["HybridPriors"]


class HybridPriors:
    """The hybrid's fixed CF priors (a mixin of :class:`~kgrec.models.hybrid.HybridEstimator`): EASE
    and sequential rules fitted in closed form on the training interactions, their weights chosen on
    validation NDCG@10 after the neural branches are trained.
    """

    def _prepare_priors(self) -> None:
        """The closed-form priors' candidates, from the training interactions: one EASE matrix per
        ``ease_reg`` candidate, and the rules' grids when the data has times (checked even when not).
        """
        cfg, I = self.config, self.meta["num_items"]
        if cfg.ease_prior and cfg.use_cf:
            regs = cfg.priors.ease_reg
            csr = self.train_matrix()  # decay-weighted when 'half_life_days' is set
            self._ease_candidates = {float(r): EASE(I, reg=float(r)).fit(csr).weight for r in regs}
            self.context["ease_weight"] = next(iter(self._ease_candidates.values()))
        self._seq_candidates = None
        if cfg.seq_prior and cfg.use_cf:  # settings checked even when the data has no times
            candidates = (cfg.priors.seq_window, cfg.priors.seq_recency, cfg.priors.seq_weight)
            if bool((~torch.isnan(self.context["hist_time"])).any()):
                self._seq_candidates = candidates

    def _pinned_priors(self) -> tuple[bool, bool]:
        """Whether EASE's and the rules' settings are pinned (one reg and one weight for EASE; one window, one
        recency and one weight above 0 for the rules), as :meth:`chosen_params` writes them for a
        refit on all interactions: without a validation part those are applied as given
        (:func:`kgrec.models.priors_select.pinned_weight`); any other grid is a choice that needs
        validation, and the priors stay off.
        """
        cfg = self.config
        ease = "ease_weight" in self.context and pinned_weight(
            cfg.priors.ease_weight, tuple(getattr(self, "_ease_candidates", None) or (None,))) is not None
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
        cfg = {**dataclasses.asdict(cls.Config()), **cls.Config.upgrade(dict(params), warn=False)}
        if cfg["use_cf"] is False:
            return 1
        search, n = PriorSearch.coerce(cfg["priors"]), 1
        if cfg["ease_prior"]:
            n += candidates(search.ease_reg) * positive(search.ease_weight)
        if cfg["seq_prior"]:
            n += candidates(search.seq_window) * candidates(search.seq_recency) * positive(search.seq_weight)
        return n

    def chosen_params(self) -> dict:
        """The prior settings validation chose (EASE's reg and relative weight; the rules' window,
        recency and relative weight) pinned in ``priors`` (one candidate each; weight 0 stays a
        candidate of the rules), the rest of the search as it was.
        """
        info, pinned = self.fit_info, {}
        if "prior_relative_weight" in info:
            reg = info["prior_reg"] if info["prior_reg"] is not None else self.config.priors.ease_reg[0]
            pinned.update(ease_reg=(float(reg),), ease_weight=(float(info["prior_relative_weight"]),))
        if "seq_relative_weight" in info:
            pinned.update(pinned_rule_params(info))
        return {"priors": dataclasses.asdict(self.config.priors.replace(**pinned))} if pinned else {}

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
            scale = float(neural_std / rows_times(hist[sample], weight).std().clamp(min=1e-12))
            ease = None
            if evaluator:
                ease = self._score_part(lambda u, weight=weight: rows_times(hist[u.to(hist.device)], weight))
            for g in self.config.priors.ease_weight:
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
                sample_std = float(rows_times(self.entry_rows(sample, recency), rules).std())
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
                                                rows_times(self.entry_rows(u, recency), rules))

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
