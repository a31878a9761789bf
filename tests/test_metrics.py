import math

import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.evaluation.metrics import (
    EvaluationError,
    auc_from_rank_sum,
    average_popularity,
    average_precision,
    check_k,
    coverage,
    gauc,
    gini_index,
    hit,
    hit_matrix,
    mrr,
    ndcg,
    precision,
    recall,
    shannon_entropy,
    tail_items,
    tail_percentage,
)
from kgrec.evaluation.rank import topk

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def naive(hits_row, n_rel, k):
    """Per-user reference written from the PROTOCOL.md definitions."""
    top = list(hits_row[:k]) + [False] * max(0, k - len(hits_row))
    n_hit = sum(top)
    first = next((r for r, h in enumerate(top) if h), None)
    dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(top) if h)
    idcg = sum(1 / math.log2(r + 2) for r in range(min(n_rel, k)))
    return {
        "recall": n_hit / n_rel if n_rel else 0.0,
        "precision": n_hit / k,
        "hit": float(n_hit > 0),
        "mrr": 0.0 if first is None else 1 / (first + 1),
        "ndcg": dcg / idcg if idcg else 0.0,
    }


def all_metrics(hits, n_rel, k):
    return {"recall": recall(hits, n_rel, k), "precision": precision(hits, k), "hit": hit(hits, k),
            "mrr": mrr(hits, k), "ndcg": ndcg(hits, n_rel, k)}


@pytest.mark.parametrize("device", DEVICES)
def test_written_out_case(device):
    # 3 relevant items, hits at ranks 1 and 3, k = 5
    hits = torch.tensor([[True, False, True, False, False]], device=device)
    n_rel = torch.tensor([3], device=device)
    out = all_metrics(hits, n_rel, 5)
    assert out["ndcg"].size() == (1,)
    expected_ndcg = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert out["ndcg"].item() == pytest.approx(expected_ndcg, rel=1e-6)
    assert out["recall"].item() == pytest.approx(2 / 3)
    assert out["precision"].item() == pytest.approx(2 / 5)
    assert out["hit"].item() == 1.0
    assert out["mrr"].item() == 1.0


def test_written_out_cases_batch():
    hits = torch.tensor([
        [False, True, False, False],   # 1 relevant, found at rank 2
        [False, False, False, True],   # 2 relevant, found at rank 4
        [True, True, True, True],      # 10 relevant: ideal DCG over k = 4 ranks only
        [False, False, False, False],  # no hit
    ])
    n_rel = torch.tensor([1, 2, 10, 5])
    out = all_metrics(hits, n_rel, 4)
    assert torch.allclose(out["mrr"], torch.tensor([1 / 2, 1 / 4, 1.0, 0.0]))
    assert torch.allclose(out["ndcg"], torch.tensor([(1 / math.log2(3)) / 1,
                                                     (1 / math.log2(5)) / (1 + 1 / math.log2(3)),
                                                     1.0, 0.0]))
    assert torch.allclose(out["recall"], torch.tensor([1.0, 1 / 2, 4 / 10, 0.0]))
    assert torch.allclose(out["precision"], torch.tensor([1 / 4, 1 / 4, 1.0, 0.0]))
    assert torch.allclose(out["hit"], torch.tensor([1.0, 1.0, 1.0, 0.0]))
    # a smaller k only looks at the first ranks
    out2 = all_metrics(hits, n_rel, 2)
    assert torch.allclose(out2["hit"], torch.tensor([1.0, 0.0, 1.0, 0.0]))
    assert torch.allclose(out2["ndcg"][2], torch.tensor(1.0))
    assert torch.allclose(out2["recall"], torch.tensor([1.0, 0.0, 2 / 10, 0.0]))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3, 10, 25])
def test_against_naive_loop(seed, k):
    g = torch.Generator().manual_seed(seed)
    B, K = 40, 20
    hits = torch.rand(B, K, generator=g) < 0.3
    # n_relevant >= number of hits in the list, sometimes far larger
    n_rel = hits.sum(1) + torch.randint(0, 6, (B,), generator=g)
    n_rel[n_rel == 0] = 1
    out = all_metrics(hits, n_rel, k)
    for name, v in out.items():
        assert v.size() == (B,)
        assert v.dtype == torch.get_default_dtype()
        for b in range(B):
            ref = naive(hits[b].tolist(), int(n_rel[b]), k)[name]
            assert v[b].item() == pytest.approx(ref, abs=1e-6), (name, b)


