"""kgrec.data.loader.load on the toy graph (known answers), other formats, same-as, bad input."""

import gzip
import math
import os
import random
import warnings
from pathlib import Path

import pytest
import rdflib
import torch

from kgrec.data.loader import load as _load
from kgrec.data.mapping import Mapping
from kgrec.data.validation import NAMED_GRAPHS_WARNING, REPEATS_WARNING
from kgrec.errors import EmptyGraphError, MappingError, RDFParseError

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "kg_data" / "toy" / "toy.ttl"
TOY_SCHEMA = ROOT / "kg_data" / "toy" / "toy-schema.ttl"
DATA_ROOT = Path(os.environ.get("KGREC_DATA_ROOT", ROOT.parent / "shared" / "data"))
IMDB = DATA_ROOT / "rdf-imdb-movies" / "movies.ttl"

KGR = "https://w3id.org/kgrec/vocab#"
SCHEMA = "http://schema.org/"
DBO = "http://dbpedia.org/ontology/"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
TOYNS = "https://w3id.org/kgrec/data/toy/"
PREFIXES = """@prefix kgr: <https://w3id.org/kgrec/vocab#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <http://ex.org/> .
@prefix fb: <http://fb.org/> .
"""


def load(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _load(*args, **kwargs)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def ttl(tmp_path: Path, body: str, name: str = "data.ttl") -> Path:
    return write(tmp_path / name, PREFIXES + body)


def assert_same_graph(a, b, warnings_too=True):
    assert a.users == b.users and a.items == b.items
    assert a.entities == b.entities and a.relations == b.relations
    assert torch.equal(a.triples, b.triples)
    ia, ib = a.interactions, b.interactions
    for name in ("user", "item", "weight"):
        assert torch.equal(getattr(ia, name), getattr(ib, name)), name
    assert torch.equal(torch.nan_to_num(ia.time, nan=-1.0), torch.nan_to_num(ib.time, nan=-1.0))
    assert a.literals == b.literals and a.user_literals == b.user_literals
    assert a.feature_names == b.feature_names
    assert torch.equal(torch.nan_to_num(a.features, nan=-1.0), torch.nan_to_num(b.features, nan=-1.0))
    assert a.interaction_text == b.interaction_text
    if warnings_too:
        assert a.warnings == b.warnings


@pytest.fixture(scope="module")
def toy():
    return load(TOY)


# ------------------------------------------------------------ toy: known answers
def test_toy_counts(toy):
    assert (toy.num_users, toy.num_items, toy.num_entities, toy.num_relations) == (6, 8, 24, 3)
    assert toy.triples.size() == (25, 3)
    assert len(toy.interactions) == 15
    assert toy.relations.labels == [DBO + "birthPlace", DBO + "director", KGR + "genre"]
    assert torch.bincount(toy.triples[:, 1]).tolist() == [1, 8, 16]
    assert toy.sources == [str(TOY)]


def test_toy_ids_are_ranks_of_sorted_iris(toy):
    names = ["alien", "blade-runner", "casablanca", "heat", "jaws", "jurassic-park", "toy-story", "up"]
    assert toy.items.labels == [TOYNS + "item/" + n for n in names]
    assert toy.items.id(TOYNS + "item/jaws") == 4
    assert toy.entities.labels[:8] == toy.items.labels
    assert toy.entities.id(TOYNS + "genre/Adventure") == 8 and toy.entities.id(TOYNS + "genre/Thriller") == 16
    assert toy.entities.id(TOYNS + "person/john-lasseter") == 17
    assert toy.entities.id(TOYNS + "place/south-shields") == 23
    assert toy.users.labels == [TOYNS + f"user/u{i}" for i in range(1, 7)]


def test_toy_kg_triples(toy):
    rows = {tuple(r) for r in toy.triples.tolist()}
    e, r = toy.entities.id, toy.relations.id
    assert (e(TOYNS + "item/alien"), r(KGR + "genre"), e(TOYNS + "genre/Horror")) in rows
    assert (e(TOYNS + "item/up"), r(DBO + "director"), e(TOYNS + "person/pete-docter")) in rows
    # two hops from the items: the director's birth place
    assert (e(TOYNS + "person/ridley-scott"), r(DBO + "birthPlace"), e(TOYNS + "place/south-shields")) in rows
    assert (0, r(KGR + "genre"), e(TOYNS + "genre/Comedy")) not in rows  # alien is no comedy
    # unique and sorted
    assert [tuple(x) for x in toy.triples.tolist()] == sorted(rows)


def test_toy_interactions(toy):
    inter = toy.interactions
    assert inter.user.tolist() == sorted(inter.user.tolist())
    u6, heat = toy.users.id(TOYNS + "user/u6"), toy.items.id(TOYNS + "item/heat")
    direct = [k for k in range(15) if inter.user[k] == u6 and inter.item[k] == heat]
    assert len(direct) == 1 and inter.weight[direct[0]] == 1.0 and math.isnan(inter.time[direct[0]])
    # event 1: u1 rated alien 5 at 2020-01-01T10:00:00Z
    k = next(k for k in range(15) if inter.user[k] == 0 and inter.item[k] == 0)
    assert inter.weight[k] == 5.0 and inter.time[k] == 1577872800.0
    assert inter.time.dtype == torch.float64 and inter.weight.dtype == torch.float32
    assert int(torch.isnan(inter.time).sum()) == 1
    assert sorted(inter.weight.tolist()) == [1, 1, 2, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5]
    texts = [t for t in toy.interaction_text if t]
    assert texts == ["Still great after all these years."]
    k = toy.interaction_text.index(texts[0])
    who = (toy.users[int(inter.user[k])], toy.items[int(inter.item[k])])
    assert who == (TOYNS + "user/u5", TOYNS + "item/toy-story")


def test_toy_literals_and_language_filter(toy):
    alien, casablanca = toy.entities.id(TOYNS + "item/alien"), toy.entities.id(TOYNS + "item/casablanca")
    assert toy.literals[alien][KGR + "title"] == ["Alien"]  # the @de title is dropped
    assert toy.literals[casablanca] == {KGR + "title": ["Casablanca"]}  # untagged kept, @fr dropped
    assert toy.warnings["text literal in language 'de' dropped"] == 1
    assert toy.warnings["text literal in language 'fr' dropped"] == 1
    assert toy.literals[toy.entities.id(TOYNS + "genre/SciFi")] == {RDFS_LABEL: ["Science fiction"]}
    assert toy.user_literals == {0: {RDFS_LABEL: ["Alice"]}, 1: {RDFS_LABEL: ["Bob"]}}
    assert toy.label(alien) == "Alien"
    every = load(TOY, mapping={"text": {"languages": ["*"]}})
    assert every.literals[alien][KGR + "title"] == ["Alien", "Alien – Das unheimliche Wesen aus einer fremden Welt"]
    german = load(TOY, mapping={"text": {"languages": ["de"]}})
    assert german.literals[alien] == {KGR + "title": ["Alien – Das unheimliche Wesen aus einer fremden Welt"]}
    assert casablanca not in german.literals


def test_toy_features(toy):
    assert toy.feature_names == [KGR + "year"]
    assert toy.features.size() == (24, 1)
    assert toy.features[:8, 0].tolist() == [1979, 1982, 1942, 1995, 1975, 1993, 1995, 2009]
    assert bool(torch.isnan(toy.features[8:]).all())
    none = load(TOY, mapping={"features": {"numeric": []}})
    assert none.features is None and none.feature_names == []


def test_toy_stats_and_no_warnings_beyond_languages(toy):
    assert set(toy.warnings) == {"text literal in language 'de' dropped", "text literal in language 'fr' dropped"}
    s = toy.stats()
    assert s["items_without_interactions"] == 1 and s["attribute_entities"] == 16


def test_positive_rule_drops_low_ratings_but_keeps_users_and_items():
    m = Mapping.profile("kgrec").to_dict()
    m["interactions"][0]["positive"] = "weight >= 4"
    kg = load(TOY, mapping=m)
    assert len(kg.interactions) == 10  # 9 events rated 4-5 + the direct one
    assert kg.warnings["interaction 'event': dropped by positive rule 'weight >= 4'"] == 5
    assert (kg.num_users, kg.num_items) == (6, 8)
    assert sorted(kg.interactions.weight.tolist()) == [1, 4, 4, 4, 4, 5, 5, 5, 5, 5]


def test_schema_org_profile_gives_the_same_graph(toy):
    ks = load(TOY_SCHEMA, mapping="schema-org")
    assert ks.users == toy.users and ks.items == toy.items and ks.entities == toy.entities
    for name in ("user", "item", "weight"):
        assert torch.equal(getattr(ks.interactions, name), getattr(toy.interactions, name))
    assert torch.equal(torch.nan_to_num(ks.interactions.time, nan=-1), torch.nan_to_num(toy.interactions.time, nan=-1))
    assert ks.interaction_text == toy.interaction_text
    assert ks.relations.labels == [SCHEMA + "birthPlace", SCHEMA + "director", SCHEMA + "genre"]
    assert torch.equal(ks.triples, toy.triples)
    assert torch.equal(torch.nan_to_num(ks.features, nan=-1), torch.nan_to_num(toy.features, nan=-1))
    assert ks.literals[0] == {SCHEMA + "name": ["Alien"], SCHEMA + "description": toy.literals[0][KGR + "description"]}
    assert ks.warnings["interaction 'action': event without timestamp"] == 1


def test_https_schema_org_is_rewritten(tmp_path):
    src = TOY_SCHEMA.read_text(encoding="utf-8").replace("<http://schema.org/>", "<https://schema.org/>")
    ks = load(write(tmp_path / "https.ttl", src), mapping="schema-org")
    assert len(ks.interactions) == 15 and ks.relations.labels[2] == SCHEMA + "genre"


# -------------------------------------------------------- formats and files
@pytest.mark.parametrize("fmt,suffix", [("nt", ".nt"), ("xml", ".rdf"), ("json-ld", ".jsonld"),
                                        ("turtle", ".ttl"), ("n3", ".n3"), ("trig", ".trig")])
def test_other_serialisations_give_identical_graphs(tmp_path, toy, fmt, suffix):
    g = rdflib.Graph().parse(TOY)
    out = tmp_path / ("toy" + suffix)
    g.serialize(out, format=fmt, encoding="utf-8")
    kg = load(out)
    if fmt == "trig":  # rdflib writes the graph as one named graph: merged, and said so
        assert kg.warnings.pop(NAMED_GRAPHS_WARNING) == 1
    assert_same_graph(kg, toy)


def test_engine_argument_is_deprecated_and_ignored(toy):
    """``engine`` is accepted for one release: every file is parsed by pyoxigraph."""
    with pytest.warns(DeprecationWarning, match="'engine' argument is deprecated"):
        kg = load(TOY, engine="rdflib")
    assert_same_graph(kg, toy)


def test_gzip_and_explicit_format(tmp_path, toy):
    gz = tmp_path / "toy.ttl.gz"
    gz.write_bytes(gzip.compress(TOY.read_bytes()))
    assert_same_graph(load(gz), toy)
    odd = write(tmp_path / "toy.data", TOY.read_text(encoding="utf-8"))
    assert_same_graph(load(odd, format="ttl"), toy)


def test_two_files_merge_into_one_graph(tmp_path, toy):
    lines = rdflib.Graph().parse(TOY).serialize(format="nt").strip().splitlines()
    lines.sort()
    write(tmp_path / "a.nt", "\n".join(lines[::2]) + "\n")
    write(tmp_path / "b.nt", "\n".join(lines[1::2]) + "\n")
    kg = load([tmp_path / "a.nt", tmp_path / "b.nt"])
    assert_same_graph(kg, toy)
    assert kg.sources == [str(tmp_path / "a.nt"), str(tmp_path / "b.nt")]
    assert_same_graph(load(tmp_path), toy)  # a folder: every RDF file in it


def test_shuffled_triples_and_repeated_loads_are_identical(tmp_path, toy):
    lines = rdflib.Graph().parse(TOY).serialize(format="nt").strip().splitlines()
    for seed in (0, 1):
        random.Random(seed).shuffle(lines)
        assert_same_graph(load(write(tmp_path / f"s{seed}.nt", "\n".join(lines) + "\n")), toy)
    assert_same_graph(load(TOY), toy)


# ----------------------------------------------------------------- same-as
SAME_AS = """
ex:a a kgr:Item . ex:b a kgr:Item .
ex:u1 kgr:interactedWith ex:a , ex:b .
[] kgr:user ex:u2 ; kgr:item fb:X .
ex:a owl:sameAs fb:X .
fb:W owl:sameAs ex:b .
fb:X fb:directedBy fb:P ; rdfs:label "Film X"@en .
fb:P fb:bornIn fb:City .
fb:W fb:genre fb:Drama .
fb:Z fb:sequelOf fb:X .
fb:Q owl:sameAs ex:a , ex:b .
fb:Q fb:q fb:R .
"""


def test_same_as_merges_external_entities_into_items(tmp_path):
    kg = load(ttl(tmp_path, SAME_AS))
    assert kg.items.labels == ["http://ex.org/a", "http://ex.org/b"]
    assert kg.entities.labels == ["http://ex.org/a", "http://ex.org/b", "http://fb.org/City",
                                  "http://fb.org/Drama", "http://fb.org/P", "http://fb.org/R"]
    e, r = kg.entities.id, kg.relations.id
    rows = {tuple(x) for x in kg.triples.tolist()}
    assert rows == {
        (e("http://ex.org/a"), r("http://fb.org/directedBy"), e("http://fb.org/P")),
        (e("http://fb.org/P"), r("http://fb.org/bornIn"), e("http://fb.org/City")),
        (e("http://ex.org/b"), r("http://fb.org/genre"), e("http://fb.org/Drama")),  # sameAs the other way
        (e("http://ex.org/a"), r("http://fb.org/q"), e("http://fb.org/R")),  # fb:Q joined the first item
    }
    assert kg.literals[0] == {RDFS_LABEL: ["Film X"]}
    # the event naming fb:X counts for ex:a
    pairs = sorted(zip(kg.interactions.user.tolist(), kg.interactions.item.tolist()))
    assert [(kg.users[u], kg.items[i]) for u, i in pairs] == [
        ("http://ex.org/u1", "http://ex.org/a"), ("http://ex.org/u1", "http://ex.org/b"),
        ("http://ex.org/u2", "http://ex.org/a")]
    assert kg.warnings["IRI same-as several items: merged into the first (sorted)"] == 1


def test_same_as_between_untyped_objects_keeps_the_subject(tmp_path):
    body = SAME_AS.replace("ex:a a kgr:Item . ex:b a kgr:Item .", "")
    kg = load(ttl(tmp_path, body))
    assert kg.items.labels == ["http://ex.org/a", "http://ex.org/b"]
    assert len(kg.interactions) == 3 and kg.triples.size() == (4, 3)


def test_same_as_between_two_items_is_ignored_and_incoming_edges(tmp_path):
    kg = load(ttl(tmp_path, SAME_AS + "ex:a owl:sameAs ex:b .\n"))
    assert kg.warnings["same-as link between two items ignored"] == 1
    assert kg.num_items == 2
    inc = load(ttl(tmp_path, SAME_AS, "inc.ttl"), mapping={"kg": {"incoming": True}})
    e, r = inc.entities.id, inc.relations.id
    rows = {tuple(x) for x in inc.triples.tolist()}
    assert (e("http://fb.org/Z"), r("http://fb.org/sequelOf"), e("http://ex.org/a")) in rows
    assert inc.num_entities == 7


# ------------------------------------------------------------ KG options
def test_max_hops_and_explicit_edges():
    one = load(TOY, mapping={"kg": {"max_hops": 1}})
    assert one.triples.size() == (24, 3) and one.num_entities == 23
    genres = load(TOY, mapping={"kg": {"edges": ["kgr:genre"]}})
    assert genres.relations.labels == [KGR + "genre"] and genres.triples.size() == (16, 3)
    assert genres.num_entities == 8 + 9
    no_dir = load(TOY, mapping={"kg": {"exclude": ["dbo:director"]}})
    assert no_dir.relations.labels == [KGR + "genre"]


def test_users_and_events_never_become_entities(tmp_path):
    kg = load(ttl(tmp_path, """
ex:u1 a kgr:User ; kgr:interactedWith ex:i1 .
ex:i1 a kgr:Item ; ex:likedBy ex:u1 ; ex:seeAlso ex:e1 ; ex:ref [ ex:p ex:x ] .
ex:e1 kgr:user ex:u1 ; kgr:item ex:i1 .
"""))
    assert kg.entities.labels == ["http://ex.org/i1"] and kg.triples.size() == (0, 3)
    assert kg.warnings["KG edge to a user or an interaction event skipped"] == 2
    assert kg.warnings["KG edge to a blank node skipped"] == 1


def test_users_not_inferred(tmp_path):
    f = ttl(tmp_path, "ex:u1 a kgr:User ; kgr:interactedWith ex:i1 .\nex:bot kgr:interactedWith ex:i1 .\n")
    kg = load(f, mapping={"users": {"infer": False}})
    assert kg.users.labels == ["http://ex.org/u1"] and len(kg.interactions) == 1
    assert kg.warnings["interaction 'interactedWith': agent is not of a user class (skipped)"] == 1
    assert load(f).num_users == 2


def test_inverse_direct_rule(tmp_path):
    f = ttl(tmp_path, "ex:i1 ex:boughtBy ex:u1 , ex:u2 .\n")
    m = {"prefixes": {"ex": "http://ex.org/"},
         "interactions": [{"name": "bought", "predicate": "ex:boughtBy", "inverse": True}]}
    kg = load(f, mapping=m)
    assert kg.users.labels == ["http://ex.org/u1", "http://ex.org/u2"] and kg.items.labels == ["http://ex.org/i1"]
    assert kg.interactions.item.tolist() == [0, 0]


# ----------------------------------------------------------------- bad input
def test_timestamps_in_every_accepted_form(tmp_path):
    kg = load(ttl(tmp_path, """
ex:e1 kgr:user ex:u ; kgr:item ex:i1 ; kgr:timestamp "1577836800"^^xsd:integer .
ex:e2 kgr:user ex:u ; kgr:item ex:i2 ; kgr:timestamp "2020-01-01"^^xsd:date .
ex:e3 kgr:user ex:u ; kgr:item ex:i3 ; kgr:timestamp "2020-01-01T00:00:00" .
ex:e4 kgr:user ex:u ; kgr:item ex:i4 ; kgr:timestamp "1577836800" .
ex:e5 kgr:user ex:u ; kgr:item ex:i5 ; kgr:timestamp "next tuesday" .
ex:e6 kgr:user ex:u ; kgr:item ex:i6 ; kgr:timestamp "2020-01-01T01:00:00+01:00"^^xsd:dateTime .
ex:e7 kgr:user ex:u ; kgr:item ex:i7 ; kgr:timestamp "1577836800.5"^^xsd:decimal .
ex:e8 kgr:user ex:u ; kgr:item ex:i8 ; kgr:timestamp "2020"^^xsd:gYear .
ex:e9 kgr:user ex:u ; kgr:item ex:i9 .
"""))
    t = kg.interactions.time.tolist()
    assert t[:4] == [1577836800.0] * 4
    assert math.isnan(t[4]) and t[5] == 1577836800.0 and t[6] == 1577836800.5
    assert math.isnan(t[7]) and math.isnan(t[8])
    w = kg.warnings
    assert w["interaction 'event': timestamp without datatype"] == 2
    assert w["interaction 'event': unparseable timestamp"] == 1
    assert w["interaction 'event': timestamp with unsupported datatype <http://www.w3.org/2001/XMLSchema#gYear>"] == 1
    assert w["interaction 'event': event without timestamp"] == 1


def test_incomplete_and_malformed_events_are_skipped_and_counted(tmp_path):
    kg = load(ttl(tmp_path, """
ex:ok kgr:user ex:u ; kgr:item ex:i ; kgr:rating 5 .
ex:noagent kgr:item ex:i .
ex:noobject kgr:user ex:u .
ex:litobj kgr:user ex:u ; kgr:item "ex:i" .
ex:badrating kgr:user ex:u ; kgr:item ex:j ; kgr:rating "five" .
ex:two kgr:user ex:u , ex:v ; kgr:item ex:j .
ex:u kgr:interactedWith "not an item" .
"""))
    w = kg.warnings
    # ex:two (u -> j) and ex:badrating (u -> j) are one (user, item) pair
    assert len(kg.interactions) == 2 and w[REPEATS_WARNING] == 1
    assert w["interaction 'event': event without agent (skipped)"] == 1
    assert w["interaction 'event': event without object (skipped)"] == 2  # noobject, litobj
    assert w["interaction 'event': object is a literal, not an IRI (skipped)"] == 1
    assert w["interaction 'event': non-numeric weight"] == 1
    assert w["interaction 'event': event with several agents, the first (sorted) used"] == 1
    assert w["interaction 'interactedWith': literal where an IRI is expected (skipped)"] == 1
    assert kg.interactions.weight.tolist() == [5.0, 1.0]


def test_duplicate_triples_are_counted(tmp_path):
    line = "<http://ex.org/u> <https://w3id.org/kgrec/vocab#interactedWith> <http://ex.org/i> .\n"
    kg = load(write(tmp_path / "dup.nt", line * 3))
    assert kg.warnings["duplicate triple"] == 2 and len(kg.interactions) == 1


def test_iri_like_string_literals_are_counted(tmp_path):
    kg = load(ttl(tmp_path, 'ex:u kgr:interactedWith ex:i .\nex:i ex:director "http://ex.org/d1" , "Jane Doe" .\n'))
    assert kg.warnings["string literal that looks like an IRI (<http://ex.org/director>): not a KG edge"] == 1


def test_one_summary_warning_per_load(tmp_path):
    with pytest.warns(UserWarning, match=r"kgrec\.load\(.*toy\.ttl\): 2 problems of 2 kinds") as rec:
        _load(TOY)
    assert len([r for r in rec if issubclass(r.category, UserWarning)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _load(ttl(tmp_path, "ex:u kgr:interactedWith ex:i .\n"))  # nothing to report: no warning


def test_malformed_file_names_file_and_line(tmp_path):
    f = ttl(tmp_path, "ex:u kgr:interactedWith ex:i .\nex:u kgr:interactedWith .\n")
    with pytest.raises(RDFParseError, match=r"data\.ttl:8:") as e:
        load(f)
    assert e.value.line == 8 and e.value.path == str(f)


def test_mapping_that_matches_nothing_lists_classes_and_predicates(tmp_path):
    f = ttl(tmp_path, "ex:m1 a ex:Movie ; ex:title \"A\" .\nex:m2 a ex:Movie ; ex:title \"B\" .\n"
                      "ex:p1 a ex:Person ; ex:watched ex:m1 .\n")
    with pytest.raises(MappingError) as e:
        load(f)
    msg = str(e.value)
    assert "finds no users and no items" in msg and str(f) in msg
    assert "rdf:type classes in the data: <http://ex.org/Movie> (2), <http://ex.org/Person> (1)" in msg
    assert "Most frequent predicates: rdf:type (3), <http://ex.org/title> (2), <http://ex.org/watched> (1)" in msg
    fixed = load(f, mapping={"prefixes": {"ex": "http://ex.org/"},
                             "interactions": [{"name": "watched", "predicate": "ex:watched"}]})
    assert len(fixed.interactions) == 1


def test_no_positive_interactions_is_a_mapping_error(tmp_path):
    f = ttl(tmp_path, "ex:e kgr:user ex:u ; kgr:item ex:i ; kgr:rating 2 .\n")
    m = Mapping.profile("kgrec").to_dict()
    m["interactions"][0]["positive"] = "weight >= 4"
    with pytest.raises(MappingError, match=r"no positive interactions \(1 interactions found"):
        load(f, mapping=m)


def test_empty_files(tmp_path):
    empty = write(tmp_path / "empty.ttl", "@prefix ex: <http://ex.org/> .\n# nothing\n")
    with pytest.raises(EmptyGraphError, match=r"no triples in '.*empty\.ttl'"):
        load(empty)
    kg = load([empty, ttl(tmp_path, "ex:u kgr:interactedWith ex:i .\n")])
    assert kg.warnings[f"empty file '{empty}'"] == 1


def test_relative_iris_are_counted(tmp_path):
    f = write(tmp_path / "rel.ttl", "<u1> <https://w3id.org/kgrec/vocab#interactedWith> <i1> .\n")
    kg = load(f)
    assert kg.warnings["relative IRI resolved against the file location (no @base)"] == 2
    assert kg.users.labels == [tmp_path.resolve().as_uri() + "/u1"]
    assert load(f, base_iri="http://ex.org/").items.labels == ["http://ex.org/i1"]


def test_save_and_load_round_trip(tmp_path, toy):
    from kgrec.data.graph import KnowledgeGraph

    toy.save(tmp_path / "g")
    back = KnowledgeGraph.load(tmp_path / "g")
    back.interaction_text = toy.interaction_text  # not stored by KnowledgeGraph.save yet
    assert_same_graph(back, toy)


# ---------------------------------------------------------------- real data
@pytest.mark.skipif(not IMDB.is_file(), reason="shared dataset rdf-imdb-movies not available")
def test_real_imdb_file(tmp_path):
    with pytest.raises(MappingError, match=r"finds no users and no items.*vcard-rdf/3\.0#FN.*relative \(no @base\)"):
        load(IMDB)
    # add users watching two of its movies; its relative predicates get a chosen namespace
    users = write(tmp_path / "users.ttl", """@prefix kgr: <https://w3id.org/kgrec/vocab#> .
@prefix movie: <http://www.rdf-movie.org/movie#> .
<http://ex.org/u1> kgr:interactedWith movie:Lisa , movie:ATimeforLove .
""")
    m = {"prefixes": {"mv": "http://www.rdf-movie.org/"},
         "text": {"predicates": ["mv:Title"]}, "features": {"numeric": ["mv:releaseYear"]}}
    kg = load([IMDB, users], mapping=m, base_iri="http://www.rdf-movie.org/")
    assert (kg.num_users, kg.num_items, len(kg.interactions)) == (1, 2, 2)
    lisa = kg.items.id("http://www.rdf-movie.org/movie#Lisa")
    assert kg.literals[lisa] == {"http://www.rdf-movie.org/Title": ["Lisa"]}
    assert kg.features[lisa, 0] == 1990
    # the file stores actor and director IRIs as strings: counted, not turned into edges
    assert kg.warnings["string literal that looks like an IRI (mv:Actor): not a KG edge"] == 8  # 4 per movie


# ------------------------------------------------------------- performance
@pytest.mark.slow
def test_600k_triples_load_well_under_a_minute(tmp_path):
    import time

    rng = random.Random(0)
    xsd = "http://www.w3.org/2001/XMLSchema#"
    d = "https://w3id.org/kgrec/data/synthetic/"
    lines = []
    pairs = set()
    for n in range(100_000):
        e = f"<{d}event/{n}>"
        u, i = rng.randrange(943), rng.randrange(1682)
        pairs.add((u, i))
        lines += [f"{e} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{KGR}Interaction> .",
                  f"{e} <{KGR}user> <{d}user/{u}> .",
                  f"{e} <{KGR}item> <{d}item/{i}> .",
                  f'{e} <{KGR}rating> "{rng.randint(1, 5)}"^^<{xsd}integer> .',
                  f'{e} <{KGR}timestamp> "{874724710 + n}"^^<{xsd}integer> .',
                  f"<{d}item/{n % 1682}> <{KGR}genre> <{d}genre/{n % 1682 % 19}> ."]
    f = tmp_path / "big.nt.gz"
    f.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    start = time.perf_counter()
    kg = load(f)
    elapsed = time.perf_counter() - start
    # random pairs repeat: one interaction per (user, item) pair
    assert len(kg.interactions) == len(pairs) and kg.num_users <= 943 and kg.num_items == 1682
    assert kg.warnings[REPEATS_WARNING] == 100_000 - len(pairs)
    assert kg.triples.size() == (1682, 3)
    assert kg.warnings["duplicate triple"] == 100_000 - 1682
    assert elapsed < 60, f"loading 600k triples took {elapsed:.1f} s"


SMALL = ROOT / "kg_data" / "movielens-small" / "movielens-small.nt.gz"


@pytest.mark.slow
@pytest.mark.skipif(not SMALL.is_file(), reason="kg_data/movielens-small not generated yet")
def test_shipped_movielens_small():
    kg = load(SMALL)
    # the counts of the GroupLens README of ml-latest-small
    assert (kg.num_users, kg.num_items, len(kg.interactions)) == (610, 9742, 100836)
    assert kg.interactions.has_time
    assert KGR + "genre" in kg.relations.labels


def test_build_graph_pauses_gc_and_restores_it():
    """The collector is paused only inside build_graph, also when it raises."""
    import gc

    from kgrec.data.extract import build_graph
    from kgrec.errors import EmptyGraphError

    seen = []

    def triples():
        seen.append(gc.isenabled())
        yield from ()

    assert gc.isenabled()
    with pytest.raises(EmptyGraphError):
        build_graph(triples())
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:  # a caller that had it off keeps it off
        with pytest.raises(EmptyGraphError):
            build_graph(iter(()))
        assert not gc.isenabled()
    finally:
        gc.enable()


def _interaction_arrays(kg):
    it = kg.interactions
    times = [None if math.isnan(t) else t for t in it.time.tolist()]  # nan != nan
    return [kg.users.labels[u] for u in it.user.tolist()], [kg.items.labels[i] for i in it.item.tolist()], \
        it.weight.tolist(), times


@pytest.mark.parametrize("dirty", [None, "no-time", "two-users", "text"])
def test_column_fast_path_equals_the_per_event_path(tmp_path, monkeypatch, dirty):
    """Events read as whole columns give exactly the records (and warnings) of the per-event loop.

    ``dirty`` adds one event the column path refuses (missing time, two agents, a review text):
    the whole rule then takes the per-event path, which counts the problem.
    """
    from kgrec.data import extract
    from kgrec.data.synthetic import generate

    f = tmp_path / "syn.nt"
    n = generate(f, users=40, items=30, seed=3)["interactions"]
    extra = {
        None: "",
        "no-time": f'<{KGR}e-x> a <{KGR}Interaction> ; <{KGR}user> <{TOYNS}u1> ; <{KGR}item> <{TOYNS}i1> .',
        "two-users": (f'<{KGR}e-x> a <{KGR}Interaction> ; <{KGR}user> <{TOYNS}u1>, <{TOYNS}u2> ; '
                      f'<{KGR}item> <{TOYNS}i1> ; <{KGR}timestamp> "2020-01-01T00:00:00Z"^^xsd:dateTime .'),
        "text": (f'<{KGR}e-x> a <{KGR}Interaction> ; <{KGR}user> <{TOYNS}u1> ; <{KGR}item> <{TOYNS}i1> ; '
                 f'<{KGR}timestamp> "1577836800"^^xsd:integer ; <{KGR}review> "great" .'),
    }[dirty]
    files = [f]
    if extra:
        files.append(ttl(tmp_path, extra, "extra.ttl"))
    calls = []
    real = extract._Builder._clean_events_ids
    monkeypatch.setattr(extract._Builder, "_clean_events_ids",
                        lambda self, *a: calls.append(real(self, *a)) or calls[-1])
    fast = load(files)
    assert (calls[0] is None) == (dirty is not None)
    monkeypatch.setattr(extract._Builder, "_clean_events_ids", lambda self, *a: None)
    slow = load(files)
    assert _interaction_arrays(fast) == _interaction_arrays(slow)
    assert fast.warnings == slow.warnings
    assert fast.interaction_text == slow.interaction_text
    assert len(fast.interactions) == n + (dirty is not None)


def test_triple_batches_keep_file_order(tmp_path):
    from kgrec.data.rdf import iter_triple_batches, iter_triples
    from kgrec.errors import KgrecError

    f = tmp_path / "five.nt"
    f.write_text("".join(f"<http://ex.org/s{k}> <http://ex.org/p> <http://ex.org/o{k}> .\n" for k in range(5)))
    batches = list(iter_triple_batches(f, batch_size=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [t for b in batches for t in b] == list(iter_triples(f))
    assert [s for s, _, _ in iter_triples(f)] == [f"http://ex.org/s{k}" for k in range(5)]
    assert [len(b) for b in iter_triple_batches(f, batch_size=4)] == [4, 1]
    with pytest.raises(KgrecError, match="'batch_size'"):
        next(iter_triple_batches(f, batch_size=0))
