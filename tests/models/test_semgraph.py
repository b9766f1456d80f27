import numpy as np
import pytest
import scipy.sparse as sp
import torch

from semrec.errors import ConfigError
from semrec.graph.interaction import InteractionGraph
from semrec.models.semgraph import SemGraph, SemGraphConfig, _segment_softmax, edge_attention_propagate
from semrec.train.loop import TrainConfig, fit, seed_everything


def community_text(n_items: int, dim: int = 8, seed: int = 0) -> torch.Tensor:
    """Text vectors that say which community an item belongs to (first half: A)."""
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(n_items, dim, generator=g) * 0.1
    text[: n_items // 2, 0] += 1.0
    text[n_items // 2 :, 1] += 1.0
    return torch.nn.functional.normalize(text, dim=1)


def test_cold_item_is_recommended_to_the_users_its_text_matches(make_community_split):
    split = make_community_split()
    cold = 3  # an item of community A that we strip of all training interactions
    keep = split.train.items != cold
    split.train = split.train.take(keep)
    seed_everything(0)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=16, layers=2)
    knn = sp.csr_matrix(np.ones((split.n_items, split.n_items)) - np.eye(split.n_items))
    graph = InteractionGraph(split.matrix("train"), item_item=knn)
    fit(model, split, TrainConfig(epochs=30, batch_size=64, lr=0.02, progress=False), graph=graph)
    model.eval()
    assert int(graph.item_degree[cold]) == 0
    users, items = model(graph)
    scores = users @ items.T  # (n_users, n_items)
    a_users = scores[:20, cold].mean()
    b_users = scores[20:, cold].mean()
    assert a_users > b_users + 0.1
    share = model.text_share(graph)
    assert share[cold] == 1.0 and torch.all((share >= 0) & (share <= 1))


def test_training_lowers_the_loss_with_every_term(make_community_split):
    split = make_community_split()
    seed_everything(1)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=16, alpha=0.7)
    graph = InteractionGraph(split.matrix("train"))
    result = fit(model, split, TrainConfig(epochs=15, batch_size=64, lr=0.02, progress=False, patience=20),
                 graph=graph)
    first, last = result.history[0], result.history[-1]
    assert {"sup", "ssl", "ssl_graph", "ssl_text"} <= set(first)
    assert last["loss"] < first["loss"]
    assert result.best_value > 0.3  # valid ndcg@20 on the two communities


def test_gat_variant_normalises_attention_per_node_and_learns(make_community_split):
    logits = torch.tensor([0.0, 1.0, 2.0, 5.0])
    index = torch.tensor([0, 0, 1, 1])
    sm = _segment_softmax(logits, index, 2)
    torch.testing.assert_close(sm[:2].sum(), torch.tensor(1.0))
    torch.testing.assert_close(sm[2:], torch.softmax(torch.tensor([2.0, 5.0]), 0))
    # zero attention vectors: every neighbour weighs the same -> plain neighbour mean
    r = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    g = InteractionGraph(r)
    u, v = torch.randn(2, 4), torch.randn(3, 4)
    nu, nv = edge_attention_propagate(g, u, v, torch.zeros(4), torch.zeros(4))
    torch.testing.assert_close(nu[0], (v[0] + v[1]) / 2)
    torch.testing.assert_close(nv[1], (u[0] + u[1]) / 2)

    split = make_community_split()
    seed_everything(2)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=16, attention="gat")
    result = fit(model, split, TrainConfig(epochs=10, batch_size=64, lr=0.02, progress=False),
                 graph=InteractionGraph(split.matrix("train")))
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_rating_head_learns_ratings(make_community_split):
    split = make_community_split()
    rng = np.random.default_rng(0)
    for part in ("train", "valid", "test"):
        inter = getattr(split, part)
        # community A rates 5, community B rates 2: a pattern the head can learn
        inter.ratings = np.where(inter.users < 20, 5.0, 2.0).astype(np.float32) + rng.normal(0, 0.1, len(inter))
    mean = float(split.train.ratings.mean())
    seed_everything(3)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), rating_mean=mean, dim=8,
                     task="rating", alpha=1.0)
    graph = InteractionGraph(split.matrix("train"))
    result = fit(model, split, TrainConfig(epochs=40, batch_size=64, lr=0.05, task="rating", progress=False),
                 graph=graph)
    assert result.best_value < 0.5  # RMSE; predicting the mean would give about 1.5
    pred = model.predict_ratings(np.array([0, 30]), np.array([1, 20]), graph)
    assert pred[0] > pred[1] + 1.5


def test_user_text_is_fused_when_given(make_community_split):
    split = make_community_split()
    user_text = community_text(split.n_users)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), user_text=user_text, dim=8)
    graph = InteractionGraph(split.matrix("train"))
    u, v = model(graph)
    assert u.shape == (split.n_users, 8) and v.shape == (split.n_items, 8)
    assert "user_text" in model.state_dict()


def test_config_rejects_out_of_range_values():
    with pytest.raises(ConfigError, match="alpha must lie in"):
        SemGraphConfig(alpha=1.5)
    with pytest.raises(ConfigError, match="dim must be at least 1"):
        SemGraphConfig(dim=0)


def test_text_projection_centres_its_input_without_new_state():
    from semrec.models.semgraph import TextProjection

    g = torch.Generator().manual_seed(0)
    ref = torch.nn.functional.normalize(torch.randn(50, 8, generator=g) + 3.0, dim=1)  # shared direction
    proj = TextProjection(8, 16, 4, ref)
    # the reference mean maps to the MLP's value at the origin; the state dict is unchanged
    torch.testing.assert_close(proj(ref.mean(0, keepdim=True)), proj.net(torch.zeros(1, 8)))
    assert set(proj.state_dict()) == set(TextProjection(8, 16, 4).state_dict())
    centred = (ref - proj.center) / proj.scale
    assert centred.pow(2).sum(1).mean().item() == pytest.approx(1.0, rel=1e-5)


def test_gate_starts_at_the_text_prior_and_loads_runs_saved_without_it(make_community_split):
    from semrec.models.semgraph import TEXT_PRIOR, ViewAttention

    gate = ViewAttention(8, text_prior=TEXT_PRIOR)
    x = torch.randn(5, 8)
    torch.testing.assert_close(gate(x, x)[:, 1], torch.full((5,), TEXT_PRIOR))
    split = make_community_split()
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=8)
    old = {k: v for k, v in model.state_dict().items() if not k.endswith("gate.prior")}
    fresh = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=8)
    fresh.load_state_dict(old)  # a run saved before the prior existed
    torch.testing.assert_close(fresh.item_gate.prior, torch.zeros(2))


def test_text_contrast_trains_the_text_view_not_the_graph_view(make_community_split):
    from semrec.models.base import Batch

    split = make_community_split()
    graph = InteractionGraph(split.matrix("train"))
    batch = Batch(torch.arange(10), torch.arange(10), torch.arange(10, 20)[:, None])
    grads = {}
    for alpha in (1.0, 0.5):  # text_weight 1: L = α·sup + (1 − α)·InfoNCE(z, sg(V))
        seed_everything(0)
        model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=8, alpha=alpha,
                         text_weight=1.0, eps=0.0, id_dropout=0.0)
        model.loss(batch, graph)["loss"].backward()
        grads[alpha] = (model.item_emb.weight.grad.clone(), model.item_proj.net[0].weight.grad.clone())
    # the ID table gets only the supervised gradient; the text MLP gets the contrast's too
    torch.testing.assert_close(grads[0.5][0], 0.5 * grads[1.0][0])
    assert not torch.allclose(grads[0.5][1], 0.5 * grads[1.0][1])
