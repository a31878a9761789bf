"""benchmarks/continual.py: the continual protocol with validation on a small graph, with known answers."""

import json
import sys
from pathlib import Path

import pytest
import torch

from kgrec.data.graph import Interactions
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError
from tests.test_benchmarks_coldstart_users import taste_kg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import continual as ct  # noqa: E402


def test_time_blocks_cut_the_timeline_at_the_shares():
    kg = taste_kg()
    inter = kg.interactions
    blocks = ct.time_blocks(inter)
    n = len(inter)
    assert [len(b) for b in blocks] == [int(n * b) - int(n * a) for a, b in zip((0.0, *ct.SHARES[:-1]), ct.SHARES)]
    for a, b in zip(blocks[:-1], blocks[1:]):
        assert a.time.max() <= b.time.min()
    pairs = sorted(p for b in blocks for p in zip(b.user.tolist(), b.item.tolist(), b.time.tolist()))
    assert pairs == sorted(zip(inter.user.tolist(), inter.item.tolist(), inter.time.tolist()))


def test_window_split_holds_out_each_users_latest_tenth():
    kg = taste_kg()
    window = ct.time_blocks(kg.interactions)[0]
    sp = ct.window_split(kg, window, seed=2020)
    assert len(sp.train) + len(sp.valid) == len(window) and len(sp.test) == 0
    for u in set(window.user.tolist()):
        m = int((window.user == u).sum())
        tr_t = sp.train.time[sp.train.user == u]
        va_t = sp.valid.time[sp.valid.user == u]
        # RecBole rounding: floor(0.9 m) to train, the rest to validation; a lone interaction stays in train
        expected = 0 if m == 1 else m - int(0.9 * m)
        assert len(va_t) == expected, (u, m)
        if len(va_t):
            assert tr_t.max() <= va_t.min()


class ScoreTable:
    """A fitted-model stand-in: fixed scores ``[U, I]`` over the graph's own ids."""

    def __init__(self, kg, scores):
        self.users, self.items, self._scores = kg.users, kg.items, scores

    def score(self, users):
        return self._scores[users]


def toy():
    users = Vocab(["http://x/u0", "http://x/u1", "http://x/u2"], name="user")
    items = Vocab([f"http://x/i{j}" for j in range(12)], name="item")
    kg = type("KG", (), {"users": users, "items": items})()
    # the window: u0 saw items 0-9, u1 saw 0-1, u2 saw 0; item 10 and 11 never occur in it
    wu = [0] * 10 + [1, 1, 2]
    wi = list(range(10)) + [0, 1, 0]
    window = Interactions.from_lists(wu, wi, None, [float(t) for t in range(13)])
    # next block: u0 -> {10 (not a candidate), 2 (already seen)}, u1 -> {5, 6}, u2 -> {3}
    nxt = Interactions.from_lists([0, 0, 1, 1, 2], [10, 2, 5, 6, 3], None, [20.0] * 5)
    return kg, window, nxt


def test_block_eval_masks_window_pairs_and_keeps_window_items_as_candidates():
    kg, window, nxt = toy()
    scores = torch.zeros(3, 12)
    scores[:, 11] = 100.0  # not a window item: never a candidate, must not take a slot
    scores[1, 0] = 50.0  # u1's own window item: masked, must not take a slot
    scores[1, 5], scores[1, 6] = 10.0, 9.0  # u1's two relevant items first -> NDCG 1, Recall 1
    scores[2, 4], scores[2, 3] = 10.0, 9.0  # u2's relevant item second -> NDCG 1/log2(3)
    m = ct.block_eval(ScoreTable(kg, scores), kg, window, nxt, None)
    # u0's next items are a non-candidate and a seen item: u0 is not scored
    assert m["users"] == 2
    assert m["ndcg@10"] == pytest.approx((1.0 + 1.0 / torch.log2(torch.tensor(3.0)).item()) / 2)
    assert m["recall@20"] == pytest.approx(1.0)
    only_u2 = ct.block_eval(ScoreTable(kg, scores), kg, window, nxt, {2})
    assert only_u2["users"] == 1 and only_u2["ndcg@10"] == pytest.approx(1.0 / torch.log2(torch.tensor(3.0)).item())


