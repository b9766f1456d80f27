"""Full-ranking and rating evaluation of a model on a :class:`~semrec.data.split.Split`.

Full ranking: every user with at least one interaction in the evaluated part gets a
top-K list over all items (or over ``candidates`` only), the items of the user's
history excluded by the shared :func:`semrec.models.topk.topk`. The list is compared
with the user's items in the part; the per-user metrics of
:mod:`semrec.evaluate.metrics` are averaged over those users.

=========  =======================  ==========================================
``part``   history (excluded)       relevant items
=========  =======================  ==========================================
``test``   ``train+valid``          the user's ``test`` items
``valid``  ``train``                the user's ``valid`` items
=========  =======================  ==========================================
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from semrec.data.dataset import Interactions
from semrec.data.split import Split
from semrec.evaluate.metrics import (
    activity_groups,
    average_popularity,
    exposure,
    gini_index,
    head_items,
    hit_rate_at_k,
    intra_list_diversity,
    item_coverage,
    mae,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
    rmse,
    shannon_entropy,
    tail_share,
)
from semrec.models.base import Scorer
from semrec.models.rerank import ItemSpace, Rerank, item_counts
from semrec.models.rerank import rerank as rerank_lists
from semrec.models.topk import topk

#: Evaluated part -> the part whose items are the user's known history.
#: What a user's history is when each part is predicted (see :meth:`Split.history`).
HISTORY_OF = {"test": "train+valid+support", "valid": "train"}

#: Bytes per score entry: scores are budgeted as a float32 ``(B, n_items)`` matrix.
_SCORE_BYTES = 4
#: The short head: this share of the items, those with the most training interactions.
HEAD_SHARE = 0.2
#: Evaluated users in equal groups by training interactions, least active first.
USER_GROUPS = ("low", "mid", "high")
#: Lists whose pairwise similarities are held at once when measuring diversity.
SIMILARITY_CHUNK = 512


def default_batch_size(n_items: int, memory_budget_mb: float = 512) -> int:
    """Users per batch so that one float32 ``(B, n_items)`` score matrix fits the budget.

    ``B = max(1, floor(memory_budget_mb * 2**20 / (4 * n_items)))``
    """
    if n_items < 1:
        raise ValueError(f"n_items must be at least 1, got {n_items}")
    if not memory_budget_mb > 0:
        raise ValueError(f"memory_budget_mb must be positive, got {memory_budget_mb}")
    return max(1, int(memory_budget_mb * 2**20) // (_SCORE_BYTES * n_items))


def evaluate_ranking(
    scorer: Scorer,
    split: Split,
    part: str = "test",
    ks: Iterable[int] = (10, 20),
    batch_size: int | None = None,
    memory_budget_mb: float = 512,
    candidates: np.ndarray | torch.Tensor | None = None,
    users: np.ndarray | None = None,
    *,
    beyond: bool = False,
    space: ItemSpace | None = None,
    rerank: Rerank | None = None,
) -> dict[str, Any]:
    """Full-ranking metrics of ``scorer`` on ``split``'s ``part``.

    For every user with at least one relevant item (users without are skipped):
    ``scores = scorer.score(users, history_rows)``, history items excluded, the top
    ``max(ks)`` taken (re-ranked from a larger pool when ``rerank`` is active); then per K
    the per-user recall, NDCG, precision, hit rate and reciprocal rank (see
    :mod:`semrec.evaluate.metrics` for the formulas and denominators), each averaged over
    the evaluated users: ``metric@K = sum_u metric_u / n_users``. The lists are made in
    batches of users and measured in one pass afterwards (:func:`ranking_metrics`).

    Args:
        scorer: anything with ``score(users (B,), history (B, n_items) CSR) -> (B, n_items)``.
            The returned tensor is masked in place, so it must not be a view of the
            scorer's own state.
        split: the data; ``split.n_items`` must equal the width of the scores.
        part: ``"test"`` (history ``train+valid``) or ``"valid"`` (history ``train``).
        ks: list lengths, each ``>= 1``. Default ``(10, 20)``.
        batch_size: users scored at once; ``None`` derives it from ``memory_budget_mb``
            (see :func:`default_batch_size`). Results do not depend on it.
        memory_budget_mb: budget for one float32 ``(B, n_items)`` score matrix. Default 512.
        candidates: item indices; when given, lists are ranked among these items only
            (cold-item evaluation ranks over ``split.cold_items``), the relevant items of
            a user are the part's items among the candidates, and users without any are
            skipped. ``None`` (default): all items.
        users: user indices; when given, only these users are evaluated (e.g. users with
            few training interactions). ``None`` (default): every user with a relevant item.
        beyond: also measure what accuracy does not see (default false; see
            :func:`ranking_metrics`): novelty, popularity, long tail, exposure, and
            accuracy per user and item group.
        space: where item similarity is measured; with ``beyond``, adds ``diversity@K``.
            Re-ranking for diversity needs it too.
        rerank: re-rank each user's best ``rerank.pool_size(max(ks))`` items
            (:func:`semrec.models.rerank.rerank`, popularity from the training part)
            before measuring. ``None`` (default) or inactive: the score order.

    Returns:
        ``recall@K``, ``ndcg@K``, ``precision@K``, ``hit@K``, ``mrr@K`` and ``coverage@K``
        for every K, and ``n_users`` (int, users evaluated). ``coverage@K`` is the share
        of the catalogue (all items, or the candidates) in at least one evaluated top-K.
        With ``beyond``, the keys :func:`ranking_metrics` adds, and ``"beyond"``: what the
        groups and the similarity are (see :func:`beyond_summary`).

    Notes:
        Items scored ``-inf`` by the scorer, excluded history items and non-candidates
        are never recommended; where fewer than K items remain the list is shorter and
        precision still divides by K. A relevant item that is also in the history can
        never be hit but still counts in ``|T_u|``. Ties are ordered by ``torch.topk``.
    """
    ks = _check_ks(ks)
    if part not in HISTORY_OF:
        raise ValueError(f"part must be one of {sorted(HISTORY_OF)}, got '{part}'")
    n_items = split.n_items
    scorer_items = getattr(scorer, "n_items", n_items)
    if scorer_items != n_items:
        raise ValueError(f"the scorer knows {scorer_items} items but the split has {n_items}")
    if batch_size is None:
        batch_size = default_batch_size(n_items, memory_budget_mb)
    elif isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if rerank is not None and rerank.diversity > 0 and space is None:
        raise ValueError("re-ranking for diversity needs an item space (space=...)")

    truth = _Truth.of(split, part, candidates, users)
    # (n_users, n_items) CSR, excluded items; their times for models that read histories in order
    history = split.history(part, "timestamps" if getattr(scorer, "ordered", False) else "ones")
    length = min(ks[-1], truth.n_catalogue)  # items a list can hold
    reranking = rerank is not None and rerank.active
    pool = min(rerank.pool_size(length), truth.n_catalogue) if reranking else length
    counts = item_counts(split.train.items, n_items) if reranking else None
    cand_t = None if truth.cand is None else torch.as_tensor(truth.cand)
    users = truth.users
    lists = np.full((users.shape[0], length), -1, dtype=np.int64)  # (N, L) best first, -1 padding

    for start in range(0, users.shape[0], batch_size):
        u = users[start : start + batch_size]  # (B,)
        seen = history[u]  # (B, n_items) CSR
        with torch.no_grad():
            scores = scorer.score(u, seen)  # (B, n_items)
        if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (u.shape[0], n_items):
            shape = tuple(scores.shape) if hasattr(scores, "shape") else type(scores).__name__
            raise ValueError(
                f"scorer.score returned {shape} for {u.shape[0]} users; expected a "
                f"tensor of shape ({u.shape[0]}, {n_items})"
            )
        if scores.dtype not in (torch.float32, torch.float64):  # integers, or half-precision tables
            scores = scores.to(torch.float32)
        if cand_t is not None and cand_t.device != scores.device:
            cand_t = cand_t.to(scores.device)
        values_t, idx_t = topk(scores.detach(), pool, seen=seen, candidates=cand_t)  # (B, P)
        del scores  # free this batch's scores before the next batch is scored
        # The (B, P) bookkeeping is done in NumPy: small arrays, no thread-pool overhead.
        values = values_t.cpu().numpy()  # (B, P)
        idx = idx_t.cpu().numpy()  # (B, P)
        if np.isnan(values).any():  # NaN sorts above every number, so any NaN shows here
            raise ValueError("scorer.score returned NaN scores")
        if reranking:
            values, idx = rerank_lists(values, idx, length, diversity=rerank.diversity, novelty=rerank.novelty,
                                       space=space, counts=counts)
        lists[start : start + u.shape[0]] = np.where(values > -np.inf, idx, -1)  # (B, L)

    out = _list_metrics(lists, truth, split, ks, beyond, space)
    if beyond:
        out["beyond"] = beyond_summary(split, part, candidates, truth.users, space)
    return out


def ranking_metrics(
    lists: np.ndarray,
    split: Split,
    part: str = "test",
    ks: Iterable[int] = (10, 20),
    candidates: np.ndarray | torch.Tensor | None = None,
    users: np.ndarray | None = None,
    *,
    beyond: bool = False,
    space: ItemSpace | None = None,
) -> dict[str, Any]:
    """The metrics of :func:`evaluate_ranking` for lists already made, e.g. re-ranked
    several ways from one pool (``benchmarks/rerank_tradeoff.py``).

    ``lists`` ``(N, L)`` int holds one list per evaluated user (internal item indices, best
    first, ``-1`` padding; ``L >= min(max(ks), n_catalogue)``), rows in the order of the
    users :func:`evaluate_ranking` evaluates: every user with a relevant item in ``part``
    (among ``candidates``; among ``users`` when given), by increasing index
    (:func:`evaluated_users`). History items must already be left out.

    With ``beyond``, per K (``counts`` and ``head`` from the training part, see
    :mod:`semrec.evaluate.metrics` for each formula and denominator):

    * ``novelty@K`` (bits), ``popularity@K`` (training interactions), ``tail@K`` (share of
      the list outside the head: the top ``HEAD_SHARE`` of items by training
      interactions), each a mean over the users with a non-empty list;
    * ``diversity@K`` (with ``space``): intra-list diversity, a mean over the users whose
      list holds at least two items;
    * ``gini@K`` and ``entropy@K`` of exposure over the catalogue (or the candidates);
    * ``recall_users_G@K`` and ``ndcg_users_G@K`` for ``G`` in ``low``, ``mid``, ``high``:
      the evaluated users in three equal groups by training interactions
      (:func:`~semrec.evaluate.metrics.activity_groups`), each a mean over its group;
    * ``recall_head@K``, ``ndcg_head@K``, ``recall_tail@K``, ``ndcg_tail@K``: accuracy on
      head (tail) test items only: per user, the metric with hits and ``|T_u|`` counted
      among the group's items (a list's other items still take their ranks), a mean over
      the users with at least one relevant item in the group.

    A key whose mean would be over no user (e.g. no tail item is relevant to anyone) is
    left out rather than given a made-up value.
    """
    ks = _check_ks(ks)
    truth = _Truth.of(split, part, candidates, users)
    lists = np.asarray(lists)
    if lists.ndim != 2 or lists.shape[0] != truth.users.shape[0]:
        raise ValueError(f"lists must hold one row per evaluated user ({truth.users.shape[0]}), "
                         f"got shape {lists.shape}")
    length = min(ks[-1], truth.n_catalogue)
    if lists.shape[1] < length:
        raise ValueError(f"lists hold {lists.shape[1]} items per user; K = {ks[-1]} needs {length}")
    lists = lists[:, :length].astype(np.int64)
    if ((lists < -1) | (lists >= split.n_items)).any():
        raise ValueError(f"lists must hold item indices in 0..{split.n_items - 1} or -1 for padding")
    out = _list_metrics(lists, truth, split, ks, beyond, space)
    if beyond:
        out["beyond"] = beyond_summary(split, part, candidates, truth.users, space)
    return out


def evaluated_users(split: Split, part: str = "test", candidates: np.ndarray | torch.Tensor | None = None,
                    users: np.ndarray | None = None) -> np.ndarray:
    """The users :func:`evaluate_ranking` evaluates, increasing: those with a relevant item
    in ``part`` (among ``candidates``), restricted to ``users`` when given."""
    return _Truth.of(split, part, candidates, users).users


def beyond_summary(split: Split, part: str, candidates: np.ndarray | torch.Tensor | None,
                   users: np.ndarray, space: ItemSpace | None) -> dict[str, Any]:
    """What the beyond-accuracy keys were measured against::

        {"diversity_space": "text" | "learned" | "cooccurrence" | None,
         "head": {"share", "n_items", "min_train"},
         "user_groups": {"low": {"n_users", "min_train", "max_train"}, "mid": ..., "high": ...}}

    ``min_train`` of the head: the fewest training interactions of a head item;
    user groups: how many evaluated users each holds and their range of training
    interactions (groups of equal size by rank may share a boundary value)."""
    counts = item_counts(split.train.items, split.n_items)
    head = head_items(counts, HEAD_SHARE)
    activity = np.bincount(split.train.users, minlength=split.n_users)[users]  # (N,)
    groups = activity_groups(activity, len(USER_GROUPS))
    described = {}
    for g, name in enumerate(USER_GROUPS):
        member = activity[groups == g]
        if len(member):
            described[name] = {"n_users": int(len(member)), "min_train": int(member.min()),
                               "max_train": int(member.max())}
    return {
        "diversity_space": None if space is None else space.name,
        "head": {"share": HEAD_SHARE, "n_items": int(head.sum()), "min_train": int(counts[head].min())},
        "user_groups": described,
    }


@dataclass(frozen=True)
class _Truth:
    """The relevant items of ``part`` and who is evaluated (see :func:`evaluate_ranking`)."""

    target: sp.csr_matrix  # (n_users, n_items) relevant items, among the candidates
    n_relevant: np.ndarray  # (n_users,)
    keys: np.ndarray  # (nnz,) sorted user * n_items + item of relevant pairs
    users: np.ndarray  # (N,) evaluated users, increasing
    cand: np.ndarray | None  # (C,) sorted candidates, or None for all items
    n_catalogue: int

    @classmethod
    def of(cls, split: Split, part: str, candidates, users) -> _Truth:
        if part not in HISTORY_OF:
            raise ValueError(f"part must be one of {sorted(HISTORY_OF)}, got '{part}'")
        n_items = split.n_items
        target = split.matrix(part)  # (n_users, n_items) CSR, relevant items
        cand: np.ndarray | None = None
        n_catalogue = n_items
        if candidates is not None:
            cand = _check_candidates(candidates, n_items)  # (C,) sorted unique
            allowed = np.zeros(n_items, dtype=bool)
            allowed[cand] = True
            target = _keep_columns(target, allowed)
            n_catalogue = int(cand.shape[0])
        target.sort_indices()
        n_relevant = np.diff(target.indptr)  # (n_users,)
        chosen = users
        users = np.flatnonzero(n_relevant)  # (N,) increasing
        if chosen is not None:
            users = np.intersect1d(users, np.asarray(chosen, dtype=np.int64))
        if users.size == 0:
            where = " among the candidates" if candidates is not None else ""
            where += " among the chosen users" if chosen is not None else ""
            raise ValueError(f"no user has an item in part '{part}'{where}: nothing to evaluate")
        # Relevant (user, item) pairs as sorted keys user * n_items + item: a top-K entry
        # is a hit when binary search finds its key.
        key_rows = np.repeat(np.arange(target.shape[0], dtype=np.int64), n_relevant)
        keys = key_rows * n_items + target.indices.astype(np.int64)  # (nnz,) sorted
        return cls(target, n_relevant, keys, users, cand, n_catalogue)


def _list_metrics(lists: np.ndarray, truth: _Truth, split: Split, ks: list[int], beyond: bool,
                  space: ItemSpace | None) -> dict[str, Any]:
    """Every metric of the evaluated users' ``lists`` ``(N, L)`` (-1 padding)."""
    n_items = split.n_items
    users = truth.users  # (N,)
    k_max = ks[-1]
    length = lists.shape[1]
    listed = lists >= 0  # (N, L) a real recommendation, not padding
    query = users[:, None] * n_items + np.maximum(lists, 0)  # (N, L)
    pos = np.minimum(np.searchsorted(truth.keys, query), truth.keys.shape[0] - 1)  # (N, L)
    hits = (truth.keys[pos] == query) & listed  # (N, L)
    if length < k_max:  # fewer items than K can be listed: pad with misses
        pad = np.zeros((hits.shape[0], k_max - length), dtype=bool)
        hits, listed = np.concatenate([hits, pad], axis=1), np.concatenate([listed, pad], axis=1)
        lists = np.concatenate([lists, np.full(pad.shape, -1, dtype=np.int64)], axis=1)
    n_rel = truth.n_relevant[users]  # (N,)
    n_users = int(users.shape[0])

    out: dict[str, Any] = {}
    per_user: dict[str, np.ndarray] = {}
    for k in ks:
        h = hits[:, :k]  # (N, k)
        per_user[f"recall@{k}"] = recall_at_k(h, n_rel)
        per_user[f"ndcg@{k}"] = ndcg_at_k(h, n_rel)
        out[f"recall@{k}"] = float(per_user[f"recall@{k}"].sum()) / n_users
        out[f"ndcg@{k}"] = float(per_user[f"ndcg@{k}"].sum()) / n_users
        out[f"precision@{k}"] = float(precision_at_k(h).sum()) / n_users
        out[f"hit@{k}"] = float(hit_rate_at_k(h).sum()) / n_users
        out[f"mrr@{k}"] = float(mrr_at_k(h).sum()) / n_users
        rec = np.zeros(n_items, dtype=bool)  # item in some top-K
        rec[lists[:, :k][listed[:, :k]]] = True
        rec = rec if truth.cand is None else rec[truth.cand]  # (n_catalogue,)
        out[f"coverage@{k}"] = item_coverage(np.flatnonzero(rec), truth.n_catalogue)
    if beyond:
        out.update(_beyond(lists, listed, hits, per_user, truth, split, ks, space))
    out["n_users"] = n_users
    # the old key order: every metric of a K together, names in their usual order
    order = {name: i for i, name in enumerate(("recall", "ndcg", "precision", "hit", "mrr", "coverage"))}
    return dict(sorted(out.items(), key=lambda kv: _key_order(kv[0], order)))


