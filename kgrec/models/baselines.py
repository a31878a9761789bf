"""The baselines every kgrec model is measured against: MostPop, ItemKNN, EASE, BPR-MF, LightGCN."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from kgrec.data.graph import KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.models.base import Estimator, PairwiseEstimator, TrainConfig
from kgrec.nn.cf import MF, LightGCNEmbed
from kgrec.nn.sparse import gcn_adjacency
from kgrec.nn.linear import EASE, ItemKNN, MostPop

__all__ = ["MostPopModel", "ItemKNNModel", "EASEModel", "BPRMFModel", "LightGCNModel"]


class _ClosedForm(Estimator):
    """A model fitted in one step from the training matrix; scores from history rows."""

    def fit(self, kg: KnowledgeGraph, split: Split, **kwargs) -> "_ClosedForm":
        import time

        t0 = time.perf_counter()
        self.prepare(kg, split)
        self.build()
        self.module.fit(self.train_matrix())
        from kgrec.train import peak_memory_mb

        self.fit_info = {"fit_seconds": time.perf_counter() - t0, "seconds_to_best": time.perf_counter() - t0,
                         "peak_rss_mb": peak_memory_mb(), "device": "cpu"}
        return self

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        return self.module(self.weighted_history(users.to(self.device)))


@dataclass
class MostPopConfig:
    """MostPop. Args: half_life_days: time decay of the counts (:mod:`kgrec.dynamics`; default
    ``None`` = off); decay_from: ``"cut"`` or ``"user"`` (default ``"cut"``)."""

    half_life_days: float | None = None
    decay_from: str = "cut"


class MostPopModel(_ClosedForm):
    name = "mostpop"
    Config = MostPopConfig

    def build(self) -> None:
        self.module = MostPop(self.meta["num_items"])


@dataclass
class ItemKNNConfig:
    """Args: k: neighbours per item (default ``100``). shrink: similarity shrinkage (default ``10``).
    half_life_days, decay_from: time decay of the interactions, as in :class:`MostPopConfig`."""

    k: int = 100
    shrink: float = 10.0
    half_life_days: float | None = None
    decay_from: str = "cut"


class ItemKNNModel(_ClosedForm):
    name = "itemknn"
    Config = ItemKNNConfig

    def build(self) -> None:
        self.module = ItemKNN(self.meta["num_items"], k=self.config.k, shrink=self.config.shrink)


@dataclass
class EASEConfig:
    """Args: reg: L2 weight lambda of EASE (default ``250``). half_life_days, decay_from: time decay
    of the interactions (weighted Gram matrix and history rows), as in :class:`MostPopConfig`."""

    reg: float = 250.0
    half_life_days: float | None = None
    decay_from: str = "cut"


class EASEModel(_ClosedForm):
    name = "ease"
    Config = EASEConfig

    def build(self) -> None:
        self.module = EASE(self.meta["num_items"], reg=self.config.reg)


@dataclass
class BPRMFConfig(TrainConfig):
    """BPR matrix factorisation. Args: dim: embedding size (default ``64``); see :class:`TrainConfig`."""

    dim: int = 64


class BPRMFModel(PairwiseEstimator):
    name = "bprmf"
    Config = BPRMFConfig

    def build(self) -> None:
        self.module = MF(self.meta["num_users"], self.meta["num_items"], dim=self.config.dim)

    def embed(self) -> tuple[Tensor, Tensor]:
        return self.module()


@dataclass
class LightGCNConfig(TrainConfig):
    """LightGCN. Args: dim (default ``64``), num_layers (default ``3``); see :class:`TrainConfig`."""

    dim: int = 64
    num_layers: int = 3


class LightGCNModel(BPRMFModel):
    name = "lightgcn"
    Config = LightGCNConfig

    def prepare(self, kg: KnowledgeGraph, split: Split) -> None:
        super().prepare(kg, split)
        u, i = split.train.user, split.train.item + kg.num_users
        # message passing uses training interactions only
        self.context["edge_index"] = torch.stack([torch.cat([u, i]), torch.cat([i, u])])

    def build(self) -> None:
        self.module = LightGCNEmbed(self.meta["num_users"], self.meta["num_items"],
                                    dim=self.config.dim, num_layers=self.config.num_layers)

    def embed(self) -> tuple[Tensor, Tensor]:
        n = self.meta["num_users"] + self.meta["num_items"]
        return self.module(self.derived("adj", lambda: gcn_adjacency(self.context["edge_index"], n)))
