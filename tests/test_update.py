"""Recommender.update / kgrec update, and recommend_for_history (inductive users)."""

import hashlib

import pytest
import torch

import kgrec
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError, UnknownIRIError
from tests.conftest import two_cluster_kg
from tests.test_api import FAST
from tests.test_cli import TOY, metric_keys, run

MODELS = ["mostpop", "itemknn", "ease", "bprmf", "lightgcn"]
A_ITEMS = [f"http://x/item/{i:02d}" for i in range(4)]  # cluster A of two_cluster_kg (items 0-3)


def cluster(iri: str) -> str:
    n = int(iri.rsplit("/", 1)[1])
    return "A" if n < 4 or n == 90 else "B"


def new_block() -> KnowledgeGraph:
    """Later data: a new user 'new' takes A items 0-2; a new A item 90 (genre A in the KG) is taken
    by old A users 0-3 and the new user; old B user 06 takes B item 04.
    """
    users = Vocab(["http://x/user/00", "http://x/user/01", "http://x/user/02", "http://x/user/03",
                   "http://x/user/06", "http://x/user/new"], name="user")
    items = Vocab(A_ITEMS[:3] + ["http://x/item/04", "http://x/item/90"], name="item")
    ents = Vocab(items.labels + ["http://x/genre/A", "http://x/genre/B"], sort=False, name="entity")
    rels = Vocab(["https://w3id.org/kgrec/vocab#genre"], name="relation")
    triples = torch.tensor([[0, 0, 5], [1, 0, 5], [2, 0, 5], [3, 0, 6], [4, 0, 5]])
    uid, iid = users.id, items.id
    pairs = [(f"http://x/user/{u}", "http://x/item/90") for u in ("00", "01", "02", "03")]
    pairs += [("http://x/user/new", i) for i in A_ITEMS[:3]] + [("http://x/user/new", "http://x/item/90")]
    pairs += [("http://x/user/06", "http://x/item/04")]
    inter = Interactions.from_lists([uid(u) for u, _ in pairs], [iid(i) for _, i in pairs], None,
                                    [2_000_000_000.0] * len(pairs))
    return KnowledgeGraph(users, items, ents, rels, triples, inter)


def fitted(model):
    kg = two_cluster_kg()
    return kgrec.Recommender(model, **FAST[model]).fit(kg), kg


@pytest.mark.parametrize("model", MODELS)
def test_update_adds_users_and_items_with_sensible_recommendations(model):
    rec, kg = fitted(model)
    n_users, n_items = len(rec.users), len(rec.items)
    rec.update(new_block(), epochs=20, replay=0.5)
    info = rec.fit_info["update"]
    assert info["new_users"] == 1 and info["new_items"] == 1 and info["new_interactions"] == 8
    assert len(rec.users) == n_users + 1 and len(rec.items) == n_items + 1
    assert rec.users.labels[:n_users] == kg.users.labels  # old ids never move
    out = rec.recommend("http://x/user/new", k=2)["http://x/user/new"]
    assert len(out) == 2 and not {i for i, _ in out} & set(A_ITEMS[:3] + ["http://x/item/90"])
    if model != "mostpop":
        assert cluster(out[0][0]) == "A", out  # the new user's remaining A item comes first
    # every old A user now has item 90 in their history: it is excluded from their recommendations
    assert "http://x/item/90" not in [i for i, _ in rec.recommend("http://x/user/00", k=9)["http://x/user/00"]]
    assert rec.item_labels[-1] == "90"


def test_new_item_starts_from_its_attribute_neighbours():
    rec, _ = fitted("bprmf")
    rec.update(new_block(), epochs=0)  # no training: the initial vectors only
    u_vec, i_vec = rec.estimator.embed()
    new = i_vec[rec.items.id("http://x/item/90")]
    a_mean = i_vec[[rec.items.id(i) for i in A_ITEMS[:3]]].mean(0)  # its genre-A neighbours in the new KG
    assert torch.allclose(new, a_mean, atol=1e-6)


@pytest.mark.parametrize("model", ["ease", "lightgcn"])
def test_update_with_no_new_data_keeps_metrics(model):
    rec, kg = fitted(model)
    sp = kgrec.split(kg, "random", seed=1)
    before = metric_keys(rec.evaluate(sp))
    rec.update(kg)  # every interaction is already known
    assert rec.fit_info["update"]["new_interactions"] == 0
    assert metric_keys(rec.evaluate(sp)) == before


