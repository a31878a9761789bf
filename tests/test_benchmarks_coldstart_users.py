"""benchmarks/coldstart_users.py: the cold-start users protocol on a small graph, with known answers."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.vocab import Vocab

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import coldstart_users as cs  # noqa: E402

DAY = 86400.0


def taste_kg(n_users=30, per_cluster=30, seed=0) -> KnowledgeGraph:
    """Two genre clusters of ``per_cluster`` items; user u takes 4 + (u * 7) % 27 items of cluster u % 2
    (so some users keep more than 20 items after k) and one of the other cluster, a day apart; every
    item has a genre triple and a title.
    """
    rng = np.random.default_rng(seed)
    n_items = 2 * per_cluster
    users = Vocab([f"http://x/user/{u:02d}" for u in range(n_users)], name="user")
    items = Vocab([f"http://x/item/{i:02d}" for i in range(n_items)], name="item")
    ents = Vocab(items.labels + ["http://x/genre/A", "http://x/genre/B"], sort=False, name="entity")
    rels = Vocab(["https://w3id.org/kgrec/vocab#genre"], name="relation")
    triples = torch.tensor([[i, 0, n_items + (i >= per_cluster)] for i in range(n_items)])
    uu, ii, tt = [], [], []
    for u in range(n_users):
        own = (u % 2) * per_cluster + rng.choice(per_cluster, size=4 + (u * 7) % 27, replace=False)
        other = [((1 - u % 2) * per_cluster + int(rng.integers(per_cluster)))]
        for j, i in enumerate([*own.tolist(), *other]):
            uu.append(u), ii.append(i), tt.append(1.6e9 + DAY * (j + 0.5 * u))
    lits = {i: {"https://w3id.org/kgrec/vocab#title": [f"Item {i} ({'action' if i < per_cluster else 'romance'})"]}
            for i in range(n_items)}
    return KnowledgeGraph(users, items, ents, rels, triples, Interactions.from_lists(uu, ii, None, tt), literals=lits)


@pytest.fixture(scope="module")
def run(tiny_text_model):
    kg = taste_kg()
    sp, held = cs.held_out_split(kg)
    cases = cs.cold_cases(kg, sp, held, ks=(1, 3))
    kept = {}
    extra = dict(text_model=tiny_text_model, cache_dir="", dim=8, num_heads=2, epochs=2, batch_size=64,
                 text_segments=2, max_history=4)
    fits, scored = cs.fit_and_score(kg, sp, cases, seeds=(2020, 2021), extra=extra,
                                    keep=lambda label, rec: kept.setdefault(label, rec))
    return kg, sp, held, cases, fits, scored, kept


def test_held_out_users_and_the_per_user_time_cut(run):
    kg, sp, held, cases, *_ = run
    inter = kg.interactions
    assert held == sorted(np.random.default_rng(2020).choice(np.arange(30), size=6, replace=False).tolist())
    assert not set(sp.train.user.tolist() + sp.valid.user.tolist()) & set(held) and len(sp.test) == 0
    for u in set(range(30)) - set(held):  # the last ceil-ish 10% by time to validation: m - floor(0.9 m)
        m = int((inter.user == u).sum())
        times = inter.time[inter.user == u]
        valid_t = sp.valid.time[sp.valid.user == u]
        assert len(valid_t) == m - int(np.floor(0.9 * m)) and valid_t.min() > times.sort().values[-len(valid_t) - 1]
    assert len(sp.train) + len(sp.valid) == int((~torch.isin(inter.user, torch.tensor(held))).sum())
    # users counted per k: every held-out user keeps later training items here
    warm = set(sp.train.item.tolist())
    for k, group in cases.items():
        for c in group:
            order = sorted((t, i) for u, i, t in zip(inter.user.tolist(), inter.item.tolist(), inter.time.tolist())
                           if u == c.user)
            assert list(c.items) == [i for _, i in order[:k]]
            assert c.relevant == {i for _, i in order[k:] if i in warm} - set(c.items)


def test_oracle_recall_is_min_1_20_over_the_items_left(run):
    _, _, _, cases, _, scored, _ = run
    for k, group in cases.items():
        oracle = scored[k]["oracle"][0]
        expect = [min(1.0, 20 / len(c.relevant)) for c in group]
        assert any(e < 1 for e in expect)  # the graph has users with more than 20 items left
        assert oracle["recall@20"] == pytest.approx(expect) and oracle["ndcg@10"] == pytest.approx([1.0] * len(group))


def test_ease_fold_in_is_the_history_row_times_b(run):
    kg, sp, _, cases, _, scored, kept = run
    ease = kept["EASE"]
    reg = ease.estimator.config.reg
    # B by hand (Steck 2019): P = (X^T X + reg I)^-1, B = I - P / diag(P)
    x = np.zeros((kg.num_users, kg.num_items))
    x[sp.train.user.numpy(), sp.train.item.numpy()] = 1.0
    p = np.linalg.inv(x.T @ x + reg * np.eye(kg.num_items))
    b = np.eye(kg.num_items) - p / np.diag(p)[None, :]
    c = max(cases[3], key=lambda c: len(c.relevant))
    row = np.zeros(kg.num_items)
    row[list(c.items)] = 1.0
    by_hand = row @ b
    got = ease.recommend_for_history([kg.items[i] for i in c.items], times=list(c.times), k=kg.num_items)
    assert len(got) == kg.num_items - 3  # every item but the given ones
    for iri, score in got:
        assert score == pytest.approx(by_hand[kg.items.id(iri)], abs=1e-4)
    # the table's per-user figures are those of that ranking
    top = np.argsort(-np.where(row > 0, -np.inf, by_hand), kind="stable")[:20].tolist()
    mine = cs.per_user([top], [c])
    table = scored[3]["EASE"][0]
    at = table["users"].index(c.user)
    assert table["recall@20"][at] == pytest.approx(mine["recall@20"][0])
    assert table["ndcg@10"][at] == pytest.approx(mine["ndcg@10"][0])


def test_fits_follow_the_suite_search_and_the_summary_pairs_the_seeds(run):
    _, _, _, cases, fits, scored, _ = run
    by = {(f["model"], f["seed"]): f for f in fits}
    assert set(by) == {("MostPop", 2020), ("EASE", 2020), ("Hybrid", 2020), ("Hybrid", 2021)}
    assert by[("EASE", 2020)]["trials"] == 6 and len(by[("EASE", 2020)]["searched"]) == 6
    assert by[("Hybrid", 2020)]["trials"] == 6 and by[("Hybrid", 2021)]["role"] == "refit"
    chosen = {k: v for k, v in by[("Hybrid", 2020)]["chosen_params"].items() if k != "seed"}
    assert {k: v for k, v in by[("Hybrid", 2021)]["chosen_params"].items() if k != "seed"} == chosen
    rows = cs.summarise(scored)
    for row in rows:
        k = row["given k"]
        hyb = scored[k]["Hybrid"]
        assert row["users"] == len(cases[k]) and len(hyb) == 2
        means = [float(np.mean(r["recall@20"])) for r in hyb]
        assert row["Hybrid recall@20"] == pytest.approx((np.mean(means), np.std(means, ddof=1)))
        assert row["Hybrid / MostPop"] == pytest.approx(np.mean(means) / row["MostPop recall@20"][0])
        assert row["Hybrid % of oracle"] == pytest.approx(100 * np.mean(means) / row["oracle recall@20"][0])
    tabs = cs.tables(rows)
    assert [r["k"] for r in tabs["Recall@20"]] == [1, 3] and "verdict" in tabs["NDCG@10"][0]


def test_identical_per_user_figures_give_p_1_and_a_tie():
    a = {u: 0.1 * u for u in range(12)}
    out = cs.compare(a, dict(a), 0.0, 0.0)
    assert out["p"] == 1.0 and out["gap"] == 0.0 and out["verdict"] == "tie" and out["n"] == 12
    # a clear, consistent gain beyond the seed spread is "ahead"; within the spread, a tie
    b = {u: v - 0.05 - 0.001 * u for u, v in a.items()}
    assert cs.compare(a, b, 0.01, 0.0)["verdict"] == "ahead" and cs.compare(b, a, 0.01, 0.0)["verdict"] == "behind"
    assert cs.compare(a, b, 0.2, 0.0)["verdict"] == "tie"


def test_the_script_writes_json_markdown_and_png(tmp_path, tiny_text_model, monkeypatch):
    kg = taste_kg()
    monkeypatch.setattr(cs, "load_dataset", lambda name, root, cache: kg)
    code = cs.main(["--datasets", "taste", "--seeds", "2020", "--ks", "1,2", "--out-dir", str(tmp_path),
                    "--allow-dirty", "--param", f"text_model={tiny_text_model}", "--param", "cache_dir=",
                    "--param", "epochs=1", "--param", "dim=8", "--param", "num_heads=2"])
    assert code == 0
    for ext in ("json", "md", "png"):
        assert (tmp_path / f"dynamics-coldstart-users-taste.{ext}").is_file()
    md = (tmp_path / "dynamics-coldstart-users-taste.md").read_text()
    assert "Overrides (--param)" in md and "## NDCG@10 of the items left" in md and "## Fits" in md
    payload = json.loads((tmp_path / "dynamics-coldstart-users-taste.json").read_text())
    assert [r["k"] for r in payload["tables"]["Recall@20"]] == [1, 2]
    assert payload["command"].startswith("python benchmarks/coldstart_users.py --datasets taste")


def test_the_script_refuses_a_kgrec_from_another_checkout(tmp_path, monkeypatch, capsys):
    # an editable install of another checkout is imported before this one's unless the script puts
    # its own checkout first: the results would then name a commit whose code did not run
    assert Path(cs.kgrec.__file__).resolve().parents[1] == cs.ROOT
    monkeypatch.setattr(cs.kgrec, "__file__", str(tmp_path / "elsewhere" / "kgrec" / "__init__.py"))
    with pytest.raises(SystemExit):
        cs.main(["--datasets", "taste", "--out-dir", str(tmp_path), "--allow-dirty"])
    assert "not from this checkout" in capsys.readouterr().err and not list(tmp_path.glob("*.json"))
