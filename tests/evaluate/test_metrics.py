"""Metric formulas: hand-computed values, edge cases, and a naive per-user loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semrec.evaluate.metrics import (
    hit_rate_at_k,
    item_coverage,
    mae,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    rmse,
)

L2 = math.log2


def _all(hits, n_rel) -> dict[str, np.ndarray]:
    return {
        "recall": recall_at_k(hits, n_rel),
        "precision": precision_at_k(hits),
        "ndcg": ndcg_at_k(hits, n_rel),
        "hit": hit_rate_at_k(hits),
        "mrr": mrr_at_k(hits),
    }


# --------------------------------------------------------------------------- hand-computed


def test_hand_computed_batch():
    hits = np.array(
        [
            # user 0: test items {1, 3}, top-3 = [3, 0, 1] -> hits at ranks 1 and 3
            [True, False, True],
            # user 1: test items {0, 1, 2, 3, 5} (5 > K), top-3 = [7, 2, 9] -> hit at rank 2
            [False, True, False],
            # user 2: test items {4, 6}, top-3 = [0, 1, 2] -> no hit
            [False, False, False],
        ]
    )
    n_rel = np.array([2, 5, 2])
    m = _all(hits, n_rel)

    # recall = hits / |T|: 2/2, 1/5, 0/2
    np.testing.assert_allclose(m["recall"], [2 / 2, 1 / 5, 0.0], rtol=0, atol=1e-15)
    # precision = hits / K: 2/3, 1/3, 0/3
    np.testing.assert_allclose(m["precision"], [2 / 3, 1 / 3, 0.0], rtol=0, atol=1e-15)
    # ndcg user 0: DCG = 1/log2(2) + 1/log2(4); IDCG over min(2, 3) = 2 slots = 1/log2(2) + 1/log2(3)
    # ndcg user 1: DCG = 1/log2(3); IDCG over min(5, 3) = 3 slots = 1/log2(2) + 1/log2(3) + 1/log2(4)
    ndcg0 = (1 / L2(2) + 1 / L2(4)) / (1 / L2(2) + 1 / L2(3))
    ndcg1 = (1 / L2(3)) / (1 / L2(2) + 1 / L2(3) + 1 / L2(4))
    np.testing.assert_allclose(m["ndcg"], [ndcg0, ndcg1, 0.0], rtol=1e-15, atol=0)
    # hit: any hit -> 1, 1, 0
    np.testing.assert_array_equal(m["hit"], [1.0, 1.0, 0.0])
    # mrr: first hit at rank 1 -> 1/1; at rank 2 -> 1/2; none -> 0
    np.testing.assert_allclose(m["mrr"], [1.0, 0.5, 0.0], rtol=0, atol=1e-15)
    for v in m.values():
        assert v.dtype == np.float64 and v.shape == (3,)


def test_k_larger_than_number_of_test_items():
    # |T| = 1, K = 5, the one test item at rank 3
    hits = np.array([[False, False, True, False, False]])
    m = _all(hits, np.array([1]))
    assert m["recall"][0] == 1.0  # 1/1: recall divides by |T|, not K
    assert m["precision"][0] == pytest.approx(1 / 5, abs=1e-15)  # 1/K
    # DCG = 1/log2(4) = 0.5; IDCG over min(1, 5) = 1 slot = 1/log2(2) = 1
    assert m["ndcg"][0] == pytest.approx(0.5, abs=1e-15)
    assert m["mrr"][0] == pytest.approx(1 / 3, abs=1e-15)
    assert m["hit"][0] == 1.0


def test_idcg_uses_min_of_test_items_and_k():
    # |T| = 2, K = 1, hit at rank 1: IDCG over min(2, 1) = 1 slot, so NDCG = 1 / 1 = 1
    # (an IDCG over both test items, 1 + 1/log2(3), would give 0.613)
    assert ndcg_at_k(np.array([[True]]), np.array([2]))[0] == 1.0
    # |T| = 3, K = 2, hits at ranks 1 and 2: DCG = IDCG = 1 + 1/log2(3)
    assert ndcg_at_k(np.array([[True, True]]), np.array([3]))[0] == pytest.approx(1.0, abs=1e-15)
    # |T| = 3, K = 4, hits at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5),
    # IDCG over min(3, 4) = 3 slots = 1 + 1/log2(3) + 1/log2(4)
    got = ndcg_at_k(np.array([[False, True, False, True]]), np.array([3]))[0]
    assert got == pytest.approx((1 / L2(3) + 1 / L2(5)) / (1 + 1 / L2(3) + 1 / L2(4)), rel=1e-15)


def test_no_hits_gives_zero_everywhere():
    m = _all(np.zeros((4, 6), dtype=bool), np.array([1, 2, 7, 30]))
    for name, v in m.items():
        np.testing.assert_array_equal(v, np.zeros(4), err_msg=name)


def test_padded_list_still_divides_precision_by_k():
    # a list of 2 real items padded to K = 4 (padding is never a hit): precision = 1/4
    assert precision_at_k(np.array([[True, False, False, False]]))[0] == 0.25


def test_accepts_torch_and_integer_hits():
    hits = np.array([[1, 0, 1], [0, 0, 1]])
    n_rel = np.array([3, 1])
    want = _all(hits.astype(bool), n_rel)
    for got in (_all(hits, n_rel), _all(torch.as_tensor(hits).bool(), torch.as_tensor(n_rel))):
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize(
    "call",
    [
        lambda: recall_at_k(np.zeros((2, 0), dtype=bool), np.array([1, 1])),  # K = 0
        lambda: precision_at_k(np.zeros((2, 0), dtype=bool)),  # K = 0
        lambda: mrr_at_k(np.zeros(3, dtype=bool)),  # not (B, K)
        lambda: hit_rate_at_k(np.full((1, 2), 0.5)),  # not boolean
        lambda: hit_rate_at_k(np.array([[0, 2]])),  # not 0/1
        lambda: recall_at_k(np.zeros((2, 3), dtype=bool), np.array([1, 0])),  # no relevant items
        lambda: ndcg_at_k(np.zeros((2, 3), dtype=bool), np.array([1, 0])),  # no relevant items
        lambda: ndcg_at_k(np.zeros((2, 3), dtype=bool), np.array([1, 1, 1])),  # shape mismatch
        lambda: recall_at_k(np.ones((1, 3), dtype=bool), np.array([2])),  # more hits than |T|
        lambda: recall_at_k(np.ones((1, 3), dtype=bool), np.array([3.5])),  # not a count
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


# --------------------------------------------------------------------------- naive loop


def _naive_user(hit_list: list[bool], n_rel: int) -> dict[str, float]:
    """One user, written out the slow way."""
    k = len(hit_list)
    n_hit = sum(hit_list)
    dcg = 0.0
    for j, h in enumerate(hit_list):
        if h:
            dcg += 1.0 / math.log2(j + 2)
    idcg = 0.0
    for j in range(min(n_rel, k)):
        idcg += 1.0 / math.log2(j + 2)
    rr = 0.0
    for j, h in enumerate(hit_list):
        if h:
            rr = 1.0 / (j + 1)
            break
    return {
        "recall": n_hit / n_rel,
        "precision": n_hit / k,
        "ndcg": dcg / idcg,
        "hit": 1.0 if n_hit else 0.0,
        "mrr": rr,
    }


@pytest.mark.parametrize("k", [1, 2, 5, 20])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_naive_loop_on_random_hits(k, seed):
    rng = np.random.default_rng(seed)
    b = 300
    hits = rng.random((b, k)) < 0.2  # (B, K)
    # every user has at least as many relevant items as hits, sometimes many more than K
    n_rel = hits.sum(1) + rng.integers(0, 2 * k, size=b)
    n_rel = np.maximum(n_rel, 1)
    got = _all(hits, n_rel)
    for name in got:
        want = np.array([_naive_user(list(hits[i]), int(n_rel[i]))[name] for i in range(b)])
        np.testing.assert_allclose(got[name], want, rtol=1e-13, atol=1e-15, err_msg=name)


# --------------------------------------------------------------------------- rating, coverage


def test_rmse_and_mae_known_numbers():
    pred = np.array([3.5, 2.0, 5.0])
    target = np.array([4.0, 2.0, 3.0])
    # errors -0.5, 0, 2: squared 0.25 + 0 + 4 = 4.25 over N = 3; absolute 0.5 + 0 + 2 = 2.5 over 3
    assert rmse(pred, target) == pytest.approx(math.sqrt(4.25 / 3), rel=1e-15)
    assert mae(pred, target) == pytest.approx(2.5 / 3, rel=1e-15)
    assert rmse(torch.tensor(pred), torch.tensor(target)) == pytest.approx(math.sqrt(4.25 / 3), rel=1e-15)
    assert rmse(target, target) == 0.0 and mae(target, target) == 0.0


@pytest.mark.parametrize("fn", [rmse, mae])
def test_rating_metrics_reject_bad_input(fn):
    with pytest.raises(ValueError):
        fn(np.array([1.0, 2.0]), np.array([1.0]))  # lengths differ
    with pytest.raises(ValueError):
        fn(np.array([]), np.array([]))  # nothing to compare
    with pytest.raises(ValueError):
        fn(np.array([np.nan]), np.array([1.0]))  # NaN prediction


def test_item_coverage():
    # lists [0, 2] and [2, 5]: distinct {0, 2, 5} = 3 items of 10
    assert item_coverage(np.array([[0, 2], [2, 5]]), 10) == pytest.approx(3 / 10, abs=1e-15)
    # -1 is padding: distinct {1} = 1 of 4
    assert item_coverage(torch.tensor([[1, -1], [1, -1]]), 4) == 0.25
    assert item_coverage(np.array([], dtype=np.int64), 4) == 0.0
    with pytest.raises(ValueError):
        item_coverage(np.array([[0, 4]]), 4)  # item 4 outside 0..3
    with pytest.raises(ValueError):
        item_coverage(np.array([[0]]), 0)  # empty catalogue
    with pytest.raises(ValueError):
        item_coverage(np.array([[0.5]]), 3)  # not indices
