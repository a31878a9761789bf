
import pytest
import torch

import kgrec
from kgrec.models.hybrid import segment_text
from tests.conftest import topk_in_fresh_process, two_cluster_kg


def _params(text_model, **kw):
    p = dict(text_model=text_model, cache_dir="", dim=16, num_heads=2, epochs=40, lr=0.02, batch_size=16, reg=0.0,
             patience=100, seed=0, text_segments=2, max_history=4)
    p.update(kw)
    return p


def _drop_item(kg, item):
    keep = kg.interactions.item != item
    kg.interactions = kg.interactions.select(keep)
    return kg


def test_cold_item_ranked_by_its_kg_neighbourhood(tiny_text_model):
    kg = _drop_item(two_cluster_kg(n_per=6, items_per=4), 3)  # item 3 (genre A) has no interaction at all
    # no validation part, so the 40 epochs all run and the last state is kept: with 80/10/10 each user with
    # 3 interactions gives up a training item to validation (1/1/1) and selection stops at epoch 2, before
    # the KG neighbourhood has moved item 3. (0.8, 0, 0.2) is the split 80/10/10 gave before every user
    # with 3 interactions got a validation item: 2 train + 1 test (1 + 1 for the users with 2)
    sp = kgrec.split(kg, "random", ratios=(0.8, 0.0, 0.2), seed=0)
    assert len(sp.valid) == 0 and (len(sp.train), len(sp.test)) == (19, 12)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, use_cf=False, use_text=False)).fit(kg, sp)
    scores = rec.score(torch.arange(kg.num_users))
    # share of the other cluster's items that the cold genre-A item beats, per user
    beats_b = (scores[:, 3:4] > scores[:, 4:8]).float().mean(1)
    # genre-A users rank it above most genre-B items, genre-B users mostly below them
    assert beats_b[:6].mean() > 0.6
    assert beats_b[:6].mean() > beats_b[6:].mean() + 0.3


def test_batch_vectors_are_the_full_vectors_rows(tiny_text_model):
    """A training batch's vectors come from its distinct users only, and equal the full pass's rows."""
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    est = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=1, ease_prior=False)).fit(kg, sp).estimator
    est.module.eval()
    users, pos, neg = torch.tensor([5, 1, 5, 0]), torch.tensor([0, 2, 3, 1]), torch.tensor([[4], [6], [7], [5]])
    with torch.no_grad():
        u_all, i_all = est.embed()
        u, p, n = est.batch_vectors(users, pos, neg)
    torch.testing.assert_close(u, u_all[users])
    torch.testing.assert_close(p, i_all[pos])
    torch.testing.assert_close(n, i_all[neg])


def test_scores_with_priors_are_the_dot_products_of_the_vectors(tiny_text_model):
    """With its EASE prior the scores stay the dot products of the frozen vectors (the item vectors
    a transposed contiguous matrix; which product rows_times takes is tested in tests/nn).
    """
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    est = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=1,
                                                priors={"ease_weight": (1.0,)})).fit(kg, sp).estimator
    assert float(est.module.prior_gate) > 0
    u, i = est.vectors()
    assert i.t().is_contiguous()
    users = torch.arange(kg.num_users)
    torch.testing.assert_close(est.score(users), u @ i.t())


def test_fit_recommend_save_reload_identical(tiny_text_model, tmp_path):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=3)).fit(kg, sp)
    assert rec.fit_info["prior_relative_weight"] in rec.config.priors.ease_weight  # EASE weight chosen on valid
    assert rec.fit_info["prior_reg"] in rec.config.priors.ease_reg  # ... with EASE's own L2 weight
    regs = {t[2] for t in rec.fit_info["prior_trials"]}
    assert regs == set(rec.config.priors.ease_reg)
    best = max(t[0] for t in rec.fit_info["prior_trials"])
    assert rec.fit_info["valid"]["ndcg@10"] == best
    rec.save(tmp_path / "m")
    users = kg.users.labels
    expected = {u: [i for i, _ in v] for u, v in rec.recommend(users, k=3).items()}
    assert topk_in_fresh_process(tmp_path / "m", users, k=3) == expected


@pytest.mark.parametrize("kw", [{"use_kg": False}, {"use_text": False}, {"use_cf": False}, {"fusion": "concat"},
                                {"fusion": "sequence"}, {"ease_prior": False}])
