"""Scores for a user who is not in the model, from interactions given at call time (no refit).

* closed-form models (EASE, ItemKNN, MostPop) score the history row directly, exactly as they score
  a training user (decay-weighted when the model has a half-life);
* embedding models (BPR-MF, LightGCN, the hybrid's neural branches) fold the user in: the item
  vectors stay fixed and a fresh user vector starts at ``u0``, the weighted mean over the history
  items of the mean vector of the training users who took that item (a user who took these items
  resembles those users), then takes ``steps`` Adam steps on the full-softmax likelihood of the
  history items with an L2 pull towards ``u0`` (over the whole catalogue, so no sampling noise);
  the hybrid's EASE prior adds its exact history-row part, and its sequential rules their exact
  recency-row part when the history's times are given.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kgrec.errors import KgrecError

__all__ = ["history_weights", "score_history", "fold_in"]


def history_weights(times: Tensor | None, n: int, half_life_days: float | None, decay_from: str = "cut") -> Tensor:
    """``[n]`` weights of a given history: decay from the latest given time when the model decays."""
    if times is None or not half_life_days:
        return torch.ones(n)
    from kgrec.data.decay import decay_weights

    return decay_weights(times.double(), half_life_days)  # the reference is the user's latest given time


def fold_in(item_vec: Tensor, items: Tensor, weights: Tensor, u0: Tensor, steps: int = 20, lr: float = 0.01,
            reg: float = 1.0, offset: Tensor | None = None) -> Tensor:
    """A user vector ``[d]`` for history ``items`` ``[n]`` (weights ``[n]``) with ``item_vec`` ``[I, d]``
    fixed, starting from and pulled towards ``u0`` ``[d]``; ``offset`` ``[I]``: fixed scores added
    to the logits (parts of the user vector known without fitting)."""
    q = item_vec.detach().float()
    w = (weights / weights.sum()).to(q)
    u0 = u0.detach().float()
    u = u0.clone().requires_grad_(True)
    opt = torch.optim.Adam([u], lr=lr)
    for _ in range(steps):
        logits = q @ u if offset is None else q @ u + offset
        logp = torch.log_softmax(logits, dim=0)  # [I]
        loss = -(w * logp[items]).sum() + reg * ((u - u0) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return u.detach()


@torch.no_grad()
def _co_user_mean(est, u_vec: Tensor, i_vec: Tensor, items: Tensor, weights: Tensor) -> Tensor:
    """``[d]``: weighted mean over history items of the mean vector of the training users who took
    each; items nobody took in training contribute their own vector."""
    indptr, indices = est.context["hist_indptr"].cpu(), est.context["hist_indices"].cpu()
    owner = torch.repeat_interleave(torch.arange(indptr.numel() - 1), indptr[1:] - indptr[:-1])
    out = torch.zeros(u_vec.shape[1])
    for item, w in zip(items.tolist(), weights.tolist()):
        takers = owner[indices == item]
        out += w * (u_vec[takers].mean(0) if takers.numel() else i_vec[item])
    return out / float(weights.sum())


@torch.no_grad()
def _row(est, items: Tensor, weights: Tensor) -> Tensor:
    row = torch.zeros(1, est.meta["num_items"], device=est.device)
    row[0].index_put_((items.to(est.device),), weights.to(est.device), accumulate=False)
    return row


def score_history(est, items: Tensor, weights: Tensor, times: Tensor | None = None,
                  labels: list[str] | None = None) -> Tensor:
    """Scores ``[I]`` of every item for a user with history ``items`` ``[n]`` (weights ``[n]``);
    the hybrid's text branch also reads ``times`` ``[n]`` and the item ``labels`` (titles)."""
    if items.numel() == 0:
        raise KgrecError("'items' must name at least one item the new user interacted with (got none)")
    if not torch.isfinite(weights).all() or float(weights.sum()) <= 0:
        raise KgrecError("the history's weights must be finite with a positive sum: check 'times'")
    if not est.trainable:
        with torch.no_grad():
            return est.module(_row(est, items, weights))[0].float().cpu()
    if est._frozen is None:
        est.freeze()
    u_vec, i_vec = (t.cpu() for t in est._frozen)
    module = est.module
    prior = est.name == "hybrid" and "ease_weight" in est.context and float(module.prior_gate) != 0.0
    d = 3 * module.dim if est.name == "hybrid" else i_vec.shape[1]  # the neural part (priors are exact)
    text = None
    if est.name == "hybrid" and labels is not None:
        t_u = est.history_text_vector(items, times, labels)
        if t_u is not None:
            s = module.branch_slices()["text"]
            text = i_vec[:, s] @ (module.branch_weights()[2].cpu() * t_u.cpu())
            d = s.start  # fold in the CF and KG parts only
    with torch.enable_grad():
        u = fold_in(i_vec[:, :d], items, weights, _co_user_mean(est, u_vec[:, :d], i_vec[:, :d], items, weights),
                    offset=text)
    scores = i_vec[:, :d] @ u if text is None else i_vec[:, :d] @ u + text
    if prior:
        scores = scores + float(module.prior_gate) * (_row(est, items, weights) @ est.context["ease_weight"])[0].cpu()
    if est.name == "hybrid" and "seq_weight" in est.context and float(module.seq_gate) != 0.0 and times is not None:
        from kgrec.nn.linear import recency_weights, time_steps_back

        steps = time_steps_back(torch.tensor([0, items.numel()]), times.double())
        recency = recency_weights(steps, float(est.context["seq_recency"][0]))
        scores = scores + float(module.seq_gate) * (_row(est, items, recency) @ est.context["seq_weight"])[0].cpu()
    return scores.float()
