"""The hybrid estimator: prepares graph, text and history tensors and trains :class:`HybridModel`."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from kgrec.data.graph import KnowledgeGraph, collaborative_edges
from kgrec.data.splits import Split
from kgrec.data.text import user_history
from kgrec.errors import KgrecError
from kgrec.models.base import PairwiseEstimator, check_history, history_row
from kgrec.models.contrastive import contrastive_batch_loss
from kgrec.models.hybrid.config import HybridConfig
from kgrec.models.hybrid.priors import HybridPriors
from kgrec.models.hybrid.text import HybridText
from kgrec.models.hybrid.update import HybridUpdate
from kgrec.nn.hybrid import HybridModel
from kgrec.nn.linear import recency_weights, time_steps_back
from kgrec.nn.losses import l2_reg
from kgrec.nn.sparse import gcn_adjacency
from kgrec.training.trainer import fit_pairwise

__all__ = ["HybridEstimator"]

#: ``stages="cf-first"``: the gate logits the KG and text branches start the second stage with (the CF
#: branch's is 0), so that its first ranking is the CF stage's, barely perturbed
STAGE_GATE_LOGIT = -4.0


class HybridEstimator(HybridPriors, HybridText, HybridUpdate, PairwiseEstimator):
    """KG GNN + BERT text + cross-attention + CF, trained with BPR (see :class:`HybridModel`)."""

    name = "hybrid"
    explains_by_parts = True
    Config = HybridConfig

    def __init__(self, config: HybridConfig):
        super().__init__(config)
        self.text_encoder = None
        self.tokenizer = None
        self._user_text_list: list[str] = []
        # text_prefix_cache: (frozen-layer states [U, L, H], mask [U, L]), False where unusable, None unset
        self._prefix: tuple[Tensor, Tensor] | bool | None = None
        self._text_stale = False
        # this epoch's pseudo-cold items and the graphs without their user-item edges (unfreeze)
        self._cold_epoch: dict | None = None
        # (item_seg [I0, S, H], mask [I0, S]) of the first items, kept instead of re-encoded (update())
        self._reuse_item_text: tuple[Tensor, Tensor] | None = None

    # ------------------------------------------------------------------- data
    def prepare(self, kg: KnowledgeGraph, split: Split) -> None:
        super().prepare(kg, split)
        cfg = self.config
        train = split.train
        U, I = kg.num_users, kg.num_items
        u, i = train.user, train.item + U
        self.context["cf_edge_index"] = torch.stack([torch.cat([u, i]), torch.cat([i, u])])
        edge_index, edge_type, num_nodes, num_types = collaborative_edges(kg, train)
        self.context["edge_index"], self.context["edge_type"] = edge_index, edge_type
        self.context["item_warm"] = torch.bincount(train.item, minlength=I) > 0
        items, mask, age = user_history(train, U, max_len=cfg.max_history)
        self.context.update(hist_items=items, hist_mask=mask, hist_age=age.float())
        self.meta.update(num_entities=kg.num_entities, num_edge_types=num_types, text_dim=0,
                         # the KG vocabulary, so that update() can merge a new graph (kgrec.dynamics.update_hybrid)
                         entity_labels=list(kg.entities.labels[kg.num_items:]),
                         relation_labels=list(kg.relations.labels))
        self._prepare_priors()
        if cfg.use_text:
            item_seg, seg_mask, user_vec = self._encode_texts(kg, split)
            self.context.update(item_text=item_seg, item_text_mask=seg_mask, user_text=user_vec)
            self.meta["text_dim"] = int(item_seg.shape[-1])

    def unfreeze(self) -> None:
        """Start of a training epoch: draw this epoch's pseudo-cold items (``item_dropout``)."""
        super().unfreeze()
        self._cold_epoch = self._draw_pseudo_cold() if self.module.item_dropout > 0 else None

    @torch.no_grad()
    def _draw_pseudo_cold(self) -> dict:
        """``item_dropout`` of the warm items, and the CF / KG graphs without their user-item edges.

        Node layouts: the CF graph has users ``[0, U)`` then items ``[U, U + I)``; the collaborative
        KG has entities ``[0, E)`` (items first, ``[0, I)``) then users, and its user-item edges are
        its last two edge types (:func:`kgrec.data.graph.collaborative_edges`).
        """
        c, m = self.context, self.module
        U, I, E = self.meta["num_users"], self.meta["num_items"], self.meta["num_entities"]
        warm = c["item_warm"].bool()
        cold = (torch.rand(I, device=warm.device) < m.item_dropout) & warm
        out: dict = {"cold": cold}
        if m.use_cf:
            cf = c["cf_edge_index"]
            node_cold = torch.cat([cold.new_zeros(U), cold])
            keep = ~(node_cold[cf[0]] | node_cold[cf[1]])
            out["adj"] = gcn_adjacency(cf[:, keep], U + I)
        if m.use_kg:
            ei, et = c["edge_index"], c["edge_type"]
            ui = et >= self.meta["num_edge_types"] - 2
            item = torch.where(ei[0] < I, ei[0], ei[1])  # the item end of a user-item edge
            drop = ui & (item < I) & cold[item.clamp(max=I - 1)]
            out["edges"] = (ei[:, ~drop], et[~drop])
            out["graph"] = m.kg_encoder.prepare_graph(ei[:, ~drop], et[~drop], E + U)
        return out

    def freeze(self) -> None:
        self._cold_epoch = None
        self._refresh_user_texts()
        super().freeze()

    # ------------------------------------------------------------------ model
    def build(self) -> None:

        cfg, m = self.config, self.meta
        self.module = HybridModel(
            m["num_users"], m["num_items"], m["num_entities"], m["num_edge_types"],
            text_dim=m["text_dim"], dim=cfg.dim, kg_layers=cfg.kg_layers, kg_conv=cfg.kg_conv,
            cf_layers=cfg.cf_layers, num_heads=cfg.num_heads, dropout=cfg.dropout, use_kg=cfg.use_kg,
            use_text=cfg.use_text and m["text_dim"] > 0, use_cf=cfg.use_cf, fusion=cfg.fusion,
            decay_days=cfg.decay_days, item_dropout=cfg.item_dropout, gates=cfg.gates)
        if self.tunes_text:
            # registered on the module so the best epoch's BERT weights are kept and saved with it
            self.module.add_module("text_encoder", self._text_model())

    def param_groups(self) -> list[dict]:
        """The groups of :class:`HybridText`, with the CF branch's parameters at ``cf_lr`` when set."""
        groups = super().param_groups()
        if self.config.cf_lr is None or self.module.cf is None:
            return groups
        cf = {id(p) for p in self.module.cf.parameters()}
        first = groups[0]["params"]
        if not any(id(p) in cf for p in first):  # frozen (the second of stages="cf-first")
            return groups
        return [{"params": [p for p in first if id(p) in cf], "lr": self.config.cf_lr},
                {**groups[0], "params": [p for p in first if id(p) not in cf]}, *groups[1:]]

    def penalty(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """L2 of the free id embeddings: the CF branch's (the first ``dim`` columns of
        :meth:`HybridModel.ego`) at ``cf_reg`` when set, the KG branch's at ``reg``.
        """
        cfg, m = self.config, self.module
        if cfg.cf_reg is None or not m.use_cf:
            return super().penalty(users, pos, neg)
        ego_u, ego_p, ego_n = self.batch_ego(users, pos, neg)
        d = m.dim
        cf = l2_reg(ego_u[:, :d], ego_p[:, :d], ego_n[:, :d])
        rest = l2_reg(ego_u[:, d:], ego_p[:, d:], ego_n[:, d:]) if m.use_kg else 0.0
        return cfg.cf_reg * cf + cfg.reg * rest

    def batch_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """The loss of the fused score; while the CF branch trains alone (no KG, no text, no pseudo-cold
        items: the CF stage of ``stages="cf-first"``), the same loss from the CF branch's LightGCN
        vectors directly, times the CF gate (never-trained items at 0). The fused vectors are then
        those vectors with two zero branches, so the score is the same, without building and
        back-propagating ``[U, 3d]`` assemblies (the CF stage ran ~20% slower per epoch than
        LightGCN through them). With
        ``cf_cl_weight`` > 0 that loss is the ``lightgcn`` peer's XSimGCL loss
        (:func:`kgrec.models.contrastive.contrastive_batch_loss`).
        """
        cfg, m = self.config, self.module
        if not (m.use_cf and not (m.use_kg or m.use_text) and m.item_dropout == 0):
            return super().batch_loss(users, pos, neg)
        n = self.meta["num_users"] + self.meta["num_items"]
        adj = self.derived("cf_adj", lambda: gcn_adjacency(self.context["cf_edge_index"], n))
        gate = m.branch_weights()[0]
        warm = self.context["item_warm"].to(gate.dtype).unsqueeze(-1)  # items never trained score 0, as fused
        if cfg.cf_cl_weight > 0:
            return contrastive_batch_loss(self, m.cf, adj, users, pos, neg, cfg.cf_cl_weight, cfg.cf_cl_noise,
                                          cfg.cf_cl_temperature, cfg.cf_cl_layer, scale=gate, item_scale=warm)
        p, q = m.cf(adj)
        q = q * warm
        return self.ranking_loss(p[users] * gate, q[pos], q[neg]) + self.penalty(users, pos, neg)

    def ranking_loss(self, u: Tensor, p: Tensor, n: Tensor) -> Tensor:
        """The loss of the fused score, plus ``branch_loss`` x the loss of each active branch's own
        score. A branch's slice of the user vectors is divided by its gate, so the extra losses train
        the branch, not the gates (whose gradient from them is exactly zero).
        """
        loss = super().ranking_loss(u, p, n)
        if self.config.branch_loss <= 0:
            return loss
        m = self.module
        gates = m.branch_weights()
        for k, (name, sl) in enumerate(m.branch_slices().items()):
            if not (m.use_cf, m.use_kg, m.use_text)[k] or float(gates[k].detach()) == 0.0:  # off, or a free gate at 0
                continue
            loss = loss + self.config.branch_loss * super().ranking_loss(u[..., sl] / gates[k], p[..., sl], n[..., sl])
        return loss

    def train_module(self, split: Split, **kwargs) -> None:
        """``stages="joint"``: one :func:`fit_pairwise` run of every branch; ``"cf-first"``: the CF branch
        alone, then the others over it (:class:`HybridConfig`); with neither KG nor text, the first stage
        only. ``fit_info`` is the second stage's, with ``best_epoch`` counted in it (0: the CF stage's
        model was kept), the whole fit's seconds (``fit_seconds``, ``seconds_to_best``) and the first
        stage's figures under ``"cf_stage"``.
        """
        cfg, m = self.config, self.module
        if cfg.stages == "joint" or not m.use_cf:
            return super().train_module(split, **kwargs)
        if kwargs.get("resume") is not None:
            raise KgrecError("hybrid: a fit with stages='cf-first' cannot be resumed from a checkpoint; "
                             "fit it again, or use stages='joint'")
        cf_params = list(m.cf.parameters())
        branches, item_dropout = (m.use_kg, m.use_text), m.item_dropout
        stage_kw = {k: v for k, v in kwargs.items() if k != "checkpoint"}  # checkpoints: the final stage's
        try:  # 1: the CF branch alone, as a LightGCN
            m.use_kg = m.use_text = False
            m.item_dropout = 0.0
            self.config = replace(cfg, batch_size=cfg.cf_batch_size, lr=cfg.lr if cfg.cf_lr is None else cfg.cf_lr,
                                  reg=cfg.reg if cfg.cf_reg is None else cfg.cf_reg, cf_lr=None, cf_reg=None,
                                  branch_loss=0.0, eval_every=1, patience=cfg.patience * cfg.eval_every)
            first = fit_pairwise(self, split, **(stage_kw if any(branches) else kwargs))
        finally:
            self.config = cfg
            (m.use_kg, m.use_text), m.item_dropout = branches, item_dropout
        if not any(branches):  # the CF branch alone (the ablation of both content branches): one stage
            return
        try:  # 2: the other branches over the frozen CF branch, from the CF ranking
            for p in cf_params:
                p.requires_grad_(False)
            with torch.no_grad():
                on = torch.tensor([False, m.use_kg, m.use_text])
                if m.gates == "softmax":
                    m.branch_gate.copy_(torch.where(on, STAGE_GATE_LOGIT, 0.0))
                else:
                    m.branch_gate.copy_(torch.where(on, math.exp(STAGE_GATE_LOGIT), 1.0) * m.branch_init)
            second = fit_pairwise(self, split, validate_start=True, **kwargs)
        finally:
            for p in cf_params:
                p.requires_grad_(True)
        second["fit_seconds"] += first["fit_seconds"]
        second["seconds_to_best"] += first["fit_seconds"]
        second["cf_stage"] = {k: first[k] for k in ("best_epoch", "epochs_run", "valid", "seconds_per_epoch_median",
                                                    "seconds_to_best", "fit_seconds")}
        self.fit_info = second

    def fit(self, kg: KnowledgeGraph, split: Split, **kwargs) -> "HybridEstimator":
        super().fit(kg, split, **kwargs)
        if self.tunes_text:  # the best epoch's BERT weights were just restored
            self._text_stale = True
            self.freeze()
        self._prefix = None  # text_prefix_cache: only training and the re-encoding above read it
        if len(split.valid) and ("ease_weight" in self.context or self._seq_candidates):
            self._calibrate_prior(split)
        elif not len(split.valid) and any(self._pinned_priors()):
            self._calibrate_prior(None)
        return self

    def batch_vectors(self, users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """A training batch's vectors from one forward pass that builds the vectors of the batch's
        distinct users only (:meth:`HybridModel.forward`'s ``users``), not of every user.
        """
        uniq, inv = torch.unique(users, return_inverse=True)
        u_vec, i_vec = self.embed(users=uniq)
        return u_vec[inv], i_vec[pos], i_vec[neg]

    def embed(self, return_attention: bool = False, edges: tuple[Tensor, Tensor] | None = None,
              parts: dict | None = None, users: Tensor | None = None):
        """User and item vectors (see :meth:`HybridModel.forward`; ``users``: those users' vectors only).

        ``edges`` (``edge_index [2, M]``, ``edge_type [M]``) replaces the collaborative KG the KG
        encoder passes messages over (explanations remove edges to see what they contributed);
        ``return_attention`` also returns the user fusion's attention over history items ``[U, L]``;
        ``parts`` (a dict) receives intermediate tensors (see :meth:`HybridModel.forward`).
        """
        c, m = self.context, self.module
        adj = graph = item_cold = None
        edge_index, edge_type = edges if edges is not None else (c["edge_index"], c["edge_type"])
        cold = self._cold_epoch if m.training and edges is None else None
        if cold is not None:  # a training step: this epoch's pseudo-cold items are cold everywhere
            item_cold = cold["cold"]
            adj = cold.get("adj")
            if "edges" in cold:
                (edge_index, edge_type), graph = cold["edges"], cold["graph"]
        elif m.use_cf:
            n = self.meta["num_users"] + self.meta["num_items"]
            adj = self.derived("cf_adj", lambda: gcn_adjacency(c["cf_edge_index"], n))
        if m.use_kg and cold is None:
            n = self.meta["num_entities"] + self.meta["num_users"]
            if edges is None:
                graph = self.derived("kg_graph", lambda: m.kg_encoder.prepare_graph(edge_index, edge_type, n))
            else:
                graph = m.kg_encoder.prepare_graph(edge_index, edge_type, n)
        # The fixed priors enter scores only, never a training step: fit trains the neural part before
        # their gates are chosen (they are 0 then), and update() keeps training it alone in the same
        # way. Their parts are [U, I] history rows and [I, I] matrices: carried through every step of
        # update() they made each step's vectors 2I columns wider (ML-latest-small, 9,742 items: 245 s
        # for a 5-epoch update, of which ~190 s in concatenating, indexing and back-propagating them).
        scoring = not m.training
        prior_user = prior_item = None
        if scoring and "ease_weight" in c and float(m.prior_gate) != 0.0:
            prior_user = self.derived("history", lambda: self.weighted_history(torch.arange(self.meta["num_users"],
                                                                                      device=self.device)))
            prior_item = c["ease_weight"].t()  # score = history @ B = <history_u, B[:, i]>
        seq_user = seq_item = None
        if scoring and "seq_weight" in c and float(m.seq_gate) != 0.0:
            all_users = torch.arange(self.meta["num_users"], device=self.device)
            seq_user = self.derived("recency", lambda: self.entry_rows(all_users, self.recency_weights()))
            seq_item = c["seq_weight"].t()  # score = recency rows @ T
        return m(adj, edge_index, edge_type, c["item_warm"], c.get("item_text"), c.get("item_text_mask"),
                 c.get("user_text"), c["hist_items"], c["hist_mask"], c["hist_age"], kg_graph=graph,
                 prior_user=prior_user, prior_item=prior_item, seq_user=seq_user, seq_item=seq_item,
                 return_attention=return_attention, parts=parts, item_cold=item_cold, users=users)

    # ------------------------------------------------------------ explanations
    @torch.no_grad()
    def branch_shares(self, u: int, i: int) -> dict[str, float]:
        """Each branch's part of the neural dot product of ``(u, i)``: ``{"cf", "kg", "text"}``."""
        uv, iv = self.vectors()
        slices = self.module.branch_slices(uv.shape[1])
        return {name: float(uv[u, s] @ iv[i, s]) for name, s in slices.items()}

    @torch.no_grad()
    def history_attention(self, u: int) -> list[tuple[int, float]]:
        """``[(history item, attention weight)]`` of training user ``u``'s behaviour text over
        their items' KG vectors, the largest first.
        """
        self.module.eval()
        _, _, attn = self.embed(return_attention=True)
        items = self.context["hist_items"][u].cpu()
        mask = self.context["hist_mask"][u].cpu()
        w = attn[u].float().cpu()
        out = [(int(items[j]), float(w[j])) for j in range(len(items)) if mask[j]]
        return sorted(out, key=lambda x: (-x[1], x[0]))

    @torch.no_grad()
    def occluded_score(self, u: int, i: int, triples: list[tuple[str, str, str]], kg: KnowledgeGraph) -> float:
        """The neural score of ``(u, i)`` with the KG edges of ``triples`` (IRIs of ``kg``, both
        directions) removed from the graph the KG encoder passes messages over.
        """
        ei, et = self.context["edge_index"], self.context["edge_type"]
        drop = torch.zeros(et.numel(), dtype=torch.bool, device=et.device)
        ents, rels = kg.entities, kg.relations
        for h, r, t in triples:
            hid, rid, tid = ents.id(h), rels.id(r), ents.id(t)
            drop |= (ei[0] == hid) & (ei[1] == tid) & (et == 2 * rid)
            drop |= (ei[0] == tid) & (ei[1] == hid) & (et == 2 * rid + 1)
        self.module.eval()
        uv, iv = self.embed(edges=(ei[:, ~drop], et[~drop]))
        return float(uv[u].float() @ iv[i].float())

    def embedding_tables(self) -> tuple[Tensor, ...]:
        """The CF branch's user and item rows (the tables ``update`` pulls towards their old
        values); none without a CF branch.
        """
        if self.module.cf is None:
            return ()
        w, n = self.module.cf.gcn.embedding.weight, self.module.num_users
        return w[:n], w[n:]

    @torch.no_grad()
    def score_history(self, items: Tensor, weights: Tensor, times: Tensor | None = None,
                      labels: list[str] | None = None) -> Tensor:
        """The neural part folds the user in over its CF and KG dimensions; the text branch's part
        is computed exactly from the history's behaviour text when the item ``labels`` are given
        (:meth:`history_text_vector`); the EASE prior adds its exact history-row part and the
        sequential rules their exact recency-row part when the history's ``times`` are given.
        Scoring trains nothing: no gradient reaches the model (the fold-in's own steps run inside).
        """
        check_history(items, weights)
        module = self.module
        i_vec = self.vectors()[1].cpu()
        dims, text = 3 * module.dim, None  # the neural part (the priors are exact)
        if labels is not None:
            t_u = self.history_text_vector(items, times, labels)
            if t_u is not None:
                s = module.branch_slices()["text"]
                text = i_vec[:, s] @ (module.branch_weights()[2].cpu() * t_u.cpu())
                dims = s.start  # fold in the CF and KG parts only
        scores = self.fold_in_scores(items, weights, dims=dims, offset=text)
        if "ease_weight" in self.context and float(module.prior_gate) != 0.0:
            row = history_row(self, items, weights)
            scores = scores + float(module.prior_gate) * (row @ self.context["ease_weight"])[0].cpu()
        if "seq_weight" in self.context and float(module.seq_gate) != 0.0 and times is not None:
            steps = time_steps_back(torch.tensor([0, items.numel()]), times.double())
            recency = recency_weights(steps, float(self.context["seq_recency"][0]))
            row = history_row(self, items, recency)
            scores = scores + float(module.seq_gate) * (row @ self.context["seq_weight"])[0].cpu()
        return scores.float()
