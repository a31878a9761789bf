"""Fitting never reads ``split.test``: every model's scores are bit-for-bit the same when the
test part is replaced by other random (user, item) pairs of the same length.

Each model in :data:`kgrec.models.MODELS` is fitted twice with one seed on a small synthetic graph
(titles, genres, directors, timestamps), once on the split and once on a copy whose ``test`` is
random pairs, and ``rec.score(all users)`` must be ``torch.equal``. Model selection may read
``split.valid`` (it is the same in both fits); a model that early-stops, picks a grid point or
builds a prior on the test part would differ. Runs on the CPU with one thread (GPU kernels with
atomics and multi-threaded sparse reductions are not bit-reproducible), with few epochs and tiny
dimensions. Cases whose model is not registered are skipped; a model registered later without a
case here is tried with generic small parameters (skipped, with the reason, if it cannot fit).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import kgrec
from kgrec.data.graph import Interactions
from kgrec.errors import KgrecError
from kgrec.models import MODELS
from tests.conftest import synthetic_kg

TRAINED = {"epochs": 3, "dim": 8, "batch_size": 128, "lr": 0.01, "eval_every": 1, "patience": 2, "seed": 7,
           "device": "cpu"}

#: the tiny random BERT of ``tests/conftest.py`` (``tiny_text_model``) stands for this value
TEXT = "<tiny-text-model>"
HYBRID = dict(text_model=TEXT, cache_dir="", dim=16, num_heads=2, epochs=2, lr=0.02, batch_size=64, reg=0.0,
              patience=2, seed=7, text_segments=2, max_history=4, max_history_text=4, text_batch_size=64,
              device="cpu")

#: case -> small parameters of the model of that name, or ``(model, parameters)``. The time-decay
#: variants check that the decay reference ("the cut") comes from training data only.
CONFIGS = {
    "mostpop": {},
    "mostpop-decay": ("mostpop", {"half_life_days": 30.0}),
    "itemknn": {"k": 10, "shrink": 1.0},
    "itemknn-decay": ("itemknn", {"k": 10, "half_life_days": 30.0, "decay_from": "user"}),
    "ease": {"reg": 10.0},
    "ease-decay": ("ease", {"reg": 10.0, "half_life_days": 30.0}),
    "bprmf": TRAINED,
    "bprmf-decay": ("bprmf", {**TRAINED, "half_life_days": 30.0}),
    "lightgcn": {**TRAINED, "num_layers": 2},
    "cke": {**TRAINED, "relation_dim": 8, "kg_batch_size": 128},
    "hybrid": HYBRID,
    "scenario-mf": {**TRAINED, "target_scenario": "b"},
    "ease+rules": {"priors": {"ease_reg": (10.0, 50.0)}},
    "random": {"seed": 7},
    "content-knn": {"k": 10, "cache_dir": ""},
    "content-knn-text": ("content-knn", {"k": 10, "text_model": TEXT, "cache_dir": ""}),
    "sasrec": {**TRAINED, "num_layers": 1, "num_heads": 1, "max_len": 8},
    "kgat": {**TRAINED, "relation_dim": 8, "layers": [8, 8], "kg_batch_size": 128},
    "kgin": {**TRAINED, "num_layers": 1, "num_intents": 2},
}
#: cases marked ``slow`` (none at these sizes: the whole file takes about 10 s on one core)
SLOW: set[str] = set()


def _cases():
    names = list(CONFIGS) + sorted(set(MODELS) - {v[0] if isinstance(v, tuple) else c for c, v in CONFIGS.items()})
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: multi-threaded sparse reductions (KGAT's) are not bit-reproducible."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    kg = synthetic_kg(tmp_path_factory.mktemp("leak"), users=60, items=40, seed=3)
    sp = kgrec.split(kg, "random", seed=11)
    assert len(sp.test) > 20 and len(sp.valid) > 20 and len(kg.triples) > 0
    return kg, sp


def _fake_test(sp, kg, seed: int = 0):
    """A copy of ``sp`` whose test part is as many random (user, item) pairs, with random times."""
    rng = np.random.default_rng(seed)
    n = len(sp.test)
    fake = Interactions.from_lists(rng.integers(0, kg.num_users, n), rng.integers(0, kg.num_items, n),
                                   rng.uniform(0.5, 5.0, n), rng.uniform(0, 2e9, n))
    if sp.test.scenario is not None:
        fake.scenario = torch.as_tensor(rng.integers(0, len(kg.scenarios), n))
    other = dataclasses.replace(sp, test=fake)
    assert len(other.test) == len(sp.test)
    assert {*zip(fake.user.tolist(), fake.item.tolist())} != {*zip(sp.test.user.tolist(), sp.test.item.tolist())}
    return other


def _with_scenarios(kg, sp):
    """The graph and split with every interaction in scenario ``a`` or ``b`` (seeded)."""
    def tag(inter):
        out = Interactions(inter.user, inter.item, inter.weight, inter.time)
        out.scenario = ((inter.user * 7 + inter.item) % 3 == 0).long()  # about a third in "a"
        return out

    kg2 = dataclasses.replace(kg, interactions=tag(kg.interactions), scenarios=["a", "b"])
    sp2 = dataclasses.replace(sp, train=tag(sp.train), valid=tag(sp.valid), test=tag(sp.test))
    return kg2, sp2


def _params(name, request):
    if name not in CONFIGS:  # a model registered after this file: try generic small parameters
        fields = kgrec.Recommender.params_of(name)
        return name, {k: v for k, v in TRAINED.items() if k in fields}
    model, params = CONFIGS[name] if isinstance(CONFIGS[name], tuple) else (name, CONFIGS[name])
    if TEXT in params.values():
        params = {k: request.getfixturevalue("tiny_text_model") if v == TEXT else v for k, v in params.items()}
    if model in MODELS:  # models still in the making may rename a field: keep the ones they have
        fields = kgrec.Recommender.params_of(model)
        params = {k: v for k, v in params.items() if k in fields}
    return model, params


@pytest.mark.parametrize("name", _cases())
def test_fit_never_reads_the_test_part(name, data, request):
    kg, sp = data
    model, params = _params(name, request)
    if model not in MODELS:
        pytest.skip(f"model {model!r} is not registered in kgrec.models.MODELS in this checkout")
    if model == "scenario-mf":
        kg, sp = _with_scenarios(kg, sp)
    other = _fake_test(sp, kg)
    users = torch.arange(kg.num_users)
    try:
        a = kgrec.Recommender(model, **params).fit(kg, sp)
    except KgrecError as exc:
        if name in CONFIGS:
            raise
        pytest.skip(f"{name!r} does not fit on a small single-scenario graph with generic parameters "
                    f"({exc}); add it to CONFIGS")
    b = kgrec.Recommender(model, **params).fit(kg, other)
    sa, sb = a.score(users), b.score(users)
    assert sa.shape == (kg.num_users, kg.num_items)
    assert torch.isfinite(sa).all()
    assert torch.equal(sa, sb), f"{name}: scores depend on split.test (max diff {(sa - sb).abs().max():.3g})"


def test_the_check_catches_a_model_that_reads_the_test_part(data):
    """A deliberately leaky MostPop (counts train + test) is caught: the check has teeth."""
    kg, sp = data
    other = _fake_test(sp, kg)

    def leaky_fit(split):
        both = dataclasses.replace(split, train=split.train.concat(split.test))
        return kgrec.Recommender("mostpop").fit(kg, both).score(torch.arange(kg.num_users))

    assert not torch.equal(leaky_fit(sp), leaky_fit(other))
