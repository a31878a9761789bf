"""Why an item was recommended: KG paths, attention over the history, and the score's branches.

An explanation of ``(user, item)`` is read off the model itself and the graph it was trained on:

* **paths**: chains of KG triples from an item in the user's *training* history to the
  recommended item through attribute entities (``you watched Alien; Ridley Scott directed both``),
  found with networkx over the training graph (KG triples + training interactions only), at most
  ``max_hops`` KG hops. They are ranked by the model: by the similarity of the history item to the
  target under the model's item vectors (any model; for linear item-item models, the history
  item's exact contribution to the score), and, for the hybrid with a KG branch, by *occlusion*:
  the drop of the item's score when the path's KG edges are removed from the graph the KG encoder
  passes messages over (the best ``max_candidates`` paths of the first ranking are re-scored).
* **history**: the history items closest to the target under the model's item vectors.
* **attention** (hybrid with cross-attention): the weights the user's behaviour-text query puts on
  each history item in the user fusion.
* **shares** (hybrid): the per-branch dot products (CF, KG, text, the fixed EASE and sequential-rules
  priors); they sum to the score.

Parts a model does not have are listed in ``Explanation.unavailable`` with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from kgrec.data.graph import LABEL_PREDICATES, KnowledgeGraph
from kgrec.data.text import relation_name
from kgrec.errors import KgrecError, UnknownIRIError

__all__ = ["Hop", "Path", "Explanation", "Explainer", "training_graph", "find_paths", "INTERACTION"]

#: The predicate name of a training interaction edge (user -> item) in :func:`training_graph`.
INTERACTION = "interaction"


@dataclass
class Hop:
    """One edge of a path, in the direction it is stated in the graph (``head --relation--> tail``)."""

    head: str
    relation: str
    tail: str
    head_label: str
    relation_label: str
    tail_label: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass
class Path:
    """A path ``user -> history item -> ... -> target``; ``hops[0]`` is the training interaction.

    ``weight`` is the ranking score (``method`` says which: ``"occlusion"`` = score drop when the
    path's KG edges are removed; ``"similarity"`` = the history item's similarity to the target).
    """

    hops: list[Hop]
    weight: float
    method: str
    similarity: float

    @property
    def history_item(self) -> str:
        return self.hops[0].tail

    def text(self) -> str:
        """``you interacted with "Alien" --director--> "Ridley Scott" <--director-- "Prometheus"``."""
        first = self.hops[0]
        node = first.tail
        chain = f"you interacted with \"{first.tail_label}\""
        for hop in self.hops[1:]:
            if hop.head == node:
                chain += f" --{hop.relation_label}--> \"{hop.tail_label}\""
                node = hop.tail
            else:
                chain += f" <--{hop.relation_label}-- \"{hop.head_label}\""
                node = hop.head
        return chain

    def to_dict(self) -> dict[str, Any]:
        return {"hops": [h.to_dict() for h in self.hops], "weight": self.weight, "method": self.method,
                "similarity": self.similarity, "text": self.text()}


@dataclass
class Explanation:
    """The evidence for recommending ``item`` to ``user`` (see the module docstring)."""

    user: str
    item: str
    user_label: str
    item_label: str
    model: str
    score: float
    paths: list[Path] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    attention: list[dict[str, Any]] | None = None
    shares: dict[str, float] | None = None
    unavailable: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "item": self.item, "user_label": self.user_label, "item_label": self.item_label,
                "model": self.model, "score": self.score, "paths": [p.to_dict() for p in self.paths],
                "history": self.history, "attention": self.attention, "shares": self.shares,
                "unavailable": self.unavailable}

    def to_text(self) -> str:
        lines = [f"Why \"{self.item_label}\" for {self.user_label} ({self.model}, score {self.score:.4f}):"]
        if self.paths:
            lines.append("  paths in the knowledge graph:")
            lines += [f"    [{p.method} {p.weight:+.4f}"
                      f"{' against' if p.method == 'occlusion' and p.weight < 0 else ''}]"
                      f" {p.text()}" for p in self.paths]
        if self.history:
            lines.append("  closest items in the history (model's item vectors):")
            lines += [f"    {h['similarity']:+.4f}  {h['label']}" for h in self.history]
        if self.attention:
            lines.append("  history items the cross-attention weighted most:")
            lines += [f"    {a['weight']:.4f}  {a['label']}" for a in self.attention]
        if self.shares:
            lines.append("  score by branch: " + ", ".join(f"{k} {v:+.4f}" for k, v in self.shares.items())
                         + f" (sum {sum(self.shares.values()):.4f})")
        for part, why in self.unavailable.items():
            lines.append(f"  {part}: unavailable ({why})")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------- graph
def training_graph(kg: KnowledgeGraph, train_user: Tensor, train_item: Tensor):
    """The graph explanations may cite: KG triples plus the given (training) interactions only.

    A ``networkx.MultiDiGraph`` over IRIs with node attribute ``kind`` (``user``/``item``/``entity``)
    and edge attribute ``predicate`` (the relation IRI, or :data:`INTERACTION` for user -> item).
    """
    g = kg.to_networkx(interactions=False)
    for u in kg.users:
        g.add_node(u, kind="user")
    for u, i in zip(train_user.tolist(), train_item.tolist()):
        g.add_edge(kg.users[u], kg.items[i], predicate=INTERACTION)
    return g


def find_paths(g, history: set[str], target: str, max_hops: int = 3,
               limit: int = 5000) -> list[tuple[str, list[tuple]]]:
    """KG paths from any item of ``history`` to ``target`` whose inner nodes are attribute entities.

    Args:
        g: a graph from :func:`training_graph`; interaction edges are never used here.
        history: item IRIs (the user's training items); ``target`` itself is skipped.
        max_hops: most KG edges per path (1 = a direct item-item triple).
        limit: stop after this many paths (hub attributes can make thousands).

    Returns:
        ``(history item, triples)`` pairs: the triples ``(head, predicate, tail)`` are in graph
        direction, ordered from the history item to ``target``; shortest paths first, then in a
        deterministic (sorted) order.
    """
    if max_hops < 1:
        raise KgrecError(f"'max_hops' must be a positive integer (got {max_hops!r})")
    found: list[tuple[str, list[tuple]]] = []

    def neighbours(node: str):
        out = [(v, d["predicate"], (node, d["predicate"], v)) for _, v, d in g.out_edges(node, data=True)]
        out += [(v, d["predicate"], (v, d["predicate"], node)) for v, _, d in g.in_edges(node, data=True)]
        return sorted((x for x in out if x[1] != INTERACTION), key=lambda x: (x[0], x[1], x[2]))

    # breadth by path length, walking back from the target: inner nodes must be attribute entities
    frontier: list[tuple[str, list[tuple]]] = [(target, [])]
    for _ in range(max_hops):
        nxt = []
        for node, rev in frontier:
            seen = {target} | {t[0] for t in rev} | {t[2] for t in rev}
            for v, _, triple in neighbours(node):
                if v in seen:
                    continue
                path = rev + [triple]
                if v in history and v != target:
                    found.append((v, list(reversed(path))))
                    if len(found) >= limit:
                        return found
                elif g.nodes[v].get("kind") == "entity":
                    nxt.append((v, path))
        frontier = nxt
    return found


# ------------------------------------------------------------------------------- explainer
class Explainer:
    """Explanations of a fitted :class:`kgrec.Recommender` on the graph it was trained on.

    Building one converts the training graph to networkx once; :meth:`explain` is then cheap
    except for the hybrid's occlusion re-scoring (one KG-encoder forward pass per candidate path).

    Args:
        rec: a fitted or reloaded recommender.
        kg: the graph it was trained on (same users and items, in the same order).
        graph: :func:`training_graph` of ``kg`` and the model's training interactions, when the
            caller already built it (several models of one split share it).
    """

    def __init__(self, rec, kg: KnowledgeGraph, graph=None):
        rec._require_fit()
        if rec.users != kg.users or rec.items != kg.items:
            raise KgrecError(f"'kg' has {kg.num_users} users / {kg.num_items} items that are not the ones the "
                             f"model was trained on ({len(rec.users)} / {len(rec.items)}): pass the same graph")
        self.rec, self.kg = rec, kg
        est = rec.estimator
        indptr, indices = est.context["hist_indptr"].cpu(), est.context["hist_indices"].cpu()
        self._indptr, self._indices = indptr, indices
        users = torch.repeat_interleave(torch.arange(len(indptr) - 1), indptr[1:] - indptr[:-1])
        self.graph = graph if graph is not None else training_graph(kg, users, indices)

    # ------------------------------------------------------------------ helpers
    def _ids(self, user_iri: str, item_iri: str) -> tuple[int, int]:
        u = self.rec.users.get(user_iri)
        if u is None:
            raise UnknownIRIError(f"'user' {user_iri!r} is not a user of this model ({len(self.rec.users)} known)")
        i = self.rec.items.get(item_iri)
        if i is None:
            raise UnknownIRIError(f"'item' {item_iri!r} is not an item of this model ({len(self.rec.items)} known)")
        return u, i

    def history(self, u: int) -> list[int]:
        """Training items of user id ``u``."""
        return self._indices[self._indptr[u]:self._indptr[u + 1]].tolist()

    def user_label(self, u: int) -> str:
        lits = self.kg.user_literals.get(u, {})
        for pred in LABEL_PREDICATES:
            if lits.get(pred):
                return lits[pred][0]
        iri = self.kg.users[u]
        return "user " + iri.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]

    def node_label(self, iri: str) -> str:
        if iri in self.kg.entities:
            return self.kg.label(self.kg.entities.id(iri))
        if iri in self.kg.users:
            return self.user_label(self.kg.users.id(iri))
        return iri

    def relation_label(self, iri: str) -> str:
        if iri == INTERACTION:
            return "interacted with"

        return relation_name(iri)

    def _hop(self, h: str, r: str, t: str) -> Hop:
        return Hop(h, r, t, self.node_label(h), self.relation_label(r), self.node_label(t))

    def similarities(self, u: int, items: list[int], target: int) -> list[float]:
        """How much the model ties each of ``items`` to ``target`` (the estimator's
        ``history_contributions``).
        """
        return self.rec.estimator.history_contributions(items, target)

    # ------------------------------------------------------------------ model parts
    def _parts(self):
        """The estimator when it explains itself by parts (branch shares, attention, occlusion)."""
        est = self.rec.estimator
        return est if est.explains_by_parts else None

    def occlusion_score(self, u: int, i: int, triples: list[tuple[str, str, str]]) -> float:
        """The model's score of ``(u, i)`` with the KG edges of ``triples`` removed."""
        return self._parts().occluded_score(u, i, triples, self.kg)

    # --------------------------------------------------------------------- main
    def explain(self, user_iri: str, item_iri: str, max_paths: int = 3, max_hops: int = 3,
                max_candidates: int = 12, method: str = "auto") -> Explanation:
        """The evidence for ``item_iri`` in ``user_iri``'s recommendations.

        Args:
            max_paths: paths to return (the best first). max_hops: KG edges per path (1-3).
            max_candidates: paths the hybrid re-scores by occlusion.
            method: ``"auto"`` (occlusion for the hybrid with a KG branch, else similarity),
                ``"occlusion"`` or ``"similarity"``.
        """
        for name, v in (("max_paths", max_paths), ("max_hops", max_hops), ("max_candidates", max_candidates)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise KgrecError(f"'{name}' must be a positive integer (got {v!r})")
        if method not in ("auto", "occlusion", "similarity"):
            raise KgrecError(f"'method' must be 'auto', 'occlusion' or 'similarity' (got {method!r})")
        u, i = self._ids(user_iri, item_iri)
        rec, hyb = self.rec, self._parts()
        score = float(rec.score(torch.tensor([u]))[0, i])
        exp = Explanation(user_iri, item_iri, self.user_label(u), self.kg.label(i), rec.model_name, score)
        hist = self.history(u)
        sims = dict(zip(hist, self.similarities(u, hist, i)))
        if not hist:
            exp.unavailable["history"] = "the user has no training interactions"
        elif not rec.estimator.personalised:
            exp.unavailable["history"] = "popularity ranks every user alike: no item is tied to another"
        else:
            top = sorted(hist, key=lambda h: (-sims[h], h))[:max(max_paths, 5)]
            exp.history = [{"item": self.kg.items[h], "label": self.kg.label(h), "similarity": sims[h]} for h in top]

        # (a) paths, ranked by the model
        raw = find_paths(self.graph, {self.kg.items[h] for h in hist}, item_iri, max_hops=max_hops)
        kg_on = hyb is not None and hyb.module.use_kg
        use_occ = method == "occlusion" or (method == "auto" and kg_on)
        if method == "occlusion" and not kg_on:
            raise KgrecError(f"'method' 'occlusion' needs the hybrid with its KG branch (model: {rec.model_name})")
        degree = dict(self.graph.degree())

        def prior_key(found):
            start, p = found
            return (-sims.get(self.kg.items.id(start), 0.0), len(p), sum(degree[t[2]] + degree[t[0]] for t in p), p)

        raw.sort(key=prior_key)
        scored = []
        if use_occ:
            # one candidate per distinct (history item, attribute next to the target) keeps variety
            picked, seen = [], set()
            for start, p in raw:
                if (start, p[-1]) not in seen:
                    seen.add((start, p[-1]))
                    picked.append((start, p))
                if len(picked) >= max_candidates:
                    break
            for start, p in picked:
                scored.append((score - self.occlusion_score(u, i, p), start, p, "occlusion"))
            scored.sort(key=lambda x: -x[0])
        else:
            for start, p in raw[:max_paths]:
                scored.append((sims.get(self.kg.items.id(start), 0.0), start, p, "similarity"))
        for weight, start, p, how in scored[:max_paths]:
            hops = [self._hop(user_iri, INTERACTION, start)] + [self._hop(*t) for t in p]
            exp.paths.append(Path(hops, float(weight), how, float(sims.get(self.kg.items.id(start), 0.0))))
        if not raw:
            exp.unavailable["paths"] = (f"no path of at most {max_hops} KG hops links the user's training items "
                                        "to this item through attribute entities")

        # (b) attention and (c) branch shares: the hybrid only
        if hyb is None:
            exp.unavailable["attention"] = f"model '{rec.model_name}' has no cross-attention"
            exp.unavailable["shares"] = f"model '{rec.model_name}' has a single score, not branches"
        else:
            exp.shares = hyb.branch_shares(u, i)
            if hyb.module.use_text and hyb.module.fusion == "cross":
                exp.attention = [{"item": self.kg.items[h], "label": self.kg.label(h), "weight": w}
                                 for h, w in hyb.history_attention(u)[:max(max_paths, 5)]]
            else:
                exp.unavailable["attention"] = ("the text branch is off" if not hyb.module.use_text
                                                else "fusion is 'concat' (no attention)")
        if math.isinf(score):
            exp.unavailable["score"] = "the score is infinite"
        return exp
