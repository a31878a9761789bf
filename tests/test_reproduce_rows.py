"""benchmarks/reproduce_rows.py: which stored fit a row is checked with, the job that refits it, the verdict."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import reproduce_rows  # noqa: E402

from kgrec.errors import KgrecError  # noqa: E402


def _run(name, seed, role, ndcg, params=None):
    return {"name": name, "seed": seed, "role": role, "test": {"ndcg@10": ndcg, "auc": ndcg}, "best_epoch": 7,
            "chosen_params": dict(params or {"lr": 0.001}, seed=seed), "budget": 6}


def _payload(split="random"):
    return {"dataset": "lastfm", "split": split, "machine": {"commit": "a" * 40},
            "merged": [{"models": ["EASE"], "commit": "b" * 40}],
            "runs": [_run("BPR-MF", 2020, "search", 0.15), _run("BPR-MF", 2022, "refit", 0.148),
                     _run("BPR-MF", 2021, "refit", 0.149), _run("EASE", 2020, "search", 0.18, {"reg": 250.0})]}


def test_a_seeded_row_is_checked_with_its_first_refit_seed_and_a_deterministic_one_with_its_search_fit():
    p = _payload()
    assert reproduce_rows.stored_fit(p, "BPR-MF")["seed"] == 2021
    assert reproduce_rows.stored_fit(p, "EASE")["role"] == "search"


def test_an_unknown_row_names_the_table_and_the_rows_it_has():
    with pytest.raises(KgrecError, match=r"no row 'LightGCN' in the lastfm random table \(it has BPR-MF, EASE\)"):
        reproduce_rows.stored_fit(_payload(), "LightGCN")


def test_the_refit_job_fits_the_stored_configuration_once_with_the_stored_seed():
    p = _payload()
    job = reproduce_rows.refit_job(p, reproduce_rows.stored_fit(p, "BPR-MF"), "data", "cache", 1)
    assert job["candidates"] == [{"lr": 0.001}] and job["seed"] == 2021
    assert (job["dataset"], job["split"], job["name"], job["role"]) == ("lastfm", "random", "BPR-MF", "reproduce")


def test_same_only_when_bit_for_bit_and_the_row_commit_is_the_rows_own():
    p = _payload()
    run = reproduce_rows.stored_fit(p, "EASE")
    row = reproduce_rows.compare(p, run, {"test": {"ndcg@10": 0.18}, "best_epoch": None})
    assert row["same"] and row["row_commit"] == "b" * 40 and row["metric"] == "ndcg@10"
    row = reproduce_rows.compare(p, run, {"test": {"ndcg@10": 0.18 + 1e-12}, "best_epoch": None})
    assert not row["same"] and row["difference"] == pytest.approx(1e-12)
    ctr = _payload("ctr")
    assert reproduce_rows.compare(ctr, reproduce_rows.stored_fit(ctr, "BPR-MF"),
                                  {"test": {"auc": 0.149}})["metric"] == "auc"
