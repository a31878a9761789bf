"""Refit on all interactions with the settings chosen on a split (Recommender.refit_all, kgrec train --refit-all)."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import kgrec
from kgrec.evaluation.rank import seen_csr
from kgrec.models.priors_select import std_sample
from tests.conftest import synthetic_kg, two_cluster_kg
from tests.test_cli import RATIOS, TOY, run
from tests.test_hybrid import _chain_kg, _params
from tests.test_peers import BENCH


def all_pairs(kg):
    indptr, indices = seen_csr(kg.interactions.user, kg.interactions.item, kg.num_users, kg.num_items)
    return indptr.tolist(), indices.tolist()


def history(rec):
    ctx = rec.estimator.context
    return ctx["hist_indptr"].tolist(), ctx["hist_indices"].tolist()


def test_gradient_model_refits_for_the_selected_epochs_on_everything():
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    rec = kgrec.Recommender("bprmf", epochs=12, patience=2, lr=0.05, dim=8, batch_size=8, seed=0).fit(kg, sp)
    best = rec.fit_info["best_epoch"]
    assert 1 <= best < 12  # stopped early: the refit's epoch count is the selected one, not the cap
    refit = rec.refit_all(kg)
    assert refit is not rec and rec.config.epochs == 12  # the split's model is left as it was
    assert refit.config.epochs == best and refit.fit_info["epochs_run"] == best
    assert (refit.config.lr, refit.config.dim, refit.config.seed) == (0.05, 8, 0)
    assert refit.fit_info["refit_all"]["selected_epoch"] == best
    # the refit trained on every interaction: the former test items are in its history
    assert history(refit) == all_pairs(kg)
    test_pairs = set(zip(sp.test.user.tolist(), sp.test.item.tolist()))
    indptr, indices = history(refit)
    assert test_pairs and all(i in indices[indptr[u]:indptr[u + 1]] for u, i in test_pairs)
    assert not any(i in history(rec)[1][history(rec)[0][u]:history(rec)[0][u + 1]] for u, i in test_pairs)


def test_validation_choices_are_pinned(tmp_path):
    kg = synthetic_kg(tmp_path, users=60, items=80, seed=1)
    sp = kgrec.split(kg, "random", seed=0)
    rec = kgrec.Recommender("ease+rules", priors={"ease_reg": (1e4, 1.0)}, seq_prior=False).fit(kg, sp)
    chosen = rec.fit_info["ease_reg"]
    # validation chose the second reg: a fit without validation would take the first one
    assert chosen == 1.0 and rec.estimator.chosen_params()["priors"]["ease_reg"] == (chosen,)
    refit = rec.refit_all(kg)
    assert refit.config.priors.ease_reg == (chosen,) and refit.fit_info["ease_reg"] == chosen
    assert refit.fit_info["refit_all"]["chosen_params"]["priors"]["ease_reg"] == [chosen]
    assert history(refit) == all_pairs(kg)
    # a closed-form refit on everything equals a plain fit on everything with the chosen reg
    plain = kgrec.Recommender("ease+rules", priors={"ease_reg": (chosen,)}, seq_prior=False).fit(kg)
    users = torch.arange(kg.num_users)
    assert torch.equal(refit.score(users), plain.score(users))
    first = kgrec.Recommender("ease+rules", priors={"ease_reg": (1e4, 1.0)}, seq_prior=False).fit(kg)
    assert first.fit_info["ease_reg"] == 1e4 and not torch.equal(first.score(users), plain.score(users))


def test_refit_all_needs_a_fitted_model():
    with pytest.raises(kgrec.KgrecError, match="not fitted"):
        kgrec.Recommender("ease").refit_all(two_cluster_kg())


def test_cli_refit_all_saves_the_refit_model(tmp_path):
    out = tmp_path / "bprmf"
    code, stdout, err = run(["train", TOY, "--model", "bprmf", "--param", "epochs=6", "--param", "dim=8",
                             "--param", "patience=2", "--ratios", ",".join(map(str, RATIOS)), "--seed", "3",
                             "--out", out, "--no-progress", "--refit-all"])
    assert code == 0, err
    assert "refitting bprmf on all" in err and "refitted on all interactions" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    best = metrics["fit"]["best_epoch"]
    assert metrics["refit_all"]["epochs_run"] == best and metrics["refit_all"]["refit_all"]["selected_epoch"] == best
    assert metrics["test"]["users"] >= 1  # the split fit's evaluation is kept
    saved = kgrec.Recommender.load(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kg = kgrec.load(TOY)
    assert saved.config.epochs == best and history(saved) == all_pairs(kg)


def test_pinned_rules_are_applied_without_validation():
    kg = _chain_kg()  # a ring walk: validation picks the sequential rules on a temporal split
    sp = kgrec.split(kg, "temporal", ratios=(0.75, 0.125, 0.125))
    rec = kgrec.Recommender("ease+rules", **BENCH).fit(kg, sp)
    g, w = rec.fit_info["seq_relative_weight"], rec.fit_info["seq_window"]
    assert g > 0
    refit = rec.refit_all(kg)
    info, c, est = refit.fit_info, refit.estimator.context, refit.estimator
    assert (info["seq_relative_weight"], info["seq_window"], info["seq_recency"]) == (g, w, 1.0)
    assert info["ease_reg"] == rec.fit_info["ease_reg"] and history(refit) == all_pairs(kg)
    # the weight is g in units of the two score scales over the std sample, as on validation
    sample = std_sample(kg.num_users)
    rules = est.entry_rows(sample, est.recency_weights(1.0)) @ c["seq_weight"]
    ease = est.history(sample) @ c["ease_weight"]
    assert float(c["seq_gate"][0]) == pytest.approx(g * float(ease.std()) / float(rules.std()), rel=1e-6)
    # a fit without validation on the unpinned grids makes no choice: EASE alone
    plain = kgrec.Recommender("ease+rules", **BENCH).fit(kg)
    assert plain.fit_info["seq_relative_weight"] == 0.0 and "seq_weight" not in plain.estimator.context


def test_hybrid_refit_keeps_its_prior_weight(tiny_text_model, tmp_path):
    kg = synthetic_kg(tmp_path, users=60, items=80, seed=1)
    sp = kgrec.split(kg, "random", seed=0)
    rec = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=4, patience=2, seq_prior=False,
                                                use_text=False,
                                                priors={"ease_weight": (0.0, 1.0, 2.0), "ease_reg": (10.0,)})
                           ).fit(kg, sp)
    g, reg = rec.fit_info["prior_relative_weight"], rec.fit_info["prior_reg"]
    assert g in (1.0, 2.0)  # validation added EASE (weight 0 scored lower)
    refit = rec.refit_all(kg)
    assert refit.config.priors.ease_weight == (g,) and refit.config.priors.ease_reg == (reg,)
    assert refit.config.epochs == rec.fit_info["best_epoch"] == refit.fit_info["epochs_run"]
    assert (refit.fit_info["prior_relative_weight"], refit.fit_info["prior_reg"]) == (g, reg)
    assert float(refit.estimator.module.prior_gate) == pytest.approx(refit.fit_info["prior_weight"])
    assert refit.fit_info["prior_weight"] > 0 and "prior_trials" not in refit.fit_info
    # a fit without validation on the unpinned grid leaves EASE off
    plain = kgrec.Recommender("hybrid", **_params(tiny_text_model, epochs=1, seq_prior=False, use_text=False,
                                                  priors={"ease_weight": (0.0, 1.0, 2.0), "ease_reg": (10.0,)})
                             ).fit(kg)
    assert float(plain.estimator.module.prior_gate) == 0.0 and "prior_weight" not in plain.fit_info
    assert history(refit) == all_pairs(kg)


@pytest.mark.slow
def test_torchrun_refit_all(tmp_path):
    """Under ``torchrun`` every rank refits (DDP), so rank 0's refit does not wait for a finished rank."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "kgrec", "train", str(TOY), "--model", "lightgcn", "--param", "epochs=3",
                          "--param", "batch_size=4", "--ratios", "0.6,0.2,0.2", "--out", str(tmp_path / "m"),
                          "--refit-all", "--no-progress"], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["refit_all"]["world_size"] == 2
    assert metrics["refit_all"]["epochs_run"] == metrics["fit"]["best_epoch"]
    assert res.stderr.count("refitting lightgcn") == 1
