"""Every model the API can train by name."""

from kgrec.models.base import Estimator, PairwiseEstimator, TrainConfig
from kgrec.models.baselines import BPRMFModel, EASEModel, ItemKNNModel, LightGCNModel, MostPopModel
from kgrec.models.cke import CKEModel
from kgrec.models.hybrid import HybridEstimator
from kgrec.models.kgat import KGATModel
from kgrec.models.kgin import KGINModel
from kgrec.models.peers import ContentKNNModel, EASERulesModel, RandomModel
from kgrec.models.sasrec import SASRecModel
from kgrec.models.scenario import ScenarioMFModel

MODELS: dict[str, type[Estimator]] = {
    m.name: m for m in (MostPopModel, ItemKNNModel, EASEModel, BPRMFModel, LightGCNModel, CKEModel,
                        HybridEstimator, ScenarioMFModel, EASERulesModel, RandomModel, ContentKNNModel,
                        SASRecModel, KGATModel, KGINModel)
}

__all__ = ["MODELS", "Estimator", "PairwiseEstimator", "TrainConfig", "MostPopModel", "ItemKNNModel",
           "EASEModel", "BPRMFModel", "LightGCNModel", "CKEModel", "HybridEstimator", "ScenarioMFModel",
           "EASERulesModel", "RandomModel", "ContentKNNModel", "SASRecModel", "KGATModel", "KGINModel"]
