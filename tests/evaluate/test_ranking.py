"""Full-ranking and rating evaluation: hand-computed splits and a naive per-user loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from semrec.data.dataset import Interactions
from semrec.data.idmap import IdMap
from semrec.data.split import Split
from semrec.evaluate.ranking import (
    default_batch_size,
    evaluate_ranking,
    evaluate_rating,
    evaluated_users,
    ranking_metrics,
)
from semrec.models.rerank import ItemSpace, Rerank, rerank

L2 = math.log2
NAMES = ("recall", "ndcg", "precision", "hit", "mrr")


# --------------------------------------------------------------------------- helpers


def _inter(pairs: list[tuple[int, int]], ratings: list[float] | None = None) -> Interactions:
    u = np.array([p[0] for p in pairs], dtype=np.int64)
    i = np.array([p[1] for p in pairs], dtype=np.int64)
    r = None if ratings is None else np.asarray(ratings, dtype=np.float32)
    return Interactions(u, i, r)


def make_split(
    n_users: int,
    n_items: int,
    train: list[tuple[int, int]],
    test: list[tuple[int, int]],
    valid: list[tuple[int, int]] = (),
    cold_items: list[int] | None = None,
) -> Split:
    """A split whose internal indices equal the external ids ``0..n-1``."""
    return Split(
        spec="test",
        users=IdMap(range(n_users)),
        items=IdMap(range(n_items)),
        train=_inter(list(train)),
        valid=_inter(list(valid)),
        test=_inter(list(test)),
        cold_items=None if cold_items is None else np.asarray(cold_items, dtype=np.int64),
    )


class FixedScorer:
    """Scores read from a fixed ``(n_users, n_items)`` matrix; records every call."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = torch.as_tensor(np.asarray(scores, dtype=np.float64))  # (n_users, n_items)
        self.n_items = int(self.scores.shape[1])
        self.calls: list[tuple[np.ndarray, sp.csr_matrix]] = []

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        self.calls.append((users.copy(), history.copy()))
        return self.scores[torch.as_tensor(users, dtype=torch.long)]  # (B, n_items), a copy


def _rows(m: sp.csr_matrix) -> list[list[int]]:
    return [sorted(m.indices[m.indptr[r] : m.indptr[r + 1]].tolist()) for r in range(m.shape[0])]


# --------------------------------------------------------------------------- hand-computed


def _hand_split() -> tuple[Split, FixedScorer]:
    split = make_split(
        n_users=3,
        n_items=5,
        # user 0: train {2}, test {1, 3}; user 1: train {0}, valid {4}, no test;
        # user 2: train {1}, test {4}
        train=[(0, 2), (1, 0), (2, 1)],
        valid=[(1, 4)],
        test=[(0, 1), (0, 3), (2, 4)],
    )
    scores = [
        # user 0 ranks 2 > 3 > 0 > 1 > 4; 2 is a training item -> top-3 = [3, 0, 1]
        [0.8, 0.7, 0.95, 0.9, 0.1],
        # user 1 ranks 0 > 4 > 3 > 2 > 1; 0 is a training item -> top-1 = [4]
        [0.9, 0.1, 0.2, 0.3, 0.4],
        # user 2 ranks 1 > 0 > 2 > 3 > 4; 1 is a training item -> top-3 = [0, 2, 3], top-4 ends in 4
        [0.5, 0.9, 0.4, 0.3, 0.2],
    ]
    return split, FixedScorer(np.array(scores))


