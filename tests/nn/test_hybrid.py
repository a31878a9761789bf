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
                                {"fusion": "sequence"}, {"fusion": "sequence", "use_kg": False}, {"kg_conv": "rgcn"}])
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


def _run(m, x):
    return m(x["cf_edge_index"], **{k: v for k, v in x.items() if k != "cf_edge_index"})


def test_cold_gate_scales_only_cold_items_item_side():
    torch.manual_seed(0)
    m = HybridModel(3, 4, 6, 4, text_dim=8, dim=8, num_heads=2).eval()
    x = _inputs()
    u0, i0 = _run(m, x)
    with torch.no_grad():
        m.cold_gate.copy_(torch.tensor([1.0, 0.0, 2.0]))
    u1, i1 = _run(m, x)
    assert torch.equal(u0, u1) and torch.equal(i0[:3], i1[:3])  # users and warm items unchanged
    d = 8  # item 3 is cold: KG part zeroed, text part doubled
    assert torch.equal(i1[3, d:2 * d], torch.zeros(d)) and torch.allclose(i1[3, 2 * d:], 2 * i0[3, 2 * d:])


def test_item_dropout_trains_cold_gate_only_in_training():
    x = _inputs()
    x["item_warm"] = torch.ones(4, dtype=torch.bool)  # no true cold item
    torch.manual_seed(0)
    m = HybridModel(3, 4, 6, 4, text_dim=8, dim=8, num_heads=2, item_dropout=0.5)
    u, i = _run(m.train(), x)
    (u @ i.t()).sum().backward()
    assert m.cold_gate.grad is not None and m.cold_gate.grad.abs().sum() > 0  # pseudo-cold items train it
    m.eval()
    a, b = _run(m, x), _run(m, x)
    assert torch.equal(a[1], b[1])  # no dropout at inference
    m0 = HybridModel(3, 4, 6, 4, text_dim=8, dim=8, num_heads=2)
    u, i = _run(m0.train(), x)
    (u @ i.t()).sum().backward()
    assert m0.cold_gate.grad is None or m0.cold_gate.grad.abs().sum() == 0  # no cold item, no dropout
    with pytest.raises(ValueError, match="'item_dropout'"):
        HybridModel(1, 1, 1, 2, item_dropout=1.0)


def _sequence_model():
    torch.manual_seed(0)
    m = HybridModel(3, 6, 8, 4, text_dim=8, dim=8, num_heads=2, fusion="sequence", dropout=0.0).eval()
    ctx, txt = torch.randn(6, 8), torch.randn(6, 8)
    return m, ctx, txt, torch.randn(2, 8)