def test_ablations_learn_the_taste_clusters(tiny_text_model, kw):
    """Every ablated model still learns what it can: on two taste clusters its top recommendation for
    (almost) every user is an item of the user's own cluster, the withheld one or another unseen there.
    """
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.8, 0.0, 0.2), seed=1)  # no validation part: all epochs run
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, **kw)).fit(kg, sp)
    top = {u: v[0][0] for u, v in rec.recommend(kg.users.labels, k=1).items()}
    own = [(int(u[-2:]) < 6) == (int(i[-2:]) < 4) for u, i in top.items()]
    assert sum(own) >= 11, top  # 12 users; chance level is 6


def test_segment_text():
    assert segment_text("Title (1995). genre: A. Long abstract here. More.", 2) == [
        "Title (1995). genre: A.", "Long abstract here. More."]
    assert segment_text("One.", 4) == ["One."]


def test_bad_text_model(tmp_path):
    kg = two_cluster_kg()
    with pytest.raises(kgrec.KgrecError, match="local model directory"):
        kgrec.Recommender("hybrid", text_model=str(tmp_path / "nope"), cache_dir="", epochs=1).fit(kg)


@pytest.mark.parametrize("mode", ["top-k", "full"])
def test_text_fine_tuning_changes_bert_and_user_vectors(tiny_text_model, tmp_path, mode):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    params = _params(tiny_text_model, epochs=3, text_mode=mode, text_top_k=1, text_lr=1e-2)
    rec = kgrec.Recommender("hybrid", **params).fit(kg, sp)
    est = rec.estimator
    from transformers import AutoModel

    base = AutoModel.from_pretrained(tiny_text_model, local_files_only=True)
    tuned = est.text_encoder.model
    last = dict(tuned.encoder.layer[-1].named_parameters())
    first = dict(tuned.embeddings.named_parameters())
    base_last = dict(base.encoder.layer[-1].named_parameters())
    base_first = dict(base.embeddings.named_parameters())
    assert any(not torch.allclose(last[k], base_last[k]) for k in last)  # top layer trained
    embeddings_moved = any(not torch.allclose(first[k], base_first[k]) for k in first)
    assert embeddings_moved == (mode == "full")  # top-k leaves the lower layers alone
    # user vectors were re-encoded with the tuned weights; a reload scores identically (the text
    # model directory is an argument of load, never read from the checkpoint)
    rec.save(tmp_path / "m")
    back = kgrec.Recommender.load(tmp_path / "m", text_model=tiny_text_model)
    assert torch.allclose(back.score(torch.arange(4)), rec.score(torch.arange(4)), atol=1e-5)


def test_top_k_prefix_cache_trains_as_the_whole_forward(tiny_text_model, tmp_path, monkeypatch):
    """text_prefix_cache: the frozen BERT layers run once per fit, steps run the top layer only, and
    (without dropout, which the frozen layers would otherwise apply) the fit ends where re-encoding
    through every layer ends.
    """
    from transformers import AutoModel, AutoTokenizer

    from kgrec.nn.text_encoder import TextEncoder

    model = AutoModel.from_pretrained(tiny_text_model, local_files_only=True, hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.0)
    model.save_pretrained(tmp_path / "bert")
    AutoTokenizer.from_pretrained(tiny_text_model).save_pretrained(tmp_path / "bert")
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    calls = {"forward": 0, "prefix": 0}
    full_forward, from_prefix = TextEncoder.forward, TextEncoder.forward_from_prefix

    def forward(self, *a):  # counts the re-encodings of training steps (with gradients, train mode)
        calls["forward"] += int(self.training and torch.is_grad_enabled())
        return full_forward(self, *a)

    def forward_from_prefix(self, *a):
        calls["prefix"] += 1
        return from_prefix(self, *a)

    monkeypatch.setattr(TextEncoder, "forward", forward)
    monkeypatch.setattr(TextEncoder, "forward_from_prefix", forward_from_prefix)
    recs = {}
    for cache in (True, False):
        calls.update(forward=0, prefix=0)
        params = _params(str(tmp_path / "bert"), epochs=3, text_mode="top-k", text_top_k=1, text_lr=1e-2,
                         text_prefix_cache=cache, ease_prior=False, seq_prior=False)
        recs[cache] = kgrec.Recommender("hybrid", **params).fit(kg, sp)
        if cache:  # no step ran the whole forward
            assert calls["forward"] == 0 and calls["prefix"] > 3
            assert recs[cache].estimator._prefix is None  # released after the fit
        else:
            assert calls["prefix"] == 0 and calls["forward"] >= 3  # one per step
    a, b = (dict(recs[c].estimator.text_encoder.model.encoder.layer[-1].named_parameters()) for c in (True, False))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert torch.allclose(recs[True].score(torch.arange(4)), recs[False].score(torch.arange(4)), atol=1e-4)
    with pytest.raises(kgrec.KgrecError, match="'text_prefix_cache' must be true or false \\(got 'yes'\\)"):
        kgrec.Recommender("hybrid", text_prefix_cache="yes")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_hybrid_trains_on_gpu_with_bf16_autocast(tiny_text_model, tmp_path):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=3, device="cuda",
                                                 text_mode="top-k", text_top_k=1)).fit(kg, sp)
    assert rec.fit_info["device"].startswith("cuda") and rec.fit_info["peak_gpu_mb"] > 0
    rec.save(tmp_path / "m")
    back = kgrec.Recommender.load(tmp_path / "m", device="cpu", text_model=tiny_text_model)
    assert torch.allclose(back.score(torch.arange(4)), rec.score(torch.arange(4)), atol=1e-3)


