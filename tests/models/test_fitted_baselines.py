import numpy as np
import scipy.sparse as sp
import torch

from semrec.models.itemknn import ItemKNN
from semrec.models.popularity import Popularity

# users 0-2 like items {0, 1, 2}; users 3-4 like {3, 4}; item 0 is the most popular
R = sp.csr_matrix(np.array([
    [1, 1, 0, 0, 0],
    [1, 0, 1, 0, 0],
    [1, 1, 1, 0, 0],
    [1, 0, 0, 1, 1],
    [0, 0, 0, 1, 0],
], dtype=np.float32))


def test_popularity_counts_interactions():
    m = Popularity(5, 5).fit(R)
    s = m.score(np.array([0, 4]), R[[0, 4]])
    assert s.shape == (2, 5)
    assert s[0].tolist() == [4, 2, 2, 2, 1]


def test_itemknn_similarity_by_hand():
    m = ItemKNN(5, 5, k=4).fit(R)
    sim = m.sim.toarray()
    # cos(i3, i4) = |{u3}| / (sqrt(2) * sqrt(1)); cos(i1, i2) = |{u2}| / (sqrt(2) sqrt(2))
    np.testing.assert_allclose(sim[3, 4], 1 / np.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(sim[1, 2], 0.5, rtol=1e-6)
    assert np.all(np.diag(sim) == 0)
    np.testing.assert_allclose(sim, sim.T, rtol=1e-6)


def test_itemknn_scores_sum_neighbour_similarities_and_keep_k():
    m = ItemKNN(5, 5, k=1).fit(R)
    assert (m.sim.getnnz(axis=1) <= 1).all()
    full = ItemKNN(5, 5, k=4).fit(R)
    hist = R[[4]]  # user 4 has item 3
    s = full.score(np.array([4]), hist)
    np.testing.assert_allclose(s.numpy()[0], full.sim.toarray()[3], rtol=1e-6)
    assert int(torch.argmax(s[0, [0, 1, 2, 4]])) == 3  # item 4 is 3's closest neighbour


def test_itemknn_state_round_trip():
    m = ItemKNN(5, 5, k=2).fit(R)
    n = ItemKNN(5, 5, k=2)
    n.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(n.sim.toarray(), m.sim.toarray())
