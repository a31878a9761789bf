"""Term numbering and the merge of id tables (:mod:`kgrec.data.rdfterms`), on known answers."""

from __future__ import annotations

import numpy as np

from kgrec.data.rdfterms import IdTriples, Literal, Numbering


def test_numbering_in_order_of_first_appearance_across_batches():
    num = Numbering()
    new, ids = num.number(["a", "b", "a", None, "c", "b"])
    assert new == ["a", "b", "c"] and ids.tolist() == [0, 1, 0, -1, 2, 1]
    new, ids = num.number(["c", "d", "a", "d", None, "e"])
    assert new == ["d", "e"] and ids.tolist() == [2, 3, 0, 3, -1, 4]
    new, ids = num.number(["e", "a"])
    assert new == [] and ids.tolist() == [4, 0]
    new, ids = num.number([])
    assert new == [] and ids.dtype == np.int64 and ids.shape == (0,)
    lit = Literal("a")  # a literal and the IRI spelled like its value are two terms
    new, ids = num.number([lit, "a", Literal("a"), lit])
    assert new == [lit] and ids.tolist() == [5, 0, 5, 5] and num.n == 6


def test_concat_gives_the_table_of_one_pass():
    a = IdTriples(["s", "p", "o", Literal("x")], np.array([[0, 1, 2], [0, 1, 3]]))
    b = IdTriples(["q", "p", Literal("x"), "s", "z"], np.array([[0, 1, 2], [3, 1, 4], [3, 1, 2]]))
    c = IdTriples([], np.empty((0, 3), dtype=np.int64))
    d = IdTriples(["z", "p", "s"], np.array([[0, 1, 2]]))
    one = IdTriples.concat([a, b, c, d])
    assert one.terms == ["s", "p", "o", Literal("x"), "q", "z"]
    assert one.triples.tolist() == [[0, 1, 2], [0, 1, 3], [4, 1, 3], [0, 1, 5], [0, 1, 3], [5, 1, 0]]
    assert one.decoded() == a.decoded() + b.decoded() + d.decoded()
    assert IdTriples.concat([a]) is a and len(IdTriples.concat([])) == 0
