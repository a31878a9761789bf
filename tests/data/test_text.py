"""Text rendering of items and users, and padded user histories, on a hand-built graph."""

import math

import pytest
import torch

from kgrec.data.graph import Interactions, KnowledgeGraph
from kgrec.data.text import item_texts, relation_name, relative_time, user_history, user_texts
from kgrec.data.vocab import Vocab

EX = "http://ex.org/"
KGR = "https://w3id.org/kgrec/vocab#"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
DBO = "http://dbpedia.org/ontology/"
FB = "http://rdf.freebase.com/ns/"
DAY = 86400.0
T = 1_000_000_000.0  # 2001-09-09


def make_kg(interactions: Interactions | None = None) -> KnowledgeGraph:
    items = Vocab([EX + "item/i1", EX + "item/i2", EX + "item/i3", EX + "item/i4"], name="item")
    attrs = sorted([EX + "genre/Animation", EX + "genre/Comedy", EX + "person/p1", FB + "m.0abc"])
    entities = Vocab(items.labels + attrs, sort=False, name="entity")
    relations = Vocab([DBO + "director", KGR + "genre", FB + "film.film.actor"], name="relation")
    e, r = entities.id, relations.id
    triples = torch.tensor(sorted([
        (0, r(KGR + "genre"), e(EX + "genre/Animation")),
        (0, r(KGR + "genre"), e(EX + "genre/Comedy")),
        (1, r(KGR + "genre"), e(EX + "genre/Comedy")),
        (0, r(DBO + "director"), e(EX + "person/p1")),
        (0, r(FB + "film.film.actor"), e(FB + "m.0abc")),
        (1, r(FB + "film.film.actor"), e(FB + "m.0abc")),
    ]))
    literals = {
        0: {KGR + "title": ["Toy Story"], RDFS_LABEL: ["Toy Story"],
            KGR + "description": ["Toy Story is a 1995 American\n  computer-animated film."]},
        1: {KGR + "title": ["Heat (1995)"], DBO + "abstract": ["A heist film"]},
        3: {KGR + "title": ["Secret Test Movie"]},
        e(EX + "person/p1"): {RDFS_LABEL: ["John Lasseter"]},
    }
    features = torch.full((len(entities), 1), math.nan)
    features[0, 0] = 1995.0
    features[1, 0] = 1995.0
    users = Vocab([EX + "user/u0", EX + "user/u1", EX + "user/u2", EX + "user/u3"], name="user")
    return KnowledgeGraph(users, items, entities, relations, triples,
                          interactions if interactions is not None else Interactions.empty(),
                          literals=literals, features=features, feature_names=[KGR + "year"])


def test_item_texts_exact():
    texts = item_texts(make_kg())
    assert texts == [
        # genre (3 triples in the graph) before director (1); Comedy (2 links) before Animation (1);
        # the Freebase mid actor is skipped; rdfs:label copy of the title is not repeated
        "Toy Story (1995). genre: Comedy, Animation. director: John Lasseter. "
        "Toy Story is a 1995 American computer-animated film.",
        "Heat (1995). genre: Comedy. A heist film.",  # year already in the title: not repeated
        "i3",  # nothing known: the IRI local name
        "Secret Test Movie",  # a bare title gets no period
    ]


def test_item_texts_limits():
    kg = make_kg()
    assert item_texts(kg, max_neighbors=1)[0].startswith("Toy Story (1995). genre: Comedy. director: John Lasseter. ")
    no_attrs = item_texts(kg, max_neighbors=0)[0]
    assert no_attrs == "Toy Story (1995). Toy Story is a 1995 American computer-animated film."
    short = item_texts(kg, max_chars=30)[0]
    assert short == "Toy Story (1995). genre"  # cut at a word boundary, trailing separators dropped
    assert all(len(t) <= 30 for t in item_texts(kg, max_chars=30))
    assert item_texts(kg) == item_texts(kg)  # deterministic


def test_item_texts_bad_args():
    with pytest.raises(ValueError, match="'max_chars' must be a positive integer \\(got 0\\)"):
        item_texts(make_kg(), max_chars=0)
    with pytest.raises(ValueError, match="'max_neighbors' must be an integer >= 0 \\(got -1\\)"):
        item_texts(make_kg(), max_neighbors=-1)


def test_relation_name():
    assert relation_name(FB + "film.film.directed_by") == "directed by"
    assert relation_name(DBO + "director") == "director"
    assert relation_name(KGR + "genre") == "genre"
    assert relation_name(EX + "hasGenre") == "has genre"
    assert relation_name("http://purl.org/dc/terms/subject/") == "subject"


