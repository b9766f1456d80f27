"""Neighbour-sampled blocks against full-graph LightGCN."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from semrec.graph.interaction import InteractionGraph
from semrec.graph.sampling import NeighborSampler, block_size_bound, propagate_block
from semrec.models.lightgcn import propagate


def random_graph(n_users=40, n_items=30, density=0.15, seed=0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    m = (rng.random((n_users, n_items)) < density).astype(np.float32)
    m[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1  # no isolated user
    return sp.csr_matrix(m)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_full_fanout_reproduces_lightgcn_exactly(layers):
    train = random_graph()
    graph = InteractionGraph(train)
    torch.manual_seed(0)
    u0 = torch.randn(graph.n_users, 8, dtype=torch.float32)
    v0 = torch.randn(graph.n_items, 8, dtype=torch.float32)
    full_u, full_v = propagate(graph, u0, v0, layers)
    max_deg = int(max(train.getnnz(axis=1).max(), train.getnnz(axis=0).max()))
    sampler = NeighborSampler(train, [max_deg] * layers, np.random.default_rng(1))
    users = np.array([3, 7, 7, 0])
    pos = np.array([1, 2, 5, 9])
    neg = np.array([[4], [29], [5], [0]])
    block = sampler.sample(users, pos, neg)
    bu, bv = propagate_block(block, u0[block.users], v0[block.items])
    torch.testing.assert_close(bu[block.seed_users], full_u[users], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bv[block.seed_items[0]], full_v[pos], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bv[block.seed_items[1]], full_v[neg], rtol=1e-5, atol=1e-6)
    # the scratch maps are reset: a second draw gives the same block
    again = sampler.sample(users, pos, neg)
    assert torch.equal(again.users, block.users) and torch.equal(again.items, block.items)


def test_gradients_match_full_graph():
    train = random_graph(seed=2)
    graph = InteractionGraph(train)
    torch.manual_seed(0)
    u0 = torch.randn(graph.n_users, 4, requires_grad=True)
    v0 = torch.randn(graph.n_items, 4, requires_grad=True)
    users, pos = np.array([1, 2]), np.array([3, 4])
    fu, fv = propagate(graph, u0, v0, 2)
    (fu[users] * fv[pos]).sum().backward()
    g_full = (u0.grad.clone(), v0.grad.clone())
    u0.grad = v0.grad = None
    sampler = NeighborSampler(train, [-1, -1], np.random.default_rng(0))
    block = sampler.sample(users, pos)
    bu, bv = propagate_block(block, u0[block.users], v0[block.items])
    (bu[block.seed_users] * bv[block.seed_items[0]]).sum().backward()
    torch.testing.assert_close(u0.grad, g_full[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v0.grad, g_full[1], rtol=1e-5, atol=1e-6)


def test_block_memory_is_bounded_by_batch_times_fanout_power():
    rng = np.random.default_rng(0)
    n_users, n_items, nnz = 5000, 4000, 60000
    # power-law item popularity: some items have hundreds of users
    items = np.minimum((rng.pareto(1.2, nnz) * 20).astype(np.int64), n_items - 1)
    users = rng.integers(0, n_users, nnz)
    train = sp.csr_matrix((np.ones(nnz, np.float32), (users, items)), shape=(n_users, n_items))
    train.data[:] = 1
    fanouts = [3, 2, 2]
    sampler = NeighborSampler(train, fanouts, np.random.default_rng(0))
    b_users = rng.integers(0, n_users, 16)
    b_pos = rng.integers(0, n_items, 16)
    block = sampler.sample(b_users, b_pos)
    seeds = len(np.unique(b_users)) + len(np.unique(b_pos))
    bound = block_size_bound(seeds, fanouts)  # seeds * (1 + 3 + 6 + 12)
    assert block.n_nodes <= bound
    assert block.n_nodes < n_users + n_items
    # edges of the widest layer: at most |N_{L-1}| * f_L entries
    first = block.layers[0]  # layer 1: destinations N_{L-1}, sources N_L (the widest)
    last = block.layers[-1]  # layer L: destinations N_0 (the seeds)
    assert first.nnz <= (block.user_sizes[-2] + block.item_sizes[-2]) * max(fanouts)
    assert last.nnz <= seeds * max(fanouts) <= first.nnz
    assert block.n_edges <= len(fanouts) * bound * max(fanouts)


def test_sampled_rows_are_unbiased():
    # a star: one user with 50 items; fanout 5 with the deg/fanout scale averages to the full row
    train = sp.csr_matrix(np.ones((1, 50), np.float32))
    graph = InteractionGraph(train)
    v0 = torch.arange(50, dtype=torch.float32)[:, None]
    exact = graph.users_from_items(v0)[0, 0]
    sampler = NeighborSampler(train, [5], np.random.default_rng(0))
    vals = []
    for _ in range(400):
        b = sampler.sample(np.array([0]))
        vals.append(float(b.layers[0].users_from_items(v0[b.items])[0, 0]))
    assert abs(np.mean(vals) - float(exact)) < 0.05 * float(exact)


def test_bad_fanouts():
    with pytest.raises(ValueError):
        NeighborSampler(random_graph(), [], np.random.default_rng(0))
    with pytest.raises(ValueError):
        NeighborSampler(random_graph(), [3, 0], np.random.default_rng(0))
