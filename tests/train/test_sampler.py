import numpy as np
import scipy.sparse as sp

from semrec.train.sampler import NegativeSampler, ranking_batches, rating_batches


def test_negatives_avoid_positives():
    rng = np.random.default_rng(0)
    r = sp.random(50, 40, density=0.3, format="csr", random_state=0)
    r.data[:] = 1
    s = NegativeSampler(r, rng)
    users = np.repeat(np.arange(50), 20)
    neg = s.sample(users, 3)
    assert neg.shape == (1000, 3)
    dense = r.toarray()
    assert dense[np.repeat(users, 3), neg.ravel()].sum() == 0


def test_epoch_covers_every_interaction_once_and_shards_partition():
    rng = np.random.default_rng(0)
    r = sp.random(30, 20, density=0.2, format="csr", random_state=1)
    r.data[:] = 1
    s = NegativeSampler(r, rng)
    pairs = set()
    for b in ranking_batches(r, 16, 1, np.random.default_rng(5), s):
        pairs.update(zip(b.users.tolist(), b.pos_items.tolist()))
        assert b.neg_items.shape == (len(b.users), 1)
    coo = r.tocoo()
    assert pairs == set(zip(coo.row.tolist(), coo.col.tolist()))
    shards = [
        [p for b in ranking_batches(r, 16, 1, np.random.default_rng(5), s, shard=(k, 2))
         for p in zip(b.users.tolist(), b.pos_items.tolist())]
        for k in (0, 1)
    ]
    assert set(shards[0]).isdisjoint(shards[1]) and set(shards[0]) | set(shards[1]) == pairs


def test_rating_batches_carry_ratings():
    u, i, r = np.array([0, 1, 2]), np.array([1, 2, 0]), np.array([5.0, 3.0, 1.0])
    got = sorted(
        (int(a), int(b), float(c))
        for batch in rating_batches(u, i, r, 2, np.random.default_rng(0))
        for a, b, c in zip(batch.users, batch.pos_items, batch.ratings)
    )
    assert got == [(0, 1, 5.0), (1, 2, 3.0), (2, 0, 1.0)]
