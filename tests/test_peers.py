"""The benchmark peers of :mod:`kgrec.models.peers`: ``ease+rules``, ``random`` and ``content-knn``,
each checked on data with a known right answer, and saved/reloaded to identical scores.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import kgrec
from kgrec.data.text import item_texts
from kgrec.models.priors_select import PriorSearch
from tests.conftest import two_cluster_kg
from tests.test_hybrid import _chain_kg

#: the benchmark's declared ease+rules grids (SPACES["EASE+rules"] of benchmarks/tuning.py): 2 + 2 x 1 x 2 = 6 trials
BENCH = dict(priors=dict(ease_reg=(250.0, 500.0), seq_window=(3.0, 10.0), seq_recency=(1.0,),
                         seq_weight=(0.0, 1.0, 2.0)))


# ------------------------------------------------------------------------------------- ease+rules
def test_ease_rules_follows_the_ring_timeline():
    kg = _chain_kg()  # users walk a ring of items, one a day: the next item is the one after the latest
    sp = kgrec.split(kg, "temporal", ratios=(0.75, 0.125, 0.125))  # per user: 6 train, 1 valid, 1 test
    rec = kgrec.Recommender("ease+rules", **BENCH).fit(kg, sp)
    info, c = rec.fit_info, rec.estimator.context
    assert info["seq_relative_weight"] > 0 and "seq_weight" in c  # chosen on validation...
    assert info["valid"]["ndcg@10"] > info["seq_trials"][0][0]  # ... because it beat EASE alone
    assert info["trials"] == 2 + 2 * 1 * 2  # each reg, then each (window, tau, weight > 0)
    assert info["ease_reg"] in BENCH["priors"]["ease_reg"] and info["seq_window"] in BENCH["priors"]["seq_window"]
    assert info["seq_recency"] == 1.0
    for key in ("fit_seconds", "seconds_to_best", "peak_rss_mb"):
        assert info[key] > 0
    # the test item is two after the last training item; a set model (EASE) cannot tell it from the one before
    assert rec.evaluate(sp, ks=(1,))["hit@1"] >= 0.75
    ease = kgrec.Recommender("ease", reg=info["ease_reg"]).fit(kg, sp)
    assert ease.evaluate(sp, ks=(1,))["hit@1"] <= 0.25

    # scores = history @ B + a * recency rows @ T
    est, users = rec.estimator, torch.arange(kg.num_users)
    expected = est.history(users) @ c["ease_weight"] + float(c["seq_gate"][0]) * (
        est.entry_rows(users, est.recency_weights(1.0)) @ c["seq_weight"])
    assert torch.allclose(rec.score(users), expected, atol=1e-6)
    assert rec.estimator.chosen_params() == {"priors": {
        "ease_reg": (info["ease_reg"],), "ease_weight": PriorSearch().ease_weight, "seq_window": (info["seq_window"],),
        "seq_recency": (1.0,), "seq_weight": (0.0, info["seq_relative_weight"])}}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ease_rules_keeps_weight_zero_when_order_means_nothing(seed):
    """On a random split the held-out items are anywhere in the walk, mostly not after the latest
    item: rules at full weight push the item after the walk's end, and validation keeps EASE alone.
    """
    kg = _chain_kg()
    sp = kgrec.split(kg, "random", ratios=(0.75, 0.125, 0.125), seed=seed)
    rec = kgrec.Recommender("ease+rules", **BENCH).fit(kg, sp)
    info = rec.fit_info
    assert info["seq_relative_weight"] == 0.0 and "seq_weight" not in rec.estimator.context
    assert len(info["seq_trials"]) == 1 + 2 * 1 * 2 and info["trials"] == 6  # the rules were tried
    assert info["valid"]["ndcg@10"] == info["seq_trials"][0][0] == max(t[0] for t in info["seq_trials"])
    assert rec.estimator.chosen_params()["priors"]["seq_weight"] == (0.0,)
    users = torch.arange(kg.num_users)
    ease = kgrec.Recommender("ease", reg=info["ease_reg"]).fit(kg, sp)
    assert torch.allclose(rec.score(users), ease.score(users))


@pytest.mark.parametrize("params", [{"seq_prior": False}, {"priors": {"ease_reg": (500.0,), "seq_weight": (0.0,)}}])
def test_ease_rules_with_ease_only_equals_ease(params):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    users = torch.arange(kg.num_users)
    rec = kgrec.Recommender("ease+rules", **{"priors": {"ease_reg": (500.0,)}, **params}).fit(kg, sp)
    ease = kgrec.Recommender("ease", reg=500.0).fit(kg, sp)
    assert torch.allclose(rec.score(users), ease.score(users))
    assert rec.fit_info["trials"] == 1 and rec.fit_info["ease_reg"] == 500.0


def test_ease_rules_picks_the_reg_on_validation_and_the_first_without_one():
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    regs = (1000.0, 1.0, 10.0)
    rec = kgrec.Recommender("ease+rules", priors={"ease_reg": regs}, seq_prior=False).fit(kg, sp)
    trials = rec.fit_info["ease_trials"]
    assert [r for _, r in trials] == list(regs) and rec.fit_info["trials"] == 3
    best = max(trials, key=lambda t: t[0])  # max keeps the first of equal ones: ties -> the earlier reg
    assert rec.fit_info["ease_reg"] == best[1]
    users = torch.arange(kg.num_users)
    assert torch.allclose(rec.score(users), kgrec.Recommender("ease", reg=best[1]).fit(kg, sp).score(users))

    no_valid = kgrec.split(kg, "random", ratios=(0.8, 0.0, 0.2), seed=1)
    assert len(no_valid.valid) == 0
    rec = kgrec.Recommender("ease+rules", priors={"ease_reg": regs}).fit(kg, no_valid)
    assert rec.fit_info["trials"] == 0 and rec.fit_info["ease_reg"] == 1000.0
    assert torch.allclose(rec.score(users), kgrec.Recommender("ease", reg=1000.0).fit(kg, no_valid).score(users))


@pytest.mark.parametrize("kw", [{"ease_reg": 0}, {"seq_window": ()}, {"seq_recency": (1.0, -2.0)},
                                {"seq_weight": (-1.0,)}])
def test_ease_rules_bad_settings_are_named(kw):
    with pytest.raises(kgrec.KgrecError, match=f"'priors.{next(iter(kw))}'"):
        kgrec.Recommender("ease+rules", priors=kw)


# ------------------------------------------------------------------------------------------ random
def test_random_is_seeded_per_user():
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=0)
    users = torch.arange(kg.num_users)
    a = kgrec.Recommender("random", seed=5).fit(kg, sp).score(users)
    b = kgrec.Recommender("random", seed=5).fit(kg, sp).score(users)
    c = kgrec.Recommender("random", seed=6).fit(kg, sp).score(users)
    assert a.shape == (kg.num_users, kg.num_items) and torch.equal(a, b)
    assert not torch.equal(a, c) and ((a - c).abs() > 0).all(dim=1).all()
    assert ((a >= 0) & (a < 1)).all() and not torch.equal(a[0], a[1])
    rec = kgrec.Recommender("random", seed=5).fit(kg, sp)
    for batch in (torch.tensor([3]), torch.tensor([7, 3, 0]), users.flip(0)):  # batch composition is irrelevant
        assert torch.equal(rec.score(batch), a[batch])
    assert kgrec.Recommender.params_of("random") == {"seed": 2020}


# ------------------------------------------------------------------------------------- content-knn
def _twin_kg():
    """Two clusters; item 3 gets item 0's title (both genre A, so the same text) and no interaction."""
    kg = two_cluster_kg(n_per=6, items_per=4)
    lits = {i: dict(v) for i, v in kg.literals.items()}
    lits[3] = dict(lits[0])
    keep = kg.interactions.item != 3
    kg = dataclasses.replace(kg, literals=lits, interactions=kg.interactions.select(keep))
    texts = item_texts(kg)
    assert texts[0] == texts[3] and len(set(texts)) == kg.num_items - 1
    return kg