def test_summaries_average_blocks_two_to_five_then_seeds():
    rows = []
    for seed, (retrain, update) in ((1, (0.2, 0.19)), (2, (0.2, 0.2))):
        for blk in range(1, 6):
            for variant, nd, secs in (("no update", 0.1, 0.0), ("full retrain", retrain, 100.0),
                                      ("refit_all", 0.25, 125.0), ("update()", 0.5 if blk == 1 else update, 10.0)):
                for group in ct.GROUPS:
                    rows.append({"seed": seed, "predicts block": blk, "variant": variant, "user group": group,
                                 "ndcg@10": nd, "recall@20": 0.0, "users": 7, "seconds": secs})
    seeds = ct.per_seed(rows)
    assert [r["update % of retrain ndcg"] for r in seeds] == pytest.approx([95.0, 95.0, 100.0, 100.0])
    assert all(r["update % of retrain time"] == pytest.approx(10.0) for r in seeds)
    assert [r["update % of refit_all ndcg"] for r in seeds] == pytest.approx([76.0, 76.0, 80.0, 80.0])
    assert all(r["update % of refit_all time"] == pytest.approx(8.0) for r in seeds)
    summary = ct.summarise(seeds)
    assert summary[0]["update % of retrain ndcg"].startswith("97.5000 ± 3.5355")
    assert summary[0]["target met vs retrain"] == "yes" and summary[0]["target met vs refit_all"] == "no"
    block = ct.block_table(rows)
    assert block[0]["users"] == "7" and len(block) == 5 * 4 * 2


def test_one_seed_runs_every_variant_on_every_block(tiny_text_model):
    kg = taste_kg()
    extra = dict(text_model=tiny_text_model, cache_dir="", dim=8, num_heads=2, epochs=2, batch_size=64,
                 text_segments=2, max_history=4)
    rows, fits = ct.run_seed(kg, 2020, epochs=1, replay=0.2, l2_pull=0.0, extra=extra)
    assert len(rows) == 5 * 4 * 2
    assert [f["window"] for f in fits] == ["0-0", "0-0 refit_all"] + [
        w for s in range(1, 5) for w in (f"0-{s}", f"0-{s} refit_all")]
    blocks = ct.time_blocks(kg.interactions)
    for s in range(5):
        fit, refit = fits[2 * s], fits[2 * s + 1]
        window = sum(len(b) for b in blocks[:s + 1])
        # the retrain holds out a validation part; refit_all trains on every window interaction
        assert fit["valid"] > 0 and fit["train"] + fit["valid"] == window
        assert refit["valid"] == 0 and refit["train"] == window
    refit_secs = [r["seconds"] for r in rows if r["variant"] == "refit_all" and r["user group"] == "all users"]
    retrain_secs = [r["seconds"] for r in rows if r["variant"] == "full retrain" and r["user group"] == "all users"]
    assert all(a > b for a, b in zip(refit_secs, retrain_secs))  # the refit's cost includes choosing its settings
    # block 1: every variant but refit_all is the base model (all users / earlier users)
    assert len({r["ndcg@10"] for r in rows if r["predicts block"] == 1 and r["variant"] != "refit_all"}) <= 2
    window = blocks[0].concat(blocks[1])
    seen = {(u, i) for u, i in zip(window.user.tolist(), window.item.tolist())}
    cands = set(window.item.tolist())
    expect = {u for u, i in zip(blocks[2].user.tolist(), blocks[2].item.tolist()) if (u, i) not in seen
              and i in cands and u in set(window.user.tolist())}
    got = [r["users"] for r in rows if r["predicts block"] == 2 and r["user group"] == "all users"]
    assert got == [len(expect)] * 4


def test_results_after_each_seed_say_when_seeds_are_missing(tmp_path):
    import argparse

    rows = []
    for blk in range(1, 6):
        for variant in ct.VARIANTS:
            for group in ct.GROUPS:
                rows.append({"seed": 2020, "trained on blocks": f"0-{blk - 1}", "predicts block": blk,
                             "variant": variant, "user group": group, "ndcg@10": 0.2, "recall@20": 0.1, "users": 5,
                             "seconds": 10.0 if variant == "update()" else 100.0})
    fits = [{"seed": 2020, "window": "0-0", "train": 9, "valid": 1, "best epoch": 2, "seconds": 1.0, "chosen": {}}]
    info = {"cpu": "cpu", "torch_threads": 1, "gpu": None, "commit": "abc", "date": "today", "dirty": False}
    args = argparse.Namespace(out_dir=str(tmp_path), update_epochs=5, replay=0.2, l2_pull=0.0)
    md = ct.write_dataset("movielens-100k", args, [], info, rows, fits, {}, [2020], [2020, 2021], 0.0)
    text = md.read_text(encoding="utf-8")
    assert md.name == "dynamics-continual-ml100k.md" and "**Partial: seeds 2020 of 2020, 2021**" in text
    assert (tmp_path / "dynamics-continual-ml100k.png").is_file()
    whole = ct.write_dataset("movielens-100k", args, [], info, rows, fits, {}, [2020], [2020], 0.0)
    assert "Partial" not in whole.read_text(encoding="utf-8")


def _seed_rows(seed, ndcg):
    rows = []
    for blk in range(1, 6):
        for variant in ct.VARIANTS:
            for group in ct.GROUPS:
                rows.append({"seed": seed, "trained on blocks": f"0-{blk - 1}", "predicts block": blk,
                             "variant": variant, "user group": group, "ndcg@10": ndcg, "recall@20": 0.1, "users": 5,
                             "seconds": 10.0 if variant == "update()" else 100.0})
    return rows


