"""kgrec.reports.rdf: recommendations as schema.org RDF, read back exactly through rdflib."""

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD

import kgrec
from kgrec.reports.rdf import SCHEMA, recommendations_from_rdf, recommendations_to_rdf, recommendations_to_turtle

from .conftest import two_cluster_kg

RESULT = {"http://x/user/1": [("http://x/item/2", 0.1 + 0.2), ("http://x/item/3", -1.5e-7)],
          "http://x/user/2": [("http://x/item/3", 3.2)], "http://x/user/3": []}


def test_turtle_round_trips_exactly():
    ttl = recommendations_to_turtle(RESULT, model="ease")
    g = Graph().parse(data=ttl, format="turtle")
    back = recommendations_from_rdf(g)
    assert back == {u: v for u, v in RESULT.items() if v}  # floats equal bit for bit, ranks in order
    assert recommendations_from_rdf(ttl) == back


def test_terms_rank_and_score_literals():
    g = recommendations_to_rdf(RESULT, model="hybrid")
    s = lambda t: URIRef(SCHEMA + t)  # noqa: E731
    recs = sorted(g.subjects(RDF.type, s("Recommendation")))
    assert len(recs) == 3
    node = next(n for n in recs if g.value(n, s("about")) == URIRef("http://x/user/1")
                and g.value(n, s("position")).toPython() == 1)
    assert g.value(node, s("itemReviewed")) == URIRef("http://x/item/2")
    assert g.value(node, s("position")) == Literal(1, datatype=XSD.integer)
    rating = g.value(node, s("reviewRating"))
    assert (rating, RDF.type, s("Rating")) in g
    value = g.value(rating, s("ratingValue"))
    assert value.datatype == XSD.decimal and float(value.toPython()) == 0.1 + 0.2
    author = g.value(node, s("author"))
    assert str(g.value(author, s("name"))) == "kgrec hybrid"


def test_recommender_result_round_trips():
    kg = two_cluster_kg()
    rec = kgrec.Recommender("ease", reg=1.0).fit(kg)
    result = rec.recommend(kg.users.labels[:3], k=3)
    assert recommendations_from_rdf(recommendations_to_turtle(result, "ease")) == result
