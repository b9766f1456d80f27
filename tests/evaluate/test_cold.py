"""Cold sections of an evaluation: the same metrics over held-out items, held-out users
and users with little training history."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from semrec.data.dataset import Interactions
from semrec.data.idmap import IdMap
from semrec.data.split import Split
from semrec.evaluate.cold import cold_sections
from semrec.evaluate.ranking import evaluate_ranking
from semrec.models.rerank import ItemSpace, Rerank


class FixedScores:
    """Scores ``s(u, i) = table[u, i]`` whatever the history."""

    def __init__(self, table):
        self.table = torch.as_tensor(table, dtype=torch.float32)
        self.n_items = self.table.shape[1]

    def score(self, users, history: sp.csr_matrix) -> torch.Tensor:
        return self.table[torch.as_tensor(users)].clone()


def _split(train, valid, test, n_users=3, n_items=5, **extra) -> Split:
    def inter(pairs):
        arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        return Interactions(arr[:, 0], arr[:, 1])

    extra = {k: inter(v) if k == "support" else np.asarray(v) for k, v in extra.items()}
    return Split("toy", IdMap(f"u{i}" for i in range(n_users)), IdMap(f"i{i}" for i in range(n_items)),
                 inter(train), inter(valid), inter(test), **extra)


def test_cold_items_are_ranked_among_the_held_out_items():
    # items 3 and 4 held out; user 0 tests on item 4, user 1 on item 3
    split = _split([(0, 0), (1, 1), (2, 2)], [], [(0, 4), (1, 3)], cold_items=[3, 4])
    table = [[9, 8, 7, 1, 2],   # over all items item 4 is 4th; among cold items 1st
             [9, 8, 7, 1, 2],   # item 3 is last overall; among cold items 2nd
             [0, 0, 0, 0, 0]]
    out = cold_sections(FixedScores(table), split, ks=(1,))
    cold = out["cold"]
    assert cold["entity"] == "items" and cold["n_items"] == 2 and cold["n_users"] == 2
    assert cold["hit@1"] == pytest.approx(0.5)  # user 0 hit, user 1 miss
    assert cold["ndcg@1"] == pytest.approx(0.5)
    overall = evaluate_ranking(FixedScores(table), split, "test", ks=(1,))
    assert overall["hit@1"] == 0.0  # the warm items crowd them out over all items


def test_cold_users_are_scored_from_their_support_only():
    # user 2 never trained; support item 0, test item 1
    split = _split([(0, 0), (0, 1), (1, 2)], [], [(2, 1), (2, 3)], n_users=3, n_items=4,
                   support=[(2, 0)], cold_users=[2])

    class HistoryEcho:
        n_items = 4

        def score(self, users, history):
            self.seen = history.toarray()
            return torch.tensor([[0.0, 3.0, 1.0, 2.0]] * len(users))

    scorer = HistoryEcho()
    out = cold_sections(scorer, split, ks=(2,))
    assert out["cold"]["entity"] == "users" and out["cold"]["n_users"] == 1 and out["cold"]["support"] == 1
    assert scorer.seen.tolist() == [[1, 0, 0, 0]]  # the support is its whole history
    assert out["cold"]["recall@2"] == pytest.approx(1.0)  # items 1 and 3 top the list


def test_sparse_users_are_those_with_few_training_interactions():
    train = [(0, i) for i in range(4)] + [(1, 0), (1, 1)]
    split = _split(train, [], [(0, 4), (1, 4)], n_users=2, n_items=5)
    table = [[0, 0, 0, 0, 1], [0, 0, 0, 1, 0]]  # user 0 hits at 1, user 1 misses
    out = cold_sections(FixedScores(table), split, ks=(1,), sparse_max_train=2)
    assert "cold" not in out
    assert out["sparse_users"]["max_train"] == 2 and out["sparse_users"]["n_users"] == 1
    assert out["sparse_users"]["hit@1"] == 0.0
    assert cold_sections(FixedScores(table), split, ks=(1,), sparse_max_train=4)["sparse_users"]["hit@1"] == 0.5


def test_cold_sections_re_rank_as_the_main_evaluation_does():
    # items 2, 3, 4 held out; 2 and 3 have the same text, 4 another. User 0 tests on item 4,
    # user 1 on 2 and 3; both rank 2 > 3 > 4. Plain top-2 among the held-out items: [2, 3]
    # (user 0 misses, user 1 hits both). MMR with lambda = 1 takes 2, then the item least
    # like it, 4: user 0 hits at rank 2, user 1 hits once (of 2)
    split = _split([(0, 0), (1, 1), (2, 0)], [], [(0, 4), (1, 2), (1, 3)], cold_items=[2, 3, 4])
    table = [[9, 8, 3, 2, 1], [9, 8, 3, 2, 1], [0, 0, 0, 0, 0]]
    space = ItemSpace("text", np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 1, 0]]))
    plain = cold_sections(FixedScores(table), split, ks=(2,))["cold"]
    assert plain["recall@2"] == pytest.approx((0 + 1) / 2)
    rerank = Rerank(diversity=1.0)
    again = cold_sections(FixedScores(table), split, ks=(2,), rerank=rerank, space=space)["cold"]
    assert again["recall@2"] == pytest.approx((1 + 0.5) / 2) and again["mrr@2"] == pytest.approx((0.5 + 1) / 2)
    assert again["coverage@2"] == pytest.approx(2 / 3)  # items 2 and 4: the lists stay among the candidates
    direct = evaluate_ranking(FixedScores(table), split, "test", ks=(2,), candidates=split.cold_items,
                              rerank=rerank, space=space)
    assert {k: again[k] for k in direct} == direct
