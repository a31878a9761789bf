"""Rule 4 of :mod:`kgrec.data.extract`: the literals of entities and users, read after the KG walk.

Text literals (filtered by the mapping's languages) become ``kg.literals`` / ``kg.user_literals``,
numeric feature literals the columns of ``kg.features`` (the mean of several values); string
literals on entities that hold an IRI are counted, as a common export mistake. Every subject is
read through the same-as merges (``canon``) of the build.
"""

from __future__ import annotations

import math
from collections import defaultdict
from operator import itemgetter

import numpy as np
import torch

from kgrec.data.literal_values import PLAIN_TYPES, parse_number
from kgrec.data.rdf import Literal
from kgrec.data.triple_index import TripleIndex
from kgrec.data.vocab import Vocab

__all__ = ["AttributeReader"]

_SECOND = itemgetter(1)  # of a (subject, object) pair


class AttributeReader(TripleIndex):
    """:class:`~kgrec.data.triple_index.TripleIndex` plus the literal rules (module docstring)."""

    def literals(self, entity_vocab: Vocab, user_vocab: Vocab):
        """``(entity literals, user literals)``: id -> predicate -> sorted values, in predicate order."""
        canon, W = self.canon, self.W
        eix, uix = entity_vocab._index, user_vocab._index
        ent: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        usr: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        lang_cache: dict = {}
        for p in self.cm.text_predicates:
            n_iri = 0
            for s, o in self.by_pred.get(p, ()):
                s = canon.get(s, s)
                k = eix.get(s)
                target = ent
                if k is None:
                    k = uix.get(s)
                    target = usr
                    if k is None:
                        continue
                if type(o) is str:
                    n_iri += 1
                    continue
                lang = o.language
                ok = lang_cache.get(lang)
                if ok is None:
                    ok = lang_cache[lang] = self.lang_ok(lang)
                if not ok:
                    W[f"text literal in language '{lang or ''}' dropped"] += 1
                    continue
                target[k][p].add(o.value)
            if n_iri:
                W[f"IRI where a literal is expected ({self.short(p)})"] += n_iri
        order = {p: j for j, p in enumerate(self.cm.text_predicates)}

        def finish(d):
            return {k: {p: sorted(v[p]) for p in sorted(v, key=order.__getitem__)} for k, v in sorted(d.items())}

        return finish(ent), finish(usr)

    def features(self, entity_vocab: Vocab) -> torch.Tensor | None:
        """``[E, F]`` means of the numeric feature literals (``nan`` where none); ``None`` without features."""
        numeric = self.cm.numeric
        if not numeric:
            return None
        canon, W, eix = self.canon, self.W, entity_vocab._index
        total = np.zeros((len(entity_vocab), len(numeric)), dtype=np.float64)
        count = np.zeros((len(entity_vocab), len(numeric)), dtype=np.int64)
        for j, p in enumerate(numeric):
            bad = 0
            for s, o in self.by_pred.get(p, ()):
                k = eix.get(canon.get(s, s))
                if k is None:
                    continue
                x = parse_number(o) if type(o) is not str else math.nan
                if math.isnan(x):
                    bad += 1
                    continue
                total[k, j] += x
                count[k, j] += 1
            if bad:
                W[f"non-numeric value of feature ({self.short(p)}) ignored"] += bad
            if (count[:, j] > 1).any():
                W[f"several values of feature ({self.short(p)}): mean used"] += int((count[:, j] > 1).sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            feats = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return torch.from_numpy(feats.astype(np.float32))

    def iri_like_literals(self, entity_vocab: Vocab, skip: set[str]) -> None:
        """Count string literals holding an IRI on entities: a common export mistake."""
        canon, eix = self.canon, entity_vocab._index
        for p in list(self.by_pred):
            if p in skip or not self.cols.has_plain_literal(p):
                continue
            pairs = self.by_pred[p]
            objects = list(map(_SECOND, pairs))
            if Literal not in set(map(type, objects)) or not (
                    PLAIN_TYPES & {o.datatype for o in objects if type(o) is not str}):
                continue  # no plain string literal under p
            n = 0
            for s, o in pairs:
                if type(o) is str or o.datatype not in PLAIN_TYPES:
                    continue
                v = o.value
                if v.startswith(("http://", "https://")) and " " not in v and canon.get(s, s) in eix:
                    n += 1
            if n:
                self.W[f"string literal that looks like an IRI ({self.short(p)}): not a KG edge"] += n