def _key_order(key: str, order: dict[str, int]) -> tuple:
    name, _, k = key.partition("@")
    return (0 if k else 1, int(k) if k.isdigit() else 0, order.get(name, len(order)), name)


def _mean(values: np.ndarray) -> float | None:
    """Mean over the defined (non-NaN) values; ``None`` when there are none."""
    ok = ~np.isnan(values)
    return float(values[ok].sum()) / int(ok.sum()) if ok.any() else None


def _beyond(lists: np.ndarray, listed: np.ndarray, hits: np.ndarray, per_user: dict[str, np.ndarray],
            truth: _Truth, split: Split, ks: list[int], space: ItemSpace | None) -> dict[str, float]:
    """The beyond-accuracy keys of :func:`ranking_metrics`."""
    n_items = split.n_items
    counts = item_counts(split.train.items, n_items)  # (n_items,)
    head = head_items(counts, HEAD_SHARE)  # (n_items,)
    users = truth.users
    out: dict[str, float | None] = {}
    for k in ks:
        top = lists[:, :k]  # (N, k)
        out[f"novelty@{k}"] = _mean(novelty(top, counts))
        out[f"popularity@{k}"] = _mean(average_popularity(top, counts))
        out[f"tail@{k}"] = _mean(tail_share(top, head))
        e = exposure(top, n_items)
        e = e if truth.cand is None else e[truth.cand]  # (n_catalogue,)
        if e.sum() > 0:
            out[f"gini@{k}"] = gini_index(e)
            out[f"entropy@{k}"] = shannon_entropy(e)
    if space is not None:
        sums = dict.fromkeys(ks, 0.0)
        counted = dict.fromkeys(ks, 0)
        for c in range(0, lists.shape[0], SIMILARITY_CHUNK):
            sim = space.similarity(lists[c : c + SIMILARITY_CHUNK])  # (B, K, K)
            for k in ks:
                ild = intra_list_diversity(sim[:, :k, :k], listed[c : c + SIMILARITY_CHUNK, :k])
                ok = ~np.isnan(ild)
                sums[k] += float(ild[ok].sum())
                counted[k] += int(ok.sum())
        for k in ks:
            out[f"diversity@{k}"] = sums[k] / counted[k] if counted[k] else None
    # accuracy per user group (by training interactions)
    activity = np.bincount(split.train.users, minlength=split.n_users)[users]  # (N,)
    groups = activity_groups(activity, len(USER_GROUPS))  # (N,)
    for g, name in enumerate(USER_GROUPS):
        member = groups == g
        for k in ks:
            for metric in ("recall", "ndcg"):
                values = per_user[f"{metric}@{k}"][member]
                out[f"{metric}_users_{name}@{k}"] = float(values.sum()) / len(values) if len(values) else None
    # accuracy per item group (head / tail test items)
    t = truth.target
    in_head = head[t.indices]  # (nnz,)
    rows = np.repeat(np.arange(t.shape[0]), np.diff(t.indptr))
    for name, member_items, member_nnz in (("head", head, in_head), ("tail", ~head, ~in_head)):
        n_rel = np.bincount(rows[member_nnz], minlength=t.shape[0])[users]  # (N,) |T_u ∩ G|
        keep = n_rel > 0
        h = hits & member_items[np.maximum(lists, 0)] & listed  # (N, K) hits on the group's items
        for k in ks:
            for metric, fn in (("recall", recall_at_k), ("ndcg", ndcg_at_k)):
                value = float(fn(h[keep, :k], n_rel[keep]).sum()) / int(keep.sum()) if keep.any() else None
                out[f"{metric}_{name}@{k}"] = value
    return {key: v for key, v in out.items() if v is not None}


