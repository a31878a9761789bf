"""Refit on all interactions with the settings chosen on a split (Recommender.refit_all, kgrec train --refit-all)."""

import json
import warnings

import pytest
import torch

import kgrec
from kgrec.evaluation.rank import seen_csr
from tests.conftest import synthetic_kg, two_cluster_kg
from tests.test_cli import RATIOS, TOY, run


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
    rec = kgrec.Recommender("ease+rules", ease_reg=(1e4, 1.0), seq_prior=False).fit(kg, sp)
    chosen = rec.fit_info["ease_reg"]
    # validation chose the second reg: a fit without validation would take the first one
    assert chosen == 1.0 and rec.estimator.chosen_params()["ease_reg"] == (chosen,)
    refit = rec.refit_all(kg)
    assert tuple(refit.config.ease_reg) == (chosen,) and refit.fit_info["ease_reg"] == chosen
    assert refit.fit_info["refit_all"]["chosen_params"]["ease_reg"] == [chosen]
    assert history(refit) == all_pairs(kg)
    # a closed-form refit on everything equals a plain fit on everything with the chosen reg
    plain = kgrec.Recommender("ease+rules", ease_reg=(chosen,), seq_prior=False).fit(kg)
    users = torch.arange(kg.num_users)
    assert torch.equal(refit.score(users), plain.score(users))
    first = kgrec.Recommender("ease+rules", ease_reg=(1e4, 1.0), seq_prior=False).fit(kg)
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