def test_hand_computed_test_part():
    split, scorer = _hand_split()
    got = evaluate_ranking(scorer, split, "test", ks=(1, 3))
    # users evaluated: 0 and 2 (user 1 has no test item)
    assert got["n_users"] == 2 and isinstance(got["n_users"], int)
    # @1: user 0 top-1 [3] hits (of |T| = 2); user 2 top-1 [0] misses
    #   recall    (1/2 + 0) / 2 = 0.25     precision (1/1 + 0) / 2 = 0.5
    #   ndcg      user 0: DCG 1/log2(2) = 1, IDCG over min(2, 1) = 1 slot = 1 -> (1 + 0) / 2 = 0.5
    #   hit, mrr  (1 + 0) / 2 = 0.5
    assert got["recall@1"] == pytest.approx(0.25, abs=1e-15)
    assert got["precision@1"] == pytest.approx(0.5, abs=1e-15)
    assert got["ndcg@1"] == pytest.approx(0.5, abs=1e-15)
    assert got["hit@1"] == pytest.approx(0.5, abs=1e-15)
    assert got["mrr@1"] == pytest.approx(0.5, abs=1e-15)
    # @3: user 0 top-3 [3, 0, 1] hits at ranks 1 and 3; user 2 top-3 [0, 2, 3] misses
    #   recall    (2/2 + 0) / 2 = 0.5      precision (2/3 + 0) / 2 = 1/3
    #   ndcg      user 0: (1/log2(2) + 1/log2(4)) / (1/log2(2) + 1/log2(3)); mean with 0
    #   hit       (1 + 0) / 2 = 0.5        mrr (1/1 + 0) / 2 = 0.5
    ndcg0 = (1 / L2(2) + 1 / L2(4)) / (1 / L2(2) + 1 / L2(3))
    assert got["recall@3"] == pytest.approx(0.5, abs=1e-15)
    assert got["precision@3"] == pytest.approx(1 / 3, abs=1e-15)
    assert got["ndcg@3"] == pytest.approx(ndcg0 / 2, rel=1e-14)
    assert got["hit@3"] == pytest.approx(0.5, abs=1e-15)
    assert got["mrr@3"] == pytest.approx(0.5, abs=1e-15)
    # coverage@1: {3} u {0} = 2 of 5 items; coverage@3: {3, 0, 1} u {0, 2, 3} = 4 of 5
    assert got["coverage@1"] == pytest.approx(2 / 5, abs=1e-15)
    assert got["coverage@3"] == pytest.approx(4 / 5, abs=1e-15)
    assert set(got) == {f"{n}@{k}" for n in (*NAMES, "coverage") for k in (1, 3)} | {"n_users"}
    # the scorer saw only users 0 and 2, with their train+valid rows as history
    users = np.concatenate([c[0] for c in scorer.calls])
    assert users.tolist() == [0, 2]
    assert _rows(sp.vstack([c[1] for c in scorer.calls]).tocsr()) == [[2], [1]]


def test_hand_computed_valid_part():
    split, scorer = _hand_split()
    got = evaluate_ranking(scorer, split, "valid", ks=(1,))
    # only user 1 has a validation item ({4}); history = train {0}; top-1 = [4] -> every metric 1
    assert got["n_users"] == 1
    for name in NAMES:
        assert got[f"{name}@1"] == 1.0, name
    assert got["coverage@1"] == pytest.approx(1 / 5, abs=1e-15)
    users, history = scorer.calls[0]
    assert users.tolist() == [1] and _rows(history) == [[0]]


def test_test_part_excludes_valid_items_but_valid_part_keeps_test_items():
    # one user: train {0}, valid {1}, test {2}; scores rank 1 > 2 > 0
    split = make_split(1, 4, train=[(0, 0)], valid=[(0, 1)], test=[(0, 2)])
    scorer = FixedScorer(np.array([[0.1, 0.9, 0.8, 0.0]]))
    # part="test": history train+valid = {0, 1} -> top-1 = [2], a hit
    assert evaluate_ranking(scorer, split, "test", ks=(1,))["recall@1"] == 1.0
    # part="valid": history train = {0}; test item 2 stays rankable -> top-2 = [1, 2]
    got = evaluate_ranking(scorer, split, "valid", ks=(2,))
    assert got["recall@2"] == 1.0  # 1 hit / |{1}|
    assert got["mrr@2"] == 1.0  # item 1 at rank 1
    got = evaluate_ranking(FixedScorer(np.array([[0.1, 0.8, 0.9, 0.0]])), split, "valid", ks=(2,))
    assert got["mrr@2"] == 0.5  # top-2 = [2, 1]: the validation item at rank 2


def test_items_scored_minus_inf_are_never_recommended():
    # user 0: test {2}, no train; scores [0.5, 0.1, -inf]; K = 3 -> list [0, 1], item 2 not listed
    split = make_split(1, 3, train=[], test=[(0, 2)])
    got = evaluate_ranking(FixedScorer(np.array([[0.5, 0.1, -np.inf]])), split, ks=(3,))
    assert got["recall@3"] == 0.0 and got["hit@3"] == 0.0
    assert got["precision@3"] == 0.0
    assert got["coverage@3"] == pytest.approx(2 / 3, abs=1e-15)  # {0, 1} of 3


