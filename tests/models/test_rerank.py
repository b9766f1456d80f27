"""Re-ranking: item spaces, maximal marginal relevance and inverse propensity, against
hand-computed answers and a naive per-list loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from semrec.models.base import EmbeddingScorer
from semrec.models.itemknn import ItemKNN
from semrec.models.rerank import DEFAULT_POOL, ItemSpace, Rerank, item_counts, item_space, rerank
from semrec.models.semgraph import SemGraph

# --------------------------------------------------------------------------- item spaces


def test_vector_space_cosine_padding_unknown_and_zero_rows():
    vectors = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [0.0, 0.0]])  # item 3 has no text
    space = ItemSpace("text", vectors)
    sim = space.similarity(np.array([[0, 1, 2, 3, -1, 9]]))[0]  # 9: past the table
    r = 1 / math.sqrt(2)
    want = np.zeros((6, 6))
    want[:3, :3] = [[1, r, 0], [r, 1, r], [0, r, 1]]
    np.testing.assert_allclose(sim, want, atol=1e-6)
    assert sim.dtype == np.float32 and space.n_items == 4


def test_cooccurrence_space_is_the_co_occurrence_cosine():
    # users x items; item 0: users {0, 1, 2}; item 1: {0, 1}; item 2: {2}; item 3: nobody
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0]], dtype=np.float32))
    space = ItemSpace.cooccurrence(train)
    sim = space.similarity(np.array([[0, 1, 2, 3], [2, -1, 0, 0]]))
    # |U_i ∩ U_j| / sqrt(|U_i| |U_j|): (0,1) 2/sqrt(6); (0,2) 1/sqrt(3); (1,2) 0; item 3: 0 everywhere
    want0 = np.array([[1, 2 / math.sqrt(6), 1 / math.sqrt(3), 0], [2 / math.sqrt(6), 1, 0, 0],
                      [1 / math.sqrt(3), 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_allclose(sim[0], want0, atol=1e-6)
    # padding in the middle; an item listed twice is like itself
    want1 = np.array([[1, 0, 1 / math.sqrt(3), 1 / math.sqrt(3)], [0, 0, 0, 0],
                      [1 / math.sqrt(3), 0, 1, 1], [1 / math.sqrt(3), 0, 1, 1]])
    np.testing.assert_allclose(sim[1], want1, atol=1e-6)
    # repeated interactions count once
    twice = ItemSpace.cooccurrence(train * 3)
    np.testing.assert_allclose(twice.similarity(np.array([[0, 1, 2, 3]])), sim[:1], atol=1e-6)


def test_item_space_picks_text_then_learned_then_cooccurrence():
    train = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    sg = SemGraph(2, 3, text, dim=4, ids=False, layers=0)
    assert item_space(sg, None, train).name == "text"
    np.testing.assert_allclose(item_space(sg, None, train).vectors, text.numpy())
    scorer = EmbeddingScorer(torch.randn(2, 4), torch.randn(3, 4))
    assert item_space(object(), scorer, train).name == "learned"
    knn = ItemKNN(2, 3).fit(train)
    space = item_space(knn, knn, train)
    assert space.name == "cooccurrence" and space.incidence is not None


def test_item_counts_counts_every_training_interaction():
    assert item_counts(np.array([2, 0, 2, 2]), 4).tolist() == [1, 0, 3, 0]


# --------------------------------------------------------------------------- settings


def test_rerank_settings():
    assert not Rerank().active and Rerank(diversity=0.1).active and Rerank(novelty=0.5).active
    assert Rerank().pool_size(10) == DEFAULT_POOL == 100
    assert Rerank().pool_size(80) == 160  # max(100, 2k)
    assert Rerank(pool=30).pool_size(10) == 30 and Rerank(pool=5).pool_size(10) == 10  # never below k
    for bad in (dict(diversity=1.5), dict(diversity=-0.1), dict(novelty=-1), dict(novelty=11),
                dict(diversity=float("nan")), dict(pool=0), dict(pool=2.5)):
        with pytest.raises(ValueError):
            Rerank(**bad)
            pytest.fail(f"no ValueError for {bad}")


# --------------------------------------------------------------------------- hand-computed


def test_no_knob_returns_the_first_k_unchanged():
    scores = np.array([[5.0, 4.0, 3.0, -np.inf], [2.0, 1.0, 0.5, 0.1]])
    items = np.array([[7, 3, 1, 0], [0, 1, 2, 3]])
    s, i = rerank(scores, items, 3)
    assert i.tolist() == [[7, 3, 1], [0, 1, 2]]
    np.testing.assert_array_equal(s, scores[:, :3])
    s, i = rerank(scores, items, 10)  # k above the pool: the whole pool, padding kept as padding
    assert i.tolist() == [[7, 3, 1, -1], [0, 1, 2, 3]] and s[0, 3] == -np.inf


def test_novelty_divides_relevance_by_the_propensity():
    # pool of three, scores 3 > 2 > 1 -> z = (1.2247, 0, -1.2247) (population std sqrt(2/3))
    # counts 80, 15, 5 of N = 100: -ln p = ln(100/80), ln(100/15), ln(100/5)
    scores = np.array([[3.0, 2.0, 1.0]])
    items = np.array([[0, 1, 2]])
    counts = np.array([80, 15, 5])
    z = np.array([1, 0, -1]) / math.sqrt(2 / 3)
    surprisal = -np.log(counts / 100)
    for beta in (0.1, 0.5, 1.0, 2.0):
        want = np.argsort(-(z + beta * surprisal), kind="stable")
        _, got = rerank(scores, items, 3, novelty=beta, counts=counts)
        assert got[0].tolist() == want.tolist(), beta
    # by hand at beta = 1: 1.2247 + 0.2231 = 1.448; 0 + 1.8971 = 1.897; -1.2247 + 2.9957 = 1.771
    s, got = rerank(scores, items, 3, novelty=1.0, counts=counts)
    assert got[0].tolist() == [1, 2, 0]
    np.testing.assert_array_equal(s[0], [2.0, 1.0, 3.0])  # the model's scores travel with their items
    # an item never trained on (or past the counts) counts once, the most surprising:
    # z = (1, -1); item 0: 1 + beta ln(100/80), item 5: -1 + beta ln(100/1)
    #   beta = 0.3: 1.067 > 0.382 -> [0, 5];  beta = 1: 1.223 < 3.605 -> [5, 0]
    _, got = rerank(np.array([[3.0, 2.0]]), np.array([[0, 5]]), 2, novelty=0.3, counts=counts)
    assert got[0].tolist() == [0, 5]
    _, got = rerank(np.array([[3.0, 2.0]]), np.array([[0, 5]]), 2, novelty=1.0, counts=counts)
    assert got[0].tolist() == [5, 0]


def test_mmr_by_hand():
    # items 0, 1, 2, 3 scored 1.0, 0.9, 0.5, 0.0; vectors: 0 and 1 identical, 2 orthogonal,
    # 3 half-way between 0 and 2 (cos 0.7071 with both)
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    space = ItemSpace("text", vectors)
    scores = np.array([[1.0, 0.9, 0.5, 0.0]])
    items = np.array([[0, 1, 2, 3]])
    # r = (1, 0.9, 0.5, 0) (min-max). lambda = 0.5:
    #  step 1: max gain = 0.5 r -> item 0
    #  step 2: 0.5 r - 0.5 maxsim: item 1: 0.45 - 0.5 = -0.05; item 2: 0.25 - 0 = 0.25; item 3: 0 - 0.354 -> 2
    #  step 3: item 1: 0.45 - 0.5 = -0.05; item 3: 0 - 0.5 * 0.7071 = -0.354 -> 1
    #  step 4: 3
    _, got = rerank(scores, items, 4, diversity=0.5, space=space)
    assert got[0].tolist() == [0, 2, 1, 3]
    # lambda = 0.1: step 2: item 1: 0.81 - 0.1 = 0.71; item 2: 0.45; -> 1, then 2 (0.45 vs 3: -0.07)
    _, got = rerank(scores, items, 4, diversity=0.1, space=space)
    assert got[0].tolist() == [0, 1, 2, 3]
    # lambda = 1: the best first, then always the least similar to the list (ties: the better score)
    #  step 2: maxsim 1 (item 1), 0 (item 2), 0.7071 (item 3) -> 2; step 3: item 1: 1, item 3: 0.7071 -> 3
    _, got = rerank(scores, items, 4, diversity=1.0, space=space)
    assert got[0].tolist() == [0, 2, 3, 1]
    # redundancy="mean", lambda = 0.5: step 3 compares mean likeness to {0, 2}:
    #   item 1: 0.45 - 0.5 * (1 + 0)/2 = 0.2; item 3: 0 - 0.5 * 0.7071 = -0.354 -> 1, then 3
    _, got = rerank(scores, items, 4, diversity=0.5, space=space, redundancy="mean")
    assert got[0].tolist() == [0, 2, 1, 3]
    # lambda = 0.9: step 3: item 1: 0.09 - 0.45 = -0.36; item 3: 0 - 0.9 * 0.7071 = -0.636 -> 1 again;
    # with "max" item 1 costs 0.9 * 1 -> 0.09 - 0.9 = -0.81 < -0.636: item 3 first
    _, mean = rerank(scores, items, 4, diversity=0.9, space=space, redundancy="mean")
    _, most = rerank(scores, items, 4, diversity=0.9, space=space)
    assert mean[0].tolist() == [0, 2, 1, 3] and most[0].tolist() == [0, 2, 3, 1]


def test_mmr_stops_at_the_end_of_a_short_pool():
    space = ItemSpace("text", np.eye(4))
    s, i = rerank(np.array([[2.0, 1.0, -np.inf, -np.inf]]), np.array([[3, 1, 0, 2]]), 4, diversity=0.7,
                  space=space)
    assert i[0].tolist() == [3, 1, -1, -1] and np.isinf(s[0, 2:]).all()
    s, i = rerank(np.full((1, 3), -np.inf), np.array([[0, 1, 2]]), 2, diversity=0.5, novelty=1.0, space=space,
                  counts=np.ones(4, int))
    assert i.tolist() == [[-1, -1]]


def test_equal_scores_standardise_to_zero():
    # a pool whose scores are all equal: z = 0, so novelty alone decides, and MMR sees r = 0
    counts = np.array([1, 50, 10])
    _, got = rerank(np.array([[2.0, 2.0, 2.0]]), np.array([[1, 2, 0]]), 3, novelty=0.5, counts=counts)
    assert got[0].tolist() == [0, 2, 1]  # fewest interactions first


# --------------------------------------------------------------------------- naive loop


def _naive(scores, items, k, lam, beta, vectors, counts, redundancy="max"):
    """One list at a time, Python lists and the module's formulas written out."""
    out = []
    for s_row, i_row in zip(scores.tolist(), items.tolist()):
        pool = [(s, i) for s, i in zip(s_row, i_row) if math.isfinite(s) and i >= 0]
        if not pool:
            out.append([])
            continue
        mean = sum(s for s, _ in pool) / len(pool)
        std = math.sqrt(sum((s - mean) ** 2 for s, _ in pool) / len(pool))
        total = sum(counts)
        adj = []
        for s, i in pool:
            z = (s - mean) / std if std > 0 else 0.0
            n = counts[i] if i < len(counts) else 0
            adj.append(z - beta * math.log(max(n, 1) / total))
        if lam == 0:
            order = sorted(range(len(pool)), key=lambda j: -adj[j])[:k]
            out.append([pool[j][1] for j in order])
            continue
        lo, hi = min(adj), max(adj)
        rel = [(a - lo) / (hi - lo) if hi > lo else 0.0 for a in adj]

        def cos(a, b):
            va, vb = vectors[a], vectors[b]
            na, nb = math.sqrt(sum(x * x for x in va)), math.sqrt(sum(x * x for x in vb))
            return sum(x * y for x, y in zip(va, vb)) / (na * nb) if na and nb else 0.0

        picked: list[int] = []
        while len(picked) < min(k, len(pool)):
            best, best_gain = None, -math.inf
            for j in range(len(pool)):
                if j in picked:
                    continue
                likeness = [cos(pool[j][1], pool[p][1]) for p in picked]
                if redundancy == "max":
                    closest = max(likeness, default=0.0)
                else:
                    closest = sum(likeness) / len(likeness) if likeness else 0.0
                gain = (1 - lam) * rel[j] - lam * closest
                if gain > best_gain + 1e-9:
                    best, best_gain = j, gain
            picked.append(best)
        out.append([pool[j][1] for j in picked])
    return out


