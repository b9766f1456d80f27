"""Evaluation metrics as pure functions.

Ranking metrics take the hit matrix of a batch of top-K lists:

* ``hits`` ``(B, K)`` bool: ``hits[b, j]`` is true when the item at rank ``j``
  (0-based, best first) of user ``b``'s list is one of the user's relevant (test)
  items. ``K`` is the number of columns; a list shorter than ``K`` is padded with
  ``False`` (a missing item is never a hit, but still counts in ``K``).
* ``n_relevant`` ``(B,)`` int: the user's number of relevant items, ``|T_b|``.

Each returns one value per user, a NumPy ``(B,)`` float64 array (tensors are
accepted as input and read on the CPU), so that a caller averages over
users (the mean over users is the reported metric). Nothing is rounded.

Rating metrics compare predictions with targets; coverage counts distinct items.
"""
from __future__ import annotations

import math

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray


def _numpy(x: ArrayLike) -> np.ndarray:
    """A NumPy view of ``x`` (tensors are detached and moved to the CPU first)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# --------------------------------------------------------------------------- input checks


def _hits(hits: ArrayLike) -> np.ndarray:
    h = _numpy(hits)
    if h.ndim != 2:
        raise ValueError(f"hits must be a (B, K) matrix, got shape {h.shape}")
    if h.shape[1] < 1:
        raise ValueError("hits has no columns: K must be at least 1")
    if h.dtype != np.bool_:
        if not np.issubdtype(h.dtype, np.integer):
            raise ValueError(f"hits must be boolean (or 0/1 integers), got dtype {h.dtype}")
        if ((h != 0) & (h != 1)).any():
            raise ValueError("hits must hold only 0 and 1")
        h = h != 0
    return h  # (B, K) bool


def _relevant(n_relevant: ArrayLike, hits: np.ndarray) -> np.ndarray:
    n = _numpy(n_relevant)
    if n.shape != (hits.shape[0],):
        raise ValueError(
            f"n_relevant must have shape (B,) = ({hits.shape[0]},) to match hits, got {n.shape}"
        )
    if not np.issubdtype(n.dtype, np.integer):
        if not np.issubdtype(n.dtype, np.floating) or not np.array_equal(n, np.round(n)):
            raise ValueError("n_relevant must hold whole numbers (counts of relevant items)")
    n = n.astype(np.float64)  # (B,)
    if (n < 1).any():
        raise ValueError(
            "n_relevant must be at least 1 for every user: the metric is undefined for a user "
            "without relevant items (leave such users out)"
        )
    if (hits.sum(axis=1) > n).any():
        raise ValueError("a user has more hits than relevant items: hits and n_relevant disagree")
    return n


def _discounts(k: int) -> np.ndarray:
    """``1 / log2(j + 2)`` for ranks ``j = 0 .. k-1``, float64 ``(k,)``."""
    return 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)


# --------------------------------------------------------------------------- ranking


def recall_at_k(hits: ArrayLike, n_relevant: ArrayLike) -> np.ndarray:
    """Recall@K per user, as in the LightGCN paper and code.

    ``recall_b = (sum_{j<K} hits[b, j]) / |T_b|``

    Denominator: ``|T_b| = n_relevant[b]``, all of the user's relevant items (not
    ``min(|T_b|, K)``), so a user with more relevant items than ``K`` cannot reach 1.

    Args:
        hits: ``(B, K)`` bool hit matrix (see the module docstring).
        n_relevant: ``(B,)`` number of relevant items per user, each ``>= 1``.

    Returns:
        ``(B,)`` float64 in ``[0, 1]``.
    """
    h = _hits(hits)
    n = _relevant(n_relevant, h)
    return h.sum(axis=1) / n  # (B,)


def precision_at_k(hits: ArrayLike) -> np.ndarray:
    """Precision@K per user.

    ``precision_b = (sum_{j<K} hits[b, j]) / K``

    Denominator: ``K``, the number of columns of ``hits``, also for lists padded
    because fewer than ``K`` items could be recommended.

    Returns:
        ``(B,)`` float64 in ``[0, 1]``.
    """
    h = _hits(hits)
    return h.sum(axis=1) / np.float64(h.shape[1])  # (B,)


def ndcg_at_k(hits: ArrayLike, n_relevant: ArrayLike) -> np.ndarray:
    """NDCG@K per user with binary gains.

    ``DCG_b  = sum_{j<K} hits[b, j] / log2(j + 2)``      (rank ``j`` 0-based)

    ``IDCG_b = sum_{j < min(|T_b|, K)} 1 / log2(j + 2)``  (all ideal slots hit)

    ``ndcg_b = DCG_b / IDCG_b``

    Denominator: ``IDCG_b``, the DCG of an ideal list that puts
    ``min(|T_b|, K)`` relevant items first; it is ``> 0`` because ``|T_b| >= 1``.

    Args:
        hits: ``(B, K)`` bool hit matrix.
        n_relevant: ``(B,)`` number of relevant items per user, each ``>= 1``.

    Returns:
        ``(B,)`` float64 in ``[0, 1]``.
    """
    h = _hits(hits)
    n = _relevant(n_relevant, h)
    k = h.shape[1]
    disc = _discounts(k)  # (K,)
    dcg = h @ disc  # (B,)
    ideal_prefix = np.cumsum(disc)  # (K,): IDCG with 1..K ideal hits
    n_ideal = np.minimum(n, k).astype(np.int64)  # (B,) = min(|T_b|, K), >= 1
    idcg = ideal_prefix[n_ideal - 1]  # (B,)
    return dcg / idcg


def hit_rate_at_k(hits: ArrayLike) -> np.ndarray:
    """Hit rate@K per user (HR@K).

    ``hit_b = 1 if sum_{j<K} hits[b, j] > 0 else 0``

    Denominator: none per user; the mean over users divides by the number of users.

    Returns:
        ``(B,)`` float64 of 0 and 1.
    """
    h = _hits(hits)
    return h.any(axis=1).astype(np.float64)  # (B,)


def mrr_at_k(hits: ArrayLike) -> np.ndarray:
    """Reciprocal rank of the first hit within K, per user (MRR@K once averaged).

    ``rr_b = 1 / (j*_b + 1)`` where ``j*_b = min{j < K : hits[b, j]}`` (0-based),
    and ``rr_b = 0`` when the top K holds no hit.

    Denominator: ``j*_b + 1``, the 1-based rank of the first hit.

    Returns:
        ``(B,)`` float64 in ``[0, 1]``.
    """
    h = _hits(hits)
    first = np.argmax(h, axis=1)  # (B,) first True (0 where none)
    return np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)  # (B,)


# --------------------------------------------------------------------------- rating


def _pair(pred: ArrayLike, target: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = _numpy(pred).astype(np.float64).reshape(-1)
    t = _numpy(target).astype(np.float64).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"pred has {p.size} values but target has {t.size}")
    if p.size == 0:
        raise ValueError("pred and target are empty: nothing to compare")
    if not np.isfinite(p).all():
        raise ValueError("pred holds NaN or infinite values")
    if not np.isfinite(t).all():
        raise ValueError("target holds NaN or infinite values")
    return p, t


def rmse(pred: ArrayLike, target: ArrayLike) -> float:
    """Root mean squared error over ``N`` pairs.

    ``rmse = sqrt( sum_n (pred_n - target_n)^2 / N )``

    Denominator: ``N``, the number of (prediction, target) pairs. Computed in float64.
    """
    p, t = _pair(pred, target)
    return math.sqrt(float(np.sum((p - t) ** 2)) / p.size)


def mae(pred: ArrayLike, target: ArrayLike) -> float:
    """Mean absolute error over ``N`` pairs.

    ``mae = sum_n |pred_n - target_n| / N``

    Denominator: ``N``, the number of (prediction, target) pairs. Computed in float64.
    """
    p, t = _pair(pred, target)
    return float(np.sum(np.abs(p - t))) / p.size


# --------------------------------------------------------------------------- coverage


def item_coverage(topk_indices: ArrayLike, n_items: int) -> float:
    """Catalogue coverage of recommendation lists.

    ``coverage = |{ topk_indices[b, j] }| / n_items``

    the number of distinct items recommended to anyone, over the catalogue size.
    ``topk_indices`` may have any shape (a ``(B, K)`` batch of lists, or a flat array
    of items); negative entries are padding (no item) and are ignored.

    Denominator: ``n_items``, the number of items that could have been recommended.
    """
    if n_items < 1:
        raise ValueError(f"n_items must be at least 1, got {n_items}")
    idx = _numpy(topk_indices).reshape(-1)
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"topk_indices must hold integer item indices, got dtype {idx.dtype}")
    idx = idx[idx >= 0]
    if idx.size and int(idx.max()) >= n_items:
        raise ValueError(f"topk_indices holds item {int(idx.max())}, outside 0..{n_items - 1}")
    return np.unique(idx).size / n_items


# --------------------------------------------------------------------------- beyond accuracy
#
# Lists are ``items`` ``(B, K)`` int: internal item indices, best first, ``-1`` where a
# list is shorter than ``K`` (padding is never an item). ``n_b`` below is the number of
# items in list ``b`` (its entries that are not padding). Popularity is counted on the
# training interactions: ``c_i`` interactions of item ``i``, ``N = sum_i c_i``.
#
# Where we follow whom: intra-list diversity and novelty as Microsoft Recommenders
# (``recommenders.evaluation.python_evaluation``: Ziegler et al. 2005's intra-list
# similarity, Castells et al. 2011's item-choice novelty); average popularity, Gini
# index and tail share as RecBole (``recbole.evaluator.metrics``); entropy is Shannon's,
# without RecBole's extra division by the number of distinct items. Per-list values are
# averaged per user, then over users, as RecBole does; Microsoft Recommenders averages
# novelty over all recommended (user, item) pairs, which is the same when every list
# holds K items.


def _lists(items: ArrayLike) -> np.ndarray:
    it = _numpy(items)
    if it.ndim != 2:
        raise ValueError(f"items must be a (B, K) matrix of item indices, got shape {it.shape}")
    if not np.issubdtype(it.dtype, np.integer):
        raise ValueError(f"items must hold integer item indices, got dtype {it.dtype}")
    return it.astype(np.int64)  # (B, K)


def _counts(counts: ArrayLike, items: np.ndarray) -> np.ndarray:
    c = _numpy(counts)
    if c.ndim != 1:
        raise ValueError(f"counts must be a (n_items,) vector, got shape {c.shape}")
    if not np.issubdtype(c.dtype, np.integer) and not np.array_equal(c, np.round(c)):
        raise ValueError("counts must hold whole numbers (training interactions per item)")
    c = c.astype(np.float64)
    if (c < 0).any():
        raise ValueError("counts must not be negative")
    if items.size and int(items.max(initial=-1)) >= len(c):
        raise ValueError(f"items holds item {int(items.max())}, outside the {len(c)} counted items")
    return c  # (n_items,)


def _per_list_mean(values: np.ndarray, listed: np.ndarray) -> np.ndarray:
    """``sum_j values[b, j] / n_b`` over listed entries; NaN where ``n_b = 0``."""
    n = listed.sum(axis=1)  # (B,)
    total = np.where(listed, values, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)  # (B,)


def intra_list_diversity(similarity: ArrayLike, listed: ArrayLike) -> np.ndarray:
    """Intra-list diversity per list (Ziegler et al. 2005, as Microsoft Recommenders'
    ``user_diversity``): one minus the mean similarity of the list's pairs.

    ``ILD_b = 1 − (2 / (n_b (n_b − 1))) · sum_{j < l, both listed} sim[b, j, l]``

    Denominator: ``n_b (n_b − 1) / 2``, the number of pairs of listed items. With cosine
    similarities the value lies in ``[0, 2]`` (1: on average orthogonal).

    Args:
        similarity: ``(B, K, K)`` pairwise similarity of each list's entries
            (:meth:`semrec.models.rerank.ItemSpace.similarity`); only ``j < l`` is read.
        listed: ``(B, K)`` bool, which entries are items (not padding).

    Returns:
        ``(B,)`` float64; NaN for a list of fewer than 2 items (leave it out of the mean).
    """
    sim = _numpy(similarity).astype(np.float64)
    ok = _numpy(listed).astype(bool)
    if sim.ndim != 3 or sim.shape[1] != sim.shape[2] or ok.shape != sim.shape[:2]:
        raise ValueError(f"similarity must be (B, K, K) and listed (B, K); got {sim.shape} and {ok.shape}")
    k = sim.shape[1]
    upper = np.triu(np.ones((k, k), dtype=bool), 1)  # (K, K) pairs j < l
    pair = ok[:, :, None] & ok[:, None, :] & upper  # (B, K, K)
    n_pairs = pair.sum(axis=(1, 2))  # (B,)
    total = np.where(pair, sim, 0.0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pairs > 0, 1.0 - total / np.maximum(n_pairs, 1), np.nan)


def novelty(items: ArrayLike, counts: ArrayLike) -> np.ndarray:
    """Mean self-information of a list's items (Castells et al. 2011's item-choice
    novelty, as Microsoft Recommenders' ``novelty``).

    ``nov_b = (1 / n_b) · sum_{i in list b} −log2( max(c_i, 1) / N )``

    Denominators: ``N = sum_i c_i`` (all training interactions) inside the logarithm, and
    ``n_b`` for the mean. An item never trained on counts as interacted with once (the
    rarest observed level) instead of infinitely novel.

    Returns:
        ``(B,)`` float64 bits, NaN for an empty list.
    """
    it = _lists(items)
    c = _counts(counts, it)
    total = max(float(c.sum()), 1.0)
    listed = it >= 0
    info = -np.log2(np.maximum(c[np.where(listed, it, 0)], 1.0) / total)  # (B, K)
    return _per_list_mean(info, listed)


def average_popularity(items: ArrayLike, counts: ArrayLike) -> np.ndarray:
    """Average recommended popularity (RecBole's ``AveragePopularity``).

    ``arp_b = (1 / n_b) · sum_{i in list b} c_i``

    Denominator: ``n_b``, the items in the list.

    Returns:
        ``(B,)`` float64 training interactions, NaN for an empty list.
    """
    it = _lists(items)
    c = _counts(counts, it)
    listed = it >= 0
    return _per_list_mean(c[np.where(listed, it, 0)], listed)


def tail_share(items: ArrayLike, head: ArrayLike) -> np.ndarray:
    """Share of a list's items from the long tail (RecBole's ``TailPercentage``, with the
    tail defined by :func:`head_items`).

    ``tail_b = (1 / n_b) · |{i in list b : not head[i]}|``

    Denominator: ``n_b``, the items in the list.

    Returns:
        ``(B,)`` float64 in ``[0, 1]``, NaN for an empty list.
    """
    it = _lists(items)
    h = _numpy(head).astype(bool).reshape(-1)
    if it.size and int(it.max(initial=-1)) >= len(h):
        raise ValueError(f"items holds item {int(it.max())}, outside the {len(h)} items of head")
    listed = it >= 0
    return _per_list_mean((~h[np.where(listed, it, 0)]).astype(np.float64), listed)


def head_items(counts: ArrayLike, share: float = 0.2) -> np.ndarray:
    """The short head: the ``ceil(share · n_items)`` items with the most training
    interactions (ties: the lower item index first). Every other item is the long tail.

    The head is a fixed share of the catalogue (the top 20% by default, the Pareto
    split of Abdollahpouri et al. 2019) rather than RecBole's default of calling the
    rarest 10% the tail, so head and tail together cover every item.

    Returns:
        ``(n_items,)`` bool, true for head items.
    """
    c = _numpy(counts).reshape(-1)
    if not 0 < share < 1:
        raise ValueError(f"share must lie strictly between 0 and 1, got {share}")
    n_head = math.ceil(share * len(c))
    order = np.argsort(-c, kind="stable")  # most interactions first, ties by index
    head = np.zeros(len(c), dtype=bool)
    head[order[:n_head]] = True
    return head


def exposure(items: ArrayLike, n_items: int) -> np.ndarray:
    """How often each item appears across the lists: ``e_i = |{(b, j) : items[b, j] = i}|``.

    Returns:
        ``(n_items,)`` int64.
    """
    it = _lists(items)
    if n_items < 1:
        raise ValueError(f"n_items must be at least 1, got {n_items}")
    flat = it[it >= 0]
    if flat.size and int(flat.max()) >= n_items:
        raise ValueError(f"items holds item {int(flat.max())}, outside 0..{n_items - 1}")
    return np.bincount(flat, minlength=n_items).astype(np.int64)


def gini_index(exposure: ArrayLike) -> float:
    """Gini index of exposure over the catalogue (RecBole's ``GiniIndex``): 0 when every
    item is recommended equally often, ``1 − 1/n`` when one item takes every slot.

    ``gini = sum_{r=1..n} (2r − n − 1) · e_(r) / (n · sum_i e_i)``

    with ``e_(1) <= ... <= e_(n)`` the exposures sorted ascending, items never
    recommended included (``e = 0``).

    Denominators: ``n``, the number of items (the catalogue or the candidates), and
    ``sum_i e_i``, the number of recommendations.
    """
    e = np.sort(_numpy(exposure).astype(np.float64).reshape(-1))  # (n,) ascending
    n = len(e)
    if n < 1:
        raise ValueError("exposure is empty: give one count per item")
    total = float(e.sum())
    if total <= 0:
        raise ValueError("exposure sums to 0: nothing was recommended")
    r = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * r - n - 1) * e).sum() / (n * total))


def shannon_entropy(exposure: ArrayLike) -> float:
    """Shannon entropy of exposure in nats: how evenly recommendations spread.

    ``H = − sum_{i : e_i > 0} q_i · ln q_i``,  ``q_i = e_i / sum_j e_j``

    Denominator: ``sum_j e_j``, the number of recommendations. Ranges from 0 (one item
    everywhere) to ``ln n`` (all ``n`` items equally often). RecBole's ``ShannonEntropy``
    further divides by the number of distinct recommended items; we do not.
    """
    e = _numpy(exposure).astype(np.float64).reshape(-1)
    total = float(e.sum())
    if total <= 0:
        raise ValueError("exposure sums to 0: nothing was recommended")
    q = e[e > 0] / total
    return float(-(q * np.log(q)).sum())


def activity_groups(activity: ArrayLike, n_groups: int = 3) -> np.ndarray:
    """Equal-size groups of users by activity: sort by ``activity`` (ties: the earlier
    position first) and cut into ``n_groups`` runs of ``floor`` or ``ceil(N / n_groups)``;
    group 0 is the least active.

    ``group_u = floor(rank_u · n_groups / N)``  (``rank_u`` 0-based)

    Groups by rank rather than by thresholds stay non-empty when many users tie (a 5-core
    dataset has thousands of users with the same count), at the price that users with
    equal activity may fall on both sides of a boundary.

    Returns:
        ``(N,)`` int64 group per user, in ``0 .. n_groups − 1``.
    """
    a = _numpy(activity).reshape(-1)
    if n_groups < 1:
        raise ValueError(f"n_groups must be at least 1, got {n_groups}")
    order = np.argsort(a, kind="stable")
    rank = np.empty(len(a), dtype=np.int64)
    rank[order] = np.arange(len(a))
    return (rank * n_groups) // max(len(a), 1)