def test_candidates_rank_among_candidates_only():
    # items 4 and 5 are cold (the candidates); items 0..3 score higher but are not candidates
    split = make_split(
        3,
        6,
        # user 0: test {1, 4} -> relevant among candidates {4}
        # user 1: test {2} only -> no relevant candidate, skipped
        # user 2: train {5}, test {4}
        train=[(0, 0), (1, 0), (2, 5)],
        test=[(0, 1), (0, 4), (1, 2), (2, 4)],
        cold_items=[4, 5],
    )
    scorer = FixedScorer(
        np.array(
            [
                [0.9, 0.8, 0.7, 0.6, 0.3, 0.5],  # user 0: among {4, 5}: 5 > 4 -> list [5, 4]
                [0.9, 0.8, 0.7, 0.6, 0.5, 0.3],
                [0.9, 0.8, 0.7, 0.6, 0.5, 0.3],  # user 2: 5 is a training item -> list [4]
            ]
        )
    )
    got = evaluate_ranking(scorer, split, ks=(1, 2), candidates=split.cold_items)
    assert got["n_users"] == 2
    # @1: user 0 [5] misses; user 2 [4] hits (|T| = 1)  -> every metric (0 + 1) / 2
    for name in NAMES:
        assert got[f"{name}@1"] == pytest.approx(0.5, abs=1e-15), name
    # @2: user 0 [5, 4]: hit at rank 2, |T ∩ candidates| = 1; user 2 [4] then nothing
    #   recall    (1/1 + 1/1) / 2 = 1
    #   precision (1/2 + 1/2) / 2 = 0.5     (user 2's short list still divides by K = 2)
    #   ndcg      user 0: (1/log2(3)) / 1; user 2: 1/1 -> (1/log2(3) + 1) / 2
    #   hit       1                         mrr (1/2 + 1/1) / 2 = 0.75
    assert got["recall@2"] == pytest.approx(1.0, abs=1e-15)
    assert got["precision@2"] == pytest.approx(0.5, abs=1e-15)
    assert got["ndcg@2"] == pytest.approx((1 / L2(3) + 1) / 2, rel=1e-14)
    assert got["hit@2"] == 1.0
    assert got["mrr@2"] == pytest.approx(0.75, abs=1e-15)
    # coverage over the 2 candidates: @1 {5, 4} = 2/2; @2 {5, 4} = 2/2
    assert got["coverage@1"] == 1.0 and got["coverage@2"] == 1.0
    # a torch tensor of candidates gives the same answer
    assert evaluate_ranking(scorer, split, ks=(1, 2), candidates=torch.tensor([5, 4])) == got


# --------------------------------------------------------------------------- naive loop


def _random_split(seed: int, n_users: int = 40, n_items: int = 30) -> tuple[Split, np.ndarray]:
    """Disjoint random train / valid / test per user; about a quarter of users without test."""
    rng = np.random.default_rng(seed)
    train, valid, test = [], [], []
    for u in range(n_users):
        perm = rng.permutation(n_items)
        n_tr, n_va = int(rng.integers(0, 9)), int(rng.integers(0, 4))
        n_te = int(rng.integers(0, 6)) if rng.random() > 0.25 else 0
        train += [(u, int(i)) for i in perm[:n_tr]]
        valid += [(u, int(i)) for i in perm[n_tr : n_tr + n_va]]
        test += [(u, int(i)) for i in perm[n_tr + n_va : n_tr + n_va + n_te]]
    if not test:
        test = [(0, int(rng.integers(n_items)))]
    split = make_split(n_users, n_items, train, test, valid)
    scores = rng.standard_normal((n_users, n_items))  # continuous: no ties
    return split, scores


