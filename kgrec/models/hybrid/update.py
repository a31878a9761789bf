"""The hybrid's incremental update: merge the old and new graphs, grow every table, train on."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from kgrec.data.graph import LABEL_PREDICATES, Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError
from kgrec.nn.linear import SequentialRules
from kgrec.training.continual import continue_pairwise, init_untrained_rows

__all__ = ["HybridUpdate"]


class HybridUpdate:
    """``Recommender.update`` for the hybrid (a mixin of :class:`~kgrec.models.hybrid.HybridEstimator`)."""

    def merged_graph(self, users: Vocab, items: Vocab, kg: KnowledgeGraph, interactions: Interactions,
                            item_labels: Sequence[str] | None = None) -> tuple[KnowledgeGraph, Tensor]:
        """The hybrid's old KG merged with ``kg``'s, over the merged ``users`` / ``items``.

        Args:
            users, items: the merged id maps (old labels first, in their old order).
            kg: the new graph.
            interactions: all interactions of the merged graph, in merged ids.
            item_labels: the old items' labels (titles), used for old items absent from ``kg``.

        Returns:
            ``(graph, node_map)``: the merged :class:`KnowledgeGraph`, and ``[E0 + U0]`` long: the new
            KG-node id of each old KG node (entities, then users), as the GNN's node table is laid out.
        """
        meta = self.meta
        if "entity_labels" not in meta or "relation_labels" not in meta:
            raise KgrecError("this hybrid model was saved before kgrec recorded its KG vocabulary, so it cannot be "
                             "updated incrementally: refit it once on all data (Recommender('hybrid', ...).fit(kg))")
        I0, U0, E0 = meta["num_items"], meta["num_users"], meta["num_entities"]
        old_attrs, old_rels = list(meta["entity_labels"]), list(meta["relation_labels"])
        I = len(items)
        attrs = old_attrs + sorted({x for x in kg.entities.labels[kg.num_items:]} - set(old_attrs) - set(items.labels))
        rels = old_rels + sorted(set(kg.relations.labels) - set(old_rels))
        entities = Vocab(items.labels + attrs, sort=False, name="entity")
        relations = Vocab(rels, sort=False, name="relation")
        R0 = len(old_rels)

        # old triples, back from the saved collaborative edges (forward KG types only)
        ei, et = self.context["edge_index"].cpu(), self.context["edge_type"].cpu()
        fwd = (et < 2 * R0) & (et % 2 == 0)
        ent_map = torch.cat([torch.arange(I0), torch.arange(I, I + E0 - I0)])  # old entity id -> merged
        old_triples = torch.stack([ent_map[ei[0, fwd]], et[fwd] // 2, ent_map[ei[1, fwd]]], 1)
        # the new graph's triples, mapped by IRI
        kg_ent = torch.tensor([entities.id(x) for x in kg.entities], dtype=torch.long)
        kg_rel = torch.tensor([relations.id(x) for x in kg.relations], dtype=torch.long)
        new_triples = (torch.stack([kg_ent[kg.triples[:, 0]], kg_rel[kg.triples[:, 1]], kg_ent[kg.triples[:, 2]]], 1)
                       if len(kg.triples) else torch.empty(0, 3, dtype=torch.long))
        triples = torch.unique(torch.cat([old_triples, new_triples]), dim=0)

        literals: dict[int, dict[str, list[str]]] = {}
        labels = list(item_labels or [])
        for i in range(I0):
            if i < len(labels) and labels[i]:
                literals[i] = {LABEL_PREDICATES[0]: [labels[i]]}
        for j, lits in kg.literals.items():  # the new data's own literals win
            literals[int(kg_ent[j])] = lits
        features = None
        if kg.features is not None:
            features = torch.full((len(entities), kg.features.shape[1]), math.nan, dtype=kg.features.dtype)
            features[kg_ent] = kg.features
        graph = KnowledgeGraph(users, items, entities, relations, triples, interactions, literals=literals,
                               features=features, feature_names=list(kg.feature_names) if features is not None else [])
        node_map = torch.cat([ent_map, torch.arange(len(entities), len(entities) + U0)])
        return graph, node_map

    def continued(self, users, items, kg, fresh, old, epochs, replay, l2_pull, item_labels=None, log=None):
        """Grow the three id spaces (users, items, KG nodes) and train on.
        Incremental update of the hybrid model (``Recommender.update`` on ``model="hybrid"``).

        The hybrid's tensors index three id spaces that grow with new data: users, items and the
        attribute entities / relations of the collaborative KG its GNN passes messages over. Its
        estimator records the labels of its attribute entities and relations (``meta["entity_labels"]``,
        ``meta["relation_labels"]``), so an update can rebuild the merged graph without the old data files:

        1. **Merged KG.** The old KG triples are read back from the saved collaborative edges (forward
           types ``2r`` below the user-item types); the new graph's triples are mapped by IRI. Items keep
           their ids, then come the old attribute entities in their old order, then the new ones; old
           relations keep their ids, new ones are appended. Old items' literals are not stored in a
           checkpoint, so in the merged graph an old item absent from the new data is known by its label
           (``Recommender.item_labels``); its *text vectors* are kept from the old model, not re-encoded
           (only new items' texts go through the text model).
        2. **Re-prepare.** A fresh estimator prepares the merged graph and all (old + new) interactions:
           collaborative edges, histories, behaviour texts (users with new interactions get new texts,
           through the text cache), and EASE refitted with the L2 weight the old fit selected.
        3. **Grow the tables.** Every weight whose shape did not change is copied. Embedding tables are
           copied row by row through the id maps: the CF table (users, then items), the KG node table
           (entities, then users), and the per-edge-type parameters of the KG encoder (types of the
           user-item edges move up when relations are added). In both the CF and the KG node tables a
           never-trained item starts from the mean of its KG-attribute neighbours and a never-trained
           user from the mean of their new items, as for BPR-MF (:func:`kgrec.training.continual.init_untrained_rows`).
        4. **Continue training** with BPR on the new interactions plus ``replay`` x a sample of the old
           ones, with the optional L2 pull of the old CF rows (:func:`kgrec.training.continual.continue_pairwise`).
           EASE's mixing weight is kept (no validation data is read during an update).
        """
        everything = old.concat(fresh)
        graph, node_map = self.merged_graph(users, items, kg, everything, item_labels)
        U, I, E = len(users), len(items), graph.num_entities
        U0, I0 = self.meta["num_users"], self.meta["num_items"]
        cfg = copy.deepcopy(self.config)
        if self.fit_info.get("prior_reg") is not None:  # the EASE weight the old fit selected
            cfg.priors = cfg.priors.replace(ease_reg=(float(self.fit_info["prior_reg"]),))
        new_est = type(self)(cfg)
        if "item_text" in self.context:  # old items keep their full-text vectors (not re-encoded)
            new_est._reuse_item_text = (self.context["item_text"], self.context["item_text_mask"])
        empty = Interactions.empty()
        new_est.prepare(graph, Split("update", 0, (1.0, 0.0, 0.0), U, I, everything, empty, empty))
        new_est._reuse_item_text = None
        if "seq_weight" in self.context:  # the sequential rules the old fit selected, refitted on all the data
            c = new_est.context
            c["seq_weight"] = SequentialRules(I, window=float(self.fit_info["seq_window"])).fit(
                c["hist_indptr"], c["hist_indices"], c["hist_time"]).weight
            c["seq_recency"] = self.context["seq_recency"].clone()
        torch.manual_seed(cfg.seed)
        new_est.build()

        self._grow_tables(new_est, node_map, U, I, E, kg, items, old, fresh)
        anchors = []
        if new_est.module.cf is not None:
            w = new_est.module.cf.gcn.embedding.weight.data
            anchors = [(w[:U], w[:U0].clone()), (w[U:], w[U:U + I0].clone())]
        continue_pairwise(new_est, fresh, old, everything, epochs, replay, l2_pull, anchors, log)
        new_est._prefix = None  # text_prefix_cache: only training reads it
        return new_est, "hybrid: merged KG, tables grown"

    @torch.no_grad()
    def _grow_tables(self, new_est, node_map: Tensor, U: int, I: int, E: int, kg, items, old, fresh) -> None:
        """Copy this model's weights into ``new_est``'s grown module (step 3 of :meth:`continued`)."""
        U0, I0, E0 = self.meta["num_users"], self.meta["num_items"], self.meta["num_entities"]
        T0, T = self.meta["num_edge_types"], new_est.meta["num_edge_types"]
        type_map = torch.cat([torch.arange(T0 - 2), torch.tensor([T - 2, T - 1])])
        cf_map = torch.cat([torch.arange(U0), U + torch.arange(I0)])  # old CF rows (users, items) -> new
        old_state, new_state = self.module.state_dict(), new_est.module.state_dict()
        for name, new in new_state.items():
            if name not in old_state:
                continue
            src = old_state[name].to(new)
            if src.shape == new.shape:
                new.copy_(src)
            elif name == "cf.gcn.embedding.weight":
                new[cf_map] = src
            elif name == "node_emb.weight":
                new[node_map] = src
            elif name.startswith("kg_encoder.") and src.shape[0] == T0 and new.shape[0] == T:
                new[type_map] = src
            else:
                raise KgrecError(f"update() cannot grow the hybrid's weight '{name}' from {tuple(src.shape)} "
                                 f"to {tuple(new.shape)}: refit the model")
        old_cf, old_nodes = old_state.get("cf.gcn.embedding.weight"), old_state.get("node_emb.weight")
        if old_cf is not None:  # CF table: users, then items
            w = new_state["cf.gcn.embedding.weight"]
            init_untrained_rows(w[:U], w[U:], old_cf[:U0], old_cf[U0:], old, fresh, kg, items)
        if old_nodes is not None:  # KG node table: items (first entities), then after the entities, users
            w = new_state["node_emb.weight"]
            init_untrained_rows(w[E:], w[:I], old_nodes[E0:], old_nodes[:I0], old, fresh, kg, items)
        new_est.module.load_state_dict(new_state)
