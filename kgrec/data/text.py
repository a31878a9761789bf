"""Text views of a graph for a text encoder: item descriptions, user behaviour, user histories.

Everything here is deterministic (same graph and interactions -> same strings and tensors), so
text embeddings can be cached by content (see :mod:`kgrec.data.textcache`).
"""

from __future__ import annotations

import math
import re
from urllib.parse import unquote

import numpy as np
import torch

from kgrec.data.graph import LABEL_PREDICATES, Interactions, KnowledgeGraph

__all__ = ["item_texts", "user_texts", "user_history", "relation_name", "relative_time"]

_DAY = 86400.0
_LABELS = frozenset(LABEL_PREDICATES)
# Opaque identifiers carry no meaning for a language model and only waste its token budget:
# Freebase mids ("m.0bln8"), bare numbers, hex digests / UUIDs.
_OPAQUE = re.compile(r"^(?:[mg]\.[0-9a-z_]+|[0-9.:_-]+|[0-9a-f]{16,}|[0-9a-f-]{32,36}|Q[0-9]+)$", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_END = (".", "!", "?", "\u2026")


def item_texts(kg: KnowledgeGraph, max_neighbors: int = 8, max_chars: int = 1000) -> list[str]:
    r"""One text per item: title, attribute entities grouped by relation, then descriptions.

    Example: ``"Toy Story (1995). genre: Animation, Comedy. director: John Lasseter. Toy Story
    is a 1995 American ..."``.

    Rules (all deterministic):

    * title: :meth:`KnowledgeGraph.label` (first label-like literal, else the IRI's local name,
      percent-decoded with ``_`` read as a space); a numeric feature whose local name is ``year``
      is appended as ``" (1995)"`` unless the title already contains it.
    * attributes: the item's outgoing KG triples only (KGs such as Freebase hold both directions
      of a relation, so incoming ones would repeat the same facts), grouped by
      :func:`relation_name` (``dbo:director`` and ``kgr:director`` share a group). Groups are
      ordered by how many triples their relations have in the whole graph (relations most items
      have, like genre, come first and survive truncation), then by name. Inside a group, at most
      ``max_neighbors`` entities, most connected first, then by label. Entities whose only
      label is an opaque id (a Freebase mid, a number, a hash) are skipped: they are noise to a
      language model.
    * descriptions: every other text literal of the item (predicates sorted by IRI), whitespace
      collapsed, duplicates and copies of the title dropped.
    * an item with nothing at all gives its IRI local name; a bare title gets no final period.
    * the text is cut at a word boundary to at most ``max_chars`` characters.

    Args:
        kg: the graph.
        max_neighbors: entities kept per relation group (default ``8``; ``0`` = no attributes).
        max_chars: maximum length of a text in characters (default ``1000``).

    Returns:
        ``kg.num_items`` strings, item ``i`` at index ``i``.
    """
    _check_int("max_neighbors", max_neighbors, minimum=0)
    _check_int("max_chars", max_chars, minimum=1)
    n_items = kg.num_items
    triples = kg.triples.numpy() if len(kg.triples) else np.empty((0, 3), dtype=np.int64)
    degree = np.bincount(np.concatenate([triples[:, 0], triples[:, 2]]), minlength=kg.num_entities)
    rel_names, name_count = _relation_names(kg, triples)

    out_rows = triples[triples[:, 0] < n_items]
    out_rows = out_rows[np.lexsort((out_rows[:, 2], out_rows[:, 1], out_rows[:, 0]))]
    starts = np.searchsorted(out_rows[:, 0], np.arange(n_items + 1))

    readable: dict[int, str | None] = {}  # entity -> its readable label (None: opaque), shared by all items
    years = _year_feature(kg)
    texts = []
    for i in range(n_items):
        title = _item_title(kg, i, years)
        parts = [title]
        groups: dict[str, list[int]] = {}
        for _, r, t in out_rows[starts[i]:starts[i + 1]]:
            groups.setdefault(rel_names[int(r)], []).append(int(t))
        if max_neighbors > 0:
            parts += _attribute_parts(kg, groups, name_count, degree, readable, max_neighbors)
        parts += _description_parts(kg, i, title)
        # a bare title stays as it is (an item with nothing is exactly its local name)
        text = parts[0] if len(parts) == 1 else _sentences(parts)
        texts.append(_truncate(text, max_chars))
    return texts


def user_texts(kg: KnowledgeGraph, train: Interactions, max_items: int = 20,
               now: float | None = None) -> list[str]:
    r"""One text per user describing what they did in the TRAINING interactions.

    Items are listed most recent first (ties: higher weight, then lower item id), at most
    ``max_items`` of them, by title (:meth:`KnowledgeGraph.label`), with ``", rated 4"`` when
    the weight is not 1. When times exist, consecutive items with the same relative time share a
    prefix (:func:`relative_time`, measured from the user's latest training interaction, or from
    ``now``): ``"today: Heat, rated 4; Fargo. 3 days earlier: Babe. 2 months earlier: Alien."``.
    Items without a time come last, with no prefix. Users without training interactions get
    ``""``.

    Only ``train`` is read (never ``kg.interactions``), so validation/test items cannot leak into
    a user's text.

    Args:
        kg: the graph (for item titles and the number of users).
        train: the training interactions.
        max_items: items listed per user (default ``20``).
        now: unix seconds the relative times are measured from; ``None`` (default) = each user's
            latest training interaction.

    Returns:
        ``kg.num_users`` strings, user ``u`` at index ``u``.
    """
    _check_int("max_items", max_items, minimum=1)
    if now is not None and (isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now)):
        raise ValueError(f"'now' must be a finite number of unix seconds or None (got {now!r})")
    _check_ids(train, kg.num_users, kg.num_items)
    order, starts = _history_order(train, kg.num_users)
    times = train.time.numpy().astype(np.float64)
    weights = train.weight.numpy().astype(np.float64)
    items = train.item.numpy()
    titles: dict[int, str] = {}

    texts = []
    for u in range(kg.num_users):
        rows = order[starts[u]:starts[u + 1]]
        if len(rows) == 0:
            texts.append("")
            continue
        user_times = times[rows]
        timed = user_times[~np.isnan(user_times)]
        ref = now if now is not None else (float(timed.max()) if len(timed) else None)
        groups: list[tuple[str, list[str]]] = []
        for row in rows[:max_items]:
            i = int(items[row])
            if i not in titles:
                titles[i] = _title(kg, i)
            entry = titles[i]
            w = float(weights[row])
            if w != 1.0:
                entry += f", rated {_number(w)}"
            t = float(times[row])
            prefix = "" if math.isnan(t) or ref is None else relative_time((ref - t) / _DAY)
            if groups and groups[-1][0] == prefix:
                groups[-1][1].append(entry)
            else:
                groups.append((prefix, [entry]))
        parts = [(f"{p}: " if p else "") + "; ".join(entries) for p, entries in groups]
        texts.append(_sentences(parts))
    return texts