def _seed_file(folder, seed, ndcg, commit, **over):
    import argparse

    args = argparse.Namespace(out_dir=str(folder), update_epochs=5, replay=0.2, l2_pull=0.0, param=[])
    for k, v in over.items():
        setattr(args, k, v)
    fits = [{"seed": seed, "window": "0-0", "train": 9, "valid": 1, "best epoch": 2, "seconds": 1.0, "chosen": {}}]
    info = {"cpu": "cpu", "torch_threads": 1, "gpu": None, "commit": commit, "date": "today", "dirty": False}
    ct.write_dataset("movielens-100k", args, ["--seeds", str(seed)], info, _seed_rows(seed, ndcg), fits, {},
                     [seed], [seed], 0.0)
    return folder / "dynamics-continual-ml100k.json"


def _merge_args(tmp_path, files, seeds=""):
    import argparse

    return argparse.Namespace(out_dir=str(tmp_path / "out"), update_epochs=5, replay=0.2, l2_pull=0.0, param=[],
                              seeds=seeds, merge_from=[str(f) for f in files], allow_dirty=True,
                              data_root="unused", cache="unused")


def test_seeds_run_apart_are_folded_into_one_table_with_their_commits(tmp_path):
    a = _seed_file(tmp_path / "a", 2020, 0.2, "aaa")
    b = _seed_file(tmp_path / "b", 2021, 0.4, "bbb")
    (tmp_path / "out").mkdir()
    md = ct.run_dataset("movielens-100k", _merge_args(tmp_path, [a, b]), ["--seeds", ""])
    payload = json.loads(md.with_suffix(".json").read_text(encoding="utf-8"))
    assert payload["seeds_done"] == [2020, 2021] and [m["commit"] for m in payload["merged"]] == ["aaa", "bbb"]
    every = [r for r in payload["summary"] if r["user group"] == "all users"][0]
    assert every["seeds"] == 2 and every["full retrain ndcg@10"] == "0.3000 ± 0.1414"  # mean, std of 0.2 and 0.4
    text = md.read_text(encoding="utf-8")
    assert "Seed(s) 2020 folded in (`--merge-from`) from a run at commit aaa" in text
    assert "Seed(s) 2021 folded in" in text and "bbb" in text and "Partial" not in text


def test_merge_refuses_other_settings_a_seed_twice_and_nothing_to_report(tmp_path):
    a = _seed_file(tmp_path / "a", 2020, 0.2, "aaa")
    other = _seed_file(tmp_path / "c", 2021, 0.2, "ccc", replay=0.5)
    (tmp_path / "out").mkdir()
    with pytest.raises(KgrecError, match=r"dynamics-continual-ml100k.json: ran with replay=0.5"):
        ct.run_dataset("movielens-100k", _merge_args(tmp_path, [a, other]), [])
    with pytest.raises(KgrecError, match=r"seed\(s\) \[2020\] given twice"):
        ct.run_dataset("movielens-100k", _merge_args(tmp_path, [a, a]), [])
    with pytest.raises(KgrecError, match="nothing is given with '--merge-from'"):
        ct.run_dataset("movielens-100k", _merge_args(tmp_path, []), [])
    with pytest.raises(KgrecError, match=r"its dataset is 'movielens-100k', not 'movielens-small'"):
        ct.run_dataset("movielens-small", _merge_args(tmp_path, [a]), [])


def test_a_merged_file_folded_in_again_keeps_each_seeds_commit_and_bad_files_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(ct, "machine", lambda ignore=(): {"cpu": "cpu", "gpu": None, "commit": "mmm", "date": "today",
                                                          "dirty": False, "dirty_files": []})
    a = _seed_file(tmp_path / "a", 2020, 0.2, "aaa")
    b = _seed_file(tmp_path / "b", 2021, 0.4, "bbb")
    (tmp_path / "out").mkdir()
    first = ct.run_dataset("movielens-100k", _merge_args(tmp_path, [a]), [])  # made by this run's commit
    c = _seed_file(tmp_path / "c", 2022, 0.3, "ccc")
    args = _merge_args(tmp_path, [first.with_suffix(".json"), b, c])
    args.out_dir = str(tmp_path / "out2")
    (tmp_path / "out2").mkdir()
    payload = json.loads(ct.run_dataset("movielens-100k", args, []).with_suffix(".json").read_text(encoding="utf-8"))
    assert [(m["seeds"], m["commit"]) for m in payload["merged"]] == [([2020], "aaa"), ([2021], "bbb"),
                                                                       ([2022], "ccc")]
    bad = tmp_path / "bad.json"
    bad.write_text('{"dataset": "movielens-100k"}', encoding="utf-8")
    with pytest.raises(KgrecError, match=r"bad.json: not a result file of benchmarks/continual.py \(no machine"):
        ct.run_dataset("movielens-100k", _merge_args(tmp_path, [bad]), [])
