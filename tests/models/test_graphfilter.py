import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.polynomial import chebyshev
from toy_graphs import two_communities

from semrec.errors import ConfigError
from semrec.models import spectral
from semrec.models.graphfilter import GraphFilter, GraphFilterConfig, scaled


def toy_matrix() -> np.ndarray:
    rng = np.random.default_rng(3)
    r = (rng.random((9, 11)) < 0.4).astype(np.float64)
    r[:, 6] = 0  # an item nobody saw in training
    r[4] = 0  # a user with no history
    return r


def dense_filter(p_tilde: np.ndarray, degree: np.ndarray, history: np.ndarray, cfg) -> np.ndarray:
    """The filter of config ``cfg`` by its spectral definition, dense, in float64: ``P̃ = U diag(s) Uᵀ`` by
    ``eigh``; the top-``k`` eigenvalues get ``F(s) + α M(s)`` (``exact_top``) or
    ``p(s) + α M(s)``, the others ``p(s)``, ``p`` the Chebyshev interpolant of ``F``
    (numpy's ``chebinterpolate``) on ``[0, s_k]`` (``[0, 1]`` without ``exact_top``)."""
    filter, flatness, sharpen, alpha, k, order, exact_top, degree_exponent = (
        cfg.filter, cfg.flatness, cfg.sharpen, cfg.alpha, cfg.k, cfg.order, cfg.exact_top, cfg.degree_exponent)
    s, u = np.linalg.eigh(p_tilde)
    order_ = np.argsort(-s)
    s, u = s[order_], u[:, order_]
    f, m = spectral.response(filter, flatness, sharpen)
    span = s[k - 1] if k and exact_top else 1.0
    if order:
        c = chebyshev.chebinterpolate(lambda t: f((t + 1) * span / 2), order)
        p = chebyshev.chebval(2 * s / span - 1, c)
    else:
        p = np.zeros_like(s)
    values = p.copy()
    values[:k] = (f(s[:k]) if exact_top else p[:k]) + alpha * m(s[:k])
    h = u @ np.diag(values) @ u.T
    d = np.maximum(degree, 1.0)
    return ((history * d**-degree_exponent) @ h) * d**degree_exponent


def dense_operator(r: np.ndarray, a: float, b: float) -> np.ndarray:
    """``D_u^{-a} R D_i^{-b} / σ₁`` with zero degrees left at zero, dense."""
    inv = lambda d, e: np.array([x**-e if x > 0 else 0.0 for x in d])  # noqa: E731
    m = np.diag(inv(r.sum(1), a)) @ r @ np.diag(inv(r.sum(0), b))
    return m / np.linalg.norm(m, 2)


