"""XSimGCL's contrastive regulariser (:mod:`kgrec.models.contrastive`): the InfoNCE loss, the noisy
propagation, the LightGCN peer's loss, the hybrid's CF stage training the very same loss, and the
settings refused with the argument named.
"""

import math

import pytest
import torch

import kgrec
from kgrec.errors import KgrecError
from kgrec.models.baselines import LightGCNConfig
from kgrec.models.hybrid import HybridConfig
from kgrec.nn.cf import LightGCNEmbed
from kgrec.nn.losses import bpr_loss, info_nce, l2_reg
from kgrec.nn.sparse import gcn_adjacency, spmm
from tests.conftest import two_cluster_kg


def test_info_nce_known_answer():
    # two orthogonal unit rows, each its own positive: logits [[1/t, 0], [0, 1/t]]
    a = torch.eye(2) * 3.0  # the scale is normalised away
    t = 0.5
    assert info_nce(a, torch.eye(2), t).item() == pytest.approx(math.log(1 + math.exp(-1 / t)), rel=1e-6)
    # a view pointing at the other row: the positive logit is 0, the negative 1/t
    swapped = torch.eye(2)[[1, 0]]
    assert info_nce(torch.eye(2), swapped, t).item() == pytest.approx(math.log(1 + math.exp(1 / t)), rel=1e-6)


def _graph(U=3, I=4):
    u = torch.tensor([0, 0, 1, 2, 2])
    i = torch.tensor([0, 1, 1, 2, 3]) + U
    edge_index = torch.stack([torch.cat([u, i]), torch.cat([i, u])])
    return gcn_adjacency(edge_index, U + I)


def test_perturbed_propagation_without_noise_is_lightgcn_and_noise_has_its_norm():
    torch.manual_seed(0)
    cf = LightGCNEmbed(3, 4, dim=5, num_layers=2)
    adj = _graph()
    users, items = cf(adj)
    pu, pi, vu, vi = cf.forward_perturbed(adj, 0.0, 1)
    assert torch.equal(pu, users) and torch.equal(pi, items)
    clean1 = torch.cat([vu, vi])
    assert torch.allclose(clean1, spmm(adj, cf.gcn.embedding.weight))  # the view: layer 1's output
    # with noise eps, layer 1's output differs from the clean one by a vector of norm eps per row,
    # in the orthant of the clean output
    torch.manual_seed(1)
    _, _, nu, ni = cf.forward_perturbed(adj, 0.3, 1)
    delta = torch.cat([nu, ni]) - clean1
    nonzero = clean1.abs().sum(-1) > 0
    assert torch.allclose(delta[nonzero].norm(dim=-1), torch.full((int(nonzero.sum()),), 0.3), atol=1e-6)
    assert (delta * torch.sign(clean1) >= 0).all()
    with pytest.raises(ValueError, match="view_layer"):
        cf.forward_perturbed(adj, 0.1, 3)


def _lightgcn(**kw):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=1)
    p = dict(dim=8, num_layers=2, epochs=1, batch_size=16, seed=0, reg=1e-2)
    p.update(kw)
    return kgrec.Recommender("lightgcn", **p).fit(kg, sp).estimator


def _batch():
    return torch.tensor([0, 1, 7, 1]), torch.tensor([0, 2, 5, 2]), torch.tensor([6, 7, 1, 3])


def test_lightgcn_loss_is_bpr_on_the_noisy_vectors_plus_infonce():
    est = _lightgcn(cl_weight=0.4, cl_noise=0.1, cl_temperature=0.3)
    users, pos, neg = _batch()
    torch.manual_seed(5)
    loss = est.batch_loss(users, pos, neg)
    torch.manual_seed(5)
    pu, pi, vu, vi = est.module.forward_perturbed(est._adj(), 0.1, 1)
    s_pos, s_neg = (pu[users] * pi[pos]).sum(-1), (pu[users] * pi[neg]).sum(-1)
    uu, ii = torch.tensor([0, 1, 7]), torch.tensor([0, 2, 5])
    expected = (bpr_loss(s_pos, s_neg) + 1e-2 * l2_reg(*est.batch_ego(users, pos, neg))
                + 0.4 * (info_nce(pu[uu], vu[uu], 0.3) + info_nce(pi[ii], vi[ii], 0.3)))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # off: plain LightGCN's loss on the clean propagation
    plain = _lightgcn()
    u, p, n = plain.batch_vectors(users, pos, neg)
    assert plain.batch_loss(users, pos, neg).item() == pytest.approx(
        (bpr_loss((u * p).sum(-1), (u * n).sum(-1)) + 1e-2 * l2_reg(*plain.batch_ego(users, pos, neg))).item())
    # the regulariser changes training: the fitted embeddings differ
    assert not torch.equal(est.module.gcn.embedding.weight, plain.module.gcn.embedding.weight)


