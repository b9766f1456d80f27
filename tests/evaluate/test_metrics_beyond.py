"""Beyond-accuracy metric formulas: hand-computed values, edge cases, and a naive loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semrec.evaluate.metrics import (
    activity_groups,
    average_popularity,
    exposure,
    gini_index,
    head_items,
    intra_list_diversity,
    novelty,
    shannon_entropy,
    tail_share,
)
from semrec.models.rerank import ItemSpace

L2 = math.log2

# five items with training counts 6, 3, 1, 0, 10 (N = 20)
COUNTS = np.array([6, 3, 1, 0, 10])
LISTS = np.array([
    [4, 0, 2],  # three items
    [1, 3, -1],  # two items, then padding
    [-1, -1, -1],  # nothing listed
])


def test_novelty_by_hand():
    got = novelty(LISTS, COUNTS)
    # list 0: -log2(10/20), -log2(6/20), -log2(1/20) -> (1 + log2(20/6) + log2(20)) / 3
    # list 1: -log2(3/20), item 3 never trained: counted once -> -log2(1/20); mean of 2
    np.testing.assert_allclose(got[:2], [(1 + L2(20 / 6) + L2(20)) / 3, (L2(20 / 3) + L2(20)) / 2], rtol=1e-15)
    assert math.isnan(got[2]) and got.dtype == np.float64


def test_average_popularity_and_tail_share_by_hand():
    np.testing.assert_allclose(average_popularity(LISTS, COUNTS)[:2], [(10 + 6 + 1) / 3, (3 + 0) / 2], rtol=1e-15)
    head = head_items(COUNTS, 0.2)  # ceil(0.2 * 5) = 1 item: item 4 (10 interactions)
    assert head.tolist() == [False, False, False, False, True]
    np.testing.assert_allclose(tail_share(LISTS, head)[:2], [2 / 3, 2 / 2], rtol=1e-15)
    head = head_items(COUNTS, 0.5)  # ceil(2.5) = 3 items: 4, 0, 1
    assert head.tolist() == [True, True, False, False, True]
    np.testing.assert_allclose(tail_share(LISTS, head)[:2], [1 / 3, 1 / 2], rtol=1e-15)
    assert math.isnan(average_popularity(LISTS, COUNTS)[2]) and math.isnan(tail_share(LISTS, head)[2])


def test_head_ties_go_to_the_lower_index():
    # counts 5, 7, 7, 5: a head of ceil(0.5 * 4) = 2 items takes 1 and 2; of ceil(0.6 * 4) = 3 adds 0
    assert head_items(np.array([5, 7, 7, 5]), 0.5).tolist() == [False, True, True, False]
    assert head_items(np.array([5, 7, 7, 5]), 0.6).tolist() == [True, True, True, False]
    with pytest.raises(ValueError):
        head_items(COUNTS, 1.0)


def test_intra_list_diversity_by_hand():
    sim = ItemSpace("text", np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])).similarity(
        np.array([[0, 1, 2], [0, 3, -1], [2, -1, -1]]))
    got = intra_list_diversity(sim, np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=bool))
    r = 1 / math.sqrt(2)
    # list 0: pairs (0,1) r, (0,2) 0, (1,2) r -> 1 - 2r/3; list 1: one pair, cos -1 -> 2; list 2: no pair
    np.testing.assert_allclose(got[:2], [1 - 2 * r / 3, 2.0], rtol=1e-6)
    assert math.isnan(got[2])


def test_exposure_gini_and_entropy_by_hand():
    e = exposure(LISTS, 5)
    assert e.tolist() == [1, 1, 1, 1, 1]  # every item once
    assert gini_index(e) == pytest.approx(0.0, abs=1e-15)
    assert shannon_entropy(e) == pytest.approx(math.log(5), rel=1e-15)
    # exposures (0, 0, 1, 3) over 4 items: sorted 0, 0, 1, 3; sum 4
    #   gini = ((2*1-5)*0 + (2*2-5)*0 + (2*3-5)*1 + (2*4-5)*3) / (4 * 4) = (1 + 9) / 16
    #   entropy = -(1/4 ln 1/4 + 3/4 ln 3/4)
    e = np.array([3, 0, 1, 0])
    assert gini_index(e) == pytest.approx(10 / 16, rel=1e-15)
    assert shannon_entropy(e) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), rel=1e-15)
    # one item everywhere among n: gini 1 - 1/n, entropy 0
    assert gini_index(np.array([0, 0, 0, 9])) == pytest.approx(1 - 1 / 4, rel=1e-15)
    assert shannon_entropy(np.array([0, 0, 0, 9])) == 0.0
    with pytest.raises(ValueError):
        gini_index(np.zeros(3))
    with pytest.raises(ValueError):
        shannon_entropy(np.zeros(3))


def test_activity_groups_by_rank():
    # seven users; sorted activity 1, 2, 2, 2, 5, 8, 9 -> ranks 0..6 -> floor(rank * 3 / 7)
    activity = np.array([8, 2, 2, 1, 9, 2, 5])
    # rank: user 3 -> 0, users 1, 2, 5 -> 1, 2, 3 (ties by position), user 6 -> 4, user 0 -> 5, user 4 -> 6
    assert activity_groups(activity, 3).tolist() == [2, 0, 0, 0, 2, 1, 1]
    assert activity_groups(activity, 1).tolist() == [0] * 7
    assert activity_groups(np.array([], dtype=np.int64), 3).tolist() == []


def test_tensors_are_accepted():
    assert np.allclose(novelty(torch.as_tensor(LISTS), torch.as_tensor(COUNTS))[:2], novelty(LISTS, COUNTS)[:2])


def test_bad_input_raises_value_error():
    bad_calls = [
        lambda: novelty(np.array([0, 1]), COUNTS),  # not (B, K)
        lambda: novelty(np.array([[0.5, 1.0]]), COUNTS),  # not integer items
        lambda: novelty(np.array([[7]]), COUNTS),  # item outside the counts
        lambda: average_popularity(LISTS, np.array([1, -1, 0, 0, 0])),  # negative count
        lambda: tail_share(np.array([[6]]), np.ones(5, bool)),
        lambda: exposure(np.array([[5]]), 5),
        lambda: intra_list_diversity(np.zeros((2, 3, 3)), np.ones((2, 2), bool)),
        lambda: activity_groups(np.array([1, 2]), 0),
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()


# --------------------------------------------------------------------------- naive loop


def test_match_a_naive_loop():
    rng = np.random.default_rng(0)
    n_items, n_lists, k = 25, 30, 6
    counts = rng.integers(0, 40, n_items)
    vectors = rng.standard_normal((n_items, 5))
    lists = np.stack([rng.choice(n_items, k, replace=False) for _ in range(n_lists)])
    for b in range(0, n_lists, 4):  # some lists shorter
        lists[b, rng.integers(0, k + 1):] = -1
    head = head_items(counts, 0.2)
    listed = lists >= 0
    sim = ItemSpace("text", vectors).similarity(lists)

    total = counts.sum()
    order = sorted(range(n_items), key=lambda i: (-counts[i], i))
    naive_head = set(order[: math.ceil(0.2 * n_items)])
    assert set(np.flatnonzero(head).tolist()) == naive_head
    for b in range(n_lists):
        items = [i for i in lists[b].tolist() if i >= 0]
        nov, pop, tail, ild = novelty(lists, counts)[b], average_popularity(lists, counts)[b], \
            tail_share(lists, head)[b], intra_list_diversity(sim, listed)[b]
        if not items:
            assert math.isnan(nov) and math.isnan(pop) and math.isnan(tail) and math.isnan(ild)
            continue
        assert nov == pytest.approx(sum(-math.log2(max(counts[i], 1) / total) for i in items) / len(items), rel=1e-12)
        assert pop == pytest.approx(sum(counts[i] for i in items) / len(items), rel=1e-12)
        assert tail == pytest.approx(sum(i not in naive_head for i in items) / len(items), rel=1e-12)
        pairs = [(a, c) for x, a in enumerate(items) for c in items[x + 1 :]]
        if not pairs:
            assert math.isnan(ild)
            continue
        cos = [float(vectors[a] @ vectors[c] / np.linalg.norm(vectors[a]) / np.linalg.norm(vectors[c]))
               for a, c in pairs]
        assert ild == pytest.approx(1 - sum(cos) / len(pairs), rel=1e-5)

    flat = [i for row in lists.tolist() for i in row if i >= 0]
    e = exposure(lists, n_items)
    assert e.tolist() == [flat.count(i) for i in range(n_items)]
    # Gini as the mean absolute difference over all pairs, halved and divided by the mean
    n = n_items
    mad = sum(abs(int(a) - int(c)) for a in e for c in e) / (n * n)
    assert gini_index(e) == pytest.approx(mad / (2 * e.mean()) , rel=1e-12)
    q = [x / len(flat) for x in e if x]
    assert shannon_entropy(e) == pytest.approx(-sum(p * math.log(p) for p in q), rel=1e-12)