def evaluate_rating(
    predict_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    split: Split,
    part: str = "test",
) -> dict[str, float]:
    """RMSE and MAE of predicted ratings on ``split``'s ``part``.

    ``predict_fn(users (N,), items (N,)) -> (N,)`` predicted ratings for the part's
    ``N`` (user, item) interactions, in their stored order; compared with their
    ratings. ``rmse = sqrt(sum_n (p_n - r_n)^2 / N)``, ``mae = sum_n |p_n - r_n| / N``.

    Args:
        predict_fn: maps internal user and item indices (int64 arrays) to predictions.
        split: the data; the part must carry ratings.
        part: ``"test"``, ``"valid"``, ``"train"`` or a ``+`` join such as ``"train+valid"``.
    """
    names = part.split("+")
    bad = [p for p in names if p not in ("train", "valid", "test")]
    if bad:
        raise ValueError(f"part must name train, valid or test (joined by '+'), got '{part}'")
    inter = getattr(split, names[0]) if len(names) == 1 else Interactions.concat(
        [getattr(split, p) for p in names]
    )
    if inter.ratings is None:
        raise ValueError(f"part '{part}' has no ratings: rating metrics need explicit ratings")
    if len(inter) == 0:
        raise ValueError(f"part '{part}' has no interactions to evaluate")
    users = np.asarray(inter.users, dtype=np.int64)  # (N,)
    items = np.asarray(inter.items, dtype=np.int64)  # (N,)
    with torch.no_grad():
        pred = predict_fn(users, items)
    if isinstance(pred, torch.Tensor):
        pred = pred.detach().cpu().numpy()
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != users.shape:
        raise ValueError(
            f"predict_fn returned shape {pred.shape} for {users.shape[0]} pairs; expected ({users.shape[0]},)"
        )
    target = np.asarray(inter.ratings, dtype=np.float64)  # (N,)
    return {"rmse": rmse(pred, target), "mae": mae(pred, target)}


