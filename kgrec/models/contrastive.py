"""XSimGCL's contrastive regulariser of a LightGCN, shared by the ``lightgcn`` peer and the hybrid's CF
branch, so that the peer row and the hybrid's CF stage train the very same loss.

XSimGCL (Yu et al., "XSimGCL: Towards Extremely Simple Graph Contrastive Learning for
Recommendation", TKDE 2023): one propagation in which every layer's output is perturbed by a small
random vector in its own orthant; the ranking loss is taken on the perturbed aggregate, and an
InfoNCE loss pulls each batch user's (and positive item's) aggregate towards its own perturbed
layer-``l`` output and away from the other batch rows'. The uniformity it enforces spreads the
embeddings, which is what lifts LightGCN on sparse, long-tailed data. Scoring uses the clean
propagation. One difference from the paper's code: the aggregate keeps LightGCN's layer 0 (the
scoring aggregate), where XSimGCL averages layers ``1..L``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kgrec.errors import KgrecError
from kgrec.nn.cf import LightGCNEmbed
from kgrec.nn.losses import info_nce
from kgrec.nn.sparse import SparseOperator

__all__ = ["check_contrastive", "contrastive_batch_loss"]


def check_contrastive(owner: str, prefix: str, weight, noise, temperature, layer, num_layers: int) -> None:
    """Refuse bad settings of the regulariser, naming the argument (``<prefix>weight`` ...)."""
    def number(name, value, low, strict):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
        if not ok or value < low or (strict and value == low):
            raise KgrecError(f"{owner}: '{prefix}{name}' must be a number {'>' if strict else '>='} {low} "
                             f"(got {value!r})")
    number("weight", weight, 0, False)
    number("noise", noise, 0, False)
    number("temperature", temperature, 0, True)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= num_layers:
        raise KgrecError(f"{owner}: '{prefix}layer' must be a layer of the LightGCN, 1..{num_layers} "
                         f"(got {layer!r})")


def contrastive_batch_loss(est, cf: LightGCNEmbed, adj: SparseOperator, users: Tensor, pos: Tensor, neg: Tensor,
                           weight: float, noise: float, temperature: float, layer: int,
                           scale: Tensor | float = 1.0, item_scale: Tensor | None = None) -> Tensor:
    """A training batch's loss with the regulariser: ``est``'s ranking loss and penalty on the perturbed
    propagation, plus ``weight`` x (InfoNCE of the batch's distinct users + of its distinct positives).

    ``scale`` multiplies the user vectors and ``item_scale`` ``[I, 1]`` the item vectors of the ranking
    loss (the hybrid's CF gate, and its 0 for items never trained), so the loss is the one of the
    vectors the model scores with.
    """
    u_all, i_all, u_view, i_view = cf.forward_perturbed(adj, noise, layer)
    i_rank = i_all if item_scale is None else i_all * item_scale
    loss = est.ranking_loss(u_all[users] * scale, i_rank[pos], i_rank[neg]) + est.penalty(users, pos, neg)
    if weight == 0:
        return loss
    uu, ii = torch.unique(users), torch.unique(pos)
    cl = info_nce(u_all[uu], u_view[uu], temperature) + info_nce(i_all[ii], i_view[ii], temperature)
    return loss + weight * cl
