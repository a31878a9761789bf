import pytest
import torch

from kgrec.nn.hybrid import HybridModel


def _inputs(U=3, I=4, E=6, S=2, H=8, L=3):
    u = torch.tensor([0, 1, 2, 2])
    i = torch.tensor([0, 1, 2, 3])
    cf_ei = torch.stack([torch.cat([u, i + U]), torch.cat([i + U, u])])
    kg_ei = torch.tensor([[0, 4, 1, 4, 2, 5, 0 + E, 1 + E], [4, 0, 4, 1, 5, 2, 0, 1]])
    kg_et = torch.tensor([0, 1, 0, 1, 0, 1, 2, 2])
    return dict(cf_edge_index=cf_ei, edge_index=kg_ei, edge_type=kg_et,
                item_warm=torch.tensor([True, True, True, False]),
                item_text=torch.randn(I, S, H), item_text_mask=torch.tensor([[1, 1], [1, 0], [1, 0], [1, 1]]).bool(),
                user_text=torch.randn(U, H), hist_items=torch.tensor([[0, -1, -1], [1, -1, -1], [2, 3, -1]]),
                hist_mask=torch.tensor([[1, 0, 0], [1, 0, 0], [1, 1, 0]]).bool(), hist_age=torch.zeros(U, L))


@pytest.mark.parametrize("kw", [{}, {"use_kg": False}, {"use_text": False}, {"use_cf": False}, {"fusion": "concat"},
                                {"kg_conv": "rgcn"}])
def test_shapes_grads_and_repr(kw):
    torch.manual_seed(0)
    m = HybridModel(3, 4, 6, 4, text_dim=8, dim=8, num_heads=2, **kw)
    x = _inputs()
    users, items = m(x["cf_edge_index"], **{k: v for k, v in x.items() if k != "cf_edge_index"})
    assert users.shape == (3, 24) and items.shape == (4, 24)
    scores = users @ items.t()
    loss = scores[0, 0] - scores[0, 3]
    assert loss.dim() == 0
    loss.backward()
    assert m.branch_gate.grad is not None
    assert "branches=" in str(m)
    ego = m.ego(torch.tensor([0]), torch.tensor([1]))
    assert len(ego) == 2 and ego[0].shape[0] == 1


def test_cold_item_has_no_id_signal_in_cf_branch():
    torch.manual_seed(0)
    m = HybridModel(3, 4, 6, 4, text_dim=8, dim=8, num_heads=2, use_kg=False, use_text=False)
    x = _inputs()
    _, items = m(x["cf_edge_index"], **{k: v for k, v in x.items() if k != "cf_edge_index"})
    assert torch.equal(items[3], torch.zeros(24))  # item 3 is cold: CF vector masked


def test_prior_branch_adds_its_dot_product():
    torch.manual_seed(0)
    m = HybridModel(3, 4, 6, 4, text_dim=0, dim=8, use_text=False, use_kg=False)
    x = _inputs()
    rest = {k: v for k, v in x.items() if k not in ("cf_edge_index",)}
    u0, i0 = m(x["cf_edge_index"], **rest)
    pu, pi = torch.eye(3, 5), torch.arange(20.0).view(4, 5)
    m.prior_gate.fill_(0.5)
    u1, i1 = m(x["cf_edge_index"], **rest, prior_user=pu, prior_item=pi)
    assert torch.allclose(u1 @ i1.t(), u0 @ i0.t() + 0.5 * pu @ pi.t(), atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="'fusion'"):
        HybridModel(1, 1, 1, 2, fusion="sum")
    with pytest.raises(ValueError, match="at least one"):
        HybridModel(1, 1, 1, 2, use_kg=False, use_text=False, use_cf=False)
