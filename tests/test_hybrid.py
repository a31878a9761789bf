
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
    sp = kgrec.split(kg, "random", seed=0)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, use_cf=False, use_text=False)).fit(kg, sp)
    scores = rec.score(torch.arange(kg.num_users))
    # share of the other cluster's items that the cold genre-A item beats, per user
    beats_b = (scores[:, 3:4] > scores[:, 4:8]).float().mean(1)
    # genre-A users rank it above most genre-B items, genre-B users mostly below them
    assert beats_b[:6].mean() > 0.6
    assert beats_b[:6].mean() > beats_b[6:].mean() + 0.3


def test_fit_recommend_save_reload_identical(tiny_text_model, tmp_path):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=3)).fit(kg, sp)
    assert rec.fit_info["prior_relative_weight"] in rec.config.prior_grid  # EASE weight chosen on valid
    assert rec.fit_info["prior_reg"] in rec.config.ease_reg  # ... with EASE's own L2 weight
    regs = {t[2] for t in rec.fit_info["prior_trials"]}
    assert regs == set(rec.config.ease_reg)
    best = max(t[0] for t in rec.fit_info["prior_trials"])
    assert rec.fit_info["valid"]["ndcg@10"] == best
    rec.save(tmp_path / "m")
    users = kg.users.labels
    expected = {u: [i for i, _ in v] for u, v in rec.recommend(users, k=3).items()}
    assert topk_in_fresh_process(tmp_path / "m", users, k=3) == expected


@pytest.mark.parametrize("kw", [{"use_kg": False}, {"use_text": False}, {"use_cf": False}, {"fusion": "concat"},
                                {"ease_prior": False}])
def test_ablations_train(tiny_text_model, kw):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=1)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=2, **kw)).fit(kg, sp)
    m = rec.evaluate(sp, ks=(5,))
    assert 0.0 <= m["ndcg@5"] <= 1.0 and m["users"] > 0


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
    # user vectors were re-encoded with the tuned weights; a reload scores identically
    rec.save(tmp_path / "m")
    back = kgrec.Recommender.load(tmp_path / "m")
    assert torch.allclose(back.score(torch.arange(4)), rec.score(torch.arange(4)), atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_hybrid_trains_on_gpu_with_bf16_autocast(tiny_text_model, tmp_path):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=3, device="cuda",
                                                 text_mode="top-k", text_top_k=1)).fit(kg, sp)
    assert rec.fit_info["device"].startswith("cuda") and rec.fit_info["peak_gpu_mb"] > 0
    rec.save(tmp_path / "m")
    back = kgrec.Recommender.load(tmp_path / "m", device="cpu")
    assert torch.allclose(back.score(torch.arange(4)), rec.score(torch.arange(4)), atol=1e-3)


@pytest.mark.parametrize("reg", [0.0, -5.0, ()])
def test_bad_ease_reg_is_named(tiny_text_model, reg):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=1)
    with pytest.raises(kgrec.KgrecError, match="'ease_reg'"):
        kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=1, ease_reg=reg)).fit(kg, sp)


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
