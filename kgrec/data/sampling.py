"""Negative sampling for pairwise training."""

from __future__ import annotations

import numpy as np
import torch

from kgrec.data.graph import Interactions

__all__ = ["NegativeSampler", "BlockNegativeSampler"]


class NegativeSampler:
    """Uniform negatives among the items seen in training that the user has not interacted with.

    Items with no training interaction are never drawn: a cold item (known only by its KG and
    text) would otherwise be pushed down for every user, teaching the model that items which look
    like it are bad, exactly what cold-start must avoid. Rejection sampling against a sorted array
    of ``user * num_items + item`` keys: exact, and fast when users have seen a small share of the
    catalogue.

    Args:
        train: training interactions.
        num_items: catalogue size.
        seed: generator seed.
    """

    def __init__(self, train: Interactions, num_items: int, seed: int = 0):
        self.num_items = num_items
        self.keys = np.unique(train.user.numpy() * num_items + train.item.numpy())
        self.pool = np.unique(train.item.numpy())
        self.rng = np.random.default_rng(seed)

    def _seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        k = users * self.num_items + items
        pos = np.searchsorted(self.keys, k)
        pos[pos == len(self.keys)] = 0
        return self.keys[pos] == k

    def sample(self, users: torch.Tensor, n: int = 1, max_tries: int = 20) -> torch.Tensor:
        """Shapes: users ``[B]`` -> negatives ``[B, n]`` (``[B]`` when ``n == 1``)."""
        u = np.repeat(users.numpy(), n)
        items = self.pool[self.rng.integers(0, len(self.pool), size=u.shape[0])]
        for _ in range(max_tries):
            bad = self._seen(u, items)
            if not bad.any():
                break
            items[bad] = self.pool[self.rng.integers(0, len(self.pool), size=int(bad.sum()))]
        out = torch.as_tensor(items, dtype=torch.long).view(-1, n)
        return out[:, 0] if n == 1 else out


class BlockNegativeSampler:
    """Negatives drawn per block of users, each block from the items of its own training interactions.

    For the virtual users of a scenario model (block ``b`` = users ``[b * block_size, (b + 1) * block_size)``
    = one scenario): a comedy the user never rated says nothing about their taste in dramas, so a
    scenario's negatives come from that scenario's items only. Same interface as
    :class:`NegativeSampler` (one ``rng`` shared by the blocks, so trainer checkpoints keep working).

    Args:
        train: training interactions over virtual user ids.
        num_items: catalogue size.
        block_size: users per block (the number of real users).
        seed: generator seed.
    """

    def __init__(self, train: Interactions, num_items: int, block_size: int, seed: int = 0):
        self.num_items = num_items
        self.block_size = block_size
        self.rng = np.random.default_rng(seed)
        block = train.user // block_size
        self.blocks = {}
        for b in torch.unique(block).tolist():
            sub = NegativeSampler(train.select(block == b), num_items)
            sub.rng = self.rng
            self.blocks[b] = sub

    def sample(self, users: torch.Tensor, n: int = 1, max_tries: int = 20) -> torch.Tensor:
        """Shapes: users ``[B]`` -> negatives ``[B, n]`` (``[B]`` when ``n == 1``)."""
        out = torch.empty(users.numel(), n, dtype=torch.long)
        block = users // self.block_size
        for b in torch.unique(block).tolist():
            rows = block == b
            out[rows] = self.blocks[b].sample(users[rows], n, max_tries).view(-1, n)
        return out[:, 0] if n == 1 else out
