"""Inner-product scoring with fold-in for users training never saw."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from semrec.models.base import EmbeddingScorer

ITEMS = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # (3, d=2)


def test_fold_in_is_one_normalised_propagation_step():
    scorer = EmbeddingScorer(torch.zeros(1, 2), ITEMS, item_degree=torch.tensor([4, 1, 0]))
    history = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1]], dtype=np.float32))
    got = scorer.fold_in(history)
    # user 0: (V_0 / sqrt(4) + V_1 / sqrt(1)) / sqrt(2); user 1: V_2 (degree 0 counts as 1)
    expected = torch.tensor([[0.5 / 2**0.5, 2 / 2**0.5], [1.0, 1.0]])
    assert torch.allclose(got, expected)


def test_untrained_users_are_scored_from_their_history():
    users = torch.tensor([[5.0, 0.0], [9.0, 9.0]])
    scorer = EmbeddingScorer(users, ITEMS, torch.ones(3), trained_users=torch.tensor([True, False]))
    history = sp.csr_matrix(np.array([[0, 1, 0], [0, 1, 0]], dtype=np.float32))
    scores = scorer.score(np.array([0, 1]), history)
    assert torch.allclose(scores[0], users[0] @ ITEMS.T)  # trained: its own vector
    assert torch.allclose(scores[1], ITEMS[1] @ ITEMS.T)  # untrained: folded in from item 1


def test_calibration_maps_fold_in_onto_trained_users():
    rng = np.random.default_rng(0)
    items = torch.as_tensor(rng.normal(size=(6, 3)), dtype=torch.float32)
    dense = (rng.random((40, 6)) < 0.5).astype(np.float32)
    dense[np.arange(40), rng.integers(0, 6, 40)] = 1.0  # nobody empty
    train = sp.csr_matrix(dense)
    raw = EmbeddingScorer(torch.zeros(40, 3), items, torch.as_tensor(train.getnnz(axis=0)))
    w = torch.tensor([[2.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 0.5]])
    c = torch.tensor([0.3, 0.0, -0.2])
    users = raw.fold_in(train) @ w + c  # trained vectors an exact affine image of fold-in
    scorer = EmbeddingScorer(users, items, raw.item_degree).calibrate_fold_in(train, ridge=1e-6)
    assert torch.allclose(scorer.fold_in(train[:5]), users[:5], atol=1e-3)
