"""Time-decay weights of interactions (interest dynamics at the data level).

An interaction of age :math:`a` days before the reference time weighs :math:`w = 2^{-a / h}` for a
half-life :math:`h` (``half_life_days``): 1 at the reference, 1/2 at one half-life, 1/4 at two.
The reference is the training cut (the latest training interaction, ``decay_from="cut"``) or each
user's own latest interaction (``decay_from="user"``: only the order within a user's history counts,
which suits per-user temporal splits where users stop at very different dates).

The closed-form models (MostPop, ItemKNN, EASE) fit on the decay-weighted user x item matrix and
score decay-weighted history rows; the pairwise trainer draws positive pairs with probability
proportional to their weight. Seen-item masking always uses the binary history.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from kgrec.errors import KgrecError

__all__ = ["DAY", "DECAY_FROM", "decay_weights", "check_decay", "latest_pair_times", "history_weights"]

DAY = 86400.0
DECAY_FROM = ("cut", "user")


def check_decay(half_life_days, decay_from: str = "cut") -> float | None:
    """The half-life as a positive float, or ``None`` when decay is off (``None`` or ``0``)."""
    if half_life_days is None or (isinstance(half_life_days, (int, float)) and not isinstance(half_life_days, bool)
                                  and half_life_days == 0):
        h = None
    elif isinstance(half_life_days, bool) or not isinstance(half_life_days, (int, float)) \
            or not math.isfinite(half_life_days) or half_life_days < 0:
        raise KgrecError(f"'half_life_days' must be a positive number of days, or None/0 for no decay "
                         f"(got {half_life_days!r})")
    else:
        h = float(half_life_days)
    if decay_from not in DECAY_FROM:
        raise KgrecError(f"'decay_from' must be one of {', '.join(DECAY_FROM)} (got {decay_from!r})")
    return h


def decay_weights(time: Tensor, half_life_days: float | None, user: Tensor | None = None,
                  reference: float | None = None, decay_from: str = "cut") -> Tensor:
    """Weights ``2^(-age / half_life)`` of interactions, ``age`` in days before the reference.

    Args:
        time: ``[N]`` unix seconds (``nan`` = unknown: weight 1).
        half_life_days: the half-life; ``None``/``0`` gives all ones.
        user: ``[N]`` user ids, needed for ``decay_from="user"``.
        reference: the reference time of ``"cut"`` (default: the latest known ``time``).
        decay_from: ``"cut"`` (one reference) or ``"user"`` (each user's latest interaction).

    Returns:
        ``[N]`` float32 weights in ``[0, 1]``; interactions after the reference weigh 1.
    """
    h = check_decay(half_life_days, decay_from)
    n = time.numel()
    if h is None or n == 0:
        return torch.ones(n)
    t = time.double()
    known = ~torch.isnan(t)
    if not bool(known.any()):
        return torch.ones(n)
    if decay_from == "user":
        if user is None:
            raise KgrecError("'user' ids are needed for decay_from='user'")
        ref = torch.full((int(user.max()) + 1,), -math.inf, dtype=torch.float64)
        ref = ref.scatter_reduce(0, user[known], t[known], reduce="amax")[user]
    else:
        ref = torch.full_like(t, float(t[known].max()) if reference is None else float(reference))
    age = ((ref - t) / DAY).clamp(min=0.0)
    w = torch.exp2(-age / h)
    return torch.where(known, w, torch.ones_like(w)).float()


def latest_pair_times(user: Tensor, item: Tensor, time: Tensor, num_items: int) -> Tensor:
    """The latest time of each distinct (user, item) pair, in the order of :func:`kgrec.evaluation.rank.seen_csr`
    (sorted by user, then item). Shapes: ``[N]`` each -> ``[P]`` float64, ``nan`` where unknown.
    """
    if user.numel() == 0:
        return torch.empty(0, dtype=torch.float64)
    key = user.long() * num_items + item.long()
    uniq, inv = torch.unique(key, return_inverse=True)
    t = time.double().nan_to_num(nan=-math.inf)
    out = torch.full((uniq.numel(),), -math.inf, dtype=torch.float64).scatter_reduce(0, inv, t, reduce="amax")
    return torch.where(torch.isinf(out), torch.full_like(out, math.nan), out)


def history_weights(times: Tensor | None, n: int, half_life_days: float | None) -> Tensor:
    """``[n]`` weights of a history given at call time (an inductive user): decayed from the
    history's own latest time when the model decays, else all 1.
    """
    if times is None or not half_life_days:
        return torch.ones(n)
    return decay_weights(times.double(), half_life_days)
