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
