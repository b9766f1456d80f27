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


def test_propagation_gradients_match_autograd_of_the_dense_product():
    rng = np.random.default_rng(2)
    r = sp.csr_matrix((rng.random((5, 7)) < 0.4).astype(np.float32))
    g = InteractionGraph(r, item_item=sp.csr_matrix(rng.random((7, 7)).astype(np.float32)))
    dense = torch.as_tensor(g.norm.toarray())
    s_dense = g.item_item_t.to_dense()
    v = torch.randn(7, 3, requires_grad=True)
    u = torch.randn(5, 3, requires_grad=True)
    w1, w2, w3 = torch.randn(5, 3), torch.randn(7, 3), torch.randn(7, 3)
    ((g.users_from_items(v) * w1).sum() + (g.items_from_users(u) * w2).sum()
     + (g.items_from_items(v) * w3).sum()).backward()
    v2 = v.detach().clone().requires_grad_()
    u2 = u.detach().clone().requires_grad_()
    ((dense @ v2 * w1).sum() + (dense.T @ u2 * w2).sum() + (s_dense @ v2 * w3).sum()).backward()
    torch.testing.assert_close(v.grad, v2.grad)
    torch.testing.assert_close(u.grad, u2.grad)
    torch.testing.assert_close(s_dense.sum(1), torch.ones(7))  # rows of S sum to 1
