"""The estimator contract shared by every model the API can train, save and reload.

Everything a model does differently sits behind a method of this contract, so that the API, the
update and the explanations never check a model's name: ``fit`` / ``score`` (training, full
ranking), ``continued`` and ``update_pairs`` (``Recommender.update``: grow to new users, items and
graph, train on), ``score_history`` (a user given by a history at call time, no refit),
``vectors`` and ``embedding_tables`` (the dot-product embeddings an index or an explanation reads).

An estimator turns a graph + split into the tensors its module needs (``prepare``: data side), builds
its ``nn.Module`` from plain sizes (``build``), fits it (closed form or by the pairwise trainer) and
scores users against the whole catalogue (``score``). What ``prepare`` derived is kept in
``context`` (tensors) and ``meta`` (JSON-able sizes) so a saved model reloads without the graph.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from kgrec.data.decay import check_decay, decay_weights, latest_pair_times
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError
from kgrec.evaluation.rank import csr_rows, seen_csr
from kgrec.nn.linear import rows_times
from kgrec.nn.losses import bpr_loss, l2_reg, sampled_softmax_loss
from kgrec.training.continual import continue_pairwise, id_graph, init_untrained_rows, update_split
from kgrec.training.trainer import fit_pairwise

__all__ = ["Estimator", "PairwiseEstimator", "TrainConfig", "history_rows"]


@dataclass
class TrainConfig:
    """Settings of the pairwise (BPR) trainer, shared by every gradient-trained model.

    Args:
        epochs: maximum epochs (default ``200``).
        batch_size: positive pairs per step (default ``2048``).
        lr: Adam learning rate (default ``1e-3``).
        reg: L2 weight on the embeddings a batch touches (default ``1e-4``).
        num_neg: negatives per positive (default ``1``).
        loss: ``"bpr"`` or ``"softmax"`` (sampled softmax over the negatives).
        temperature: divides the scores in the sampled softmax (default ``1``).
        patience: epochs without a better validation NDCG@10 before stopping (default ``10``).
        eval_every: validate every this many epochs (default ``1``).
        seed: seed of initialisation and sampling (default ``2020``).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:n]"``.
        progress: show tqdm progress bars.
        half_life_days: time decay of the training interactions (:mod:`kgrec.data.decay`): positive
            pairs are drawn with probability ``2^(-age / half_life_days)``; ``None``/``0`` = off
            (default ``None``).
        decay_from: the age reference: ``"cut"`` (the latest training interaction) or ``"user"``
            (each user's latest) (default ``"cut"``).
    """

    epochs: int = 200
    batch_size: int = 2048
    lr: float = 1e-3
    reg: float = 1e-4
    num_neg: int = 1
    loss: str = "bpr"
    temperature: float = 1.0
    patience: int = 10
    eval_every: int = 1
    seed: int = 2020
    device: str = "auto"
    progress: bool = False
    half_life_days: float | None = None
    decay_from: str = "cut"


def history_rows(indptr: Tensor, indices: Tensor, users: Tensor, num_items: int) -> Tensor:
    """Dense binary history rows of ``users`` from a CSR (:func:`kgrec.evaluation.rank.seen_csr`).

    Shapes: users ``[B]`` -> ``[B, num_items]`` float on ``indices.device``.
    """
    rows, cols = csr_rows(indptr, indices, users)
    out = torch.zeros(users.numel(), num_items, device=indices.device)
    out[rows, cols] = 1.0
    return out


class Estimator:
    """Base class: a named model with a typed config, data-derived context and a module."""

    name: ClassVar[str] = ""
    #: explains a score by its parts (``branch_shares``, ``history_attention``, ``occluded_score``)
    explains_by_parts: ClassVar[bool] = False
    #: scores depend on the user's own history (``False``: every user gets one ranking, e.g. popularity)
    personalised: ClassVar[bool] = True
    Config: ClassVar[type] = TrainConfig
    trainable: ClassVar[bool] = False

    def __init__(self, config: Any):
        self.config = config
        self.context: dict[str, Tensor] = {}
        self.meta: dict[str, Any] = {}
        self.module: torch.nn.Module | None = None
        self.fit_info: dict[str, Any] = {}
        self._derived: dict[str, Any] = {}

    # ------------------------------------------------------------ construction
    @classmethod
    def from_params(cls, **params) -> "Estimator":
        upgrade = getattr(cls.Config, "upgrade", None)  # settings renamed since kgrec 0.1, for one release
        if upgrade is not None:
            params = upgrade(params, warn=True)
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(params) - fields)
        if unknown:
            raise KgrecError(f"unknown parameter(s) {', '.join(repr(u) for u in unknown)} for model "
                             f"'{cls.name}'; accepted: {', '.join(sorted(fields))}")
        config = cls.Config(**params)
        if hasattr(config, "half_life_days"):
            check_decay(config.half_life_days, getattr(config, "decay_from", "cut"))
        return cls(config)

    def prepare(self, kg: KnowledgeGraph, split: Split) -> None:
        """Derive ``context``/``meta`` from the data (training interactions only)."""
        train = split.train
        indptr, indices = seen_csr(train.user, train.item, kg.num_users, kg.num_items)
        # the latest time of each history entry: decay weights, and the old data of an update()
        hist_time = latest_pair_times(train.user, train.item, train.time, kg.num_items)
        self.context = {"hist_indptr": indptr, "hist_indices": indices, "hist_time": hist_time}
        self.meta = {"num_users": kg.num_users, "num_items": kg.num_items}

    def build(self) -> None:
        raise NotImplementedError

    def prepare_load(self) -> None:
        """Load what :meth:`build` needs from outside the checkpoint (e.g. a text model), before a
        reload builds the module; nothing by default.
        """

    def fit(self, kg: KnowledgeGraph, split: Split, **kwargs) -> "Estimator":
        raise NotImplementedError

    def chosen_params(self) -> dict[str, Any]:
        """Config values that pin the choices this fit made on validation by itself (e.g. the weights
        of added priors), so that a refit with another seed repeats them instead of searching again
        (the tuning protocol of ``benchmarks/tuning.py``). Empty for models whose fit makes no such choice.
        """
        return {}

    @classmethod
    def internal_trials(cls, params: dict[str, Any]) -> int:
        """Validation evaluations one fit with ``params`` makes by itself while choosing settings on
        validation (each one counts as a trial against the tuning budget, so a model that searches
        inside its fit is not tuned more than the others). One for a model that makes no such choice.
        """
        return 1

    # ---------------------------------------------------------------- scoring
    def history(self, users: Tensor) -> Tensor:
        """Binary training history rows ``[B, I]`` of ``users``."""
        return history_rows(self.context["hist_indptr"], self.context["hist_indices"], users,
                            self.meta["num_items"])

    @property
    def half_life(self) -> float | None:
        return getattr(self.config, "half_life_days", None) or None

    def history_weights(self) -> Tensor:
        """``[nnz]`` decay weight of each history entry (ones when decay is off)."""
        def build():
            c = self.context
            t = c.get("hist_time")
            if self.half_life is None or t is None:
                return torch.ones(c["hist_indices"].numel(), device=self.device)

            indptr = c["hist_indptr"].cpu()
            users = torch.repeat_interleave(torch.arange(indptr.numel() - 1), indptr[1:] - indptr[:-1])
            return decay_weights(t.cpu(), self.half_life, user=users,
                                 decay_from=getattr(self.config, "decay_from", "cut")).to(self.device)

        return self.derived("hist_weight", build)

    def weighted_history(self, users: Tensor) -> Tensor:
        """Decay-weighted history rows ``[B, I]`` (binary when decay is off)."""
        if self.half_life is None:
            return self.history(users)
        return self.entry_rows(users, self.history_weights())

    def entry_rows(self, users: Tensor, weights: Tensor) -> Tensor:
        """History rows ``[B, I]`` of ``users`` holding ``weights`` ``[nnz]`` (one per history entry,
        in ``hist_indices`` order) instead of ones.
        """
        rows, cols = csr_rows(self.context["hist_indptr"], self.context["hist_indices"], users)
        indptr = self.context["hist_indptr"]
        users = users.to(indptr.device)
        start = indptr[users]
        counts = indptr[users + 1] - start
        first = torch.cumsum(counts, 0) - counts
        pos = start[rows] + torch.arange(rows.numel(), device=indptr.device) - first[rows]
        out = torch.zeros(users.numel(), self.meta["num_items"], device=indptr.device)
        out[rows, cols] = weights.to(indptr.device)[pos].to(out.dtype)
        return out

    def train_matrix(self):
        """The training user x item matrix as ``scipy.sparse.csr_matrix`` (decay-weighted when on)."""
        import scipy.sparse as sp

        c = self.context
        w = self.history_weights().cpu().numpy().astype("float32")
        return sp.csr_matrix((w, c["hist_indices"].cpu().numpy(), c["hist_indptr"].cpu().numpy()),
                             shape=(self.meta["num_users"], self.meta["num_items"]))

    def score(self, users: Tensor) -> Tensor:
        """Scores ``[B, I]`` of ``users`` ``[B]`` over the whole catalogue (no masking)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- device
    @property
    def device(self) -> torch.device:
        return self.context["hist_indptr"].device

    def __deepcopy__(self, memo) -> "Estimator":
        """A deep copy without the derived structures (rebuilt on demand; sparse CSR tensors, which
        some of them are, cannot be deep-copied).
        """
        import copy

        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            setattr(new, key, {} if key == "_derived" else copy.deepcopy(value, memo))
        return new

    def derived(self, key: str, build):
        """A structure computed from ``context`` once per device (e.g. a normalised adjacency);
        never saved, rebuilt after :meth:`to` or a reload.
        """
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def to(self, device) -> "Estimator":
        self._derived = {}
        self.context = {k: v.to(device) for k, v in self.context.items()}
        if self.module is not None:
            self.module.to(device)
        return self

    def state_tensors(self) -> dict[str, Tensor]:
        """Everything to save: ``context.*`` and ``module.*`` tensors (CPU, contiguous)."""
        out = {f"context.{k}": v.detach().cpu().contiguous() for k, v in self.context.items()}
        if self.module is not None:
            out.update({f"module.{k}": v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()})
        return out

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.context = {k[8:]: v for k, v in tensors.items() if k.startswith("context.")}
        self._derived = {}
        self.build()
        if self.module is not None:
            state = {k[7:]: v for k, v in tensors.items() if k.startswith("module.")}
            # fitted buffers (e.g. ItemKNN's sparse similarity) have data-dependent sizes
            for name, buf in list(self.module.named_buffers()):
                if name in state and state[name].shape != buf.shape:
                    owner, _, leaf = name.rpartition(".")
                    setattr(self.module.get_submodule(owner) if owner else self.module, leaf, state[name].clone())
            self.module.load_state_dict(state)

    @torch.no_grad()
    def history_contributions(self, items: list[int], target: int) -> list[float]:
        """How much the model ties each history item of ``items`` to ``target``: an item-item
        model's exact additive contribution of each item to ``target``'s score (popularity: 0).
        """
        if not items:
            return []
        rows = torch.zeros(len(items) + 1, self.meta["num_items"], device=self.device)
        rows[torch.arange(len(items)), torch.tensor(items)] = 1.0  # last row: empty history
        s = self.module(rows)[:, target].float().cpu()
        return (s[:-1] - s[-1]).tolist()

    @property
    def scores_by_dot_product(self) -> bool:
        """Whether ``score`` is exactly the dot product of :meth:`vectors` (a faiss index applies)."""
        return False

    def vectors(self) -> tuple[Tensor, Tensor]:
        raise KgrecError(f"model '{self.name}' has no user and item vectors: it does not score by a dot product "
                         "(bprmf, lightgcn, cke, hybrid do)")

    # ------------------------------------------------------------ dynamics
    def update_pairs(self, kg: KnowledgeGraph, new: Interactions, mapped: Interactions, old: Interactions,
                     num_users: int) -> tuple[Interactions, Interactions]:
        """The new interactions (``mapped``: ``new`` in merged ids) and the old training ones as the
        model trains on them after an update to ``num_users`` users (default: as they are).
        """
        return mapped, old

    def continued(self, users: Vocab, items: Vocab, kg: KnowledgeGraph, fresh: Interactions,
                  old: Interactions, epochs: int, replay: float, l2_pull: float,
                  item_labels: Sequence[str] | None = None,
                  log: Callable[[str], None] | None = None) -> tuple["Estimator", str]:
        """A new estimator: this one (left unchanged) over the merged id maps ``users``/``items``,
        trained on ``fresh`` (new) after ``old`` interactions -> ``(estimator, how)``.

        A closed-form model refits on old + new interactions: an exact update (its fit is one pass
        over the data; there is no state to carry over).
        """
        new = type(self)(copy.deepcopy(self.config))
        new.fit(id_graph(users, items), update_split(len(users), len(items), old.concat(fresh)))
        return new, "refit on old + new interactions"

    def score_history(self, items: Tensor, weights: Tensor, times: Tensor | None = None,
                      labels: list[str] | None = None) -> Tensor:
        """Scores ``[I]`` of every item for a user not in the model, given their history ``items``
        ``[n]`` with ``weights`` ``[n]`` (and ``times`` ``[n]``, the items' ``labels`` for models that
        read them), with no refit. A closed-form model scores the history row exactly as it scores a
        training user (decay-weighted when the model has a half-life).

        The tensor is the caller's own: a module may return a view of its fitted state (MostPop's
        scores are its popularity vector, expanded), so it is copied here, and a caller masking the
        given items cannot write into the model.
        """
        check_history(items, weights)
        with torch.no_grad():
            return self.module(history_row(self, items, weights))[0].float().cpu().clone()


class PairwiseEstimator(Estimator):
    """An embedding model trained by :func:`kgrec.training.trainer.fit_pairwise`; scores are dot products.

    Subclasses implement :meth:`embed` (user vectors ``[U, d]``, item vectors ``[I, d]``) and may
    override :meth:`batch_loss` or :meth:`param_groups`.
    """

    trainable = True

    def __init__(self, config: Any):
        super().__init__(config)
        self._frozen: tuple[Tensor, Tensor] | None = None

    def embed(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def fit(self, kg: KnowledgeGraph, split: Split, **kwargs) -> "PairwiseEstimator":
        """Prepare the data, build the module from a seeded generator, train with validation."""
        self.prepare(kg, split)
        torch.manual_seed(self.config.seed)
        self.build()
        self.train_module(split, **kwargs)
        return self

    def train_module(self, split: Split, **kwargs) -> None:
        """Train the built module: one :func:`~kgrec.training.trainer.fit_pairwise` run (``kwargs`` are
        its options); a model trained in stages overrides this.
        """
        fit_pairwise(self, split, **kwargs)


    def param_groups(self) -> list[dict]:
        return [{"params": [p for p in self.module.parameters() if p.requires_grad]}]

    def batch_vectors(self, users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The vectors a batch's loss reads (by default rows of the full :meth:`embed`).

        Shapes: users, pos ``[B]``, neg ``[B]`` or ``[B, n]`` -> ``[B, d]``, ``[B, d]``, ``[*neg.shape, d]``.
        """
        u_vec, i_vec = self.embed()
        return u_vec[users], i_vec[pos], i_vec[neg]

    def batch_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """Shapes: users ``[B]``, pos ``[B]``, neg ``[B]`` or ``[B, n]`` -> scalar loss."""
        u, p, n = self.batch_vectors(users, pos, neg)
        return self.ranking_loss(u, p, n) + self.penalty(users, pos, neg)

    def ranking_loss(self, u: Tensor, p: Tensor, n: Tensor) -> Tensor:
        """The configured loss (BPR or sampled softmax) of a batch's vectors.

        Shapes: u, p ``[B, d]``, n ``[B, d]`` (one negative each) or ``[B, n, d]`` -> scalar.
        """
        s_pos = (u * p).sum(-1)
        s_neg = (u.unsqueeze(1) * n).sum(-1) if n.dim() == 3 else (u * n).sum(-1)
        if self.config.loss == "bpr":
            return bpr_loss(s_pos, s_neg)
        return sampled_softmax_loss(s_pos, s_neg if n.dim() == 3 else s_neg.unsqueeze(-1), self.config.temperature)

    def penalty(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """``reg`` x the L2 norm of the free id embeddings a batch touches (:meth:`batch_ego`)."""
        return self.config.reg * l2_reg(*self.batch_ego(users, pos, neg))

    def batch_ego(self, users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The free id embeddings of a batch's users, positives and (flattened) negatives, from the
        module's ``ego``: ``[B, e]``, ``[B, e]``, ``[B x n, e]``.
        """
        ego_u, ego_p = self.module.ego(users, pos)
        return ego_u, ego_p, self.module.ego(users, neg.reshape(-1))[1]

    def freeze(self) -> None:
        """Cache the full embeddings for scoring (after training or before validation).

        The item vectors are kept as the transpose of a contiguous ``[d, I]`` matrix: scoring multiplies
        by that matrix, which a sparse-dense product (:func:`~kgrec.nn.linear.rows_times`, taken when the
        user vectors are mostly zeros, as the hybrid's history rows of its priors are) needs contiguous.
        """
        if self.module is not None:
            self.module.eval()
        with torch.no_grad():
            u_vec, i_vec = (t.float() for t in self.embed())
            self._frozen = (u_vec, i_vec.t().contiguous().t())

    def unfreeze(self) -> None:
        self._frozen = None
        if self.module is not None:
            self.module.train()

    def score(self, users: Tensor) -> Tensor:
        if self._frozen is None:
            self.freeze()
        u_vec, i_vec = self._frozen
        return rows_times(u_vec[users.to(u_vec.device)], i_vec.t())

    @torch.no_grad()
    def history_contributions(self, items: list[int], target: int) -> list[float]:
        """Cosine of the model's item vectors after subtracting their mean: raw cosines of trained
        item vectors share a large common direction, which would make every history item look alike.
        """
        if not items:
            return []
        vec = self.vectors()[1].float().cpu()
        vec = vec - vec.mean(0, keepdim=True)
        return torch.nn.functional.cosine_similarity(vec[items], vec[target].unsqueeze(0), dim=-1).tolist()

    @property
    def scores_by_dot_product(self) -> bool:
        return type(self).score is PairwiseEstimator.score

    def vectors(self) -> tuple[Tensor, Tensor]:
        """The scoring embeddings ``(users [U, d], items [I, d])``: ``score`` is their dot product."""
        if self._frozen is None:
            self.freeze()
        return self._frozen

    def embedding_tables(self) -> tuple[Tensor, ...]:
        """The free embedding rows ``update`` grows and pulls towards their old values, as views of
        the parameters (autograd-aware): users ``[U, d]`` first, items ``[I, d]`` second, then any
        per-user table. Models without such tables cannot be continued.
        """
        raise KgrecError(f"update() does not know the embedding tables of model '{self.name}': refit it instead")

    def continued(self, users, items, kg, fresh, old, epochs, replay, l2_pull, item_labels=None, log=None):
        """Grow the user and item tables, copy the old rows, start never-trained rows from KG
        neighbours and new histories (:func:`~kgrec.training.continual.init_untrained_rows`), then
        continue BPR training (:func:`~kgrec.training.continual.continue_pairwise`).
        """
        U, I = len(users), len(items)
        everything = old.concat(fresh)
        new_est = type(self)(copy.deepcopy(self.config))
        new_est.prepare(id_graph(users, items), update_split(U, I, everything))
        torch.manual_seed(self.config.seed)
        new_est.build()
        old_u, old_i = (t.data for t in self.embedding_tables()[:2])
        new_u, new_i = (t.data for t in new_est.embedding_tables()[:2])
        with torch.no_grad():
            U0, I0 = old_u.shape[0], old_i.shape[0]
            new_u[:U0] = old_u.to(new_u)
            new_i[:I0] = old_i.to(new_i)
            init_untrained_rows(new_u, new_i, old_u, old_i, old, fresh, kg, items)
        anchors = [(t, t[: s].detach().clone()) for t, s in ((new_u, U0), (new_i, I0))]
        continue_pairwise(new_est, fresh, old, everything, epochs, replay, l2_pull, anchors, log)
        return new_est, ""

    def score_history(self, items, weights, times=None, labels=None):
        """Fold the user in: the item vectors stay fixed and a fresh user vector starts at the
        weighted mean over the history items of the mean vector of the training users who took
        each (:func:`co_user_mean`: a user who took these items resembles those users), then
        takes Adam steps on the full-softmax likelihood of the history (:func:`fold_in`).
        """
        check_history(items, weights)
        return self.fold_in_scores(items, weights).float()

    def fold_in_scores(self, items: Tensor, weights: Tensor, dims: int | None = None,
                       offset: Tensor | None = None) -> Tensor:
        """``[I]`` scores of a folded-in user over the first ``dims`` embedding dimensions (default
        all), ``offset`` ``[I]`` fixed scores added to the logits and to the result.
        """
        u_vec, i_vec = (t.cpu() for t in self.vectors())
        d = i_vec.shape[1] if dims is None else dims
        q = i_vec[:, :d]
        with torch.enable_grad():
            u = fold_in(q, items, weights, co_user_mean(self, u_vec[:, :d], q, items, weights), offset=offset)
        return q @ u if offset is None else q @ u + offset

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        super().load_state_tensors(tensors)
        self._frozen = None


def check_history(items: Tensor, weights: Tensor) -> None:
    """The checks a history given at call time passes before any model scores it."""
    if items.numel() == 0:
        raise KgrecError("'items' must name at least one item the new user interacted with (got none)")
    if not torch.isfinite(weights).all() or float(weights.sum()) <= 0:
        raise KgrecError("the history's weights must be finite with a positive sum: check 'times'")


@torch.no_grad()
def history_row(est, items: Tensor, weights: Tensor) -> Tensor:
    """``[1, I]``: a history as one user row of the item matrix, ``weights`` at ``items``."""
    row = torch.zeros(1, est.meta["num_items"], device=est.device)
    row[0].index_put_((items.to(est.device),), weights.to(est.device), accumulate=False)
    return row


@torch.no_grad()
def co_user_mean(est, u_vec: Tensor, i_vec: Tensor, items: Tensor, weights: Tensor) -> Tensor:
    """``[d]``: weighted mean over history items of the mean vector of the training users who took
    each; items nobody took in training contribute their own vector.
    """
    indptr, indices = est.context["hist_indptr"].cpu(), est.context["hist_indices"].cpu()
    owner = torch.repeat_interleave(torch.arange(indptr.numel() - 1), indptr[1:] - indptr[:-1])
    out = torch.zeros(u_vec.shape[1])
    for item, w in zip(items.tolist(), weights.tolist()):
        takers = owner[indices == item]
        out += w * (u_vec[takers].mean(0) if takers.numel() else i_vec[item])
    return out / float(weights.sum())


def fold_in(item_vec: Tensor, items: Tensor, weights: Tensor, u0: Tensor, steps: int = 20, lr: float = 0.01,
            reg: float = 1.0, offset: Tensor | None = None) -> Tensor:
    """A user vector ``[d]`` for history ``items`` ``[n]`` (weights ``[n]``) with ``item_vec`` ``[I, d]``
    fixed, starting from and pulled towards ``u0`` ``[d]``; ``offset`` ``[I]``: fixed scores added
    to the logits (parts of the user vector known without fitting).
    """
    q = item_vec.detach().float()
    w = (weights / weights.sum()).to(q)
    u0 = u0.detach().float()
    offset = None if offset is None else offset.detach().float()  # fixed: no gradient into the model
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
