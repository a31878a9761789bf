import pytest
import torch

from kgrec.data.graph import Interactions, KnowledgeGraph, collaborative_edges
from kgrec.data.vocab import Vocab
from kgrec.errors import CheckpointError, UnknownIRIError
from tests.conftest import two_cluster_kg


def test_vocab_sorted_and_deterministic():
    a = Vocab(["c", "a", "b", "a"], name="item")
    assert a.labels == ["a", "b", "c"]
    assert a.id("c") == 2 and a[1] == "b" and len(a) == 3
    assert a == Vocab(["b", "c", "a"])
    assert a.ids(["b", "a"]).tolist() == [1, 0]
    with pytest.raises(UnknownIRIError, match="unknown item 'z'"):
        a.id("z")
    assert Vocab.from_list(["z", "y"]).labels == ["z", "y"]  # saved order kept


def test_graph_counts_edges_and_roundtrip(tmp_path):
    kg = two_cluster_kg()
    s = kg.stats()
    assert (s["users"], s["items"], s["entities"], s["relations"], s["triples"]) == (12, 8, 10, 1, 8)
    assert s["interactions"] == 12 * 3 and s["items_with_text"] == 8
    ei, et = kg.edge_index()
    assert ei.shape == (2, 16) and et.tolist() == [0] * 8 + [1] * 8
    assert torch.equal(ei[:, 8:], ei[:, :8].flip(0))
    kg.save(tmp_path / "g")
    kg2 = KnowledgeGraph.load(tmp_path / "g")
    assert kg2.users == kg.users and kg2.entities == kg.entities
    assert torch.equal(kg2.triples, kg.triples) and torch.equal(kg2.interactions.time, kg.interactions.time)
    assert kg2.literals == kg.literals
    with pytest.raises(CheckpointError, match="graph.json"):
        KnowledgeGraph.load(tmp_path / "nothing")


def test_items_must_lead_entities():
    items = Vocab(["b"])
    with pytest.raises(ValueError, match="first entities"):
        KnowledgeGraph(Vocab(["u"]), items, Vocab(["a", "b"]), Vocab([]), torch.empty(0, 3, dtype=torch.long),
                       Interactions.empty())


def test_collaborative_edges_train_only():
    kg = two_cluster_kg()
    train = kg.interactions.select(torch.arange(10))
    ei, et, n, types = collaborative_edges(kg, train)
    assert n == kg.num_entities + kg.num_users and types == 4
    assert ei.shape[1] == 16 + 20
    ui = ei[:, et == 2]
    assert torch.equal(ui[0] - kg.num_entities, train.user) and torch.equal(ui[1], train.item)


def test_hetero_and_networkx_views():
    kg = two_cluster_kg()
    data = kg.to_hetero_data()
    assert data["user"].num_nodes == 12 and data["item"].num_nodes == 8 and data["entity"].num_nodes == 2
    assert data["user", "interacts", "item"].edge_index.shape == (2, 36)
    assert data["item", "genre", "entity"].edge_index.shape == (2, 8)
    g = kg.to_networkx()
    assert g.number_of_nodes() == 22 and g.number_of_edges() == 8 + 36
