import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from toy_graphs import in_community_first, train_steps, two_communities

from semrec.errors import ConfigError
from semrec.graph.interaction import InteractionGraph
from semrec.models.base import Batch
from semrec.models.lightgcn import LightGCN, LightGCNConfig, propagate, propagate_layers
from semrec.models.losses import bpr_loss

# --- a toy graph of two clear communities, and a minimal training loop -------------


# --- normalisation and propagation ---------------------------------------------------

def test_normalised_values_by_hand_on_two_users_three_items():
    #       i0 i1 i2      d_u = [2, 2], d_i = [1, 2, 1]
    r = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    g = InteractionGraph(r)
    s = 1 / math.sqrt(2)
    want = torch.tensor([[s, 0.5, 0.0], [0.0, 0.5, s]])
    torch.testing.assert_close(g.norm_ui.to_dense(), want)
    torch.testing.assert_close(g.norm_iu.to_dense(), want.T)
    # one layer by hand, d = 1: U¹ = R̂ V⁰, V¹ = R̂ᵀ U⁰
    u0 = torch.tensor([[1.0], [2.0]])
    v0 = torch.tensor([[1.0], [0.0], [-1.0]])
    us, vs = propagate_layers(g, u0, v0, 1)
    torch.testing.assert_close(us[1], torch.tensor([[s], [-s]]))
    torch.testing.assert_close(vs[1], torch.tensor([[s], [1.5], [2 * s]]))
    u, v = propagate(g, u0, v0, 1)
    torch.testing.assert_close(u, (u0 + us[1]) / 2)
    torch.testing.assert_close(v, (v0 + vs[1]) / 2)


def naive_lightgcn(r: np.ndarray, e_u: np.ndarray, e_i: np.ndarray, layers: int):
    """The paper's form: square adjacency A = [[0, R], [Rᵀ, 0]], Â = D^-½ A D^-½, mean of Âˡ E."""
    n_u, n_i = r.shape
    a = np.zeros((n_u + n_i, n_u + n_i))
    a[:n_u, n_u:] = r
    a[n_u:, :n_u] = r.T
    deg = a.sum(1)
    d = np.array([x ** -0.5 if x > 0 else 0.0 for x in deg])
    a_hat = d[:, None] * a * d[None, :]
    e = np.concatenate([e_u, e_i]).astype(np.float64)
    total = e.copy()
    for _ in range(layers):
        e = a_hat @ e
        total += e
    total /= layers + 1
    return total[:n_u], total[n_u:]


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_propagation_matches_the_square_adjacency_of_the_paper(layers):
    rng = np.random.default_rng(0)
    r = (rng.random((7, 9)) < 0.35).astype(np.float32)
    r[:, 4] = 0  # an item nobody saw: degree 0 must stay 0, not NaN
    r[2] = 0  # a user with no history
    e_u = rng.standard_normal((7, 5)).astype(np.float32)
    e_i = rng.standard_normal((9, 5)).astype(np.float32)
    u, v = propagate(InteractionGraph(sp.csr_matrix(r)), torch.from_numpy(e_u), torch.from_numpy(e_i), layers)
    want_u, want_i = naive_lightgcn(r, e_u, e_i, layers)
    np.testing.assert_allclose(u.numpy(), want_u, atol=1e-5)
    np.testing.assert_allclose(v.numpy(), want_i, atol=1e-5)


def test_propagation_rejects_embeddings_of_the_wrong_size():
    g = InteractionGraph(two_communities())
    with pytest.raises(ValueError, match="do not match"):
        propagate(g, torch.zeros(5, 2), torch.zeros(12, 2), 2)


# --- the model -----------------------------------------------------------------------

def test_loss_is_bpr_on_final_embeddings_plus_l2_on_ego_embeddings():
    torch.manual_seed(0)
    g = InteractionGraph(two_communities())
    model = LightGCN(g.n_users, g.n_items, dim=4, layers=2, reg=0.1)
    batch = Batch(torch.tensor([0, 7, 7]), torch.tensor([1, 8, 9]), torch.tensor([[6, 2], [0, 1], [3, 4]]))
    out = model.loss(batch, g)
    u, v = model(g)
    pos = (u[batch.users] * v[batch.pos_items]).sum(-1)
    neg = torch.einsum("bd,bnd->bn", u[batch.users], v[batch.neg_items])
    ego_u, ego_i = model.user_emb.weight, model.item_emb.weight
    l2 = (ego_u[batch.users].pow(2).sum() + ego_i[batch.pos_items].pow(2).sum()
          + ego_i[batch.neg_items].pow(2).sum()) / (2 * 3)
    torch.testing.assert_close(out["bpr"], bpr_loss(pos, neg))
    torch.testing.assert_close(out["l2"], l2)
    torch.testing.assert_close(out["loss"], bpr_loss(pos, neg) + 0.1 * l2)


