"""The synthetic KG generator: determinism, counts through kgrec.load, heavy tails, interest drift."""

import gzip

import numpy as np
import pytest
import torch

import kgrec
from kgrec.cli import main
from kgrec.data.synthetic import SKOS_BROADER, generate
from kgrec.errors import KgrecError

KGR = "https://w3id.org/kgrec/vocab#"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "g.nt.gz"
    counts = generate(path, users=600, items=800, seed=3)
    return path, counts, kgrec.load(path)


def test_same_seed_same_bytes_other_seed_differs(tmp_path, synth):
    path, _, _ = synth
    again, other = tmp_path / "a.nt.gz", tmp_path / "b.nt.gz"
    generate(again, users=600, items=800, seed=3)
    generate(other, users=600, items=800, seed=4)
    assert again.read_bytes() == path.read_bytes()
    assert other.read_bytes() != path.read_bytes()


def test_loads_with_requested_counts(synth):
    path, counts, kg = synth
    assert kg.num_users == 600 and kg.num_items == 800
    assert len(kg.interactions) == counts["interactions"] > 600
    assert not kg.warnings
    n_lines = sum(1 for _ in gzip.open(path, "rt", encoding="utf-8"))
    assert n_lines == counts["triples"]
    # genre hierarchy, directors and genres are KG relations; every item has a title
    assert {SKOS_BROADER, KGR + "genre", "http://dbpedia.org/ontology/director"} == set(kg.relations.labels)
    assert all(kg.literals.get(i, {}).get(KGR + "title") for i in range(kg.num_items))
    assert kg.interactions.has_time
    # no user interacts with the same item twice
    key = kg.interactions.user * kg.num_items + kg.interactions.item
    assert torch.unique(key).numel() == key.numel()


def test_heavy_tailed_degrees(synth):
    _, _, kg = synth
    item_deg = torch.bincount(kg.interactions.item, minlength=kg.num_items).sort(descending=True).values
    top = max(1, kg.num_items // 100)
    assert item_deg[:top].sum() / item_deg.sum() > 0.10  # uniform would be ~0.01
    user_deg = torch.bincount(kg.interactions.user, minlength=kg.num_users).double()
    assert user_deg.max() > 4 * user_deg.median()


def _item_genres(kg) -> np.ndarray:
    """``[num_items, G]`` 0/1: the top genres of each item's subgenres (via ``skos:broader``)."""
    t = kg.triples.numpy()
    g_rel, b_rel = kg.relations.id(KGR + "genre"), kg.relations.id(SKOS_BROADER)
    broader = {h: tl for h, r, tl in t if r == b_rel}
    tops = sorted(set(broader.values()))
    col = {g: k for k, g in enumerate(tops)}
    out = np.zeros((kg.num_items, len(tops)))
    for h, r, tl in t:
        if r == g_rel:
            out[h, col[broader[tl]]] = 1.0
    return out


def _early_late(kg) -> tuple[float, float]:
    """Over users with 20+ interactions: the mean total-variation distance between the genre
    distributions of the first and second half of their history, and the share of users whose
    most frequent genre differs between the halves.
    """
    genres = _item_genres(kg)
    inter = kg.interactions
    dists, switched = [], []
    for u in range(kg.num_users):
        rows = (inter.user == u).nonzero().view(-1)
        if rows.numel() < 20:  # short histories are all sampling noise
            continue
        g = genres[inter.item[rows[inter.time[rows].argsort()]].numpy()]
        half = len(g) // 2
        a, b = g[:half].sum(0), g[half:].sum(0)
        dists.append(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())
        switched.append(a.argmax() != b.argmax())
    return float(np.mean(dists)), float(np.mean(switched))


def test_interest_drift(tmp_path, synth):
    _, _, kg = synth
    still = tmp_path / "still.nt.gz"
    generate(still, users=600, items=800, seed=3, drift=0.0)
    (tv_drift, switch_drift), (tv_still, switch_still) = _early_late(kg), _early_late(kgrec.load(still))
    # measured at seed 3: 0.37 / 0.83 with drift 0.8, 0.25 / 0.00 without (short halves are noisy)
    assert tv_drift > tv_still + 0.08
    assert switch_drift > 0.5 and switch_still < 0.1


@pytest.mark.parametrize("kwargs, name", [
    ({"users": 0, "items": 10}, "users"), ({"users": 5, "items": 1}, "items"),
    ({"users": 5, "items": 10, "drift": 1.5}, "drift"), ({"users": 5, "items": 10, "seed": -1}, "seed"),
    ({"users": 5, "items": 10, "interactions_per_user": 0}, "interactions_per_user"),
])
def test_bad_arguments_name_the_argument(tmp_path, kwargs, name):
    with pytest.raises(KgrecError, match=f"'{name}'"):
        generate(tmp_path / "x.nt", **kwargs)


def test_bad_suffix(tmp_path):
    with pytest.raises(KgrecError, match="'out'"):
        generate(tmp_path / "x.ttl", users=5, items=10)
    assert not (tmp_path / "x.ttl").exists()


def test_cli_generate(tmp_path, capsys):
    out = tmp_path / "cli.nt.gz"
    assert main(["generate", "--users", "30", "--items", "20", "--out", str(out), "--seed", "1"]) == 0
    ref = tmp_path / "ref.nt.gz"
    generate(ref, users=30, items=20, seed=1)
    assert out.read_bytes() == ref.read_bytes()
    assert "interactions" in capsys.readouterr().out
    assert main(["generate", "--users", "0", "--items", "20", "--out", str(out)]) == 2
