"""A user's own RDF graph: schema.org Actions through the shipped profile, ``rdfs:subClassOf`` in
the data, and property paths (``a/b``, ``^a``, ``a|b``) in mapping terms; Turtle, N-Triples and
triples parsed by another parser (rdflib, through ``build_graph_batched``) give the same graph.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import rdflib
import torch

import kgrec
from kgrec.data.extract import build_graph_batched
from kgrec.data.mapping import AlternativePath, InversePath, Mapping
from kgrec.data.rdf import RDF_LANGSTRING, Literal
from kgrec.errors import KgrecError, MappingError

EX = "http://example.org/"
SCHEMA = "http://schema.org/"

PREFIXES = """@prefix schema: <http://schema.org/> .
@prefix ex: <http://example.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""

# Three ReviewActions, each with its rating in another place schema.org allows (on the Review it
# results in, directly as reviewRating, a Rating as the result), a WatchAction, a BuyAction, and a
# WatchAction through a user-declared subclass two levels down.
SCHEMA_GRAPH = PREFIXES + """
ex:ra1 a schema:ReviewAction ; schema:agent ex:alice ; schema:object ex:m1 ;
    schema:startTime "2020-01-01T00:00:00Z"^^xsd:dateTime ;
    schema:resultReview [ a schema:Review ; schema:reviewBody "Loved it" ;
                          schema:reviewRating [ a schema:Rating ; schema:ratingValue 4 ] ] .
ex:ra2 a schema:ReviewAction ; schema:agent ex:bob ; schema:object ex:m1 ;
    schema:endTime "2020-01-02T00:00:00Z"^^xsd:dateTime ;
    schema:reviewRating [ a schema:Rating ; schema:ratingValue "2.5"^^xsd:decimal ] .
ex:ra3 a schema:ReviewAction ; schema:agent ex:bob ; schema:object ex:m2 ;
    schema:result [ a schema:Rating ; schema:ratingValue 5 ] .
ex:w1 a schema:WatchAction ; schema:agent ex:alice ; schema:object ex:m2 ;
    schema:startTime "2020-01-03T00:00:00Z"^^xsd:dateTime .
ex:b1 a schema:BuyAction ; schema:agent ex:carol ; schema:object ex:p1 .
ex:Binge rdfs:subClassOf ex:Viewing .
ex:Viewing rdfs:subClassOf schema:WatchAction .
ex:v1 a ex:Binge ; schema:agent ex:carol ; schema:object ex:m1 .
ex:m1 a schema:Movie ; schema:name "Movie one" ; schema:genre ex:drama .
ex:m2 a schema:Movie ; schema:genre ex:drama .
"""


def _write(tmp_path, text: str, name: str):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _triples(kg) -> set[tuple[str, str, str]]:
    e, r = kg.entities, kg.relations
    return {(e[h], r[p], e[t]) for h, p, t in kg.triples.tolist()}


def _interactions(kg) -> list[tuple[str, str, float, float]]:
    """(user, item, weight, time or -1) of every interaction, sorted."""
    it = kg.interactions
    t = torch.nan_to_num(it.time, nan=-1.0).tolist()
    return sorted((kg.users[u], kg.items[i], w, tt) for u, i, w, tt in
                  zip(it.user.tolist(), it.item.tolist(), it.weight.tolist(), t))


def _secs(day: int) -> float:
    return datetime(2020, 1, day, tzinfo=timezone.utc).timestamp()


# ------------------------------------------------------------ schema.org Actions
def test_schema_org_actions_load_with_the_shipped_profile(tmp_path):
    kg = kgrec.load(_write(tmp_path, SCHEMA_GRAPH, "actions.ttl"), mapping="schema-org")
    assert kg.users.labels == [EX + "alice", EX + "bob", EX + "carol"]
    assert kg.items.labels == [EX + "m1", EX + "m2", EX + "p1"]
    assert _interactions(kg) == [
        (EX + "alice", EX + "m1", 4.0, _secs(1)),      # resultReview/reviewRating/ratingValue
        (EX + "alice", EX + "m2", 1.0, _secs(3)),      # WatchAction
        (EX + "bob", EX + "m1", 2.5, _secs(2)),        # reviewRating/ratingValue on the action
        (EX + "bob", EX + "m2", 5.0, -1.0),            # result/ratingValue
        (EX + "carol", EX + "m1", 1.0, -1.0),          # ex:Binge, a subclass of a subclass of WatchAction
        (EX + "carol", EX + "p1", 1.0, -1.0),          # BuyAction
    ]
    k = [(kg.users[u], kg.items[i]) for u, i in zip(kg.interactions.user.tolist(),
                                                    kg.interactions.item.tolist())].index((EX + "alice", EX + "m1"))
    assert kg.interaction_text[k] == "Loved it"
    # the events and their reviews never reach the KG
    assert _triples(kg) == {(EX + "m1", SCHEMA + "genre", EX + "drama"), (EX + "m2", SCHEMA + "genre", EX + "drama")}
    # the typed schema:Review node of ra1 has no author / itemReviewed: counted, not read
    assert kg.warnings["interaction 'review': event without agent and object (skipped)"] == 1


