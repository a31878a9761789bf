"""Ranking losses: the model returns scores, the trainer combines them with a loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bpr_loss", "sampled_softmax_loss", "l2_reg"]


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    r"""Bayesian personalised ranking: :math:`-\log \sigma(s^+ - s^-)`, averaged.

    Shapes: pos ``[B]``, neg ``[B]`` or ``[B, n]`` (each negative against its positive) -> ``[]``.
    """
    if neg.dim() == 2:
        pos = pos.unsqueeze(-1)
    return -F.logsigmoid(pos - neg).mean()


def sampled_softmax_loss(pos: Tensor, neg: Tensor, temperature: float = 1.0) -> Tensor:
    """Softmax cross-entropy of the positive against ``n`` sampled negatives.

    Shapes: pos ``[B]``, neg ``[B, n]`` -> ``[]``.
    """
    logits = torch.cat([pos.unsqueeze(-1), neg], dim=-1) / temperature
    return F.cross_entropy(logits, torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device))


def l2_reg(*tensors: Tensor) -> Tensor:
    """Half squared L2 norm summed over rows, averaged over the batch (LightGCN's regulariser)."""
    b = tensors[0].shape[0]
    return sum(t.pow(2).sum() for t in tensors) / (2 * b)
