import json

import pytest
import torch

import kgrec
from kgrec.data.splits import Split
from kgrec.errors import CheckpointError, KgrecError, UnknownIRIError
from kgrec.evaluation.evaluator import evaluate_topk
from tests.conftest import topk_in_fresh_process, two_cluster_kg

FAST = {
    "mostpop": {},
    "itemknn": {"k": 5, "shrink": 0.0},
    "ease": {"reg": 1.0},
    "bprmf": {"epochs": 200, "lr": 0.05, "reg": 0.0, "dim": 8, "batch_size": 8, "patience": 200, "seed": 0},
    "lightgcn": {"epochs": 60, "lr": 0.05, "reg": 0.0, "dim": 8, "batch_size": 8, "patience": 100, "seed": 0},
}


def withheld_split(kg):
    """All interactions in train; each user's withheld cluster item is their test item."""
    n_per, items_per = kg.num_users // 2, kg.num_items // 2
    users = torch.arange(kg.num_users)
    items = torch.tensor([(0 if u < n_per else items_per) + u % items_per for u in range(kg.num_users)])
    test = kgrec.Interactions.from_lists(users, items, None, torch.zeros(kg.num_users))
    empty = kgrec.Interactions.empty()
    return Split("withheld", 0, (0.9, 0.0, 0.1), kg.num_users, kg.num_items, kg.interactions, empty, test)


@pytest.mark.parametrize("model", ["itemknn", "ease", "bprmf", "lightgcn"])
def test_cluster_members_get_their_withheld_item_first(model):
    kg = two_cluster_kg()
    sp = withheld_split(kg)
    rec = kgrec.Recommender(model, **FAST[model]).fit(kg, sp)
    top = rec.recommend(kg.users.labels, k=1)
    for u, iri in enumerate(kg.users.labels):
        expected = sp.test.item[u].item()
        assert top[iri][0][0] == kg.items[expected], (model, u, top[iri])
    m = rec.evaluate(sp, ks=(1, 5))
    assert m["hit@1"] == 1.0 and m["users"] == kg.num_users


def test_mostpop_ranks_by_count_and_excludes_seen():
    kg = two_cluster_kg()
    rec = kgrec.Recommender("mostpop").fit(kg, withheld_split(kg))
    out = rec.recommend(kg.users[0], k=8)[kg.users[0]]
    seen = set(kg.interactions.item[kg.interactions.user == 0].tolist())
    assert not seen & {kg.items.id(i) for i, _ in out}
    assert len(out) == 8 - len(seen)
    scores = [s for _, s in out]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("model", ["mostpop", "itemknn", "ease", "bprmf", "lightgcn"])
def test_save_load_identical_topk(tmp_path, model):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=1)
    params = dict(FAST[model], **({"epochs": 3} if "epochs" in FAST[model] else {}))
    rec = kgrec.Recommender(model, **params).fit(kg, sp)
    rec.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["model"] == model and meta["users"] == kg.users.labels
    back = kgrec.Recommender.load(tmp_path / "m")
    a = rec.recommend(kg.users.labels, k=4)
    b = back.recommend(kg.users.labels, k=4)
    assert [[i for i, _ in a[u]] for u in a] == [[i for i, _ in b[u]] for u in b]
    timing = ("seconds", "users_per_second")  # wall-clock figures differ between two calls
    before, after = rec.evaluate(sp), back.evaluate(sp)
    assert set(before) == set(after)
    for key in set(before) - set(timing):
        assert after[key] == pytest.approx(before[key], nan_ok=True, abs=1e-6), key


def test_reload_in_fresh_process(tmp_path):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", seed=1)
    rec = kgrec.Recommender("lightgcn", **dict(FAST["lightgcn"], epochs=3)).fit(kg, sp)
    rec.save(tmp_path / "m")
    users = kg.users.labels[:3]
    expected = {u: [i for i, _ in v] for u, v in rec.recommend(users, k=3).items()}
    assert topk_in_fresh_process(tmp_path / "m", users, k=3) == expected


def test_evaluate_agrees_with_independent_recount_of_recommend():
    kg = two_cluster_kg(n_per=10, items_per=6)
    sp = kgrec.split(kg, "random", seed=4)
    rec = kgrec.Recommender("ease", reg=1.0).fit(kg, sp)
    m = rec.evaluate(sp, ks=(3,))
    # recommend() leaves out all the user's items; the test protocol masks train + valid only ->
    # turn the known items off and pass train + valid as the exclusions
    lists = {}
    for u in torch.unique(sp.test.user).tolist():
        masked = [kg.items[i] for part in (sp.train, sp.valid) for i in part.item[part.user == u].tolist()]
        out = rec.recommend(kg.users[u], k=3, exclude_seen=False, exclude={kg.users[u]: masked})[kg.users[u]]
        lists[u] = [kg.items.id(i) for i, _ in out]
    ref = evaluate_topk(lists, sp, ks=(3,))
    for key in ("recall@3", "ndcg@3", "precision@3", "hit@3", "mrr@3"):
        assert m[key] == pytest.approx(ref[key], abs=1e-6)


