"""Recommendations as RDF (schema.org), so results can go back into the graph they came from.

Each recommended item becomes one ``schema:Recommendation`` (schema.org: "a Review that
recommends something"):

.. code-block:: turtle

    <urn:kgrec:recommendation:hybrid:5d41402abc4b:1> a schema:Recommendation ;
        schema:about <https://example.org/user/1> ;          # the user it is for
        schema:itemReviewed <https://example.org/item/42> ;  # the recommended item
        schema:position 1 ;                                  # rank, 1 = best
        schema:reviewRating [ a schema:Rating ; schema:ratingValue 3.21 ] ;  # model score
        schema:author [ a schema:SoftwareApplication ; schema:name "kgrec hybrid" ] .

Scores are written as ``xsd:decimal`` holding Python's shortest round-tripping repr of the float
(Turtle would shorten an ``xsd:double`` to 6 digits), so :func:`recommendations_from_rdf` reads
back exactly the floats that were written.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal

__all__ = ["SCHEMA", "recommendations_to_rdf", "recommendations_to_turtle", "recommendations_from_rdf"]

#: The schema.org namespace used (``https``, as schema.org publishes it).
SCHEMA = "https://schema.org/"


def _node_id(model: str, user: str, rank: int) -> str:
    digest = hashlib.sha1(user.encode("utf-8")).hexdigest()[:12]
    return f"urn:kgrec:recommendation:{model}:{digest}:{rank}"


def _score_literal(score: float):
    from rdflib import Literal
    from rdflib.namespace import XSD

    if not math.isfinite(score):  # xsd:double spells these INF, -INF, NaN
        return Literal("NaN" if math.isnan(score) else ("INF" if score > 0 else "-INF"), datatype=XSD.double)
    # the shortest repr that round-trips, written positionally (Turtle abbreviates xsd:double to 6 digits)
    return Literal(format(Decimal(repr(score)), "f"), datatype=XSD.decimal)


def recommendations_to_rdf(result: Mapping[str, Sequence[tuple[str, float]]], model: str = "kgrec"):
    """An ``rdflib.Graph`` of ``Recommender.recommend(...)``'s result (``{user: [(item, score), ...]}``)."""
    from rdflib import BNode, Graph, Literal, URIRef
    from rdflib.namespace import RDF, XSD, Namespace

    s = Namespace(SCHEMA)
    g = Graph()
    g.bind("schema", s)
    g.bind("xsd", XSD)
    agent = BNode()
    g.add((agent, RDF.type, s.SoftwareApplication))
    g.add((agent, s.name, Literal(f"kgrec {model}")))
    for user, items in result.items():
        for rank, (item, score) in enumerate(items, 1):
            node = URIRef(_node_id(model, user, rank))
            rating = BNode()
            g.add((node, RDF.type, s.Recommendation))
            g.add((node, s.about, URIRef(user)))
            g.add((node, s.itemReviewed, URIRef(item)))
            g.add((node, s.position, Literal(rank, datatype=XSD.integer)))
            g.add((node, s.reviewRating, rating))
            g.add((node, s.author, agent))
            g.add((rating, RDF.type, s.Rating))
            g.add((rating, s.ratingValue, _score_literal(float(score))))
    return g


def recommendations_to_turtle(result: Mapping[str, Sequence[tuple[str, float]]], model: str = "kgrec") -> str:
    """:func:`recommendations_to_rdf` serialised as Turtle."""
    return recommendations_to_rdf(result, model).serialize(format="turtle")


def recommendations_from_rdf(graph) -> dict[str, list[tuple[str, float]]]:
    """Read ``{user: [(item, score), ...]}`` (by rank) back from a graph or Turtle text."""
    from rdflib import Graph
    from rdflib.namespace import RDF, Namespace

    if isinstance(graph, str):
        graph = Graph().parse(data=graph, format="turtle")
    s = Namespace(SCHEMA)
    rows: dict[str, list[tuple[int, str, float]]] = {}
    for node in graph.subjects(RDF.type, s.Recommendation):
        user = str(graph.value(node, s.about))
        item = str(graph.value(node, s.itemReviewed))
        rank = int(graph.value(node, s.position).toPython())
        score = float(graph.value(graph.value(node, s.reviewRating), s.ratingValue).toPython())
        rows.setdefault(user, []).append((rank, item, score))
    return {u: [(i, sc) for _, i, sc in sorted(r)] for u, r in rows.items()}