def test_relative_time():
    assert [relative_time(d) for d in (-2, 0, 0.99, 1, 3.5, 7, 20, 30, 65, 364, 365.25, 800)] == [
        "today", "today", "today", "1 day earlier", "3 days earlier", "1 week earlier", "2 weeks earlier",
        "1 month earlier", "2 months earlier", "11 months earlier", "1 year earlier", "2 years earlier"]


def interactions():
    # user 0: timed; user 1: no times; user 2: only a test interaction; user 3: nothing
    rows = [  # user, item, weight, time
        (0, 1, 1.0, T - 3 * DAY),
        (0, 0, 4.0, T),
        (0, 2, 5.0, T - 2 * 3600),
        (0, 3, 1.0, T + 10 * DAY),   # test
        (0, 2, 3.5, T - 65 * DAY),
        (1, 1, 1.0, math.nan),
        (1, 0, 2.0, math.nan),
        (1, 3, 1.0, math.nan),       # test
        (2, 3, 1.0, T),              # test
    ]
    u, i, w, t = zip(*rows)
    inter = Interactions.from_lists(u, i, w, t)
    is_test = torch.tensor([r[1] == 3 for r in rows])
    return inter, inter.select(~is_test), inter.select(is_test)


def test_user_texts_exact():
    inter, train, test = interactions()
    kg = make_kg(inter)
    texts = user_texts(kg, train)
    assert texts == [
        "today: Toy Story, rated 4; i3, rated 5. 3 days earlier: Heat (1995). 2 months earlier: i3, rated 3.5.",
        "Toy Story, rated 2; Heat (1995).",  # no times: higher weight first, no time words
        "",  # only a test interaction
        "",  # nothing
    ]
    # only training interactions are read: a test item's title never appears
    assert not any("Secret Test Movie" in t for t in texts)
    # the graph's full interactions would have shown it
    assert "Secret Test Movie" in user_texts(kg, inter)[0]


def test_user_texts_now_and_max_items():
    inter, train, _ = interactions()
    kg = make_kg(inter)
    assert user_texts(kg, train, now=T + 2 * DAY)[0] == (
        "2 days earlier: Toy Story, rated 4; i3, rated 5. 5 days earlier: Heat (1995). "
        "2 months earlier: i3, rated 3.5.")
    assert user_texts(kg, train, max_items=2)[0] == "today: Toy Story, rated 4; i3, rated 5."


def test_user_texts_bad_input():
    inter, train, _ = interactions()
    kg = make_kg(inter)
    with pytest.raises(ValueError, match="'max_items' must be a positive integer \\(got 0\\)"):
        user_texts(kg, train, max_items=0)
    with pytest.raises(ValueError, match="'now' must be a finite number"):
        user_texts(kg, train, now=math.nan)
    bad = Interactions.from_lists([0, 7], [0, 1])
    with pytest.raises(ValueError, match="'train' has user id 7, expected ids in \\[0, 4\\)"):
        user_texts(kg, bad)
    with pytest.raises(ValueError, match="'train' has item id 9, expected ids in \\[0, 4\\)"):
        user_texts(kg, Interactions.from_lists([0], [9]))


def test_user_history():
    _, train, _ = interactions()
    items, mask, age = user_history(train, num_users=4, max_len=3)
    assert items.size() == mask.size() == age.size() == (4, 3)
    assert items.dtype == torch.long and mask.dtype == torch.bool and age.dtype == torch.float32
    assert items.tolist() == [[0, 2, 1], [0, 1, -1], [-1, -1, -1], [-1, -1, -1]]  # most recent first, cut at 3
    assert mask.tolist() == [[True, True, True], [True, True, False], [False] * 3, [False] * 3]
    assert torch.allclose(age[0], torch.tensor([0.0, 2 / 24, 3.0]))
    assert age[1:].eq(0).all()  # unknown times and padding give 0
    items, mask, age = user_history(train, num_users=4, max_len=10)
    assert items.size() == (4, 10) and items[0, :4].tolist() == [0, 2, 1, 2]
    assert age[0, 3].item() == pytest.approx(65.0)
    assert int(mask.sum()) == len(train)


def test_user_history_ties_are_deterministic():
    # same time, same weight: item id order, whatever the row order
    a = Interactions.from_lists([0, 0, 0], [2, 0, 1], time=[T, T, T - DAY])
    b = Interactions.from_lists([0, 0, 0], [1, 0, 2], time=[T - DAY, T, T])
    assert user_history(a, 1, 3)[0].tolist() == user_history(b, 1, 3)[0].tolist() == [[0, 2, 1]]


def test_user_history_bad_args():
    _, train, _ = interactions()
    with pytest.raises(ValueError, match="'max_len' must be a positive integer \\(got 0\\)"):
        user_history(train, 4, max_len=0)
    with pytest.raises(ValueError, match="'train' has user id 1, expected ids in \\[0, 1\\)"):
        user_history(train, 1)