def test_k_defaults_to_width_and_beyond_width_counts_misses():
    hits = torch.tensor([[True, False, True]])
    n_rel = torch.tensor([4])
    assert precision(hits).item() == pytest.approx(2 / 3)
    # k = 6 on a 3-long list: ranks 4..6 are misses
    assert precision(hits, 6).item() == pytest.approx(2 / 6)
    idcg6 = sum(1 / math.log2(r + 2) for r in range(4))
    assert ndcg(hits, n_rel, 6).item() == pytest.approx((1 + 1 / math.log2(4)) / idcg6, rel=1e-6)


def test_no_relevant_scores_zero():
    hits = torch.zeros(2, 3, dtype=torch.bool)
    n_rel = torch.tensor([0, 0])
    for v in all_metrics(hits, n_rel, 3).values():
        assert torch.equal(v, torch.zeros(2))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [1, 5, 10])
def test_ndcg_matches_sklearn(seed, k):
    # sklearn's ideal DCG ranks every relevant item of the scored row; scoring the full catalogue
    # with no masked items and continuous (tie-free) scores makes it ours: min(|rel|, k) ranks
    sk = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(seed)
    B, n_items = 30, 50
    scores = torch.randn(B, n_items, generator=g, dtype=torch.float64)
    truth = torch.rand(B, n_items, generator=g) < 0.15
    truth[torch.arange(B), torch.randint(0, n_items, (B,), generator=g)] = True  # >= 1 relevant
    _, idx = topk(scores, k)
    hits = hit_matrix(idx, truth)
    ours = ndcg(hits, truth.sum(1), k)
    ref = [sk.ndcg_score(truth[b:b + 1].double().numpy(), scores[b:b + 1].numpy(), k=k) for b in range(B)]
    assert torch.allclose(ours.double(), torch.tensor(ref, dtype=torch.float64), atol=1e-6)
    assert ours.mean().item() == pytest.approx(
        sk.ndcg_score(truth.double().numpy(), scores.numpy(), k=k), abs=1e-6)


def test_hit_matrix_padding_and_shapes():
    truth = torch.tensor([[False, True, False, True], [True, False, False, False]])
    idx = torch.tensor([[3, 0, -1], [1, 0, -1]])
    hits = hit_matrix(idx, truth)
    assert hits.size() == (2, 3)
    assert hits.tolist() == [[True, False, False], [False, True, False]]
    with pytest.raises(EvaluationError, match="'topk_index'"):
        hit_matrix(idx, truth[:1])


def test_coverage_and_average_popularity():
    idx = torch.tensor([[0, 1, 2], [0, 3, -1], [1, 0, 4]])
    assert coverage(idx, 10) == pytest.approx(5 / 10)
    assert coverage(idx, 10, k=1) == pytest.approx(2 / 10)  # items 0 and 1
    assert coverage(idx, 10, k=2) == pytest.approx(3 / 10)  # 0, 1, 3
    pop = torch.tensor([10.0, 4.0, 1.0, 7.0, 0.0, 0, 0, 0, 0, 0])
    ap = average_popularity(idx, pop)
    assert ap.size() == (3,)
    assert torch.allclose(ap, torch.tensor([(10 + 4 + 1) / 3, (10 + 7) / 2, (4 + 10 + 0) / 3]))
    assert torch.allclose(average_popularity(idx, pop, k=1), torch.tensor([10.0, 10.0, 4.0]))
    # a row with no recommendation at all scores 0, not NaN
    assert average_popularity(torch.tensor([[-1, -1]]), pop).item() == 0.0
    with pytest.raises(EvaluationError, match="beyond 'n_items' = 4"):
        coverage(idx, 4)
    with pytest.raises(EvaluationError, match="'item_popularity'"):
        average_popularity(idx, pop[:3])


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_k_rejected(bad):
    hits = torch.ones(2, 4, dtype=torch.bool)
    n_rel = torch.tensor([4, 4])
    with pytest.raises(EvaluationError, match=r"'k' must be a positive integer \(got "):
        check_k(bad)
    for fn in (lambda: recall(hits, n_rel, bad), lambda: ndcg(hits, n_rel, bad),
               lambda: precision(hits, bad), lambda: hit(hits, bad), lambda: mrr(hits, bad),
               lambda: coverage(hits.long(), 5, bad), lambda: average_popularity(hits.long(), torch.ones(5), bad)):
        with pytest.raises(KgrecError, match="'k' must be a positive integer"):
            fn()


def test_k_none_means_list_width_but_check_k_rejects_it():
    with pytest.raises(EvaluationError, match=r"'k' must be a positive integer \(got None\)"):
        check_k(None)
    hits = torch.tensor([[False, True]])
    assert precision(hits, None).item() == pytest.approx(1 / 2)


