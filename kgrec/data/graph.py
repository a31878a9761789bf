"""The container every later stage reads: id maps, KG triples, interactions, literals."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kgrec.data.vocab import Vocab
from kgrec.errors import CheckpointError

__all__ = ["Interactions", "KnowledgeGraph", "collaborative_edges"]


@dataclass
class Interactions:
    """A set of (user, item) interactions as parallel tensors.

    Shapes:
        user, item: ``[N]`` long ids into ``KnowledgeGraph.users`` / ``KnowledgeGraph.items``.
        weight: ``[N]`` float (the rating, or 1.0 when the source has none).
        time: ``[N]`` float64 unix seconds, ``nan`` where the source has no time.
        scenario: ``[N]`` long ids into ``KnowledgeGraph.scenarios`` (behaviour type or domain), or
            ``None`` (default): every interaction is in scenario 0, as in a single-scenario graph.
    """

    user: torch.Tensor
    item: torch.Tensor
    weight: torch.Tensor
    time: torch.Tensor
    scenario: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.user.numel()
        for name in ("item", "weight", "time") + (("scenario",) if self.scenario is not None else ()):
            if getattr(self, name).numel() != n:
                raise ValueError(f"'{name}' has {getattr(self, name).numel()} entries, 'user' has {n}")

    @property
    def scenario_ids(self) -> torch.Tensor:
        """``[N]`` long scenario ids (zeros when :attr:`scenario` is ``None``)."""
        return torch.zeros(len(self), dtype=torch.long) if self.scenario is None else self.scenario

    @classmethod
    def empty(cls) -> "Interactions":
        return cls(torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long),
                   torch.empty(0), torch.empty(0, dtype=torch.float64))

    @classmethod
    def from_lists(cls, user, item, weight=None, time=None) -> "Interactions":
        user = torch.as_tensor(np.asarray(user, dtype=np.int64))
        item = torch.as_tensor(np.asarray(item, dtype=np.int64))
        n = user.numel()
        weight = torch.ones(n) if weight is None else torch.as_tensor(np.asarray(weight, dtype=np.float32))
        time = (torch.full((n,), math.nan, dtype=torch.float64) if time is None
                else torch.as_tensor(np.asarray(time, dtype=np.float64)))
        return cls(user, item, weight, time)

    def __len__(self) -> int:
        return self.user.numel()

    def select(self, index: torch.Tensor) -> "Interactions":
        """The rows picked by a boolean mask or an index tensor."""
        return Interactions(self.user[index], self.item[index], self.weight[index], self.time[index],
                            None if self.scenario is None else self.scenario[index])

    def concat(self, other: "Interactions") -> "Interactions":
        both = self.scenario is None and other.scenario is None
        return Interactions(torch.cat([self.user, other.user]), torch.cat([self.item, other.item]),
                            torch.cat([self.weight, other.weight]), torch.cat([self.time, other.time]),
                            None if both else torch.cat([self.scenario_ids, other.scenario_ids]))

    @property
    def has_time(self) -> bool:
        return len(self) > 0 and not bool(torch.isnan(self.time).any())

    def to_csr(self, n_users: int, n_items: int):
        """Binary user x item matrix as ``scipy.sparse.csr_matrix`` (float32, duplicates merged)."""
        import scipy.sparse as sp

        data = np.ones(len(self), dtype=np.float32)
        m = sp.csr_matrix((data, (self.user.numpy(), self.item.numpy())), shape=(n_users, n_items))
        m.data[:] = 1.0  # duplicates were summed
        return m

    def state(self, prefix: str) -> dict[str, torch.Tensor]:
        out = {f"{prefix}.user": self.user, f"{prefix}.item": self.item,
               f"{prefix}.weight": self.weight, f"{prefix}.time": self.time}
        if self.scenario is not None:
            out[f"{prefix}.scenario"] = self.scenario
        return out

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], prefix: str) -> "Interactions":
        return cls(*(tensors[f"{prefix}.{k}"] for k in ("user", "item", "weight", "time")),
                   tensors.get(f"{prefix}.scenario"))


@dataclass
class KnowledgeGraph:
    """Users, items, attribute entities, typed KG edges, interactions and literals.

    Ids: ``items`` ids equal the first ``len(items)`` entity ids (items are entities too), so the
    KG encoder's item rows need no lookup table. Users have their own id space. Relations hold
    only forward KG predicates; :meth:`edge_index` adds inverse relations as ``2r + 1``.

    Attributes:
        users, items, entities, relations: label <-> id maps (IRIs).
        triples: ``[T, 3]`` long (head entity, relation, tail entity), unique, sorted.
        interactions: positive user-item interactions, one per (user, item) pair (per pair and
            scenario when the mapping's rules name scenarios) as loaded: repeated events of a pair
            are merged by the loader (latest time, largest weight; see :func:`kgrec.load`), so
            time-ordered histories hold no repeats.
        literals: ``{entity id: {predicate IRI: [texts]}}`` for items and attribute entities.
        user_literals: ``{user id: {predicate IRI: [texts]}}``.
        features: ``[len(entities), F]`` float numeric features (``nan`` = missing).
        feature_names: the ``F`` predicate IRIs of ``features``.
        warnings: ``Counter`` of problems met while building (rule -> count).
        sources: the files the graph was read from.
        scenarios: names of the interaction scenarios (behaviour types or domains) that
            ``interactions.scenario`` indexes; ``["default"]`` for a single-scenario graph.

    A graph built by the loader also carries ``interaction_text`` (one text or ``None`` per
    interaction) and ``mapping_report`` (:class:`kgrec.data.validation.MappingReport`) as plain
    attributes; a graph made another way may lack them.
    """

    users: Vocab
    items: Vocab
    entities: Vocab
    relations: Vocab
    triples: torch.Tensor
    interactions: Interactions
    literals: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    user_literals: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    features: torch.Tensor | None = None
    feature_names: list[str] = field(default_factory=list)
    warnings: Counter = field(default_factory=Counter)
    sources: list[str] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=lambda: list(DEFAULT_SCENARIOS))

    def __post_init__(self) -> None:
        if self.entities.labels[: len(self.items)] != self.items.labels:
            raise ValueError("items must be the first entities, in the same order")
        sc = self.interactions.scenario
        if sc is not None and len(sc) and (int(sc.min()) < 0 or int(sc.max()) >= len(self.scenarios)):
            raise ValueError(f"interaction scenario ids must lie in [0, {len(self.scenarios)}) "
                             f"(the scenarios {self.scenarios})")
        if self.triples.numel() == 0:
            self.triples = torch.empty(0, 3, dtype=torch.long)

    # ------------------------------------------------------------------ counts
    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_items(self) -> int:
        return len(self.items)

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def label(self, entity: int) -> str:
        """A human label for an entity: its first label-like literal, else the IRI's local name."""
        lits = self.literals.get(int(entity), {})
        for pred in LABEL_PREDICATES:
            if lits.get(pred):
                return lits[pred][0]
        iri = self.entities[int(entity)]
        return iri.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]

    def stats(self) -> dict:
        """Counts a user checks after loading: sizes, density, per-relation triples, warnings."""
        inter = self.interactions
        n_ui = self.num_users * max(self.num_items, 1)
        rel_counts = (torch.bincount(self.triples[:, 1], minlength=self.num_relations).tolist()
                      if len(self.triples) else [0] * self.num_relations)
        users_with = int(torch.unique(inter.user).numel()) if len(inter) else 0
        items_with = int(torch.unique(inter.item).numel()) if len(inter) else 0
        times = inter.time[~torch.isnan(inter.time)] if len(inter) else inter.time
        return {
            "users": self.num_users,
            "items": self.num_items,
            "entities": self.num_entities,
            "attribute_entities": self.num_entities - self.num_items,
            "relations": self.num_relations,
            "triples": int(self.triples.shape[0]),
            "interactions": len(inter),
            "density": len(inter) / n_ui if n_ui else 0.0,
            "users_without_interactions": self.num_users - users_with,
            "items_without_interactions": self.num_items - items_with,
            "items_with_text": sum(1 for i in range(self.num_items) if self.literals.get(i)),
            "interactions_with_time": int(times.numel()),
            "time_range": [float(times.min()), float(times.max())] if times.numel() else None,
            "triples_per_relation": dict(zip(self.relations.labels, rel_counts)),
            "warnings": dict(self.warnings),
            **({"interactions_per_scenario": dict(zip(self.scenarios, torch.bincount(
                inter.scenario_ids, minlength=len(self.scenarios)).tolist()))} if len(self.scenarios) > 1 else {}),
        }

    # ------------------------------------------------------------- conversion
    def edge_index(self, inverse: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """KG edges over entities as ``(edge_index [2, E], edge_type [E])``.

        Forward relation ``r`` becomes type ``2r``; with ``inverse`` each edge also appears
        reversed with type ``2r + 1`` (PyG ``Entities`` convention).
        """
        h, r, t = self.triples.t()
        if not inverse:
            return torch.stack([h, t]), r.clone()
        return torch.stack([torch.cat([h, t]), torch.cat([t, h])]), torch.cat([2 * r, 2 * r + 1])

    def to_hetero_data(self, interactions: Interactions | None = None):
        """A PyG ``HeteroData`` with node types ``user``/``item``/``entity`` (attribute entities).

        ``interactions`` default to all of :attr:`interactions`; pass the training part of a
        split to keep valid/test edges out of message passing.
        """
        from torch_geometric.data import HeteroData

        inter = self.interactions if interactions is None else interactions
        data = HeteroData()
        n_items = self.num_items
        data["user"].num_nodes = self.num_users
        data["item"].num_nodes = n_items
        data["entity"].num_nodes = self.num_entities - n_items
        data["user", "interacts", "item"].edge_index = torch.stack([inter.user, inter.item])
        data["item", "rev_interacts", "user"].edge_index = torch.stack([inter.item, inter.user])
        for r, rel in enumerate(self.relations):
            rows = self.triples[self.triples[:, 1] == r]
            if len(rows) == 0:
                continue
            name = _short(rel)
            h, t = rows[:, 0], rows[:, 2]
            for ht in ("item", "entity"):
                for tt in ("item", "entity"):
                    m = (((h < n_items) if ht == "item" else (h >= n_items))
                         & ((t < n_items) if tt == "item" else (t >= n_items)))
                    if m.any():
                        hh = h[m] - (0 if ht == "item" else n_items)
                        tt_ = t[m] - (0 if tt == "item" else n_items)
                        data[ht, name, tt].edge_index = torch.stack([hh, tt_])
                        data[tt, f"rev_{name}", ht].edge_index = torch.stack([tt_, hh])
        return data

    def to_networkx(self, interactions: bool = True):
        """A ``networkx.MultiDiGraph`` with IRIs as nodes, ``kind`` and ``predicate`` attributes."""
        import networkx as nx

        g = nx.MultiDiGraph()
        n_items = self.num_items
        for i, iri in enumerate(self.entities):
            g.add_node(iri, kind="item" if i < n_items else "entity")
        for iri in self.users:
            g.add_node(iri, kind="user")
        for h, r, t in self.triples.tolist():
            g.add_edge(self.entities[h], self.entities[t], predicate=self.relations[r])
        if interactions:
            for u, i in zip(self.interactions.user.tolist(), self.interactions.item.tolist()):
                g.add_edge(self.users[u], self.items[i], predicate="interaction")
        return g

    # ---------------------------------------------------------------- storage
    def save(self, directory: str | os.PathLike) -> None:
        """Write id maps + literals (JSON) and tensors (safetensors) into ``directory``."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": "kgrec.graph/1",
            "users": self.users.to_list(), "items": self.items.to_list(),
            "entities": self.entities.to_list(), "relations": self.relations.to_list(),
            "literals": {str(k): v for k, v in self.literals.items()},
            "user_literals": {str(k): v for k, v in self.user_literals.items()},
            "feature_names": self.feature_names, "warnings": dict(self.warnings),
            "sources": self.sources,
        }
        if self.scenarios != DEFAULT_SCENARIOS:
            meta["scenarios"] = self.scenarios
        tensors = {"triples": self.triples.contiguous(), **self.interactions.state("interactions")}
        if self.features is not None:
            tensors["features"] = self.features.contiguous()
        _atomic_write_text(d / "graph.json", json.dumps(meta))
        tmp = d / "graph.safetensors.tmp"
        save_file(tensors, str(tmp))
        os.replace(tmp, d / "graph.safetensors")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "KnowledgeGraph":
        from safetensors.torch import load_file

        d = Path(directory)
        for name in ("graph.json", "graph.safetensors"):
            if not (d / name).is_file():
                raise CheckpointError(f"'{d / name}' is missing: not a saved kgrec graph directory")
        meta = json.loads((d / "graph.json").read_text(encoding="utf-8"))
        if meta.get("format") != "kgrec.graph/1":
            raise CheckpointError(f"'{d / 'graph.json'}' has format {meta.get('format')!r}, expected 'kgrec.graph/1'")
        t = load_file(str(d / "graph.safetensors"))
        return cls(
            users=Vocab.from_list(meta["users"], "user"), items=Vocab.from_list(meta["items"], "item"),
            entities=Vocab.from_list(meta["entities"], "entity"),
            relations=Vocab.from_list(meta["relations"], "relation"),
            triples=t["triples"], interactions=Interactions.from_state(t, "interactions"),
            literals={int(k): v for k, v in meta["literals"].items()},
            user_literals={int(k): v for k, v in meta["user_literals"].items()},
            features=t.get("features"), feature_names=meta["feature_names"],
            warnings=Counter(meta["warnings"]), sources=meta["sources"],
            scenarios=meta.get("scenarios", list(DEFAULT_SCENARIOS)),
        )

    def __repr__(self) -> str:
        return (f"KnowledgeGraph(users={self.num_users}, items={self.num_items}, "
                f"entities={self.num_entities}, relations={self.num_relations}, "
                f"triples={self.triples.shape[0]}, interactions={len(self.interactions)})")


#: The scenario names of a graph whose interactions carry no scenario.
DEFAULT_SCENARIOS = ["default"]

#: Literal predicates tried, in order, for a human label of an entity.
LABEL_PREDICATES = (
    "https://w3id.org/kgrec/vocab#title",
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://schema.org/name",
    "https://schema.org/name",
    "http://www.w3.org/2004/02/skos/core#prefLabel",
    "http://purl.org/dc/terms/title",
    "http://xmlns.com/foaf/0.1/name",
)


def collaborative_edges(kg: KnowledgeGraph, train: Interactions) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """The collaborative knowledge graph of KGAT: KG edges + training user-item edges.

    Nodes: entities ``[0, E)`` then users ``[E, E + U)``. Edge types: ``2r`` / ``2r + 1`` for KG
    relation ``r`` and its inverse, then ``2R`` (user -> item) and ``2R + 1`` (item -> user).
    Only ``train`` interactions enter, so valid/test edges never leak into message passing.

    Returns:
        ``(edge_index [2, M], edge_type [M], num_nodes, num_edge_types)``.
    """
    ei, et = kg.edge_index(inverse=True)
    R = kg.num_relations
    u = train.user + kg.num_entities
    i = train.item
    ui = torch.stack([torch.cat([u, i]), torch.cat([i, u])])
    ut = torch.cat([torch.full_like(u, 2 * R), torch.full_like(i, 2 * R + 1)])
    return torch.cat([ei, ui], 1), torch.cat([et, ut]), kg.num_entities + kg.num_users, 2 * R + 2


def _short(iri: str) -> str:
    s = iri.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    return "".join(c if c.isalnum() else "_" for c in s) or "rel"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
