"""SparsePattern: fixed positions, per-call values, products and gradients against dense answers."""

import torch

from kgrec.nn.sparse import SparsePattern, spmm


def test_pattern_sums_repeated_positions_and_matches_the_dense_matrix():
    row, col = torch.tensor([0, 0, 1, 0]), torch.tensor([1, 1, 0, 2])
    pat = SparsePattern(row, col, (2, 3))
    assert pat.nnz == 3
    op = pat.operator(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    dense = torch.tensor([[0.0, 3.0, 4.0], [3.0, 0.0, 0.0]])
    assert torch.equal(op.a.to_dense(), dense)
    assert torch.equal(op.a_t.to_dense(), dense.t())
    # new values, same pattern: nothing of the first call remains
    assert torch.equal(pat.operator(torch.tensor([0.0, 1.0, 0.0, 0.0])).a.to_dense(),
                       torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))


def test_pattern_product_and_gradient_match_gather_scatter():
    g = torch.Generator().manual_seed(0)
    n, m, M, d = 50, 40, 400, 6
    row, col = torch.randint(0, n, (M,), generator=g), torch.randint(0, m, (M,), generator=g)
    val = torch.rand(M, generator=g)
    x = torch.randn(m, d, generator=g, requires_grad=True)
    y = spmm(SparsePattern(row, col, (n, m)).operator(val), x)
    ref = torch.zeros(n, d).index_add(0, row, x[col] * val[:, None])
    assert torch.allclose(y, ref, atol=1e-5)
    grad = torch.randn(n, d, generator=g)
    assert torch.allclose(torch.autograd.grad(y, x, grad)[0], torch.autograd.grad(ref, x, grad)[0], atol=1e-5)