def test_bad_update_input_keeps_the_model():
    rec, kg = fitted("lightgcn")
    top = rec.recommend(kg.users.labels, k=3)
    with pytest.raises(KgrecError, match="'kg' must be a KnowledgeGraph"):
        rec.update("new.ttl")
    with pytest.raises(KgrecError, match="no new interactions"):
        rec.update(kg, Interactions.empty())
    with pytest.raises(KgrecError, match="'replay' must be a share"):
        rec.update(new_block(), replay=2.0)
    with pytest.raises(KgrecError, match="'new' must be None, an Interactions or a Split"):
        rec.update(new_block(), new=[(0, 1)])
    assert len(rec.users) == kg.num_users and rec.recommend(kg.users.labels, k=3) == top
    with pytest.raises(KgrecError, match="not fitted"):
        kgrec.Recommender("ease").update(kg)


def _digest(directory) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_cli_update_writes_a_new_checkpoint_and_leaves_the_old_one(tmp_path):
    code, _, err = run(["train", TOY, "--model", "bprmf", "--out", tmp_path / "m", "--param", "epochs=2"])
    assert code == 0, err
    before = _digest(tmp_path / "m")
    more = tmp_path / "more.ttl"
    more.write_text(
        "@prefix kgr: <https://w3id.org/kgrec/vocab#> .\n"
        "<https://w3id.org/kgrec/data/toy/event/100> a kgr:Interaction ; "
        "kgr:user <https://w3id.org/kgrec/data/toy/user/u99> ; "
        "kgr:item <https://w3id.org/kgrec/data/toy/item/alien> .\n"
        "<https://w3id.org/kgrec/data/toy/event/101> a kgr:Interaction ; "
        "kgr:user <https://w3id.org/kgrec/data/toy/user/u99> ; "
        "kgr:item <https://w3id.org/kgrec/data/toy/item/heat> .\n")
    code, out, err = run(["update", tmp_path / "m", "--data", more, "--out", tmp_path / "m2", "--epochs", "2"])
    assert code == 0, err
    assert "new_users" in out and _digest(tmp_path / "m") == before
    rec = kgrec.Recommender.load(tmp_path / "m2")
    assert "https://w3id.org/kgrec/data/toy/user/u99" in rec.users
    assert rec.recommend("https://w3id.org/kgrec/data/toy/user/u99", k=3)
    # bad inputs: a clear error, exit status 2, the old model untouched, no new one
    bad = tmp_path / "more.xyz"
    bad.write_text("whatever")
    code, _, err = run(["update", tmp_path / "m", "--data", bad, "--out", tmp_path / "m3"])
    assert code == 2 and "kgrec: error:" in err and "more.xyz" in err
    code, _, err = run(["update", tmp_path / "m", "--data", more, "--out", tmp_path / "m"])
    assert code == 2 and "'--out' must differ" in err
    assert _digest(tmp_path / "m") == before and not (tmp_path / "m3").exists()


@pytest.mark.parametrize("model", ["itemknn", "ease", "bprmf", "lightgcn"])
def test_new_user_with_cluster_a_items_gets_cluster_a_items(model):
    kg = two_cluster_kg(n_per=6, items_per=4)
    rec = kgrec.Recommender(model, **FAST[model]).fit(kg)
    for history in (A_ITEMS[:2], A_ITEMS[1:2]):
        out = rec.recommend_for_history(history, k=2)
        assert [cluster(i) for i, _ in out] == ["A", "A"], (model, history, out)
        assert not set(history) & {i for i, _ in out}
    out_b = rec.recommend_for_history(["http://x/item/05", "http://x/item/06"], k=2)
    assert [cluster(i) for i, _ in out_b] == ["B", "B"]


def test_recommend_for_history_matches_a_training_user_for_ease_and_decays_with_times():
    kg = two_cluster_kg()
    rec = kgrec.Recommender("ease", reg=1.0).fit(kg)
    u = kg.users[0]
    hist = [kg.items[i] for i in kg.interactions.item[kg.interactions.user == 0].tolist()]
    assert rec.recommend_for_history(hist, k=4) == rec.recommend(u, k=4)[u]
    day = 86400.0
    dec = kgrec.Recommender("ease", reg=1.0, half_life_days=10).fit(kg)
    # old A items, one recent B item: with decay the B cluster wins
    out = dec.recommend_for_history(A_ITEMS[:3] + ["http://x/item/05"], times=[0.0, 0.0, 0.0, 1000 * day], k=2)
    assert [cluster(i) for i, _ in out] == ["B", "B"]
    with pytest.raises(KgrecError, match="'times' must give one time per item"):
        dec.recommend_for_history(A_ITEMS[:2], times=[0.0])
    with pytest.raises(KgrecError, match="at least one item"):
        rec.recommend_for_history([])
    with pytest.raises(UnknownIRIError, match="unknown item"):
        rec.recommend_for_history(["http://nope"])