def user_history(train: Interactions, num_users: int,
                 max_len: int = 50) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Each user's training items, most recent first, as padded tensors for attention.

    Order per user: time descending (interactions without a time after all timed ones), then
    weight descending, then item id ascending, then row order, so ties never depend on chance.
    The ``max_len`` most recent interactions are kept.

    Args:
        train: the training interactions.
        num_users: number of users (rows of the result).
        max_len: history length ``L`` (default ``50``); every row has exactly this length.

    Returns:
        ``(items, mask, age)``.

    Shapes:
        items: ``[num_users, max_len]`` long item ids, ``-1`` where padded.
        mask: ``[num_users, max_len]`` bool, ``True`` for a real interaction.
        age: ``[num_users, max_len]`` float32 days between the interaction and the user's latest
            training interaction (``>= 0``); ``0`` where padded or where the time is unknown.
    """
    _check_int("num_users", num_users, minimum=0)
    _check_int("max_len", max_len, minimum=1)
    _check_ids(train, num_users, None)
    order, starts = _history_order(train, num_users)
    users = train.user.numpy()[order]
    rank = np.arange(len(order)) - starts[users]
    keep = rank < max_len
    rows, users, rank = order[keep], users[keep], rank[keep]

    times = train.time.numpy().astype(np.float64)
    latest = np.full(num_users, -np.inf)
    valid = ~np.isnan(times)
    np.maximum.at(latest, train.user.numpy()[valid], times[valid])
    age = (latest[users] - times[rows]) / _DAY
    age = np.where(np.isfinite(age), age, 0.0)

    items = torch.full((num_users, max_len), -1, dtype=torch.long)
    mask = torch.zeros(num_users, max_len, dtype=torch.bool)
    ages = torch.zeros(num_users, max_len, dtype=torch.float32)
    u, k = torch.as_tensor(users, dtype=torch.long), torch.as_tensor(rank, dtype=torch.long)
    items[u, k] = train.item[torch.as_tensor(rows, dtype=torch.long)].long()
    mask[u, k] = True
    ages[u, k] = torch.as_tensor(age, dtype=torch.float32)
    return items, mask, ages


def relation_name(iri: str) -> str:
    """A readable name for a relation IRI, as used in :func:`item_texts`.

    The local name after the last ``/`` or ``#``, then after the last ``.`` (Freebase), with
    ``_`` and camelCase read as word breaks, in lower case:
    ``.../film.film.directed_by`` -> ``"directed by"``, ``dbo:director`` -> ``"director"``,
    ``ex:hasGenre`` -> ``"has genre"``.
    """
    name = _local_name(iri)
    name = name.rsplit(".", 1)[-1] or name
    name = _CAMEL.sub(" ", name).replace("_", " ").replace("-", " ")
    return " ".join(name.lower().split()) or iri


def relative_time(days: float) -> str:
    """How long ago, in words, for ``days`` elapsed.

    ``"today"`` (under a day), ``"3 days earlier"``, ``"2 weeks earlier"``, ``"2 months earlier"``,
    ``"1 year earlier"``. Negative ``days`` (an event after the reference) read as ``"today"``.
    """
    if days < 1:
        return "today"
    for limit, size, unit in ((7, 1.0, "day"), (30, 7.0, "week"), (365, 30.4375, "month"), (math.inf, 365.25, "year")):
        if days < limit:
            n = max(1, int(days // size))
            return f"{n} {unit}{'s' if n != 1 else ''} earlier"
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- helpers
def _relation_names(kg: KnowledgeGraph, triples: np.ndarray) -> tuple[list[str], dict[str, int]]:
    """Each relation's :func:`relation_name`, and the number of triples of each name in the graph."""
    rel_names = [relation_name(r) for r in kg.relations]
    name_count: dict[str, int] = {}
    for r, c in zip(range(kg.num_relations), np.bincount(triples[:, 1], minlength=kg.num_relations)):
        name_count[rel_names[r]] = name_count.get(rel_names[r], 0) + int(c)
    return rel_names, name_count


