"""Toy graphs with a known answer, shared by the model tests: two communities of users
and items, a minimal training loop, and scores of how well a model separates them."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from semrec.models.base import Batch


def two_communities(size: int = 6, per_user: int = 4) -> sp.csr_matrix:
    """Users ``c*size + j`` like items ``c*size + (j..j+per_user-1) mod size``, c in {0, 1}."""
    rows, cols = [], []
    for c in range(2):
        for j in range(size):
            for t in range(per_user):
                rows.append(c * size + j)
                cols.append(c * size + (j + t) % size)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(2 * size, 2 * size))


def train_steps(model, graph, steps=50, batch_size=32, lr=0.05, seed=0) -> list[float]:
    gen = torch.Generator().manual_seed(seed)
    coo = graph.train.tocoo()
    users = torch.as_tensor(coo.row, dtype=torch.long)
    items = torch.as_tensor(coo.col, dtype=torch.long)
    dense = torch.as_tensor(graph.train.toarray())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(users), (batch_size,), generator=gen)  # uniform positives
        neg = torch.randint(graph.n_items, (batch_size, 1), generator=gen)  # uniform negatives,
        while (bad := dense[users[idx], neg[:, 0]] > 0).any():  # redrawn where positive
            neg[bad, 0] = torch.randint(graph.n_items, (int(bad.sum()),), generator=gen)
        out = model.loss(Batch(users[idx], items[idx], neg), graph)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    return losses


def in_community_first(scores: torch.Tensor, train: sp.csr_matrix, size: int = 6) -> float:
    """Share of users whose every unseen in-community item outscores every other-community item."""
    ok = 0
    for u in range(scores.shape[0]):
        c = u // size
        inside = [i for i in range(c * size, (c + 1) * size) if train[u, i] == 0]
        outside = [i for i in range(scores.shape[1]) if i // size != c]
        ok += bool(scores[u, inside].min() > scores[u, outside].max())
    return ok / scores.shape[0]


def in_community_auc(scores: torch.Tensor, train: sp.csr_matrix, size: int = 6) -> float:
    """Share of (unseen in-community, other-community) item pairs, over all users, in
    which the in-community item scores higher."""
    ok = total = 0
    for u in range(scores.shape[0]):
        c = u // size
        inside = [i for i in range(c * size, (c + 1) * size) if train[u, i] == 0]
        outside = [i for i in range(scores.shape[1]) if i // size != c]
        ok += int((scores[u, inside][:, None] > scores[u, outside][None, :]).sum())
        total += len(inside) * len(outside)
    return ok / total
