"""The hybrid model: KG GNN + BERT text + cross-attention + CF, with closed-form priors.

One folder holds the whole estimator; its torch modules are in :mod:`kgrec.nn.hybrid` and
:mod:`kgrec.nn.fusion`:

* ``config.py``: :class:`HybridConfig`, every setting documented;
* ``estimator.py``: :class:`HybridEstimator`, data preparation, pseudo-cold training, the score;
* ``text.py``: item and behaviour texts through the text model (frozen or fine-tuned);
* ``priors.py``: the closed-form priors (EASE, sequential rules) and their calibration on validation;
* ``update.py``: ``Recommender.update`` (merged graph, grown tables, continued training).
"""

from kgrec.models.hybrid.config import HybridConfig
from kgrec.models.hybrid.estimator import HybridEstimator
from kgrec.models.hybrid.text import segment_text

__all__ = ["HybridConfig", "HybridEstimator", "segment_text"]
