import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from kgrec.data.graph import Interactions
from kgrec.data.splits import Split
from kgrec.errors import KgrecError
from kgrec.evaluation.evaluator import Evaluator, evaluate, evaluate_topk
from kgrec.evaluation.metrics import EvaluationError

DATA_ROOT = Path(os.environ.get("KGREC_DATA_ROOT", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
METRICS = ("recall", "ndcg", "precision", "hit", "mrr", "coverage", "avg_pop")


def make_split(train, valid, test, num_users, num_items, candidates=None, strategy="random"):
    def inter(pairs):
        return Interactions.from_lists([u for u, _ in pairs], [i for _, i in pairs])

    cand = None if candidates is None else torch.tensor(candidates, dtype=torch.long)
    return Split(strategy, 0, (0.8, 0.1, 0.1), num_users, num_items, inter(train), inter(valid),
                 inter(test), test_candidates=cand)


# 4 users x 6 items. User 2 has nothing to evaluate; user 3 only a valid item.
TRAIN = [(0, 0), (0, 1), (1, 2), (2, 0), (3, 5)]
VALID = [(0, 2), (1, 3), (3, 4)]
TEST = [(0, 3), (0, 4), (1, 0)]
SCORES = torch.tensor([
    [9.0, 8.0, 7.0, 1.0, 5.0, 3.0],  # train items 0, 1 and valid item 2 score highest
    [1.0, 2.0, 9.0, 8.0, 0.0, 3.0],
    [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],
    [0.0, 1.0, 2.0, 3.0, 0.5, 5.0],
])


def table_fn(table, device="cpu"):
    table = table.to(device)
    return lambda users: table[users.to(device)]


@pytest.mark.parametrize("device", DEVICES)
def test_hand_built_test_part(device):
    split = make_split(TRAIN, VALID, TEST, 4, 6)
    out = evaluate(table_fn(SCORES, device), split, ks=(1, 3), part="test")
    # test ranking, train+valid masked: user 0 -> [4, 5, 3] (relevant 3, 4); user 1 -> [5, 1, 0] (relevant 0)
    assert out["users"] == 2
    assert out["recall@1"] == pytest.approx((1 / 2 + 0) / 2)
    assert out["precision@1"] == pytest.approx(1 / 2)
    assert out["hit@1"] == pytest.approx(1 / 2)
    assert out["mrr@1"] == pytest.approx(1 / 2)
    assert out["ndcg@1"] == pytest.approx(1 / 2)
    assert out["recall@3"] == pytest.approx(1.0)
    assert out["precision@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert out["hit@3"] == pytest.approx(1.0)
    assert out["mrr@3"] == pytest.approx((1 + 1 / 3) / 2)
    u0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    u1 = (1 / math.log2(4)) / 1
    assert out["ndcg@3"] == pytest.approx((u0 + u1) / 2)
    assert out["coverage@1"] == pytest.approx(2 / 6)  # {4, 5}
    assert out["coverage@3"] == pytest.approx(5 / 6)  # {4, 5, 3, 1, 0}
    # popularity = training counts: item 0 -> 2, items 1, 2, 5 -> 1
    assert out["avg_pop@1"] == pytest.approx((0 + 1) / 2)
    assert out["avg_pop@3"] == pytest.approx(((0 + 1 + 0) / 3 + (1 + 1 + 2) / 3) / 2)
    assert out["seconds"] > 0 and out["users_per_second"] == pytest.approx(2 / out["seconds"])
    assert list(out)[:7] == [f"{m}@1" for m in METRICS]


def test_hand_built_recbole_metrics_and_per_user():
    split = make_split(TRAIN, VALID, TEST, 4, 6)
    ev = Evaluator(split, ks=(1, 3), part="test")
    out = ev(table_fn(SCORES))
    # user 0: unmasked {3: 1.0, 4: 5.0, 5: 3.0} -> [4, 5, 3], relevant {3, 4}, hits [T, F, T]
    # user 1: unmasked {0: 1.0, 1: 2.0, 4: 0.0, 5: 3.0} -> [5, 1, 0, 4], relevant {0}, hits [F, F, T]
    assert out["map@1"] == pytest.approx((1 + 0) / 2)
    assert out["map@3"] == pytest.approx(((1 + 2 / 3) / 2 + (1 / 3) / 1) / 2)  # 7/12
    # AUC: user 0 has positives 4 (5.0 > 3.0) and 3 (1.0 < 3.0) against negative 5 -> 1/2;
    # user 1 has positive 0 (1.0) with negatives 5, 1 above and 4 below -> 1/3; weights 2 and 1
    assert out["gauc"] == pytest.approx((2 * (1 / 2) + 1 * (1 / 3)) / 3)  # 4/9
    # top-1 counts over 6 items: item 4 once, item 5 once -> sorted [0,0,0,0,1,1]
    assert out["gini@1"] == pytest.approx((3 * 1 + 5 * 1) / (6 * 2))
    # top-3 counts: 0:1, 1:1, 2:0, 3:1, 4:1, 5:2 -> sorted [0,1,1,1,1,2], weights 2i-7
    assert out["gini@3"] == pytest.approx((-3 - 1 + 1 + 3 + 5 * 2) / (6 * 6))
    assert out["entropy@1"] == pytest.approx(math.log(2) / 2)
    assert out["entropy@3"] == pytest.approx((4 * (1 / 6) * math.log(6) + (1 / 3) * math.log(3)) / 5)
    # training counts 0:2, 1:1, 2:1, 3:0, 4:0, 5:1; tail_ratio 0.1 -> max(int(0.6), 1) = 1 item,
    # the least popular with the lower id: item 3
    assert ev.is_tail.nonzero().view(-1).tolist() == [3]
    assert out["tail@1"] == 0.0
    assert out["tail@3"] == pytest.approx((1 / 3 + 0) / 2)
    # per-user values, aligned with ev.users
    assert ev.users.tolist() == [0, 1]
    pu = ev.per_user
    assert set(pu) == {f"{m}@{k}" for k in (1, 3) for m in
                       ("recall", "ndcg", "precision", "hit", "mrr", "map", "avg_pop", "tail")} | {"auc"}
    assert all(v.dtype == torch.float64 and v.shape == (2,) for v in pu.values())
    assert pu["map@3"].tolist() == pytest.approx([5 / 6, 1 / 3])
    assert pu["ndcg@3"].tolist() == pytest.approx([(1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)), 1 / 2])
    assert pu["recall@1"].tolist() == [0.5, 0.0]
    assert pu["auc"].tolist() == pytest.approx([1 / 2, 1 / 3])
    assert pu["tail@3"].tolist() == pytest.approx([1 / 3, 0.0])
    for key in ("recall@3", "ndcg@3", "map@1", "mrr@3"):
        assert pu[key].mean().item() == pytest.approx(out[key])
    # another tail rule: int(6 * 0.5) = 3 least popular items: 3, 4 (0), then 1 (1, lowest id)
    ev2 = Evaluator(split, ks=(1, 3), tail_ratio=0.5)
    out2 = ev2(table_fn(SCORES))
    assert ev2.is_tail.nonzero().view(-1).tolist() == [1, 3, 4]
    assert out2["tail@1"] == pytest.approx((1 + 0) / 2)
    assert out2["tail@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    # gauc switched off
    off = Evaluator(split, ks=(3,), gauc=False)
    out3 = off(table_fn(SCORES))
    assert math.isnan(out3["gauc"]) and out3["map@3"] == pytest.approx(7 / 12)


def test_gauc_ties_and_minus_inf_scores():
    # one user, 5 items, item 0 in train (masked); relevant items 1 and 2
    split = make_split([(0, 0)], [], [(0, 1), (0, 2)], 1, 5)
    # item 1 ties with negative 3, item 2 is below negative 4 and above nothing
    ev = Evaluator(split, ks=(2,))
    out = ev(table_fn(torch.tensor([[9.0, 2.0, 0.5, 2.0, 1.0]])))
    # pairs (pos, neg): (1, 3) tie -> 1/2, (1, 4) -> 1, (2, 3) -> 0, (2, 4) -> 0 => 1.5 / 4
    assert out["gauc"] == pytest.approx(1.5 / 4)
    # a relevant item the model scores -inf ties with the unmasked -inf negative only
    out = ev(table_fn(torch.tensor([[9.0, float("-inf"), 3.0, float("-inf"), 1.0]])))
    # (1, 3) tie -> 1/2, (1, 4) -> 0, (2, 3) -> 1, (2, 4) -> 1 => 2.5 / 4
    assert out["gauc"] == pytest.approx(2.5 / 4)
    assert ev.per_user["auc"].tolist() == pytest.approx([2.5 / 4])
    # every unmasked item relevant: no negative, the user is left out of GAUC
    full = make_split([(0, 0)], [], [(0, 1), (0, 2)], 1, 3)
    ev_full = Evaluator(full, ks=(1,))
    assert math.isnan(ev_full(table_fn(torch.tensor([[1.0, 2.0, 3.0]])))["gauc"])
    assert math.isnan(ev_full.per_user["auc"].item())


def test_cold_item_gini_entropy_over_candidates():
    train = [(0, 0), (0, 1), (1, 2), (1, 3)]
    split = make_split(train, [(0, 2)], [(0, 4), (1, 5)], 2, 6, candidates=[4, 5], strategy="cold-item")
    out = evaluate(table_fn(torch.tensor([[9.0, 8.0, 7.0, 6.0, 1.0, 2.0]] * 2)), split, ks=(1, 3))
    # both users rank [5, 4]: top-1 counts over the 2 candidates [0, 2], top-3 counts [2, 2]
    assert out["gini@1"] == pytest.approx((-1 * 0 + 1 * 2) / (2 * 2))
    assert out["gini@3"] == 0.0
    assert out["entropy@1"] == 0.0
    assert out["entropy@3"] == pytest.approx(math.log(2) / 2)
    # AUC over the candidates only: user 0 (relevant 4 below 5) 0, user 1 (relevant 5 above 4) 1
    assert out["gauc"] == pytest.approx(1 / 2)
    # training counts 0..3 -> 1, items 4 and 5 -> 0: the tail (1 item) is item 4
    assert out["tail@1"] == 0.0 and out["tail@3"] == pytest.approx(1 / 2)


def test_hand_built_valid_part_masks_train_only():
    split = make_split(TRAIN, VALID, TEST, 4, 6)
    out = evaluate(table_fn(SCORES), split, ks=(1, 3), part="valid")
    # valid ranking, train masked: user 0 -> [2, 4, 5] (hit at 1), user 1 -> [3, 5, 1] (hit at 1),
    # user 3 -> [3, 2, 1] (relevant 4 is 4th)
    assert out["users"] == 3
    assert out["recall@1"] == pytest.approx(2 / 3)
    assert out["hit@3"] == pytest.approx(2 / 3)
    assert out["mrr@3"] == pytest.approx(2 / 3)
    assert out["coverage@1"] == pytest.approx(2 / 6)  # top-1 items 2, 3, 3


def test_masks_are_really_applied():
    split = make_split(TRAIN, VALID, TEST, 4, 6)
    # a scorer whose favourites are exactly the user's train items then valid items
    table = torch.zeros(4, 6)
    for u, i in TRAIN:
        table[u, i] = 10.0
    for u, i in VALID:
        table[u, i] = 5.0
    ev = Evaluator(split, ks=(2,), part="test")
    out = ev(table_fn(table))
    # once train and valid are masked the rest tie at 0 and rank by id: user 0 gets [3, 4] (both
    # test items), user 1 gets [0, 1] (test item 0); unmasked, both lists would be train items
    assert out["users"] == 2
    assert out["precision@2"] == pytest.approx((2 / 2 + 1 / 2) / 2)
    assert out["mrr@2"] == pytest.approx(1.0)


def test_users_without_test_items_not_counted_and_subset():
    split = make_split(TRAIN, VALID, TEST, 4, 6)
    ev = Evaluator(split, ks=(3,), part="test")
    assert ev.users.tolist() == [0, 1]
    out = evaluate(table_fn(SCORES), split, ks=(3,), users=[1, 2])
    assert out["users"] == 1  # user 2 has no test item
    assert out["recall@3"] == pytest.approx(1.0)
    assert out["mrr@3"] == pytest.approx(1 / 3)
    assert out["coverage@3"] == pytest.approx(3 / 6)
    empty = evaluate(table_fn(SCORES), split, ks=(3,), users=torch.tensor([2, 3]))
    assert empty["users"] == 0 and math.isnan(empty["ndcg@3"])


@pytest.mark.parametrize("seed,mrr", [(0, 1.0), (7, 1 / 5)])
def test_cold_item_ties_follow_seeded_random_order(seed, mrr):
    """A model that scores every cold item alike (MostPop, EASE) must not be ranked by item id
    (which would put the relevant item 8 fourth of the candidates, MRR 1/4, for every seed).
    """
    n_items, cands = 12, [2, 3, 5, 8, 9, 11]
    split = Split("cold-item", seed, (0.8, 0.1, 0.1), 1, n_items,
                  Interactions.from_lists([0], [0]), Interactions.from_lists([], []),
                  Interactions.from_lists([0], [8]), test_candidates=torch.tensor(cands))
    # torch.randperm(12) from seed 0 orders the candidates [8, 5, 9, 2, 3, 11], from 7 [3, 5, 9, 11, 8, 2]
    out = evaluate(lambda users: torch.zeros(len(users), n_items), split, ks=(1, 6), part="test")
    assert out["mrr@6"] == pytest.approx(mrr)
    assert out["hit@1"] == (1.0 if mrr == 1.0 else 0.0)


def test_cold_item_candidates_restrict_ranking():
    train = [(0, 0), (0, 1), (1, 2), (1, 3)]
    valid = [(0, 2)]
    test = [(0, 4), (1, 5)]
    split = make_split(train, valid, test, 2, 6, candidates=[4, 5], strategy="cold-item")
    scores = torch.tensor([[9.0, 8.0, 7.0, 6.0, 1.0, 2.0]] * 2)  # warm items score highest
    out = evaluate(table_fn(scores), split, ks=(1, 3), part="test")
    # both users rank only [5, 4]; user 0 finds 4 at rank 2, user 1 finds 5 at rank 1
    assert out["users"] == 2
    assert out["hit@1"] == pytest.approx(1 / 2)
    assert out["recall@3"] == pytest.approx(1.0)
    assert out["precision@3"] == pytest.approx(1 / 3)  # only 2 candidates, ranks 3.. are empty
    assert out["mrr@3"] == pytest.approx((1 / 2 + 1) / 2)
    assert out["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1) / 2)
    assert out["coverage@1"] == pytest.approx(1 / 2)  # over the 2 candidates
    assert out["coverage@3"] == pytest.approx(1.0)
    # candidates apply to the test part only: valid ranks the whole catalogue
    assert Evaluator(split, part="valid").n_rankable == 6


def test_non_candidate_test_items_are_not_relevant():
    # a non-candidate test item can never be ranked, so it must not enter recall's denominator
    split = make_split([(0, 0)], [], [(0, 3), (0, 4)], 1, 6, candidates=[4, 5])
    ev = Evaluator(split, ks=(2,))
    assert ev.n_relevant.tolist() == [1]
    out = ev(table_fn(torch.tensor([[0.0, 0.0, 0.0, 9.0, 1.0, 2.0]])))
    assert out["recall@2"] == pytest.approx(1.0)
    assert out["ndcg@2"] == pytest.approx(1 / math.log2(3))
    assert evaluate_topk({0: [5, 4]}, split, ks=(2,))["recall@2"] == pytest.approx(1.0)


def test_repeated_interaction_is_neither_masked_hit_nor_relevant():
    # user 0 has item 1 in train and again in test: it is masked, so not counted as relevant
    split = make_split([(0, 1), (0, 0)], [], [(0, 1), (0, 2)], 1, 4)
    ev = Evaluator(split, ks=(2,))
    assert ev.n_dropped == 1
    assert ev.n_relevant.tolist() == [1]
    out = ev(table_fn(torch.tensor([[0.0, 9.0, 5.0, 1.0]])))
    assert out["recall@2"] == pytest.approx(1.0) and out["ndcg@2"] == pytest.approx(1.0)


def naive_evaluate(scores, split, ks, part, users=None):
    """Independent per-user reference of the protocol, straight from PROTOCOL.md."""
    seen_parts = [split.train] if part == "valid" else [split.train, split.valid]
    seen = {}
    for p in seen_parts:
        for u, i in zip(p.user.tolist(), p.item.tolist()):
            seen.setdefault(u, set()).add(i)
    cand = set(range(split.num_items))
    tie = list(range(split.num_items))  # equal scores: lower id first ...
    if part == "test" and split.test_candidates is not None:
        cand = set(split.test_candidates.tolist())
        # ... except over test candidates: the position in a random order drawn from split.seed
        order = torch.randperm(split.num_items, generator=torch.Generator().manual_seed(split.seed)).tolist()
        tie = [order.index(i) for i in range(split.num_items)]
    target = split.valid if part == "valid" else split.test
    rel = {}
    for u, i in zip(target.user.tolist(), target.item.tolist()):
        if i in cand and i not in seen.get(u, set()):
            rel.setdefault(u, set()).add(i)
    chosen = sorted(u for u in rel if users is None or u in users)
    pop = [0] * split.num_items
    for i in split.train.item.tolist():
        pop[i] += 1
    sums = {f"{m}@{k}": 0.0 for k in ks for m in METRICS}
    covered = {k: set() for k in ks}
    lists = {}
    for u in chosen:
        row = scores[u].tolist()
        ranked = sorted((i for i in cand if i not in seen.get(u, set())), key=lambda i: (-row[i], tie[i]))
        lists[u] = ranked[: max(ks)]
        for k in ks:
            top = ranked[:k]
            h = [i in rel[u] for i in top]
            sums[f"recall@{k}"] += sum(h) / len(rel[u])
            sums[f"precision@{k}"] += sum(h) / k
            sums[f"hit@{k}"] += any(h)
            sums[f"mrr@{k}"] += next((1 / (r + 1) for r, x in enumerate(h) if x), 0.0)
            idcg = sum(1 / math.log2(r + 2) for r in range(min(len(rel[u]), k)))
            sums[f"ndcg@{k}"] += sum(1 / math.log2(r + 2) for r, x in enumerate(h) if x) / idcg
            sums[f"avg_pop@{k}"] += sum(pop[i] for i in top) / len(top) if top else 0.0
            covered[k].update(top)
    out = {}
    for k in ks:
        for m in METRICS:
            out[f"{m}@{k}"] = sums[f"{m}@{k}"] / len(chosen)
        out[f"coverage@{k}"] = len(covered[k]) / len(cand)
    out["users"] = len(chosen)
    return out, lists


def random_split(seed, cold):
    rng = np.random.default_rng(seed)
    n_users, n_items, n = 23, 40, 500
    u = rng.integers(0, n_users, n)
    i = rng.integers(0, n_items, n)  # duplicates on purpose: repeated interactions
    part = rng.choice(3, size=n, p=[0.7, 0.15, 0.15])
    cands = None
    if cold:
        cands = np.sort(rng.choice(n_items, 6, replace=False))
        is_cold = np.isin(i, cands)
        part[is_cold] = 2
        part[(~is_cold) & (part == 2)] = 0
    pairs = [list(zip(u[part == p].tolist(), i[part == p].tolist())) for p in range(3)]
    return make_split(*pairs, n_users, n_items, candidates=None if cands is None else cands.tolist()), rng


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("part", ["valid", "test"])
@pytest.mark.parametrize("cold", [False, True])
def test_against_naive_loop(seed, part, cold):
    split, rng = random_split(seed, cold)
    # integer scores: many ties, which both sides break by the lower item id
    scores = torch.as_tensor(rng.integers(0, 5, (split.num_users, split.num_items))).float()
    ks = (1, 5, 10)
    subset = None if seed != 2 else set(range(0, split.num_users, 2))
    ref, lists = naive_evaluate(scores, split, ks, part, subset)
    assert ref["users"] > 0
    for bs in (4, 1024):
        out = evaluate(table_fn(scores), split, ks, part, batch_size=bs,
                       users=None if subset is None else sorted(subset))
        assert out["users"] == ref["users"]
        for key, v in ref.items():
            assert out[key] == pytest.approx(v, abs=1e-6), key
    # the plain-Python list scorer agrees on the lists the naive ranking produced
    out_lists = evaluate_topk(lists, split, ks, part, users=subset)
    for key, v in ref.items():
        assert out_lists[key] == pytest.approx(v, abs=1e-6), key


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cold", [False, True])
@pytest.mark.parametrize("numpy_path", [True, False])
def test_gauc_against_sklearn(seed, cold, numpy_path, monkeypatch):
    sk = pytest.importorskip("sklearn.metrics")
    if not numpy_path:  # the torch comparison path (used for scores on an accelerator)
        monkeypatch.delattr(np, "bitwise_count", raising=False)
    split, rng = random_split(seed, cold)
    scores = torch.as_tensor(rng.integers(0, 4, (split.num_users, split.num_items))).float()  # many ties
    ev = Evaluator(split, ks=(5,), batch_size=4)
    out = ev(table_fn(scores))
    seen = {}
    for p in (split.train, split.valid):
        for u, i in zip(p.user.tolist(), p.item.tolist()):
            seen.setdefault(u, set()).add(i)
    cand = set(range(split.num_items)) if split.test_candidates is None else set(split.test_candidates.tolist())
    num = den = 0.0
    for pos, u in enumerate(ev.users.tolist()):
        items = sorted(cand - seen.get(u, set()))
        rel = {i for i, r in zip(split.test.item.tolist(), split.test.user.tolist()) if r == u} & set(items)
        y = [int(i in rel) for i in items]
        if 0 < sum(y) < len(y):
            auc = sk.roc_auc_score(y, scores[u, items].numpy())
            assert ev.per_user["auc"][pos].item() == pytest.approx(auc, abs=1e-12)
            num += sum(y) * auc
            den += sum(y)
        else:
            assert math.isnan(ev.per_user["auc"][pos].item())
    assert out["gauc"] == pytest.approx(num / den, abs=1e-12)


def test_evaluate_topk_errors():
    split = make_split(TRAIN, VALID, TEST, 4, 6)
    with pytest.raises(EvaluationError, match="'topk_items' has no list for user 1"):
        evaluate_topk({0: [4, 5, 3]}, split, ks=(3,))
    with pytest.raises(EvaluationError, match="repeats an item"):
        evaluate_topk({0: [4, 4, 3], 1: [5]}, split, ks=(3,))
    with pytest.raises(EvaluationError, match=r"outside \[0, 6\)"):
        evaluate_topk({0: [4, 6], 1: [5]}, split, ks=(3,))


@pytest.mark.parametrize("bad", [0, -1, 2.5, "10"])
def test_bad_k_rejected(bad):
    split = make_split(TRAIN, VALID, TEST, 4, 6)
    with pytest.raises(EvaluationError, match=r"'k' must be a positive integer \(got "):
        evaluate(table_fn(SCORES), split, ks=(10, bad))
    with pytest.raises(KgrecError, match="'k' must be a positive integer"):
        evaluate_topk({}, split, ks=(bad,))


def test_bad_arguments():
    split = make_split(TRAIN, VALID, TEST, 4, 6)
    with pytest.raises(EvaluationError, match=r"'part' must be one of valid, test \(got 'train'\)"):
        Evaluator(split, part="train")
    with pytest.raises(EvaluationError, match=r"'batch_size' must be a positive integer \(got 0\)"):
        Evaluator(split, batch_size=0)
    with pytest.raises(EvaluationError, match="'ks' must hold at least one cut-off"):
        Evaluator(split, ks=())
    with pytest.raises(EvaluationError, match=r"'users' holds user ids outside \[0, 4\)"):
        Evaluator(split, users=[7])
    with pytest.raises(EvaluationError, match="'item_popularity' must have 6 entries"):
        Evaluator(split, item_popularity=torch.ones(5))
    ev = Evaluator(split, ks=(3,))
    with pytest.raises(EvaluationError, match=r"shape \[B, num_items\] = \[2, 6\] \(got \[2, 5\]\)"):
        ev(lambda u: torch.zeros(len(u), 5))
    with pytest.raises(EvaluationError, match="must return a float tensor"):
        ev(lambda u: torch.zeros(len(u), 6, dtype=torch.long))
    with pytest.raises(EvaluationError, match="'scores' contains NaN"):
        ev(lambda u: torch.full((len(u), 6), float("nan")))


def test_large_k_on_small_catalogue_and_repr():
    split = make_split(TRAIN, VALID, TEST, 4, 6)
    out = evaluate(table_fn(SCORES), split, ks=(20,))
    # only 3 unmasked items per test user: every relevant item is found, precision over k = 20
    assert out["recall@20"] == pytest.approx(1.0)
    assert out["precision@20"] == pytest.approx((2 / 20 + 1 / 20) / 2)
    assert "Evaluator(part='test', ks=(20,), users=2" in repr(Evaluator(split, ks=20))


def test_score_fn_output_not_modified_and_custom_popularity():
    split = make_split(TRAIN, VALID, TEST, 4, 6)
    table = SCORES.clone()
    pop = torch.tensor([0.0, 0.0, 0.0, 0.0, 10.0, 20.0])
    out = evaluate(lambda u: table[u.min():u.max() + 1], split, ks=(1,), item_popularity=pop)  # a view
    assert torch.equal(table, SCORES)
    assert out["avg_pop@1"] == pytest.approx((10.0 + 20.0) / 2)


ML100K = DATA_ROOT / "movielens-100k" / "peer-splits"


def load_peer_split(strategy):
    parts = {p: np.loadtxt(ML100K / strategy / f"{p}.tsv", dtype=np.int64, skiprows=1)
             for p in ("train", "valid", "test")}
    both = np.concatenate(list(parts.values()))
    users, items = np.unique(both[:, 0]), np.unique(both[:, 1])

    def inter(a):
        return Interactions.from_lists(np.searchsorted(users, a[:, 0]), np.searchsorted(items, a[:, 1]))

    return Split(strategy, 2020, (0.8, 0.1, 0.1), len(users), len(items),
                 inter(parts["train"]), inter(parts["valid"]), inter(parts["test"]))


@pytest.mark.skipif(not ML100K.is_dir(), reason="MovieLens-100K peer splits not available")
def test_movielens_100k_fast_and_most_popular():
    split = load_peer_split("random")
    assert (split.num_users, split.num_items) == (943, 1682)
    g = torch.Generator().manual_seed(0)
    U, V = torch.randn(943, 64, generator=g), torch.randn(1682, 64, generator=g)
    ev = Evaluator(split)
    ev(lambda u: U[u] @ V.T)  # warm-up
    out = ev(lambda u: U[u] @ V.T)
    assert out["users"] == 943  # as in ANCHORS.md
    assert out["seconds"] < 1.0
    # most-popular on training counts, checked against the naive per-user ranking
    pop = torch.bincount(split.train.item, minlength=1682).float()
    pop_scores = pop.expand(943, -1)
    got = ev(lambda u: pop_scores[u])
    ref, _ = naive_evaluate(pop_scores, split, (10, 20), "test")
    for key in ("recall@10", "ndcg@10", "recall@20", "ndcg@20"):
        assert got[key] == pytest.approx(ref[key], abs=1e-6)
    assert got["recall@10"] == pytest.approx(0.1278, abs=1e-4)
    assert got["ndcg@10"] == pytest.approx(0.1418, abs=1e-4)
