"""Memory limits of the closed-form models: blocked / in-place fits equal the dense reference, the
peak estimates have known byte counts, and a fit beyond the budget stops with a clear error before
anything large is allocated.
"""

import resource
import time

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import kgrec
import kgrec.memory as memory
import kgrec.nn.linear as linear
from kgrec.errors import KgrecError, ResourceLimitError
from kgrec.nn.linear import EASE, ItemKNN, SequentialRules, ease_fit_bytes, itemknn_fit_bytes, rules_fit_bytes
from tests.conftest import two_cluster_kg


def _graph(seed: int, users: int = 80, items: int = 40, p: float = 0.15, weighted: bool = False):
    rng = np.random.default_rng(seed)
    d = (rng.random((users, items)) < p).astype(np.float64)
    if weighted:  # decay-like weights in (0.2, 1]: no two similarities tie
        d *= 0.2 + 0.8 * rng.random((users, items))
    return d


def _ease_reference(d: np.ndarray, reg: float) -> np.ndarray:
    """Steck's closed form, dense float64, written out."""
    p = np.linalg.inv(d.T @ d + reg * np.eye(d.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def _knn_reference(d: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """Shrunk cosine, dense float64, the k largest of each column kept."""
    co = d.T @ d
    n = np.sqrt(np.diag(co))
    sim = co / (np.outer(n, n) + shrink)
    np.fill_diagonal(sim, 0.0)
    w = np.zeros_like(sim)
    for j in range(sim.shape[1]):
        top = np.argsort(-sim[:, j], kind="stable")[:k]
        w[top, j] = sim[top, j]
    w[w < 0] = 0.0
    return w


def _topk(scores: np.ndarray, k: int = 10) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("block", [None, 3])
def test_ease_equals_dense_reference(monkeypatch, precision, block):
    d = _graph(0, weighted=precision == "float32")
    if precision == "float32":  # the precision of catalogues above 4000 items, on a small one
        monkeypatch.setattr(linear, "ease_dtype", lambda n: torch.float32)
    if block is not None:  # several Gram / mirror blocks of 3 columns (40 items: 14 blocks)
        monkeypatch.setattr(linear, "block_width", lambda n, per_entry, budget=None: block)
    m = EASE(40, reg=7.0).fit(sp.csr_matrix(d))
    ref = _ease_reference(d, 7.0)
    assert m.weight.dtype == torch.float32 and m.weight.shape == (40, 40) and m.weight.is_contiguous()
    tol = 1e-6 if precision == "float64" else 1e-5
    np.testing.assert_allclose(m.weight.numpy(), ref, atol=tol)
    scores = m(torch.tensor(d, dtype=torch.float32)).numpy()
    ref_scores = d @ ref
    np.testing.assert_allclose(scores, ref_scores, atol=10 * tol)
    assert (_topk(scores) == _topk(ref_scores)).mean() >= 0.99  # ties at 1e-6 may swap neighbours


def test_ease_unfitted_scores_zero_and_refit_replaces_weights():
    m = EASE(5, reg=1.0)
    assert m.weight.shape == (5, 0)  # no I x I array before the fit
    assert torch.equal(m(torch.ones(2, 5)), torch.zeros(2, 5))
    d = _graph(3, users=20, items=5, p=0.5)
    m.fit(sp.csr_matrix(d)).fit(sp.csr_matrix(d))
    np.testing.assert_allclose(m.weight.numpy(), _ease_reference(d, 1.0), atol=1e-6)


@pytest.mark.parametrize("block", [None, 7])
@pytest.mark.parametrize("k", [1, 5, 39, 100])
def test_itemknn_equals_dense_reference(monkeypatch, block, k):
    d = _graph(1, weighted=True)
    if block is not None:  # 40 items in blocks of 7 target columns
        monkeypatch.setattr(linear, "block_width", lambda n, per_entry, budget=None: block)
    m = ItemKNN(40, k=k, shrink=3.0).fit(sp.csr_matrix(d.astype(np.float32)))
    ref = _knn_reference(d, min(k, 39), 3.0)
    dense = torch.sparse_coo_tensor(m.sim_index, m.sim_value, (40, 40), check_invariants=True).to_dense().numpy()
    assert m.sim_index.shape[1] == int((ref > 0).sum())  # the same neighbours, none twice
    np.testing.assert_allclose(dense, ref, atol=1e-6)
    scores = m(torch.tensor(d, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(scores, d @ ref, atol=1e-5)
    assert np.array_equal(_topk(scores), _topk(d @ ref))


def test_itemknn_binary_all_neighbours_equal_reference():
    d = _graph(2)  # binary: cosine ties, so every neighbour is kept (k >= I - 1)
    m = ItemKNN(40, k=39, shrink=10.0).fit(sp.csr_matrix(d))
    dense = torch.sparse_coo_tensor(m.sim_index, m.sim_value, (40, 40), check_invariants=True).to_dense().numpy()
    np.testing.assert_allclose(dense, _knn_reference(d, 39, 10.0), atol=1e-6)


def test_fit_byte_estimates():
    # 20000 items, float32: one 20000^2 float32 array + one Gram block of 838 columns
    # (256 MiB // (20000 * 16 bytes)) + 24 bytes per interaction
    assert linear.block_width(20_000, 16) == 838
    assert ease_fit_bytes(20_000, dtype=torch.float32) == 1_600_000_000 + 16 * 20_000 * 838
    assert ease_fit_bytes(20_000) == 1_868_160_000  # float32 is the default above 4000 items
    assert ease_fit_bytes(20_000, nnz=1_000_000) == 1_868_160_000 + 24_000_000
    # 1000 items, float64: 8 MB array + 4 MB float32 weights + a single block of all 1000 columns
    assert ease_fit_bytes(1000) == 8_000_000 + 4_000_000 + 16_000_000
    assert ease_fit_bytes(60_000) == 60_000**2 * 4 + 16 * 60_000 * 279  # 14.4 GB + scratch
    # ItemKNN, 20000 items, k = 100: a block of 335 columns at 40 bytes per entry + 40 bytes per kept neighbour
    assert linear.block_width(20_000, 40) == 335
    assert itemknn_fit_bytes(20_000, 100) == 40 * 20_000 * 335 + 40 * 20_000 * 100 == 348_000_000
    assert itemknn_fit_bytes(10, 100, nnz=50) == 40 * 10 * 10 + 40 * 10 * 9 + 24 * 50  # k capped at I - 1


def test_ease_beyond_budget_stops_before_allocating(monkeypatch):
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 8 * 1024**3)
    x = sp.csr_matrix((10, 60_000), dtype=np.float32)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(ResourceLimitError) as e:
        EASE(60_000, reg=1.0).fit(x)
    assert time.perf_counter() - t0 < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 200 * 1024  # KiB: no 14 GB array
    msg = str(e.value)
    est = ease_fit_bytes(60_000)
    assert isinstance(e.value, KgrecError)
    assert f"EASE fit of 60000 items (float32) needs about 13.66 GiB ({est} bytes)" in msg
    assert f"only 8.00 GiB ({8 * 1024**3} bytes) is available" in msg
    assert "'itemknn'" in msg and "at least 15 GiB free" in msg


def test_itemknn_and_recommender_budget(monkeypatch):
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: None)  # unknown: no check
    d = _graph(4, users=10, items=6, p=0.5)
    ItemKNN(6, k=2).fit(sp.csr_matrix(d))
    est = 40 * 6 * 6 + 40 * 6 * 2 + 24 * int((d > 0).sum())  # one block of all 6 columns
    with pytest.raises(ResourceLimitError, match=rf"ItemKNN fit of 6 items \(k=2\) needs about .* \({est} bytes\) "
                       r"but only 0.00 GiB \(1073 bytes\) is available \[max_memory_gb=1e-06\]: lower 'k'"):
        ItemKNN(6, k=2, max_memory_gb=1e-6).fit(sp.csr_matrix(d))
    kg = two_cluster_kg()
    split = kgrec.split(kg, "temporal", ratios=(0.75, 0.125, 0.125))
    for name in ("ease", "itemknn"):
        with pytest.raises(ResourceLimitError, match=rf"{'EASE' if name == 'ease' else 'ItemKNN'} fit of 8 items"):
            kgrec.Recommender(name, max_memory_gb=1e-9).fit(kg, split)
        rec = kgrec.Recommender(name, max_memory_gb=1.0).fit(kg, split)
        assert rec.estimator.module.weight.shape == (8, 8) if name == "ease" else rec.estimator.module.k == 100
    with pytest.raises(ResourceLimitError, match="'max_memory_gb' must be a positive number"):
        EASE(3, max_memory_gb=0).fit(sp.csr_matrix((2, 3), dtype=np.float32))


def test_available_memory_reads_rlimit_and_meminfo(monkeypatch):
    fields = {("/proc/self/status", "VmSize"): 3 * 1024**3, ("/proc/meminfo", "MemAvailable"): 20 * 1024**3}
    monkeypatch.setattr(memory, "_proc_kib", lambda path, key: fields.get((path, key)))
    monkeypatch.setattr(memory.resource, "getrlimit", lambda what: (8 * 1024**3, resource.RLIM_INFINITY))
    assert memory.available_memory_bytes() == 5 * 1024**3  # the RLIMIT_AS room under the limit
    monkeypatch.setattr(memory.resource, "getrlimit", lambda what: (resource.RLIM_INFINITY,) * 2)
    assert memory.available_memory_bytes() == 20 * 1024**3  # no limit: the machine's available RAM


def test_sequential_rules_beyond_budget_stop_before_allocating(monkeypatch):
    assert rules_fit_bytes(20_000) == 20_000**2 * 12  # float64 counts + float32 weights
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 10**9)
    m = SequentialRules(2, window=1.0)
    monkeypatch.setattr(m, "num_items", 20_000)  # the check reads the catalogue size only
    with pytest.raises(ResourceLimitError, match=r"sequential rules of 20000 items needs about 4.47 GiB "
                       r"\(4800000000 bytes\) but only 0.93 GiB \(1000000000 bytes\) is available"):
        m.fit(torch.tensor([0, 2]), torch.tensor([0, 1]), torch.tensor([1.0, 2.0]))


def test_itemknn_scores_weighted_history_and_empty_similarities():
    d = _graph(5, users=30, items=12, weighted=True)
    m = ItemKNN(12, k=4, shrink=1.0).fit(sp.csr_matrix(d.astype(np.float32)))
    h = torch.tensor(d[:7], dtype=torch.float32)
    ref = d[:7] @ _knn_reference(d, 4, 1.0)
    np.testing.assert_allclose(m(h).numpy(), ref, atol=1e-5)
    np.testing.assert_allclose(m(h).numpy(), ref, atol=1e-5)  # the cached sparse matrix
    m.fit(sp.csr_matrix((4, 12), dtype=np.float32))  # no interactions: no neighbour kept
    assert m.sim_index.shape == (2, 0) and torch.equal(m(h), torch.zeros(7, 12))
    one = ItemKNN(1, k=5).fit(sp.csr_matrix(np.ones((3, 1), dtype=np.float32)))
    assert torch.equal(one(torch.ones(2, 1)), torch.zeros(2, 1))