# --------------------------------------------------------------------------- helpers


def _check_ks(ks: Iterable[int]) -> list[int]:
    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    out = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"every K in ks must be an integer, got {k!r}")
        if k <= 0:
            raise ValueError(f"every K in ks must be at least 1, got {k}")
        out.append(int(k))
    if not out:
        raise ValueError("ks is empty: give at least one list length K")
    return sorted(set(out))


def _check_candidates(candidates: np.ndarray | torch.Tensor, n_items: int) -> np.ndarray:
    if isinstance(candidates, torch.Tensor):
        candidates = candidates.detach().cpu().numpy()
    cand = np.asarray(candidates)
    if cand.ndim != 1:
        raise ValueError(f"candidates must be a 1-D array of item indices, got shape {cand.shape}")
    if cand.size == 0:
        raise ValueError("candidates is empty: give at least one item to rank")
    if not np.issubdtype(cand.dtype, np.integer):
        raise ValueError(f"candidates must hold integer item indices, got dtype {cand.dtype}")
    if cand.min() < 0 or cand.max() >= n_items:
        raise ValueError(f"candidates must lie in 0..{n_items - 1}, got {cand.min()}..{cand.max()}")
    return np.unique(cand.astype(np.int64))


def _keep_columns(m: sp.csr_matrix, allowed: np.ndarray) -> sp.csr_matrix:
    """``m`` with the entries in columns where ``allowed`` is false removed."""
    keep = allowed[m.indices]  # (nnz,)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    counts = np.bincount(rows[keep], minlength=m.shape[0])
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(m.indptr.dtype)
    return sp.csr_matrix((m.data[keep], m.indices[keep], indptr), shape=m.shape)
