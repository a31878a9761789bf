"""Full-ranking evaluation of a scorer on a :class:`~kgrec.data.splits.Split` (PROTOCOL.md).

Protocol: each evaluated user's scores over the whole catalogue (or over ``split.test_candidates``
on a cold-item test) are ranked after masking the items the user has in train (and in valid when
the test part is scored). Relevant items are the user's items in the evaluated part; users with
none are not counted. Metrics are averaged over the evaluated users.

A test (or valid) item that the user also has in a masked part (a repeated interaction) can never
be ranked, so it is not counted as relevant either; :attr:`Evaluator.n_dropped` says how many such
pairs were left out (none on MovieLens, which has one rating per user-item pair).
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from kgrec.data.splits import Split
from kgrec.evaluation.metrics import (
    EvaluationError,
    auc_from_rank_sum,
    average_popularity,
    average_precision,
    check_k,
    entropy_from_counts,
    gini_from_counts,
    hit,
    mrr,
    ndcg,
    precision,
    recall,
    tail_items,
    tail_percentage,
)
from kgrec.evaluation.rank import csr_rows, mask_seen, restrict, seen_csr, topk

__all__ = ["Evaluator", "evaluate", "evaluate_topk", "PARTS"]

PARTS = ("valid", "test")
_ACCURACY = ("recall", "ndcg", "precision", "hit", "mrr")
_PER_USER = (*_ACCURACY, "map", "avg_pop", "tail")  # per-user metrics, averaged over the users

ScoreFn = Callable[[Tensor], Tensor]


class _Totals:
    """What :meth:`Evaluator.__call__` adds up over the batches of users."""

    def __init__(self, ks: tuple[int, ...], n_items: int):
        self.sums = {f"{m}@{k}": 0.0 for k in ks for m in _PER_USER}
        self.covered = {k: torch.zeros(n_items, dtype=torch.bool) for k in ks}
        self.counts = {k: torch.zeros(n_items, dtype=torch.long) for k in ks}
        self.parts: dict[str, list[Tensor]] = {f"{m}@{k}": [] for k in ks for m in _PER_USER}
        self.parts["auc"] = []
        self.rank_sums: list[Tensor] = []


class Evaluator:
    """Precomputed masks and ground truth of one split part, reusable every epoch.

    Building the per-user seen items (CSR), the relevant items and the evaluated users happens once
    here; :meth:`__call__` then only scores, masks, ranks and counts.

    Args:
        split: the split to evaluate on.
        ks: cut-offs (default ``(10, 20)``).
        part: ``"valid"`` (train items masked) or ``"test"`` (train and valid items masked,
            candidates restricted to ``split.test_candidates`` when set) (default ``"test"``).
            Equal scores rank the lower item id first, except over ``split.test_candidates``: there
            (the cold-item protocol) a collaborative model gives every candidate the same score,
            and an id order would hand it whatever the ids correlate with (release order on
            MovieLens), so ties follow a random item order drawn from ``split.seed`` instead; the
            same order for every model, so a tie scores what a seeded random ranking scores.
        batch_size: users scored per call of ``score_fn`` (default ``1024``).
        users: evaluate only these user ids, e.g. the cold users of a global-time split
            (default ``None``: every user with a relevant item).
        item_popularity: popularity of each item for ``avg_pop@k`` and the long tail of ``tail@k``
            (default ``None``: training interaction counts).
        tail_ratio: which items are the long tail for ``tail@k``, RecBole's ``tail_ratio`` rule
            (:func:`~kgrec.evaluation.metrics.tail_items`): a ratio in ``(0, 1]`` takes the
            ``max(int(num_items * tail_ratio), 1)`` least popular items (ties: lower id first), a
            number above 1 every item with popularity ``<= tail_ratio`` (default ``0.1``, RecBole's
            default: the 10% least popular items of the whole catalogue).
        gauc: compute ``"gauc"`` (default ``True``); it compares every score of a user with each of
            its relevant items, the dearest part of a call on the CPU, so a per-epoch validation
            may switch it off (``"gauc"`` and ``per_user["auc"]`` are then NaN).

    Attributes:
        users: the evaluated user ids, ascending.
        per_user: after a call, each evaluated user's values aligned with :attr:`users`:
            ``{"recall@k", "ndcg@k", "precision@k", "hit@k", "mrr@k", "map@k", "avg_pop@k",
            "tail@k"}`` for each ``k`` and ``"auc"`` (NaN for a user without negatives), each a
            float64 tensor ``[n_eval]``; meant for paired significance tests between models.
        is_tail: ``[num_items]`` bool, the long-tail items.

    Shapes:
        users: ``[U']`` long; item_popularity: ``[num_items]``.
    """

    def __init__(self, split: Split, ks: Iterable[int] = (10, 20), part: str = "test",
                 batch_size: int = 1024, users: Tensor | Sequence[int] | None = None,
                 item_popularity: Tensor | None = None, tail_ratio: float = 0.1, gauc: bool = True):
        if part not in PARTS:
            raise EvaluationError(f"'part' must be one of {', '.join(PARTS)} (got {part!r})")
        self.ks = _check_ks(ks)
        self.part = part
        self.batch_size = check_k(batch_size, "batch_size")
        self.num_users, self.num_items = split.num_users, split.num_items
        n_items = self.num_items

        seen = split.train if part == "valid" else split.train.concat(split.valid)
        self.seen_indptr, self.seen_indices = seen_csr(seen.user, seen.item, self.num_users, n_items)

        self.candidates: Tensor | None = None  # [n_items] bool
        if part == "test" and split.test_candidates is not None:
            cand = torch.as_tensor(split.test_candidates).long().view(-1)
            if cand.numel() and (int(cand.min()) < 0 or int(cand.max()) >= n_items):
                raise EvaluationError(f"'split.test_candidates' must be item ids in [0, {n_items}) "
                                      f"(got range [{int(cand.min())}, {int(cand.max())}])")
            self.candidates = torch.zeros(n_items, dtype=torch.bool)
            self.candidates[cand] = True
        # column order the ranking sees: ties go to the earlier column (see ``part`` above)
        self.tie_order: Tensor | None = None  # [n_items] long, a permutation of the item ids
        if self.candidates is not None:
            self.tie_order = torch.randperm(n_items, generator=torch.Generator().manual_seed(int(split.seed)))

        target = split.valid if part == "valid" else split.test
        _check_range(target.user, self.num_users, "user", f"'split.{part}'")
        _check_range(target.item, n_items, "item", f"'split.{part}'")
        # relevant (user, item) pairs as sorted int64 keys u * n_items + i, so a hit is one lookup
        key = torch.unique(target.user.long() * n_items + target.item.long())
        if self.candidates is not None:
            key = key[self.candidates[key % n_items]]
        seen_key = torch.repeat_interleave(torch.arange(self.num_users), self.seen_indptr.diff()) * n_items \
            + self.seen_indices
        masked = torch.isin(key, seen_key)
        self.n_dropped = int(masked.sum())
        self.relevant_keys = key[~masked]
        self.n_relevant = torch.bincount(self.relevant_keys // n_items, minlength=self.num_users)

        has = self.n_relevant > 0
        if users is not None:
            users = torch.as_tensor(users, dtype=torch.long).view(-1).cpu()
            _check_range(users, self.num_users, "user", "'users'")
            wanted = torch.zeros(self.num_users, dtype=torch.bool)
            wanted[users] = True
            has &= wanted
        self.users = has.nonzero().view(-1)  # [n_eval], ascending

        if item_popularity is None:
            item_popularity = torch.bincount(split.train.item.long(), minlength=n_items)
        item_popularity = torch.as_tensor(item_popularity).view(-1)
        if item_popularity.numel() != n_items:
            raise EvaluationError(f"'item_popularity' must have {n_items} entries (got {item_popularity.numel()})")
        self.item_popularity = item_popularity.double()
        self.n_rankable = int(self.candidates.sum()) if self.candidates is not None else n_items
        self.is_tail = tail_items(self.item_popularity, tail_ratio)
        # relevant items as CSR rows (keys are sorted by user, then item) for GAUC
        self.relevant_indptr = torch.zeros(self.num_users + 1, dtype=torch.long)
        self.relevant_indptr[1:] = torch.cumsum(self.n_relevant, 0)
        self.relevant_items = self.relevant_keys % n_items
        # items each user can be ranked against: the rankable ones minus its masked ones
        seen_user = torch.repeat_interleave(torch.arange(self.num_users), self.seen_indptr.diff())
        seen_rankable = torch.ones_like(self.seen_indices, dtype=torch.bool) if self.candidates is None \
            else self.candidates[self.seen_indices]
        self.n_unmasked = self.n_rankable - torch.bincount(seen_user[seen_rankable], minlength=self.num_users)
        self.gauc = bool(gauc)
        self.per_user: dict[str, Tensor] = {}

    def __call__(self, score_fn: ScoreFn) -> dict[str, float]:
        """Score every evaluated user with ``score_fn`` and return the averaged metrics.

        Args:
            score_fn: maps user ids to scores over all items; called under ``torch.no_grad()``
                with CPU ids (move them to the model's device inside). Scores may live on any device.

        Shapes:
            score_fn: ``users [B]`` long -> ``[B, num_items]`` float.

        Returns:
            ``{"recall@k", "ndcg@k", "precision@k", "hit@k", "mrr@k", "coverage@k", "avg_pop@k",
            "map@k", "gini@k", "entropy@k", "tail@k"}`` for each ``k``, then ``"gauc"``, ``"users"``
            (number evaluated), ``"seconds"`` (wall time of scoring, masking, ranking and counting)
            and ``"users_per_second"``. The new metrics follow RecBole (``MAP``, ``GiniIndex``,
            ``ShannonEntropy``, ``TailPercentage``, ``GAUC``; see :mod:`kgrec.evaluation.metrics`):

            - ``map@k``: mean over users of :func:`~kgrec.evaluation.metrics.average_precision`.
            - ``gini@k`` / ``entropy@k``: :func:`~kgrec.evaluation.metrics.gini_index` /
              :func:`~kgrec.evaluation.metrics.shannon_entropy` of how often each item appears in all users'
              top k, over the rankable items (the test candidates on a cold-item test).
            - ``tail@k``: mean over users of :func:`~kgrec.evaluation.metrics.tail_percentage`, the tail being
              :attr:`is_tail` (``tail_ratio``).
            - ``gauc``: each user's AUC over its whole ranking (positives: its relevant items,
              negatives: every other unmasked rankable item; tied scores count half), averaged
              with the users' numbers of relevant items as weights; users with no negative are
              left out (NaN if none is left).

            Each user's values are kept in :attr:`per_user`.
        """
        kmax = min(max(self.ks), self.num_items)
        totals = _Totals(self.ks, self.num_items)
        start = time.perf_counter()
        with torch.no_grad():
            for b in range(0, self.users.numel(), self.batch_size):
                users = self.users[b:b + self.batch_size]
                scores, index, valid = self._rank(score_fn, users, kmax)
                query = users.view(-1, 1) * self.num_items + index
                hits = _lookup(self.relevant_keys, query) & valid
                self._count(totals, hits, index, self.n_relevant[users])
                if self.gauc:
                    totals.rank_sums.append(self._rank_sum(scores, users))
                else:
                    totals.rank_sums.append(torch.full((users.numel(),), math.nan, dtype=torch.float64))
        return self._summary(totals, time.perf_counter() - start)

    def _rank(self, score_fn: ScoreFn, users: Tensor, kmax: int) -> tuple[Tensor, Tensor, Tensor]:
        """Scores of ``users`` masked, and their top ``kmax`` columns (``-1`` where a rank is empty).

        Shapes:
            users: ``[B]``. Returns scores ``[B, num_items]`` (masked), index ``[B, kmax]`` long on the
            CPU and valid ``[B, kmax]`` bool on the CPU.
        """
        scores = score_fn(users)
        _check_scores(scores, users.numel(), self.num_items)
        if self.candidates is not None:
            scores = restrict(scores, self.candidates)  # a copy, so masking may go in place
            scores = mask_seen(scores, users, self.seen_indptr, self.seen_indices, inplace=True)
        else:
            scores = mask_seen(scores, users, self.seen_indptr, self.seen_indices)
        if self.tie_order is None:
            values, index = topk(scores, kmax)
        else:
            order = self.tie_order.to(scores.device)
            values, index = topk(scores[:, order], kmax)
            index = order[index]
        valid = (values != float("-inf")).cpu()  # masked / non-candidate ranks are empty
        index = index.cpu().masked_fill(~valid, -1)
        return scores, index, valid

    def _count(self, totals: _Totals, hits: Tensor, index: Tensor, n_rel: Tensor) -> None:
        """Add one batch's per-user metrics, covered items and top-k counts to ``totals``."""
        for k in self.ks:
            per_user = {"recall": recall(hits, n_rel, k), "ndcg": ndcg(hits, n_rel, k),
                        "precision": precision(hits, k), "hit": hit(hits, k), "mrr": mrr(hits, k),
                        "map": average_precision(hits, n_rel, k),
                        "avg_pop": average_popularity(index, self.item_popularity, k),
                        "tail": tail_percentage(index, self.is_tail, k)}
            for m, v in per_user.items():
                v = v.double()
                totals.sums[f"{m}@{k}"] += float(v.sum())
                totals.parts[f"{m}@{k}"].append(v)
            top = index[:, :k]
            top = top[top >= 0]
            totals.covered[k][top] = True
            totals.counts[k] += torch.bincount(top, minlength=self.num_items)

    def _summary(self, totals: _Totals, seconds: float) -> dict[str, float]:
        """The averaged metrics of a call from its ``totals``; keeps each user's values in :attr:`per_user`."""
        sums, n = totals.sums, self.users.numel()
        n_rel = self.n_relevant[self.users]
        auc = auc_from_rank_sum(torch.cat(totals.rank_sums) if totals.rank_sums else torch.zeros(0),
                                self.n_unmasked[self.users], n_rel)
        keep = ~torch.isnan(auc)
        w = n_rel[keep].double()
        out: dict[str, float] = {}
        for k in self.ks:
            for m in _ACCURACY:
                out[f"{m}@{k}"] = sums[f"{m}@{k}"] / n if n else math.nan
            out[f"coverage@{k}"] = int(totals.covered[k].sum()) / self.n_rankable if self.n_rankable else math.nan
            out[f"avg_pop@{k}"] = sums[f"avg_pop@{k}"] / n if n else math.nan
        for k in self.ks:
            rankable = totals.counts[k] if self.candidates is None else totals.counts[k][self.candidates]
            out[f"map@{k}"] = sums[f"map@{k}"] / n if n else math.nan
            out[f"gini@{k}"] = gini_from_counts(rankable)
            out[f"entropy@{k}"] = entropy_from_counts(rankable)
            out[f"tail@{k}"] = sums[f"tail@{k}"] / n if n else math.nan
        out["gauc"] = float((auc[keep] * w).sum() / w.sum()) if bool(keep.any()) else math.nan
        out["users"] = n
        out["seconds"] = seconds
        out["users_per_second"] = n / seconds if seconds > 0 else math.inf
        self.per_user = {key: torch.cat(v) if v else torch.zeros(0, dtype=torch.float64)
                         for key, v in totals.parts.items()}
        self.per_user["auc"] = auc
        return out

    def _rank_sum(self, scores: Tensor, users: Tensor) -> Tensor:
        """Sum over each user's relevant items of their descending rank among its unmasked items,
        tied scores taking their average rank (RecBole's ``rec.meanrank``).

        A relevant item scoring ``p`` has rank ``(gt + ge + 1) / 2`` with ``gt`` / ``ge`` the
        number of unmasked items scoring ``> p`` / ``>= p`` (itself included); ``ge`` counts the
        items above ``nextafter(p, -inf)``, so both come from one comparison of the row with the
        user's ``2 P`` thresholds. Masked items score ``-inf`` and never count, except against a
        relevant item the model itself scored ``-inf``, which ranks level with every unmasked
        ``-inf`` (``ge`` = every unmasked item).

        Shapes:
            scores: ``[B, num_items]`` masked; users: ``[B]``. Returns ``[B]`` float64.
        """
        row_pos, cols = csr_rows(self.relevant_indptr, self.relevant_items, users)
        n_pos = self.n_relevant[users]
        pos = scores[row_pos.to(scores.device), cols.to(scores.device)]
        neg_inf = pos == float("-inf")
        if scores.dtype not in (torch.float32, torch.float64):
            scores, pos = scores.float(), pos.float()
        below = torch.nextafter(pos, torch.full_like(pos, float("-inf")))
        below = below.masked_fill(neg_inf, float("nan"))  # NaN compares False: counted below instead
        count = _count_above(scores, row_pos, n_pos, pos, below)
        n_unmasked = self.n_unmasked[users]
        extra = torch.zeros(users.numel(), dtype=torch.long)
        if bool(neg_inf.any()):
            extra.index_add_(0, row_pos, neg_inf.cpu().long())
            extra *= n_unmasked
        return (count + extra + n_pos).double() / 2

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(part={self.part!r}, ks={self.ks}, users={self.users.numel()}, "
                f"items={self.num_items}, candidates={self.n_rankable})")


def evaluate(score_fn: ScoreFn, split: Split, ks: Iterable[int] = (10, 20), part: str = "test",
             batch_size: int = 1024, users: Tensor | Sequence[int] | None = None,
             item_popularity: Tensor | None = None) -> dict[str, float]:
    """Full-ranking evaluation of ``score_fn`` on one part of ``split``; see :class:`Evaluator`.

    Shapes:
        score_fn: ``users [B]`` long -> ``[B, num_items]`` float.
    """
    return Evaluator(split, ks, part, batch_size, users, item_popularity)(score_fn)


def evaluate_topk(topk_items: Mapping[int, Sequence[int]], split: Split, ks: Iterable[int] = (10, 20),
                  part: str = "test", users: Sequence[int] | None = None,
                  item_popularity: Sequence[float] | Tensor | None = None) -> dict[str, float]:
    """Score given recommendation lists with plain per-user Python (no shared ranking code).

    Meant to cross-check the lists a recommender returns (e.g. ``recommend()``) against
    :class:`Evaluator`: the relevant items and evaluated users are defined as there (candidates,
    masked repeats, users without relevant items left out), but computed independently.

    Args:
        topk_items: each evaluated user's recommended item ids, best first (at least ``max(ks)``
            long unless the catalogue is smaller; shorter lists count the missing ranks as misses).
        split: the split the lists were made for.
        ks: cut-offs (default ``(10, 20)``).
        part: ``"valid"`` or ``"test"`` (default ``"test"``).
        users: score only these users (default ``None``: every user with a relevant item).
        item_popularity: popularity of each item for ``avg_pop@k`` (default ``None``: training
            interaction counts).

    Returns:
        The same keys as :class:`Evaluator` without ``"seconds"`` and ``"users_per_second"``.
    """
    if part not in PARTS:
        raise EvaluationError(f"'part' must be one of {', '.join(PARTS)} (got {part!r})")
    ks = _check_ks(ks)
    n_items = split.num_items
    relevant, cand = _relevant_sets(split, part)
    chosen = sorted(relevant) if users is None else sorted(set(int(u) for u in users) & set(relevant))
    if item_popularity is None:
        pop = [0.0] * n_items
        for i in split.train.item.tolist():
            pop[i] += 1.0
    else:
        pop = [float(x) for x in torch.as_tensor(item_popularity).view(-1).tolist()]
    n_cover = len(cand) if cand is not None else n_items

    sums = {f"{m}@{k}": 0.0 for k in ks for m in (*_ACCURACY, "avg_pop")}
    covered = {k: set() for k in ks}
    for u in chosen:
        if u not in topk_items:
            raise EvaluationError(f"'topk_items' has no list for user {u}, who has "
                                  f"{len(relevant[u])} relevant {part} items")
        items = _checked_list(topk_items[u], u, n_items)
        for k in ks:
            _add_list_metrics(sums, k, items[:k], relevant[u], pop)
            covered[k].update(items[:k])
    n = len(chosen)
    out: dict[str, float] = {}
    for k in ks:
        for m in _ACCURACY:
            out[f"{m}@{k}"] = sums[f"{m}@{k}"] / n if n else math.nan
        out[f"coverage@{k}"] = len(covered[k]) / n_cover if n_cover else math.nan
        out[f"avg_pop@{k}"] = sums[f"avg_pop@{k}"] / n if n else math.nan
    out["users"] = n
    return out


def _relevant_sets(split: Split, part: str) -> tuple[dict[int, set[int]], set[int] | None]:
    """Each user's relevant items of ``split.<part>`` as Python sets (candidates kept, masked repeats
    left out), and the candidate item set (``None`` without candidates); :func:`evaluate_topk`'s ground truth.
    """
    seen_parts = [split.train] if part == "valid" else [split.train, split.valid]
    seen = {(u, i) for p in seen_parts for u, i in zip(p.user.tolist(), p.item.tolist())}
    cand = None
    if part == "test" and split.test_candidates is not None:
        cand = set(torch.as_tensor(split.test_candidates).view(-1).tolist())
    target = split.valid if part == "valid" else split.test
    relevant: dict[int, set[int]] = {}
    for u, i in zip(target.user.tolist(), target.item.tolist()):
        if (cand is None or i in cand) and (u, i) not in seen:
            relevant.setdefault(u, set()).add(i)
    return relevant, cand


def _checked_list(items: Sequence[int], u: int, n_items: int) -> list[int]:
    """User ``u``'s recommended ids as ints, refused when one repeats or lies outside ``[0, n_items)``."""
    items = [int(i) for i in items]
    if len(set(items)) != len(items):
        raise EvaluationError(f"'topk_items' list of user {u} repeats an item (got {items})")
    bad = [i for i in items if not 0 <= i < n_items]
    if bad:
        raise EvaluationError(f"'topk_items' list of user {u} holds ids outside [0, {n_items}) (got {bad})")
    return items


def _add_list_metrics(sums: dict[str, float], k: int, top: list[int], rel: set[int], pop: list[float]) -> None:
    """Add one user's metrics at ``k`` of its list ``top`` (already cut at ``k``) to ``sums``, in plain Python."""
    flags = [i in rel for i in top]
    n_hit = sum(flags)
    dcg = sum(1.0 / math.log2(r + 2) for r, f in enumerate(flags) if f)
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel), k)))
    first = next((r for r, f in enumerate(flags) if f), None)
    sums[f"recall@{k}"] += n_hit / len(rel)
    sums[f"precision@{k}"] += n_hit / k
    sums[f"hit@{k}"] += float(n_hit > 0)
    sums[f"mrr@{k}"] += 0.0 if first is None else 1.0 / (first + 1)
    sums[f"ndcg@{k}"] += dcg / idcg
    sums[f"avg_pop@{k}"] += sum(pop[i] for i in top) / len(top) if top else 0.0


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    if isinstance(ks, numbers.Integral):
        ks = (ks,)
    ks = tuple(dict.fromkeys(check_k(k) for k in ks))
    if not ks:
        raise EvaluationError("'ks' must hold at least one cut-off (got an empty sequence)")
    return ks