def test_gradients_flow_through_propagation():
    torch.manual_seed(0)
    g = InteractionGraph(two_communities())
    model = LightGCN(g.n_users, g.n_items, dim=4, layers=2, reg=0.0)
    model.loss(Batch(torch.tensor([0]), torch.tensor([1]), torch.tensor([[7]])), g)["loss"].backward()
    grad_u = model.user_emb.weight.grad
    # user 1 is not in the batch but shares items with user 0: it gets a gradient through the graph
    assert grad_u[0].abs().sum() > 0 and grad_u[1].abs().sum() > 0
    assert torch.isfinite(grad_u).all() and model.item_emb.weight.grad.abs().sum() > 0


def test_short_training_lowers_loss_and_separates_communities():
    torch.manual_seed(0)
    train = two_communities()
    g = InteractionGraph(train)
    model = LightGCN(g.n_users, g.n_items, dim=16, layers=2, reg=1e-4)
    losses = train_steps(model, g)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    scores = model.scorer(g).score(np.arange(g.n_users), train)
    assert in_community_first(scores, train) == 1.0


def test_state_dict_round_trip():
    torch.manual_seed(0)
    g = InteractionGraph(two_communities())
    a = LightGCN(g.n_users, g.n_items, dim=8, layers=2)
    train_steps(a, g, steps=3)
    b = LightGCN(g.n_users, g.n_items, dim=8, layers=2)
    b.load_state_dict(a.state_dict())
    for x, y in zip(a.eval()(g), b.eval()(g)):
        torch.testing.assert_close(x, y)


def test_config_defaults_build_the_model_and_bad_values_are_rejected():
    cfg = LightGCNConfig()
    assert (cfg.dim, cfg.layers, cfg.reg) == (64, 3, 1e-3)
    model = LightGCN(3, 4, **vars(cfg))
    assert model.user_emb.weight.shape == (3, 64) and model.layers == 3
    with pytest.raises(ConfigError, match="layers"):
        LightGCNConfig(layers=-1)
    with pytest.raises(ConfigError, match="dim"):
        LightGCN(3, 4, dim=0)
    with pytest.raises(ValueError, match="neg_items"):
        model.loss(Batch(torch.tensor([0]), torch.tensor([1])), InteractionGraph(sp.csr_matrix((3, 4))))


def test_explicit_transpose_backward_matches_autograd_of_sparse_mm():
    """propagate_layers' products back-propagate through the precomputed R̂ᵀ; the
    gradients must equal plain autograd through torch.sparse.mm on the same toy graph."""
    graph = InteractionGraph(two_communities(size=5, per_user=3))
    gen = torch.Generator().manual_seed(3)
    u0 = torch.randn(graph.n_users, 4, generator=gen)
    v0 = torch.randn(graph.n_items, 4, generator=gen)
    w_u = torch.randn(4, graph.n_users, 4, generator=gen)  # fixed weights of a non-trivial loss
    w_v = torch.randn(4, graph.n_items, 4, generator=gen)

    def grads(propagate_fn):
        u, v = u0.clone().requires_grad_(), v0.clone().requires_grad_()
        us, vs = propagate_fn(u, v)
        loss = (torch.stack(us) * w_u).sum() + (torch.stack(vs) * w_v).pow(2).sum()
        loss.backward()
        return u.grad, v.grad

    def reference(u, v):
        us, vs = [u], [v]
        for _ in range(3):
            u, v = torch.sparse.mm(graph.norm_ui, v), torch.sparse.mm(graph.norm_iu, u)
            us.append(u)
            vs.append(v)
        return us, vs

    gu, gv = grads(lambda u, v: propagate_layers(graph, u, v, 3))
    ru, rv = grads(reference)
    torch.testing.assert_close(gu, ru, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gv, rv, rtol=1e-5, atol=1e-6)
    assert gu.abs().sum() > 0 and gv.abs().sum() > 0
