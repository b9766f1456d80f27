"""Neighbour-sampled LightGCN training."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from semrec.errors import ConfigError
from semrec.evaluate.ranking import evaluate_ranking
from semrec.graph.interaction import InteractionGraph
from semrec.graph.sampling import NeighborSampler
from semrec.models.base import Batch
from semrec.models.lightgcn import LightGCN
from semrec.models.popularity import Popularity
from semrec.train.loop import TrainConfig
from semrec.train.neighbor import block_loss, fit_neighbor


def test_block_loss_equals_full_graph_loss_when_nothing_is_cut(toy_split):
    torch.manual_seed(0)
    model = LightGCN(toy_split.n_users, toy_split.n_items, dim=8, layers=2, reg=1e-3)
    train = toy_split.matrix("train")
    graph = InteractionGraph(train)
    batch = Batch(torch.tensor([0, 5, 30]), torch.tensor([1, 2, 20]), torch.tensor([[17], [18], [3]]))
    full = model.loss(batch, graph)
    full["loss"].backward()
    g_full = model.user_emb.weight.grad.clone()
    model.zero_grad()
    sampler = NeighborSampler(train, [-1, -1], np.random.default_rng(0))
    sampled = block_loss(model, sampler, batch)
    sampled["loss"].backward()
    torch.testing.assert_close(sampled["loss"], full["loss"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.user_emb.weight.grad, g_full, rtol=1e-4, atol=1e-7)


def test_short_neighbor_training_beats_popularity(toy_split, tmp_path):
    torch.manual_seed(0)
    model = LightGCN(toy_split.n_users, toy_split.n_items, dim=16, layers=2, reg=1e-4)
    cfg = TrainConfig(epochs=15, batch_size=64, lr=0.05, progress=False, patience=15, eval_every=5)
    log = tmp_path / "log.jsonl"
    result = fit_neighbor(model, toy_split, cfg, fanouts=[3, 3], log_path=log)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == result.epochs_run == 15
    assert {"loss", "bpr", "block_nodes", "block_edges", "train_s"} <= set(lines[0])
    assert lines[-1]["loss"] < lines[0]["loss"]
    assert_beats_popularity(model, toy_split)


def test_sparse_gradients_train_too(toy_split):
    torch.manual_seed(0)
    model = LightGCN(toy_split.n_users, toy_split.n_items, dim=16, layers=2, reg=1e-4)
    before = model.user_emb.weight.detach().clone()
    cfg = TrainConfig(epochs=15, batch_size=64, lr=0.05, progress=False, patience=15, eval_every=15)
    fit_neighbor(model, toy_split, cfg, fanouts=[3, 3], sparse_grad=True)
    assert not torch.equal(before, model.user_emb.weight)
    assert_beats_popularity(model, toy_split)


def test_fanouts_must_match_layers(toy_split):
    model = LightGCN(toy_split.n_users, toy_split.n_items, dim=4, layers=3)
    with pytest.raises(ConfigError, match="3 layers"):
        fit_neighbor(model, toy_split, TrainConfig(epochs=1, progress=False), fanouts=[5, 5])


def assert_beats_popularity(model, split) -> None:
    """Test Recall@5 of ``model`` over the full training graph clears popularity's by 0.2."""
    graph = InteractionGraph(split.matrix("train"))
    ours = evaluate_ranking(model.scorer(graph), split, "test", ks=(5,))
    pop = evaluate_ranking(Popularity(split.n_users, split.n_items).fit(split.matrix("train")), split, "test",
                           ks=(5,))
    assert ours["recall@5"] > pop["recall@5"] + 0.2
