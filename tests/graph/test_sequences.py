import numpy as np
import scipy.sparse as sp

from semrec.graph.interaction import InteractionGraph
from semrec.graph.sequences import PAD, Sequences


def _order() -> sp.csr_matrix:
    # user 0: items 4 (t=3), 1 (t=1), 2 (t=2); user 1: nothing; user 2: 0 (t=5), 3 (t=4)
    return sp.csr_matrix((np.array([3.0, 1, 2, 5, 4]), (np.array([0, 0, 0, 2, 2]), np.array([4, 1, 2, 0, 3]))),
                         shape=(3, 5))


def test_sequences_sort_each_user_by_time_and_cut_left_padded_windows():
    s = Sequences(_order())
    assert s.items.tolist() == [1, 2, 4, 3, 0] and s.lengths().tolist() == [3, 0, 2]
    assert s.window(np.array([0, 1, 2]), 2).tolist() == [[2, 4], [PAD, PAD], [3, 0]]
    assert s.window(np.array([2, 0])).tolist() == [[PAD, 3, 0], [1, 2, 4]]  # all items, widest row
    sample = s.window(np.array([0]), 2, rng=np.random.default_rng(0))[0].tolist()
    assert len(set(sample)) == 2 and set(sample) <= {1, 2, 4}
    assert sample == sorted(sample, key=[1, 2, 4].index)  # a subset keeps its order


def test_ties_and_unordered_rows_fall_back_to_item_order():
    m = sp.csr_matrix(np.array([[0, 1, 1, 0, 1]], dtype=np.float32))
    assert Sequences(m).items.tolist() == [1, 2, 4]


def test_transition_graph_counts_consecutive_items_of_one_user_only():
    t = Sequences(_order()).transitions().toarray()
    want = np.zeros((5, 5))
    want[1, 2] = want[2, 4] = want[3, 0] = 1  # 1→2→4 and 3→0; nothing from 4 to 3 across users
    np.testing.assert_array_equal(t, want)
    g = InteractionGraph(sp.csr_matrix(_order().astype(bool), dtype=np.float32), order=_order())
    dense = g.transitions_t[0].to_dense().numpy()
    np.testing.assert_allclose(dense[2], [0, 0.5, 0, 0, 0.5])  # 2 is between 1 and 4: both ways, normalised
    assert g.sequences.items.tolist() == [1, 2, 4, 3, 0]


def test_item_item_graph_keeps_only_positive_similarities():
    r = sp.csr_matrix(np.ones((2, 3), dtype=np.float32))
    knn = sp.csr_matrix(np.array([[0, 0.6, -0.9], [0.5, 0, 0.5], [-0.2, 0.2, 0]], dtype=np.float32))
    s = InteractionGraph(r, item_item=knn).item_item_t.to_dense().numpy()
    # a dissimilar (negative) neighbour is no edge at all, not a similar one (abs)
    np.testing.assert_allclose(s, [[0, 1, 0], [0.5, 0, 0.5], [0, 1, 0]])
