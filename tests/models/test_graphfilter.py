import numpy as np
import pytest
import scipy.sparse as sp
import torch

from semrec.errors import ConfigError
from semrec.models.graphfilter import GraphFilter, GraphFilterConfig, top_right_singular_vectors


def two_communities(size: int = 6, per_user: int = 4) -> sp.csr_matrix:
    """Users ``c*size + j`` like items ``c*size + (j..j+per_user-1) mod size``, c in {0, 1}."""
    rows = [c * size + j for c in range(2) for j in range(size) for _ in range(per_user)]
    cols = [c * size + (j + t) % size for c in range(2) for j in range(size) for t in range(per_user)]
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(2 * size, 2 * size))


def toy_matrix() -> np.ndarray:
    rng = np.random.default_rng(3)
    r = (rng.random((9, 11)) < 0.4).astype(np.float64)
    r[:, 6] = 0  # an item nobody saw in training
    r[4] = 0  # a user with no history
    return r


def naive_gfcf(r: np.ndarray, history: np.ndarray, alpha: float, k: int) -> np.ndarray:
    """The paper's formula, dense, in float64."""
    du, di = r.sum(1), r.sum(0)
    inv = lambda d: np.array([x ** -0.5 if x > 0 else 0.0 for x in d])  # noqa: E731
    r_tilde = np.diag(inv(du)) @ r @ np.diag(inv(di))
    p_tilde = r_tilde.T @ r_tilde
    _, s, vt = np.linalg.svd(r_tilde)
    assert s[k - 1] - s[k] > 1e-6  # a well-defined top-k subspace
    vk = vt[:k].T
    d_minus = np.diag(inv(di))
    d_plus = np.diag(np.sqrt(di))
    return history @ p_tilde + alpha * history @ d_minus @ vk @ vk.T @ d_plus


@pytest.mark.parametrize("alpha,k", [(0.3, 3), (1.0, 5), (0.0, 2)])
def test_scores_match_a_naive_dense_computation(alpha, k):
    r = toy_matrix()
    model = GraphFilter(*r.shape, alpha=alpha, k=k).fit(sp.csr_matrix(r))
    users = np.arange(r.shape[0])
    got = model.score(users, sp.csr_matrix(r))
    assert got.shape == r.shape and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), naive_gfcf(r, r, alpha, k), atol=1e-5)


def test_scores_come_from_the_history_rows_so_new_users_work():
    r = toy_matrix()
    model = GraphFilter(*r.shape, alpha=0.3, k=3).fit(sp.csr_matrix(r))
    new = np.zeros((2, r.shape[1]))
    new[0, [0, 2]] = 1
    new[1, 6] = 1  # only an item unseen in training: no signal, all zeros
    got = model.score(np.array([100, 101]), sp.csr_matrix(new))
    np.testing.assert_allclose(got.numpy(), naive_gfcf(r, new, 0.3, 3), atol=1e-5)
    assert torch.count_nonzero(got[1]) == 0


def test_randomized_svd_finds_the_top_subspace():
    rng = np.random.default_rng(0)
    # a planted rank-8 signal with a clear gap, plus sparse noise
    u = np.linalg.qr(rng.standard_normal((400, 8)))[0]
    v = np.linalg.qr(rng.standard_normal((300, 8)))[0]
    m = u @ np.diag(np.linspace(10, 5, 8)) @ v.T + sp.random(400, 300, 0.02, random_state=1).toarray()
    m = sp.csr_matrix(m.astype(np.float32))
    fast = top_right_singular_vectors(m, 8, iters=6, oversample=8, exact=False).double()
    exact = top_right_singular_vectors(m, 8, exact=True).double()
    torch.testing.assert_close(fast.T @ fast, torch.eye(8, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(fast @ fast.T, exact @ exact.T, atol=1e-4, rtol=0)  # same projection
    with pytest.raises(ValueError, match="k"):
        top_right_singular_vectors(m, 300)


def test_ranks_in_community_items_first_without_training():
    train = two_communities()
    model = GraphFilter(12, 12, k=4).fit(train)
    scores = model.score(np.arange(12), train)
    for u in range(12):
        c = u // 6
        inside = [i for i in range(c * 6, c * 6 + 6) if train[u, i] == 0]
        outside = [i for i in range(12) if i // 6 != c]
        assert scores[u, inside].min() > scores[u, outside].max()


def test_state_dict_round_trip():
    r = sp.csr_matrix(toy_matrix())
    a = GraphFilter(*r.shape, k=3).fit(r)
    state = a.state_dict()
    assert all(isinstance(t, torch.Tensor) for t in state.values())
    b = GraphFilter(*r.shape, k=3)
    b.load_state_dict(state)
    users = np.arange(r.shape[0])
    torch.testing.assert_close(b.score(users, r), a.score(users, r))


def test_errors_a_caller_can_act_on():
    r = sp.csr_matrix(toy_matrix())
    with pytest.raises(RuntimeError, match="not fitted"):
        GraphFilter(*r.shape).score(np.arange(2), r[:2])
    model = GraphFilter(*r.shape, k=3).fit(r)
    with pytest.raises(ValueError, match="history has shape"):
        model.score(np.arange(3), r[:2])
    with pytest.raises(ValueError, match="train has shape"):
        GraphFilter(5, 5).fit(r)
    with pytest.raises(ValueError, match="missing"):
        GraphFilter(*r.shape).load_state_dict({"vk": torch.zeros(11, 3)})


def test_config_defaults_and_validation():
    cfg = GraphFilterConfig()
    assert (cfg.alpha, cfg.k) == (0.3, 256)
    assert GraphFilter(3, 4, **vars(cfg)).k == 256
    with pytest.raises(ConfigError, match="alpha"):
        GraphFilterConfig(alpha=-0.1)
    with pytest.raises(ConfigError, match="k"):
        GraphFilterConfig(k=0)
