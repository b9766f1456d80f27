"""The ``loss = bpr | softmax`` choice of the embedding models (mf, lightgcn, xsimgcl)."""
import pytest
import torch
import torch.nn.functional as F

from semrec.evaluate.ranking import evaluate_ranking
from semrec.models import catalog
from semrec.models.base import Batch
from semrec.models.losses import bpr_loss
from semrec.models.mf import ranking_loss
from semrec.models.popularity import Popularity
from semrec.train.loop import TrainConfig, fit, seed_everything, training_graph


def test_softmax_ranks_each_positive_against_every_negative_of_the_batch():
    g = torch.Generator().manual_seed(0)
    users, items = torch.randn(3, 4, generator=g), torch.randn(6, 4, generator=g)
    batch = Batch(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), torch.tensor([[3], [4], [3]]))
    got = ranking_loss(users, items, batch, "softmax", temperature=0.5)
    u, v = F.normalize(users, dim=1), F.normalize(items, dim=1)
    want = 0.0
    for b in range(3):  # the pool is {3, 4}, shared by every row
        logits = torch.stack([u[b] @ v[b], u[b] @ v[3], u[b] @ v[4]]) / 0.5
        want = want - torch.log_softmax(logits, 0)[0]
    torch.testing.assert_close(got, want / 3)
    pos, neg = (users * items[:3]).sum(1), (users * items[[3, 4, 3]]).sum(1)
    torch.testing.assert_close(ranking_loss(users, items, batch, "bpr", 0.5), bpr_loss(pos, neg))


@pytest.mark.parametrize("name", ["mf", "lightgcn", "xsimgcl"])
def test_softmax_training_beats_popularity_on_the_communities(toy_split, name):
    spec = catalog.spec(name)
    seed_everything(0)
    model = catalog.build(name, toy_split.n_users, toy_split.n_items, spec.config(dim=16, loss="softmax"))
    result = fit(model, toy_split, TrainConfig(epochs=30, batch_size=64, lr=0.02, n_negatives=4, progress=False))
    assert "softmax" in result.history[0] and result.history[-1]["loss"] < result.history[0]["loss"]
    graph = training_graph(toy_split)
    users, items = model.eval()(graph)
    torch.testing.assert_close(items.norm(dim=1), torch.ones(toy_split.n_items))  # cosine scores
    pop = Popularity(toy_split.n_users, toy_split.n_items).fit(toy_split.matrix("train"))
    test = evaluate_ranking(model.scorer(graph), toy_split, "test")
    assert test["ndcg@20"] > evaluate_ranking(pop, toy_split, "test")["ndcg@20"] + 0.2
