"""The tuning protocol (benchmarks/tuning.py) and the paired test (kgrec.evaluation.significance): known answers."""

import dataclasses
import sys
from pathlib import Path

import pytest

from kgrec.errors import KgrecError
from kgrec.evaluation.significance import paired_test, per_user_means, verdict
from kgrec.models import MODELS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from tuning import SPACES, SearchSpace, trials  # noqa: E402


def test_every_space_names_a_model_and_fits_the_budget():
    for label, spec in SPACES.items():
        assert spec.model in MODELS, label
        cands = trials(spec, 6)
        assert sum(spec.cost(c) for c in cands) <= 6, label


def test_small_grids_are_searched_whole_and_large_ones_sampled_with_the_default_first():
    spec = SearchSpace("ease", space={"reg": [250.0, 50.0, 100.0]})
    assert trials(spec, 6) == [{"reg": 250.0}, {"reg": 50.0}, {"reg": 100.0}]
    big = SearchSpace("lightgcn", fixed={"dim": 64}, space={"lr": [5e-3, 1e-3], "reg": [1e-4, 1e-5, 1e-3],
                                                            "num_layers": [3, 2]})
    got = trials(big, 6, seed=2020)
    assert len(got) == 6 and got[0] == {"dim": 64, "lr": 5e-3, "reg": 1e-4, "num_layers": 3}
    assert len({tuple(sorted(c.items())) for c in got}) == 6  # no repeats
    assert got == trials(big, 6, seed=2020) and got != trials(big, 6, seed=1)  # seeded


def test_internal_choices_count_against_the_budget():
    # the hybrid's benchmark space: 1 (neural alone) + 1 reg x 3 EASE weights + 1 x 1 x 2 rule weights = 6
    hybrid = MODELS["hybrid"]
    assert hybrid.internal_trials(SPACES["Hybrid"].fixed) == 6
    assert trials(SPACES["Hybrid"], 6) == [SPACES["Hybrid"].fixed]
    # its library defaults: 1 + 3 x 9 + 3 x 2 x 5 = 58 evaluations, far over a budget of 6
    with pytest.raises(KgrecError, match="58 validation evaluations, over the budget of 6"):
        trials(SearchSpace("hybrid", fixed={"priors": {
            "ease_reg": (250.0, 500.0, 1000.0), "ease_weight": (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0),
            "seq_window": (3.0, 10.0, 30.0), "seq_recency": (1.0, 3.0),
            "seq_weight": (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)}}), 6)
    assert hybrid.internal_trials({"use_cf": False}) == 1
    # without its priors the hybrid chooses nothing inside its fit: it gets LightGCN's budget of 6
    # trials, and its CF stage tries exactly the 6 points LightGCN tries (same grid, same seeded sample)
    no_priors = trials(SPACES["Hybrid w/o priors"], 6)
    assert len(no_priors) == 6 and all(hybrid.internal_trials(c) == 1 for c in no_priors)
    assert all(c["stages"] == "cf-first" and c["branch_loss"] == 1.0 and not c["ease_prior"] for c in no_priors)
    lightgcn = trials(SPACES["LightGCN"], 6)
    assert [(c["cf_lr"], c["cf_reg"], c["cf_layers"]) for c in no_priors] == \
        [(c["lr"], c["reg"], c["num_layers"]) for c in lightgcn]
    assert {c["epochs"] for c in no_priors} == {c["epochs"] for c in lightgcn} == {1000}
    for c in no_priors:  # every point is a valid configuration of the estimator
        hybrid.Config(**{k: v for k, v in c.items() if k != "epochs"}, epochs=c["epochs"])
    # the library defaults of the hybrid and of ease+rules, counted by the estimators themselves
    cfg = dataclasses.asdict(hybrid.Config())["priors"]
    assert hybrid.internal_trials({}) == 1 + len(cfg["ease_reg"]) * sum(g > 0 for g in cfg["ease_weight"]) + len(
        cfg["seq_window"]) * len(cfg["seq_recency"]) * sum(g > 0 for g in cfg["seq_weight"])
    # ease+rules' benchmark space: 2 regs + 2 windows x 1 recency x 2 rule weights = 6; a model without
    # choices of its own costs one
    assert MODELS["ease+rules"].internal_trials(SPACES["EASE+rules"].fixed) == 6
    assert MODELS["ease"].internal_trials({"reg": 250.0}) == 1
    with pytest.raises(KgrecError, match="'--budget' must be a positive integer"):
        trials(SPACES["EASE"], 0)


def test_wilcoxon_known_answers():
    # 5 users, every difference positive and distinct: the exact two-sided p is 2 / 2^5 = 0.0625
    t = paired_test([0.5, 0.6, 0.7, 0.8, 0.9], [0.4, 0.4, 0.4, 0.4, 0.4])
    assert t["p"] == pytest.approx(0.0625) and t["n"] == 5 and t["mean_diff"] == pytest.approx(0.3)
    # 6 users: p = 2 / 64
    assert paired_test({u: 1.0 + u for u in range(6)}, {u: 0.0 for u in range(6)})["p"] == pytest.approx(1 / 32)
    # identical samples: nothing to test
    assert paired_test([0.1, 0.2], [0.1, 0.2])["p"] == 1.0
    with pytest.raises(KgrecError, match="must pair up"):
        paired_test([0.1], [0.1, 0.2])


def test_per_user_means_average_seeds_on_common_users_and_verdicts():
    runs = [{"per_user": {"users": [1, 2, 3], "ndcg@10": [0.0, 1.0, 0.5]}},
            {"per_user": {"users": [2, 3], "ndcg@10": [0.0, 0.5]}}]
    assert per_user_means(runs) == {2: 0.5, 3: 0.5}
    assert per_user_means([{"per_user": None}]) == {}
    assert verdict(0.02, 0.01, 0.005, 0.01) == "ahead"
    assert verdict(-0.02, 0.01, 0.005, 0.01) == "behind"
    assert verdict(0.02, 0.03, 0.005, 0.01) == "tie"  # inside a seed spread
    assert verdict(0.02, 0.01, 0.005, 0.2) == "tie"  # not significant
    assert verdict(0.02, 0.01, 0.005, None) == "tie"  # no paired test


def test_a_higher_epoch_cap_leaves_a_fit_stopped_by_patience_unchanged(cluster_kg):
    # docs/protocol.md keeps rows run under the old 300-epoch cap beside runs under 1000: true only if
    # a fit that stopped before a cap trains the same epochs, bit for bit, under any higher cap
    import torch

    import kgrec

    sp = kgrec.split(cluster_kg, "random", seed=0)
    params = dict(dim=8, batch_size=8, lr=0.05, seed=0, patience=2)
    low = kgrec.Recommender("bprmf", epochs=1000, **params).fit(cluster_kg, sp)
    stopped = low.fit_info["epochs_run"]
    assert stopped < 1000  # stopped by patience, not by the cap
    high = kgrec.Recommender("bprmf", epochs=stopped + 1, **params).fit(cluster_kg, sp)
    assert high.fit_info["epochs_run"] == stopped and high.fit_info["best_epoch"] == low.fit_info["best_epoch"]
    for a, b in zip(low.estimator.module.state_dict().values(), high.estimator.module.state_dict().values()):
        assert torch.equal(a, b)