def test_review_action_graph_without_the_profile_finds_no_interactions(tmp_path):
    """The default (kgrec) mapping does not read schema.org: the error lists the data's classes."""
    with pytest.raises(MappingError, match=r"finds no users and no items.*schema:ReviewAction \(3\)"):
        kgrec.load(_write(tmp_path, SCHEMA_GRAPH, "actions.ttl"))


def test_subclasses_of_user_and_item_classes_count(tmp_path):
    src = PREFIXES + """
ex:VIP rdfs:subClassOf ex:Customer .
ex:Film rdfs:subClassOf ex:Product .
ex:dave a ex:VIP .
ex:cold a ex:Film .
ex:o1 a ex:Purchase ; ex:by ex:erin ; ex:what ex:hot .
"""
    m = {"prefixes": {"ex": EX}, "users": {"classes": ["ex:Customer"]}, "items": {"classes": ["ex:Product"]},
         "interactions": [{"name": "buy", "class": "ex:Purchase", "agent": "ex:by", "object": "ex:what"}]}
    kg = kgrec.load(_write(tmp_path, src, "sub.ttl"), mapping=m)
    # dave is a customer (through ex:VIP) but never interacts: not a user, counted as dropped
    assert kg.users.labels == [EX + "erin"]
    assert kg.mapping_report.typed_users_dropped == 1
    assert kg.items.labels == [EX + "cold", EX + "hot"]
    assert _interactions(kg) == [(EX + "erin", EX + "hot", 1.0, -1.0)]


def test_subclass_cycle_terminates(tmp_path):
    src = PREFIXES + """
ex:A rdfs:subClassOf ex:B . ex:B rdfs:subClassOf ex:A . ex:C rdfs:subClassOf ex:C .
ex:e1 a ex:A ; ex:by ex:u1 ; ex:what ex:i1 .
ex:e2 a ex:C ; ex:by ex:u2 ; ex:what ex:i2 .
"""
    m = {"prefixes": {"ex": EX},
         "interactions": [{"name": "e", "class": "ex:B", "agent": "ex:by", "object": "ex:what"}]}
    kg = kgrec.load(_write(tmp_path, src, "cycle.ttl"), mapping=m)
    assert _interactions(kg) == [(EX + "u1", EX + "i1", 1.0, -1.0)]


# ------------------------------------------------------------ property paths
# user <- rating -> item, with the item pointing at the rating and the value one node further
RATINGS = PREFIXES + """
ex:i1 ex:hasRating ex:r1 , ex:r2 ; ex:genre ex:g1 .
ex:i2 ex:hasRating ex:r3 ; ex:genre ex:g1 .
ex:r1 ex:ratedBy ex:u1 ; ex:value [ ex:score 4 ] ; ex:on "2020-01-01"^^xsd:date .
ex:r2 ex:ratedBy ex:u2 ; ex:value [ ex:score 2 ] .
ex:r3 ex:ratedBy ex:u1 ; ex:value [ ex:score 5 ] .
"""
RATINGS_MAPPING = {
    "prefixes": {"ex": EX},
    "users": {"classes": []}, "items": {"classes": []},
    "interactions": [{"name": "rating", "agent": "ex:ratedBy", "object": "^ex:hasRating",
                      "weight": "ex:value/ex:score", "time": "ex:on"}],
}


def test_inverse_and_sequence_paths(tmp_path):
    kg = kgrec.load(_write(tmp_path, RATINGS, "ratings.ttl"), mapping=RATINGS_MAPPING)
    assert kg.users.labels == [EX + "u1", EX + "u2"]
    assert kg.items.labels == [EX + "i1", EX + "i2"]
    assert _interactions(kg) == [(EX + "u1", EX + "i1", 4.0, _secs(1)), (EX + "u1", EX + "i2", 5.0, -1.0),
                                 (EX + "u2", EX + "i1", 2.0, -1.0)]
    # the rating nodes are events (the start nodes of '^ex:hasRating'): never KG entities
    assert _triples(kg) == {(EX + "i1", EX + "genre", EX + "g1"), (EX + "i2", EX + "genre", EX + "g1")}
    assert kg.warnings["KG edge to a user or an interaction event skipped"] == 3


