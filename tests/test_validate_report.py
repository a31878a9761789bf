"""The mapping report (kgrec.data.validation), ``kgrec validate --strict``, users without
interactions, named graphs, and one interaction per (user, item) pair.
"""

import contextlib
import io
import warnings
from pathlib import Path

import pytest

import kgrec
from kgrec.cli import main
from kgrec.data import loader
from kgrec.data.validation import DROPPED_USERS_WARNING, NAMED_GRAPHS_WARNING, REPEATS_WARNING

TOYS = Path(__file__).resolve().parents[1] / "kg_data" / "toy"
EX = "http://ex.org/"
KGR = "https://w3id.org/kgrec/vocab#"
PREFIXES = """@prefix ex: <http://ex.org/> .
@prefix kgr: <https://w3id.org/kgrec/vocab#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""

# 3 watch events (ex:Watch, agent ex:by, object ex:film, time ex:at), 2 direct ex:likes, genres,
# labels; ex:dir is an ex:Person (the user class) who never interacts; ex:m1 ex:similar ex:m1 is
# a self-loop (a data warning)
GRAPH = PREFIXES + """
ex:alice a ex:Person . ex:bob a ex:Person . ex:dir a ex:Person .
ex:m1 a ex:Film ; ex:genre ex:drama ; ex:director ex:dir ; rdfs:label "One" ; ex:similar ex:m1 .
ex:m2 a ex:Film ; ex:genre ex:drama ; rdfs:label "Two" .
ex:m3 a ex:Film ; ex:genre ex:comedy .
ex:w1 a ex:Watch ; ex:by ex:alice ; ex:film ex:m1 ; ex:at "2020-01-01T00:00:00Z"^^xsd:dateTime .
ex:w2 a ex:Watch ; ex:by ex:alice ; ex:film ex:m2 ; ex:at "2020-01-02T00:00:00Z"^^xsd:dateTime .
ex:w3 a ex:Watch ; ex:by ex:bob ; ex:film ex:m2 ; ex:at "2020-01-03T00:00:00Z"^^xsd:dateTime .
ex:bob ex:likes ex:m3 .
ex:alice ex:likes ex:m3 .
"""


def mapping(**over) -> dict:
    m = {
        "name": "films",
        "prefixes": {"ex": EX},
        "users": {"classes": [over.get("user_class", "ex:Person")], "infer": False},
        "items": {"classes": ["ex:Film"], "infer": True},
        "interactions": [
            {"name": "watch", "class": over.get("event_class", "ex:Watch"), "agent": "ex:by",
             "object": over.get("object", "ex:film"), "time": "ex:at"},
            {"name": "like", "predicate": "ex:likes"},
        ],
        "kg": {"edges": "*"},
        "text": {"predicates": [over.get("text", "rdfs:label")], "languages": ["en", ""]},
        "features": {"numeric": []},
    }
    return m


def write_mapping(tmp_path, **over) -> str:
    m = mapping(**over)
    lines = [f'name = "{m["name"]}"', "[prefixes]", f'ex = "{EX}"', "[users]",
             f'classes = ["{m["users"]["classes"][0]}"]', "infer = false", "[items]", 'classes = ["ex:Film"]',
             "[[interactions]]", 'name = "watch"', f'class = "{over.get("event_class", "ex:Watch")}"',
             'agent = "ex:by"', f'object = "{over.get("object", "ex:film")}"', 'time = "ex:at"',
             "[[interactions]]", 'name = "like"', 'predicate = "ex:likes"',
             "[text]", f'predicates = ["{over.get("text", "rdfs:label")}"]', "[features]", "numeric = []"]
    p = tmp_path / f"m{len(list(tmp_path.glob('m*.toml')))}.toml"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def load(path, m=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return loader.load(path, mapping=m, **kw)


def run(argv) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main([str(a) for a in argv])
    return code, out.getvalue()


@pytest.fixture()
def graph(tmp_path):
    p = tmp_path / "films.ttl"
    p.write_text(GRAPH)
    return p


def test_per_rule_counts_equal_hand_counts(graph):
    kg = load(graph, mapping())
    rep = kg.mapping_report
    rows = {(r.section, r.name): r for r in rep.rules}
    # watch: alice-m1, alice-m2, bob-m2 (2 users, 2 items); like: bob-m3, alice-m3
    w, lk = rows["interactions", "watch"], rows["interactions", "like"]
    assert (w.interactions, w.users, w.items) == (3, 2, 2)
    assert (lk.interactions, lk.users, lk.items) == (2, 2, 1)
    assert rows["users", "classes ex:Person"].users == 2  # ex:dir never interacts
    assert rows["items", "classes ex:Film + objects"].items == 3
    # ex:genre: m1, m2, m3; ex:director: m1 -> dir; the self-loop is not an edge
    assert rows["kg", "ex:genre"].kg_edges == 3 and rows["kg", "ex:director"].kg_edges == 1
    assert ("kg", "ex:similar") not in rows
    assert (rows["text", "rdfs:label"].texts, rows["text", "rdfs:label"].items) == (2, 2)
    assert rep.unmatched == [] and rep.blocking == []
    assert len(kg.interactions) == 5


def test_person_without_interactions_is_not_a_user(graph):
    kg = load(graph, mapping())
    assert kg.users.labels == [EX + "alice", EX + "bob"]
    assert kg.warnings[DROPPED_USERS_WARNING] == 1 and kg.mapping_report.typed_users_dropped == 1
    assert kg.stats()["users_without_interactions"] == 0
    assert EX + "dir" in kg.entities.labels  # the director stays an attribute entity of m1


def test_foaf_person_author_is_not_a_user(tmp_path):
    p = tmp_path / "books.ttl"
    p.write_text(PREFIXES + """
