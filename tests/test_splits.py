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
    all_pairs = [(kg.users[u], kg.items[i])
                 for u, i in zip(kg.interactions.user.tolist(), kg.interactions.item.tolist())]
    sp = split_from_pairs(kg, {"train": all_pairs[:30], "valid": all_pairs[30:33], "test": all_pairs[33:]})
    assert (len(sp.train), len(sp.valid), len(sp.test)) == (30, 3, 3)
    assert np.allclose(sp.test.time.numpy(), kg.interactions.time[33:].numpy())
    with pytest.raises(SplitError, match="not an interaction"):
        split_from_pairs(kg, {"train": [(kg.users[0], kg.items[7])]})


# ------------------------------------------------------------------------- small users (per-user cut)
def _graph_with_activity(counts, n_items=None, seed=0):
    """A graph whose user ``u`` has ``counts[u]`` interactions on distinct random items, timed."""
    from kgrec.data.graph import Interactions, KnowledgeGraph
    from kgrec.data.vocab import Vocab

    rng = np.random.default_rng(seed)
    n_items = n_items or max(counts) + 5
    uu, ii, tt = [], [], []
    for u, m in enumerate(counts):
        for j, i in enumerate(rng.choice(n_items, size=m, replace=False)):
            uu.append(u)
            ii.append(int(i))
            tt.append(1_000_000 + 3600 * int(rng.integers(0, 50)) + j)  # ties in time on purpose
    users = Vocab([f"http://x/user/{u:04d}" for u in range(len(counts))], name="user")
    items = Vocab([f"http://x/item/{i:04d}" for i in range(n_items)], name="item")
    ents = Vocab(items.labels, sort=False, name="entity")
    rels = Vocab(["https://w3id.org/kgrec/vocab#genre"], name="relation")
    return KnowledgeGraph(users, items, ents, rels, torch.empty(0, 3, dtype=torch.long),
                          Interactions.from_lists(uu, ii, None, tt))


# (train, valid, test) per user with m interactions, ratios (0.8, 0.1, 0.1). m >= 10 are the RecBole
# counts (floor(0.8 m), floor(0.9 m) - floor(0.8 m), rest); below, every m >= 3 has a valid and a test.
EXPECTED_CUT = {1: (1, 0, 0), 2: (1, 0, 1), 3: (1, 1, 1), 4: (2, 1, 1), 5: (3, 1, 1), 6: (4, 1, 1),
                7: (5, 1, 1), 8: (6, 1, 1), 9: (7, 1, 1), 10: (8, 1, 1), 11: (8, 1, 2), 12: (9, 1, 2)}


@pytest.mark.parametrize("strategy", ["random", "temporal"])
def test_per_user_counts_for_every_small_m(strategy):
    counts = list(EXPECTED_CUT)  # user u has u + 1 interactions
    kg = _graph_with_activity(counts)
    sp = split(kg, strategy, ratios=(0.8, 0.1, 0.1), seed=5)
    n = len(counts)
    got = zip(torch.bincount(sp.train.user, minlength=n).tolist(), torch.bincount(sp.valid.user, minlength=n).tolist(),
              torch.bincount(sp.test.user, minlength=n).tolist())
    assert dict(zip(counts, got)) == EXPECTED_CUT


def test_large_users_keep_the_recbole_counts():
    import math

    from kgrec.data.splits import _cut

    for m in range(10, 2000):
        n_train = math.floor(m * 0.8)
        assert _cut(m, (0.8, 0.1, 0.1)) == (n_train, math.floor(m * (0.8 + 0.1)) - n_train), m


