"""kgrec.reports.run_details + kgrec.reports.html: a run directory becomes one self-contained page."""

import json
import re

import pytest

import kgrec
from kgrec.errors import KgrecError
from kgrec.reports.html import SECTIONS, load_run, render_report, write_report
from kgrec.reports.run_details import REPORT_KS, run_details, write_details

from .conftest import two_cluster_kg


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A hand-made demo-like run: results.json + report.json of two models on the two-cluster graph."""
    kg = two_cluster_kg()
    sp = kgrec.split(kg, "random", ratios=(0.6, 0.2, 0.2), seed=0)
    recs = {"ease": kgrec.Recommender("ease", reg=1.0).fit(kg, sp),
            "bprmf": kgrec.Recommender("bprmf", epochs=4, dim=8, eval_every=1, patience=10).fit(kg, sp)}
    d = tmp_path_factory.mktemp("run")
    results = {"command": "demo", "kgrec_version": kgrec.__version__, "data": ["two-cluster"],
               "graph": kg.stats(), "split": sp.stats(),
               "models": {n: {"fit_info": r.fit_info, "fit_seconds": 0.1, "test": r.evaluate(sp, ks=(10,))}
                          for n, r in recs.items()}}
    (d / "results.json").write_text(json.dumps(kgrec.reports.tables.to_jsonable(results)))
    details = run_details(recs, kg, sp, sample_users=3, seed=1)
    write_details(d, details)
    return d, kg, sp, recs, details


def test_run_details_known_values(run_dir):
    _, kg, sp, recs, details = run_dir
    assert details["models"] == ["ease", "bprmf"] and details["ks"] == list(REPORT_KS)
    assert sum(details["train_popularity"]) == len(sp.train)
    for name, rec in recs.items():
        # every user's top-10 counted once per item: total = sum over users of min(10, unseen items)
        seen = [len(set(sp.train.item[sp.train.user == u].tolist())) for u in range(kg.num_users)]
        assert sum(details["top10_counts"][name]) == sum(min(10, kg.num_items - s) for s in seen)
        assert details["metrics_by_k"][name]["ndcg@10"] == pytest.approx(rec.evaluate(sp, ks=(10,))["ndcg@10"])
    assert len(details["samples"]) == 3
    for s in details["samples"]:
        u = kg.users.id(s["user"])
        assert s["history_size"] == int((sp.train.user == u).sum())
        for name, top in s["top"].items():
            assert [t["hit"] for t in top] == [t["item"] in s["test_items"] for t in top]
            assert s["explanations"][name]["item"] == top[0]["item"]


def test_report_sections_and_no_external_resources(run_dir):
    d, kg, *_ = run_dir
    path = write_report(d)
    assert path == d / "report.html"
    page = path.read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    assert page.count('src="data:image/png;base64,') == 3  # metrics vs K, training curves, long tail + coverage
    # nothing is fetched: no src/href/url() other than data: URIs, no <link>/<script>
    assert not re.search(r'(src|href)\s*=\s*"(?!data:)', page)
    assert "url(" not in page and "<link" not in page and "<script" not in page and "@import" not in page
    # labels, not IRIs, in the users' tables and explanations
    assert "Item 0 (action)" in page or "Item 4 (romance)" in page
    assert ">http://x/item/" not in page


def test_report_without_details_and_bad_run_dir(run_dir, tmp_path):
    d, *_ = run_dir
    (tmp_path / "results.json").write_text((d / "results.json").read_text())
    page = render_report(load_run(tmp_path))
    assert page.count("report.json is missing") == 3
    with pytest.raises(KgrecError, match="'run_dir'.*no such directory"):
        load_run(tmp_path / "nope")
    with pytest.raises(KgrecError, match="'run_dir' .* holds neither results.json"):
        load_run(tmp_path / "..")
