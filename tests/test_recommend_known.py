"""recommend() leaves out every item a user has in the fitted graph (train, valid and test alike),
plus per-call exclusions; the evaluation protocol is unchanged.
"""

import json

import pytest
import torch
from safetensors.torch import load_file

import kgrec
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.splits import Split
from kgrec.data.vocab import Vocab
from kgrec.errors import CheckpointError, KgrecError, UnknownIRIError
from kgrec.reports.run_details import run_details
from kgrec.training.checkpoint import save_checkpoint
from kgrec.training.checkpoint_schema import check_known

U = [f"http://x/user/u{u}" for u in range(5)]
I = [f"http://x/item/i{i}" for i in range(5)]


def popularity_kg():
    """Training popularity i0 = 4 > i1 = 3 > i2 = 2 > i4 = 1 > i3 = 0. User u0 trained on i4 only;
    i1 is their validation item and i0, the most popular, their test item.
    """
    train = {1: [0, 1, 2], 2: [0, 1, 2], 3: [0, 1], 4: [0], 0: [4]}
    tu = [u for u, its in train.items() for _ in its]
    ti = [i for its in train.values() for i in its]
    parts = {"train": (tu, ti), "valid": ([0], [1]), "test": ([0], [0])}
    inter = {k: Interactions.from_lists(u, i, None, [1000.0 + n for n in range(len(u))]) for k, (u, i) in parts.items()}
    everything = inter["train"].concat(inter["valid"]).concat(inter["test"])
    users, items = Vocab(U, name="user"), Vocab(I, name="item")
    ents = Vocab(I, sort=False, name="entity")
    rels = Vocab(["https://w3id.org/kgrec/vocab#genre"], name="relation")
    kg = KnowledgeGraph(users, items, ents, rels, torch.empty((0, 3), dtype=torch.long), everything)
    sp = Split("manual", 0, (0.8, 0.1, 0.1), 5, 5, inter["train"], inter["valid"], inter["test"])
    return kg, sp


@pytest.fixture
def mostpop():
    kg, sp = popularity_kg()
    return kg, sp, kgrec.Recommender("mostpop").fit(kg, sp)


def items_of(out, user):
    return [i for i, _ in out[user]]


def test_valid_and_test_items_are_left_out(mostpop):
    kg, sp, rec = mostpop
    out = rec.recommend(U[0], k=5)
    # i0 (test) would be top-1 by popularity and i1 (valid) second: both are the user's already
    assert items_of(out, U[0]) == [I[2], I[3]]
    assert items_of(rec.recommend(U[0], k=5, exclude_seen=False), U[0]) == [I[0], I[1], I[2], I[4], I[3]]
    assert items_of(rec.recommend(U[1], k=5), U[1]) == [I[4], I[3]]
    indptr, indices = rec.known_items
    assert indptr.tolist() == [0, 3, 6, 9, 11, 12] and indices[:3].tolist() == [0, 1, 4]


def test_evaluation_protocol_is_unchanged(mostpop):
    _, sp, rec = mostpop
    # the test masks train + valid only: u0's test item i0 is ranked first
    m = rec.evaluate(sp, ks=(1,))
    assert m["users"] == 1 and m["hit@1"] == 1.0


def test_exclude_list_mapping_and_candidates(mostpop):
    _, _, rec = mostpop
    assert items_of(rec.recommend(U[0], k=5, exclude=[I[2]]), U[0]) == [I[3]]
    out = rec.recommend([U[0], U[4]], k=5, exclude={U[0]: [I[3]], U[2]: [I[1]]})
    assert items_of(out, U[0]) == [I[2]] and items_of(out, U[4]) == [I[1], I[2], I[4], I[3]]
    # exclusions apply with exclude_seen=False too, and combine with candidates
    out = rec.recommend(U[0], k=5, exclude_seen=False, exclude=[I[0]], candidates=[I[0], I[1], I[3]])
    assert items_of(out, U[0]) == [I[1], I[3]]
    assert rec.recommend(U[0], k=5, exclude=[I[2], I[3]]) == {U[0]: []}


