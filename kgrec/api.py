"""The Python API: ``load``, ``split``, ``Recommender``. The only module (with the CLI) reading configs."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Callable

import torch

from kgrec.ann import build_index, dot_product_vectors
from kgrec.data.decay import history_weights
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.loader import load as _load
from kgrec.data.scenarios import select
from kgrec.data.splits import Split
from kgrec.data.splits import split as _split
from kgrec.data.vocab import Vocab
from kgrec.dynamics.update import update_estimator
from kgrec.errors import CheckpointError, KgrecError, SplitError
from kgrec.evaluation.evaluator import Evaluator
from kgrec.evaluation.rank import csr_rows, mask_seen, seen_csr, topk
from kgrec.explain import Explainer
from kgrec.models import MODELS
from kgrec.training.checkpoint import load_checkpoint, previous_checkpoint, save_checkpoint
from kgrec.training.checkpoint_schema import (
    check_config,
    check_context_values,
    check_header,
    check_known,
    check_top_level,
)
from kgrec.version import __version__

__all__ = ["load", "split", "Recommender", "select_half_life"]


def load(paths, mapping=None, format: str | None = None, *, allow_network: bool = False,
         max_file_bytes: int = 2 * 1024**3, max_literal_chars: int = 1024**2,
         max_line_bytes: int = 8 * 1024**2, max_xml_depth: int = 256,
         max_expansion_ratio: int = 200, workers: int | None = None) -> KnowledgeGraph:
    """Read RDF file(s) into a :class:`KnowledgeGraph` through a mapping.

    Args:
        paths: one path or a list of paths (Turtle, N-Triples, N-Quads, TriG, RDF/XML, JSON-LD, N3,
            optionally ``.gz``/``.bz2``), merged into one graph.
        mapping: a :class:`~kgrec.data.mapping.Mapping`, a path to a TOML/YAML mapping, a profile
            name (``"kgrec"``, ``"schema-org"``), or ``None`` for the kgrec vocabulary.
        format: the RDF format for every file, instead of guessing from the suffix.
        allow_network: download URLs given in ``paths`` (default ``False``: refused). Parsing never
            fetches anything (remote JSON-LD contexts, ``owl:imports``, XML entities) either way.
        max_file_bytes: the most bytes one file may hold once decompressed (default 2 GiB).
        max_literal_chars: the most characters of one literal (default 1 Mi).
        max_line_bytes: the most bytes of one line of a text RDF file, and of one triple-quoted
            string (default 8 MiB), checked while reading, before a literal is built.
        max_xml_depth: the deepest element nesting of an RDF/XML file (default 256).
        max_expansion_ratio: the most decompressed bytes per compressed byte of a compressed
            file, checked while decompressing (default 200).
        workers: processes that parse a large uncompressed N-Triples / N-Quads file, each a piece
            of it (default: 2 for a file of 32 MiB or more when a CPU is idle); the graph is the same for
            any number.

    See ``docs/errors.md`` for what each kind of bad input raises.
    """
    return _load(paths, mapping=mapping, format=format, allow_network=allow_network,
                 max_file_bytes=max_file_bytes, max_literal_chars=max_literal_chars,
                 max_line_bytes=max_line_bytes, max_xml_depth=max_xml_depth,
                 max_expansion_ratio=max_expansion_ratio, workers=workers)


def split(kg: KnowledgeGraph, strategy: str = "random", ratios=(0.8, 0.1, 0.1), seed: int = 2020) -> Split:
    """Split the interactions of ``kg`` (``random``, ``temporal``, ``global-time``, ``cold-item``)."""
    return _split(kg, strategy=strategy, ratios=ratios, seed=seed)


def _models() -> dict:

    return MODELS


class Recommender:
    """Train, evaluate, query, save and reload any kgrec model by name.

    Args:
        model: ``"mostpop"``, ``"itemknn"``, ``"ease"``, ``"bprmf"``, ``"lightgcn"``, ``"cke"``, ``"hybrid"``,
            ``"scenario-mf"`` (:mod:`kgrec.models.scenario`); the peers ``"kgat"``, ``"kgin"`` (KG),
            ``"sasrec"`` (sequential), ``"ease+rules"`` (the hybrid's closed-form priors alone),
            ``"content-knn"`` (item-item cosine of MiniLM item texts) and ``"random"``.
        **params: the model's config fields (see ``Recommender.params_of(model)``).

    Example::

        kg = kgrec.load("kg_data/toy/toy.ttl")
        sp = kgrec.split(kg, "random", seed=2020)
        rec = kgrec.Recommender("lightgcn", epochs=50).fit(kg, sp)
        rec.evaluate(sp, ks=(10, 20))
        rec.recommend(["https://example.org/user/1"], k=5)
    """

    def __init__(self, model: str = "hybrid", **params):
        models = _models()
        if model not in models:
            raise KgrecError(f"'model' must be one of {', '.join(sorted(models))} (got {model!r})")
        self.model_name = model
        self.estimator = models[model].from_params(**params)
        self.users: Vocab | None = None
        self.items: Vocab | None = None
        self.item_labels: list[str] = []
        self._kg: KnowledgeGraph | None = None  # the graph of the last fit (explanations reuse it)
        self._explainer = None
        # every item each user has in the fitted graph, (indptr [U + 1], indices [nnz]); see known_items
        self._known: tuple[torch.Tensor, torch.Tensor] | None = None

    @staticmethod
    def params_of(model: str) -> dict:
        """The configurable fields of ``model`` with their defaults."""
        models = _models()
        if model not in models:
            raise KgrecError(f"'model' must be one of {', '.join(sorted(models))} (got {model!r})")
        cls = models[model]
        return {f.name: getattr(cls.Config(), f.name) for f in dataclasses.fields(cls.Config)}

    @property
    def config(self):
        return self.estimator.config

    @property
    def fit_info(self) -> dict:
        return self.estimator.fit_info

    # -------------------------------------------------------------- training
    def fit(self, kg: KnowledgeGraph, split: Split | None = None, log: Callable[[str], None] | None = None,
            checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
            validate: Callable[["Recommender"], dict] | None = None, metric: str = "ndcg@10",
            scenarios: Sequence[str] | None = None) -> "Recommender":
        """Fit on ``split.train`` (model selection on ``split.valid``); all interactions if no split.

        Args:
            kg, split: the data; without a split every interaction trains and the last epoch is kept.
            log: called with one line per validation.
            checkpoint_dir: save the model there (atomically, like :meth:`save`) at every new best
                validation epoch of a gradient-trained model.
            resume: continue from the checkpoint in ``checkpoint_dir`` when it holds this model
                with the same configuration (``epochs`` may differ) and the same users and items;
                start afresh when it is absent. Weights, Adam's state and the RNG states are
                restored, so on the CPU the run ends as an uninterrupted one would. If a crash left
                only ``<checkpoint_dir>.prev`` (see :func:`kgrec.training.checkpoint.save_checkpoint`), it
                resumes from that; a damaged checkpoint raises :class:`CheckpointError`.
            validate, metric: epochs of a gradient-trained model are selected on validation
                ``metric`` (default ``"ndcg@10"`` of full ranking on ``split.valid``);
                ``validate(rec) -> {metric: value, ...}`` replaces that ranking evaluation, e.g.
                AUC on labelled validation pairs (``metric="auc"``).
            scenarios: train (and validate) on the interactions of these scenarios of
                ``kg.scenarios`` only (:mod:`kgrec.data.scenarios`); default ``None``: all.
        """
        if split is None:

            empty = Interactions.empty()
            split = Split("all", 0, (1.0, 0.0, 0.0), kg.num_users, kg.num_items, kg.interactions, empty, empty)
        self._check_split(split, kg.num_users, kg.num_items)
        known = _known_csr(kg.interactions, kg.num_users, kg.num_items)
        if scenarios is not None:

            split = select(kg, split, scenarios)
        if len(split.train) == 0:
            raise SplitError("the split's training part is empty: nothing to fit")
        self.users, self.items = kg.users, kg.items
        self._kg, self._explainer, self._known = kg, None, known
        self.item_labels = [kg.label(i) for i in range(kg.num_items)]
        if self.estimator.trainable:
            kwargs = {"log": log, "metric": metric}
            if validate is not None:
                kwargs["validate"] = lambda est: validate(self)
            if checkpoint_dir is not None:
                kwargs["checkpoint"] = lambda est, info, tensors: self.save(checkpoint_dir, progress=info,
                                                                            trainer_tensors=tensors)
                if resume:
                    kwargs["resume"] = self._resume_state(checkpoint_dir)
            self.estimator.fit(kg, split, **kwargs)
        else:
            self.estimator.fit(kg, split)
        return self

    def refit_params(self) -> dict:
        """The settings of a refit on all interactions: this model's config with the choices its fit
        made on validation pinned (:meth:`kgrec.models.base.Estimator.chosen_params`, e.g. the
        hybrid's prior weights), and for a gradient-trained model ``epochs`` set to the selected
        best epoch (a refit has no validation part to stop on, so it trains that many epochs).
        """
        self._require_fit()
        params = dataclasses.asdict(self.estimator.config)
        params.update(self.estimator.chosen_params())
        best = self.fit_info.get("best_epoch")
        if self.estimator.trainable and best:
            params["epochs"] = int(best)
        return params

    def refit_all(self, kg: KnowledgeGraph, log: Callable[[str], None] | None = None,
                  scenarios: Sequence[str] | None = None) -> "Recommender":
        """A new model of the settings chosen by this fit (:meth:`refit_params`), fitted on every
        interaction of ``kg``: the deployment step after choosing settings on a split. This model is
        left unchanged; the new one cannot be evaluated on that split (it has seen its test part).
        The pinned choices need no validation part: the hybrid and ``ease+rules`` apply one-value
        prior grids as given (:func:`kgrec.models.priors_select.pinned_weight`).
        ``fit_info["refit_all"]`` records the settings it was given.

        Args:
            kg: the graph (usually the one this model was fitted on a split of).
            log: as in :meth:`fit`.
            scenarios: fit on the interactions of these scenarios only (as in :meth:`fit`).
        """
        params = self.refit_params()
        rec = Recommender(self.model_name, **params)
        rec.fit(kg, None, log=log, scenarios=scenarios)
        rec.estimator.fit_info = {**rec.fit_info, "refit_all": {
            "params": _jsonable(params), "chosen_params": _jsonable(self.estimator.chosen_params()),
            "selected_epoch": self.fit_info.get("best_epoch") if self.estimator.trainable else None}}
        return rec

    def _require_fit(self) -> None:
        if self.users is None:
            raise KgrecError("this Recommender is not fitted: call .fit(kg, split) or Recommender.load(dir)")

    @staticmethod
    def _check_split(split: Split, n_users: int, n_items: int) -> None:
        if split.num_users != n_users or split.num_items != n_items:
            raise SplitError(f"the split has {split.num_users} users / {split.num_items} items but the "
                             f"model's graph has {n_users} / {n_items}: split the same graph")

    def update(self, kg: KnowledgeGraph, new=None, epochs: int = 5, replay: float = 0.2, l2_pull: float = 0.0,
               log: Callable[[str], None] | None = None, scenarios: Sequence[str] | None = None) -> "Recommender":
        """Continue a fitted model on new interactions, adding new users and items (:mod:`kgrec.dynamics.update`).

        Closed-form models refit on old + new interactions; embedding models train ``epochs`` more
        epochs on the new interactions plus ``replay`` x a sample of the old ones, with an L2 pull of
        ``l2_pull`` towards the previous weights. The model changes only when the update succeeds;
        a saved checkpoint is never touched (``save`` the result elsewhere). ``fit_info["update"]``
        summarises what was added.

        Args:
            kg: a graph holding the new interactions (old ones in it are not counted again).
            new: which interactions of ``kg``: ``None`` (all), an ``Interactions`` or a ``Split`` (its train).
            scenarios: keep only the new interactions of these scenarios of ``kg.scenarios``: a model
                fitted on a source scenario continued on a target one is a transfer
                (``benchmarks/scenarios.py``); default ``None``: all.
        """
        self._require_fit()
        if scenarios is not None:

            new = select(kg, kg.interactions if new is None else new, scenarios)
        est, users, items, info = update_estimator(self.estimator, self.users, self.items, kg, new, epochs=epochs,
                                                   replay=replay, l2_pull=l2_pull, log=log,
                                                   item_labels=self.item_labels)
        if est is not self.estimator:
            labels = {iri: kg.label(i) for i, iri in enumerate(kg.items)}
            self.item_labels = ((self.item_labels or list(self.items))
                                + [labels[iri] for iri in items.labels[len(self.items):]])
            # the known items grow by every interaction of 'kg' (ids of old users and items are kept)
            old = self.known_items
            umap = torch.tensor([users.id(x) for x in kg.users], dtype=torch.long)
            imap = torch.tensor([items.id(x) for x in kg.items], dtype=torch.long)
            rows = torch.repeat_interleave(torch.arange(old[0].numel() - 1), old[0][1:] - old[0][:-1])
            ia = kg.interactions
            self._known = seen_csr(torch.cat([rows, umap[ia.user]]), torch.cat([old[1], imap[ia.item]]),
                                   len(users), len(items))
            self.estimator, self.users, self.items = est, users, items
        self.estimator.fit_info = {**self.estimator.fit_info, "update": info}
        return self

    # --------------------------------------------------------------- scoring
    @property
    def known_items(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every item each user has in the graph of the fit, as a CSR ``(indptr [U + 1], indices
        [nnz])`` of ids (CPU, items sorted within a row): all of ``kg.interactions``, so the
        training, validation and test interactions of a split of that graph alike, grown by
        :meth:`update`. :meth:`recommend` leaves them out. A checkpoint saved before this was
        recorded gives the training history instead.
        """
        self._require_fit()
        if self._known is None:
            ctx = self.estimator.context
            return ctx["hist_indptr"].cpu(), ctx["hist_indices"].cpu()
        return self._known

    def _exclusions(self, exclude) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """``exclude`` of :meth:`recommend` as (item ids left out for every user or ``None``,
        ``{user IRI: item ids}``).
        """
        if exclude is None:
            return None, {}
        if isinstance(exclude, Mapping):
            per_user = {}
            for user, iris in exclude.items():
                if not isinstance(user, str) or isinstance(iris, str) or not isinstance(iris, Sequence | set):
                    raise KgrecError("'exclude' as a mapping must map user IRIs to lists of item IRIs "
                                     f"(got {user!r}: {iris!r:.80})")
                self.users.id(user)  # an unknown user is an error, not silently nothing
                per_user[user] = self.items.ids(list(iris))
            return None, per_user
        if isinstance(exclude, str) or not isinstance(exclude, Sequence | set):
            raise KgrecError(f"'exclude' must be a list of item IRIs or a mapping user IRI -> item IRIs "
                             f"(got {type(exclude).__name__})")
        return self.items.ids(list(exclude)), {}

    @torch.no_grad()
    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Raw scores ``[B, I]`` of user ids ``[B]`` (no masking), on the CPU."""
        self._require_fit()
        return self.estimator.score(users).float().cpu()

    @torch.no_grad()
    def recommend(self, users: str | Sequence[str], k: int = 10, exclude_seen: bool = True,
                  candidates: Sequence[str] | None = None,
                  batch_size: int = 1024, index=None,
                  exclude: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                  ) -> dict[str, list[tuple[str, float]]]:
        """Top-``k`` items for each user IRI, as ``{user: [(item IRI, score), ...]}``, best first.

        A served list never repeats what the user already has: every item the user has in the
        graph the model was fitted on (its training, validation and test interactions alike, see
        :attr:`known_items`) is left out unless ``exclude_seen=False``. The evaluation is not
        affected (:meth:`evaluate` masks by its protocol). Users are scored ``batch_size`` at a
        time, so memory stays at ``[batch_size, num_items]`` scores however many users are asked.

        Args:
            users: one user IRI or several.
            k: items per user.
            exclude_seen: leave out the items each user has in the fitted graph (default ``True``).
            candidates: rank only these item IRIs (not with ``index``).
            batch_size: users scored at a time.
            index: a faiss :class:`kgrec.ann.ItemIndex` from :meth:`build_index` answers instead of
                full ranking; it leaves out the same items.
            exclude: more item IRIs to leave out in this call: a list (for every user) or a mapping
                ``{user IRI: [item IRI, ...]}`` (users not asked are ignored); applied whatever
                ``exclude_seen`` says.

        Raises:
            KgrecError: a bad ``k``/``batch_size``/``exclude``, or ``candidates`` with ``index``.
            UnknownIRIError: a user or item IRI the model does not know.
        """
        self._require_fit()
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise KgrecError(f"'k' must be a positive integer (got {k!r})")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise KgrecError(f"'batch_size' must be a positive integer (got {batch_size!r})")
        if isinstance(users, str):
            users = [users]
        users = list(users)
        ids = self.users.ids(users)
        keep = None
        if candidates is not None:
            keep = torch.zeros(len(self.items), dtype=torch.bool)
            keep[self.items.ids(list(candidates))] = True
        if index is not None and keep is not None:
            raise KgrecError("'candidates' cannot be combined with 'index' (the index covers every item)")
        every, per_user = self._exclusions(exclude)
        known = self.known_items if exclude_seen else None
        out = {}
        for b in range(0, len(users), batch_size):
            chunk = ids[b:b + batch_size]
            # what this chunk leaves out, as a CSR over its rows (no dense [B, I] mask; profiled:
            # dense history rows were ~1/3 of the time)
            drop = _chunk_exclusions(chunk, users[b:b + batch_size], known, every, per_user, len(self.items))
            rows = torch.arange(chunk.numel())
            if index is not None:

                vals, idx = index.search(dot_product_vectors(self.estimator)[0][chunk], k, seen=drop, users=rows)
            else:
                scores = self.score(chunk)  # [B, I]
                if drop is not None:
                    # a dot-product model's scores are a new product each call: mask in place, no copy
                    scores = mask_seen(scores, rows, *drop, inplace=self.estimator.scores_by_dot_product)
                if keep is not None:
                    scores = scores.masked_fill(~keep, -torch.inf)
                vals, idx = topk(scores, min(k, scores.shape[1]))  # ties -> lower item id, as the evaluator
            for u, v_row, i_row in zip(users[b:b + batch_size], vals.tolist(), idx.tolist()):
                out[u] = [(self.items[i], v) for v, i in zip(v_row, i_row) if v != -float("inf")]
        return out

    def build_index(self, kind: str = "flat", **options):
        """A faiss top-K index over the item vectors, for ``recommend(..., index=...)``
        (:mod:`kgrec.ann`; dot-product models only; ``pip install faiss-cpu``).
        """
        self._require_fit()
        return build_index(self.estimator, kind=kind, **options)

    def explain(self, user_iri: str, item_iri: str, max_paths: int = 3, kg: KnowledgeGraph | None = None,
                **options):
        """Why ``item_iri`` is recommended to ``user_iri``: KG paths from the user's training items,
        the history items the model ties to it, and for the hybrid the cross-attention weights and
        the score's share per branch (see :mod:`kgrec.explain`).

        Args:
            user_iri, item_iri: the pair to explain.
            max_paths: paths to return, best first.
            kg: the graph the model was trained on; defaults to the one passed to :meth:`fit`
                (required after :meth:`load`).
            **options: ``max_hops``, ``max_candidates``, ``method`` of
                :meth:`kgrec.explain.Explainer.explain`.

        Returns:
            a :class:`kgrec.explain.Explanation` (``.to_text()``, ``.to_dict()``).
        """
        self._require_fit()
        if kg is None and self._kg is None:
            raise KgrecError("'kg' is required: this Recommender was loaded from disk, pass the graph it was "
                             "trained on (kgrec.load(...))")
        kg = kg if kg is not None else self._kg
        if self._explainer is None or self._explainer.kg is not kg:
            self._explainer = Explainer(self, kg)
        return self._explainer.explain(user_iri, item_iri, max_paths=max_paths, **options)

    @torch.no_grad()
    def recommend_for_history(self, items: Sequence[str], times: Sequence[float] | None = None, k: int = 10,
                              exclude_seen: bool = True) -> list[tuple[str, float]]:
        """Top-``k`` ``[(item IRI, score), ...]`` for a user who is not in the model, from the item IRIs
        they interacted with (and optionally when, as unix seconds), without refitting
        (the estimator's ``score_history``: history row for closed-form models, fold-in for embedding models).
        """
        self._require_fit()
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise KgrecError(f"'k' must be a positive integer (got {k!r})")
        if isinstance(items, str):
            items = [items]
        ids = self.items.ids(list(items))
        t = None
        if times is not None:
            if len(times) != len(ids):
                raise KgrecError(f"'times' must give one time per item ({len(ids)} items, got {len(times)} times)")
            t = torch.as_tensor(list(times), dtype=torch.float64)
        cfg = self.estimator.config
        w = history_weights(t, len(ids), getattr(cfg, "half_life_days", None))
        labels = self.item_labels if len(self.item_labels or []) == len(self.items) else list(self.items)
        scores = self.estimator.score_history(ids, w, times=t, labels=labels).unsqueeze(0)
        if exclude_seen:
            scores[0, ids] = -torch.inf
        vals, idx = topk(scores, min(k, scores.shape[1]))
        return [(self.items[i], v) for v, i in zip(vals[0].tolist(), idx[0].tolist()) if v != -float("inf")]

    def evaluate(self, split: Split, ks: Sequence[int] = (10, 20), part: str = "test",
                 users: torch.Tensor | None = None, batch_size: int = 1024, *, per_user: bool = False) -> dict:
        """Full-ranking metrics on ``split.<part>`` (PROTOCOL.md): seen items masked, users without
        items in that part not counted; users are scored ``batch_size`` at a time.

        With ``per_user=True`` the result also holds ``"per_user"``: ``{"users": [...], "ndcg@10":
        [...], ...}``, plain JSON-able lists aligned with ``"users"`` (the evaluated users' integer
        ids in ``split``, ascending), one per metric of :attr:`kgrec.evaluation.evaluator.Evaluator.per_user`
        (NaN, e.g. the AUC of a user without negatives, becomes ``None``), for paired tests.
        """
        self._require_fit()
        self._check_split(split, len(self.users), len(self.items))
        item_pop = torch.bincount(split.train.item, minlength=len(self.items)).float()
        ev = Evaluator(split, ks=tuple(ks), part=part, batch_size=batch_size, users=users,
                       item_popularity=item_pop)
        out = ev(self.score)
        if per_user:
            table = {"users": [int(u) for u in ev.users.tolist()]}
            for key, values in ev.per_user.items():
                table[key] = [None if math.isnan(v) else float(v) for v in values.tolist()]
            out["per_user"] = table
        return out

    # --------------------------------------------------------------- storage
    def _resume_state(self, directory) -> dict | None:
        if not (Path(directory) / "config.json").is_file():
            directory = previous_checkpoint(directory)  # a crash between the two renames of a save
            if directory is None:
                return None
        # keys and types of config.json (its settings must then equal this model's, compared below)
        meta, tensors = load_checkpoint(directory, check=lambda meta, header: check_top_level(
            meta, Path(directory) / "config.json"))
        # as save() writes it (JSON: tuples come back as lists), so that equal settings compare equal
        mine = _jsonable(dataclasses.asdict(self.estimator.config))
        theirs = meta.get("config", {})
        differ = sorted(k for k in mine if k not in ("epochs", "progress", "device") and theirs.get(k) != mine[k])
        if meta.get("model") != self.model_name or differ or not meta.get("progress"):
            raise CheckpointError(f"cannot resume from '{directory}': it holds model {meta.get('model')!r}"
                                  + (f" with other settings for {', '.join(differ)}" if differ else "")
                                  + ("" if meta.get("progress") else " and no training progress"))
        for what, saved, mine in (("users", meta.get("users"), self.users), ("items", meta.get("items"), self.items)):
            if saved != mine.to_list():
                n = len(saved) if isinstance(saved, list) else 0
                raise CheckpointError(f"cannot resume from '{directory}': it was trained on other {what} ({n} "
                                      f"{what}, this graph has {len(mine)}{_first_difference(saved, mine)}); "
                                      "resume on the same graph and mapping, or use another checkpoint directory")
        state = {k[7:]: v for k, v in tensors.items() if k.startswith("module.")}
        trainer = {k[8:]: v for k, v in tensors.items() if k.startswith("trainer.")}
        return {"state": state, **meta["progress"], "trainer_tensors": trainer,
                "path": Path(directory) / "model.safetensors"}

    def save(self, directory: str | os.PathLike, progress: dict | None = None,
             trainer_tensors: dict[str, torch.Tensor] | None = None) -> Path:
        """Save config, id maps and weights (safetensors + JSON) into ``directory``, atomically.

        ``progress`` (``{"epoch", "valid", "trainer"}``) and ``trainer_tensors`` (optimizer and RNG
        state) let a later ``fit(..., resume=True)`` continue; a fitted gradient model records its
        selected epoch by default. The directory gets a ``manifest.json`` of SHA-256 hashes that
        :meth:`load` verifies; the checkpoint it replaces is kept as ``<directory>.prev``.
        """
        self._require_fit()
        info = self.estimator.fit_info
        if progress is None and info.get("best_epoch") and info.get("valid"):
            progress = {"epoch": info["best_epoch"], "valid": info["valid"]}
        meta = {
            "model": self.model_name,
            "config": dataclasses.asdict(self.estimator.config),
            "meta": self.estimator.meta,
            "fit_info": _jsonable(self.estimator.fit_info),
            "users": self.users.to_list(),
            "items": self.items.to_list(),
            "item_labels": self.item_labels,
            "kgrec_version": _version(),
            "progress": _jsonable(progress),
        }
        tensors = self.estimator.state_tensors()
        if self._known is not None:
            tensors.update({"known.indptr": self._known[0].contiguous(), "known.indices": self._known[1].contiguous()})
        tensors.update({f"trainer.{k}": v.detach().cpu() for k, v in (trainer_tensors or {}).items()})
        return save_checkpoint(directory, meta, tensors)

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str = "cpu", *, text_model: str | None = None,
             text_allow_pickle: bool = False, cache_dir: str | None = None) -> "Recommender":
        """Reload a model saved with :meth:`save` (no pickle; weights map to ``device``).

        A checkpoint is untrusted input (:mod:`kgrec.training.checkpoint_schema`): ``config.json`` must hold
        the model's known settings with their types and ranges, and every tensor's dtype and shape
        must agree with the model built from it, all checked before a tensor is read. Settings that
        load code or name files are never taken from the checkpoint (the values it records are
        informative only): they are the arguments below.

        Args:
            directory: the checkpoint directory.
            device: where the weights go (default ``"cpu"``).
            text_model: the local text model directory of a hybrid or content-knn model (``None``:
                the packaged MiniLM). Needed to reload a hybrid whose text encoder was fine-tuned
                (its architecture), and to encode new texts (:meth:`recommend_for_history`).
            text_allow_pickle: accept a ``text_model`` holding only pickle weights (default ``False``).
            cache_dir: the text-embedding cache directory (``None``: env ``KGREC_CACHE`` or
                ``~/.cache/kgrec``; ``""``: none).

        Raises:
            CheckpointError: the directory is incomplete, fails its SHA-256 manifest, or holds a
                config or tensors a kgrec model cannot have (the message names the file and the
                field, and the previous checkpoint when one is kept).
        """
        d = Path(directory)
        loading = {"text_model": text_model, "text_allow_pickle": text_allow_pickle, "cache_dir": cache_dir}
        holder: dict = {}

        def check(meta: dict, header: dict) -> None:
            check_top_level(meta, d / "config.json")
            models = _models()
            if meta["model"] not in models:
                raise CheckpointError(f"'{d / 'config.json'}' field 'model': unknown model {meta['model']!r:.100}")
            config_cls = models[meta["model"]].Config
            params = check_config(config_cls, meta["config"], d / "config.json", meta["model"])
            fields = {f.name for f in dataclasses.fields(config_cls)}
            params.update({k: v for k, v in loading.items() if k in fields})
            try:
                rec = cls(meta["model"], **params)
            except KgrecError as e:
                raise CheckpointError(f"'{d / 'config.json'}' field 'config': {e}") from None
            rec.estimator.meta = meta["meta"]
            check_header(rec.estimator, header, d / "model.safetensors")
            holder["rec"] = rec

        meta, tensors = load_checkpoint(d, check=check)
        rec = holder["rec"]
        est = rec.estimator
        est.fit_info = meta.get("fit_info", {})
        try:
            est.load_state_tensors(tensors)
        except (RuntimeError, KeyError, ValueError) as e:  # what the header check did not foresee
            raise CheckpointError(f"'{d / 'model.safetensors'}': the tensors do not fit the model ({e})") from None
        check_context_values(est, d / "model.safetensors")
        est.to(device)
        rec.users = Vocab.from_list(meta["users"], "user")
        rec.items = Vocab.from_list(meta["items"], "item")
        rec.item_labels = meta.get("item_labels", [])
        if "known.indptr" in tensors:  # older checkpoints lack it: known_items falls back to training
            rec._known = check_known(tensors, len(rec.users), len(rec.items), d / "model.safetensors")
        return rec

    def __repr__(self) -> str:
        state = f"{len(self.users)} users, {len(self.items)} items" if self.users else "not fitted"
        return f"Recommender({self.model_name!r}, {state})"


def _known_csr(inter: Interactions, num_users: int, num_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (user, item) pairs of ``inter`` as a CSR of item ids per user (duplicates merged), on the CPU."""
    return seen_csr(inter.user.long().cpu(), inter.item.long().cpu(), num_users, num_items)


def _chunk_exclusions(chunk: torch.Tensor, iris: Sequence[str], known: tuple[torch.Tensor, torch.Tensor] | None,
                      every: torch.Tensor | None, per_user: dict[str, torch.Tensor],
                      num_items: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The items to leave out of each row of a chunk of users, as a CSR over the chunk's rows.

    Args:
        chunk: ``[B]`` user ids; iris: their IRIs.
        known: the known items per user id (``None``: leave them in).
        every: ``[n]`` item ids left out for every row (``None``: none).
        per_user: user IRI -> ``[n]`` item ids left out of that user's rows.

    Returns:
        ``(indptr [B + 1], indices [nnz])`` or ``None`` when nothing is left out.
    """
    rows, cols = [], []
    if known is not None:
        r, c = csr_rows(known[0], known[1], chunk)
        rows.append(r)
        cols.append(c)
    B = chunk.numel()
    if every is not None and every.numel():
        rows.append(torch.arange(B).repeat_interleave(every.numel()))
        cols.append(every.repeat(B))
    for pos, iri in enumerate(iris):
        if iri in per_user:
            rows.append(torch.full((per_user[iri].numel(),), pos, dtype=torch.long))
            cols.append(per_user[iri])
    if not rows:
        return None
    return seen_csr(torch.cat(rows), torch.cat(cols), B, num_items)


def _first_difference(saved, mine: Vocab) -> str:
    if not isinstance(saved, list):
        return ""
    for i, (a, b) in enumerate(zip(saved, mine.to_list())):
        if a != b:
            return f"; id {i} is {a!r} there, {b!r} here"
    return ""


def _version() -> str:
    return __version__


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.tolist()
    return x


def select_half_life(model: str, kg, split, grid: Sequence[float | None] = (None, 30.0, 90.0, 365.0, 1095.0),
                     **params):
    """The learned variant: fit ``model`` once per half-life in ``grid`` and keep the one with the best
    validation NDCG@10 (the test part is never read).

    Returns:
        ``(best Recommender, [{"half_life_days": h, "valid_ndcg@10": v}, ...])``.
    """
    if not len(split.valid):
        raise KgrecError("select_half_life needs a split with a validation part ('split.valid' is empty)")
    if not grid:
        raise KgrecError("'grid' must hold at least one half-life (got an empty grid)")
    best, best_rec, trials = -math.inf, None, []
    for h in grid:
        rec = Recommender(model, **dict(params, half_life_days=h)).fit(kg, split)
        v = rec.evaluate(split, ks=(10,), part="valid")["ndcg@10"]
        trials.append({"half_life_days": h, "valid_ndcg@10": v})
        if v > best:
            best, best_rec = v, rec
    return best_rec, trials