@pytest.mark.parametrize("lam,beta,redundancy", [(0.0, 0.7, "max"), (0.3, 0.0, "max"), (0.6, 0.4, "max"),
                                                 (1.0, 0.0, "max"), (0.9, 2.0, "max"), (0.4, 0.0, "mean"),
                                                 (0.8, 0.5, "mean")])
def test_matches_a_naive_loop(lam, beta, redundancy):
    rng = np.random.default_rng(int(lam * 10 + beta * 100))
    n_items, pool, k = 40, 12, 5
    vectors = rng.standard_normal((n_items, 6))
    counts = rng.integers(0, 30, n_items)
    items = np.stack([rng.choice(n_items, pool, replace=False) for _ in range(9)])
    scores = -np.sort(-rng.standard_normal((9, pool)), axis=1)  # best first
    scores[2, 8:] = -np.inf  # a short pool
    items[2, 8:] = -1
    s, got = rerank(scores, items, k, diversity=lam, novelty=beta, space=ItemSpace("text", vectors), counts=counts,
                    redundancy=redundancy)
    want = _naive(scores, items, k, lam, beta, vectors.tolist(), counts.tolist(), redundancy)
    assert [[i for i in row if i >= 0] for row in got.tolist()] == want
    for b in range(9):  # each returned score is the model's score of that item
        lookup = dict(zip(items[b].tolist(), scores[b].tolist()))
        assert all(lookup[i] == v for i, v in zip(got[b].tolist(), s[b].tolist()) if i >= 0)


