"""Each user's items in time order, and the item-transition graph they imply.

A history arrives as a CSR row whose values are the interactions' times (``Split.history(
part, "timestamps")``; ones where the data has no order): :class:`Sequences` sorts each
row by (time, item) once, and cuts fixed-width windows from it for the user towers.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: The padding index of a window (no item).
PAD = -1


class Sequences:
    """Ordered item lists in CSR layout: user ``u``'s items, oldest first, are
    ``items[indptr[u]:indptr[u + 1]]``.

    Args:
        order: ``(n_users, n_items)`` CSR whose values order each row's items (times;
            ties and constant rows fall back to item index).
    """

    def __init__(self, order: sp.csr_matrix) -> None:
        m = sp.csr_matrix(order)
        m.sum_duplicates()
        rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        perm = np.lexsort((m.indices, m.data, rows))  # by row, then time, then item
        self.indptr = m.indptr.astype(np.int64)
        self.items = m.indices[perm].astype(np.int64)
        self.n_items = m.shape[1]

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def lengths(self, users: np.ndarray | None = None) -> np.ndarray:
        n = np.diff(self.indptr)
        return n if users is None else n[users]

    def window(self, users: np.ndarray, length: int | None = None,
               rng: np.random.Generator | None = None) -> np.ndarray:
        """``(B, L)`` int64 item indices, left-padded with :data:`PAD`: each user's newest
        ``length`` items in order (``None``: all of them, ``L`` the longest history).

        With ``rng``, a user with more than ``length`` items keeps a random subset of them
        instead (in order): a sample of an unordered history.
        """
        users = np.asarray(users, dtype=np.int64)
        n = self.lengths(users)  # (B,)
        width = int(n.max(initial=0)) if length is None else int(length)
        take = np.minimum(n, width)  # (B,)
        out = np.full((len(users), max(width, 1) if length is None else width), PAD, dtype=np.int64)
        if not len(users) or not take.any():
            return out[:, :width] if width else out[:, :0]
        start = self.indptr[users] + n - take  # (B,) newest `take` items
        rows = np.repeat(np.arange(len(users)), take)
        offset = np.arange(int(take.sum())) - np.repeat(np.cumsum(take) - take, take)  # 0..take-1
        src = np.repeat(start, take) + offset
        if rng is not None:
            long = np.flatnonzero(n > width)
            for b in long:  # few users per batch; a sorted random subset of their items
                pick = np.sort(rng.choice(n[b], size=width, replace=False))
                first = np.searchsorted(rows, b)
                src[first : first + width] = self.indptr[users[b]] + pick
        cols = out.shape[1] - np.repeat(take, take) + offset
        out[rows, cols] = self.items[src]
        return out

    def transitions(self) -> sp.csr_matrix:
        """``(n_items, n_items)`` counts of ``i → j``: item ``j`` right after ``i`` in some
        user's sequence (symmetric part not added; see :class:`~semrec.graph.interaction.
        InteractionGraph` for how it is normalised)."""
        same_user = np.diff(np.repeat(np.arange(self.n_users), self.lengths())) == 0
        src = self.items[:-1][same_user]
        dst = self.items[1:][same_user]
        keep = src != dst
        m = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (src[keep], dst[keep])),
                          shape=(self.n_items, self.n_items))
        m.sum_duplicates()
        return m