_COUNT_BUDGET = 1 << 20  # comparison results held at once (bytes) by _count_above


def _count_above(scores: Tensor, row_pos: Tensor, n_pos: Tensor, *thresholds: Tensor) -> Tensor:
    """For each row ``r``, the number of (item, threshold) pairs with ``scores[r, item] > threshold``,
    over the thresholds of that row.

    Rows are grouped by their number of thresholds so that no comparison is padded; on the CPU the
    comparisons go through NumPy into a reused buffer and are counted by popcount.

    Args:
        scores: the score block.
        row_pos: the row of each entry of the threshold vectors, ascending.
        n_pos: the number of entries of each row.
        thresholds: vectors aligned with ``row_pos`` (NaN entries never count).

    Shapes:
        scores: ``[B, n]``; row_pos: ``[P]``; n_pos: ``[B]``; thresholds: ``[P]`` each.
        Returns ``[B]`` long (on the CPU).
    """
    B, n = scores.shape
    out = torch.zeros(B, dtype=torch.long)
    if B == 0 or row_pos.numel() == 0:
        return out
    first = torch.cumsum(n_pos, 0) - n_pos
    offset = torch.arange(row_pos.numel()) - first[row_pos]
    width = int(n_pos.max())
    thr = torch.full((B, len(thresholds) * width), float("nan"), dtype=scores.dtype, device=scores.device)
    for t, vec in enumerate(thresholds):
        thr[row_pos.to(scores.device), (offset + t * width).to(scores.device)] = vec
    order = torch.argsort(n_pos, stable=True)
    sizes = n_pos[order]
    use_np = scores.device.type == "cpu" and hasattr(np, "bitwise_count")
    if use_np:
        s_np, thr_np = scores.numpy(), thr.cpu().numpy()
        buf = np.empty(_COUNT_BUDGET + 8 * n * len(thresholds) * width + 8, dtype=bool)
    start = 0
    while start < B:
        m = int(sizes[start])
        cols = [t * width + j for t in range(len(thresholds)) for j in range(m)]
        per_row = len(cols) * n
        stop = min(B, start + max(1, _COUNT_BUDGET // max(per_row, 1)))
        stop = start + int(torch.searchsorted(sizes[start:stop], m, right=True))
        rows = order[start:stop]
        if m:
            if use_np:
                r = rows.numpy()
                stride = (per_row + 7) // 8 * 8
                block = buf[:len(r) * stride].reshape(len(r), stride)
                block[:, per_row:] = False
                t = thr_np[r][:, cols]
                np.greater(s_np[r][:, None, :], t[:, :, None], out=block[:, :per_row].reshape(len(r), len(cols), n))
                out[rows] = torch.from_numpy(np.bitwise_count(block.view(np.uint64)).sum(1, dtype=np.int64))
            else:
                r = rows.to(scores.device)
                t = thr[r][:, cols]
                out[rows] = (scores[r][:, None, :] > t[:, :, None]).sum((1, 2)).cpu()
        start = stop
    return out


def _lookup(sorted_keys: Tensor, query: Tensor) -> Tensor:
    """``query`` entries present in ``sorted_keys`` (``[M]`` sorted) as a bool tensor of ``query``'s shape."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(query, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, query).clamp(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == query


def _check_range(ids: Tensor, n: int, what: str, where: str) -> None:
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
        raise EvaluationError(f"{where} holds {what} ids outside [0, {n}) "
                              f"(got range [{int(ids.min())}, {int(ids.max())}])")


def _check_scores(scores, batch: int, n_items: int) -> None:
    if not isinstance(scores, Tensor) or not scores.is_floating_point():
        raise EvaluationError(f"'score_fn' must return a float tensor (got {type(scores).__name__}"
                              f"{'' if not isinstance(scores, Tensor) else ' of dtype ' + str(scores.dtype)})")
    if tuple(scores.shape) != (batch, n_items):
        raise EvaluationError(f"'score_fn' must return scores of shape [B, num_items] = [{batch}, {n_items}] "
                              f"(got {list(scores.shape)})")
