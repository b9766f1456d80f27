"""The contract every model of the catalogue keeps, through :class:`semrec.Recommender`
(as implicit's shared recommender test does for its models).

The toy has a known answer: 30 readers of science fiction (items s0-s7) and 10 of
cooking (c0-c7), every item with a title. Each reader knows 7 of the 8 books of their
kind and one is withheld from the data altogether; science fiction is the majority
taste, so even popularity ranks a science-fiction reader's withheld book above every
cooking book. Each model is fitted once (small dimensions, few epochs) and saved; tests
that change a model work on a copy loaded from that folder.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from semrec import Recommender
from semrec.errors import ConfigError, SemrecError
from semrec.models.catalog import MODELS
from tests.conftest import COOKING, SCIFI  # the books' titles

SCIFI_IDS = [f"s{j}" for j in range(8)]
COOKING_IDS = [f"c{j}" for j in range(8)]
N_ITEMS = len(SCIFI_IDS) + len(COOKING_IDS)
READERS = [f"u{u}" for u in range(30)]  # science fiction: the majority taste
COOKS = [f"u{u}" for u in range(30, 40)]
#: trainable models: small and quick, enough to learn two tastes
#: the models that place a sentence among their items, a new user known by text alone
#: (graphfilter-text reads item text to link items, and a new item through it, not sentences)
TEXT_SPACE_MODELS = ("semantic", "semgraph")
TRAIN = {"epochs": 40, "batch_size": 32, "lr": 0.05, "dim": 16}


def toy() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """``(interactions, items, withheld)``: each user's withheld book is in no table."""
    rng = np.random.default_rng(0)
    rows, withheld = [], {}
    for user in READERS + COOKS:
        order = rng.permutation(SCIFI_IDS if user in READERS else COOKING_IDS)
        withheld[user] = str(order[-1])
        rows += [(user, str(item), 100 + t) for t, item in enumerate(order[:-1])]
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    items = pd.DataFrame({"item_id": SCIFI_IDS + COOKING_IDS, "title": SCIFI + COOKING})
    return interactions, items, withheld


def settings(name: str) -> dict:
    extra = dict(TRAIN) if MODELS[name].kind == "trainable" else {}
    if name == "semgraph":
        extra["hidden"] = 32
    return {"progress": False, "tensorboard": False, **extra}


@pytest.fixture(scope="module", params=list(MODELS))
def fitted(request, tmp_path_factory):
    """``(name, fitted Recommender, its saved run folder, withheld)`` per catalogue model."""
    name = request.param
    interactions, items, withheld = toy()
    rec = Recommender(name, **settings(name)).fit(interactions, items=items, split="random:0.6/0.2/0.2")
    path = rec.save(tmp_path_factory.mktemp(f"contract-{name}") / "run")
    return name, rec, path, withheld


