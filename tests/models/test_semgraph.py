import numpy as np
import pytest
import scipy.sparse as sp
import torch

from semrec.graph.interaction import InteractionGraph
from semrec.models.semgraph import SemGraph, SemGraphConfig, _segment_softmax, edge_attention_propagate
from semrec.train.loop import TrainConfig, fit, seed_everything
from semrec.errors import ConfigError


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