def _naive(
    split: Split, scores: np.ndarray, part: str, ks: list[int], candidates: list[int] | None = None
) -> dict[str, float]:
    """The slow, obvious evaluation: one user at a time, with Python sets and sorts."""
    hist_parts = ["train", "valid"] if part == "test" else ["train"]
    history: dict[int, set[int]] = {}
    for p in hist_parts:
        inter = getattr(split, p)
        for u, i in zip(inter.users.tolist(), inter.items.tolist()):
            history.setdefault(u, set()).add(i)
    relevant: dict[int, set[int]] = {}
    inter = getattr(split, part)
    allowed = set(range(split.n_items)) if candidates is None else set(candidates)
    for u, i in zip(inter.users.tolist(), inter.items.tolist()):
        if i in allowed:
            relevant.setdefault(u, set()).add(i)
    users = sorted(u for u in relevant if relevant[u])

    sums = {f"{n}@{k}": 0.0 for n in NAMES for k in ks}
    covered: dict[int, set[int]] = {k: set() for k in ks}
    for u in users:
        rankable = [i for i in range(split.n_items) if i in allowed and i not in history.get(u, set())]
        ranked = sorted(rankable, key=lambda i: -scores[u, i])
        rel = relevant[u]
        for k in ks:
            top = ranked[:k]
            covered[k].update(top)
            hit = [i in rel for i in top]
            n_hit = sum(hit)
            dcg = sum(1 / math.log2(j + 2) for j, h in enumerate(hit) if h)
            idcg = sum(1 / math.log2(j + 2) for j in range(min(len(rel), k)))
            first = next((j for j, h in enumerate(hit) if h), None)
            sums[f"recall@{k}"] += n_hit / len(rel)
            sums[f"precision@{k}"] += n_hit / k
            sums[f"ndcg@{k}"] += dcg / idcg
            sums[f"hit@{k}"] += 1.0 if n_hit else 0.0
            sums[f"mrr@{k}"] += 0.0 if first is None else 1 / (first + 1)
    out = {key: v / len(users) for key, v in sums.items()}
    for k in ks:
        out[f"coverage@{k}"] = len(covered[k]) / len(allowed)
    out["n_users"] = len(users)
    return out


KS = [1, 3, 5, 10, 30, 40]  # 30 = every item, 40 > n_items


@pytest.mark.parametrize("part", ["test", "valid"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_loop(seed, part):
    split, scores = _random_split(seed)
    want = _naive(split, scores, part, KS)
    got = evaluate_ranking(FixedScorer(scores), split, part, ks=KS, batch_size=7)
    assert got["n_users"] == want["n_users"]
    assert want["n_users"] < split.n_users  # some users had nothing to evaluate and were skipped
    assert set(got) == set(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-15), key


@pytest.mark.parametrize("seed", [0, 3])
def test_matches_naive_loop_with_candidates(seed):
    split, scores = _random_split(seed)
    cand = np.random.default_rng(seed + 100).choice(split.n_items, size=12, replace=False)
    want = _naive(split, scores, "test", KS, candidates=cand.tolist())
    got = evaluate_ranking(FixedScorer(scores), split, "test", ks=KS, batch_size=5, candidates=cand)
    assert got["n_users"] == want["n_users"]
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-15), key


def test_naive_reference_sees_the_training_exclusion():
    # guard for the reference itself: scoring every training item highest must not change it,
    # because history items are excluded
    split, scores = _random_split(4)
    boosted = scores.copy()
    hist = split.matrix("train+valid").toarray() > 0
    boosted[hist] += 100.0
    want = _naive(split, scores, "test", KS)
    assert _naive(split, boosted, "test", KS) == want
    got = evaluate_ranking(FixedScorer(boosted), split, "test", ks=KS)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-15), key


# --------------------------------------------------------------------------- batching


def test_batch_size_does_not_change_results():
    split, scores = _random_split(5)
    results = [
        evaluate_ranking(FixedScorer(scores), split, ks=KS, batch_size=bs) for bs in (1, 2, 3, 16, 10_000)
    ]
    results.append(evaluate_ranking(FixedScorer(scores), split, ks=KS, memory_budget_mb=1e-4))
    for r in results[1:]:
        assert set(r) == set(results[0])
        for key in r:
            assert r[key] == pytest.approx(results[0][key], rel=1e-12, abs=1e-15), key


