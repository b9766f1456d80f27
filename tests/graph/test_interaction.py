import numpy as np
import scipy.sparse as sp
import torch

from semrec.graph.interaction import InteractionGraph, normalize_bipartite


def test_normalisation_by_hand():
    # users u0: {i0, i1}, u1: {i1}; item degrees 1, 2, 0 (i2 isolated)
    r = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    n = normalize_bipartite(r).toarray()
    expected = np.array([
        [1 / np.sqrt(2 * 1), 1 / np.sqrt(2 * 2), 0],
        [0, 1 / np.sqrt(1 * 2), 0],
    ])
    np.testing.assert_allclose(n, expected, rtol=1e-6)


def test_bipartite_block_equals_square_symmetric_normalisation():
    rng = np.random.default_rng(0)
    r = (rng.random((5, 7)) < 0.4).astype(np.float32)
    a = np.block([[np.zeros((5, 5)), r], [r.T, np.zeros((7, 7))]])
    d = a.sum(1)
    dinv = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
    square = dinv[:, None] * a * dinv[None, :]
    np.testing.assert_allclose(normalize_bipartite(sp.csr_matrix(r)).toarray(), square[:5, 5:], rtol=1e-5)


def test_torch_matrices_propagate_like_scipy():
    rng = np.random.default_rng(1)
    r = sp.csr_matrix((rng.random((4, 6)) < 0.5).astype(np.float32))
    g = InteractionGraph(r)
    v = torch.randn(6, 3)
    u = torch.randn(4, 3)
    np.testing.assert_allclose((g.norm_ui @ v).numpy(), g.norm @ v.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose((g.norm_iu @ u).numpy(), g.norm.T @ u.numpy(), rtol=1e-5, atol=1e-6)
