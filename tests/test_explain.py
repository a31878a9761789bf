"""kgrec.explain: KG paths with known right answers, history similarity, attention, branch shares."""

import pytest
import torch

import kgrec
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError, UnknownIRIError
from kgrec.explain import INTERACTION, Explainer, find_paths, training_graph

from .conftest import two_cluster_kg

X = "http://x/"
V = "https://w3id.org/kgrec/vocab#"
TITLE = V + "title"
LABEL = "http://www.w3.org/2000/01/rdf-schema#label"


def movie_kg() -> KnowledgeGraph:
    """Alien, Prometheus, Blade Runner (Ridley Scott, sci-fi), Amelie (romance, country UK: a 3-hop link).

    User 0 watched Alien and Amelie; the target is Prometheus. Within 3 KG hops, through attribute
    entities only, the paths are exactly:
      Alien <-prequel- Prometheus                                    (1 hop)
      Alien -director-> Ridley Scott <-director- Prometheus          (2 hops)
      Alien -genre-> Science fiction <-genre- Prometheus             (2 hops)
      Amelie -country-> UK <-nationality- Ridley Scott <-director- Prometheus (3 hops)
    Blade Runner (not in the history) never is an inner node.
    """
    items = Vocab([X + "item/alien", X + "item/amelie", X + "item/bladerunner", X + "item/prometheus"], name="item")
    attrs = [X + "person/ridley", X + "genre/scifi", X + "genre/romance", X + "country/uk"]
    ents = Vocab(items.labels + attrs, sort=False, name="entity")
    rels = Vocab([V + "country", V + "director", V + "genre", V + "nationality", V + "prequelOf"], name="relation")
    e, r = ents.id, rels.id
    triples = [(X + "item/alien", "director", X + "person/ridley"),
               (X + "item/prometheus", "director", X + "person/ridley"),
               (X + "item/bladerunner", "director", X + "person/ridley"),
               (X + "item/alien", "genre", X + "genre/scifi"),
               (X + "item/prometheus", "genre", X + "genre/scifi"),
               (X + "item/bladerunner", "genre", X + "genre/scifi"),
               (X + "item/amelie", "genre", X + "genre/romance"),
               (X + "person/ridley", "nationality", X + "country/uk"),
               (X + "item/amelie", "country", X + "country/uk"),
               (X + "item/prometheus", "prequelOf", X + "item/alien")]
    t = torch.tensor(sorted((e(h), r(V + p), e(o)) for h, p, o in triples))
    users = Vocab([X + "user/0", X + "user/1", X + "user/2"], name="user")
    # user 0: alien, amelie; user 1: alien, prometheus, bladerunner; user 2: amelie, bladerunner
    inter = Interactions.from_lists([0, 0, 1, 1, 1, 2, 2], [0, 1, 0, 3, 2, 1, 2])
    titles = {0: "Alien", 1: "Amelie", 2: "Blade Runner", 3: "Prometheus"}
    lits = {i: {TITLE: [s]} for i, s in titles.items()}
    lits.update({4: {LABEL: ["Ridley Scott"]}, 5: {LABEL: ["Science fiction"]}, 6: {LABEL: ["Romance"]},
                 7: {LABEL: ["United Kingdom"]}})
    return KnowledgeGraph(users, items, ents, rels, t, inter, literals=lits)


EXPECTED = {
    (X + "item/alien", ((X + "item/prometheus", V + "prequelOf", X + "item/alien"),)),
    (X + "item/alien", ((X + "item/alien", V + "director", X + "person/ridley"),
                        (X + "item/prometheus", V + "director", X + "person/ridley"))),
    (X + "item/alien", ((X + "item/alien", V + "genre", X + "genre/scifi"),
                        (X + "item/prometheus", V + "genre", X + "genre/scifi"))),
    (X + "item/amelie", ((X + "item/amelie", V + "country", X + "country/uk"),
                         (X + "person/ridley", V + "nationality", X + "country/uk"),
                         (X + "item/prometheus", V + "director", X + "person/ridley"))),
}


def _paths(kg, hops):
    g = training_graph(kg, kg.interactions.user, kg.interactions.item)
    found = find_paths(g, {X + "item/alien", X + "item/amelie"}, X + "item/prometheus", max_hops=hops)
    return {(start, tuple(p)) for start, p in found}


