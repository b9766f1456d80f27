"""Precomputed top items per user: the exact index's answers, computed once at load
and kept exact as items arrive, so a recommendation is a row lookup instead of a scan.

On a Gowalla-sized catalogue (41k items, d=64) the exact scan costs about 1.1 ms of a
core per request, which caps one process at a few hundred requests a second. Scoring
every user against every item once costs a few seconds at load (blocked matrix products
and ``torch.topk``), and after that a request reads ``depth`` precomputed entries.

What keeps the rows exact:

* a row holds the user's best ``depth`` *unseen* items under the same inner product the
  scan uses, best first, padded with ``-inf`` / ``-1`` when fewer items are unseen;
* a new item can only enter a row by beating its last entry, so :meth:`TopCache.with_items`
  scores the new vectors against every row's query and merges where they win;
* a user whose query or history changes (a posted event) stops reading their row: the
  live state keeps that user's own one-row cache, built at fold-in time and given new
  items by the same :meth:`TopCache.with_items`;
* requests that restrict candidates, or ask for more than ``depth`` items, scan.

Rows are never written in place: an update builds new arrays and the caller swaps the
whole cache, so a reader never sees a half-merged row.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

#: Users scored per block while building (a block holds ``block x n_items`` scores).
BUILD_BLOCK = 1024


class TopCache:
    """The best ``depth`` unseen items of each of ``n`` users, by ``<query, item>``.

    Build with :meth:`build`. Rows are indexed like the queries (the run's users).

    Attributes:
        scores: ``(n, depth)`` float32, best first; ``-inf`` pads a short row.
        items: ``(n, depth)`` int32 internal item indices; ``-1`` pads a short row.
        queries: ``(n, d)`` float32, the vectors the rows were ranked by.
    """

    def __init__(self, scores: np.ndarray, items: np.ndarray, queries: np.ndarray) -> None:
        for a in (scores, items, queries):
            a.flags.writeable = False
        self.scores, self.items, self.queries = scores, items, queries

    @property
    def depth(self) -> int:
        return int(self.scores.shape[1])

    @classmethod
    def build(cls, queries: np.ndarray, vectors: np.ndarray, seen: sp.csr_matrix, depth: int) -> TopCache:
        """Rank ``vectors`` ``(n_items, d)`` for every row of ``queries`` ``(n, d)``,
        leaving out each row's items in ``seen`` ``(n, n_items)``."""
        queries = np.array(queries, dtype=np.float32, order="C")  # our own copy: it is frozen below
        vectors_t = np.asarray(vectors, dtype=np.float32).T  # (d, n_items)
        n, n_items = len(queries), vectors_t.shape[1]
        depth = max(1, min(int(depth), n_items))
        scores = np.empty((n, depth), dtype=np.float32)
        items = np.empty((n, depth), dtype=np.int32)  # half the memory of int64; catalogues stay below 2**31
        for start in range(0, n, BUILD_BLOCK):
            stop = min(start + BUILD_BLOCK, n)
            block = queries[start:stop] @ vectors_t  # (B, n_items)
            rows = seen[start:stop]
            block[np.repeat(np.arange(stop - start), np.diff(rows.indptr)), rows.indices] = -np.inf
            # torch.topk rather than np.argpartition + sort: 3x faster here and threaded
            values, idx = torch.topk(torch.from_numpy(block), depth, dim=1)  # sorted, best first
            scores[start:stop] = values.numpy()
            items[start:stop] = idx.numpy()
        items[~np.isfinite(scores)] = -1
        return cls(scores, items, queries)

    def row(self, u: int, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The best ``k`` of row ``u`` as ``(scores, items)``, or ``None`` when ``k`` is
        deeper than the cache (the caller scans)."""
        if k > self.depth:
            return None
        s, i = self.scores[u, :k], self.items[u, :k]
        keep = i >= 0
        return s[keep], i[keep]

    def with_items(self, vectors: np.ndarray, first: int) -> TopCache:
        """This cache with new items ``vectors`` ``(m, d)`` at internal indices
        ``first .. first + m - 1`` merged into every row they enter."""
        scores, items = merge_rows(self.scores, self.items, self.queries, vectors, first)
        return TopCache(scores, items, self.queries)


def merge_rows(
    scores: np.ndarray, items: np.ndarray, queries: np.ndarray, vectors: np.ndarray, first: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge new items into ranked rows.

    Args:
        scores: ``(r, depth)`` ranked scores, best first, ``-inf`` padded.
        items: ``(r, depth)`` their item indices, ``-1`` padded.
        queries: ``(r, d)`` the vectors the rows rank by.
        vectors: ``(m, d)`` the new items.
        first: the internal index of the first new item.

    Returns:
        New ``(scores, items)`` arrays; rows no new item enters are copied unchanged.
    """
    depth = scores.shape[1]
    new = np.ascontiguousarray(queries, dtype=np.float32) @ np.asarray(vectors, dtype=np.float32).T  # (r, m)
    enters = (new > scores[:, -1:]).any(axis=1)  # (r,) beats the row's last entry
    scores, items = scores.copy(), items.copy()
    if enters.any():
        rows = np.flatnonzero(enters)
        cand_s = np.concatenate([scores[rows], new[rows]], axis=1)  # (r', depth + m)
        new_ids = np.broadcast_to(np.arange(first, first + new.shape[1], dtype=items.dtype), new[rows].shape)
        cand_i = np.concatenate([items[rows], new_ids], axis=1)
        # stable: an old entry keeps its place ahead of a new item with an equal score
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :depth]
        scores[rows] = np.take_along_axis(cand_s, order, axis=1)
        items[rows] = np.take_along_axis(cand_i, order, axis=1)
        items[~np.isfinite(scores)] = -1
    return scores, items
