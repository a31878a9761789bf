import pytest
import torch

import kgrec
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.vocab import Vocab
from kgrec.nn.cke import CKE
from tests.conftest import two_cluster_kg
from tests.test_api import withheld_split

FAST = {"epochs": 150, "lr": 0.05, "reg": 0.1, "kg_weight": 5.0, "dim": 8, "relation_dim": 8, "batch_size": 8,
        "kg_batch_size": 16, "patience": 1000, "seed": 0}


@pytest.mark.parametrize("dim,relation_dim", [(8, 8), (6, 4)])
def test_shapes_and_repr(dim, relation_dim):
    m = CKE(5, 7, 10, 3, dim=dim, relation_dim=relation_dim)
    u, i = m()
    assert u.size() == (5, dim) and i.size() == (7, dim)
    h, r, t = torch.tensor([0, 8]), torch.tensor([2, 0]), torch.tensor([9, 1])
    assert m.kg_distance(h, r, t).size() == (2,)
    loss = m.kg_loss(h, r, t, torch.tensor([3, 4]))
    assert loss.dim() == 0 and loss.item() > 0
    assert "entities=10" in str(m) and f"relation_dim={relation_dim}" in str(m)
    with pytest.raises(ValueError, match="'num_entities'"):
        CKE(5, 7, 6, 3)


def test_transr_learns_true_tails():
    """After minimising the KG loss alone, each item is closer (TransR distance) to its own genre
    than to the other genre; at initialisation this does not hold for every item.
    """
    kg = two_cluster_kg()
    torch.manual_seed(0)
    m = CKE(kg.num_users, kg.num_items, kg.num_entities, kg.num_relations, dim=8, relation_dim=8)
    h, r, t = kg.triples.t()
    wrong = torch.where(t == t.max(), t.min(), t.max())  # the other genre entity

    def margin():
        with torch.no_grad():
            return m.kg_distance(h, r, wrong) - m.kg_distance(h, r, t)

    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    first = None
    for _ in range(150):
        neg = torch.randint(0, kg.num_entities, h.shape)
        loss = m.kg_loss(h, r, t, neg)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    assert (margin() > 0).all()


def cold_pair_kg() -> KnowledgeGraph:
    """two_cluster_kg plus one item per genre with no interaction at all (items 8 and 9)."""
    base = two_cluster_kg()
    items = Vocab(base.items.labels + ["http://x/item/cold-A", "http://x/item/cold-B"], sort=False, name="item")
    ents = Vocab(items.labels + ["http://x/genre/A", "http://x/genre/B"], sort=False, name="entity")
    ga, gb = len(items), len(items) + 1
    triples = [[i, 0, ga if (i < 4 or i == 8) else gb] for i in range(len(items))]
    inter = Interactions.from_lists(base.interactions.user, base.interactions.item, None, base.interactions.time)
    return KnowledgeGraph(base.users, items, ents, base.relations, torch.tensor(triples), inter)


def test_the_kg_is_a_cold_items_only_path():
    """Items 8 and 9 have no interaction. Without the KG term no gradient reaches their rows: they
    end exactly as initialised. With it, TransR ties each to its own genre (its true tail is nearer
    than the other genre). Their scores are not compared: with RecBole's Xavier initialisation the
    never-trained item offset is as large as the entity row on a 10-item table, so a cold item's
    score in CKE is mostly that random offset.
    """
    kg = cold_pair_kg()
    sp = kgrec.Split("all", 0, (1.0, 0.0, 0.0), kg.num_users, kg.num_items, kg.interactions,
                     Interactions.empty(), Interactions.empty())
    cold = torch.tensor([8, 9])

    def fit(kg_weight, epochs=FAST["epochs"]):
        return kgrec.Recommender("cke", **dict(FAST, kg_weight=kg_weight, epochs=epochs)).fit(kg, sp).estimator.module

    start, no_kg, m = fit(0.0, epochs=1), fit(0.0), fit(5.0)  # same seed: the same initial rows
    for table in ("entity_emb", "item_emb"):
        assert torch.equal(getattr(no_kg, table).weight[cold], getattr(start, table).weight[cold])
        assert not torch.equal(getattr(no_kg, table).weight[:8], getattr(start, table).weight[:8])  # warm rows train
    assert not torch.equal(m.entity_emb.weight[cold], start.entity_emb.weight[cold])
    ga, gb = kg.num_entities - 2, kg.num_entities - 1
    rel = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        own = m.kg_distance(cold, rel, torch.tensor([ga, gb]))
        other = m.kg_distance(cold, rel, torch.tensor([gb, ga]))
    assert (own < other).all()


def test_withheld_item_first_and_ndcg_via_evaluator():
    kg = two_cluster_kg()
    sp = withheld_split(kg)
    rec = kgrec.Recommender("cke", **FAST).fit(kg, sp)
    m = rec.evaluate(sp, ks=(1, 5))
    # one test item per user at rank 1: hit@1 = 1 and NDCG@5 = (1/log2(2)) / (1/log2(2)) = 1
    assert m["hit@1"] == 1.0 and m["ndcg@5"] == pytest.approx(1.0) and m["users"] == kg.num_users
    assert rec.fit_info["curve"] and rec.fit_info["epochs_run"] == FAST["epochs"]


def test_save_load_identical_scores(tmp_path):
    kg = two_cluster_kg()
    rec = kgrec.Recommender("cke", **dict(FAST, epochs=5)).fit(kg, withheld_split(kg))
    rec.save(tmp_path / "m")
    back = kgrec.Recommender.load(tmp_path / "m")
    users = torch.arange(kg.num_users)
    assert torch.equal(rec.score(users), back.score(users))
