"""Choosing the weight of a fixed closed-form score term added to a model, on validation NDCG@10.

One procedure, shared by the models that add closed-form priors to a base score (``ease+rules`` in
:mod:`kgrec.models.peers`; the same search the hybrid runs for its EASE prior on top of its neural
branches and for its sequential rules on top of both, :meth:`HybridEstimator._calibrate_prior`):

* the base score alone (weight 0) is always the first trial;
* each candidate term ``added`` is tried with the absolute weights
  ``a = g * std(base scores) / std(added scores)`` for every ``g > 0`` of a grid, the two standard
  deviations taken over a fixed sample of users (every ``U // 256``-th), so the grid reads in units
  of the two score scales whatever the data; a candidate whose sample scores are constant is skipped;
* the best trial by validation NDCG@10 wins; ties go to the smaller ``g`` (so weight 0 wins a tie),
  then to the earlier trial.

The test part is never read: the caller passes an :class:`kgrec.evaluation.evaluator.Evaluator` built with
``part="valid"``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from kgrec.errors import KgrecError

__all__ = ["PriorSearch", "std_sample", "Selection", "select_added_weight", "pinned_weight", "positive_tuple"]

ScoreFn = Callable[[Tensor], Tensor]


def std_sample(num_users: int, device=None) -> Tensor:
    """The users whose scores set the scale of a weight: every ``max(1, U // 256)``-th user id."""
    users = torch.arange(num_users, device=device)
    return users[:: max(1, num_users // 256)]


@dataclass
class Selection:
    """The outcome of :func:`select_added_weight`.

    Attributes:
        ndcg: the chosen trial's validation NDCG@10.
        relative: the chosen ``g`` (0 = the base alone).
        key: the chosen candidate's key (``None`` with ``g = 0``).
        weight: the chosen absolute weight ``a`` (0 with ``g = 0``).
        trials: every trial as ``(ndcg, g, key, a)``, the base alone first.
        evaluations: how many validation evaluations were made (the base's counts only when it was
            not given).
    """

    ndcg: float
    relative: float
    key: Hashable | None
    weight: float
    trials: list = field(default_factory=list)
    evaluations: int = 0


#: the most bytes of one score matrix ``[U, I]`` the validation selection keeps (beyond it, each
#: validation pass recomputes its rows)
SCORE_CACHE_BYTES = 512 * 1024**2


def score_cache(rows: ScoreFn, num_users: int | None, num_items: int | None, device=None,
                max_bytes: int = SCORE_CACHE_BYTES) -> ScoreFn:
    """``rows(users) -> [B, I]`` as a function that computes every user's rows once, when ``[U, I]``
    float32 fits ``max_bytes``; else ``rows`` itself (``num_users=None``: unknown sizes, no cache).

    A validation selection scores the validation users once per trial; its trials differ only in
    the weights of fixed score terms, so each term is computed once and a trial is a weighted sum.
    """
    if num_users is None or num_items is None or num_users * num_items * 4 > max_bytes:
        return rows
    full = rows(torch.arange(num_users, device=device))
    return lambda users: full[users.to(full.device)]


@torch.no_grad()
def select_added_weight(evaluator: Callable[[ScoreFn], dict], base: ScoreFn,
                        candidates: Iterable[tuple[Hashable, ScoreFn]], grid: Iterable[float], sample: Tensor,
                        base_ndcg: float | None = None, shape: tuple[int, int] | None = None) -> Selection:
    """Choose which candidate term to add to ``base``, and with what weight, on validation NDCG@10.

    Args:
        evaluator: ``evaluator(score_fn) -> {"ndcg@10": ...}`` (a validation
            :class:`kgrec.evaluation.evaluator.Evaluator` with ``10`` among its ``ks``).
        base: ``base(users [B]) -> [B, I]`` the scores the term is added to.
        candidates: ``(key, added)`` pairs, ``added(users [B]) -> [B, I]``; may be a generator, so
            that only one candidate's matrices are held at a time.
        grid: the relative weights ``g`` (entries ``<= 0`` are skipped: weight 0 is always tried).
        sample: ``[S]`` user ids whose scores give the two standard deviations (:func:`std_sample`).
        base_ndcg: the base's validation NDCG@10 when already known (saves one evaluation).
        shape: ``(num_users, num_items)``: ``base`` and each candidate are computed once for all
            users (:func:`score_cache`) instead of once per trial weight; ``None``: per call.

    Returns:
        a :class:`Selection`.
    """
    evaluations = 0
    if base_ndcg is None:
        base_ndcg = float(evaluator(base)["ndcg@10"])
        evaluations += 1
    grid = [float(g) for g in grid if g > 0]
    trials = [(float(base_ndcg), 0.0, None, 0.0)]
    base_std = float(base(sample).std()) if grid else 0.0
    U, I = shape if shape is not None else (None, None)
    if grid:
        base = score_cache(base, U, I, sample.device)
    for key, added in candidates:
        if not grid:
            break
        added_std = float(added(sample).std())
        if not added_std > 0:
            continue
        added = score_cache(added, U, I, sample.device)
        for g in grid:
            a = g * base_std / added_std

            def score(users, a=a, added=added):
                return base(users) + a * added(users)

            trials.append((float(evaluator(score)["ndcg@10"]), g, key, a))
            evaluations += 1
    best = max(trials, key=lambda t: (t[0], -t[1]))  # max keeps the first of equal keys
    return Selection(best[0], best[1], best[2], best[3], trials, evaluations)


def pinned_rule_params(info: dict) -> dict:
    """The sequential rules' chosen (window, recency, relative weight) in ``info`` as one-candidate
    fields of :class:`PriorSearch` for a refit (weight 0 stays a candidate); only ``seq_weight=(0,)``
    when they were left off.
    Shared by the hybrid's and ``ease+rules``' :meth:`~kgrec.models.base.Estimator.chosen_params`.
    """
    g = float(info.get("seq_relative_weight") or 0.0)
    if g > 0:
        return {"seq_window": (float(info["seq_window"]),), "seq_recency": (float(info["seq_recency"]),),
                "seq_weight": (0.0, g)}
    return {"seq_weight": (0.0,)}


def pinned_weight(grid: Iterable[float], *candidates: tuple) -> float | None:
    """The one relative weight a fit without a validation part applies: when every candidate list
    in ``candidates`` (e.g. the windows, the recencies) holds one value and ``grid`` one weight
    above 0 (besides any 0s), that weight, as :func:`pinned_rule_params` and the hybrid's
    ``chosen_params`` write them for a refit on all interactions; ``0.0`` for a grid of zeros;
    ``None`` (nothing to apply: a real choice, which needs validation) otherwise.
    """
    if any(len(c) != 1 for c in candidates):
        return None
    positive = [float(g) for g in grid if g > 0]
    return positive[0] if len(positive) == 1 else (0.0 if not positive else None)


def candidates(value) -> int:
    """How many candidates a config field holds (a scalar is one)."""
    return len(value) if isinstance(value, (list, tuple)) else 1


def positive(grid) -> int:
    """Candidates of a weight grid above 0 (weight 0, the model without the addition, is scored once)."""
    return sum(1 for g in (grid if isinstance(grid, (list, tuple)) else (grid,)) if g > 0)


def positive_tuple(name: str, value, zero: bool = False) -> tuple[float, ...]:
    """``value`` (a number or a list of them) as a tuple of floats, each positive (or 0 with ``zero``)."""
    values = value if isinstance(value, (list, tuple)) else (value,)
    ok = bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
                              and (v >= 0 if zero else v > 0) for v in values)
    if not ok:
        kind = "non-negative" if zero else "positive"
        raise KgrecError(f"'{name}' must be a {kind} number or a list of them (got {value!r})")
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class PriorSearch:
    """The search space of the closed-form priors: the candidates a fit chooses among on validation
    NDCG@10 (``hybrid`` and ``ease+rules``), kept apart from the models' hyper-parameters.

    The priors are fitted in closed form after (the hybrid) or instead of (``ease+rules``) training;
    what is searched is how they are made and mixed in. Each field holds one value or a tuple of
    candidates; one value per field (and one weight above 0) pins the choice, which is how
    ``chosen_params`` hands a fit's choice to a refit without validation. Every candidate
    combination counts against a benchmark's tuning budget (``internal_trials``).

    Args:
        ease_reg: EASE's L2 weight candidates (default ``(250, 500, 1000)``).
        ease_weight: EASE's weight candidates in units of (neural score std / EASE score std); the
            hybrid only (``ease+rules`` is EASE plus the rules) (default ``(0, 0.25, ..., 8)``).
        seq_window: the sequential rules' step decays ``w`` (default ``(3, 10, 30)``).
        seq_recency: ``tau`` of the users' recency weights ``exp(-steps back / tau)`` (default ``(1, 3)``).
        seq_weight: the rules' weight candidates, in units of (score std before them / rule score std);
            0 (the model without them) is a candidate when listed (default ``(0, 0.25, 0.5, 1, 2, 4)``).
    """

    ease_reg: tuple = (250.0, 500.0, 1000.0)
    ease_weight: tuple = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)
    seq_window: tuple = (3.0, 10.0, 30.0)
    seq_recency: tuple = (1.0, 3.0)
    seq_weight: tuple = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # numbers or lists of them, as tuples of floats
            zero = f.name in ("ease_weight", "seq_weight")
            object.__setattr__(self, f.name, positive_tuple(f"priors.{f.name}", getattr(self, f.name), zero=zero))

    @classmethod
    def coerce(cls, value) -> "PriorSearch":
        """``value`` as a :class:`PriorSearch`: one already, or a dict of its fields (``config.json``,
        a benchmark's search space); a :class:`~kgrec.errors.KgrecError` names an unknown field.
        """
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise KgrecError(f"'priors' must be a PriorSearch or a dict of its fields (got {value!r:.100})")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise KgrecError(f"'priors': unknown field {unknown[0]!r} (accepted: {', '.join(names)})")
        return cls(**value)

    def replace(self, **changes) -> "PriorSearch":
        """A copy with ``changes`` (e.g. a fit's choices pinned for a refit)."""
        return dataclasses.replace(self, **changes)


#: the flat settings of kgrec 0.1 that now live in :class:`PriorSearch` (old name -> field)
LEGACY_PRIOR_NAMES = {"ease_reg": "ease_reg", "prior_grid": "ease_weight", "seq_window": "seq_window",
                      "seq_recency": "seq_recency", "seq_grid": "seq_weight"}


def lift_legacy_priors(params: dict, defaults: PriorSearch, warn: bool) -> dict:
    """``params`` with kgrec 0.1's flat prior settings (``ease_reg=``, ``prior_grid=``, ``seq_grid=``...)
    moved into ``priors`` (their unnamed fields from ``priors`` if given, else ``defaults``). Saved
    models of 0.1 load through this; an API call with them warns (:class:`DeprecationWarning`,
    accepted for one release).
    """
    legacy = {k: params[k] for k in LEGACY_PRIOR_NAMES if k in params}
    if not legacy:
        return params
    if warn:
        warnings.warn(f"{', '.join(sorted(legacy))}: flat prior settings are deprecated; pass "
                      "priors=PriorSearch(...) or priors={...} (fields: "
                      f"{', '.join(LEGACY_PRIOR_NAMES[k] for k in sorted(legacy))})", DeprecationWarning, stacklevel=4)
    base = PriorSearch.coerce(params.get("priors", defaults))
    out = {k: v for k, v in params.items() if k not in LEGACY_PRIOR_NAMES}
    out["priors"] = base.replace(**{LEGACY_PRIOR_NAMES[k]: v for k, v in legacy.items()})
    return out