def test_content_knn_finds_the_twin_and_scores_the_cold_one(tiny_text_model, tmp_path):
    kg = _twin_kg()
    sp = kgrec.split(kg, "random", seed=0)
    rec = kgrec.Recommender("content-knn", text_model=tiny_text_model, cache_dir=str(tmp_path / "cache"),
                            k=3).fit(kg, sp)
    c = rec.estimator.context
    n = kg.num_items
    sim = torch.zeros(n, n).index_put_((c["sim_index"][0], c["sim_index"][1]), c["sim_value"])
    assert (sim.diagonal() == 0).all() and ((sim > 0).sum(0) <= 3).all()  # k neighbours, never itself
    for a, b in ((0, 3), (3, 0)):  # each other's top neighbour, with cosine 1
        assert int(sim[:, a].argmax()) == b
        assert torch.allclose(sim[b, a], torch.tensor(1.0), atol=1e-5)
        assert (sim[:, a][torch.arange(n) != b] < 1.0 - 1e-4).all()
    users = torch.arange(kg.num_users)
    scores = rec.score(users)
    hist = rec.estimator.history(users)
    assert torch.allclose(scores, hist @ sim, atol=1e-6)  # score = history row @ S
    took_twin = hist[:, 0] > 0
    assert took_twin.any() and (scores[took_twin, 3] >= sim[0, 3] - 1e-5).all()  # the cold item is scored
    assert rec.estimator.module(hist).allclose(scores)  # rows given at call time score alike
    assert rec.fit_info["text_dim"] == 32 and rec.fit_info["peak_rss_mb"] > 0

    # a second fit reads the item vectors from the disk cache (the encoder is never called)
    from kgrec.nn.text_encoder import TextEncoder

    def refuse(*a, **k):
        raise AssertionError("encoded again")

    orig = TextEncoder.encode_all
    TextEncoder.encode_all = refuse
    try:
        again = kgrec.Recommender("content-knn", text_model=tiny_text_model, cache_dir=str(tmp_path / "cache"),
                                  k=3).fit(kg, sp)
    finally:
        TextEncoder.encode_all = orig
    assert torch.equal(again.score(users), scores)