@pytest.mark.parametrize("hops,n", [(1, 1), (2, 3), (3, 4)])
def test_find_paths_exactly_the_expected_ones(hops, n):
    got = _paths(movie_kg(), hops)
    assert got == {p for p in EXPECTED if len(p[1]) <= hops}
    assert len(got) == n


def test_find_paths_rejects_bad_hops():
    kg = movie_kg()
    with pytest.raises(KgrecError, match="'max_hops'"):
        find_paths(training_graph(kg, kg.interactions.user, kg.interactions.item), set(), X + "item/alien", 0)


def _check_hops_in_training_graph(kg, train: Interactions, exp):
    triples = {(kg.entities[h], kg.relations[r], kg.entities[t]) for h, r, t in kg.triples.tolist()}
    pairs = {(kg.users[u], kg.items[i]) for u, i in zip(train.user.tolist(), train.item.tolist())}
    for p in exp.paths:
        assert p.hops[0].relation == INTERACTION and p.hops[0].head == exp.user
        # the chain is connected from the user to the target
        node = exp.user
        for h in p.hops:
            assert node in (h.head, h.tail)
            node = h.tail if h.head == node else h.head
            if h.relation == INTERACTION:
                assert (h.head, h.tail) in pairs
            else:
                assert (h.head, h.relation, h.tail) in triples
        assert node == exp.item


def test_explain_ease_paths_labels_and_exact_contributions():
    kg = movie_kg()
    rec = kgrec.Recommender("ease", reg=1.0).fit(kg)  # no split: every interaction trains
    exp = rec.explain(X + "user/0", X + "item/prometheus", max_paths=10)
    assert {(p.history_item, tuple((h.head, h.relation, h.tail) for h in p.hops[1:])) for p in exp.paths} == EXPECTED
    _check_hops_in_training_graph(kg, kg.interactions, exp)
    # labels from the literals, never the IRIs
    texts = " ".join(p.text() for p in exp.paths)
    for name in ("Alien", "Amelie", "Prometheus", "Ridley Scott", "Science fiction", "United Kingdom"):
        assert f'"{name}"' in texts
    assert "http://" not in texts and exp.item_label == "Prometheus"
    ridley = next(p for p in exp.paths if len(p.hops) == 3 and p.hops[1].tail == X + "person/ridley")
    assert ridley.text() == 'you interacted with "Alien" --director--> "Ridley Scott" <--director-- "Prometheus"'

    # EASE is linear in the history: the items' contributions add up to the score
    assert sum(h["similarity"] for h in exp.history) == pytest.approx(exp.score, abs=1e-5)
    b = rec.estimator.module.weight
    assert {h["label"]: h["similarity"] for h in exp.history} == pytest.approx({"Alien": float(b[0, 3]),
                                                                               "Amelie": float(b[1, 3])}, abs=1e-6)
    # ranked by the model: paths from the item EASE ties more to Prometheus come first
    first = max(exp.history, key=lambda h: h["similarity"])["item"]
    assert exp.paths[0].history_item == first and exp.paths[0].method == "similarity"
    assert set(exp.unavailable) == {"attention", "shares"}
    assert "Why \"Prometheus\"" in exp.to_text()
    assert exp.to_dict()["paths"][0]["hops"][0]["relation"] == INTERACTION


def test_explain_only_training_interactions():
    """An interaction outside the training part is no history: no path starts from it."""
    kg = movie_kg()
    train = Interactions(*(t[torch.tensor([1, 2, 3, 4, 5, 6])] for t in (kg.interactions.user, kg.interactions.item,
                                                                         kg.interactions.weight, kg.interactions.time)))
    from kgrec.data.splits import Split

    sp = Split("custom", 0, (1.0, 0.0, 0.0), 3, 4, train, Interactions.empty(), Interactions.empty())
    rec = kgrec.Recommender("itemknn").fit(kg, sp)
    exp = rec.explain(X + "user/0", X + "item/prometheus", max_paths=10)
    assert {p.history_item for p in exp.paths} == {X + "item/amelie"}  # alien (0, 0) was left out
    _check_hops_in_training_graph(kg, train, exp)


