"""Ranking losses: the model returns scores, the trainer combines them with a loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bpr_loss", "sampled_softmax_loss", "l2_reg", "info_nce"]


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


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    r"""InfoNCE between two views of the same rows, the other rows as negatives (SimGCL / XSimGCL):
    :math:`-\frac1B \sum_k \log \frac{\exp(\cos(a_k, b_k)/\tau)}{\sum_j \exp(\cos(a_k, b_j)/\tau)}`.

    Shapes: a, b ``[B, d]`` -> ``[]``.
    """
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.t() / temperature
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))
