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

import numpy as np
import scipy.sparse as sp
import torch

from semrec.data.dataset import Interactions
from semrec.data.split import Split
from semrec.evaluate.metrics import (
    hit_rate_at_k,
    item_coverage,
    mae,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    rmse,
)
from semrec.models.base import Scorer
from semrec.models.topk import topk

#: Evaluated part -> the part whose items are the user's known history.
#: What a user's history is when each part is predicted (see :meth:`Split.history`).
HISTORY_OF = {"test": "train+valid+support", "valid": "train"}

#: Bytes per score entry: scores are budgeted as a float32 ``(B, n_items)`` matrix.
_SCORE_BYTES = 4


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
) -> dict[str, float]:
    """Full-ranking metrics of ``scorer`` on ``split``'s ``part``.

    For every user with at least one relevant item (users without are skipped):
    ``scores = scorer.score(users, history_rows)``, history items excluded, the top
    ``max(ks)`` taken; then per K the per-user recall, NDCG, precision, hit rate and
    reciprocal rank (see :mod:`semrec.evaluate.metrics` for the formulas and
    denominators), each averaged over the evaluated users:
    ``metric@K = sum_u metric_u / n_users``.

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

    Returns:
        ``recall@K``, ``ndcg@K``, ``precision@K``, ``hit@K``, ``mrr@K`` and ``coverage@K``
        for every K, and ``n_users`` (int, users evaluated). ``coverage@K`` is the share
        of the catalogue (all items, or the candidates) in at least one evaluated top-K.

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

    target = split.matrix(part)  # (n_users, n_items) CSR, relevant items
    # (n_users, n_items) CSR, excluded items; their times for models that read histories in order
    history = split.history(part, "timestamps" if getattr(scorer, "ordered", False) else "ones")
    cand: np.ndarray | None = None
    n_catalogue = n_items
    if candidates is not None:
        cand = _check_candidates(candidates, n_items)  # (C,) sorted unique
        allowed = np.zeros(n_items, dtype=bool)
        allowed[cand] = True
        target = _keep_columns(target, allowed)
        n_catalogue = int(cand.shape[0])
    target.sort_indices()
    n_relevant_all = np.diff(target.indptr)  # (n_users,)
    chosen = users
    users = np.flatnonzero(n_relevant_all)  # (N,) increasing
    if chosen is not None:
        users = np.intersect1d(users, np.asarray(chosen, dtype=np.int64))
    if users.size == 0:
        where = " among the candidates" if candidates is not None else ""
        where += " among the chosen users" if chosen is not None else ""
        raise ValueError(f"no user has an item in part '{part}'{where}: nothing to evaluate")

    # Relevant (user, item) pairs as sorted keys user * n_items + item: a top-K entry
    # is a hit when binary search finds its key.
    key_rows = np.repeat(np.arange(target.shape[0], dtype=np.int64), n_relevant_all)
    keys = key_rows * n_items + target.indices.astype(np.int64)  # (nnz,) sorted

    k_max = ks[-1]
    length = min(k_max, n_catalogue)  # items a list can hold
    names = ("recall", "ndcg", "precision", "hit", "mrr")
    sums = {f"{name}@{k}": 0.0 for k in ks for name in names}
    recommended = {k: np.zeros(n_items, dtype=bool) for k in ks}  # item in some top-K
    cand_t = None if cand is None else torch.as_tensor(cand)

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
        values_t, idx_t = topk(scores.detach(), length, seen=seen, candidates=cand_t)  # (B, L)
        del scores  # free this batch's scores before the next batch is scored
        # The (B, L) bookkeeping is done in NumPy: small arrays, no thread-pool overhead.
        values = values_t.cpu().numpy()  # (B, L)
        idx = idx_t.cpu().numpy()  # (B, L)
        if np.isnan(values).any():  # NaN sorts above every number, so any NaN shows here
            raise ValueError("scorer.score returned NaN scores")
        listed = values > -np.inf  # (B, L) a real recommendation, not padding

        query = u[:, None] * n_items + idx  # (B, L)
        pos = np.minimum(np.searchsorted(keys, query), keys.shape[0] - 1)  # (B, L)
        hits = (keys[pos] == query) & listed  # (B, L)
        if length < k_max:  # fewer items than K can be listed: pad with misses
            hits = np.concatenate([hits, np.zeros((hits.shape[0], k_max - length), bool)], axis=1)
        n_rel = n_relevant_all[u]  # (B,)

        for k in ks:
            h = hits[:, :k]  # (B, k)
            sums[f"recall@{k}"] += float(recall_at_k(h, n_rel).sum())
            sums[f"ndcg@{k}"] += float(ndcg_at_k(h, n_rel).sum())
            sums[f"precision@{k}"] += float(precision_at_k(h).sum())
            sums[f"hit@{k}"] += float(hit_rate_at_k(h).sum())
            sums[f"mrr@{k}"] += float(mrr_at_k(h).sum())
            kk = min(k, length)
            recommended[k][idx[:, :kk][listed[:, :kk]]] = True

    n_users = int(users.shape[0])
    out: dict[str, float] = {}
    for k in ks:
        for name in names:
            out[f"{name}@{k}"] = sums[f"{name}@{k}"] / n_users
        rec = recommended[k] if cand is None else recommended[k][cand]  # (n_catalogue,)
        out[f"coverage@{k}"] = item_coverage(np.flatnonzero(rec), n_catalogue)
    out["n_users"] = n_users
    return out


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