def test_hybrid_new_user_fold_in(tiny_text_model):
    from tests.test_hybrid import _params

    kg = two_cluster_kg(n_per=6, items_per=4)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=30, ease_prior=False)).fit(kg)
    out = rec.recommend_for_history(A_ITEMS[:2], k=2)
    assert [cluster(i) for i, _ in out] == ["A", "A"], out


def test_hybrid_update_grows_tables_keeps_old_rows_and_learns_the_new_item(tiny_text_model, tmp_path):
    from tests.test_hybrid import _params

    kg = two_cluster_kg(n_per=6, items_per=4)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=30, ease_prior=False)).fit(kg)
    rec.save(tmp_path / "m")
    # an update starts from a checkpoint (no old data files); the text model is an argument of load
    old = kgrec.Recommender.load(tmp_path / "m", text_model=tiny_text_model)
    old_cf = old.estimator.module.cf.gcn.embedding.weight.detach().clone()
    old_nodes = old.estimator.module.node_emb.weight.detach().clone()
    old_text = old.estimator.context["item_text"].clone()
    U0, I0, E0 = kg.num_users, kg.num_items, kg.num_entities

    new = old.update(new_block(), epochs=0)  # tables grown and initialised, no training yet
    est = new.estimator
    info = new.fit_info["update"]
    assert info["new_users"] == 1 and info["new_items"] == 1 and info["new_interactions"] == 8
    U, I = U0 + 1, I0 + 1
    assert est.meta["num_users"] == U and est.meta["num_items"] == I and est.meta["num_entities"] == E0 + 1
    cf = est.module.cf.gcn.embedding.weight.detach()
    assert torch.equal(cf[:U0], old_cf[:U0]) and torch.equal(cf[U:U + I0], old_cf[U0:])  # old rows copied
    nodes = est.module.node_emb.weight.detach()
    assert torch.equal(nodes[:I0], old_nodes[:I0])  # items keep their ids
    assert torch.equal(nodes[I:E0 + 1], old_nodes[I0:E0])  # genres move up by one (after the new item)
    assert torch.equal(nodes[E0 + 1:E0 + 1 + U0], old_nodes[E0:])  # then the users
    # the new item (genre A, like items 0-2 in the new KG) starts from its attribute neighbours
    assert torch.allclose(cf[U + I0], old_cf[U0:U0 + 3].mean(0), atol=1e-6)
    # the merged KG: the old genre edges and the new item's, over the merged entity ids
    genre_a, new_item = I, new.items.id("http://x/item/90")  # merged ids
    pairs = set(map(tuple, est.context["edge_index"][:, est.context["edge_type"] == 0].t().tolist()))
    assert (new_item, genre_a) in pairs and (0, genre_a) in pairs and (4, genre_a + 1) in pairs
    assert est.context["item_text"].shape[0] == I
    assert torch.equal(est.context["item_text"][:I0], old_text)

    trained = kgrec.Recommender.load(tmp_path / "m", text_model=tiny_text_model).update(new_block(), epochs=20,
                                                                                         replay=0.5)
    out = trained.recommend("http://x/user/new", k=2)["http://x/user/new"]
    assert cluster(out[0][0]) == "A", out  # the new user's remaining A item comes first
    assert "http://x/item/90" not in [i for i, _ in trained.recommend("http://x/user/00", k=9)["http://x/user/00"]]
    trained.save(tmp_path / "m2")
    again = kgrec.Recommender.load(tmp_path / "m2")
    assert again.recommend("http://x/user/new", k=3) == trained.recommend("http://x/user/new", k=3)


def test_hybrid_update_refuses_a_checkpoint_without_kg_vocabulary(tiny_text_model):
    from tests.test_hybrid import _params

    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=2, ease_prior=False)).fit(two_cluster_kg())
    del rec.estimator.meta["entity_labels"]
    top = rec.recommend(rec.users.labels, k=3)
    with pytest.raises(KgrecError, match="saved before kgrec recorded its KG vocabulary"):
        rec.update(new_block())
    assert rec.recommend(rec.users.labels, k=3) == top