ex:ann a foaf:Person . ex:writer a foaf:Person . ex:actor a foaf:Person .
ex:b1 ex:author ex:writer ; ex:cast ex:actor .
ex:ann kgr:interactedWith ex:b1 .
""")
    kg = load(p, {"users": {"classes": ["foaf:Person"]}})
    assert kg.num_users == 1 and kg.users.labels == [EX + "ann"]
    assert kg.mapping_report.typed_users_dropped == 2


@pytest.mark.parametrize("over, where, term, suggestion", [
    ({"event_class": "ex:Wtach"}, "interactions 'watch'.class", EX + "Wtach", EX + "Watch"),
    ({"object": "ex:flim"}, "interactions 'watch'.object", EX + "flim", EX + "film"),
    ({"text": "rdfs:lable"}, "text.predicates", "http://www.w3.org/2000/01/rdf-schema#lable",
     "http://www.w3.org/2000/01/rdf-schema#label"),
])
def test_misspelt_term_is_named_with_its_suggestion(graph, tmp_path, over, where, term, suggestion):
    kg = load(graph, mapping(**over))
    (u,) = kg.mapping_report.unmatched
    assert (u.iri, u.where, u.blocking) == (term, where, True)
    assert u.suggestions[0] == suggestion
    code, out = run(["validate", graph, "--mapping", write_mapping(tmp_path, **over)])
    assert code == 0 and f"closest in the graph: {kg.mapping_report.shorten(suggestion)}" in out
    code, out = run(["validate", graph, "--mapping", write_mapping(tmp_path, **over), "--strict"])
    assert code == 2
    assert out.splitlines()[-1] == (f"invalid: --strict and 1 mapping term(s) match nothing in the graph: "
                                    f"{kg.mapping_report.shorten(term)}")


def test_misspelt_watch_class_loses_its_interactions_but_loads(graph):
    kg = load(graph, mapping(event_class="ex:Wtach"))
    rows = {(r.section, r.name): r for r in kg.mapping_report.rules}
    assert rows["interactions", "watch"].interactions == 0 and len(kg.interactions) == 2


def test_correct_mapping_passes_strict_with_data_warnings(graph, tmp_path):
    code, out = run(["validate", graph, "--mapping", write_mapping(tmp_path), "--strict"])
    assert code == 0
    table = {ln.split("|")[1].strip(): ln.split("|")[2].strip() for ln in out.splitlines() if ln.startswith("| ")}
    assert table["KG self-loop (subject = object) skipped"] == "1"
    assert table[DROPPED_USERS_WARNING] == "1"
    assert "every mapping term matches the graph" in out


def test_shipped_toys_pass_strict():
    assert run(["validate", TOYS / "toy.ttl", "--strict"])[0] == 0
    assert run(["validate", TOYS / "toy-schema.ttl", "--mapping", "schema-org", "--strict"])[0] == 0


def test_unloadable_file_exits_2(tmp_path):
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix ex: <http://ex.org/> .\nex:a ex:b ex:c .\nex:a ex:b \"open .\n")
    code, out = run(["validate", bad])
    assert code == 2 and out.startswith(f"invalid: {bad}:3: ")


NQ = """<http://ex.org/u> <https://w3id.org/kgrec/vocab#interactedWith> <http://ex.org/i> <http://ex.org/g1> .
<http://ex.org/v> <https://w3id.org/kgrec/vocab#interactedWith> <http://ex.org/i> <http://ex.org/g2> .
<http://ex.org/v> <https://w3id.org/kgrec/vocab#interactedWith> <http://ex.org/j> <http://ex.org/g2> .
<http://ex.org/i> <http://ex.org/genre> <http://ex.org/x> .
"""


def test_named_graphs_are_merged_with_one_warning(tmp_path):
    p = tmp_path / "two.nq"
    p.write_text(NQ)
    kg = load(p)
    assert len(kg.interactions) == 3 and kg.num_users == 2
    assert kg.warnings[NAMED_GRAPHS_WARNING] == 2 and kg.mapping_report.named_graphs_merged == 2


def test_trig_named_graphs_are_merged(tmp_path):
    p = tmp_path / "two.trig"
    p.write_text(PREFIXES + "ex:g1 { ex:u kgr:interactedWith ex:i . }\nex:g2 { ex:v kgr:interactedWith ex:i . }\n"
                 "ex:v kgr:interactedWith ex:j .\n")
    kg = load(p)
    assert len(kg.interactions) == 3 and kg.warnings[NAMED_GRAPHS_WARNING] == 2


def test_event_missing_both_parts_counted_once(tmp_path):
    p = tmp_path / "e.ttl"
    p.write_text(PREFIXES + "ex:ok a ex:Watch ; ex:by ex:u ; ex:film ex:i .\nex:empty a ex:Watch .\n"
                 "ex:noitem a ex:Watch ; ex:by ex:u .\n")
    kg = load(p, {"prefixes": {"ex": EX}, "interactions": [
        {"name": "watch", "class": "ex:Watch", "agent": "ex:by", "object": "ex:film"}]})
    assert kg.warnings["interaction 'watch': event without agent and object (skipped)"] == 1
    assert kg.warnings["interaction 'watch': event without object (skipped)"] == 1
    assert "interaction 'watch': event without agent (skipped)" not in kg.warnings
    assert kg.mapping_report.incomplete_events == 2


# a rating (weight 4, day 1), a watch of the same pair (no weight: 1.0, day 3), the same rating
# repeated (weight 2, day 2); u also watches j; v rates i once
DUP = PREFIXES + """
ex:r1 kgr:user ex:u ; kgr:item ex:i ; kgr:rating 4 ; kgr:timestamp "2020-01-01T00:00:00Z"^^xsd:dateTime .
ex:r2 kgr:user ex:u ; kgr:item ex:i ; kgr:rating 2 ; kgr:timestamp "2020-01-02T00:00:00Z"^^xsd:dateTime .
ex:w1 a ex:Watch ; ex:by ex:u ; ex:film ex:i ; ex:at "2020-01-03T00:00:00Z"^^xsd:dateTime .
ex:w2 a ex:Watch ; ex:by ex:u ; ex:film ex:j ; ex:at "2020-01-04T00:00:00Z"^^xsd:dateTime .
ex:r3 kgr:user ex:v ; kgr:item ex:i ; kgr:rating 5 ; kgr:timestamp "2020-01-05T00:00:00Z"^^xsd:dateTime .
"""
DUP_MAPPING = {
    "interactions": [
        {"name": "rating", "agent": "kgr:user", "object": "kgr:item", "weight": "kgr:rating",
         "time": "kgr:timestamp"},
        {"name": "watch", "class": "ex:Watch", "agent": "ex:by", "object": "ex:film", "time": "ex:at"},
    ],
    "prefixes": {"ex": EX},
}
DAY = 86400.0
T0 = 1577836800.0  # 2020-01-01


def test_repeated_pairs_become_one_interaction(tmp_path):
    p = tmp_path / "dup.ttl"
    p.write_text(DUP)
    kg = load(p, DUP_MAPPING)
    got = sorted((kg.users[int(u)], kg.items[int(i)], float(w), float(t)) for u, i, w, t in zip(
        kg.interactions.user, kg.interactions.item, kg.interactions.weight, kg.interactions.time))
    assert got == [(EX + "u", EX + "i", 4.0, T0 + 2 * DAY), (EX + "u", EX + "j", 1.0, T0 + 3 * DAY),
                   (EX + "v", EX + "i", 5.0, T0 + 4 * DAY)]
    assert kg.warnings[REPEATS_WARNING] == 2 and kg.mapping_report.repeats_merged == 2
    rows = {(r.section, r.name): r.interactions for r in kg.mapping_report.rules}
    assert rows["interactions", "rating"] == 3 and rows["interactions", "watch"] == 2


def test_repeated_pairs_merged_from_ntriples(tmp_path):
    k = "<https://w3id.org/kgrec/vocab#interactedWith>"
    lines = [f"<{EX}u> {k} <{EX}i> .", f"<{EX}e1> <{KGR}user> <{EX}u> .", f"<{EX}e1> <{KGR}item> <{EX}i> .",
             f'<{EX}e1> <{KGR}rating> "3"^^<http://www.w3.org/2001/XMLSchema#integer> .',
             f"<{EX}v> {k} <{EX}i> ."]
    p = tmp_path / "dup.nt"
    p.write_text("\n".join(lines) + "\n")
    kg = load(p)
    assert len(kg.interactions) == 2 and kg.warnings[REPEATS_WARNING] == 1
    assert sorted(kg.interactions.weight.tolist()) == [1.0, 3.0]


@pytest.mark.parametrize("strategy", ["random", "temporal"])
def test_split_never_puts_one_pair_in_two_parts(tmp_path, strategy):
    lines = [PREFIXES]
    for u in range(6):
        for i in range(8):
            for rep in range(1 + (u + i) % 3):  # every pair once to three times
                lines.append(f"ex:e{u}_{i}_{rep} kgr:user ex:u{u} ; kgr:item ex:i{i} ; "
                             f"kgr:timestamp {1000 * i + rep} .")
    p = tmp_path / "many.ttl"
    p.write_text("\n".join(lines) + "\n")
    kg = load(p)
    assert len(kg.interactions) == 48
    for seed in range(5):
        sp = kgrec.split(kg, strategy, ratios=(0.6, 0.2, 0.2), seed=seed)
        parts = [set(zip(x.user.tolist(), x.item.tolist())) for x in (sp.train, sp.valid, sp.test)]
        assert sum(map(len, parts)) == 48 and len(set.union(*parts)) == 48
