import re

import pytest
import torch
import torch.nn.functional as F

from kgrec.nn.fusion import ConcatFusion, CrossAttentionFusion

B, LQ, LK, D = 3, 2, 5, 8


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(B, LQ, D, generator=g)
    context = torch.randn(B, LK, D, generator=g)
    # row 0: all real, row 1: 3 real + 2 padding, row 2: all padding
    mask = torch.tensor([[True] * 5, [True, True, True, False, False], [False] * 5])
    return query, context, mask


def _make(cls, **kw):
    torch.manual_seed(0)
    kw.setdefault("num_heads", 2)
    return cls(D, **kw).eval()


BOTH = [CrossAttentionFusion, ConcatFusion]


@pytest.mark.parametrize("cls", BOTH)
def test_output_size(cls):
    q, c, m = _inputs()
    out = _make(cls)(q, c, m)
    assert out.size() == torch.Size([B, LQ, D])
    out, w = _make(cls)(q, c, m, return_attention=True)
    assert out.size() == torch.Size([B, LQ, D])
    assert w.size() == torch.Size([B, LQ, LK])


@pytest.mark.parametrize("cls", BOTH)
def test_padded_context_tokens_do_not_matter(cls):
    q, c, m = _inputs()
    model = _make(cls)
    ref = model(q, c, m)
    c2 = c.clone()
    c2[~m] = torch.randn(int((~m).sum()), D) * 100
    assert torch.equal(model(q, c2, m), ref)
    c2[~m] = float("nan")  # even nan padding must not leak
    assert torch.equal(model(q, c2, m), ref)
    # real tokens do matter
    c3 = c.clone()
    c3[1, 0] += 1.0
    assert not torch.allclose(model(q, c3, m)[1], ref[1])


@pytest.mark.parametrize("cls", BOTH)
def test_all_padding_rows_are_finite_with_finite_gradients(cls):
    q, c, m = _inputs()
    model = _make(cls)
    q.requires_grad_(True)
    c.requires_grad_(True)
    out = model(q, c, m)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(c.grad).all()
    assert torch.equal(c.grad[2], torch.zeros(LK, D))  # padding gets no gradient


def test_cross_attention_all_padding_row_equals_query_path():
    q, c, m = _inputs()
    for ffn in (False, True):
        model = _make(CrossAttentionFusion, ffn=ffn)
        out = model(q, c, m)
        h = model.norm_attn(q[2])
        if ffn:
            h = model.norm_ffn(h + model.ffn_out(F.gelu(model.ffn_in(h))))
        torch.testing.assert_close(out[2], h)


def test_cross_attention_matches_manual_single_head():
    torch.manual_seed(0)
    model = CrossAttentionFusion(D, num_heads=1, dropout=0.0, ffn=False).eval()
    q, c, m = _inputs()
    b = 1
    qq, kk, vv = model.q_proj(q[b]), model.k_proj(c[b, :3]), model.v_proj(c[b, :3])
    att = torch.softmax(qq @ kk.T / D ** 0.5, dim=-1)
    expected = model.norm_attn(q[b] + model.out_proj(att @ vv))
    out, w = model(q, c, m, return_attention=True)
    torch.testing.assert_close(out[b], expected)
    torch.testing.assert_close(w[b, :, :3], att)


def test_attention_weights_sum_to_one_over_real_tokens():
    q, c, m = _inputs()
    _, w = _make(CrossAttentionFusion, num_heads=4)(q, c, m, return_attention=True)
    torch.testing.assert_close(w[:2].sum(-1), torch.ones(2, LQ))
    assert torch.equal(w[1, :, 3:], torch.zeros(LQ, 2))
    assert torch.equal(w[2], torch.zeros(LQ, LK))
    assert (w[0] > 0).all()


def test_attention_paths_agree_and_mask_none_means_all_real():
    q, c, m = _inputs()
    model = _make(CrossAttentionFusion)
    out, _ = model(q, c, m, return_attention=True)
    torch.testing.assert_close(model(q, c, m), out)
    full = torch.ones(B, LK, dtype=torch.bool)
    assert torch.equal(model(q, c, None), model(q, c, full))


def test_cross_attention_dropout_only_in_training():
    q, c, m = _inputs()
    model = _make(CrossAttentionFusion, dropout=0.5)
    assert torch.equal(model(q, c, m), model(q, c, m))
    model.train()
    torch.manual_seed(1)
    a = model(q, c, m)
    torch.manual_seed(2)
    assert not torch.allclose(a, model(q, c, m))


def test_concat_fusion_matches_formula():
    q, c, m = _inputs()
    model = _make(ConcatFusion)
    out, w = model(q, c, m, return_attention=True)
    pooled = torch.stack([c[0].mean(0), c[1, :3].mean(0), torch.zeros(D)])
    h = torch.cat([q, pooled.unsqueeze(1).expand(-1, LQ, -1)], -1)
    torch.testing.assert_close(out, model.lin2(F.gelu(model.lin1(h))))
    torch.testing.assert_close(w[1, 0], torch.tensor([1 / 3] * 3 + [0.0] * 2))
    assert torch.equal(w[2], torch.zeros(LQ, LK))


def test_bad_heads_names_dim_and_num_heads():
    with pytest.raises(ValueError, match=re.escape("'dim' (10) must be divisible by 'num_heads' (4)")):
        CrossAttentionFusion(10, num_heads=4)
    with pytest.raises(ValueError, match="'num_heads' must be a positive integer"):
        CrossAttentionFusion(8, num_heads=0)


@pytest.mark.parametrize("cls", BOTH)
def test_bad_arguments(cls):
    q, c, m = _inputs()
    with pytest.raises(ValueError, match="'dim' must be a positive integer"):
        cls(0)
    with pytest.raises(ValueError, match="'dropout' must be a number in"):
        cls(D, dropout=1.5)
    model = _make(cls)
    with pytest.raises(ValueError, match=r"'query' must have shape \[B, Lq, 8\]"):
        model(q[..., :4], c, m)
    with pytest.raises(ValueError, match="'context' must have shape"):
        model(q, c[:2], m[:2])
    with pytest.raises(ValueError, match="'context_mask' must be a bool tensor"):
        model(q, c, m.long())


def test_repr():
    assert str(CrossAttentionFusion(8, num_heads=2)) == \
        "CrossAttentionFusion(dim=8, num_heads=2, dropout=0.1, ffn=True)"
    assert str(ConcatFusion(8)) == "ConcatFusion(dim=8, dropout=0.1, hidden=None)"


@pytest.mark.parametrize("cls", BOTH)
def test_both_fusions_take_the_same_constructor_arguments(cls):
    torch.manual_seed(0)
    model = cls(D, num_heads=2, dropout=0.0).eval()
    q, c, m = _inputs()
    assert model(q, c, m).size() == torch.Size([B, LQ, D])
    assert ConcatFusion(D, hidden=16).lin1.out_features == 16