def _item_title(kg: KnowledgeGraph, i: int, years: np.ndarray | None) -> str:
    """The item's :func:`_title`, with its ``year`` feature appended unless the title holds it."""
    title = _title(kg, i)
    if years is not None and math.isfinite(float(years[i])):
        year = str(int(years[i]))
        if year not in title:
            title = f"{title} ({year})"
    return title


def _attribute_parts(kg: KnowledgeGraph, groups: dict[str, list[int]], name_count: dict[str, int],
                     degree: np.ndarray, readable: dict[int, str | None], max_neighbors: int) -> list[str]:
    """``"name: label, label"`` per relation group, most frequent relations first (see :func:`item_texts`)."""
    parts = []
    for name in sorted(groups, key=lambda g: (-name_count[g], g)):
        labelled = [(e, _cached_label(kg, e, readable)) for e in set(groups[name])]
        labelled = sorted(((e, lab) for e, lab in labelled if lab),
                          key=lambda x: (-int(degree[x[0]]), x[1].casefold(), x[0]))
        shown = list(dict.fromkeys(lab for _, lab in labelled))[:max_neighbors]
        if shown:
            parts.append(f"{name}: {', '.join(shown)}")
    return parts


def _cached_label(kg: KnowledgeGraph, e: int, readable: dict[int, str | None]) -> str | None:
    """:func:`_readable_label` of entity ``e``, computed once per ``readable`` cache."""
    if e not in readable:
        readable[e] = _readable_label(kg, e)
    return readable[e]


