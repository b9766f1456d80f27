"""Cold start through the Python API: new items from text, new users from items, a
sentence or profile fields, on the books folder whose answer is known (sci-fi readers
u0-u19, cooking readers u20-u39)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from semrec.artifacts.run import load_run
from semrec.errors import SemrecError
from semrec.inference.coldstart import (
    anonymous_scores,
    item_vector_from_text,
    recommend_anonymous,
    render_profile,
    user_vector,
)
from semrec.pipeline import build_config, train_and_save

SCIFI_ITEMS = {f"b{i}" for i in range(8)}
COOKING_ITEMS = {f"b{i}" for i in range(8, 16)}


def _train(books, out, model, *sets):
    config = build_config(model, split="leave-one-out", sets=["progress=false", *sets])
    return load_run(train_and_save(str(books), config, out).path)


@pytest.fixture(scope="module")
def semgraph(books, tmp_path_factory):
    return _train(books, tmp_path_factory.mktemp("cold") / "semgraph", "semgraph",
                  "epochs=15", "dim=16", "batch_size=64", "lr=0.01", "seed=1")


@pytest.fixture(scope="module")
def semantic(books, tmp_path_factory):
    return _train(books, tmp_path_factory.mktemp("cold") / "semantic", "semantic")


@pytest.fixture(scope="module")
def mf(books, tmp_path_factory):
    return _train(books, tmp_path_factory.mktemp("cold") / "mf", "mf", "epochs=15", "dim=16",
                  "batch_size=64", "lr=0.01")


def _rank(scores: torch.Tensor, i: int) -> int:
    return int((scores > scores[i]).sum())


def test_a_brand_new_item_is_recommended_to_the_users_whose_history_matches(semgraph):
    run = semgraph
    v = item_vector_from_text(run, "A space pirate steals a starship and flees to another galaxy")
    assert v.shape == (run.scorer.item_emb.shape[1],)
    users = run.scorer.user_emb.float()  # (n_users, d)
    scores = users @ v  # the new item's score for every user
    scifi = torch.as_tensor(run.users.indices([f"u{u}" for u in range(20)]))
    cooking = torch.as_tensor(run.users.indices([f"u{u}" for u in range(20, 40)]))
    assert scores[scifi].mean() > scores[cooking].mean()
    # for the sci-fi readers it outranks most cooking items they have not seen
    items = run.scorer.item_emb.float()
    cook_idx = torch.as_tensor(run.items.indices(sorted(COOKING_ITEMS)))
    beats = [(scores[u] > (users[u] @ items[cook_idx].T)).float().mean() for u in scifi]
    assert float(torch.stack(beats).mean()) > 0.8


def test_new_item_embedding_lies_near_the_items_its_text_resembles(semgraph):
    run = semgraph
    v = item_vector_from_text(run, "Baking bread and sweet pastries in a home kitchen")
    items = torch.nn.functional.normalize(run.scorer.item_emb.float(), dim=1)
    nearest = torch.topk(items @ torch.nn.functional.normalize(v, dim=0), 4).indices.tolist()
    assert set(run.items.to_external(nearest)) <= COOKING_ITEMS


@pytest.mark.parametrize("fixture", ["semgraph", "semantic"])
def test_a_text_only_user_gets_on_topic_items(request, fixture):
    run = request.getfixturevalue(fixture)
    space = recommend_anonymous(run, text="I like stories about spaceships, aliens and robots", k=5)
    food = recommend_anonymous(run, text="I love recipes, baking and cooking dinner", k=5)
    assert len(space) == 5 and all(it["title"] for it in space)
    assert sum(it["item"] in SCIFI_ITEMS for it in space) >= 4, space
    assert sum(it["item"] in COOKING_ITEMS for it in food) >= 4, food


@pytest.mark.parametrize("fixture", ["semgraph", "mf", "semantic"])
def test_an_anonymous_user_is_folded_in_from_a_few_items(request, fixture):
    run = request.getfixturevalue(fixture)
    got = recommend_anonymous(run, ["b0", "b1", "b2"], k=5)
    ids = [it["item"] for it in got]
    assert not {"b0", "b1", "b2"} & set(ids)  # what they gave is not recommended back
    assert sum(i in SCIFI_ITEMS for i in ids) >= 4, got


def test_fold_in_of_a_known_user_moves_them_towards_their_new_items(mf):
    run = mf
    u = run.users.index("u0")  # a sci-fi reader
    cooking = run.items.indices(["b8", "b9", "b10"])
    before = anonymous_scores(run, [], user=u)
    after = anonymous_scores(run, cooking, user=u)
    others = np.setdiff1d(np.asarray(run.items.indices(sorted(COOKING_ITEMS))), cooking)
    assert float((after[others] - before[others]).mean()) > 0  # other cooking items rise at once
    trained = user_vector(run, run.split.matrix("train")[u].indices, user=u)
    assert torch.allclose(trained, run.scorer.user_emb[u].float())  # nothing new: unchanged


def test_a_new_user_from_profile_fields(semgraph):
    run = semgraph
    assert render_profile(run, {"occupation": "astronomer"}).count("astronomer") == 1
    got = recommend_anonymous(run, profile={"occupation": "astronomer"}, k=16)
    assert len(got) == 16  # a full ranking from the profile alone
    with pytest.raises(SemrecError, match="unknown profile field.*age.*occupation"):
        recommend_anonymous(run, profile={"age": "25"})


def test_nothing_known_falls_back_to_popularity(mf):
    scores = anonymous_scores(mf, [])
    counts = np.bincount(mf.split.train.items, minlength=len(mf.items))
    assert np.array_equal(scores.numpy(), counts.astype(np.float32))


def test_bad_requests_are_clear_errors(mf, semgraph):
    with pytest.raises(SemrecError, match="unknown item id.*nope"):
        recommend_anonymous(mf, ["b0", "nope"])
    with pytest.raises(SemrecError, match="without text"):
        recommend_anonymous(mf, text="space")
    with pytest.raises(SemrecError, match="cannot embed a new item"):
        item_vector_from_text(mf, "space")
    with pytest.raises(SemrecError, match="empty"):
        item_vector_from_text(semgraph, "  ")
    with pytest.raises(SemrecError, match="unknown user"):
        recommend_anonymous(mf, ["b0"], user="nobody")


def write_alternating(folder):
    """Every user alternates: a sci-fi book, then a cooking book, then sci-fi, ...: what
    follows a sci-fi book is always a cooking one."""
    import pandas as pd

    from tests.conftest import COOKING, SCIFI

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        scifi, cooking = rng.permutation(8), rng.permutation(8)
        for j in range(8):
            book = f"b{scifi[j // 2]}" if j % 2 == 0 else f"b{8 + cooking[j // 2]}"
            rows.append((f"u{u}", book, 1_000 + j))
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(folder / "interactions.csv", index=False)
    pd.DataFrame({"item_id": [f"b{i}" for i in range(16)], "title": SCIFI + COOKING}).to_csv(
        folder / "items.csv", index=False)
    return folder


def test_a_sentence_brings_what_it_asks_for_not_what_follows_it(tmp_path, monkeypatch):
    """The transformer tower learns that cooking follows sci-fi; a user who says they want
    sci-fi still gets sci-fi first (the sentence's own text match), ordered by the model."""
    from semrec.inference import coldstart

    data = write_alternating(tmp_path / "alternating")
    run = _train(data, tmp_path / "run", "semgraph", "epochs=30", "dim=16", "hidden=32", "batch_size=16",
                 "lr=0.01", "knn=5", "max_len=10", "seed=0", "patience=100")
    assert run.model_config.user_tower == "transformer"
    query = "Stories about starships, aliens and robots in deep space"
    monkeypatch.setattr(coldstart, "SENTENCE_WEIGHT", 0.0)  # the tower alone: what follows sci-fi
    tower = [it["item"] for it in recommend_anonymous(run, text=query, k=4)]
    assert sum(i in COOKING_ITEMS for i in tower) >= 3, tower
    monkeypatch.undo()
    asked = [it["item"] for it in recommend_anonymous(run, text=query, k=4)]
    assert set(asked) <= SCIFI_ITEMS, asked