def test_hybrid_cf_stage_trains_the_lightgcn_peers_loss(tiny_text_model):
    """The hybrid's CF branch alone with ``cf_cl_weight`` and the LightGCN peer with the same weights
    give the same loss: the peer row is the hybrid's CF stage.
    """
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=1)
    cl = dict(cf_cl_weight=0.4, cf_cl_noise=0.1, cf_cl_temperature=0.3)
    hyb = kgrec.Recommender("hybrid", use_kg=False, use_text=False, item_dropout=0.0, dim=8, cf_layers=2,
                            epochs=1, batch_size=16, seed=0, reg=1e-2, ease_prior=False, seq_prior=False,
                            **cl).fit(kg, sp).estimator
    peer = _lightgcn(cl_weight=0.4, cl_noise=0.1, cl_temperature=0.3)
    with torch.no_grad():
        peer.module.gcn.embedding.weight.copy_(hyb.module.cf.gcn.embedding.weight)
    hyb.unfreeze()
    peer.unfreeze()
    # items with training interactions only: the hybrid scores a never-trained item 0 (item 2 here)
    assert bool(hyb.context["item_warm"][[0, 3, 5, 6, 7, 1, 4]].all()) and not bool(hyb.context["item_warm"][2])
    users, pos, neg = torch.tensor([0, 1, 7, 1]), torch.tensor([0, 3, 5, 3]), torch.tensor([6, 7, 1, 4])
    torch.manual_seed(3)
    a = hyb.batch_loss(users, pos, neg)
    torch.manual_seed(3)
    b = peer.batch_loss(users, pos, neg)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


@pytest.mark.parametrize("kw, name", [
    ({"cl_temperature": 0.0}, "cl_temperature"),
    ({"cl_weight": -1.0}, "cl_weight"),
    ({"cl_noise": float("nan")}, "cl_noise"),
    ({"cl_layer": 4}, "cl_layer"),
])
def test_lightgcn_refuses_bad_contrastive_settings(kw, name):
    with pytest.raises(KgrecError, match=name):
        LightGCNConfig(num_layers=3, **kw)


def test_contrastive_refused_where_it_cannot_apply():
    with pytest.raises(KgrecError, match="sampled"):
        LightGCNConfig(cl_weight=0.1, sampled=True, fanouts=[5, 5, 5])
    with pytest.raises(KgrecError, match="cf-first"):
        HybridConfig(cf_cl_weight=0.1)  # joint, with KG and text: the CF branch never trains alone
    with pytest.raises(KgrecError, match="cf_cl_layer"):
        HybridConfig(cf_cl_weight=0.1, stages="cf-first", cf_layers=2, cf_cl_layer=3)
    HybridConfig(cf_cl_weight=0.1, stages="cf-first")  # accepted


@pytest.mark.parametrize("branch_loss", [0.0, 0.5])
def test_hybrid_cf_alone_loss_equals_the_fused_loss(branch_loss):
    """The CF branch alone is scored from its LightGCN vectors directly: the same loss, gradient and
    score as through the fused [U, 3d] vectors (whose KG and text parts are zero).
    """
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=1)
    est = kgrec.Recommender("hybrid", use_kg=False, use_text=False, item_dropout=0.0, dim=8, cf_layers=2,
                            epochs=1, batch_size=16, seed=0, reg=1e-2, ease_prior=False, seq_prior=False,
                            gates="free", branch_loss=branch_loss).fit(kg, sp).estimator
    with torch.no_grad():
        est.module.branch_gate.fill_(0.7)  # a CF gate other than 1
    assert est.module.branch_weights()[0].item() == pytest.approx(0.7)
    est.unfreeze()
    users, pos, neg = _batch()
    direct = est.batch_loss(users, pos, neg)
    w = est.module.cf.gcn.embedding.weight
    g_direct = torch.autograd.grad(direct, w)[0]
    u, p, n = est.batch_vectors(users, pos, neg)  # the fused path
    fused = est.ranking_loss(u, p, n) + est.penalty(users, pos, neg)
    g_fused = torch.autograd.grad(fused, w)[0]
    assert direct.item() == pytest.approx(fused.item(), rel=1e-6)
    assert torch.allclose(g_direct, g_fused, atol=1e-7)