def test_sequence_fusion_is_blind_to_padding_and_to_the_order_of_equal_time_positions():
    """Positions carry order only through their time encodings: permuting positions of equal age leaves
    the user vector unchanged, padded positions (any item id) never reach it, and an age or an item
    change does.
    """
    m, ctx, txt, user_text = _sequence_model()
    items = torch.tensor([[0, 1, 2, 5], [3, 4, -1, -1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()
    age = torch.tensor([[0.0, 0.0, 0.0, 30.0], [0.0, 400.0, 0.0, 0.0]])
    with torch.no_grad():
        out, attn = m.user_text_vector(ctx, user_text, items, mask, age, True, item_txt=txt)
        assert out.shape == (2, 8) and attn.shape == (2, 4)
        assert torch.allclose(attn.sum(1), torch.ones(2)) and torch.equal(attn[1, 2:], torch.zeros(2))
        perm = m.user_text_vector(ctx, user_text, items[:, [2, 0, 1, 3]], mask, age, item_txt=txt)
        assert torch.allclose(perm[0], out[0], atol=1e-5)
        padded = m.user_text_vector(ctx, user_text, torch.tensor([[0, 1, 2, 5], [3, 4, 5, 0]]), mask, age,
                                    item_txt=txt)
        assert torch.allclose(padded[1], out[1], atol=1e-6)
        older = m.user_text_vector(ctx, user_text, items, mask, age + torch.tensor([[0.0, 0, 0, 300], [0, 0, 0, 0]]),
                                   item_txt=txt)
        assert not torch.allclose(older[0], out[0], atol=1e-4) and torch.allclose(older[1], out[1])
        other_text = txt.clone()
        other_text[5] += 1.0  # item 5's text view moves user 0 (it is in their history) and not user 1
        moved = m.user_text_vector(ctx, user_text, items, mask, age, item_txt=other_text)
        assert not torch.allclose(moved[0], out[0], atol=1e-4) and torch.allclose(moved[1], out[1])


def test_sequence_fusion_is_the_sum_of_both_directions_pooled_by_the_behaviour_text():
    m, ctx, txt, user_text = _sequence_model()
    items, mask = torch.tensor([[0, 1, 2], [3, 4, 5]]), torch.ones(2, 3, dtype=torch.bool)
    age = torch.tensor([[0.0, 10.0, 20.0], [5.0, 5.0, 5.0]])
    with torch.no_grad():
        r = m.recency(torch.exp(-age / m.decay_days).unsqueeze(-1))
        x, g = txt[items] + r, ctx[items] + r
        fused = m.user_fusion(x, g, mask) + m.user_fusion_rev(g, x, mask)
        expected = m.user_pool(m.user_text_proj(user_text).unsqueeze(1), fused, mask).squeeze(1)
        assert torch.allclose(m.user_text_vector(ctx, user_text, items, mask, age, item_txt=txt), expected)
    with pytest.raises(ValueError, match="item_txt"):
        m.user_text_vector(ctx, user_text, items, mask, age)


@pytest.mark.parametrize("kw,on", [({}, [1, 1, 1]), ({"use_kg": False}, [1, 0, 1]), ({"use_text": False}, [1, 1, 0])])
def test_softmax_gates_learn_shares_with_a_fixed_total(kw, on):
    """Default gates: softmax shares of the active branches x branch_init x their number, so no gate
    can grow the scores while the L2 penalty shrinks the embeddings; "free" keeps raw scalars.
    """
    m = HybridModel(3, 4, 6, 4, text_dim=8, dim=8, num_heads=2, branch_init=2.0, **kw)
    n = sum(on)
    assert m.branch_weights().tolist() == pytest.approx([2.0 * x for x in on])  # equal shares at the start
    with torch.no_grad():
        m.branch_gate.copy_(torch.tensor([3.0, 1.0, 0.0]))
    w = m.branch_weights().detach()
    logits = torch.tensor([3.0, 1.0, 0.0])[torch.tensor(on).bool()]
    assert w[torch.tensor(on).bool()].tolist() == pytest.approx((torch.softmax(logits, 0) * 2.0 * n).tolist())
    assert float(w.sum()) == pytest.approx(2.0 * n) and all(w[j] == 0 for j in range(3) if not on[j])
    x = _inputs()
    users, items = m(x["cf_edge_index"], **{k: v for k, v in x.items() if k != "cf_edge_index"})
    (users @ items.t()).sum().backward()
    assert m.branch_gate.grad is not None and float(m.branch_gate.grad.abs().sum()) > 0
    free = HybridModel(3, 4, 6, 4, text_dim=8, dim=8, num_heads=2, branch_init=2.0, gates="free", **kw)
    with torch.no_grad():
        free.branch_gate.copy_(torch.tensor([3.0, 1.0, 0.5]))
    assert free.branch_weights().tolist() == pytest.approx([3.0 * on[0], 1.0 * on[1], 0.5 * on[2]])


def test_unknown_gates_or_fusion_are_refused_when_configured():
    import kgrec
    from kgrec.errors import KgrecError

    with pytest.raises(KgrecError, match="'gates' must be one of 'softmax', 'free'"):
        kgrec.Recommender("hybrid", gates="tanh")
    with pytest.raises(KgrecError, match="'fusion' must be one of"):
        kgrec.Recommender("hybrid", fusion="sum")
    with pytest.raises(ValueError, match="'gates'"):
        HybridModel(3, 4, 6, 4, gates="tanh")


@pytest.mark.parametrize("kw", [{}, {"use_kg": False}, {"use_text": False}, {"use_cf": False},
                                {"fusion": "sequence"}, {"fusion": "concat"}])
def test_some_users_give_those_rows_of_the_full_output_and_gradients(kw):
    """``users=`` (repeated and out of order) returns exactly the full output's rows, priors and
    attention included, and the same gradients for a loss on those rows.
    """
    torch.manual_seed(0)
    m = HybridModel(3, 4, 6, 4, text_dim=8, dim=8, num_heads=2, **kw).eval()
    m.prior_gate.fill_(0.5)
    x = _inputs()
    x.update(prior_user=torch.randn(3, 5), prior_item=torch.randn(4, 5))
    cf = x.pop("cf_edge_index")
    pick = torch.tensor([2, 0, 2])
    full_u, full_i, full_a = m(cf, **x, return_attention=True)
    part_u, part_i, part_a = m(cf, **x, return_attention=True, users=pick)
    torch.testing.assert_close(part_u, full_u[pick])
    torch.testing.assert_close(part_i, full_i)
    torch.testing.assert_close(part_a, full_a[pick])
    w = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    g_full = torch.autograd.grad((full_u[pick] @ full_i.t() * w).sum(), list(m.parameters()), allow_unused=True)
    g_part = torch.autograd.grad((part_u @ part_i.t() * w).sum(), list(m.parameters()), allow_unused=True)
    for a, b in zip(g_full, g_part):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(b, a)