def test_errors():
    kg = two_cluster_kg()
    with pytest.raises(KgrecError, match="'model' must be one of"):
        kgrec.Recommender("nope")
    with pytest.raises(KgrecError, match="unknown parameter.*'dims'"):
        kgrec.Recommender("bprmf", dims=3)
    rec = kgrec.Recommender("mostpop")
    with pytest.raises(KgrecError, match="not fitted"):
        rec.recommend("x")
    rec.fit(kg)
    with pytest.raises(UnknownIRIError, match="unknown user 'http://nobody'"):
        rec.recommend("http://nobody")
    with pytest.raises(KgrecError, match="'k' must be a positive integer"):
        rec.recommend(kg.users[0], k=0)
    other = kgrec.split(two_cluster_kg(n_per=3), "random")
    with pytest.raises(KgrecError, match="split the same graph"):
        rec.evaluate(other)


def test_checkpoint_errors_keep_old_model(tmp_path):
    kg = two_cluster_kg()
    rec = kgrec.Recommender("ease", reg=1.0).fit(kg)
    rec.save(tmp_path / "m")
    with pytest.raises(CheckpointError, match="not a directory"):
        kgrec.Recommender.load(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{")
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"xx")
    with pytest.raises(CheckpointError, match="invalid JSON"):
        kgrec.Recommender.load(tmp_path / "bad")
    # a failing save (a tensor safetensors cannot store) leaves the previous checkpoint intact
    rec.estimator.context["bad"] = torch.zeros(2, 2).t()[0:1, :1].expand(3, 3)
    try:
        rec.save(tmp_path / "m")
    except Exception:
        pass
    assert kgrec.Recommender.load(tmp_path / "m").recommend(kg.users[0], k=2)


def test_checkpoint_every_best_epoch_and_resume_after_crash(tmp_path):
    kg = two_cluster_kg(n_per=10, items_per=6)
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=2)
    params = dict(FAST["lightgcn"], epochs=12, patience=100)

    def crash_at_epoch_5(line):
        if line.startswith("epoch    5"):
            raise KeyboardInterrupt("simulated crash")

    rec = kgrec.Recommender("lightgcn", **params)
    with pytest.raises(KeyboardInterrupt):
        rec.fit(kg, sp, log=crash_at_epoch_5, checkpoint_dir=tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert 1 <= saved["progress"]["epoch"] <= 5
    resumed = kgrec.Recommender("lightgcn", **params).fit(kg, sp, checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert resumed.fit_info["resumed_from_epoch"] == saved["progress"]["epoch"]
    assert resumed.fit_info["epochs_run"] == 12 - saved["progress"]["epoch"]
    assert resumed.fit_info["valid"]["ndcg@10"] >= saved["progress"]["valid"]["ndcg@10"]
    with pytest.raises(CheckpointError, match="other settings for dim"):
        kgrec.Recommender("lightgcn", **dict(params, dim=4)).fit(kg, sp, checkpoint_dir=tmp_path / "ckpt", resume=True)


def test_epochs_selected_on_a_custom_validation_metric(cluster_kg):
    sp = kgrec.split(cluster_kg, "random", seed=0)
    calls = []

    def validate(rec):  # a metric that peaks at the third validation, whatever the model does
        calls.append(rec.estimator.fit_info)
        return {"auc": 1.0 if len(calls) == 3 else 0.5, "other": "text is not recorded"}

    params = dict(FAST["bprmf"], epochs=20, eval_every=2, patience=4)
    rec = kgrec.Recommender("bprmf", **params).fit(cluster_kg, sp, validate=validate, metric="auc")
    info = rec.fit_info
    assert info["best_epoch"] == 6 and info["valid"]["auc"] == 1.0
    assert info["epochs_run"] == 14 and len(calls) == 7  # stopped after 4 validations without a gain
    assert info["curve"][5]["valid"] == {"auc": 1.0}
    with pytest.raises(KgrecError, match="'metric': validation gave no 'ndcg@10'"):
        kgrec.Recommender("bprmf", **params).fit(cluster_kg, sp, validate=validate)
