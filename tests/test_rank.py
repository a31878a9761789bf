import pytest
import torch

from kgrec.evaluation.metrics import EvaluationError
from kgrec.evaluation.rank import csr_rows, mask_seen, restrict, seen_csr, topk

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
NEG = float("-inf")


def test_seen_csr_merges_duplicates_and_sorts():
    user = torch.tensor([2, 0, 2, 0, 2, 0])
    item = torch.tensor([5, 3, 1, 3, 4, 0])
    indptr, indices = seen_csr(user, item, num_users=4, num_items=6)
    assert indptr.tolist() == [0, 2, 2, 5, 5]  # user 1 and 3 have no items
    assert indices.tolist() == [0, 3, 1, 4, 5]
    empty = seen_csr(torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), 3)
    assert empty[0].tolist() == [0, 0, 0, 0] and empty[1].numel() == 0


def test_seen_csr_rejects_out_of_range():
    with pytest.raises(EvaluationError, match=r"'user' ids must lie in \[0, 2\) \(got range \[0, 2\]\)"):
        seen_csr(torch.tensor([0, 2]), torch.tensor([0, 1]), 2)
    with pytest.raises(EvaluationError, match=r"'item' ids must lie in \[0, 3\)"):
        seen_csr(torch.tensor([0, 1]), torch.tensor([0, 3]), 2, num_items=3)


def test_csr_rows():
    indptr, indices = seen_csr(torch.tensor([0, 0, 2, 3, 3, 3]), torch.tensor([1, 4, 2, 0, 5, 6]), 4)
    row_pos, cols = csr_rows(indptr, indices, torch.tensor([3, 1, 0, 3]))
    assert list(zip(row_pos.tolist(), cols.tolist())) == [(0, 0), (0, 5), (0, 6), (2, 1), (2, 4),
                                                         (3, 0), (3, 5), (3, 6)]


@pytest.mark.parametrize("device", DEVICES)
def test_mask_seen_matches_loop_and_copies(device):
    g = torch.Generator().manual_seed(0)
    n_users, n_items = 12, 30
    user = torch.randint(0, n_users, (80,), generator=g)
    item = torch.randint(0, n_items, (80,), generator=g)
    indptr, indices = seen_csr(user, item, n_users, n_items)
    users = torch.tensor([5, 0, 11, 5, 3])
    scores = torch.randn(5, n_items, generator=g).to(device)
    before = scores.clone()
    out = mask_seen(scores, users, indptr, indices)
    assert out.size() == (5, n_items) and out.device == scores.device
    assert torch.equal(scores, before)  # the input is left alone by default
    expected = before.cpu().clone()
    seen = set(zip(user.tolist(), item.tolist()))
    for r, u in enumerate(users.tolist()):
        for i in range(n_items):
            if (u, i) in seen:
                expected[r, i] = NEG
    assert torch.equal(out.cpu(), expected)
    mask_seen(scores, users, indptr, indices, inplace=True)
    assert torch.equal(scores.cpu(), expected)
    with pytest.raises(EvaluationError, match="'scores' must have shape"):
        mask_seen(scores[:3], users, indptr, indices)


@pytest.mark.parametrize("device", DEVICES)
def test_restrict_ids_and_mask(device):
    scores = torch.arange(12, dtype=torch.float).view(2, 6).to(device)
    out = restrict(scores, torch.tensor([4, 1]))
    assert out.size() == (2, 6)
    assert out.cpu().tolist() == [[NEG, 1, NEG, NEG, 4, NEG], [NEG, 7, NEG, NEG, 10, NEG]]
    mask = torch.tensor([False, True, False, False, True, False])
    assert torch.equal(restrict(scores, mask), out)
    assert scores[0, 0].item() == 0  # not in place
    with pytest.raises(EvaluationError, match=r"'candidates' must be item ids in \[0, 6\)"):
        restrict(scores, torch.tensor([6]))
    with pytest.raises(EvaluationError, match="boolean 'candidates' mask must have 6 entries"):
        restrict(scores, mask[:5])


def naive_topk(row, k):
    order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
    return order


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [1, 4, 9, 15])
def test_topk_matches_naive_with_ties(device, k):
    g = torch.Generator().manual_seed(k)
    # few distinct values: ties inside the top k and across the cut
    scores = torch.randint(0, 4, (25, 15), generator=g).float()
    scores[3] = 0.0  # a constant row
    scores[5, :7] = NEG
    values, index = topk(scores.to(device), k)
    assert values.size() == (25, k) and index.size() == (25, k)
    assert index.dtype == torch.long
    for b in range(25):
        ref = naive_topk(scores[b].tolist(), k)
        assert index[b].tolist() == ref, b
        assert values[b].cpu().tolist() == [scores[b, i].item() for i in ref]
    assert index[3].tolist() == list(range(k))


@pytest.mark.parametrize("device", DEVICES)
def test_topk_continuous_matches_sort(device):
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(64, 200, generator=g).to(device)
    values, index = topk(scores, 20)
    ref_v, ref_i = torch.sort(scores, dim=1, descending=True)
    assert torch.equal(index, ref_i[:, :20]) and torch.equal(values, ref_v[:, :20])


def test_topk_errors():
    scores = torch.randn(3, 5)
    with pytest.raises(EvaluationError, match=r"'k' must be a positive integer \(got 0\)"):
        topk(scores, 0)
    with pytest.raises(EvaluationError, match=r"'k' must be at most the number of items 5 \(got 6\)"):
        topk(scores, 6)
    scores[1, 2] = float("nan")
    with pytest.raises(EvaluationError, match=r"'scores' contains NaN \(rows \[1\]\)"):
        topk(scores, 2)
    v, i = topk(torch.empty(0, 5), 2)
    assert v.size() == (0, 2) and i.size() == (0, 2)
