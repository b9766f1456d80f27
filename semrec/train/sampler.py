"""Mini-batches for the training loop: BPR triples or rated pairs."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from semrec.models.base import Batch


class NegativeSampler:
    """Uniform negatives among the items with training interactions that are not
    among the user's training positives.

    Items without any training interaction (held-out cold items, items known only from
    the item table) are never drawn: a cold-items split's test items would otherwise be
    pushed down as negatives before they are ever evaluated. Membership is checked
    against the sorted keys ``u · n_items + i`` of the training matrix; collisions are
    redrawn (a few rounds, then the rare leftovers are kept — with realistic densities
    under 1% that is a handful per epoch).
    """

    def __init__(self, train: sp.csr_matrix, rng: np.random.Generator) -> None:
        coo = train.tocoo()
        self.n_items = train.shape[1]
        self.keys = np.sort(coo.row.astype(np.int64) * self.n_items + coo.col)
        self.items = np.flatnonzero(np.asarray(train.getnnz(axis=0)) > 0)  # (W,) drawable items
        self.rng = rng

    def _is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = users * self.n_items + items
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == q

    def sample(self, users: np.ndarray, n_neg: int) -> np.ndarray:
        """``(len(users), n_neg)`` int64 item indices."""
        u = np.repeat(users, n_neg)
        neg = self.items[self.rng.integers(0, len(self.items), size=u.shape[0])]
        for _ in range(10):
            bad = self._is_positive(u, neg)
            if not bad.any():
                break
            neg[bad] = self.items[self.rng.integers(0, len(self.items), size=int(bad.sum()))]
        return neg.reshape(len(users), n_neg)


def ranking_batches(
    train: sp.csr_matrix,
    batch_size: int,
    n_negatives: int,
    rng: np.random.Generator,
    sampler: NegativeSampler,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[Batch]:
    """One epoch: every training interaction once as ``(user, positive, negatives)``.

    ``shard = (rank, world_size)`` keeps every ``world_size``-th interaction of the
    shuffled order, for data-parallel training. Every rank draws the whole epoch (order
    and negatives) from the same seed before keeping its share, so the ranks' batches of
    ``batch_size`` together are exactly one single-process batch of
    ``world_size * batch_size``.
    """
    coo = train.tocoo()
    order = rng.permutation(coo.nnz)
    negs = sampler.sample(coo.row.astype(np.int64)[order], n_negatives)[shard[0] :: shard[1]]  # (N, n_neg)
    order = order[shard[0] :: shard[1]]
    users = coo.row.astype(np.int64)[order]
    items = coo.col.astype(np.int64)[order]
    for start in range(0, len(users), batch_size):
        sl = slice(start, start + batch_size)
        yield Batch(
            torch.from_numpy(users[sl]),
            torch.from_numpy(items[sl]),
            torch.from_numpy(negs[sl]),
        )


def user_batches(
    users: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[Batch]:
    """One epoch of whole users (``batch_size`` per batch) in random order; the model
    reads their training sequences itself. ``shard`` as in :func:`ranking_batches`."""
    order = np.asarray(users, dtype=np.int64)[rng.permutation(len(users))][shard[0] :: shard[1]]
    for start in range(0, len(order), batch_size):
        yield Batch(torch.from_numpy(order[start : start + batch_size]))


def rating_batches(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[Batch]:
    """One epoch of ``(user, item, rating)`` triples in random order."""
    order = rng.permutation(len(users))[shard[0] :: shard[1]]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield Batch(
            torch.from_numpy(users[idx].astype(np.int64)),
            torch.from_numpy(items[idx].astype(np.int64)),
            ratings=torch.from_numpy(ratings[idx].astype(np.float32)),
        )


def n_batches(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size
