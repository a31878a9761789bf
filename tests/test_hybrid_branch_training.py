"""Per-branch training settings of the hybrid: ``cf_lr``, ``cf_reg`` and ``branch_loss``, against
values computed by hand from the same vectors.
"""

import pytest
import torch

import kgrec
from kgrec.errors import KgrecError
from kgrec.models.hybrid import HybridConfig
from kgrec.nn.losses import bpr_loss, l2_reg
from tests.conftest import two_cluster_kg


def _fitted(tiny_text_model, **kw):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=1)
    p = dict(text_model=tiny_text_model, cache_dir="", dim=8, num_heads=2, epochs=1, batch_size=16, seed=0,
             text_segments=2, max_history=4, ease_prior=False, seq_prior=False, reg=1e-2)
    p.update(kw)
    est = kgrec.Recommender("hybrid", **p).fit(kg, sp).estimator
    est.module.train()
    est.unfreeze()
    return est


def _batch():
    return torch.tensor([0, 1, 7]), torch.tensor([0, 2, 5]), torch.tensor([6, 7, 1])


def test_cf_lr_puts_the_cf_branch_in_its_own_group(tiny_text_model):
    est = _fitted(tiny_text_model, cf_lr=0.05, lr=1e-3)
    groups = est.param_groups()
    cf = {id(p) for p in est.module.cf.parameters()}
    assert groups[0]["lr"] == 0.05 and {id(p) for p in groups[0]["params"]} == cf
    rest = [p for g in groups[1:] for p in g["params"]]
    assert rest and not any(id(p) in cf for p in rest) and "lr" not in groups[1]
    every = {id(p) for p in est.module.parameters() if p.requires_grad}
    assert {id(p) for g in groups for p in g["params"]} == every  # nothing lost, nothing twice
    assert len(est_groups := _fitted(tiny_text_model).param_groups()) == 1 and "lr" not in est_groups[0]


def test_cf_reg_weights_each_branch_embeddings(tiny_text_model):
    est = _fitted(tiny_text_model, cf_reg=0.5, reg=0.01)
    users, pos, neg = _batch()
    m = est.module
    cf_u, cf_p = m.cf.ego(users, pos)
    cf_n = m.cf.ego(users, neg)[1]
    E = m.num_entities
    kg_u, kg_p, kg_n = m.node_emb.weight[users + E], m.node_emb.weight[pos], m.node_emb.weight[neg]
    expected = 0.5 * l2_reg(cf_u, cf_p, cf_n) + 0.01 * l2_reg(kg_u, kg_p, kg_n)
    assert torch.allclose(est.penalty(users, pos, neg), expected)
    # unset: one reg over both branches, as before
    plain = _fitted(tiny_text_model, reg=0.01)
    m = plain.module
    both = [torch.cat(t, -1) for t in ((m.cf.ego(users, pos)[0], m.node_emb.weight[users + E]),
                                       (m.cf.ego(users, pos)[1], m.node_emb.weight[pos]),
                                       (m.cf.ego(users, neg)[1], m.node_emb.weight[neg]))]
    assert torch.allclose(plain.penalty(users, pos, neg), 0.01 * l2_reg(*both))


def test_branch_loss_adds_each_branch_bpr_and_leaves_the_gates(tiny_text_model):
    est = _fitted(tiny_text_model, branch_loss=0.3, dropout=0.0, item_dropout=0.0)
    users, pos, neg = _batch()
    u, p, n = est.batch_vectors(users, pos, neg)
    m = est.module
    w = m.branch_weights().detach()
    d = m.dim
    expected = bpr_loss((u * p).sum(-1), (u * n).sum(-1))
    for k in range(3):
        sl = slice(k * d, (k + 1) * d)
        ub = u[:, sl] / w[k]
        expected = expected + 0.3 * bpr_loss((ub * p[:, sl]).sum(-1), (ub * n[:, sl]).sum(-1))
    assert torch.allclose(est.ranking_loss(u, p, n), expected, atol=1e-6)
    # the extra losses send no gradient to the gates: only the fused loss does
    extra = est.ranking_loss(u, p, n) - super(type(est), est).ranking_loss(u, p, n)
    grad = torch.autograd.grad(extra, m.branch_gate, retain_graph=True)[0]
    assert torch.allclose(grad, torch.zeros(3), atol=1e-6)
    fused = torch.autograd.grad(super(type(est), est).ranking_loss(u, p, n), m.branch_gate)[0]
    assert fused.abs().sum() > 0


def test_branch_loss_skips_branches_that_are_off(tiny_text_model):
    est = _fitted(tiny_text_model, branch_loss=1.0, use_text=False, dropout=0.0, item_dropout=0.0)
    users, pos, neg = _batch()
    u, p, n = est.batch_vectors(users, pos, neg)
    w = est.module.branch_weights().detach()
    d = est.module.dim
    expected = bpr_loss((u * p).sum(-1), (u * n).sum(-1))
    for k in range(2):  # cf and kg only; the text slice is zeros and its gate 0
        sl = slice(k * d, (k + 1) * d)
        expected = expected + bpr_loss((u[:, sl] / w[k] * p[:, sl]).sum(-1), (u[:, sl] / w[k] * n[:, sl]).sum(-1))
    assert torch.allclose(est.ranking_loss(u, p, n), expected, atol=1e-6)