def _description_parts(kg: KnowledgeGraph, i: int, title: str) -> list[str]:
    """The item's other text literals (predicates sorted), cleaned, without repeats or the title."""
    parts = []
    seen = {title}
    lits = kg.literals.get(i, {})
    for pred in sorted(p for p in lits if p not in _LABELS):
        for value in lits[pred]:
            value = _clean(value, underscores=False)
            if value and value not in seen:
                seen.add(value)
                parts.append(value)
    return parts


def _history_order(train: Interactions, num_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``train`` grouped by user, most recent first; ``starts[u]:starts[u+1]`` = user u."""
    n = len(train)
    users = train.user.numpy().astype(np.int64)
    times = train.time.numpy().astype(np.float64)
    times = np.where(np.isnan(times), -np.inf, times)
    weights = train.weight.numpy().astype(np.float64)
    items = train.item.numpy().astype(np.int64)
    # lexsort: last key is primary
    order = np.lexsort((np.arange(n), items, -weights, -times, users))
    starts = np.searchsorted(users[order], np.arange(num_users + 1))
    return order, starts


def _check_ids(train: Interactions, num_users: int, num_items: int | None) -> None:
    if not isinstance(train, Interactions):
        raise TypeError(f"'train' must be an Interactions (got {type(train).__name__})")
    if len(train) == 0:
        return
    for name, tensor, bound in (("user", train.user, num_users), ("item", train.item, num_items)):
        if bound is None:
            continue
        lo, hi = int(tensor.min()), int(tensor.max())
        if lo < 0 or hi >= bound:
            bad = lo if lo < 0 else hi
            raise ValueError(f"'train' has {name} id {bad}, expected ids in [0, {bound}) "
                             f"({bound} {name}s in the graph)")


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"'{name}' must be {what} (got {value!r})")


def _local_name(iri: str) -> str:
    return iri.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _clean(text: str, underscores: bool = True) -> str:
    """Whitespace collapsed; for names taken from IRIs also percent-decoded and ``_`` -> space."""
    if underscores:
        text = unquote(text).replace("_", " ")
    return " ".join(text.split())


def _label_literal(kg: KnowledgeGraph, entity: int) -> str | None:
    lits = kg.literals.get(entity, {})
    for pred in LABEL_PREDICATES:
        for value in lits.get(pred, ()):
            value = _clean(value, underscores=False)
            if value:
                return value
    return None


def _title(kg: KnowledgeGraph, entity: int) -> str:
    """Like :meth:`KnowledgeGraph.label`, with an IRI-derived name made readable."""
    label = _label_literal(kg, entity)
    if label is not None:
        return label
    name = _local_name(kg.entities[entity])
    return _clean(name) or name or kg.entities[entity]


def _readable_label(kg: KnowledgeGraph, entity: int) -> str | None:
    label = _label_literal(kg, entity)
    if label is not None:
        return label
    name = _local_name(kg.entities[entity])
    if not name or _OPAQUE.match(name):
        return None
    return _clean(name) or None


def _year_feature(kg: KnowledgeGraph) -> np.ndarray | None:
    if kg.features is None:
        return None
    for j, name in enumerate(kg.feature_names):
        if _local_name(name).lower() == "year":
            return kg.features[:, j].double().numpy()
    return None


def _sentences(parts: list[str]) -> str:
    out = []
    for p in parts:
        p = p.strip()
        if p:
            out.append(p if p.endswith(_END) else p + ".")
    return " ".join(out)


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    # a word boundary keeps the last word whole; fall back to a hard cut for one long word
    space = cut.rfind(" ")
    if space > 0 and not text[max_chars].isspace():
        cut = cut[:space]
    return cut.rstrip(" ,;:")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