def test_k_zero_message_exact():
    with pytest.raises(EvaluationError) as e:
        ndcg(torch.ones(1, 3, dtype=torch.bool), torch.tensor([1]), 0)
    assert str(e.value) == "'k' must be a positive integer (got 0)"
    assert isinstance(e.value, ValueError)
    assert check_k(torch.tensor(3).item()) == 3


def test_shape_errors():
    with pytest.raises(EvaluationError, match=r"'n_relevant' must have shape \[2\]"):
        recall(torch.ones(2, 3, dtype=torch.bool), torch.tensor([1, 2, 3]), 3)
    with pytest.raises(EvaluationError, match=r"'hits' must have shape \[B, K\]"):
        precision(torch.ones(3, dtype=torch.bool), 3)


# ---------------------------------------------------------------- RecBole known answers
# Test vectors of RecBole (RUCAIBox/RecBole, tests/metrics/test_topk_metrics.py and
# tests/metrics/test_rank_metrics.py, commit 7b02be5e), whose definitions are in
# recbole/evaluator/metrics.py (MAP, GiniIndex, ShannonEntropy, TailPercentage, GAUC).
RB_POS_IDX = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 0, 1], [0, 0, 1]], dtype=torch.bool)
RB_POS_LEN = torch.tensor([1, 3, 4, 2])
RB_ITEM_MATRIX = torch.tensor([[5, 7, 3], [4, 5, 2], [2, 3, 5], [1, 4, 6], [5, 3, 7]])
RB_NUM_ITEMS = 8
RB_ITEM_COUNT = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5}


def test_map_recbole_vector():
    # RecBole test_map: row j of metric_info is MAP@1..3
    expected = [[0, 0, 0], [1, 1, 1], [1, 1 / 2, (1 / 3) * ((1 / 1) + (2 / 3))], [0, 0, (1 / 3) * (1 / 2)]]
    for k in (1, 2, 3):
        got = average_precision(RB_POS_IDX, RB_POS_LEN, k)
        assert got.tolist() == pytest.approx([row[k - 1] for row in expected], abs=1e-7)


def test_gini_recbole_vector():
    expected = ((-7) * 0 + (-5) * 1 + (-3) * 1 + (-1) * 2 + 1 * 2 + 3 * 2 + 5 * 3 + 7 * 4) / (8 * (3 * 5))
    assert gini_index(RB_ITEM_MATRIX, RB_NUM_ITEMS) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(41 / 120)


def test_shannon_entropy_recbole_vector():
    terms = [1 / 15, 2 / 15, 3 / 15, 2 / 15, 4 / 15, 1 / 15, 2 / 15]
    expected = -sum(p * math.log(p) for p in terms) / len(terms)  # RecBole: -np.mean(...)
    assert shannon_entropy(RB_ITEM_MATRIX) == pytest.approx(expected, abs=1e-12)


def test_tail_percentage_recbole_vector():
    # RecBole's counter holds items 1..6; tail_ratio defaults to 0.1: max(int(6 * 0.1), 1) = 1
    # least popular item, item 1 (count 0)
    counted = sorted(RB_ITEM_COUNT)
    tail_of_counted = tail_items(torch.tensor([RB_ITEM_COUNT[i] for i in counted]))
    assert tail_of_counted.tolist() == [True, False, False, False, False, False]
    is_tail = torch.zeros(RB_NUM_ITEMS, dtype=torch.bool)
    is_tail[torch.tensor(counted)[tail_of_counted]] = True
    expected = [[0, 0, 0], [0, 0, 0], [0, 0, 0], [1 / 1, 1 / 2, 1 / 3], [0, 0, 0]]
    for k in (1, 2, 3):
        got = tail_percentage(RB_ITEM_MATRIX, is_tail, k)
        assert got.tolist() == pytest.approx([row[k - 1] for row in expected], abs=1e-7)


def test_gauc_recbole_vectors():
    # case 0: pos_rank_sum, user_len_list, pos_len_list
    expected0 = (1 * ((2 - (1 - 1) / 2 - 1 / 1) / (2 - 1)) + 2 * ((3 - (2 - 1) / 2 - 4 / 2) / (3 - 2))
                 + 3 * ((5 - (3 - 1) / 2 - 9 / 3) / (5 - 3))) / (1 + 2 + 3)
    assert gauc(torch.tensor([1, 4, 9]), torch.tensor([2, 3, 5]), torch.tensor([1, 2, 3])) == \
        pytest.approx(expected0, abs=1e-12)
    assert expected0 == pytest.approx(7 / 12)
    # case 1: user 1 has no positive, user 2 no negative: both left out
    assert gauc(torch.tensor([3, 0, 6]), torch.tensor([3, 6, 4]), torch.tensor([1, 0, 4])) == \
        pytest.approx((3 - 0 - 3 / 1) / (3 - 1), abs=1e-12)
    auc = auc_from_rank_sum(torch.tensor([3, 0, 6]), torch.tensor([3, 6, 4]), torch.tensor([1, 0, 4]))
    assert auc[0].item() == 0.0 and math.isnan(auc[1].item()) and math.isnan(auc[2].item())
    assert math.isnan(gauc(torch.tensor([0]), torch.tensor([3]), torch.tensor([0])))


