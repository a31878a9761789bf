"""The on-disk text embedding cache: hits, misses, keys, corruption."""

import os
import warnings

import pytest
import torch

from kgrec.data.textcache import TextEmbeddingCache, model_key


class Counting:
    """A fake encoder: vector = (len(text), first char code, call number)."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return torch.tensor([[len(t), ord(t[0]) if t else 0, len(self.calls)] for t in texts], dtype=torch.float32)


def test_second_call_computes_nothing(tmp_path):
    cache, f = TextEmbeddingCache(tmp_path / "c"), Counting()
    a = cache.get_or_compute(["ab", "c", "ab", ""], "m", f)
    assert a.size() == (4, 3) and a.dtype == torch.float32
    assert f.calls == [["ab", "c", ""]]  # duplicates computed once
    assert a.tolist() == [[2, 97, 1], [1, 99, 1], [2, 97, 1], [0, 0, 1]]
    b = TextEmbeddingCache(tmp_path / "c").get_or_compute(["c", "ab"], "m", f)  # a fresh object reads the disk
    assert len(f.calls) == 1
    assert b.tolist() == [[1, 99, 1], [2, 97, 1]]
    # only the new text is computed, old ones keep their stored vectors
    c = cache.get_or_compute(["dd", "ab"], "m", f)
    assert f.calls[1] == ["dd"] and c.tolist() == [[2, 100, 2], [2, 97, 1]]
    assert [p.name.endswith(".tmp") for p in (tmp_path / "c").iterdir()] == [False]


def test_model_key_separates_shards(tmp_path):
    cache, f = TextEmbeddingCache(tmp_path), Counting()
    cache.get_or_compute(["x", "y"], "m1", f)
    cache.get_or_compute(["x", "y"], "m2", f)
    assert f.calls == [["x", "y"], ["x", "y"]]
    assert cache.get_or_compute(["y"], "m1", f).tolist() == [[1, 121, 1]]
    assert cache.get_or_compute(["y"], "m2", f).tolist() == [[1, 121, 2]]
    assert len(f.calls) == 2
    assert cache.get_or_compute([], "m1", f).size() == (0, 3)
    assert cache.get_or_compute([], "never", f).size() == (0, 0) and len(f.calls) == 2


def test_corrupt_file_recovered_without_touching_others(tmp_path):
    cache, f = TextEmbeddingCache(tmp_path), Counting()
    cache.get_or_compute(["x", "y"], "m1", f)
    cache.get_or_compute(["x"], "m2", f)
    cache.path("m1").write_bytes(b"\x00garbage, not safetensors")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        out = cache.get_or_compute(["x", "y"], "m1", f)
    assert f.calls[-1] == ["x", "y"] and out[:, 2].tolist() == [3, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt shard reads cleanly
        assert cache.get_or_compute(["y"], "m1", f)[0, 2] == 3
        assert cache.get_or_compute(["x"], "m2", f).tolist() == [[1, 120, 2]]  # other shard intact
    assert len(f.calls) == 3


def test_bad_compute_result(tmp_path):
    cache = TextEmbeddingCache(tmp_path)
    with pytest.raises(ValueError, match="'compute' must return a \\[2, H\\] tensor for 2 texts \\(got \\(1, 3\\)\\)"):
        cache.get_or_compute(["a", "b"], "m", lambda t: torch.zeros(1, 3))
    cache.get_or_compute(["a"], "m", lambda t: torch.zeros(1, 3))
    with pytest.raises(ValueError, match="returned vectors of size 4 but the cache for model key 'm' holds size 3"):
        cache.get_or_compute(["b"], "m", lambda t: torch.zeros(1, 4))
    with pytest.raises(ValueError, match="'model_key' must be a non-empty string"):
        cache.get_or_compute(["a"], "", lambda t: torch.zeros(1, 3))


def test_model_key(tmp_path):
    d = tmp_path / "mini"
    d.mkdir()
    (d / "config.json").write_text('{"hidden_size": 32}')
    (d / "model.safetensors").write_bytes(b"0" * 10)
    k = model_key(d, 128, "mean")
    assert k.startswith("mini-") and k.endswith("-len128-mean")
    assert model_key(d, 128, "mean") == k
    assert model_key(d, 64, "mean") != k and model_key(d, 128, "cls") != k
    assert model_key(d, 128, "mean", normalize=True) == k + "-norm"
    (d / "model.safetensors").write_bytes(b"0" * 11)  # new weights
    k2 = model_key(d, 128, "mean")
    assert k2 != k
    (d / "config.json").write_text('{"hidden_size": 64}')
    os.utime(d / "model.safetensors", ns=(1, 1))
    assert len({k, k2, model_key(d, 128, "mean")}) == 3
    assert model_key("some-name", 32, "cls") == "some-name-len32-cls"
    with pytest.raises(ValueError, match="'max_length' must be a positive integer \\(got 0\\)"):
        model_key(d, 0, "mean")