@pytest.mark.parametrize("reg", [0.0, -5.0, ()])
def test_bad_ease_reg_is_named(tiny_text_model, reg):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=1)
    with pytest.raises(kgrec.KgrecError, match=r"'priors\.ease_reg'"):
        kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=1, priors={"ease_reg": reg})).fit(kg, sp)


def test_frozen_text_steps_use_cached_vectors_only(tiny_text_model):
    """text_mode="frozen": text vectors are computed once in prepare; a training step tokenises nothing."""
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=1)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=1, text_mode="frozen")).fit(kg, sp)
    est = rec.estimator
    assert not est.tunes_text
    assert est.context["user_text"].shape[0] == kg.num_users

    def refuse(*args, **kwargs):
        raise AssertionError("a frozen-text training step called the tokenizer or the text encoder")

    est.tokenizer = refuse
    est.text_encoder.forward = refuse
    est.unfreeze()
    users, pos = sp.train.user[:8], sp.train.item[:8]
    loss = est.batch_loss(users, pos, (pos + 1) % kg.num_items)
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss)


def _chain_kg(n_users=24, n_items=16, length=8):
    """Users walk a ring of items in order: user u takes items s, s+1, ..., s+length-1 (mod n_items),
    s = u mod n_items, one a day; an item's successor is the right next item, whatever the user.
    """
    from kgrec.data.graph import Interactions, KnowledgeGraph
    from kgrec.data.vocab import Vocab

    users = Vocab([f"http://x/user/{u:02d}" for u in range(n_users)], name="user")
    items = Vocab([f"http://x/item/{i:02d}" for i in range(n_items)], name="item")
    ents = Vocab(items.labels + ["http://x/genre/A"], sort=False, name="entity")
    rels = Vocab(["https://w3id.org/kgrec/vocab#genre"], name="relation")
    uu, ii, tt = [], [], []
    for u in range(n_users):
        for k in range(length):
            uu.append(u)
            ii.append((u + k) % n_items)
            tt.append(1_000_000 + 86400 * k)
    lits = {i: {"https://w3id.org/kgrec/vocab#title": [f"Item {i} (action)"]} for i in range(n_items)}
    return KnowledgeGraph(users, items, ents, rels, torch.tensor([[i, 0, n_items] for i in range(n_items)]),
                          Interactions.from_lists(uu, ii, None, tt), literals=lits)


