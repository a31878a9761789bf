"""The baselines every kgrec model is measured against: MostPop, ItemKNN, EASE, BPR-MF, LightGCN."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from kgrec.data.graph import KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.data.subgraph import NeighborSampler, check_fanouts, csr_adjacency
from kgrec.errors import KgrecError
from kgrec.models.base import Estimator, PairwiseEstimator, TrainConfig
from kgrec.models.contrastive import check_contrastive, contrastive_batch_loss
from kgrec.nn.cf import MF, LightGCNEmbed
from kgrec.nn.linear import EASE, ItemKNN, MostPop
from kgrec.nn.sparse import gcn_adjacency
from kgrec.training.trainer import peak_memory_mb

__all__ = ["MostPopModel", "ItemKNNModel", "EASEModel", "BPRMFModel", "LightGCNModel"]


class _ClosedForm(Estimator):
    """A model fitted in one step from the training matrix; scores from history rows."""

    def fit(self, kg: KnowledgeGraph, split: Split, **kwargs) -> "_ClosedForm":
        import time

        t0 = time.perf_counter()
        self.prepare(kg, split)
        self.build()
        self.module.fit(self.train_matrix())

        self.fit_info = {"fit_seconds": time.perf_counter() - t0, "seconds_to_best": time.perf_counter() - t0,
                         "peak_rss_mb": peak_memory_mb(), "device": "cpu"}
        return self

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        return self.module(self.weighted_history(users.to(self.device)))


@dataclass
class MostPopConfig:
    """MostPop. Args: half_life_days: time decay of the counts (:mod:`kgrec.data.decay`; default
    ``None`` = off); decay_from: ``"cut"`` or ``"user"`` (default ``"cut"``).
    """

    half_life_days: float | None = None
    decay_from: str = "cut"


class MostPopModel(_ClosedForm):
    name = "mostpop"
    personalised = False
    Config = MostPopConfig

    def build(self) -> None:
        self.module = MostPop(self.meta["num_items"])


@dataclass
class ItemKNNConfig:
    """Args: k: neighbours per item (default ``100``). shrink: similarity shrinkage (default ``10``).
    half_life_days, decay_from: time decay of the interactions, as in :class:`MostPopConfig`.
    max_memory_gb: memory budget of the fit in GiB (default ``None``: what the process may still
    allocate); a fit whose estimate exceeds it stops with :class:`kgrec.errors.ResourceLimitError`.
    """

    k: int = 100
    shrink: float = 10.0
    half_life_days: float | None = None
    decay_from: str = "cut"
    max_memory_gb: float | None = None


class ItemKNNModel(_ClosedForm):
    name = "itemknn"
    Config = ItemKNNConfig

    def build(self) -> None:
        self.module = ItemKNN(self.meta["num_items"], k=self.config.k, shrink=self.config.shrink,
                              max_memory_gb=self.config.max_memory_gb)


@dataclass
class EASEConfig:
    """Args: reg: L2 weight lambda of EASE (default ``250``). half_life_days, decay_from: time decay
    of the interactions (weighted Gram matrix and history rows), as in :class:`MostPopConfig`.
    max_memory_gb: memory budget of the fit in GiB (default ``None``: what the process may still
    allocate); a fit whose estimate (one ``I x I`` array) exceeds it stops with
    :class:`kgrec.errors.ResourceLimitError`.
    """

    reg: float = 250.0
    half_life_days: float | None = None
    decay_from: str = "cut"
    max_memory_gb: float | None = None


class EASEModel(_ClosedForm):
    name = "ease"
    Config = EASEConfig

    def build(self) -> None:
        self.module = EASE(self.meta["num_items"], reg=self.config.reg, max_memory_gb=self.config.max_memory_gb)


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

    def embedding_tables(self) -> tuple[Tensor, Tensor]:
        return self.module.user_emb.weight, self.module.item_emb.weight


@dataclass
class LightGCNConfig(TrainConfig):
    """LightGCN. Args: dim (default ``64``), num_layers (default ``3``); see :class:`TrainConfig`.

    sampled: mini-batch training on sampled subgraphs (:mod:`kgrec.data.subgraph`): a step
        propagates over the L-hop sample around the batch's users and items only, so its cost and
        memory depend on ``batch_size`` and ``fanouts``, not on the graph's size. Scoring still
        uses the exact full propagation, computed once per validation/after training. The sampler's
        generator is seeded by ``seed`` and checkpointed with the trainer's state, so a resumed
        sampled run ends exactly as an uninterrupted one on the CPU (default ``False``).
    fanouts: neighbours sampled per node at each hop, one entry per layer (default ``[10, 10, 10]``).
    cl_weight: weight of XSimGCL's contrastive loss (:mod:`kgrec.models.contrastive`); ``0``
        (default) is plain LightGCN. With a weight > 0 every step propagates with noise of norm
        ``cl_noise`` (default ``0.2``) added to each layer's output, takes the ranking loss on that
        propagation, and adds InfoNCE (temperature ``cl_temperature``, default ``0.2``) between each
        batch user's / positive item's vector and its perturbed layer-``cl_layer`` output (default
        ``1``). The paper's defaults; not with ``sampled``.
    """

    dim: int = 64
    num_layers: int = 3
    sampled: bool = False
    fanouts: list[int] = field(default_factory=lambda: [10, 10, 10])
    cl_weight: float = 0.0
    cl_noise: float = 0.2
    cl_temperature: float = 0.2
    cl_layer: int = 1

    def __post_init__(self) -> None:
        check_contrastive("lightgcn", "cl_", self.cl_weight, self.cl_noise, self.cl_temperature, self.cl_layer,
                          self.num_layers)
        if self.cl_weight > 0 and self.sampled:
            raise KgrecError("lightgcn: 'cl_weight' > 0 needs the full propagation; it cannot be used with "
                             "'sampled'")
        self.fanouts = list(check_fanouts(self.fanouts))
        if self.sampled and len(self.fanouts) != self.num_layers:
            raise KgrecError(f"'fanouts' must give one fanout per layer (num_layers={self.num_layers}, "
                             f"got {self.fanouts!r})")


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

    def embedding_tables(self) -> tuple[Tensor, Tensor]:
        w, n = self.module.gcn.embedding.weight, self.meta["num_users"]
        return w[:n], w[n:]

    def _adj(self):
        n = self.meta["num_users"] + self.meta["num_items"]
        return self.derived("adj", lambda: gcn_adjacency(self.context["edge_index"], n))

    def embed(self) -> tuple[Tensor, Tensor]:
        return self.module(self._adj())

    def batch_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """With ``cl_weight`` > 0: XSimGCL's loss (:func:`kgrec.models.contrastive.contrastive_batch_loss`)."""
        cfg = self.config
        if cfg.cl_weight <= 0:
            return super().batch_loss(users, pos, neg)
        return contrastive_batch_loss(self, self.module, self._adj(), users, pos, neg, cfg.cl_weight, cfg.cl_noise,
                                      cfg.cl_temperature, cfg.cl_layer)

    def _neighbor_sampler(self):
        """The sampled mode's neighbour sampler over the training graph (built once, seeded by ``seed``)."""
        n = self.meta["num_users"] + self.meta["num_items"]
        return self.derived("sampler", lambda: NeighborSampler(
            *csr_adjacency(self.context["edge_index"], n), self.config.fanouts, seed=self.config.seed))

    def rng_generators(self) -> dict[str, torch.Generator]:
        """Generators the trainer checkpoints for an exact resume: the neighbour sampler's when sampled."""
        return {"neighbors": self._neighbor_sampler().generator} if self.config.sampled else {}

    def batch_vectors(self, users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """With ``sampled``: the batch's vectors from its sampled subgraph; else the full propagation."""
        if not self.config.sampled:
            return super().batch_vectors(users, pos, neg)

        U = self.meta["num_users"]
        sg = self._neighbor_sampler().sample(torch.cat([users, pos + U, neg.reshape(-1) + U]))
        dev = users.device
        out = self.module.forward_sampled(sg.nodes.to(dev), sg.edge_index.to(dev), sg.edge_weight.to(dev),
                                          sg.hop_sizes)
        vec = out[sg.seed_local.to(dev)]  # [B + B + B*n, d] in the order of the seeds
        B = users.numel()
        return vec[:B], vec[B:2 * B], vec[2 * B:].view(*neg.shape, -1)
