import numpy as np
import pytest
import torch

from kgrec.data.splits import split, split_from_pairs
from kgrec.errors import SplitError
from tests.conftest import two_cluster_kg


def _pairs(inter):
    return set(zip(inter.user.tolist(), inter.item.tolist()))


@pytest.mark.parametrize("strategy", ["random", "temporal", "global-time", "cold-item"])
def test_parts_disjoint_and_complete(strategy):
    kg = two_cluster_kg(n_per=20, items_per=10)
    sp = split(kg, strategy, seed=1)
    a, b, c = _pairs(sp.train), _pairs(sp.valid), _pairs(sp.test)
    assert not (a & b) and not (a & c) and not (b & c)
    assert len(a) + len(b) + len(c) == len(kg.interactions)
    assert sp.name == f"{strategy}-seed1"
    # same seed, same split; other seed, other split (except the deterministic temporal one)
    again = split(kg, strategy, seed=1)
    assert torch.equal(again.test.item, sp.test.item)


def test_random_per_user_ratios():
    kg = two_cluster_kg(n_per=20, items_per=10)  # 9 interactions per user
    sp = split(kg, "random", seed=0)
    per_user = torch.bincount(sp.train.user, minlength=kg.num_users)
    assert per_user.tolist() == [7] * kg.num_users  # floor(9 * 0.8)
    assert torch.bincount(sp.test.user, minlength=kg.num_users).tolist() == [1] * kg.num_users


def test_temporal_test_is_latest():
    kg = two_cluster_kg(n_per=20, items_per=10)
    sp = split(kg, "temporal")
    for u in range(kg.num_users):
        t_train = sp.train.time[sp.train.user == u]
        t_test = sp.test.time[sp.test.user == u]
        assert t_test.min() >= t_train.max()


def test_global_time_cut_and_cold_users():
    kg = two_cluster_kg(n_per=20, items_per=10)
    sp = split(kg, "global-time")
    assert sp.train.time.max() <= sp.valid.time.min() <= sp.test.time.min()
    seen = set(sp.train.user.tolist())
    assert set(sp.cold_users.tolist()) == set(sp.test.user.tolist()) | set(sp.valid.user.tolist()) - seen


def test_cold_item_split():
    kg = two_cluster_kg(n_per=20, items_per=10)
    sp = split(kg, "cold-item", seed=3)
    cold = set(sp.cold_items.tolist())
    assert len(cold) == 2  # 10% of 20 items
    assert not (set(sp.train.item.tolist()) | set(sp.valid.item.tolist())) & cold
    assert set(sp.test.item.tolist()) <= cold
    assert torch.equal(sp.test_candidates, sp.cold_items)


def test_bad_arguments():
    kg = two_cluster_kg()
    with pytest.raises(SplitError, match="'strategy' must be one of"):
        split(kg, "weird")
    with pytest.raises(SplitError, match="'ratios'"):
        split(kg, "random", ratios=(0.5, 0.1, 0.1))
    kg.interactions.time[0] = float("nan")
    with pytest.raises(SplitError, match="1 of 36 have none"):
        split(kg, "temporal")


def test_split_from_pairs():
    kg = two_cluster_kg()
    all_pairs = [(kg.users[u], kg.items[i]) for u, i in zip(kg.interactions.user.tolist(), kg.interactions.item.tolist())]
    sp = split_from_pairs(kg, {"train": all_pairs[:30], "valid": all_pairs[30:33], "test": all_pairs[33:]})
    assert (len(sp.train), len(sp.valid), len(sp.test)) == (30, 3, 3)
    assert np.allclose(sp.test.time.numpy(), kg.interactions.time[33:].numpy())
    with pytest.raises(SplitError, match="not an interaction"):
        split_from_pairs(kg, {"train": [(kg.users[0], kg.items[7])]})