def assert_identical(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The same rows, ids, ranks and scores to the last bit."""
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def history(rec: Recommender, user: str) -> set[str]:
    return set(rec.history(user))


def test_it_recommends_the_withheld_item(fitted):
    _, rec, _, withheld = fitted
    top = rec.recommend(READERS, k=1)
    assert list(top["user"]) == READERS
    assert list(top["item"]) == [withheld[u] for u in READERS]


def test_seen_items_are_excluded_unless_asked(fitted):
    _, rec, _, _ = fitted
    every = rec.recommend(READERS + COOKS, k=N_ITEMS)
    for user, rows in every.groupby("user"):
        assert not set(rows["item"]) & history(rec, user)
        assert len(rows) == N_ITEMS - len(history(rec, user))
    kept = rec.recommend(["u0"], k=N_ITEMS, exclude_seen=False)
    assert set(kept["item"]) == set(SCIFI_IDS + COOKING_IDS)  # the whole catalogue, history included


def test_candidate_filters_are_honoured(fitted):
    _, rec, _, withheld = fitted
    allowed = COOKING_IDS[:3] + [withheld["u1"], SCIFI_IDS[0]]
    answer = rec.recommend(["u1"], k=10, items=allowed)
    assert set(answer["item"]) == set(allowed) - history(rec, "u1")
    assert answer["item"].iloc[0] == withheld["u1"]
    assert set(rec.recommend_for_history(["s0", "s1"], k=10, candidates=COOKING_IDS[:2])["item"]) <= set(COOKING_IDS[:2])


def test_k_larger_than_the_catalogue(fitted):
    _, rec, _, _ = fitted
    answer = rec.recommend(["u2"], k=1000)
    assert len(answer) == N_ITEMS - len(history(rec, "u2"))
    assert list(answer["rank"]) == list(range(1, len(answer) + 1))
    assert (np.diff(answer["score"].to_numpy()) <= 0).all()
    assert list(answer.columns) == ["user", "item", "score", "rank", "title"]
    assert answer.set_index("item")["title"].to_dict() == {i: t for i, t in zip(SCIFI_IDS + COOKING_IDS,
                                                                                SCIFI + COOKING) if i in set(answer["item"])}


def test_save_and_load_give_identical_scores(fitted, tmp_path):
    name, rec, path, _ = fitted
    loaded = Recommender.load(path)
    users = READERS + COOKS
    assert_identical(loaded.recommend(users, k=N_ITEMS, exclude_seen=False),
                                  rec.recommend(users, k=N_ITEMS, exclude_seen=False))
    # users known only by items: folded in, or encoded by the tower
    assert_identical(loaded.recommend_for_history(["s3", "s1", "c0"], k=N_ITEMS),
                                  rec.recommend_for_history(["s3", "s1", "c0"], k=N_ITEMS))
    query = "robots and starships in deep space"
    if name in TEXT_SPACE_MODELS:
        assert_identical(loaded.recommend_for_history(text=query), rec.recommend_for_history(text=query))
        assert_identical(loaded.similar_items(text=query), rec.similar_items(text=query))
    elif MODELS[name].text:  # reads text to build its item graph, but has no space for a sentence
        with pytest.raises(SemrecError, match="cannot read text; train semgraph or semantic"):
            loaded.recommend_for_history(text=query)
    # and after new events, of a known and of a new user: the grown run saves and loads too
    loaded.partial_fit(pd.DataFrame({"user_id": ["u0", "newcomer", "newcomer"], "item_id": ["c1", "s2", "s5"]}))
    again = Recommender.load(loaded.save(tmp_path / "grown"))
    assert_identical(again.recommend(["u0", "newcomer"], k=N_ITEMS, exclude_seen=False),
                                  loaded.recommend(["u0", "newcomer"], k=N_ITEMS, exclude_seen=False))


def test_a_new_event_takes_effect_at_once(fitted):
    name, _, path, withheld = fitted
    rec = Recommender.load(path)
    before = rec.recommend(["u3"], k=N_ITEMS, exclude_seen=False).set_index("item")["score"]
    rec.partial_fit(pd.DataFrame({"user_id": ["u3"], "item_id": [withheld["u3"]]}))
    after = rec.recommend(["u3"], k=N_ITEMS)
    assert withheld["u3"] not in set(after["item"])  # excluded at once
    assert withheld["u3"] in rec.history("u3")
    if name != "popularity":  # the scores themselves follow the user (popularity's follow nobody)
        moved = rec.recommend(["u3"], k=N_ITEMS, exclude_seen=False).set_index("item")["score"]
        assert not np.allclose(moved.loc[before.index].to_numpy(), before.to_numpy())
    # a user first seen in events gets recommendations of their taste, their items excluded
    rec.partial_fit(pd.DataFrame({"user_id": ["newcomer", "newcomer"], "item_id": ["s1", "s6"]}))
    fresh = rec.recommend(["newcomer"], k=3)
    assert fresh["item"].iloc[0] in SCIFI_IDS and not {"s1", "s6"} & set(fresh["item"])


def test_new_items_join_text_models_and_are_refused_by_others(fitted):
    name, _, path, withheld = fitted
    rec = Recommender.load(path)
    new = pd.DataFrame({"item_id": ["s-new"], "title": ["Starship crew explores a distant galaxy of robots"]})
    if not MODELS[name].text:
        with pytest.raises(ConfigError, match="cannot add items"):
            rec.partial_fit(items=new)
        assert "s-new" not in rec.items
        return
    rec.partial_fit(items=new)
    assert "s-new" in rec.items
    ranked = list(rec.recommend(["u4"], k=N_ITEMS + 1)["item"])
    assert ranked.index("s-new") < min(ranked.index(c) for c in COOKING_IDS)  # recommended right away
    rec.partial_fit(pd.DataFrame({"user_id": ["u4"], "item_id": ["s-new"]}))
    assert "s-new" not in set(rec.recommend(["u4"], k=N_ITEMS + 1)["item"])