def test_explain_errors_name_the_argument(tmp_path):
    kg = movie_kg()
    rec = kgrec.Recommender("ease", reg=1.0).fit(kg)
    with pytest.raises(UnknownIRIError, match="'user'"):
        rec.explain(X + "user/nobody", X + "item/alien")
    with pytest.raises(UnknownIRIError, match="'item'"):
        rec.explain(X + "user/0", X + "item/none")
    with pytest.raises(KgrecError, match="'max_paths'"):
        rec.explain(X + "user/0", X + "item/alien", max_paths=0)
    with pytest.raises(KgrecError, match="'method' 'occlusion'"):
        rec.explain(X + "user/0", X + "item/alien", method="occlusion")
    rec.save(tmp_path / "m")
    loaded = kgrec.Recommender.load(tmp_path / "m")
    with pytest.raises(KgrecError, match="'kg' is required"):
        loaded.explain(X + "user/0", X + "item/alien")
    assert loaded.explain(X + "user/0", X + "item/prometheus", kg=kg).paths
    with pytest.raises(KgrecError, match="'kg' has"):
        Explainer(loaded, two_cluster_kg())


def test_explain_mostpop_says_what_is_unavailable():
    kg = movie_kg()
    exp = kgrec.Recommender("mostpop").fit(kg).explain(X + "user/0", X + "item/prometheus")
    assert set(exp.unavailable) == {"history", "attention", "shares"}
    assert len(exp.paths) == 3


@pytest.fixture(scope="module")
def hybrid_rec(tiny_text_model):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=0)
    rec = kgrec.Recommender("hybrid", epochs=2, dim=8, num_heads=2, text_model=tiny_text_model, cache_dir="",
                            text_max_length=32, batch_size=16, seed=0).fit(kg, sp)
    return kg, sp, rec


def test_hybrid_shares_sum_to_the_score_and_attention(hybrid_rec):
    kg, sp, rec = hybrid_rec
    with_paths = 0
    for u in range(kg.num_users):
        user = kg.users[u]
        # the user's top-1, and an unseen item of the user's own cluster (linked by the genre)
        item = rec.recommend([user], k=1)[user][0][0] if u % 2 else rec.recommend(
            [user], k=8, candidates=kg.items.labels[:4] if u < 6 else kg.items.labels[4:])[user][0][0]
        exp = rec.explain(user, item, max_paths=2)
        assert set(exp.shares) >= {"cf", "kg", "text"}
        assert sum(exp.shares.values()) == pytest.approx(exp.score, rel=1e-5, abs=1e-6)
        assert exp.score == pytest.approx(float(rec.score(torch.tensor([u]))[0, kg.items.id(item)]), rel=1e-6)
        _check_hops_in_training_graph(kg, sp.train, exp)
        # attention over exactly the training history, weights a distribution
        hist = {kg.items[i] for i in sp.train.item[sp.train.user == u].tolist()}
        assert {a["item"] for a in exp.attention} <= hist
        ex = rec._explainer
        full = rec.estimator.history_attention(u)
        assert {kg.items[i] for i, _ in full} == hist
        assert sum(w for _, w in full) == pytest.approx(1.0, abs=1e-5)
        assert [w for _, w in full] == sorted((w for _, w in full), reverse=True)
        assert set(exp.unavailable) <= {"paths"} and bool(exp.paths) != ("paths" in exp.unavailable)
        with_paths += bool(exp.paths)
        for p in exp.paths:
            assert p.method == "occlusion"
            # the weight is the score drop when the path's KG edges leave message passing
            drop = exp.score - ex.occlusion_score(u, kg.items.id(item), [(h.head, h.relation, h.tail)
                                                                           for h in p.hops[1:]])
            assert p.weight == pytest.approx(drop, abs=1e-6)
        assert [p.weight for p in exp.paths] == sorted((p.weight for p in exp.paths), reverse=True)
    assert with_paths >= kg.num_users // 2


def test_hybrid_attention_does_not_change_vectors(hybrid_rec):
    _, _, rec = hybrid_rec
    est = rec.estimator
    est.module.eval()
    with torch.no_grad():
        u1, i1 = est.embed()
        u2, i2, attn = est.embed(return_attention=True)
    assert torch.equal(i1, i2)
    assert torch.allclose(u1, u2, atol=1e-6)
    assert attn.shape == est.context["hist_items"].shape
    assert torch.all(attn[~est.context["hist_mask"]] == 0)
    slices = est.module.branch_slices(u1.shape[1])
    assert list(slices) == ["cf", "kg", "text"] + (["prior"] if u1.shape[1] > 3 * est.module.dim else [])
