"""Chunked full ranking: scoring users in batches gives the same top-K and metrics, bounded batches."""

import pytest

import kgrec
from kgrec.data.synthetic import generate
from kgrec.errors import KgrecError


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    path = tmp_path_factory.mktemp("chunk") / "g.nt.gz"
    generate(path, users=150, items=400, seed=1)
    kg = kgrec.load(path)
    split = kgrec.split(kg, "random", seed=0)
    return kg, split, kgrec.Recommender("ease", reg=10.0).fit(kg, split)


def _same(got, want):
    """Same users, same ranked items; scores equal up to float32 rounding (BLAS blocks by batch)."""
    assert list(got) == list(want)
    for u in want:
        assert [i for i, _ in got[u]] == [i for i, _ in want[u]]
        assert [s for _, s in got[u]] == pytest.approx([s for _, s in want[u]], rel=1e-5, abs=1e-6)


def test_recommend_chunked_equals_unchunked(fitted, monkeypatch):
    kg, _, rec = fitted
    users = kg.users.labels
    whole = rec.recommend(users, k=20, batch_size=10_000)
    cands = kg.items.labels[::3]
    whole_c = rec.recommend(users, k=20, candidates=cands, batch_size=10_000)
    sizes = []
    score = rec.estimator.score
    monkeypatch.setattr(rec.estimator, "score", lambda ids: sizes.append(len(ids)) or score(ids))
    _same(rec.recommend(users, k=20, batch_size=7), whole)
    _same(rec.recommend(users, k=20, candidates=cands, batch_size=32), whole_c)
    assert max(sizes) <= 32 and len(sizes) == -(-150 // 7) + -(-150 // 32)
    assert all(len(v) == 20 for v in whole.values())
    assert set(i for v in whole_c.values() for i, _ in v) <= set(cands)


def test_evaluate_chunked_equals_unchunked(fitted):
    _, split, rec = fitted
    a = rec.evaluate(split, ks=(10, 20), batch_size=5)
    b = rec.evaluate(split, ks=(10, 20), batch_size=4096)
    for key in ("seconds", "users_per_second"):
        a.pop(key), b.pop(key)
    assert a == b and a["users"] > 100


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_batch_size_checked(fitted, bad):
    kg, _, rec = fitted
    with pytest.raises(KgrecError, match="'batch_size'"):
        rec.recommend(kg.users.labels[:2], batch_size=bad)