def test_hybrid_update_with_a_new_relation_moves_the_user_item_edge_types(tiny_text_model):
    from tests.test_hybrid import _params

    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=2, ease_prior=False)).fit(two_cluster_kg())
    old_rel = rec.estimator.module.kg_encoder.rel_emb.detach().clone()  # [2R + 2, d]: genre, genre^-1, u->i, i->u
    block = new_block()
    director = "https://w3id.org/kgrec/vocab#director"
    block = KnowledgeGraph(block.users, block.items, Vocab(block.entities.labels + ["http://x/person/p"], sort=False,
                                                          name="entity"),
                           Vocab(list(block.relations.labels) + [director], sort=False, name="relation"),
                           torch.cat([block.triples, torch.tensor([[4, 1, 7]])]), block.interactions)
    rec.update(block, epochs=0)
    est = rec.estimator
    assert est.meta["relation_labels"][-1] == director and est.meta["num_edge_types"] == 6
    rel = est.module.kg_encoder.rel_emb.detach()
    assert torch.equal(rel[:2], old_rel[:2]) and torch.equal(rel[4:], old_rel[2:])  # u-i types moved from 2,3 to 4,5
    person = est.meta["num_items"] + est.meta["entity_labels"].index("http://x/person/p")
    item90 = rec.items.id("http://x/item/90")
    directed = est.context["edge_index"][:, est.context["edge_type"] == 2].t().tolist()
    assert directed == [[item90, person]]


@pytest.mark.parametrize("fusion", ["cross", "sequence"])
def test_hybrid_new_user_text_branch_matches_a_training_user_with_the_same_history(tiny_text_model, fusion):
    from tests.test_hybrid import _params

    kg = two_cluster_kg(n_per=6, items_per=4)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=5, ease_prior=False, fusion=fusion)).fit(kg)
    est = rec.estimator
    est.freeze()
    m = est.module
    text = m.branch_slices()["text"]
    indptr, idx, t = (est.context[k] for k in ("hist_indptr", "hist_indices", "hist_time"))
    for u in (0, 7):
        items, times = idx[indptr[u]:indptr[u + 1]], t[indptr[u]:indptr[u + 1]]
        t_u = est.history_text_vector(items, times, rec.item_labels)
        # the same history -> the same behaviour text, the same attention: the training user's text part
        assert torch.allclose(m.branch_weights()[2] * t_u, est._frozen[0][u, text], atol=1e-5)
        other = est.history_text_vector(items[:1], times[:1], rec.item_labels)
        assert not torch.allclose(other, t_u, atol=1e-3)  # it does read the history
    out = rec.recommend_for_history(A_ITEMS[:2], times=[1_000_000.0, 1_086_400.0], k=2)
    assert [cluster(i) for i, _ in out] == ["A", "A"], out


def test_a_fitted_hybrid_deep_copies_and_the_copy_scores_the_same(tiny_text_model):
    import copy

    from tests.test_hybrid import _params

    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=2, ease_prior=False)).fit(two_cluster_kg())
    users = torch.arange(len(rec.users))
    before = rec.score(users)  # builds the sparse adjacencies the copy must skip
    twin = copy.deepcopy(rec)
    twin.estimator.unfreeze()
    assert torch.allclose(twin.score(users), before, atol=1e-6)
    twin.update(new_block(), epochs=1)
    assert len(rec.users) == len(users) and torch.equal(rec.score(users), before)  # the original is untouched


def test_hybrid_update_encodes_only_the_new_items_texts(tiny_text_model, monkeypatch):
    from kgrec.models.hybrid import HybridEstimator
    from tests.test_hybrid import _params

    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=2, ease_prior=False)).fit(two_cluster_kg())
    seen: list[list[str]] = []
    real = HybridEstimator._encode
    monkeypatch.setattr(HybridEstimator, "_encode", lambda self, texts: seen.append(list(texts)) or real(self, texts))
    rec.update(new_block(), epochs=0)
    items_call, users_call = seen  # item segments first, then the users' behaviour texts
    assert items_call == ["90.", "genre: A."]  # the segments of the new item 90 alone (its name, its genre)
    assert len(users_call) == len(rec.users)


@pytest.mark.parametrize("model", ["mostpop", "itemknn", "ease", "bprmf", "lightgcn"])
def test_recommend_for_history_leaves_the_model_unchanged(model, tmp_path):
    """A call's given items are left out of that call's list only: MostPop's scores were a view of its
    popularity vector, so masking them wrote -inf into the model and every later caller (and a save)
    lost those items.
    """
    kg = two_cluster_kg(n_per=6, items_per=4)
    rec = kgrec.Recommender(model, **FAST.get(model, {})).fit(kg)
    everyone = rec.recommend_for_history([A_ITEMS[0]], k=len(rec.items))
    before = {k: v.clone() for k, v in rec.estimator.state_tensors().items()}
    rec.recommend_for_history(A_ITEMS[1:3], k=3)
    again = rec.recommend_for_history([A_ITEMS[0]], k=len(rec.items))
    assert again == everyone and len(again) == len(rec.items) - 1
    after = rec.estimator.state_tensors()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