SETTINGS = [
    dict(filter="linear", alpha=0.3, k=3, order=1, degree_exponent=0.0),  # GF-CF's form
    dict(filter="plateau", flatness=1.5, alpha=0.2, k=3, order=1),  # exact on top-k, linear below
    dict(filter="plateau", flatness=2.0, alpha=0.1, k=2, order=3),
    dict(filter="plateau", flatness=1.5, alpha=0.2, k=4, order=8, exact_top=False),  # ChebyCF's own
    dict(filter="plateau", alpha=0.0, k=0, order=5),  # a Chebyshev polynomial of P̃ alone
    dict(filter="bspm", sharpen=2.5, alpha=0.2, k=3, order=2),
    dict(filter="bspm", sharpen=1.5, alpha=0.2, k=4, order=5, exact_top=False),  # BSPM's own
    dict(filter="linear", alpha=0.5, k=5, order=0),  # top-k only
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
@pytest.mark.parametrize("exponents", [(0.5, 0.5), (0.35, 0.4)])
def test_each_filter_matches_its_dense_spectral_definition(settings, exponents):
    r = toy_matrix()
    a, b = exponents
    model = GraphFilter(*r.shape, user_exponent=a, item_exponent=b, **settings).fit(sp.csr_matrix(r))
    got = model.score(np.arange(r.shape[0]), sp.csr_matrix(r))
    assert got.shape == r.shape and got.dtype == torch.float32
    m = dense_operator(r, a, b)
    want = dense_filter(m.T @ m, r.sum(0), r, model.config)
    np.testing.assert_allclose(got.numpy(), want, atol=2e-6)


def test_responses_by_hand():
    s = np.array([0.0, 0.25, 0.5, 1.0])
    # ChebyCF's plateau: 0 at the top frequency, 1/2 at s = 1/2, 1 at the lowest
    np.testing.assert_allclose(spectral.plateau(s, 2.0), [0.0, 0.5 - 0.5 * 0.25, 0.5, 1.0])
    np.testing.assert_allclose(spectral.plateau(s, 1.0), s)  # φ = 1 is the linear filter
    # one RK4 step of dr/dt = -r s from r = 1: 1 - h + h²/2 - h³/6 + h⁴/24 with h = T s
    np.testing.assert_allclose(spectral.rk4_sharpening(np.array([0.5]), 2.0), [1 - 1 + 1 / 2 - 1 / 6 + 1 / 24])
    assert abs(spectral.rk4_sharpening(np.array([1.0]), 0.1)[0] - np.exp(-0.1)) < 1e-7  # ≈ exp for small steps
    f, m = spectral.response("bspm", sharpen=2.0)
    np.testing.assert_allclose(f(s), s * spectral.rk4_sharpening(s, 2.0))
    np.testing.assert_allclose(m(s), spectral.rk4_sharpening(s, 2.0))
    with pytest.raises(ValueError, match="filter"):
        spectral.response("cubic")


def test_chebyshev_fit_is_exact_on_polynomials_up_to_its_degree():
    cubic = lambda s: 1 - 2 * s + 3 * s**3  # noqa: E731
    c = spectral.chebyshev_fit(cubic, 3, span=0.4)
    s = np.linspace(0.0, 0.4, 9)
    np.testing.assert_allclose(spectral.chebyshev_eval(c, s, 0.4), cubic(s), atol=1e-12)


@pytest.mark.parametrize("a,b", [(0.5, 0.5), (0.3, 0.4), (0.5, 0.6)])
def test_the_normalised_operator_has_top_singular_value_one(a, b):
    r = sp.random(60, 40, 0.1, random_state=2, format="csr", data_rvs=lambda n: np.ones(n)).astype(np.float32)
    m = scaled(r, GraphFilterConfig(user_exponent=a, item_exponent=b))
    assert abs(np.linalg.norm(m.toarray(), 2) - 1.0) < 1e-5
    np.testing.assert_allclose(m.toarray(), dense_operator(r.toarray().astype(np.float64), a, b), atol=1e-6)


def test_randomized_eigensolver_finds_the_top_subspace_and_values():
    rng = np.random.default_rng(0)
    # a planted rank-8 signal with a clear gap, plus sparse noise
    u = np.linalg.qr(rng.standard_normal((400, 8)))[0]
    v = np.linalg.qr(rng.standard_normal((300, 8)))[0]
    m = u @ np.diag(np.linspace(10, 5, 8)) @ v.T + sp.random(400, 300, 0.02, random_state=1).toarray()
    m = sp.csr_matrix(m.astype(np.float32))
    fast, fast_s = spectral.top_singular_pairs(m, 8, iters=6, oversample=8, exact=False)
    exact, exact_s = spectral.top_singular_pairs(m, 8, exact=True)
    fast, exact = fast.double(), exact.double()
    torch.testing.assert_close(fast.T @ fast, torch.eye(8, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(fast @ fast.T, exact @ exact.T, atol=1e-4, rtol=0)  # same projection
    torch.testing.assert_close(fast_s, exact_s, rtol=1e-4, atol=0)
    np.testing.assert_allclose(exact_s.numpy(), np.linalg.svd(m.toarray().astype(np.float64))[1][:8] ** 2,
                               rtol=1e-9)
    with pytest.raises(ValueError, match="k"):
        spectral.top_singular_pairs(m, 300)
    assert abs(spectral.top_singular_value(m) - np.sqrt(exact_s[0].item())) < 1e-3


def test_the_eigensolver_gives_the_same_answer_a_row_block_at_a_time(monkeypatch):
    """Its tall products are taken in blocks of ``ROW_CHUNK`` rows (memory): blocks of 7
    rows, a last one short, change nothing."""
    m = sp.random(90, 70, 0.1, random_state=4, format="csr", dtype=np.float32)
    whole = spectral.top_singular_pairs(m, 6, iters=3, oversample=4, exact=False)
    monkeypatch.setattr(spectral, "ROW_CHUNK", 7)
    blocks = spectral.top_singular_pairs(m, 6, iters=3, oversample=4, exact=False)
    torch.testing.assert_close(blocks[0], whole[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(blocks[1], whole[1], rtol=1e-6, atol=0)


def test_scores_come_from_the_history_rows_so_new_users_and_events_count_at_once():
    r = toy_matrix()
    model = GraphFilter(*r.shape, k=3, user_exponent=0.5, item_exponent=0.5).fit(sp.csr_matrix(r))
    new = np.zeros((2, r.shape[1]))
    new[0, [0, 2]] = 1
    new[1, 6] = 1  # only an item unseen in training: nothing to propagate
    got = model.score(np.array([100, 101]), sp.csr_matrix(new))
    m = dense_operator(r, 0.5, 0.5)
    want = dense_filter(m.T @ m, r.sum(0), new, model.config)
    np.testing.assert_allclose(got.numpy(), want, atol=2e-6)
    others = torch.as_tensor(np.arange(r.shape[1]) != 6)
    assert got[1, others].abs().max() < 1e-12
    # a user's next event changes their scores at the next call, no refit
    more = new[:1].copy()
    more[0, 5] = 1
    assert not torch.allclose(model.score(np.array([0]), sp.csr_matrix(more)), got[:1])


@pytest.mark.parametrize("filter", ["linear", "plateau", "bspm"])
def test_ranks_in_community_items_first_without_training(filter):
    train = two_communities()
    model = GraphFilter(12, 12, filter=filter, k=4, alpha=0.1, sharpen=1.0).fit(train)
    scores = model.score(np.arange(12), train)
    for u in range(12):
        c = u // 6
        inside = [i for i in range(c * 6, c * 6 + 6) if train[u, i] == 0]
        outside = [i for i in range(12) if i // 6 != c]
        assert scores[u, inside].min() > scores[u, outside].max()


def test_with_filter_equals_a_fresh_fit_and_refuses_operator_settings():
    r = sp.csr_matrix(toy_matrix())
    base = GraphFilter(*r.shape, k=3).fit(r)
    changed = base.with_filter(filter="bspm", alpha=0.4, order=2, degree_exponent=0.1)
    fresh = GraphFilter(*r.shape, k=3, filter="bspm", alpha=0.4, order=2, degree_exponent=0.1).fit(r)
    users = np.arange(r.shape[0])
    torch.testing.assert_close(changed.score(users, r), fresh.score(users, r))
    torch.testing.assert_close(base.score(users, r), GraphFilter(*r.shape, k=3).fit(r).score(users, r))
    with pytest.raises(ValueError, match="user_exponent"):
        base.with_filter(user_exponent=0.3)


def test_state_dict_round_trip():
    r = sp.csr_matrix(toy_matrix())
    a = GraphFilter(*r.shape, k=3, order=2, user_exponent=0.4).fit(r)
    state = a.state_dict()
    assert all(isinstance(t, torch.Tensor) for t in state.values())
    b = GraphFilter(*r.shape, k=3, order=2, user_exponent=0.4)
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
        GraphFilter(*r.shape).load_state_dict({"vectors": torch.zeros(11, 3)})
    state = model.state_dict()
    with pytest.raises(ValueError, match="11 items"):
        GraphFilter(9, 12).load_state_dict(state)


def test_config_defaults_and_validation():
    cfg = GraphFilterConfig()
    assert (cfg.filter, cfg.k, cfg.order, cfg.exact_top) == ("bspm", 1024, 1, True)
    assert GraphFilter(3, 4, **vars(cfg)).config == cfg
    for bad, field in ((dict(alpha=-0.1), "alpha"), (dict(k=-1), "k"), (dict(filter="cubic"), "filter"),
                       (dict(flatness=0.0), "flatness"), (dict(degree_exponent=-1.0), "degree_exponent"),
                       (dict(k=0, order=0), "both 0")):
        with pytest.raises(ConfigError, match=field):
            GraphFilterConfig(**bad)