def test_memory_budget_sets_the_batch_size():
    split, scores = _random_split(6)
    # 5 users * 30 items * 4 bytes of float32 scores
    budget_mb = 5 * 30 * 4 / 2**20
    assert default_batch_size(30, budget_mb) == 5
    scorer = FixedScorer(scores)
    got = evaluate_ranking(scorer, split, ks=(5,), memory_budget_mb=budget_mb)
    sizes = [len(c[0]) for c in scorer.calls]
    assert max(sizes) == 5 and sum(sizes) == got["n_users"]
    assert len(sizes) == math.ceil(got["n_users"] / 5)


def test_default_batch_size():
    assert default_batch_size(1000, 1) == 2**20 // 4000  # 262 rows of 4000 bytes
    assert default_batch_size(40_981, 512) == 512 * 2**20 // (4 * 40_981)
    assert default_batch_size(10**9, 1) == 1  # never below one user
    with pytest.raises(ValueError):
        default_batch_size(0, 1)
    with pytest.raises(ValueError):
        default_batch_size(10, 0)


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_raise_value_error():
    split, scorer = _hand_split()
    bad_calls = [
        dict(ks=(0, 10)),  # K <= 0
        dict(ks=()),  # no K
        dict(ks=(2.5,)),  # not an integer
        dict(part="train"),  # nothing to compare training against
        dict(batch_size=0),
        dict(candidates=np.array([0, 5])),  # item 5 outside 0..4
        dict(candidates=np.array([], dtype=np.int64)),
        dict(candidates=np.array([[0, 1]])),  # not 1-D
        dict(candidates=np.array([0, 2])),  # no user has a test item among the candidates
    ]
    for kwargs in bad_calls:
        with pytest.raises(ValueError):
            evaluate_ranking(scorer, split, **kwargs)
            pytest.fail(f"no ValueError for {kwargs}")


