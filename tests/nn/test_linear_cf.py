import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.nn.cf import MF, LightGCNEmbed
from kgrec.nn.linear import EASE, ItemKNN, MostPop, SequentialRules, time_steps_back
from kgrec.nn.losses import bpr_loss, l2_reg, sampled_softmax_loss
from kgrec.nn.sparse import gcn_adjacency


def _x(seed=0, u=30, i=12, p=0.3):
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((u, i)) < p).astype(np.float32))


def test_ease_matches_closed_form():
    x = _x()
    m = EASE(12, reg=5.0).fit(x)
    g = x.T.toarray() @ x.toarray() + 5.0 * np.eye(12)
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    assert np.allclose(m.weight.numpy(), b, atol=1e-5)
    hist = torch.tensor(x[:3].toarray())
    assert torch.allclose(m(hist), hist @ torch.tensor(b, dtype=torch.float32), atol=1e-5)
    assert "reg=5.0" in str(m)


def test_itemknn_matches_naive():
    x = _x(1)
    m = ItemKNN(12, k=3, shrink=2.0).fit(x)
    d = x.toarray()
    co = d.T @ d
    n = np.sqrt(np.diag(co))
    sim = co / (np.outer(n, n) + 2.0)
    np.fill_diagonal(sim, 0)
    w = np.zeros_like(sim)
    for j in range(12):
        top = np.argsort(-sim[:, j], kind="stable")[:3]
        w[top, j] = sim[top, j]
    hist = torch.tensor(d[:5])
    assert torch.allclose(m(hist), hist @ torch.tensor(w, dtype=torch.float32), atol=1e-5)
    with pytest.raises(ValueError, match="'k' must be a positive integer"):
        ItemKNN(3, k=0)


def test_mostpop():
    x = _x(2)
    s = MostPop(12).fit(x)(torch.zeros(4, 12))
    assert s.shape == (4, 12) and torch.allclose(s[0], torch.tensor(np.asarray(x.sum(0)).ravel()))


def test_mf_and_lightgcn_shapes_and_grads():
    mf = MF(5, 7, dim=8)
    u, i = mf()
    assert u.shape == (5, 8) and i.shape == (7, 8)
    users = torch.tensor([0, 1, 2, 3])
    items = torch.tensor([4, 5, 6, 0]) + 5
    ei = torch.stack([torch.cat([users, items]), torch.cat([items, users])])
    lg = LightGCNEmbed(5, 7, dim=8, num_layers=2)
    a, b = lg(ei)
    a2, b2 = lg(gcn_adjacency(ei, 12))
    assert a.shape == (5, 8) and b.shape == (7, 8)
    assert torch.allclose(a, a2, atol=1e-6) and torch.allclose(b, b2, atol=1e-6)
    # user 4 has no edges: its output is its own embedding / (L + 1)
    assert torch.allclose(a[4], lg.gcn.embedding.weight[4] / 3, atol=1e-6)
    loss = (a.sum() + b.sum())
    loss.backward()
    assert lg.gcn.embedding.weight.grad is not None
    assert "num_layers=2" in str(lg)


def test_losses():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0])
    assert torch.isclose(bpr_loss(pos, neg), -(torch.log(torch.sigmoid(torch.tensor(2.0))) + np.log(0.5)) / 2)
    assert bpr_loss(pos, neg.view(2, 1)).dim() == 0
    # uniform logits over 1 positive + 3 negatives -> log 4
    assert torch.isclose(sampled_softmax_loss(torch.zeros(2), torch.zeros(2, 3)), torch.log(torch.tensor(4.0)))
    assert torch.isclose(l2_reg(torch.ones(2, 3)), torch.tensor(6 / 4))


NAN = float("nan")
# user 0: items 0 (t=1), 1 and 2 (both t=2), 3 (t=5); user 1: item 0 (time unknown), item 3 (t=1)
SEQ = (torch.tensor([0, 4, 6]), torch.tensor([0, 1, 2, 3, 0, 3]),
       torch.tensor([1.0, 2.0, 2.0, 5.0, NAN, 1.0], dtype=torch.float64))


def test_time_steps_back_counts_distinct_later_times():
    steps = time_steps_back(SEQ[0], SEQ[2])
    assert torch.equal(steps[[0, 1, 2, 3, 5]], torch.tensor([2.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    assert torch.isnan(steps[4])  # unknown time: no step


def test_sequential_rules_match_hand_computed():
    w = SequentialRules(4, window=1.0).fit(*SEQ).weight
    e = float(np.exp(-1.0))  # item 3 comes 2 distinct times after item 0: weight e^-(2-1)/1
    expected = torch.tensor([[0, 1, 1, e], [0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 0]], dtype=torch.float32)
    expected[:3] /= expected[:3].sum(1, keepdim=True)  # rows normalised; 1 <-> 2 share a time: both ways
    assert torch.allclose(w, expected)
    # recent items vote: user 0's rows r = exp(-steps) score item 3 from items 0, 1, 2
    r = torch.tensor([[np.exp(-2.0), np.exp(-1.0), np.exp(-1.0), 0.0]], dtype=torch.float32)
    assert torch.allclose(SequentialRules(4, window=1.0).fit(*SEQ)(r), r @ expected)


def test_sequential_rules_max_offset_limits_pairs():
    # 0 -> 1 -> 2 -> 3 at distinct times: with max_offset 1 only neighbours make rules
    seq = (torch.tensor([0, 4]), torch.tensor([0, 1, 2, 3]), torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    w = SequentialRules(4, window=5.0, max_offset=1).fit(*seq).weight
    assert torch.equal(w, torch.tensor([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=torch.float32))


@pytest.mark.parametrize("kw", [{"window": 0}, {"window": -1.0}, {"max_offset": 0}, {"window": float("nan")}])
def test_sequential_rules_bad_arguments_are_named(kw):
    with pytest.raises(ValueError, match=f"'{next(iter(kw))}'"):
        SequentialRules(4, **kw)


@pytest.mark.parametrize("per_row", [0, 3, 40])
def test_rows_times_equals_the_dense_product(per_row):
    """Sparse rows take the sparse path, dense ones the dense path; both give ``rows @ weight``."""
    from kgrec.nn import linear

    g = torch.Generator().manual_seed(0)
    rows = torch.zeros(16, 50)
    if per_row:
        rows.scatter_(1, torch.randint(0, 50, (16, per_row), generator=g), torch.rand(16, per_row, generator=g))
    weight = torch.randn(50, 30, generator=g)
    out = linear.rows_times(rows, weight)
    assert out.layout == torch.strided and out.shape == (16, 30)
    torch.testing.assert_close(out, rows @ weight)
    calls = []
    real = torch.sparse.mm
    try:
        torch.sparse.mm = lambda a, b: calls.append(a.layout) or real(a, b)
        linear.rows_times(rows, weight)
    finally:
        torch.sparse.mm = real
    sparse = int(torch.count_nonzero(rows)) <= linear.SPARSE_ROWS_MAX_DENSITY * rows.numel()
    assert calls == ([torch.sparse_coo] if sparse else [])
    assert sparse == (per_row in (0, 3))
