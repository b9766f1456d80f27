import numpy as np
import scipy.sparse as sp

from semrec.train.sampler import NegativeSampler, ranking_batches, rating_batches, user_batches


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


def test_items_without_training_interactions_are_never_negatives():
    # items 3 and 4 are held out (a cold-items split): no training interaction at all
    train = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [1, 0, 1, 0, 0]], dtype=np.float32))
    sampler = NegativeSampler(train, np.random.default_rng(0))
    neg = sampler.sample(np.repeat(np.arange(3), 200), 3)
    assert set(np.unique(neg)) <= {0, 1, 2}
    assert not np.isin(neg, [3, 4]).any()


def test_user_batches_cover_each_user_once_per_epoch_and_shard():
    users = np.array([0, 2, 3, 5, 8])
    seen = np.concatenate([b.users.numpy() for b in user_batches(users, 2, np.random.default_rng(0))])
    assert sorted(seen) == users.tolist()
    parts = [np.concatenate([b.users.numpy() for b in user_batches(users, 2, np.random.default_rng(1), (r, 2))])
             for r in (0, 1)]
    assert sorted(np.concatenate(parts)) == users.tolist()