def test_bad_scorer_output_raises_value_error():
    split, scorer = _hand_split()

    class WrongWidth(FixedScorer):
        def score(self, users, history):
            return super().score(users, history)[:, :4]  # (B, 4), not (B, 5)

    with pytest.raises(ValueError, match="expected a tensor of shape"):
        evaluate_ranking(WrongWidth(scorer.scores.numpy()), split)

    nan_scores = scorer.scores.numpy().copy()
    nan_scores[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ranking(FixedScorer(nan_scores), split)

    with pytest.raises(ValueError, match="items"):
        evaluate_ranking(FixedScorer(np.zeros((3, 6))), split)  # scorer knows 6 items, split has 5


def test_no_user_with_test_items_raises():
    split = make_split(2, 3, train=[(0, 0)], test=[], valid=[(1, 1)])
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate_ranking(FixedScorer(np.zeros((2, 3))), split, "test")


# --------------------------------------------------------------------------- rating


def _rated_split() -> Split:
    return Split(
        spec="test",
        users=IdMap(range(3)),
        items=IdMap(range(3)),
        train=_inter([(0, 0), (1, 1)], [5.0, 1.0]),
        valid=_inter([(2, 2)], [2.0]),
        test=_inter([(0, 1), (1, 2), (2, 0)], [4.0, 2.0, 3.0]),
    )


def test_evaluate_rating_known_numbers():
    split = _rated_split()
    table = np.array([[9.0, 3.5, 9.0], [9.0, 9.0, 2.0], [5.0, 9.0, 4.0]])  # prediction per (user, item)
    seen = []

    def predict(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        seen.append((users.tolist(), items.tolist()))
        return table[users, items]

    got = evaluate_rating(predict, split, "test")
    assert seen == [([0, 1, 2], [1, 2, 0])]
    # test pairs (0,1) (1,2) (2,0): predictions 3.5, 2.0, 5.0 against ratings 4, 2, 3
    # errors -0.5, 0, 2 -> rmse = sqrt((0.25 + 0 + 4) / 3), mae = (0.5 + 0 + 2) / 3
    assert got == {
        "rmse": pytest.approx(math.sqrt(4.25 / 3), rel=1e-15),
        "mae": pytest.approx(2.5 / 3, rel=1e-15),
    }
    # valid: pair (2,2) predicted 4.0 against 2 -> both 2
    assert evaluate_rating(predict, split, "valid") == {"rmse": 2.0, "mae": 2.0}
    # train+valid: (0,0) 9 vs 5, (1,1) 9 vs 1, (2,2) 4 vs 2 -> errors 4, 8, 2
    got = evaluate_rating(predict, split, "train+valid")
    assert got["rmse"] == pytest.approx(math.sqrt((16 + 64 + 4) / 3), rel=1e-15)
    assert got["mae"] == pytest.approx((4 + 8 + 2) / 3, rel=1e-15)
    # a torch tensor of predictions works too
    as_tensor = evaluate_rating(lambda u, i: torch.as_tensor(table[u, i]), split)
    assert as_tensor == evaluate_rating(predict, split)


def test_evaluate_rating_bad_input():
    split = _rated_split()
    with pytest.raises(ValueError, match="returned shape"):
        evaluate_rating(lambda u, i: np.zeros(len(u) + 1), split)
    with pytest.raises(ValueError, match="part"):
        evaluate_rating(lambda u, i: np.zeros(len(u)), split, "tset")
    no_ratings = make_split(2, 2, train=[(0, 0)], test=[(1, 1)])
    with pytest.raises(ValueError, match="no ratings"):
        evaluate_rating(lambda u, i: np.zeros(len(u)), no_ratings)


# --------------------------------------------------------------------------- beyond accuracy


def test_beyond_hand_computed():
    split, scorer = _hand_split()
    # item vectors: 3 and 0 point the same way, 1 and 4 another, 2 in between
    space = ItemSpace("text", np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    got = evaluate_ranking(scorer, split, "test", ks=(1, 3), beyond=True, space=space)
    # training counts (1, 1, 1, 0, 0), N = 3; head = ceil(0.2 * 5) = 1 item: item 0 (ties by index)
    # lists: user 0 @1 [3], @3 [3, 0, 1]; user 2 @1 [0], @3 [0, 2, 3]
    # novelty: every listed item counts at most once -> -log2(1/3) each
    assert got["novelty@1"] == pytest.approx(L2(3), rel=1e-15)
    assert got["novelty@3"] == pytest.approx(L2(3), rel=1e-15)
    # popularity @1: (0 + 1) / 2; @3: user 0 (0 + 1 + 1) / 3, user 2 (1 + 1 + 0) / 3
    assert got["popularity@1"] == pytest.approx(0.5, rel=1e-15)
    assert got["popularity@3"] == pytest.approx(2 / 3, rel=1e-15)
    # tail @1: user 0 item 3 (tail), user 2 item 0 (head) -> 1/2; @3: 2/3 each
    assert got["tail@1"] == pytest.approx(0.5, rel=1e-15)
    assert got["tail@3"] == pytest.approx(2 / 3, rel=1e-15)
    # exposure @1 (1, 0, 0, 1, 0): sorted 0 0 0 1 1 -> gini (2*4-6 + 2*5-6) / (5 * 2) = 0.6, entropy ln 2
    assert got["gini@1"] == pytest.approx(0.6, rel=1e-15)
    assert got["entropy@1"] == pytest.approx(math.log(2), rel=1e-15)
    # exposure @3 (2, 1, 1, 2, 0): sorted 0 1 1 2 2 -> (-2*1 + 0*1 + 2*2 + 4*2) / (5 * 6) = 1/3
    assert got["gini@3"] == pytest.approx(1 / 3, rel=1e-15)
    assert got["entropy@3"] == pytest.approx(-(2 / 3 * math.log(1 / 3) + 1 / 3 * math.log(1 / 6)), rel=1e-15)
    # diversity @3: user 0 cos(3,0) = 1, (3,1) = 0, (0,1) = 0 -> 1 - 1/3; user 2 cos(0,2) = r, (0,3) = 1,
    # (2,3) = r -> 1 - (1 + 2r)/3; @1: no pair in any list -> left out
    r = 1 / math.sqrt(2)
    assert got["diversity@3"] == pytest.approx(((1 - 1 / 3) + (1 - (1 + 2 * r) / 3)) / 2, rel=1e-6)
    assert "diversity@1" not in got
    # users by training interactions (1 and 1; ties by index): user 0 low, user 2 mid, none high
    assert got["recall_users_low@3"] == 1.0 and got["recall_users_mid@3"] == 0.0
    assert got["ndcg_users_low@1"] == pytest.approx(1.0) and "recall_users_high@3" not in got
    # item groups: no test item is in the head -> head keys left out; tail: users 0 ({1, 3}) and 2 ({4})
    #   recall_tail@3 (2/2 + 0) / 2; @1: user 0 [3] hits one of 2 -> (1/2 + 0) / 2
    assert "recall_head@3" not in got and "ndcg_head@1" not in got
    assert got["recall_tail@3"] == pytest.approx(0.5, rel=1e-15)
    assert got["recall_tail@1"] == pytest.approx(0.25, rel=1e-15)
    assert got["ndcg_tail@3"] == pytest.approx(got["ndcg@3"], rel=1e-15)  # every test item is a tail item
    assert got["beyond"] == {
        "diversity_space": "text",
        "head": {"share": 0.2, "n_items": 1, "min_train": 1},
        "user_groups": {"low": {"n_users": 1, "min_train": 1, "max_train": 1},
                        "mid": {"n_users": 1, "min_train": 1, "max_train": 1}},
    }
    # the accuracy keys do not change
    plain = evaluate_ranking(scorer, split, "test", ks=(1, 3))
    assert {k: got[k] for k in plain} == plain


def _naive_beyond(split: Split, scores: np.ndarray, ks: list[int], vectors: np.ndarray,
                  lists: dict[int, list[int]] | None = None) -> dict[str, float]:
    """The beyond-accuracy keys one user at a time (test part, all items)."""
    history: dict[int, set[int]] = {}
    for p in ("train", "valid"):
        inter = getattr(split, p)
        for u, i in zip(inter.users.tolist(), inter.items.tolist()):
            history.setdefault(u, set()).add(i)
    relevant: dict[int, set[int]] = {}
    for u, i in zip(split.test.users.tolist(), split.test.items.tolist()):
        relevant.setdefault(u, set()).add(i)
    users = sorted(relevant)
    counts = [0] * split.n_items
    for i in split.train.items.tolist():
        counts[i] += 1
    total = sum(counts)
    head = set(sorted(range(split.n_items), key=lambda i: (-counts[i], i))[: math.ceil(0.2 * split.n_items)])
    activity = {u: 0 for u in users}
    for u in split.train.users.tolist():
        if u in activity:
            activity[u] += 1
    by_activity = sorted(users, key=lambda u: (activity[u], u))
    group = {u: ("low", "mid", "high")[r * 3 // len(users)] for r, u in enumerate(by_activity)}

    def cos(a, b):
        return float(vectors[a] @ vectors[b] / (np.linalg.norm(vectors[a]) * np.linalg.norm(vectors[b])))

    def ndcg(hit, n_rel, k):
        dcg = sum(1 / math.log2(j + 2) for j, h in enumerate(hit) if h)
        return dcg / sum(1 / math.log2(j + 2) for j in range(min(n_rel, k)))

    out: dict[str, float] = {}
    for k in ks:
        acc: dict[str, list[float]] = {}
        seen_counts = [0] * split.n_items
        for u in users:
            if lists is None:
                ranked = sorted((i for i in range(split.n_items) if i not in history.get(u, set())),
                                key=lambda i: -scores[u, i])
            else:
                ranked = lists[u]
            top = ranked[:k]
            for i in top:
                seen_counts[i] += 1
            acc.setdefault("novelty", []).append(sum(-math.log2(max(counts[i], 1) / total) for i in top) / len(top))
            acc.setdefault("popularity", []).append(sum(counts[i] for i in top) / len(top))
            acc.setdefault("tail", []).append(sum(i not in head for i in top) / len(top))
            pairs = [(a, b) for x, a in enumerate(top) for b in top[x + 1 :]]
            if pairs:
                acc.setdefault("diversity", []).append(1 - sum(cos(a, b) for a, b in pairs) / len(pairs))
            rel = relevant[u]
            hit = [i in rel for i in top]
            acc.setdefault(f"recall_users_{group[u]}", []).append(sum(hit) / len(rel))
            acc.setdefault(f"ndcg_users_{group[u]}", []).append(ndcg(hit, len(rel), k))
            for name, members in (("head", head), ("tail", set(range(split.n_items)) - head)):
                rel_g = rel & members
                if rel_g:
                    hit_g = [i in rel_g for i in top]
                    acc.setdefault(f"recall_{name}", []).append(sum(hit_g) / len(rel_g))
                    acc.setdefault(f"ndcg_{name}", []).append(ndcg(hit_g, len(rel_g), k))
        for name, values in acc.items():
            out[f"{name}@{k}"] = sum(values) / len(values)
        e = sorted(seen_counts)
        n = len(e)
        out[f"gini@{k}"] = sum((2 * r - n - 1) * x for r, x in enumerate(e, 1)) / (n * sum(e))
        out[f"entropy@{k}"] = -sum(x / sum(e) * math.log(x / sum(e)) for x in e if x)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beyond_matches_naive_loop(seed):
    split, scores = _random_split(seed)
    vectors = np.random.default_rng(seed + 50).standard_normal((split.n_items, 4))
    ks = [1, 3, 10]
    want = _naive_beyond(split, scores, ks, vectors)
    got = evaluate_ranking(FixedScorer(scores), split, "test", ks=ks, batch_size=7, beyond=True,
                           space=ItemSpace("learned", vectors))
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-12), key
    beyond_keys = {k for k in got if "@" in k} - {f"{n}@{k}" for n in (*NAMES, "coverage") for k in ks}
    assert beyond_keys == set(want)


def test_ranking_metrics_of_lists_equal_the_evaluator():
    split, scores = _random_split(7)
    got = evaluate_ranking(FixedScorer(scores), split, "test", ks=KS, beyond=True,
                           space=ItemSpace.cooccurrence(split.matrix("train")))
    users = evaluated_users(split, "test")
    hist = split.matrix("train+valid").toarray() > 0
    masked = np.where(hist, -np.inf, scores)[users]
    lists = np.argsort(-masked, axis=1, kind="stable")  # (N, n_items), every item
    lists[np.take_along_axis(masked, lists, axis=1) == -np.inf] = -1
    again = ranking_metrics(lists, split, "test", ks=KS, beyond=True,
                            space=ItemSpace.cooccurrence(split.matrix("train")))
    assert set(again) == set(got) and again["beyond"] == got["beyond"]
    for key in got:
        if key != "beyond":
            assert again[key] == pytest.approx(got[key], rel=1e-12, abs=1e-15), key
    with pytest.raises(ValueError, match="one row per evaluated user"):
        ranking_metrics(lists[1:], split, "test", ks=KS)
    with pytest.raises(ValueError, match="needs"):
        ranking_metrics(lists[:, :3], split, "test", ks=KS)


@pytest.mark.parametrize("lam,beta", [(0.5, 0.0), (0.0, 0.8), (0.3, 0.3)])
def test_reranked_evaluation_matches_reranking_each_pool(lam, beta):
    split, scores = _random_split(11)
    vectors = np.random.default_rng(3).standard_normal((split.n_items, 4))
    space = ItemSpace("text", vectors)
    settings = Rerank(diversity=lam, novelty=beta, pool=12)
    ks = [1, 3, 5]
    got = evaluate_ranking(FixedScorer(scores), split, "test", ks=ks, batch_size=5, beyond=True, space=space,
                           rerank=settings)
    # by hand: each user's 12 best unseen items by score, re-ranked alone, measured naively
    counts = np.bincount(split.train.items, minlength=split.n_items)
    hist = split.matrix("train+valid").toarray() > 0
    lists = {}
    for u in evaluated_users(split, "test").tolist():
        ranked = [i for i in np.argsort(-scores[u], kind="stable").tolist() if not hist[u, i]][:12]
        pool_s = np.array([[scores[u, i] for i in ranked]])
        _, picked = rerank(pool_s, np.array([ranked]), 5, diversity=lam, novelty=beta, space=space, counts=counts)
        lists[u] = [i for i in picked[0].tolist() if i >= 0]
    want = _naive_beyond(split, scores, ks, vectors, lists)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-12), key
    assert got["ndcg@5"] != evaluate_ranking(FixedScorer(scores), split, "test", ks=ks)["ndcg@5"]


def test_inactive_rerank_changes_nothing_and_diversity_needs_a_space():
    split, scores = _random_split(12)
    plain = evaluate_ranking(FixedScorer(scores), split, "test", ks=KS)
    assert evaluate_ranking(FixedScorer(scores), split, "test", ks=KS, rerank=Rerank()) == plain
    with pytest.raises(ValueError, match="item space"):
        evaluate_ranking(FixedScorer(scores), split, "test", ks=KS, rerank=Rerank(diversity=0.2))