def test_inverse_of_a_sequence_reaches_the_agent(tmp_path):
    """The event points at the item; the user points at the event through a membership node:
    ``^(ex:member/ex:gave)`` is ``^ex:gave/^ex:member``.
    """
    src = PREFIXES + """
ex:u1 ex:member ex:acct1 . ex:acct1 ex:gave ex:r1 , ex:r2 .
ex:r1 ex:about ex:i1 ; ex:score 3 .
ex:r2 ex:about ex:i2 ; ex:score 1 .
"""
    m = {"prefixes": {"ex": EX}, "interactions": [
        {"name": "r", "class": [], "agent": "^(ex:member/ex:gave)", "object": "ex:about", "weight": "ex:score"}]}
    c = Mapping.from_dict(m).compile()
    assert c.rules[0].agent == ((InversePath(EX + "gave"), InversePath(EX + "member")),)
    kg = kgrec.load(_write(tmp_path, src, "acct.ttl"), mapping=m)
    assert _interactions(kg) == [(EX + "u1", EX + "i1", 3.0, -1.0), (EX + "u1", EX + "i2", 1.0, -1.0)]


def test_alternative_paths(tmp_path):
    src = PREFIXES + """
ex:r1 a ex:Rating ; ex:by ex:u1 ; ex:about ex:i1 ; ex:value [ ex:stars 4 ] .
ex:r2 a ex:Rating ; ex:author ex:u2 ; ex:about ex:i1 ; ex:value [ ex:score 2 ] .
ex:r3 a ex:Rating ; ex:by ex:u3 ; ex:author ex:u1 ; ex:about ex:i2 .
"""
    m = {"prefixes": {"ex": EX}, "interactions": [
        {"name": "r", "class": "ex:Rating", "agent": "ex:by|ex:author", "object": "ex:about",
         "weight": "ex:value/(ex:score|ex:stars)"}]}
    c = Mapping.from_dict(m).compile()
    assert c.rules[0].agent == ((AlternativePath(((EX + "by",), (EX + "author",))),),)
    assert c.rules[0].weight == ((EX + "value", AlternativePath(((EX + "score",), (EX + "stars",)))),)
    kg = kgrec.load(_write(tmp_path, src, "alt.ttl"), mapping=m)
    # r3: both branches give an agent (the union), the first in sorted order is used and counted
    assert _interactions(kg) == [(EX + "u1", EX + "i1", 4.0, -1.0), (EX + "u1", EX + "i2", 1.0, -1.0),
                                 (EX + "u2", EX + "i1", 2.0, -1.0)]
    assert kg.warnings["interaction 'r': event with several agents, the first (sorted) used"] == 1
    assert kg.warnings["interaction 'r': event without weight"] == 1


def test_paths_with_full_iris(tmp_path):
    m = Mapping()
    assert m.expand_path("^<http://e.org/a>/<http://e.org/b/c>|kgr:x") == (AlternativePath((
        (InversePath("http://e.org/a"), "http://e.org/b/c"), ("https://w3id.org/kgrec/vocab#x",))),)
    assert m.expand_path(" ^ kgr:a / kgr:b ") == (InversePath("https://w3id.org/kgrec/vocab#a"),
                                                   "https://w3id.org/kgrec/vocab#b")


@pytest.mark.parametrize("term,what", [
    ("ex:a*", r"uses '\*' \(zero or more\)"),
    ("ex:a+", r"uses '\+' \(one or more\)"),
    ("ex:a?", r"uses '\?' \(zero or one\)"),
    ("!ex:a", r"uses '!' \(a negated property set\)"),
    ("ex:a{2}", r"uses '\{' \(a repetition count\)"),
    ("(ex:a/ex:b)*", r"uses '\*' \(zero or more\)"),
    ("ex:a//ex:b", "has an empty step"),
    ("ex:a/", "has an empty step"),
    ("ex:a|", "has an empty step"),
    ("^", "has an empty step"),
    ("^^ex:a", "has an empty step"),
    ("(ex:a|ex:b", r"has an unclosed '\('"),
    ("ex:a)", r"has an unmatched '\)'"),
    ("<http://e.org/a", "has an unclosed '<'"),
    ("ex:a ex:b", "must separate steps with '/' or '\\|'"),
    ("http://e.org/a|http://e.org/b", "mixes a bare IRI with the path operator '\\|'"),
])
def test_unsupported_paths_are_refused(term, what):
    m = {"prefixes": {"ex": EX}, "interactions": [{"name": "myrule", "agent": "ex:u", "object": term}]}
    with pytest.raises(MappingError, match=r"'interactions\[0\]\.object' \('myrule'\) " + what) as e:
        Mapping.from_dict(m)
    assert repr(term) in str(e.value) or term in str(e.value)
    assert isinstance(e.value, KgrecError)


