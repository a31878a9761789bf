"""SASRec (kgrec.models.sasrec): learns a ring walk MostPop cannot, save/reload, no test leak, config checks."""

import dataclasses

import numpy as np
import pytest
import torch

import kgrec
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError
from kgrec.models.sasrec import SASRecModel, last_items, training_windows, user_sequences
from kgrec.nn.sasrec import SASRec

# tiny and quick: one fit takes well under a second on one CPU thread
TINY = dict(dim=16, num_layers=2, num_heads=2, dropout=0.0, max_len=12, lr=3e-3, batch_size=32, epochs=40,
            patience=5, device="cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ring_kg(n_users: int = 80, n_items: int = 20, length: int = 10, seed: int = 4) -> KnowledgeGraph:
    """Every user walks the ring of items ``0, 1, ..., n_items - 1, 0, ...`` one step at a time from a
    random start, ``length`` steps with increasing times. A temporal 80/10/10 split gives each user
    8 train / 1 valid / 1 test item: the valid item follows the last training item and the test item
    follows the valid one. The rows are listed newest first, so row order is not time order.
    """
    rng = np.random.default_rng(seed)
    users = Vocab([f"http://x/u/{u:03d}" for u in range(n_users)], name="user")
    items = Vocab([f"http://x/i/{i:02d}" for i in range(n_items)], name="item")
    ents = Vocab(items.labels, sort=False, name="entity")
    rels = Vocab(["https://w3id.org/kgrec/vocab#next"], name="relation")
    uu, ii, tt = [], [], []
    for u in range(n_users):
        start = int(rng.integers(n_items))
        for j in reversed(range(length)):
            uu.append(u)
            ii.append((start + j) % n_items)
            tt.append(1_600_000_000 + 3600 * u + 60 * j)
    return KnowledgeGraph(users, items, ents, rels, torch.zeros(0, 3, dtype=torch.long),
                          Interactions.from_lists(uu, ii, None, tt))


@pytest.fixture(scope="module")
def ring():
    kg = ring_kg()
    sp = kgrec.split(kg, "temporal", seed=0)
    rec = kgrec.Recommender("sasrec", **TINY).fit(kg, sp)
    return kg, sp, rec


def test_learns_the_ring_walk_that_mostpop_cannot(ring):
    kg, sp, rec = ring
    assert len(sp.valid) == len(sp.test) == kg.num_users  # 8 / 1 / 1 per user
    hit_valid = rec.evaluate(sp, ks=(1,), part="valid")["hit@1"]
    hit_test = rec.evaluate(sp, ks=(1,), part="test")["hit@1"]
    pop = kgrec.Recommender("mostpop").fit(kg, sp).evaluate(sp, ks=(1,), part="test")["hit@1"]
    assert hit_valid >= 0.8
    assert hit_test >= 0.8  # two steps ahead of the training sequence, the valid item masked
    assert pop < 0.2

    info = rec.fit_info
    for key in ("best_epoch", "epochs_run", "seconds_per_epoch_median", "seconds_to_best", "fit_seconds",
                "peak_rss_mb", "device", "valid", "curve", "hit_epoch_cap"):
        assert key in info
    assert info["device"] == "cpu"
    assert 1 <= info["best_epoch"] <= info["epochs_run"] <= TINY["epochs"]
    assert info["hit_epoch_cap"] == (info["best_epoch"] == TINY["epochs"])
    assert len(info["curve"]) == info["epochs_run"]
    assert all("ndcg@10" in row["valid"] for row in info["curve"])
    # the best epoch's weights are restored: validation now gives the recorded best NDCG@10
    best = max(row["valid"]["ndcg@10"] for row in info["curve"])
    assert info["valid"]["ndcg@10"] == pytest.approx(best)
    assert rec.evaluate(sp, ks=(10,), part="valid")["ndcg@10"] == pytest.approx(best)
    if info["epochs_run"] < TINY["epochs"]:  # stopped early: exactly `patience` epochs after the best
        assert info["epochs_run"] - info["best_epoch"] == TINY["patience"]


def test_bce_loss_without_validation_runs_every_epoch():
    kg = ring_kg()
    sp = kgrec.split(kg, "temporal", ratios=(0.9, 0.0, 0.1), seed=0)
    assert len(sp.valid) == 0
    rec = kgrec.Recommender("sasrec", **{**TINY, "epochs": 30, "loss": "bce"}).fit(kg, sp)
    info = rec.fit_info
    assert info["epochs_run"] == info["best_epoch"] == 30 and info["hit_epoch_cap"] is True
    assert rec.evaluate(sp, ks=(1,), part="test")["hit@1"] >= 0.8


def test_save_then_load_gives_identical_scores(ring, tmp_path):
    kg, sp, rec = ring
    rec.save(tmp_path / "m")
    back = kgrec.Recommender.load(tmp_path / "m")
    users = torch.arange(kg.num_users)
    assert torch.equal(rec.score(users), back.score(users))
    assert back.fit_info["best_epoch"] == rec.fit_info["best_epoch"]
    assert rec.recommend(["http://x/u/000"], k=3) == back.recommend(["http://x/u/000"], k=3)


def test_fit_never_reads_the_test_part(ring):
    kg, sp, rec = ring
    g = torch.Generator().manual_seed(7)
    other = Interactions(sp.test.user.flip(0), torch.randint(0, kg.num_items, (len(sp.test),), generator=g),
                         sp.test.weight, sp.test.time + 1e6)
    rec2 = kgrec.Recommender("sasrec", **TINY).fit(kg, dataclasses.replace(sp, test=other))
    users = torch.arange(kg.num_users)
    assert torch.equal(rec.score(users), rec2.score(users))
    assert rec2.fit_info["best_epoch"] == rec.fit_info["best_epoch"]


def test_custom_validation_metric_selects_epochs(ring):
    kg, sp, _ = ring
    calls = []

    def validate(r):
        calls.append(1)
        return {"select": -abs(len(calls) - 3)}  # best at the third validation

    rec = kgrec.Recommender("sasrec", **{**TINY, "patience": 2}).fit(kg, sp, validate=validate, metric="select")
    assert rec.fit_info["best_epoch"] == 3 and rec.fit_info["epochs_run"] == 5
    with pytest.raises(KgrecError, match="'metric'"):
        kgrec.Recommender("sasrec", **{**TINY, "epochs": 1}).fit(kg, sp, metric="nope@3")


@pytest.mark.parametrize("params, name", [
    ({"dim": 16, "num_heads": 3}, "num_heads"),
    ({"max_len": 0}, "max_len"),
    ({"loss": "bpr"}, "loss"),
    ({"dropout": 1.0}, "dropout"),
    ({"half_life_days": 30.0}, "half_life_days"),
])
def test_bad_config_names_the_parameter(params, name):
    with pytest.raises(KgrecError, match=f"'{name}'"):
        kgrec.Recommender("sasrec", **params)


def test_sequences_follow_time_with_stable_ties_and_row_order_without_time():
    # user 0: times 5, 1, 1, 3 -> rows 1, 2 (tie: row order), 3, 0; user 1 has no rows; user 2: one row
    inter = Interactions.from_lists([0, 0, 0, 2, 0], [10, 11, 12, 13, 14], None, [5.0, 1.0, 1.0, 9.0, 3.0])
    indptr, items = user_sequences(inter, 3)
    assert indptr.tolist() == [0, 4, 4, 5]
    assert items.tolist() == [11, 12, 14, 10, 13]
    no_time = Interactions.from_lists([0, 0, 0, 2, 0], [10, 11, 12, 13, 14])
    assert user_sequences(no_time, 3)[1].tolist() == [10, 11, 12, 14, 13]
    # shifted by one, left-padded, the newest last; only the last max_len kept
    assert last_items(indptr, items, 3).tolist() == [[13, 15, 11], [0, 0, 0], [0, 0, 14]]
    # every prefix predicts its next item exactly once: targets 13, 15, 11 of user 0
    inputs, targets = training_windows(indptr, items, 2)
    assert inputs.tolist() == [[13, 15], [0, 12]]
    assert targets.tolist() == [[15, 11], [0, 13]]


def test_attention_is_causal_and_ignores_left_padding():
    torch.manual_seed(0)
    net = SASRec(num_items=30, dim=16, num_layers=2, num_heads=4, dropout=0.0, max_len=8).eval()
    seq = torch.tensor([[0, 0, 3, 7, 1, 9, 4, 2]])
    with torch.no_grad():
        h = net(seq)
        changed = seq.clone()
        changed[0, 6:] = torch.tensor([20, 21])
        h2 = net(changed)
        short = net(seq[:, 2:])  # the same items without the padding columns
    assert h.shape == (1, 8, 16)
    assert torch.allclose(h[0, :6], h2[0, :6], atol=1e-6)  # positions <= 5 never see later items
    assert not torch.allclose(h[0, 6:], h2[0, 6:])
    assert torch.all(h[0, :2] == 0)  # padded positions are zero
    assert torch.allclose(h[:, 2:], short, atol=1e-5)
    assert torch.isfinite(net(torch.zeros(2, 8, dtype=torch.long))).all()  # empty sequences stay finite


def test_registered_and_scores_have_catalogue_shape(ring):
    from kgrec.models import MODELS

    assert MODELS["sasrec"] is SASRecModel
    kg, _, rec = ring
    assert "max_len" in kgrec.Recommender.params_of("sasrec")
    assert rec.score(torch.tensor([0, 5, 7])).shape == (3, kg.num_items)
