import sys

import pytest
import torch

import kgrec
from kgrec.errors import KgrecError
from kgrec.evaluation.rank import mask_seen, seen_csr, topk
from tests.conftest import synthetic_kg

faiss = pytest.importorskip("faiss")

from kgrec.ann import ItemIndex, recall_at_k  # noqa: E402


def _clustered(n_items=2000, n_users=64, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(20, dim, generator=g) * 3
    items = centres[torch.randint(0, 20, (n_items,), generator=g)] + torch.randn(n_items, dim, generator=g)
    users = torch.randn(n_users, dim, generator=g)
    return users, items


def test_flat_equals_full_ranking_with_masking():
    users, items = _clustered()
    g = torch.Generator().manual_seed(1)
    u = torch.randint(0, 64, (600,), generator=g)
    # the seen items include each user's best items, so masking changes the answer
    best = (users @ items.t()).topk(3, dim=1).indices
    u = torch.cat([u, torch.arange(64).repeat_interleave(3)])
    i = torch.cat([torch.randint(0, 2000, (600,), generator=g), best.reshape(-1)])
    indptr, indices = seen_csr(u, i, 64, 2000)
    ids = torch.arange(64)
    want_v, want_i = topk(mask_seen(users @ items.t(), ids, indptr, indices), 10)
    got_v, got_i = ItemIndex(items, "flat").search(users, 10, seen=(indptr, indices), users=ids)
    assert torch.equal(got_i, want_i)
    torch.testing.assert_close(got_v, want_v, rtol=1e-4, atol=1e-4)
    assert not bool((got_i.unsqueeze(2) == best.unsqueeze(1)).any())
    # without masking: the plain top-10
    _, plain = ItemIndex(items, "flat").search(users, 10)
    assert torch.equal(plain, topk(users @ items.t(), 10)[1])


def test_more_seen_than_catalogue_leaves_empty_slots():
    items = torch.eye(3)
    indptr, indices = seen_csr(torch.tensor([0, 0]), torch.tensor([0, 2]), 1, 3)
    v, i = ItemIndex(items).search(torch.tensor([[1.0, 2.0, 3.0]]), 3, seen=(indptr, indices), users=torch.tensor([0]))
    assert i.tolist() == [[1, -1, -1]] and v[0, 0] == 2.0 and bool(torch.isinf(v[0, 1:]).all())


@pytest.mark.parametrize("kind,opts,floor", [("ivf", {"nlist": 40, "nprobe": 40}, 1.0),
                                             ("ivf", {"nlist": 40, "nprobe": 4}, 0.7),
                                             ("hnsw", {"hnsw_m": 16, "ef_search": 64}, 0.75)])
def test_approximate_recall(kind, opts, floor):
    users, items = _clustered()
    exact = ItemIndex(items, "flat").search(users, 10)[1]
    approx = ItemIndex(items, kind, **opts).search(users, 10)[1]
    r = recall_at_k(approx, exact)
    print(f"recall@10 {kind} {opts}: {r:.3f}")  # reported with -s; the benchmark records them
    assert r >= floor - 1e-9  # nprobe = nlist searches every cell: exact


def test_recall_at_k_by_hand():
    assert recall_at_k(torch.tensor([[1, 2, 3]]), torch.tensor([[3, 4, 1]])) == pytest.approx(2 / 3)
    assert recall_at_k(torch.tensor([[1, -1]]), torch.tensor([[1, -1]])) == 1.0


def test_bad_arguments():
    items = torch.randn(10, 4)
    with pytest.raises(KgrecError, match="'kind'"):
        ItemIndex(items, "lsh")
    with pytest.raises(KgrecError, match="'nlist'"):
        ItemIndex(items, "ivf", nlist=11)
    with pytest.raises(KgrecError, match="'nprobe'"):
        ItemIndex(items, "ivf", nprobe=0)
    with pytest.raises(KgrecError, match="'user_vectors'"):
        ItemIndex(items).search(torch.randn(2, 5), 3)
    with pytest.raises(KgrecError, match="'users'"):
        ItemIndex(items).search(torch.randn(2, 4), 3, seen=seen_csr(torch.tensor([0]), torch.tensor([1]), 2, 10))


def test_missing_faiss_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        ItemIndex(torch.randn(5, 2))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    kg = synthetic_kg(tmp_path_factory.mktemp("ann"), users=120, items=300, seed=2)
    sp = kgrec.split(kg, "random", seed=0)
    return kg, kgrec.Recommender("bprmf", epochs=3, dim=16, seed=0).fit(kg, sp)


def test_recommend_with_index_equals_full_ranking(fitted):
    kg, rec = fitted
    users = kg.users.labels
    want = rec.recommend(users, k=7, batch_size=50)
    for exclude in (True, False):
        got = rec.recommend(users, k=7, batch_size=50, index=rec.build_index("flat"), exclude_seen=exclude)
        want = rec.recommend(users, k=7, batch_size=50, exclude_seen=exclude)
        assert [[i for i, _ in got[u]] for u in users] == [[i for i, _ in want[u]] for u in users]
    with pytest.raises(KgrecError, match="'candidates'"):
        rec.recommend(users[:1], index=rec.build_index(), candidates=kg.items.labels[:5])


def test_index_refused_for_non_dot_product_model(fitted):
    kg, _ = fitted
    rec = kgrec.Recommender("mostpop").fit(kg)
    with pytest.raises(KgrecError, match="dot product"):
        rec.build_index()
