import numpy as np
import pytest
import torch
from toy_graphs import in_community_first, train_steps, two_communities

from semrec.errors import ConfigError
from semrec.graph.interaction import InteractionGraph
from semrec.models.base import Batch
from semrec.models.lightgcn import propagate_layers
from semrec.models.losses import info_nce
from semrec.models.xsimgcl import XSimGCL, XSimGCLConfig, contrast_nodes, sign_aligned_noise


@pytest.fixture
def graph():
    return InteractionGraph(two_communities())


def test_noise_has_norm_eps_and_keeps_signs():
    x = torch.randn(50, 8)
    y = sign_aligned_noise(x, 0.3)
    d = y - x
    torch.testing.assert_close(d.norm(dim=1), torch.full((50,), 0.3))
    assert (torch.sign(d) == torch.sign(x)).all()


def test_noise_is_a_constant_offset_for_the_gradient():
    # sign() has zero derivative: the perturbed layer's gradient is the layer's own
    x = torch.randn(20, 8, requires_grad=True)
    w = torch.randn(20, 8)
    (sign_aligned_noise(x, 0.5) * w).sum().backward()
    torch.testing.assert_close(x.grad, w)


def test_contrast_nodes_caps_the_unique_nodes():
    ids = torch.tensor([5, 3, 5, 9, 3, 1])
    assert contrast_nodes(ids, 10).tolist() == [1, 3, 5, 9]  # under the cap: every unique node
    torch.manual_seed(0)
    kept = contrast_nodes(torch.arange(100).repeat(3), 16)
    assert len(kept) == 16 and len(set(kept.tolist())) == 16 and kept.max() < 100
    assert contrast_nodes(torch.arange(100), 16).tolist() != list(range(16))  # a random subset


def test_noise_only_in_training(graph):
    torch.manual_seed(0)
    model = XSimGCL(graph.n_users, graph.n_items, dim=8, layers=1, cl_layer=1, eps=0.1)
    model.eval()
    clean_u, clean_v = model(graph)
    torch.testing.assert_close(model(graph)[0], clean_u)  # deterministic
    us, vs = propagate_layers(graph, model.user_emb.weight, model.item_emb.weight, 1)
    torch.testing.assert_close(clean_u, us[1])  # final = mean of layers 1..L (here layer 1)
    torch.testing.assert_close(clean_v, vs[1])
    model.train()
    noisy_u, noisy_v = model(graph)
    again_u, _ = model(graph)
    assert not torch.allclose(noisy_u, again_u)  # fresh noise on every pass
    # one layer: the difference is exactly one draw of noise, norm eps, signs of the clean layer
    for noisy, clean in ((noisy_u, clean_u), (noisy_v, clean_v)):
        d = noisy - clean
        torch.testing.assert_close(d.norm(dim=1), torch.full((d.shape[0],), 0.1))
        assert (torch.sign(d) == torch.sign(clean)).all()
    # scoring goes through eval mode: no noise, and training mode is restored
    scorer = model.scorer(graph)
    torch.testing.assert_close(scorer.user_emb, clean_u)
    assert model.training


def test_noise_is_added_at_every_layer(graph):
    torch.manual_seed(0)
    model = XSimGCL(graph.n_users, graph.n_items, dim=8, layers=3, cl_layer=2)
    model.train()
    u, v, u_cl, v_cl = model.views(graph)
    model.eval()
    cu, cv, cu_cl, cv_cl = model.views(graph)
    us, vs = propagate_layers(graph, model.user_emb.weight, model.item_emb.weight, 3)
    torch.testing.assert_close(cu_cl, us[2])
    torch.testing.assert_close(cv, torch.stack(vs[1:]).mean(0))
    # layer 2 in training = R̂ (perturbed layer 1) + noise: further than eps from clean
    assert (u_cl - cu_cl).norm(dim=1).min() > 0.0
    assert not torch.allclose(u, cu)


def test_contrastive_term_pairs_each_unique_node_with_itself(graph):
    torch.manual_seed(0)
    model = XSimGCL(graph.n_users, graph.n_items, dim=8, layers=2, cl_layer=1, reg=0.01,
                    ssl_temperature=0.5, ssl_weight=0.3).eval()
    batch = Batch(torch.tensor([3, 0, 3, 7]), torch.tensor([4, 1, 5, 8]), torch.tensor([[9], [10], [2], [0]]))
    out = model.loss(batch, graph)
    u, v, u_cl, v_cl = model.views(graph)
    users, items = torch.tensor([0, 3, 7]), torch.tensor([1, 4, 5, 8])
    want = info_nce(u[users], u_cl[users], 0.5) + info_nce(v[items], v_cl[items], 0.5)
    torch.testing.assert_close(out["ssl"], want)
    torch.testing.assert_close(out["loss"], out["bpr"] + 0.01 * out["l2"] + 0.3 * out["ssl"])
    # the batch order does not matter, duplicates count once
    perm = torch.tensor([2, 3, 0, 1])
    shuffled = Batch(batch.users[perm], batch.pos_items[perm], batch.neg_items[perm])
    torch.testing.assert_close(model.loss(shuffled, graph)["ssl"], out["ssl"])


def test_gradients_flow_from_every_term(graph):
    torch.manual_seed(0)
    model = XSimGCL(graph.n_users, graph.n_items, dim=8, layers=2).train()
    out = model.loss(Batch(torch.tensor([0, 6]), torch.tensor([1, 7]), torch.tensor([[8], [2]])), graph)
    for name in ("bpr", "l2", "ssl"):
        assert torch.isfinite(out[name]) and not out[name].requires_grad  # logged values are detached
    out["loss"].backward()
    assert model.user_emb.weight.grad.abs().sum() > 0 and model.item_emb.weight.grad.abs().sum() > 0
    assert torch.isfinite(model.user_emb.weight.grad).all()


def test_short_training_lowers_loss_and_separates_communities():
    torch.manual_seed(0)
    train = two_communities()
    g = InteractionGraph(train)
    model = XSimGCL(g.n_users, g.n_items, dim=16, layers=2, cl_layer=1)
    losses = train_steps(model, g)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    scores = model.scorer(g).score(np.arange(g.n_users), train)
    assert in_community_first(scores, train) == 1.0


def test_state_dict_round_trip(graph):
    a = XSimGCL(graph.n_users, graph.n_items, dim=8)
    b = XSimGCL(graph.n_users, graph.n_items, dim=8)
    b.load_state_dict(a.state_dict())
    for x, y in zip(a.eval()(graph), b.eval()(graph)):
        torch.testing.assert_close(x, y)


def test_config_defaults_and_validation():
    cfg = XSimGCLConfig()
    assert (cfg.dim, cfg.layers, cfg.reg, cfg.eps, cfg.ssl_temperature, cfg.ssl_weight, cfg.cl_layer,
            cfg.ssl_nodes) == (64, 3, 1e-4, 0.2, 0.2, 0.02, 1, 2048)
    assert XSimGCL(3, 4, **vars(cfg)).cl_layer == 1
    with pytest.raises(ConfigError, match="cl_layer"):
        XSimGCLConfig(layers=2, cl_layer=3)
    with pytest.raises(ConfigError, match="temperature"):
        XSimGCLConfig(ssl_temperature=0.0)
    with pytest.raises(ConfigError, match="cl_layer"):
        XSimGCL(3, 4, cl_layer=0)
    with pytest.raises(ConfigError, match="ssl_nodes"):
        XSimGCLConfig(ssl_nodes=0)