def test_cut_other_ratios_respect_the_minimum_and_zero_shares():
    from kgrec.data.splits import _cut

    for ratios in [(0.9, 0.05, 0.05), (0.6, 0.2, 0.2), (0.1, 0.1, 0.8), (0.05, 0.9, 0.05)]:
        for m in range(3, 60):
            n_train, n_valid = _cut(m, ratios)
            assert n_train >= 1 and n_valid >= 1 and m - n_train - n_valid >= 1, (ratios, m)
        assert _cut(2, ratios) == (1, 0) and _cut(1, ratios) == (1, 0)
    # a part with share 0 gets nothing, even for small users
    assert [_cut(m, (0.8, 0.2, 0.0)) for m in (2, 3, 5)] == [(1, 1), (2, 1), (4, 1)]
    assert [_cut(m, (0.8, 0.0, 0.2)) for m in (2, 3, 5)] == [(1, 0), (2, 0), (4, 0)]
    assert [_cut(m, (1.0, 0.0, 0.0)) for m in (1, 2, 3)] == [(1, 0), (2, 0), (3, 0)]


@pytest.mark.parametrize("strategy", ["random", "temporal"])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_user_with_three_interactions_has_valid_and_test(strategy, seed):
    rng = np.random.default_rng(seed)
    counts = [int(c) for c in rng.integers(1, 16, size=300)]  # a generated graph with many small users
    kg = _graph_with_activity(counts, n_items=40, seed=seed)
    sp = split(kg, strategy, seed=seed)
    parts = [set(p.user.tolist()) for p in (sp.train, sp.valid, sp.test)]
    big = {u for u, m in enumerate(counts) if m >= 3}
    assert big <= parts[1] and big <= parts[2]
    assert {u for u, m in enumerate(counts) if m == 2} & parts[1] == set()
    assert parts[0] == set(range(len(counts)))  # everyone keeps a training interaction
    # no (user, item) pair in two parts, and nothing lost
    a, b, c = _pairs(sp.train), _pairs(sp.valid), _pairs(sp.test)
    assert not (a & b) and not (a & c) and not (b & c)
    assert len(sp.train) + len(sp.valid) + len(sp.test) == len(kg.interactions) == len(a | b | c)
    if strategy == "temporal":  # the minimum keeps time order: valid and test are a user's latest
        for u in sorted(big)[:50]:
            assert sp.train.time[sp.train.user == u].max() <= sp.valid.time[sp.valid.user == u].min()
            assert sp.valid.time[sp.valid.user == u].max() <= sp.test.time[sp.test.user == u].min()
    st = sp.stats()
    assert (st["train_users"], st["valid_users"], st["test_users"]) == tuple(len(p) for p in parts)
    assert st["valid_users"] == len(big) and st["test_users"] == sum(m >= 2 for m in counts)


def test_cold_item_small_warm_users_get_a_validation_interaction():
    rng = np.random.default_rng(3)
    counts = [int(c) for c in rng.integers(1, 12, size=200)]
    kg = _graph_with_activity(counts, n_items=60, seed=3)
    sp = split(kg, "cold-item", seed=3)
    cold = set(sp.cold_items.tolist())
    warm = torch.bincount(kg.interactions.user[~torch.isin(kg.interactions.item, sp.cold_items)],
                          minlength=len(counts))
    valid_users = set(sp.valid.user.tolist())
    assert {u for u in range(len(counts)) if warm[u] >= 3} <= valid_users
    assert {u for u in range(len(counts)) if warm[u] <= 2} & valid_users == set()
    assert set(sp.train.user.tolist()) == {u for u in range(len(counts)) if warm[u] >= 1}
    assert not (set(sp.train.item.tolist()) | set(sp.valid.item.tolist())) & cold
    a, b, c = _pairs(sp.train), _pairs(sp.valid), _pairs(sp.test)
    assert not (a & b) and not (a & c) and not (b & c)
    st = sp.stats()
    assert st["valid_users"] == len(valid_users) and st["train_users"] == len(set(sp.train.user.tolist()))


def test_stats_reports_users_per_part():
    kg = two_cluster_kg(n_per=20, items_per=10)
    st = split(kg, "random", seed=0).stats()
    assert (st["train"], st["valid"], st["test"]) == (7 * 40, 40, 40)
    assert (st["train_users"], st["valid_users"], st["test_users"]) == (40, 40, 40)