@pytest.mark.parametrize("kw", [{"cf_lr": 0.0}, {"cf_lr": -1e-3}, {"cf_reg": -1.0}, {"branch_loss": -0.5},
                                {"branch_loss": "x"}, {"cf_reg": float("nan")}])
def test_bad_branch_settings_are_refused_by_name(kw):
    name = next(iter(kw))
    with pytest.raises(KgrecError, match=f"'{name}'"):
        HybridConfig(**kw)


def test_cf_first_trains_cf_alone_then_the_rest_over_it_frozen(tiny_text_model, monkeypatch):
    import kgrec.models.hybrid.estimator as hybrid_estimator

    calls = []
    real = hybrid_estimator.fit_pairwise

    def spy(est, split, **kw):
        m = est.module
        seen = {"cfg": est.config, "branches": (m.use_kg, m.use_text), "item_dropout": m.item_dropout,
                "groups": [len(g["params"]) for g in est.param_groups()], "kw": sorted(kw)}
        info = real(est, split, **kw)
        seen["cf_after"] = [p.detach().clone() for p in m.cf.parameters()]
        seen["gates_after"] = m.branch_weights().detach().clone()
        calls.append(seen)
        return info

    monkeypatch.setattr(hybrid_estimator, "fit_pairwise", spy)
    est = _fitted(tiny_text_model, stages="cf-first", cf_batch_size=8, cf_lr=0.05, cf_reg=0.5, lr=0.01, reg=1e-3,
                  epochs=6, eval_every=2, patience=2, item_dropout=0.2, branch_loss=0.5)
    first, second = calls
    # stage 1: a LightGCN: CF branch only, its own batch size / lr / L2, every epoch validated
    assert first["branches"] == (False, False) and first["item_dropout"] == 0.0
    c = first["cfg"]
    assert (c.batch_size, c.lr, c.reg, c.eval_every, c.patience, c.branch_loss) == (8, 0.05, 0.5, 1, 4, 0.0)
    assert est.config.branch_loss == 0.5  # the second stage's
    # stage 2: every branch, the CF weights frozen (not in any optimizer group) and unchanged by it
    assert second["branches"] == (True, True) and second["cfg"] is est.config
    assert sum(second["groups"]) == sum(1 for p in est.module.parameters()) - len(list(est.module.cf.parameters()))
    assert "validate_start" in second["kw"]
    for a, b in zip(first["cf_after"], second["cf_after"]):
        assert torch.equal(a, b)
    # afterwards every parameter trains again (update(), fine-tuning) and the branches are back on
    assert all(p.requires_grad for p in est.module.parameters())
    assert est.module.item_dropout == 0.2
    info = est.fit_info
    assert info["cf_stage"]["epochs_run"] >= 1 and info["curve"][0]["epoch"] == 0 and info["curve"][0]["loss"] is None
    assert info["fit_seconds"] >= info["cf_stage"]["fit_seconds"]


def test_cf_first_refuses_to_resume(tiny_text_model):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=1)
    est = kgrec.Recommender("hybrid", text_model=tiny_text_model, cache_dir="", dim=8, num_heads=2, epochs=1,
                            stages="cf-first", ease_prior=False, seq_prior=False).estimator
    with pytest.raises(KgrecError, match="cf-first"):
        est.fit(kg, sp, resume={"state": {}, "epoch": 1, "valid": {}})


def test_validate_start_keeps_the_start_when_no_epoch_beats_it(tiny_text_model):
    # lr 0: every epoch scores what the start scores, and a tie is no improvement
    est = _fitted(tiny_text_model, lr=0.0, epochs=4, eval_every=1, patience=10, dropout=0.0, item_dropout=0.0)
    from kgrec.training.trainer import fit_pairwise

    kg = two_cluster_kg()
    info = fit_pairwise(est, kgrec.split(kg, "random", seed=1), validate_start=True)
    assert info["best_epoch"] == 0 and info["epochs_run"] == 4
    assert [r["epoch"] for r in info["curve"]] == [0, 1, 2, 3, 4] and info["curve"][0]["loss"] is None
    assert info["valid"]["ndcg@10"] == info["curve"][0]["valid"]["ndcg@10"]


@pytest.mark.parametrize("kw", [{"stages": "cf"}, {"cf_batch_size": 0}, {"cf_batch_size": 2.5}])
def test_bad_stage_settings_are_refused_by_name(kw):
    with pytest.raises(KgrecError, match=f"'{next(iter(kw))}'"):
        HybridConfig(**kw)


def test_cf_first_without_content_branches_is_the_cf_stage_alone(tiny_text_model, monkeypatch):
    import kgrec.models.hybrid.estimator as hybrid_estimator

    calls = []
    real = hybrid_estimator.fit_pairwise
    monkeypatch.setattr(hybrid_estimator, "fit_pairwise",
                        lambda est, split, **kw: calls.append(est.config.batch_size) or real(est, split, **kw))
    est = _fitted(tiny_text_model, stages="cf-first", cf_batch_size=8, use_kg=False, use_text=False, epochs=3)
    assert calls == [8] and "cf_stage" not in est.fit_info