def test_rows_are_independent_and_torch_input_works():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((30, 4))
    items = np.stack([rng.choice(30, 10, replace=False) for _ in range(300)])  # more than one chunk
    scores = -np.sort(-rng.standard_normal((300, 10)), axis=1)
    space = ItemSpace("learned", vectors)
    _, whole = rerank(scores, items, 4, diversity=0.5, space=space)
    _, one = rerank(scores[7:8], items[7:8], 4, diversity=0.5, space=space)
    assert whole[7].tolist() == one[0].tolist()
    _, from_torch = rerank(torch.from_numpy(scores), torch.from_numpy(items), 4, diversity=0.5, space=space)
    assert np.array_equal(from_torch, whole)


def test_bad_arguments_raise_value_error():
    scores, items = np.array([[1.0, 0.5]]), np.array([[0, 1]])
    space = ItemSpace("text", np.eye(2))
    bad = [
        dict(k=0),
        dict(k=2, diversity=2.0, space=space),
        dict(k=2, novelty=-1.0, counts=np.ones(2)),
        dict(k=2, diversity=0.5),  # no space
        dict(k=2, novelty=0.5),  # no counts
        dict(k=2, diversity=0.5, space=space, redundancy="sum"),
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            rerank(scores, items, **kwargs)
            pytest.fail(f"no ValueError for {kwargs}")
    with pytest.raises(ValueError, match="one shape"):
        rerank(scores, np.array([[0, 1, 2]]), 2)
    with pytest.raises(ValueError, match="exactly one"):
        ItemSpace("text")