def test_sequential_rules_prior_follows_the_timeline(tiny_text_model, tmp_path):
    kg = _chain_kg()
    sp = kgrec.split(kg, "temporal", ratios=(0.75, 0.125, 0.125))  # per user: 6 train, 1 valid, 1 test
    params = _params(tiny_text_model, epochs=2, use_kg=False, use_text=False)
    rec = kgrec.Recommender("hybrid", **params).fit(kg, sp)
    info = rec.fit_info
    assert info["seq_relative_weight"] > 0 and "seq_weight" in rec.estimator.context  # chosen on valid
    assert info["valid"]["ndcg@10"] > info["seq_trials"][0][0]  # ... because it beat the model without it
    hit = rec.evaluate(sp, ks=(1,))["hit@1"]  # the test item is two after the last training item
    plain = kgrec.Recommender("hybrid", **params, seq_prior=False).fit(kg, sp)
    assert "seq_weight" not in plain.estimator.context
    assert hit >= 0.75 and plain.evaluate(sp, ks=(1,))["hit@1"] <= hit - 0.5  # a set-based model cannot tell

    # a user given at call time gets the same rule scores as a training user with that history
    est, u = rec.estimator, 3
    lo, hi = est.context["hist_indptr"][u], est.context["hist_indptr"][u + 1]
    items, times = est.context["hist_indices"][lo:hi], est.context["hist_time"][lo:hi]
    ones = torch.ones(items.numel())
    seq_part = est.score_history(items, ones, times=times) - est.score_history(items, ones)
    expected = float(est.module.seq_gate) * (est.entry_rows(torch.tensor([u]), est.recency_weights()) @
                                             est.context["seq_weight"])[0]
    assert torch.allclose(seq_part, expected, atol=1e-4)

    rec.save(tmp_path / "m")  # the rules and their recency travel with the checkpoint
    users = kg.users.labels
    expected_top = {u: [i for i, _ in v] for u, v in rec.recommend(users, k=3).items()}
    assert topk_in_fresh_process(tmp_path / "m", users, k=3) == expected_top


def test_priors_enter_scores_but_never_a_training_step(tiny_text_model):
    kg = _chain_kg()
    sp = kgrec.split(kg, "temporal", ratios=(0.75, 0.125, 0.125))
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=2, use_kg=False, use_text=False,
                                                priors={"ease_weight": (1.0,), "seq_weight": (1.0,)})).fit(kg, sp)
    est, m = rec.estimator, rec.estimator.module
    gates = float(m.prior_gate), float(m.seq_gate)
    assert gates[0] > 0 and gates[1] > 0  # pinned one-value grids: both priors on
    d, n_items = m.dim, kg.num_items
    m.eval()
    u_eval, i_eval = est.embed()
    assert u_eval.shape[1] == i_eval.shape[1] == 3 * d + 2 * n_items  # EASE rows + rule rows ride along
    m.train()
    u_train, i_train = est.embed()
    assert u_train.shape[1] == i_train.shape[1] == 3 * d  # a training step (fit or update) sees the neural part
    m.eval()
    # the neural part is the same either way (dropout off): the priors only add their own columns
    assert torch.allclose(est.embed()[0][:, :3 * d], u_eval[:, :3 * d])
    before = rec.recommend(kg.users.labels[:3], k=3)
    rec.update(kg, sp.valid, epochs=1)  # continued training on the held-out pairs, then scored with priors
    assert (float(rec.estimator.module.prior_gate), float(rec.estimator.module.seq_gate)) == gates
    rec.estimator.module.eval()
    assert rec.estimator.embed()[0].shape[1] == 3 * d + 2 * n_items
    assert set(before) == set(rec.recommend(kg.users.labels[:3], k=3))


@pytest.mark.parametrize("kw", [{"seq_window": 0}, {"seq_recency": (1.0, -2.0)}, {"seq_weight": (-1.0,)},
                                {"seq_window": ()}])
def test_bad_sequential_rules_settings_are_named(tiny_text_model, kw):
    kg = _chain_kg()
    sp = kgrec.split(kg, "temporal", ratios=(0.75, 0.125, 0.125))
    with pytest.raises(kgrec.KgrecError, match=f"'priors.{next(iter(kw))}'"):
        kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=1, priors=kw)).fit(kg, sp)