# --------------------------------------------------------------------------------------- save/load
@pytest.mark.parametrize("model", ["ease+rules", "random", "content-knn"])
def test_save_reload_identical_scores(model, tiny_text_model, tmp_path, monkeypatch):
    if model == "content-knn":
        kg = _twin_kg()
        sp = kgrec.split(kg, "random", seed=0)
        params = dict(text_model=tiny_text_model, cache_dir="", k=4)
    else:
        kg = _chain_kg()
        sp = kgrec.split(kg, "temporal", ratios=(0.75, 0.125, 0.125))
        params = dict(BENCH) if model == "ease+rules" else dict(seed=11)
    rec = kgrec.Recommender(model, **params).fit(kg, sp)
    if model == "ease+rules":
        assert "seq_weight" in rec.estimator.context  # the rules travel with the checkpoint
    users = torch.arange(kg.num_users)
    expected = rec.score(users)
    rec.save(tmp_path / "m")

    from kgrec.models.hybrid import HybridEstimator

    def refuse(*a, **k):
        raise AssertionError("re-encoded on reload")

    monkeypatch.setattr(HybridEstimator, "_encode", refuse)
    back = kgrec.Recommender.load(tmp_path / "m")
    assert torch.equal(back.score(users), expected)
    assert torch.equal(back.score(users[5:9]), expected[5:9])
    assert back.fit_info.keys() == rec.fit_info.keys()