# ---------------------------------------------------------------- hand-computed cases
def test_average_precision_hand_cases():
    hits = torch.tensor([[False, True, True, False, True],   # 3 relevant
                         [True, False, False, False, False],  # 10 relevant: divide by k
                         [False, False, False, False, False]])
    n_rel = torch.tensor([3, 10, 0])
    # row 0, k = 5: (1/2 + 2/3 + 3/5) / 3; k = 2: (1/2) / 2
    assert average_precision(hits, n_rel, 5).tolist() == pytest.approx([(1 / 2 + 2 / 3 + 3 / 5) / 3, 1 / 5, 0.0])
    assert average_precision(hits, n_rel, 2).tolist() == pytest.approx([(1 / 2) / 2, 1 / 2, 0.0])
    # k beyond the list width: missing ranks are misses, the divisor is still min(n_rel, k)
    assert average_precision(hits[:1, :3], n_rel[:1], 5).tolist() == pytest.approx([(1 / 2 + 2 / 3) / 3])


def test_gini_entropy_hand_cases():
    even = torch.tensor([[0, 1], [2, 3]])
    assert gini_index(even, 4) == 0.0
    assert gini_index(even, 8) == pytest.approx(((1 + 3 + 5 + 7) * 1) / (8 * 4))  # 4 of 8 never shown
    one = torch.tensor([[2], [2], [2], [-1]])  # padding is not counted
    assert gini_index(one, 3) == pytest.approx((3 - 1) / 3)  # 1 - 1/n
    assert shannon_entropy(one) == 0.0
    assert shannon_entropy(even) == pytest.approx(math.log(4) / 4)
    assert shannon_entropy(torch.tensor([[0, 1], [0, 2]]), k=1) == 0.0  # only item 0 at rank 1
    assert math.isnan(gini_index(torch.tensor([[-1]]), 3)) and math.isnan(shannon_entropy(torch.tensor([[-1]])))
    with pytest.raises(EvaluationError, match="beyond 'n_items' = 3"):
        gini_index(even, 3)


def test_tail_items_rules():
    pop = torch.tensor([5.0, 0.0, 2.0, 0.0, 9.0, 2.0, 1.0, 7.0, 3.0, 4.0])
    assert tail_items(pop).nonzero().view(-1).tolist() == [1]  # int(10 * 0.1) = 1, lower id first
    assert tail_items(pop, 0.3).nonzero().view(-1).tolist() == [1, 3, 6]
    assert tail_items(pop, 0.01).nonzero().view(-1).tolist() == [1]  # at least one item
    assert tail_items(pop, 2).nonzero().view(-1).tolist() == [1, 2, 3, 5, 6]  # popularity <= 2
    with pytest.raises(EvaluationError, match="'tail_ratio' must be a positive number"):
        tail_items(pop, 0)


def test_tail_percentage_padding():
    is_tail = torch.tensor([True, False, True, False])
    idx = torch.tensor([[0, 1, 2], [1, 3, -1], [-1, -1, -1]])
    assert tail_percentage(idx, is_tail).tolist() == pytest.approx([2 / 3, 0.0, 0.0])
    assert tail_percentage(idx, is_tail, 1).tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert tail_percentage(torch.tensor([[2, -1]]), is_tail).tolist() == [1.0]  # over 1 recommendation


def test_auc_from_rank_sum_matches_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    # 6 items, positives 1 and 4; scores with a tie between positive 4 and negative 5
    scores = torch.tensor([0.9, 0.8, 0.1, 0.5, 0.3, 0.3])
    truth = torch.tensor([0, 1, 0, 0, 1, 0])
    # descending average ranks: 0.9->1, 0.8->2, 0.5->3, 0.3 (x2)->4.5, 0.1->6; positives 2 + 4.5
    got = auc_from_rank_sum(torch.tensor([6.5]), torch.tensor([6]), torch.tensor([2]))
    assert got.item() == pytest.approx(sk.roc_auc_score(truth.numpy(), scores.numpy()))
    assert got.item() == pytest.approx((3 + 1.5) / 8)
