"""The closed-form priors' search space (:class:`kgrec.models.priors_select.PriorSearch`): one object
shared by the hybrid and ease+rules, kgrec 0.1's flat settings still accepted (API with a warning,
saved models silently), nested settings from the command line and in ``config.json``.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import kgrec
from kgrec.cli.common import params_of, typed_params
from kgrec.errors import CheckpointError, KgrecError
from kgrec.models import MODELS
from kgrec.models.priors_select import PriorSearch
from tests.conftest import two_cluster_kg
from tests.test_checkpoint_tamper import _rehash

NESTED = {"ease_reg": (10.0, 50.0), "seq_window": (3.0,), "seq_recency": (1.0,), "seq_weight": (0.0, 1.0)}
FLAT = {"ease_reg": (10.0, 50.0), "seq_window": 3.0, "seq_recency": [1.0], "seq_grid": (0.0, 1.0)}


def test_values_become_tuples_of_floats_and_unknown_fields_are_named():
    s = PriorSearch.coerce({"ease_reg": 500, "seq_weight": [0, 2]})
    assert s.ease_reg == (500.0,) and s.seq_weight == (0.0, 2.0) and s.seq_window == PriorSearch().seq_window
    with pytest.raises(KgrecError, match="'priors': unknown field 'prior_grid'"):
        PriorSearch.coerce({"prior_grid": (1.0,)})
    with pytest.raises(KgrecError, match=r"'priors\.ease_weight' must be a non-negative number"):
        PriorSearch(ease_weight=(-1.0,))
    with pytest.raises(KgrecError, match="'priors' must be a PriorSearch or a dict"):
        kgrec.Recommender("hybrid", priors=[1.0])


@pytest.mark.parametrize("model", ["hybrid", "ease+rules"])
def test_flat_settings_of_0_1_warn_and_mean_the_same(model):
    with pytest.warns(DeprecationWarning, match="seq_grid.*deprecated"):
        old = kgrec.Recommender(model, **FLAT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = kgrec.Recommender(model, priors=NESTED)
    assert old.config.priors == new.config.priors == PriorSearch(**NESTED)
    cls = MODELS[model]
    # the benchmark budget counts the same trials either way: 2 regs (x 2 EASE weights for the hybrid,
    # whose default EASE weights are 9 above 0) + 1 window x 1 recency x 1 rule weight above 0
    expected = 1 + 2 * 9 + 1 if model == "hybrid" else 2 + 1
    assert cls.internal_trials(FLAT) == cls.internal_trials({"priors": NESTED}) == expected


def test_a_model_saved_with_flat_settings_loads_and_scores_the_same(tmp_path):
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=1)
    rec = kgrec.Recommender("ease+rules", priors=NESTED, seq_prior=False).fit(kg, sp)
    rec.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    meta = json.loads(path.read_text())
    priors = meta["config"].pop("priors")
    assert priors["ease_reg"] == [10.0, 50.0]  # saved as a JSON object of the search's fields
    meta["config"].update(ease_reg=priors["ease_reg"], seq_window=priors["seq_window"],
                          seq_recency=priors["seq_recency"], seq_grid=priors["seq_weight"])  # as 0.1 wrote it
    path.write_text(json.dumps(meta))
    _rehash(tmp_path / "m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a saved model is not the caller's code: no warning
        back = kgrec.Recommender.load(tmp_path / "m")
    assert back.config.priors == rec.config.priors
    users = torch.arange(kg.num_users)
    assert torch.equal(back.score(users), rec.score(users))


@pytest.mark.parametrize("priors, match", [
    ({"ease_reg": [10.0], "reg": [1.0]}, "unknown: 'reg'"),
    ({"ease_reg": "10"}, "'ease_reg' is a list of numbers"),
    ([10.0], "must be an object"),
])
def test_a_bad_priors_object_in_config_json_is_named(tmp_path, priors, match):
    kg = two_cluster_kg()
    rec = kgrec.Recommender("ease+rules", priors={"ease_reg": (10.0,)}, seq_prior=False).fit(kg)
    rec.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    meta = json.loads(path.read_text())
    meta["config"]["priors"] = priors
    path.write_text(json.dumps(meta))
    _rehash(tmp_path / "m")
    with pytest.raises(CheckpointError, match="config.json.*config.priors") as info:
        kgrec.Recommender.load(tmp_path / "m")
    assert match in str(info.value)


def test_command_line_sets_one_field_of_the_search():
    params = typed_params([("priors.ease_reg", "500"), ("priors.seq_weight", "0,2"), ("seq_prior", "false")],
                          params_of("ease+rules"), "model 'ease+rules'")
    assert params == {"priors": {"ease_reg": 500, "seq_weight": [0, 2]}, "seq_prior": False}
    rec = kgrec.Recommender("ease+rules", **params)
    assert rec.config.priors == PriorSearch(ease_reg=(500.0,), seq_weight=(0.0, 2.0))
