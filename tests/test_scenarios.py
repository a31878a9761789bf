"""Multi-scenario data, scenario-aware training and transfer (kgrec.data.scenarios, scenario-mf)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import kgrec
from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.mapping import Mapping
from kgrec.data.scenarios import assign_domains, few_shot, first_per_pair, limit_per_user, select, target_test
from kgrec.data.splits import Split
from kgrec.data.vocab import Vocab
from kgrec.errors import KgrecError, MappingError

TTL = """
@prefix kgr: <https://w3id.org/kgrec/vocab#> .
@prefix ex: <http://example.org/> .
ex:m1 a kgr:Item ; kgr:genre ex:Comedy .
ex:m2 a kgr:Item ; kgr:genre ex:Drama .
ex:m3 a kgr:Item ; kgr:genre ex:Comedy , ex:Drama .
ex:m4 a kgr:Item ; kgr:genre ex:Horror .
ex:r1 a kgr:Interaction ; kgr:user ex:u1 ; kgr:item ex:m1 ; kgr:rating 4 .
ex:r2 a kgr:Interaction ; kgr:user ex:u1 ; kgr:item ex:m2 ; kgr:rating 5 .
ex:r3 a kgr:Interaction ; kgr:user ex:u2 ; kgr:item ex:m3 ; kgr:rating 3 .
ex:r4 a kgr:Interaction ; kgr:user ex:u2 ; kgr:item ex:m4 ; kgr:rating 2 .
ex:t1 a ex:TagApplication ; ex:by ex:u1 ; ex:on ex:m3 .
ex:t2 a ex:TagApplication ; ex:by ex:u2 ; ex:on ex:m1 .
ex:t3 a ex:TagApplication ; ex:by ex:u2 ; ex:on ex:m2 .
"""

RULES = [
    {"name": "rating", "class": "kgr:Interaction", "agent": "kgr:user", "object": "kgr:item",
     "weight": "kgr:rating", "scenario": "rating"},
    {"name": "tag", "class": "ex:TagApplication", "agent": "ex:by", "object": "ex:on", "scenario": "tag"},
]
PREFIXES = {"ex": "http://example.org/"}


def _load(tmp_path, mapping: dict) -> KnowledgeGraph:
    path = tmp_path / "two.ttl"
    path.write_text(TTL)
    return kgrec.load(str(path), mapping=mapping)


def _pairs(kg: KnowledgeGraph, inter: Interactions) -> set[tuple[str, str]]:
    return {(kg.users[u].rsplit("/", 1)[1], kg.items[i].rsplit("/", 1)[1])
            for u, i in zip(inter.user.tolist(), inter.item.tolist())}


# ------------------------------------------------------------------------------------ data model
def test_two_behaviour_scenarios_load_with_ids_and_counts(tmp_path):
    kg = _load(tmp_path, {"prefixes": PREFIXES, "interactions": RULES})
    assert kg.scenarios == ["rating", "tag"]  # sorted names
    assert len(kg.interactions) == 7
    assert torch.bincount(kg.interactions.scenario).tolist() == [4, 3]
    assert kg.stats()["interactions_per_scenario"] == {"rating": 4, "tag": 3}
    ratings = select(kg, kg.interactions, ["rating"])
    assert _pairs(kg, ratings) == {("u1", "m1"), ("u1", "m2"), ("u2", "m3"), ("u2", "m4")}
    assert _pairs(kg, select(kg, kg.interactions, "tag")) == {("u1", "m3"), ("u2", "m1"), ("u2", "m2")}
    assert sorted(ratings.weight.tolist()) == [2.0, 3.0, 4.0, 5.0]
    # the scenario survives save/load and splitting
    kg.save(tmp_path / "g")
    back = KnowledgeGraph.load(tmp_path / "g")
    assert back.scenarios == ["rating", "tag"]
    assert torch.equal(back.interactions.scenario, kg.interactions.scenario)
    sp = kgrec.split(kg, "random", ratios=(0.5, 0.25, 0.25), seed=1)
    parts = sp.train.concat(sp.valid).concat(sp.test)
    assert sorted(zip(parts.user.tolist(), parts.item.tolist(), parts.scenario.tolist())) == \
        sorted(zip(kg.interactions.user.tolist(), kg.interactions.item.tolist(), kg.interactions.scenario.tolist()))


def test_default_mapping_keeps_one_scenario(tmp_path):
    path = tmp_path / "one.ttl"
    path.write_text(TTL)
    kg = kgrec.load(str(path))
    assert kg.scenarios == ["default"]
    assert kg.interactions.scenario is None
    assert "interactions_per_scenario" not in kg.stats()
    assert kg.interactions.scenario_ids.tolist() == [0] * len(kg.interactions)
    kg.save(tmp_path / "g")
    assert "scenarios" not in (tmp_path / "g" / "graph.json").read_text()
    assert "scenarios" not in Mapping().to_dict()


def test_item_domains_from_genre(tmp_path):
    mapping = {"prefixes": PREFIXES, "scenarios": {"item_predicate": "kgr:genre",
                                                   "domains": {"comedy": ["ex:Comedy"], "drama": ["ex:Drama"]}}}
    kg = _load(tmp_path, mapping)
    assert kg.scenarios == ["comedy", "drama", "other"]
    # m3 is a comedy and a drama: the first domain written wins; m4 (horror) is in 'other'
    per = {s: _pairs(kg, select(kg, kg.interactions, s)) for s in kg.scenarios}
    assert per == {"comedy": {("u1", "m1"), ("u2", "m3")}, "drama": {("u1", "m2")}, "other": {("u2", "m4")}}
    # the same from a loaded graph, with the domains in the other order
    kg2 = assign_domains(kgrec.load(str(tmp_path / "two.ttl")), "https://w3id.org/kgrec/vocab#genre",
                         [("drama", ["http://example.org/Drama"]), ("comedy", ["http://example.org/Comedy"])],
                         rest="rest")
    per2 = {s: _pairs(kg2, select(kg2, kg2.interactions, s)) for s in kg2.scenarios}
    assert per2 == {"comedy": {("u1", "m1")}, "drama": {("u1", "m2"), ("u2", "m3")}, "rest": {("u2", "m4")}}


def test_mapping_dict_round_trip_keeps_scenarios():
    m = Mapping.from_dict({"prefixes": PREFIXES, "interactions": RULES})
    assert [r.scenario for r in m.interactions] == ["rating", "tag"]
    assert Mapping.from_dict(m.to_dict()) == m
    d = Mapping.from_dict({"scenarios": {"item_predicate": "kgr:genre", "domains": {"a": "kgr:x"}}})
    assert Mapping.from_dict(d.to_dict()) == d


@pytest.mark.parametrize("mapping, key", [
    ({"interactions": [{**RULES[0], "scenario": "9lives"}]}, "interactions[0].scenario"),
    ({"interactions": [{**RULES[0], "scenario": ""}]}, "interactions[0].scenario"),
    ({"interactions": [{**RULES[0], "scenario": 3}]}, "interactions[0].scenario"),
    ({"scenarios": {"domains": {"comedy": ["ex:Comedy"]}}}, "scenarios.item_predicate"),
    ({"scenarios": {"item_predicate": "kgr:genre"}}, "scenarios.domains"),
    ({"scenarios": {"item_predicate": "kgr:genre", "domains": {"a b": ["ex:Comedy"]}}}, "scenarios.domains.a b"),
    ({"scenarios": {"item_predicate": "kgr:genre", "domains": {"comedy": []}}}, "scenarios.domains.comedy"),
    ({"scenarios": {"item_predicate": "kgr:genre", "domains": {"comedy": ["nope:Comedy"]}}},
     "scenarios.domains.comedy"),
    ({"scenarios": {"item_predicate": "kgr:genre", "domains": {"other": ["ex:Comedy"]}}}, "scenarios.domains.other"),
    ({"scenarios": {"item_predicate": "kgr:genre", "domains": {"c": ["ex:Comedy"]}}, "interactions": RULES},
     "interactions[0].scenario"),
    ({"scenarios": {"item_predicate": "kgr:genre", "domains": {"c": ["ex:Comedy"]}, "rest": "-x"}},
     "scenarios.rest"),
    ({"scenarios": {"kind": "genre"}}, "scenarios.kind"),
])
def test_bad_scenario_specs_name_the_mapping_key(mapping, key):
    with pytest.raises(MappingError) as e:
        Mapping.from_dict({"prefixes": PREFIXES, **mapping})
    assert f"'{key}'" in str(e.value)


def test_bad_scenario_names_at_use(tmp_path):
    kg = _load(tmp_path, {"prefixes": PREFIXES, "interactions": RULES})
    with pytest.raises(KgrecError, match="'scenarios' names scenario 'click'.*rating, tag"):
        select(kg, kg.interactions, ["click"])
    with pytest.raises(KgrecError, match="'scenarios' must be a non-empty list"):
        select(kg, kg.interactions, [])
    with pytest.raises(KgrecError, match="'scenarios.item_predicate'"):
        assign_domains(kg, "http://example.org/nope", [("a", ["http://example.org/Comedy"])])
    with pytest.raises(KgrecError, match="'target_scenario' must name one"):
        kgrec.Recommender("scenario-mf", epochs=1).fit(kg)
    with pytest.raises(KgrecError, match="'target_scenario' names scenario 'x'"):
        kgrec.Recommender("scenario-mf", epochs=1, target_scenario="x").fit(kg)
    with pytest.raises(KgrecError, match="'scenarios' names scenario 'x'"):
        kgrec.Recommender("bprmf", epochs=1).fit(kg, scenarios=["x"])
    with pytest.raises(KgrecError, match="'n' must be a positive integer"):
        limit_per_user(kg.interactions, 0)


def test_limit_per_user_is_nested_and_capped():
    inter = Interactions.from_lists([0] * 6 + [1] * 2 + [2], list(range(9)))
    one, two = limit_per_user(inter, 1, seed=3), limit_per_user(inter, 2, seed=3)
    assert torch.bincount(one.user).tolist() == [1, 1, 1]
    assert torch.bincount(two.user).tolist() == [2, 2, 1]
    assert set(one.item.tolist()) <= set(two.item.tolist())
    assert len(limit_per_user(inter, None)) == 9


def test_first_per_pair_keeps_the_earliest_event_of_each_pair_in_the_named_scenarios():
    nan = float("nan")
    #          0    1    2    3    4    5    6    7    8    9
    user = [0, 0, 0, 1, 1, 1, 1, 0, 2, 2]
    item = [1, 1, 1, 2, 2, 2, 2, 2, 0, 0]
    time = [10, 5, 3, nan, nan, 7, 7, 1, nan, 4]
    scen = [1, 1, 0, 1, 1, 0, 0, 1, 1, 1]  # 0 rating, 1 tag
    inter = Interactions.from_lists(user, item, time=time)
    inter.scenario = torch.tensor(scen)
    labels = ["http://x/i0", "http://x/i1", "http://x/i2"]
    kg = KnowledgeGraph(Vocab(["http://x/u0", "http://x/u1", "http://x/u2"], name="user"),
                        Vocab(labels, sort=False, name="item"), Vocab(labels, sort=False, name="entity"),
                        Vocab([], name="relation"), torch.empty(0, 3, dtype=torch.long), inter,
                        scenarios=["rating", "tag"])
    kg.interaction_text = ["t0", "t1", None, "t3", "t4", None, None, "t7", "t8", "t9"]
    # tag pairs: (0,1) rows 0,1 -> 1 (earlier); (1,2) rows 3,4 no time -> 3 (first); (0,2) row 7;
    # (2,0) rows 8 (no time), 9 -> 9. Ratings untouched, also the repeated (1,2) rows 5, 6.
    out = first_per_pair(kg, "tag")
    want = [1, 2, 3, 5, 6, 7, 9]
    assert out.interactions.user.tolist() == [user[k] for k in want]
    assert out.interactions.item.tolist() == [item[k] for k in want]
    assert out.interactions.scenario.tolist() == [scen[k] for k in want]
    assert out.interaction_text == [kg.interaction_text[k] for k in want]
    assert len(kg.interactions) == 10  # the input is unchanged
    both = first_per_pair(kg, ["rating", "tag"])
    assert both.interaction_text == [kg.interaction_text[k] for k in (1, 2, 3, 5, 7, 9)]  # row 6 repeats 5
    assert both.interactions.user.tolist() == [user[k] for k in (1, 2, 3, 5, 7, 9)]
    with pytest.raises(KgrecError, match="'names' names scenario 'x', which the graph does not have"):
        first_per_pair(kg, ["x"])


# ------------------------------------------------------------------------------- synthetic transfer
def _synthetic(related: bool, seed: int = 0, n_users: int = 240, groups: int = 6, per_group: int = 10):
    """Users in ``groups`` taste groups; source items 0..G*P-1, target items after them.

    Each user has 8 source interactions in their source group and 5 target interactions in their
    target group; the target group is the source group (``related``) or an independent draw.
    """
    rng = np.random.default_rng(seed)
    n_src = groups * per_group
    src_g = rng.integers(0, groups, n_users)
    tgt_g = src_g if related else rng.integers(0, groups, n_users)
    users, items, scen = [], [], []
    for u in range(n_users):
        for i in rng.choice(per_group, 8, replace=False):
            users.append(u), items.append(src_g[u] * per_group + i), scen.append(0)
        for i in rng.choice(per_group, 5, replace=False):
            users.append(u), items.append(n_src + tgt_g[u] * per_group + i), scen.append(1)
    inter = Interactions.from_lists(users, items)
    inter.scenario = torch.tensor(scen)
    n_items = 2 * n_src
    labels = [f"http://x/i{i:03d}" for i in range(n_items)]
    kg = KnowledgeGraph(Vocab([f"http://x/u{u:03d}" for u in range(n_users)], name="user"),
                        Vocab(labels, sort=False, name="item"), Vocab(labels, sort=False, name="entity"),
                        Vocab([], name="relation"), torch.empty(0, 3, dtype=torch.long), inter,
                        scenarios=["source", "target"])
    # per user: every source interaction trains; target: 2 train, 1 valid, 2 test
    is_t = inter.scenario == 1
    t_idx = torch.nonzero(is_t).flatten()
    pos = torch.arange(t_idx.numel()) % 5
    empty = torch.zeros(len(inter), dtype=torch.bool)
    valid, test = empty.clone(), empty.clone()
    valid[t_idx[pos == 2]] = True
    test[t_idx[pos >= 3]] = True
    train = ~(valid | test)
    sp = Split("synthetic", seed, (0.6, 0.2, 0.2), n_users, n_items, inter.select(train), inter.select(valid),
               inter.select(test))
    return kg, sp


MF = {"dim": 16, "lr": 0.05, "reg": 0.0, "epochs": 40, "patience": 40, "eval_every": 5, "batch_size": 512,
      "seed": 0, "device": "cpu"}


def _transfer_vs_alone(related: bool, n: int) -> tuple[float, float, float]:
    kg, sp = _synthetic(related)
    fs = few_shot(kg, sp, "target", n)
    ev = target_test(kg, sp, "target")
    alone = kgrec.Recommender("bprmf", **MF).fit(kg, fs, scenarios=["target"])
    transfer = kgrec.Recommender("bprmf", **MF).fit(kg, fs, scenarios=["source"])
    transfer.update(kg, fs, scenarios=["target"], epochs=10, replay=0.2)
    joint = kgrec.Recommender("scenario-mf", target_scenario="target", **MF).fit(kg, fs)
    return tuple(r.evaluate(ev, ks=(10,))["ndcg@10"] for r in (alone, transfer, joint))


def test_transfer_beats_target_alone_with_rich_source_behaviour():
    alone, transfer, joint = _transfer_vs_alone(related=True, n=1)
    # 60 target candidates, 2 relevant: random ranking gives NDCG@10 about 0.14
    assert alone < 0.35
    assert transfer > alone + 0.3
    assert joint > alone + 0.3


def test_unrelated_source_gives_no_clear_gain():
    alone, transfer, joint = _transfer_vs_alone(related=False, n=1)
    assert transfer < alone + 0.1
    assert joint < alone + 0.1


def test_scenario_mf_scores_target_block_and_round_trips(tmp_path):
    kg, sp = _synthetic(True, n_users=60)
    rec = kgrec.Recommender("scenario-mf", target_scenario="target", **{**MF, "epochs": 2}).fit(kg, sp)
    est = rec.estimator
    assert est.meta["scenarios"] == ["target", "source"]
    u_vec, _ = est.embed()
    assert u_vec.shape == (2 * 60, 16)
    # block 0 = target: score(u) uses the shared vector plus the target offset of user u
    m = est.module
    expected = (m.user_emb.weight[:3] + m.offset.weight[:3]) @ m.item_emb.weight.t()
    assert torch.allclose(rec.score(torch.arange(3)), expected.detach(), atol=1e-6)
    # the history used for masking is the target one only
    hist = est.history(torch.tensor([0]))[0].nonzero().flatten().tolist()
    tr = sp.train
    assert hist == sorted(tr.item[(tr.user == 0) & (tr.scenario == 1)].tolist())
    rec.save(tmp_path / "m")
    back = kgrec.Recommender.load(tmp_path / "m")
    assert torch.allclose(back.score(torch.arange(3)), rec.score(torch.arange(3)))
    assert "scenario-mf" in repr(back) and str(m).startswith("ScenarioMF(60, 120, scenarios=2")


def test_fit_on_one_scenario_sees_only_its_interactions():
    kg, sp = _synthetic(True, n_users=30)
    rec = kgrec.Recommender("mostpop").fit(kg, sp, scenarios=["source"])
    seen = rec.estimator.history(torch.arange(30))
    assert int(seen[:, 60:].sum()) == 0  # no target item in any history
    assert int(seen.sum()) == int((sp.train.scenario == 0).sum())


def _cli_data(tmp_path) -> list:
    """The two-scenario graph (TTL) and its mapping as files; returns the ``--mapping`` arguments."""
    (tmp_path / "two.ttl").write_text(TTL)
    (tmp_path / "m.toml").write_text(
        'extends = "kgrec"\n[prefixes]\nex = "http://example.org/"\n'
        '[[interactions]]\nname = "rating"\nclass = "kgr:Interaction"\nagent = "kgr:user"\nobject = "kgr:item"\n'
        'scenario = "rating"\n'
        '[[interactions]]\nname = "tag"\nclass = "ex:TagApplication"\nagent = "ex:by"\nobject = "ex:on"\n'
        'scenario = "tag"\n')
    return ["--mapping", tmp_path / "m.toml"]


def run(*argv) -> tuple[int, str]:
    """``kgrec ARGV`` -> (exit status, stderr)."""
    import contextlib
    import io

    from kgrec.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


def test_cli_train_on_one_scenario_then_update_on_another(tmp_path):
    import json

    data = _cli_data(tmp_path)
    code, _ = run("train", tmp_path / "two.ttl", *data, "--model", "bprmf", "--scenario", "rating",
                  "--ratios", "1,0,0", "--param", "epochs=2", "--out", tmp_path / "src")
    assert code == 0
    assert json.loads((tmp_path / "src" / "metrics.json").read_text())["split"]["train"] == 4  # the 4 ratings
    code, _ = run("update", tmp_path / "src", "--data", tmp_path / "two.ttl", *data, "--scenario", "tag",
                  "--epochs", "1", "--out", tmp_path / "dst")
    assert code == 0
    info = kgrec.Recommender.load(tmp_path / "dst").fit_info["update"]
    # (u2, m1) and (u2, m2) are new; (u1, m3) is new too: the 3 tag applications, none seen before
    assert info["new_interactions"] == 3 and info["old_interactions"] == 4
    code, err = run("update", tmp_path / "src", "--data", tmp_path / "two.ttl", *data, "--scenario", "click",
                    "--out", tmp_path / "bad")
    assert code == 2 and "'--scenario' names scenario 'click'" in err and "rating, tag" in err
    code, err = run("train", tmp_path / "two.ttl", *data, "--model", "mostpop", "--scenario", "click", "--out",
                    tmp_path / "bad")
    assert code == 2 and "'--scenario' names scenario 'click'" in err and "rating, tag" in err
    assert not (tmp_path / "bad").exists()


def test_cli_evaluate_on_some_scenarios(tmp_path):
    import json

    data = _cli_data(tmp_path)
    split = ["--ratios", "0.4,0.2,0.4", "--seed", "55", "--ks", "1,3"]
    code, err = run("train", tmp_path / "two.ttl", *data, "--model", "mostpop", *split, "--out", tmp_path / "all")
    assert code == 0, err
    code, err = run("train", tmp_path / "two.ttl", *data, "--model", "mostpop", *split, "--scenario", "tag",
                    "--out", tmp_path / "tag")
    assert code == 0, err

    def evaluate(model: str, *scenarios: str) -> dict:
        out = tmp_path / f"ev-{model}-{'-'.join(scenarios)}"
        args = [a for s in scenarios for a in ("--scenario", s)]
        code, err = run("evaluate", tmp_path / model, tmp_path / "two.ttl", *args, "--ks", "1,3", "--out", out)
        assert code == 0, err
        return json.loads((out / "evaluation.json").read_text())

    kg = kgrec.load(str(tmp_path / "two.ttl"), mapping=str(tmp_path / "m.toml"))
    sp = kgrec.split(kg, "random", ratios=(0.4, 0.2, 0.4), seed=55)
    # this split (u1 has 3 interactions: 1/1/1; u2 has 4: 1/1/2): train (u1, m2) rating + (u2, m2) tag;
    # valid (u1, m1) rating + (u2, m1) tag; test (u1, m3) tag + 2 ratings
    assert _pairs(kg, sp.train) == {("u1", "m2"), ("u2", "m2")}
    assert _pairs(kg, sp.valid) == {("u1", "m1"), ("u2", "m1")}
    assert _pairs(kg, select(kg, sp.test, "tag")) == {("u1", "m3")} and len(sp.test) == 3
    ev = evaluate("all", "tag")
    assert ev["scenarios"] == ["tag"] and ev["split"]["test"] == 1 and ev["split"]["train"] == 1
    # MostPop (m2 first, then ties by id m1, m3, m4); u1 has no tag training or validation item to mask
    # (their valid (u1, m1) is a rating), so their tag test item m3 is 3rd: hit@1 0, hit@3 1, NDCG@3 = 1 / log2(4) = 0.5
    m = ev["metrics"]
    assert (m["hit@1"], m["hit@3"], m["recall@3"], m["ndcg@3"]) == (0.0, 1.0, 1.0, pytest.approx(0.5))
    # a model trained with --scenario tag evaluates as train reported it
    recorded = json.loads((tmp_path / "tag" / "metrics.json").read_text())
    assert recorded["scenarios"] == ["tag"]
    assert ev_eq(evaluate("tag", "tag")["metrics"], recorded["test"])
    # without --scenario, evaluate uses the scenarios the model was trained on (metrics.json)
    by_default = evaluate("tag")
    assert by_default["scenarios"] == ["tag"] and ev_eq(by_default["metrics"], recorded["test"])
    # both scenarios together == no --scenario
    assert ev_eq(evaluate("all", "rating", "tag")["metrics"], evaluate("all")["metrics"])
    assert evaluate("all")["scenarios"] is None
    code, err = run("evaluate", tmp_path / "all", tmp_path / "two.ttl", "--scenario", "click", "--out", tmp_path / "x")
    assert code == 2 and "'--scenario' names scenario 'click'" in err and "rating, tag" in err
    assert not (tmp_path / "x" / "evaluation.json").exists()


def ev_eq(a: dict, b: dict) -> bool:
    """The same metrics (those with a cut-off) in both."""
    keys = {k for k in a if "@" in k}
    return keys == {k for k in b if "@" in k} and all(a[k] == pytest.approx(b[k]) for k in keys)


def test_block_sampler_draws_each_scenario_negatives_from_its_own_items():
    from kgrec.data.sampling import BlockNegativeSampler

    # 2 real users; block 0 (target) knows items 0-3, block 1 (source) items 10-19
    train = Interactions.from_lists([0, 0, 1, 1, 2, 3, 3], [0, 1, 2, 3, 10, 11, 19])
    s = BlockNegativeSampler(train, 20, block_size=2, seed=0)
    users = torch.tensor([0, 1, 2, 3] * 50)
    neg = s.sample(users, 3)
    assert neg.shape == (200, 3)
    seen = {(0, 0), (0, 1), (1, 2), (1, 3), (2, 10), (3, 11), (3, 19)}
    for u, row in zip(users.tolist(), neg.tolist()):
        pool = {0, 1, 2, 3} if u < 2 else {10, 11, 19}
        assert set(row) <= pool and not any((u, i) in seen for i in row)


# --------------------------------------------------------------------------------- scenario-mf update
def _two_groups(n_per: int = 10) -> KnowledgeGraph:
    """Users 0..n-1 like group A, n..2n-1 group B, in both scenarios. Items: source A 0-3, source B 4-7,
    target A 8-11, target B 12-15; every user has the 4 source and 4 target items of their group.
    The scenarios are listed as ["source", "target"].
    """
    users, items, scen = [], [], []
    for u in range(2 * n_per):
        g = 0 if u < n_per else 1
        for j in range(4):
            users += [u, u]
            items += [g * 4 + j, 8 + g * 4 + j]
            scen += [0, 1]
    inter = Interactions.from_lists(users, items)
    inter.scenario = torch.tensor(scen)
    labels = [f"http://x/i{i:02d}" for i in range(16)]
    return KnowledgeGraph(Vocab([f"http://x/u{u:02d}" for u in range(2 * n_per)], name="user"),
                          Vocab(labels, sort=False, name="item"), Vocab(labels, sort=False, name="entity"),
                          Vocab([], name="relation"), torch.empty(0, 3, dtype=torch.long), inter,
                          scenarios=["source", "target"])


def _later(kg: KnowledgeGraph, pairs, scenarios=("target", "source"), new_items=()) -> KnowledgeGraph:
    """A later graph: the old users plus 'unew', the old items plus ``new_items``, and the
    interactions ``[(user id, item id, scenario name), ...]``; its scenarios are numbered in the
    order ``scenarios`` (not the old graph's), so they must be matched by name.
    """
    users = Vocab(kg.users.labels + ["http://x/unew"], sort=False, name="user")
    items = Vocab(kg.items.labels + list(new_items), sort=False, name="item")
    inter = Interactions.from_lists([u for u, _, _ in pairs], [i for _, i, _ in pairs])
    inter.scenario = torch.tensor([list(scenarios).index(s) for _, _, s in pairs])
    return KnowledgeGraph(users, items, Vocab(items.labels, sort=False, name="entity"), kg.relations, kg.triples,
                          inter, scenarios=list(scenarios))


SMF = {"dim": 8, "lr": 0.05, "reg": 0.0, "epochs": 30, "batch_size": 64, "seed": 0, "device": "cpu",
       "offset_reg": 0.1}
#: the new user 20 ('unew') takes source A items 0-2 and target B items 12-14
NEW_USER = [(20, 0, "source"), (20, 1, "source"), (20, 2, "source"),
            (20, 12, "target"), (20, 13, "target"), (20, 14, "target")]


def test_scenario_mf_update_grows_tables_and_keeps_each_interaction_in_its_scenario():
    kg = _two_groups()
    rec = kgrec.Recommender("scenario-mf", target_scenario="target", **SMF).fit(kg)
    old = rec.estimator.module
    later = _later(kg, NEW_USER + [(3, 15, "source")], new_items=["http://x/i99"])
    new = copy.deepcopy(rec).update(later, epochs=0)  # no training: the grown tables only
    info = new.fit_info["update"]
    assert info["new_users"] == 1 and info["new_items"] == 1 and info["new_interactions"] == 7
    assert info["old_interactions"] == 160  # 20 users x 8 items, each in its own scenario
    m = new.estimator.module
    assert m.user_emb.weight.shape == (21, 8) and m.item_emb.weight.shape == (17, 8)
    assert m.offset.weight.shape == (2 * 21, 8)
    assert torch.equal(m.user_emb.weight[:20], old.user_emb.weight)
    assert torch.equal(m.item_emb.weight[:16], old.item_emb.weight)
    # offsets: block b of user u is row b * U + u, before (U = 20) and after (U = 21) the update
    for b in (0, 1):
        assert torch.equal(m.offset.weight[b * 21: b * 21 + 20], old.offset.weight[b * 20: b * 20 + 20])
        assert not m.offset.weight[b * 21 + 20].any()  # the new user's offsets are zero
    # the new user starts from the mean of their new items (both scenarios)
    assert torch.allclose(m.user_emb.weight[20], old.item_emb.weight[[0, 1, 2, 12, 13, 14]].mean(0), atol=1e-6)
    # the history over virtual users: scenarios matched by name (the later graph numbers them the other way)
    est = new.estimator
    block = {s: b for b, s in enumerate(est.meta["scenarios"])}
    assert est.meta["scenarios"] == ["target", "source"] and est.meta["num_users"] == 21

    def hist(b: int, u: int) -> list[int]:
        return est.history(torch.tensor([b * 21 + u]))[0].nonzero().flatten().tolist()

    assert hist(block["target"], 20) == [12, 13, 14] and hist(block["source"], 20) == [0, 1, 2]
    assert hist(block["source"], 3) == [0, 1, 2, 3, 15] and hist(block["target"], 3) == [8, 9, 10, 11]
    # recommend leaves out every item the user has in the graph, in either scenario (the update's
    # new interactions included); the model's history (the masks of its evaluation) is the target's only
    got = dict(new.recommend("http://x/unew", k=17)["http://x/unew"])
    assert not {f"http://x/i{i:02d}" for i in (12, 13, 14, 0, 1, 2)} & set(got)
    assert len(got) == 17 - 6
    assert "http://x/i00" in dict(new.recommend("http://x/unew", k=17, exclude_seen=False)["http://x/unew"])
    # the same pair in the same scenario is not new; in the other scenario it is
    again = copy.deepcopy(rec).update(_later(kg, [(0, 0, "source"), (0, 0, "target")]), epochs=0)
    assert again.fit_info["update"]["new_interactions"] == 1
    assert again.fit_info["update"]["known_interactions_skipped"] == 1


def test_scenario_mf_update_trains_the_new_users_scenarios_apart(tmp_path):
    """Known answer: the new user's target items are B items, their source items A items. Before
    training their vector is one mean of both; after the update their target ranking puts the
    remaining target B item 15 first and their source ranking the remaining source A item 3 first.
    """
    kg = _two_groups()
    rec = kgrec.Recommender("scenario-mf", target_scenario="target", **SMF).fit(kg)
    rec.update(_later(kg, NEW_USER), epochs=20, replay=0.2, l2_pull=0.01)
    u_vec, i_vec = rec.estimator.embed()
    target = (u_vec[20] @ i_vec.t()).detach()
    source = (u_vec[21 + 20] @ i_vec.t()).detach()
    assert int(target[[8, 9, 10, 11, 15]].argmax()) == 4  # item 15
    assert int(source[[3, 4, 5, 6, 7]].argmax()) == 0  # item 3
    targets = [f"http://x/i{i:02d}" for i in range(8, 16)]
    top = rec.recommend("http://x/unew", k=3, candidates=targets)["http://x/unew"]
    assert top[0][0] == "http://x/i15" and len(top) == 3  # 12-14 are masked (seen in the target)
    # save / reload gives the same top-K for old and new users
    rec.save(tmp_path / "m")
    back = kgrec.Recommender.load(tmp_path / "m")
    users = ["http://x/unew", "http://x/u00", "http://x/u15"]
    assert back.recommend(users, k=5) == rec.recommend(users, k=5)
    assert back.estimator.meta["scenarios"] == ["target", "source"]


def test_scenario_mf_update_l2_pull_holds_the_old_rows_and_offsets():
    kg = _two_groups()
    rec = kgrec.Recommender("scenario-mf", target_scenario="target", **SMF).fit(kg)
    m0 = rec.estimator.module
    moved = {}
    for pull in (0.0, 10.0):
        m = copy.deepcopy(rec).update(_later(kg, NEW_USER), epochs=20, l2_pull=pull).estimator.module
        moved[pull] = [float((a - b).detach().norm()) for a, b in ((m.user_emb.weight[:20], m0.user_emb.weight),
                                                          (m.item_emb.weight[:16], m0.item_emb.weight),
                                                          (m.offsets_per_user()[:20], m0.offsets_per_user()))]
    # every old table (shared users, items, each scenario's offsets) moves less under the pull
    assert all(p < 0.5 * f for p, f in zip(moved[10.0], moved[0.0])), moved


def test_scenario_mf_update_refuses_a_scenario_the_model_does_not_have():
    kg = _two_groups()
    rec = kgrec.Recommender("scenario-mf", target_scenario="target", **{**SMF, "epochs": 1}).fit(kg)
    est = rec.estimator
    later = _later(kg, [(0, 9, "click"), (1, 12, "target")], scenarios=("click", "target"))
    with pytest.raises(KgrecError, match=r"scenario\(s\) 'click'.*its scenarios: target, source"):
        rec.update(later, epochs=0)
    assert rec.estimator is est and len(rec.users) == 20  # unchanged
    # keeping the known scenario only works
    rec.update(later, epochs=0, scenarios=["target"])
    assert rec.fit_info["update"]["new_interactions"] == 1