def test_update_refits_the_chosen_sequential_rules_on_all_data(tiny_text_model):
    from kgrec.nn.linear import SequentialRules

    kg = _chain_kg()
    sp = kgrec.split(kg, "temporal", ratios=(0.75, 0.125, 0.125))
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=2, use_kg=False, use_text=False)).fit(kg, sp)
    assert "seq_weight" in rec.estimator.context
    longer = _chain_kg(length=9)  # every user takes one more item along the ring, a day later
    new = longer.interactions.select(longer.interactions.time == longer.interactions.time.max())
    est = rec.update(longer, new=new, epochs=0).estimator
    c = est.context
    expected = SequentialRules(kg.num_items, window=rec.fit_info["seq_window"]).fit(
        c["hist_indptr"], c["hist_indices"], c["hist_time"]).weight
    assert c["hist_indices"].numel() == len(sp.train) + kg.num_users  # the old training data and the new block
    assert torch.equal(c["seq_weight"], expected) and float(c["seq_recency"][0]) == rec.fit_info["seq_recency"]
    assert float(est.module.seq_gate) == float(rec.estimator.module.seq_gate) > 0


@pytest.mark.parametrize("kw", [dict(), dict(use_text=False), dict(use_cf=False)])
def test_pseudo_cold_items_train_as_cold_items_are_scored(tiny_text_model, kw):
    """An item treated as cold in a training epoch loses its id embeddings and its user-item edges
    in both graphs, so no training vector depends on its interaction rows, as for a new item.
    """
    kg = two_cluster_kg(n_per=6, items_per=4)
    sp = kgrec.split(kg, "random", ratios=(0.8, 0.0, 0.2), seed=0)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=1, item_dropout=0.5, ease_prior=False,
                                                 seq_prior=False, **kw)).fit(kg, sp)
    est, m = rec.estimator, rec.estimator.module
    torch.manual_seed(3)
    est.unfreeze()  # a training epoch starts: draws the pseudo-cold items
    cold = est._cold_epoch["cold"]
    U, I = kg.num_users, kg.num_items
    assert 0 < int(cold.sum()) < I and not bool((cold & ~est.context["item_warm"].bool()).any())
    if m.use_kg:  # exactly the user-item edges touching a cold item are gone, every KG edge stays
        ei, et = est.context["edge_index"], est.context["edge_type"]
        ui = et >= est.meta["num_edge_types"] - 2
        touches = torch.tensor([bool(cold[min(int(a), int(b))]) if min(int(a), int(b)) < I else False
                                for a, b in ei.t().tolist()])
        kept_ei, kept_et = est._cold_epoch["edges"]
        assert kept_et.numel() == et.numel() - int((ui & touches).sum())
        assert int((kept_et < est.meta["num_edge_types"] - 2).sum()) == int((~ui).sum())
    m.eval()  # dropout off, the pseudo-cold graphs still used (training=True below only selects them)
    m.training = True
    for sub in m.modules():
        if isinstance(sub, torch.nn.Dropout):
            sub.eval()
    with torch.no_grad():
        users, items = est.embed()
        # scramble every id embedding row of the cold items: nothing may move
        if m.use_cf:
            w = m.cf.gcn.embedding.weight
            w[U:][cold] = torch.randn_like(w[U:][cold]) * 10
        if m.use_kg:
            m.node_emb.weight[:I][cold] = torch.randn_like(m.node_emb.weight[:I][cold]) * 10
        users2, items2 = est.embed()
    assert torch.allclose(users, users2, atol=1e-5) and torch.allclose(items, items2, atol=1e-5)


def test_scoring_a_history_outside_no_grad_twice_gives_the_same_scores_and_trains_nothing(tiny_text_model):
    # the text part of a folded-in user's scores goes through the branch gates (parameters): scoring
    # must neither backpropagate into them nor fail when called again in grad mode
    kg = _chain_kg()
    sp = kgrec.split(kg, "temporal", ratios=(0.75, 0.125, 0.125))
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=2, use_kg=False)).fit(kg, sp)
    est = rec.estimator
    items, times = torch.tensor([1, 2, 3]), torch.tensor([1e6, 1e6 + 86400, 1e6 + 2 * 86400], dtype=torch.float64)
    w, labels = torch.ones(3), rec.item_labels
    grads = [None if p.grad is None else p.grad.clone() for p in est.module.parameters()]
    with torch.no_grad():
        expected = est.score_history(items, w, times=times, labels=labels)
    first = est.score_history(items, w, times=times, labels=labels)
    second = est.score_history(items, w, times=times, labels=labels)
    assert not first.requires_grad and torch.equal(first, expected) and torch.equal(second, expected)
    after = [None if p.grad is None else p.grad.clone() for p in est.module.parameters()]
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(grads, after))