@pytest.mark.parametrize("section,key,term,what", [
    ("kg", "edges", "ex:a/ex:b", "takes properties \\('p', 'a\\|b', '\\^p'\\), not the sequence path 'ex:a/ex:b'"),
    ("kg", "edges", "ex:a|(ex:b/ex:c)", "not the sequence path 'ex:a\\|\\(ex:b/ex:c\\)'"),
    ("kg", "exclude", "^ex:a", "takes properties \\('p', 'a\\|b'\\), not the inverse '\\^ex:a'"),
    ("text", "predicates", "ex:a/ex:b", "not the sequence path 'ex:a/ex:b'"),
    ("features", "numeric", "<http://e.org/a>/<http://e.org/b>", "takes one property, not the property path"),
    ("features", "numeric", "ex:a|ex:b", "takes one property, not the property path 'ex:a\\|ex:b'"),
    ("items", "same_as", "ex:a*", "uses '\\*' \\(zero or more\\)"),
])
def test_paths_in_property_list_fields_are_refused(section, key, term, what):
    """Before, ``ex:a/ex:b`` there was read as the one IRI ``http://example.org/a/ex:b``."""
    m = {"prefixes": {"ex": EX}, section: {key: [term]}}
    with pytest.raises(MappingError, match=rf"'{section}\.{key}' .*{what}"):
        Mapping.from_dict(m)


def test_alternatives_and_inverses_in_property_lists():
    c = Mapping.from_dict({"prefixes": {"ex": EX}, "kg": {"edges": ["ex:a|^ex:b", "ex:c"], "exclude": ["ex:x|ex:y"]},
                           "text": {"predicates": ["ex:t|ex:u"]},
                           "items": {"same_as": ["owl:sameAs|ex:same"]}}).compile()
    assert c.edges == {EX + "a", EX + "c"} and c.inverse_edges == {EX + "b"}
    assert c.exclude == {EX + "x", EX + "y"} and c.text_predicates == (EX + "t", EX + "u")
    assert c.same_as == {"http://www.w3.org/2002/07/owl#sameAs", EX + "same"}


def test_inverse_kg_edge_is_followed_from_the_item(tmp_path):
    """``^ex:playsIn``: the actor points at the movie; listed inverse, the actor becomes an entity
    (the triple keeps its direction), while other predicates are not followed backwards.
    """
    src = PREFIXES + """
ex:e1 ex:by ex:u1 ; ex:what ex:m1 .
ex:actor1 ex:playsIn ex:m1 ; ex:bornIn ex:city1 .
ex:fan1 ex:likes ex:m1 .
ex:m1 ex:genre ex:drama .
"""
    base = {"prefixes": {"ex": EX}, "interactions": [{"name": "e", "agent": "ex:by", "object": "ex:what"}]}
    kg = kgrec.load(_write(tmp_path, src, "inv.ttl"),
                    mapping={**base, "kg": {"edges": ["^ex:playsIn", "ex:genre|ex:bornIn"]}})
    assert _triples(kg) == {(EX + "actor1", EX + "playsIn", EX + "m1"), (EX + "actor1", EX + "bornIn", EX + "city1"),
                            (EX + "m1", EX + "genre", EX + "drama")}
    kg = kgrec.load(_write(tmp_path, src, "inv.ttl"), mapping={**base, "kg": {"edges": ["ex:playsIn", "ex:genre"]}})
    assert _triples(kg) == {(EX + "m1", EX + "genre", EX + "drama")}


DIRECT_MAPPING = {"prefixes": {"ex": EX}, "users": {"classes": []}, "items": {"classes": []},
                  "interactions": [{"name": "rated", "predicate": "^ex:ratedBy/^ex:hasRating"}]}


