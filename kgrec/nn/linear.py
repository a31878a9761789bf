"""Closed-form item-item models: MostPop, ItemKNN, EASE.

They are fitted from a user x item matrix (binary, or decay-weighted: :mod:`kgrec.dynamics`) and score a batch of users from their history rows,
so full ranking is one matrix product. Fitted weights are buffers, saved like any other module.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["MostPop", "ItemKNN", "EASE"]


def _as_csr(x):
    import scipy.sparse as sp

    return sp.csr_matrix(x, dtype=np.float32)


class MostPop(nn.Module):
    """Scores every item by its number of training interactions.

    Args:
        num_items: catalogue size.
    """

    def __init__(self, num_items: int):
        super().__init__()
        self.num_items = num_items
        self.register_buffer("popularity", torch.zeros(num_items))

    def reset_parameters(self) -> None:
        self.popularity.zero_()

    @torch.no_grad()
    def fit(self, matrix) -> "MostPop":
        """Args: matrix: ``[U, I]`` binary scipy sparse matrix of training interactions."""
        self.popularity.copy_(torch.as_tensor(np.asarray(_as_csr(matrix).sum(0)).ravel()))
        return self

    def forward(self, history: Tensor) -> Tensor:
        """history ``[B, I]`` (ignored except for its batch size) -> scores ``[B, I]``."""
        return self.popularity.unsqueeze(0).expand(history.shape[0], -1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_items={self.num_items})"


class ItemKNN(nn.Module):
    r"""Item-based k-nearest-neighbours with shrunk cosine similarity (Sarwar et al., WWW 2001).

    :math:`s_{ij} = \frac{x_i^\top x_j}{\|x_i\| \|x_j\| + h}`, keeping each item's ``k`` most similar
    neighbours; a user's score for item ``j`` is :math:`\sum_{i \in H_u} s_{ij}`.

    Args:
        num_items: catalogue size.
        k: neighbours kept per item (default ``100``).
        shrink: shrinkage term ``h`` damping similarities with little support (default ``10.0``).
    """

    def __init__(self, num_items: int, k: int = 100, shrink: float = 10.0):
        super().__init__()
        if k <= 0:
            raise ValueError(f"'k' must be a positive integer in 'ItemKNN' (got {k})")
        self.num_items = num_items
        self.k = k
        self.shrink = shrink
        self.register_buffer("sim_index", torch.zeros(2, 0, dtype=torch.long))
        self.register_buffer("sim_value", torch.zeros(0))

    def reset_parameters(self) -> None:
        self.sim_index = torch.zeros(2, 0, dtype=torch.long)
        self.sim_value = torch.zeros(0)

    @torch.no_grad()
    def fit(self, matrix) -> "ItemKNN":
        x = _as_csr(matrix)
        co = (x.T @ x).toarray()  # [I, I]
        norm = np.sqrt(np.diag(co))
        sim = co / (np.outer(norm, norm) + self.shrink + 1e-12)
        np.fill_diagonal(sim, 0.0)
        k = min(self.k, self.num_items - 1) if self.num_items > 1 else 0
        # keep the k largest per column j (neighbours i of target j)
        top = np.argpartition(-sim, kth=max(k - 1, 0), axis=0)[:k] if k > 0 else np.zeros((0, self.num_items), int)
        cols = np.broadcast_to(np.arange(self.num_items), top.shape)
        vals = sim[top, cols]
        keep = vals > 0
        self.sim_index = torch.as_tensor(np.stack([top[keep], cols[keep]]), dtype=torch.long)
        self.sim_value = torch.as_tensor(vals[keep], dtype=torch.float32)
        return self

    def forward(self, history: Tensor) -> Tensor:
        """history ``[B, I]`` binary -> scores ``[B, I]``."""
        w = torch.sparse_coo_tensor(self.sim_index, self.sim_value, (self.num_items, self.num_items),
                                    device=history.device, check_invariants=False)
        return torch.sparse.mm(w.t(), history.t()).t()  # (W^T H^T)^T = H W

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_items={self.num_items}, k={self.k}, shrink={self.shrink})"


class EASE(nn.Module):
    r"""Embarrassingly Shallow Autoencoder (Steck, WWW 2019).

    :math:`B = I - P \,\mathrm{diagMat}(1 / \mathrm{diag}(P))`, :math:`P = (X^\top X + \lambda I)^{-1}`;
    scores are :math:`X_u B`.

    Args:
        num_items: catalogue size.
        reg: the L2 weight :math:`\lambda` (default ``250.0``, RecBole's default; tune on validation).
    """

    def __init__(self, num_items: int, reg: float = 250.0):
        super().__init__()
        self.num_items = num_items
        self.reg = reg
        self.register_buffer("weight", torch.zeros(num_items, num_items))

    def reset_parameters(self) -> None:
        self.weight.zero_()

    @torch.no_grad()
    def fit(self, matrix) -> "EASE":
        x = _as_csr(matrix)
        # float64 is exact enough to match RecBole digit for digit; beyond a few thousand items the
        # O(I^3) inverse dominates and float32 halves it (the reg term keeps G well conditioned)
        dtype = torch.float64 if self.num_items <= 4000 else torch.float32
        g = torch.as_tensor((x.T @ x).toarray(), dtype=dtype)
        g += self.reg * torch.eye(self.num_items, dtype=dtype)
        p = torch.linalg.inv(g)
        b = -p / torch.diagonal(p).unsqueeze(0)
        b.fill_diagonal_(0.0)
        self.weight.copy_(b.float())
        return self

    def forward(self, history: Tensor) -> Tensor:
        """history ``[B, I]`` -> scores ``[B, I]``."""
        return history @ self.weight

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_items={self.num_items}, reg={self.reg})"
