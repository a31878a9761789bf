"""Scenario-aware matrix factorisation: shared user/item embeddings plus a per-scenario user offset."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ScenarioMF"]


class ScenarioMF(nn.Module):
    r"""Matrix factorisation over ``S`` scenarios (behaviour types or domains) of the same users.

    The vector of user ``u`` in scenario ``s`` is :math:`p_u + o_{s,u}`: a shared part learned from
    every scenario and an offset (initialised to zero, regularised more strongly by the trainer) that
    holds what is particular to the scenario. Items are shared. The rows of scenario ``s`` are the
    virtual users ``s * num_users + u``, so block ``0`` scores with plain user ids.

    Args:
        num_users: number of (real) users ``U``.
        num_items: number of items ``I``.
        num_scenarios: number of scenarios ``S``.
        dim: embedding size (default ``64``).
    """

    def __init__(self, num_users: int, num_items: int, num_scenarios: int, dim: int = 64):
        super().__init__()
        self.num_users = num_users
        self.num_items = num_items
        self.num_scenarios = num_scenarios
        self.dim = dim
        self.user_emb = nn.Embedding(num_users, dim)
        self.offset = nn.Embedding(num_scenarios * num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.zeros_(self.offset.weight)
        nn.init.normal_(self.item_emb.weight, std=0.1)

    def forward(self) -> tuple[Tensor, Tensor]:
        """Returns virtual user vectors ``[S * U, d]`` and item vectors ``[I, d]``."""
        shared = self.user_emb.weight.repeat(self.num_scenarios, 1)  # [S * U, d], block s = scenario s
        return shared + self.offset.weight, self.item_emb.weight

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        """The shared free parameters a batch of virtual users ``[B]`` and items touches (L2)."""
        return [self.user_emb(users % self.num_users), self.item_emb(items)]

    def offsets_per_user(self) -> Tensor:
        """The offset table viewed as ``[U, S, d]``: row ``u`` holds user ``u``'s offset in every
        scenario (a view of the parameter, so gradients and in-place writes reach it).
        """
        return self.offset.weight.view(self.num_scenarios, self.num_users, self.dim).transpose(0, 1)

    def offsets(self, users: Tensor) -> Tensor:
        """Scenario offsets ``[B, d]`` of virtual users ``[B]`` (their own L2 weight)."""
        return self.offset(users)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.num_users}, {self.num_items}, "
                f"scenarios={self.num_scenarios}, dim={self.dim})")
