import math

import pytest
import torch

import kgrec
from kgrec.api import select_half_life
from kgrec.data.decay import DAY, decay_weights, latest_pair_times
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError

CUT = 1_600_000_000.0


def drift_kg(n_bg: int = 5, old_a=(0, 1, 2, 3), recent_b=(6, 7)) -> KnowledgeGraph:
    """Items 0-5 form cluster A, 6-11 cluster B. ``n_bg`` background users per cluster took every
    item of their cluster a day before the cut. The last user (``u/zz``) took A items 1000 days
    before the cut and B items a day before it: their taste drifted from A to B.
    """
    n_users = 2 * n_bg + 1
    users = Vocab([f"http://x/u/{u:02d}" for u in range(n_users - 1)] + ["http://x/u/zz"], name="user")
    items = Vocab([f"http://x/i/{i:02d}" for i in range(12)], name="item")
    ents = Vocab(items.labels + ["http://x/g/A", "http://x/g/B"], sort=False, name="entity")
    rels = Vocab(["https://w3id.org/kgrec/vocab#genre"], name="relation")
    triples = torch.tensor([[i, 0, 12 + (i >= 6)] for i in range(12)])
    uu, ii, tt = [], [], []
    for u in range(2 * n_bg):
        for j in range(6):
            uu.append(u)
            ii.append(j + (0 if u < n_bg else 6))
            tt.append(CUT - DAY * (1 + 0.01 * j))
    target = n_users - 1
    for i in old_a:
        uu.append(target), ii.append(i), tt.append(CUT - 1000 * DAY)
    for i in recent_b:
        uu.append(target), ii.append(i), tt.append(CUT)
    return KnowledgeGraph(users, items, ents, rels, triples, Interactions.from_lists(uu, ii, None, tt))


def all_train(kg: KnowledgeGraph) -> Split:
    e = Interactions.empty()
    return Split("all", 0, (1.0, 0.0, 0.0), kg.num_users, kg.num_items, kg.interactions, e, e)


def test_weights_halve_at_the_half_life():
    t = torch.tensor([CUT, CUT - 30 * DAY, CUT - 60 * DAY, math.nan, CUT + DAY], dtype=torch.float64)
    w = decay_weights(t, 30.0, reference=CUT)
    assert w.tolist() == pytest.approx([1.0, 0.5, 0.25, 1.0, 1.0])
    assert decay_weights(t, None).tolist() == [1.0] * 5
    assert decay_weights(t, 0).tolist() == [1.0] * 5
    # reference = each user's own latest interaction
    user = torch.tensor([0, 0, 1, 1, 1])
    t2 = torch.tensor([CUT, CUT - 10 * DAY, CUT - 100 * DAY, CUT - 110 * DAY, CUT - 120 * DAY], dtype=torch.float64)
    assert decay_weights(t2, 10.0, user=user, decay_from="user").tolist() == pytest.approx([1, 0.5, 1, 0.5, 0.25])
    assert decay_weights(t2, 10.0).tolist()[2] == pytest.approx(2.0 ** -10)


def test_latest_pair_times_in_csr_order():
    u, i = torch.tensor([1, 0, 1, 0]), torch.tensor([2, 3, 2, 1])
    t = torch.tensor([5.0, 7.0, 9.0, math.nan], dtype=torch.float64)
    out = latest_pair_times(u, i, t, num_items=4)  # pairs (0,1) (0,3) (1,2)
    assert math.isnan(out[0]) and out[1:].tolist() == [7.0, 9.0]


@pytest.mark.parametrize("model,params", [("ease", {"reg": 1.0}), ("itemknn", {"k": 20, "shrink": 0.0})])
def test_decay_follows_recent_interests_closed_form(model, params):
    kg = drift_kg()
    sp = all_train(kg)
    target = "http://x/u/zz"
    off = kgrec.Recommender(model, **params).fit(kg, sp).recommend(target, k=3)[target]
    on = kgrec.Recommender(model, half_life_days=30, **params).fit(kg, sp).recommend(target, k=3)[target]
    cluster = lambda iri: "A" if int(iri.rsplit("/", 1)[1]) < 6 else "B"  # noqa: E731
    assert [cluster(i) for i, _ in off] == ["A"] * 2 + [cluster(off[2][0])] and cluster(off[0][0]) == "A"
    assert [cluster(i) for i, _ in on] == ["B"] * 3


def test_decayed_popularity_prefers_recent_hits():
    # item 0: 4 interactions 2 years old; item 1: 3 interactions today
    u = [0, 1, 2, 3, 4, 5, 6]
    i = [0, 0, 0, 0, 1, 1, 1]
    t = [CUT - 730 * DAY] * 4 + [CUT] * 3
    kg = drift_kg()
    kg.interactions = Interactions.from_lists(u, i, None, t)
    sp = all_train(kg)
    user = kg.users[10]  # no history: pure popularity
    off = kgrec.Recommender("mostpop").fit(kg, sp).recommend(user, k=2)[user]
    on = kgrec.Recommender("mostpop", half_life_days=365).fit(kg, sp).recommend(user, k=2)[user]
    assert [x for x, _ in off] == [kg.items[0], kg.items[1]] and off[0][1] == 4.0
    assert [x for x, _ in on] == [kg.items[1], kg.items[0]]
    assert on[1][1] == pytest.approx(4 * 2 ** (-730 / 365)) and on[0][1] == pytest.approx(3.0)


def test_decay_follows_recent_interests_bprmf():
    kg = drift_kg()
    sp = all_train(kg)
    target = "http://x/u/zz"
    params = {"epochs": 150, "lr": 0.05, "reg": 0.0, "dim": 8, "batch_size": 16, "seed": 0}
    cluster = lambda iri: "A" if int(iri.rsplit("/", 1)[1]) < 6 else "B"  # noqa: E731
    on = kgrec.Recommender("bprmf", half_life_days=30, **params).fit(kg, sp).recommend(target, k=3)[target]
    off = kgrec.Recommender("bprmf", **params).fit(kg, sp).recommend(target, k=1)[target]
    assert [cluster(i) for i, _ in on] == ["B"] * 3
    assert cluster(off[0][0]) == "A"


def test_decay_errors_and_selection_on_validation():
    with pytest.raises(KgrecError, match="'half_life_days' must be a positive number"):
        kgrec.Recommender("ease", half_life_days=-3)
    with pytest.raises(KgrecError, match="'decay_from' must be one of cut, user"):
        kgrec.Recommender("lightgcn", half_life_days=3, decay_from="item")
    kg = drift_kg()
    # validation: the target's remaining B items; decay must win the selection
    target = kg.num_users - 1
    valid = Interactions.from_lists([target] * 4, [8, 9, 10, 11], None, [CUT + DAY] * 4)
    sp = Split("v", 0, (0.9, 0.1, 0.0), kg.num_users, kg.num_items, kg.interactions, valid, Interactions.empty())
    rec, trials = select_half_life("ease", kg, sp, grid=(None, 30.0), reg=1.0)
    assert [t["half_life_days"] for t in trials] == [None, 30.0]
    assert trials[1]["valid_ndcg@10"] > trials[0]["valid_ndcg@10"] and rec.config.half_life_days == 30.0