def test_path_as_a_direct_rule_predicate(tmp_path):
    """User <- rating <- item as one direct rule: each (user, item) pair the path links, weight 1."""
    c = Mapping.from_dict(DIRECT_MAPPING).compile()
    assert c.rules[0].predicate is None and c.rules[0].is_direct
    assert c.rules[0].predicate_path == (InversePath(EX + "ratedBy"), InversePath(EX + "hasRating"))
    kg = kgrec.load(_write(tmp_path, RATINGS, "ratings.ttl"), mapping=DIRECT_MAPPING)
    assert _interactions(kg) == [(EX + "u1", EX + "i1", 1.0, -1.0), (EX + "u1", EX + "i2", 1.0, -1.0),
                                 (EX + "u2", EX + "i1", 1.0, -1.0)]
    # the rating nodes between user and item belong to the interactions: never KG entities
    assert _triples(kg) == {(EX + "i1", EX + "genre", EX + "g1"), (EX + "i2", EX + "genre", EX + "g1")}
    # the same pairs with 'inverse' and the path written from the item
    m = {**DIRECT_MAPPING, "interactions": [{"name": "rated", "predicate": "ex:hasRating/ex:ratedBy", "inverse": True}]}
    assert _interactions(kgrec.load(_write(tmp_path, RATINGS, "ratings.ttl"), mapping=m)) == _interactions(kg)


def test_unsupported_path_in_a_direct_rule_predicate_is_refused():
    m = {"prefixes": {"ex": EX}, "interactions": [{"name": "likes", "predicate": "ex:likes+"}]}
    with pytest.raises(MappingError, match=r"'interactions\[0\]\.predicate' \('likes'\) uses '\+' \(one or more\)"):
        Mapping.from_dict(m)


def test_single_property_fields_keep_plain_iris():
    m = Mapping.from_dict({"kg": {"edges": ["<http://e.org/a/b>", "http://e.org/c/d", "dbo:starring"]}})
    assert m.compile().edges == {"http://e.org/a/b", "http://e.org/c/d", "http://dbpedia.org/ontology/starring"}


# ------------------------------------------------------------ every ingestion path
def _same(a, b) -> None:
    for f in ("users", "items", "entities", "relations"):
        assert list(getattr(a, f)) == list(getattr(b, f)), f
    assert torch.equal(a.triples, b.triples)
    for f in ("user", "item", "weight", "time"):
        assert torch.equal(getattr(a.interactions, f).nan_to_num(-1), getattr(b.interactions, f).nan_to_num(-1)), f
    assert a.interaction_text == b.interaction_text
    assert a.literals == b.literals


@pytest.mark.parametrize("src,mapping", [(SCHEMA_GRAPH, "schema-org"), (RATINGS, RATINGS_MAPPING),
                                         (RATINGS, DIRECT_MAPPING)])
def test_every_ingestion_path_gives_the_same_graph(tmp_path, src, mapping):
    ttl = _write(tmp_path, src, "g.ttl")
    nt = tmp_path / "g.nt"
    g = rdflib.Graph().parse(ttl, format="turtle")
    g.serialize(nt, format="nt", encoding="utf-8")

    def term(t):  # rdflib's terms as kgrec's (an independent parser's reading of the file)
        if isinstance(t, rdflib.BNode):
            return "_:" + str(t)
        if isinstance(t, rdflib.Literal):
            lang = t.language.lower() if t.language else None
            dt = str(t.datatype) if t.datatype else (RDF_LANGSTRING if lang else str(rdflib.XSD.string))
            return Literal(str(t), dt, lang)
        return str(t)

    ref = build_graph_batched([[tuple(map(term, t)) for t in g]], Mapping.coerce(mapping))
    for kg in (kgrec.load(ttl, mapping=mapping), kgrec.load(nt, mapping=mapping)):
        _same(kg, ref)
    assert not any(math.isnan(w) for w in ref.interactions.weight.tolist())


REPEATED_REVIEWS = """@prefix kgr: <https://w3id.org/kgrec/vocab#> .
@prefix ex: <http://example.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
""" + "".join(f"""ex:e{k} a kgr:Interaction ; kgr:user ex:alice ; kgr:item ex:m1 ; kgr:rating 4 ;
    kgr:timestamp "2020-01-01T10:00:00Z"^^xsd:dateTime ; kgr:text "review {k}" .
""" for k in range(12))


def test_texts_of_repeated_events_join_in_the_same_order_whatever_the_string_hashing(tmp_path):
    """Twelve events of one (user, item) pair with the same time and rating: their texts are joined in
    the order of the events' IRIs, in every interpreter (string hashing is salted per process).
    """
    path = _write(tmp_path, REPEATED_REVIEWS, "repeats.ttl")
    code = "import sys, kgrec; print(repr(kgrec.load(sys.argv[1]).interaction_text))"
    outs = {subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONHASHSEED=str(seed))).stdout for seed in (1, 2, 3)}
    assert outs == {repr(["\n".join(f"review {k}" for k in sorted(range(12), key=lambda k: f"e{k}"))]) + "\n"}