def test_exclude_errors(mostpop):
    _, _, rec = mostpop
    with pytest.raises(UnknownIRIError, match="unknown item 'http://x/item/none'"):
        rec.recommend(U[0], exclude=["http://x/item/none"])
    with pytest.raises(UnknownIRIError, match="unknown user 'http://x/user/none'"):
        rec.recommend(U[0], exclude={"http://x/user/none": [I[0]]})
    with pytest.raises(KgrecError, match="'exclude' must be a list of item IRIs"):
        rec.recommend(U[0], exclude=I[0])
    with pytest.raises(KgrecError, match="'exclude' as a mapping must map user IRIs to lists"):
        rec.recommend(U[0], exclude={U[0]: I[0]})


def test_save_load_keeps_the_known_items(mostpop, tmp_path):
    _, _, rec = mostpop
    rec.save(tmp_path / "m")
    back = kgrec.Recommender.load(tmp_path / "m")
    assert items_of(back.recommend(U[0], k=5), U[0]) == [I[2], I[3]]
    assert [t.tolist() for t in back.known_items] == [t.tolist() for t in rec.known_items]


def test_checkpoint_without_known_items_falls_back_to_training(mostpop, tmp_path):
    _, _, rec = mostpop
    rec._known = None  # what a checkpoint written before the known items were recorded holds
    rec.save(tmp_path / "old")
    back = kgrec.Recommender.load(tmp_path / "old")
    assert items_of(back.recommend(U[0], k=5), U[0]) == [I[0], I[1], I[2], I[3]]


def test_damaged_known_items_are_refused(tmp_path):
    good = {"known.indptr": torch.tensor([0, 1, 2]), "known.indices": torch.tensor([0, 1])}
    assert [t.tolist() for t in check_known(good, 2, 2, tmp_path / "m")] == [[0, 1, 2], [0, 1]]
    with pytest.raises(CheckpointError, match="'known.indptr': not the 3 row pointers"):
        check_known({**good, "known.indptr": torch.tensor([0, 2, 1])}, 2, 2, tmp_path / "m")
    with pytest.raises(CheckpointError, match=r"'known.indices': item ids must lie in \[0, 2\)"):
        check_known({**good, "known.indices": torch.tensor([0, 7])}, 2, 2, tmp_path / "m")


def test_header_with_wrong_known_shape_is_refused(mostpop, tmp_path):
    _, _, rec = mostpop
    rec.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    tensors = load_file(tmp_path / "m" / "model.safetensors")
    tensors["known.indptr"] = torch.tensor([0, 1])
    save_checkpoint(tmp_path / "bad", meta, tensors)
    with pytest.raises(CheckpointError, match=r"'known.indptr': torch.int64 \[2\], expected torch.int64 \[6\]"):
        kgrec.Recommender.load(tmp_path / "bad")


def test_index_leaves_out_the_same_items():
    kg, sp = popularity_kg()
    rec = kgrec.Recommender("bprmf", epochs=2, dim=4, batch_size=4, seed=0).fit(kg, sp)
    index = rec.build_index("flat")
    for kwargs in ({}, {"exclude": [I[3]]}, {"exclude": {U[0]: [I[2]]}}, {"exclude_seen": False}):
        got = rec.recommend(U, k=5, index=index, **kwargs)
        want = rec.recommend(U, k=5, **kwargs)
        assert {u: set(items_of(got, u)) for u in U} == {u: set(items_of(want, u)) for u in U}, kwargs
    assert set(items_of(rec.recommend(U[0], k=5, index=index), U[0])) == {I[2], I[3]}


def test_update_adds_new_interactions_to_the_known_items(mostpop):
    kg, _, rec = mostpop
    extra = Interactions.from_lists([0], [2], None, [5000.0])
    kg2 = KnowledgeGraph(kg.users, kg.items, kg.entities, kg.relations, kg.triples, kg.interactions.concat(extra))
    rec.update(kg2, extra)
    assert items_of(rec.recommend(U[0], k=5), U[0]) == [I[3]]


def test_report_samples_rank_as_the_evaluation(mostpop):
    """The report's sample top-10 masks training items only, so a test item can be a hit there."""
    kg, sp, rec = mostpop
    details = run_details({"mostpop": rec}, kg, sp, sample_users=1, ks=(1,))
    (sample,) = details["samples"]
    assert [(t["item"], t["hit"]) for t in sample["top"]["mostpop"]] == [
        (I[0], True), (I[1], False), (I[2], False), (I[3], False)]
