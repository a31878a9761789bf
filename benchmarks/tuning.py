"""The tuning protocol: one declared search space and the same trial budget for every model.

``docs/protocol.md`` states the rule; this module is its one implementation, used by the benchmark
harness (``benchmarks/suite.py``):

* Every model has a :class:`SearchSpace`: the parameters all its trials share (``fixed``) and the
  candidate values of the searched ones (``space``).
* A trial is one configuration scored on validation (NDCG@10; AUC on the CTR protocol). A model that
  makes choices inside its own fit (the hybrid's and ``ease+rules``' prior weights and windows) pays
  for each of those validation evaluations as a trial: the estimator's ``internal_trials`` gives how
  many one outer configuration costs, and the outer candidates are cut so that outer x internal <= budget.
* When the grid is larger than the budget, a seeded sample of it is searched (the model's first
  value of every parameter, its default, is always the first trial), so the budget, not the size of
  the grid someone happened to write, decides how much each model is tuned.
* The search runs with the first model seed; the other seeds refit the chosen point (for a model
  with internal choices, :meth:`kgrec.models.base.Estimator.chosen_params` pins them), so every
  model's seed spread is measured at one configuration.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from kgrec.errors import KgrecError
from kgrec.models import MODELS

__all__ = ["SearchSpace", "SPACES", "DEFAULT_BUDGET", "trials"]

#: trials per model and split unless ``--budget`` says otherwise
DEFAULT_BUDGET = 6


@dataclass(frozen=True)
class SearchSpace:
    """What a model may be tuned over.

    Args:
        model: the kgrec model name (:data:`kgrec.models.MODELS`).
        fixed: parameters every trial shares.
        space: searched parameter -> candidate values (first value = the model's default).
        seeded: the model has a seed (trained or random); deterministic models run once.
    """

    model: str
    fixed: dict = field(default_factory=dict)
    space: dict = field(default_factory=dict)
    seeded: bool = True

    def cost(self, params: dict) -> int:
        """Validation evaluations of one configuration: the model's own count of the choices its fit
        makes on validation (:meth:`kgrec.models.base.Estimator.internal_trials`).
        """
        return MODELS[self.model].internal_trials(params)


def trials(spec: SearchSpace, budget: int, seed: int = 2020) -> list[dict]:
    """The configurations a model is tried with: at most ``budget`` validation evaluations in all.

    The full grid when it fits; else the default point then a seeded sample without replacement.
    Raises :class:`KgrecError` when even one configuration costs more than ``budget``.
    """
    if not isinstance(budget, int) or budget < 1:
        raise KgrecError(f"'--budget' must be a positive integer (got {budget!r})")
    keys = list(spec.space)
    grid = [dict(spec.fixed, **dict(zip(keys, combo))) for combo in itertools.product(*spec.space.values())] \
        if keys else [dict(spec.fixed)]
    per = spec.cost(grid[0])
    if per > budget:
        raise KgrecError(f"model '{spec.model}': one configuration makes {per} validation evaluations, over the "
                         f"budget of {budget}; shrink its internal grids or raise '--budget'")
    n = max(1, budget // per)
    if len(grid) <= n:
        return grid
    rng = np.random.default_rng(seed)
    rest = rng.choice(np.arange(1, len(grid)), size=n - 1, replace=False)
    return [grid[0]] + [grid[i] for i in sorted(rest)]


# The declared search spaces (benchmark labels -> space). Trained models search learning rate and
# regularisation (and one structural choice) around the values of their papers / RecBole's configs;
# the epoch cap is 1000 with patience 10 for all of them (300 until BPR-MF on Last.FM CTR reached it;
# docs/protocol.md), and every run records whether its best epoch reached the cap. The hybrid's and
# ease+rules' internal grids are set so that one fit costs the whole budget: the hybrid is NOT given
# extra tuning through its priors.
_TRAIN = {"epochs": 1000, "patience": 10}
SPACES: dict[str, SearchSpace] = {
    "Random": SearchSpace("random"),
    "MostPop": SearchSpace("mostpop", seeded=False),
    "ItemKNN": SearchSpace("itemknn", space={"k": [100, 50, 200, 400], "shrink": [10.0, 0.0, 50.0]}, seeded=False),
    "EASE": SearchSpace("ease", space={"reg": [250.0, 50.0, 100.0, 500.0, 1000.0, 2000.0]}, seeded=False),
    "EASE+rules": SearchSpace("ease+rules", fixed={"priors": {"ease_reg": (250.0, 500.0), "seq_window": (3.0, 10.0),
                                                              "seq_recency": (1.0,), "seq_weight": (0.0, 1.0, 2.0)}},
                              seeded=False),
    "Content-kNN": SearchSpace("content-knn", space={"k": [100, 50, 200, 400]}, seeded=False),
    "BPR-MF": SearchSpace("bprmf", fixed={"dim": 64, **_TRAIN},
                          space={"lr": [1e-3, 5e-3], "reg": [1e-5, 0.0, 1e-4, 1e-3]}),
    "LightGCN": SearchSpace("lightgcn", fixed={"dim": 64, **_TRAIN},
                            space={"lr": [5e-3, 1e-3], "reg": [1e-4, 1e-5, 1e-3], "num_layers": [3, 2]}),
    # XSimGCL (Yu et al., TKDE 2023): LightGCN with the noisy cross-layer contrastive loss
    # (kgrec.models.contrastive), the CF peer a reviewer asks for since SimGCL; its paper's noise 0.2,
    # temperature 0.2 and contrast layer 1, searched over learning rate, regularisation and the
    # loss weight (0.1 its paper's value for sparse data, 0.02 a milder one) at LightGCN's 3 layers.
    "XSimGCL": SearchSpace("lightgcn", fixed={"dim": 64, "num_layers": 3, **_TRAIN},
                           space={"cl_weight": [0.1, 0.02], "lr": [5e-3, 1e-3], "reg": [1e-4, 1e-3]}),
    "CKE": SearchSpace("cke", fixed={"dim": 64, "relation_dim": 64, **_TRAIN},
                       space={"lr": [1e-3, 5e-3], "reg": [1e-4, 1e-5, 1e-3], "kg_weight": [1.0, 0.1]}),
    "KGAT": SearchSpace("kgat", fixed=dict(_TRAIN), space={"lr": [1e-3, 5e-3], "reg": [1e-5, 1e-4, 1e-3]}),
    "KGIN": SearchSpace("kgin", fixed=dict(_TRAIN), space={"lr": [1e-3, 5e-3], "reg": [1e-5, 1e-4, 1e-3]}),
    "SASRec": SearchSpace("sasrec", fixed=dict(_TRAIN),
                          space={"lr": [1e-3, 5e-3], "dropout": [0.2, 0.5], "num_layers": [2, 1]}),
    "Hybrid": SearchSpace("hybrid", fixed={"epochs": 200, "priors": {
        "ease_reg": (500.0,), "ease_weight": (0.0, 0.5, 1.0, 2.0), "seq_window": (3.0,), "seq_recency": (1.0,),
        "seq_weight": (0.0, 1.0, 2.0)}}),
    # The neural model alone makes no choice inside its fit, so it gets LightGCN's budget over its own
    # knobs. It trains in stages (``stages="cf-first"``: its CF branch alone as a LightGCN, then KG and
    # text over the frozen CF branch, each branch with its own ranking loss), which beat joint training
    # of the same model by +0.023 NDCG@10 on ML-100K (benchmarks/results/hybrid-stages.md). Its CF
    # stage searches exactly LightGCN's grid under the CF names (the same seeded sample of 6 points
    # and the same epoch cap), so the row beside LightGCN differs from it only by what the KG and
    # text stage adds on the point the whole model's validation NDCG@10 chose.
    "Hybrid w/o priors": SearchSpace("hybrid", fixed={"epochs": _TRAIN["epochs"], "ease_prior": False,
                                                      "seq_prior": False, "stages": "cf-first", "branch_loss": 1.0},
                                     space={"cf_lr": [5e-3, 1e-3], "cf_reg": [1e-4, 1e-5, 1e-3],
                                            "cf_layers": [3, 2]}),
}
