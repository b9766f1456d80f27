import numpy as np
import scipy.sparse as sp
import torch

from semrec.models.topk import topk


def test_seen_items_are_excluded_and_sort_last():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 1]]))
    values, idx = topk(scores, 3, seen=seen)
    assert idx.tolist() == [[1, 3, 2], [2, 1, 0]]
    assert torch.isfinite(values).all()


def test_candidates_restrict_the_answer():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.5]])
    values, idx = topk(scores, 4, candidates=np.array([2, 3]))
    assert idx[0, :2].tolist() == [3, 2]
    assert torch.isinf(values[0, 2:]).all()


def test_k_is_clipped_to_catalogue():
    values, idx = topk(torch.zeros(2, 3), 10)
    assert idx.shape == (2, 3)
