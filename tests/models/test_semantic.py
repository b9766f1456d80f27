"""The text-only recommender on a toy catalogue encoded by the real MiniLM."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from semrec.config import from_dict, to_dict
from semrec.errors import ConfigError, DataError
from semrec.models.semantic import SemanticConfig, SemanticModel, recency_weights
from semrec.models.topk import topk
from semrec.text.encoder import TextEncoder

SCIFI = [0, 1, 2, 3]
COOKING = [4, 5, 6, 7]
TITLES = [
    "Starship Troopers: soldiers fight alien bugs on a distant planet",
    "2001: A Space Odyssey, a voyage to Jupiter with a rogue computer",
    "Dune: desert planet, spice and interstellar empires",
    "The Martian: an astronaut stranded on Mars",
    "The Joy of Cooking: classic recipes for the home kitchen",
    "Baking bread: sourdough, yeast and flour",
    "Italian pasta sauces and recipes",
    "Grilling meat and vegetables on the barbecue",
]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(device="cpu", progress=False)


@pytest.fixture(scope="module")
def item_emb(encoder: TextEncoder) -> np.ndarray:
    return encoder.encode(TITLES)  # (8, 384)


def csr(rows: list[list[int]], n_items: int = 8) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(c), np.float32), (r, c)), shape=(len(rows), n_items))


def test_scifi_fan_gets_scifi_first(item_emb: np.ndarray) -> None:
    train = csr([[0, 1], [4, 5]])
    model = SemanticModel(2, 8, torch.as_tensor(item_emb)).fit(train)
    scores = model.score(np.array([0, 1]), train)
    assert scores.shape == (2, 8)
    _, top = topk(scores.clone(), 2, seen=train)
    assert set(top[0].tolist()) == {2, 3}
    assert set(top[1].tolist()) == {6, 7}
    assert scores[0, [2, 3]].min() > scores[0, COOKING].max()
    assert scores[1, [6, 7]].min() > scores[1, SCIFI].max()


def test_scores_are_cosines_of_the_mean_profile(item_emb: np.ndarray) -> None:
    train = csr([[0, 5, 6], []])
    model = SemanticModel(2, 8, item_emb).fit(train)
    p = item_emb[[0, 5, 6]].mean(0)
    p /= np.linalg.norm(p)
    t = item_emb / np.linalg.norm(item_emb, axis=1, keepdims=True)
    np.testing.assert_allclose(model.score(np.array([0]), train[0]).numpy()[0], t @ p, atol=1e-5)
    assert torch.all(model.score(np.array([1]), train[1]) == 0)  # no history: no opinion


def test_brand_new_user_is_scored_from_history(item_emb: np.ndarray) -> None:
    model = SemanticModel(2, 8, item_emb).fit(csr([[4], [5]]))
    history = csr([[2, 3]])  # a user unknown at fit time
    for user in (-1, 2):
        scores = model.score(np.array([user]), history)
        assert scores[0, [0, 1]].min() > scores[0, COOKING].max()


def test_recency_makes_the_recent_item_dominate(item_emb: np.ndarray) -> None:
    train = csr([[0, 4]])  # one sci-fi, one cooking item
    day = 86_400.0
    ts = sp.csr_matrix((np.array([0.0, 30 * day]), ([0, 0], [0, 4])), shape=(1, 8))  # cooking is recent
    plain = SemanticModel(1, 8, item_emb).fit(train, ts)
    recent = SemanticModel(1, 8, item_emb, recency_half_life=2 * day).fit(train, ts)
    s_recent = recent.score(np.array([0]), train)[0]
    assert s_recent[[5, 6, 7]].min() > s_recent[[1, 2, 3]].max()
    # without a half-life the same data mixes both topics
    s_plain = plain.score(np.array([0]), train)[0]
    assert s_plain[[1, 2, 3]].max() > s_recent[[1, 2, 3]].max()
    # a new event since fit counts as the most recent one
    history = csr([[0, 4, 1]])
    s_new = recent.score(np.array([0]), history)[0]
    assert s_new[[2, 3]].max() > s_recent[[2, 3]].max()


def test_recency_weights_formula() -> None:
    train = csr([[0, 1, 2], [3]], n_items=4)
    ts = np.array([10.0, 20.0, 30.0, 5.0])  # CSR order
    w = recency_weights(train, ts, half_life=10.0)
    np.testing.assert_allclose(w.toarray(), [[0.25, 0.5, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def test_text_query_recommends_on_topic_items(encoder: TextEncoder, item_emb: np.ndarray) -> None:
    model = SemanticModel(1, 8, item_emb).fit(csr([[]]))
    q = encoder.encode(["recipes for dinner", "space travel to other planets"])
    scores = model.score_text(q)
    assert scores.shape == (2, 8)
    assert set(torch.topk(scores[0], 3).indices.tolist()) <= set(COOKING)
    assert set(torch.topk(scores[1], 3).indices.tolist()) <= set(SCIFI)
    with pytest.raises(DataError, match="same text model"):
        model.score_text(np.zeros((1, 5)))


def test_items_without_text_are_neutral(item_emb: np.ndarray) -> None:
    emb = np.vstack([item_emb, np.zeros((1, 384), np.float32)])  # item 8 has no text
    model = SemanticModel(1, 9, emb).fit(csr([[0, 8]], n_items=9))
    s = model.score(np.array([0]), csr([[0, 8]], n_items=9))[0]
    assert s[8] == 0
    alone = SemanticModel(1, 9, emb).fit(csr([[0]], n_items=9)).score(np.array([0]), csr([[0]], n_items=9))[0]
    torch.testing.assert_close(s, alone)


def test_state_dict_roundtrip_through_safetensors(item_emb: np.ndarray, tmp_path: Path) -> None:
    train = csr([[0, 4], [5]])
    ts = np.array([1.0, 100.0, 50.0])
    model = SemanticModel(2, 8, item_emb, recency_half_life=10.0).fit(train, ts)
    save_file(model.state_dict(), tmp_path / "m.safetensors")
    fresh = SemanticModel(2, 8, torch.zeros(8, 384))
    fresh.load_state_dict(load_file(tmp_path / "m.safetensors"))
    assert fresh.recency_half_life == 10.0
    users = np.array([0, 1])
    torch.testing.assert_close(fresh.score(users, train), model.score(users, train))
    torch.testing.assert_close(fresh.user_emb, model.user_emb)


def test_input_checks(item_emb: np.ndarray) -> None:
    with pytest.raises(DataError, match="item_emb"):
        SemanticModel(1, 7, item_emb)
    with pytest.raises(ConfigError, match="model.recency_half_life"):  # the config's check, the one place
        SemanticModel(1, 8, item_emb, recency_half_life=0.0)
    model = SemanticModel(1, 8, item_emb, recency_half_life=1.0)
    with pytest.raises(DataError, match="one time per stored entry"):
        model.fit(csr([[0, 1]]), np.array([1.0]))
    with pytest.raises(DataError, match="train must be"):
        model.fit(csr([[0]], n_items=5))


def test_config_defaults_and_checks() -> None:
    assert SemanticConfig().recency_half_life is None
    assert from_dict(SemanticConfig, {"recency_half_life": 86400}).recency_half_life == 86400.0
    with pytest.raises(ConfigError):
        from_dict(SemanticConfig, {"half_life": 1.0})
    # the catalogue builds the model as cls(n_users, n_items, item_emb=..., **config)
    cfg = from_dict(SemanticConfig, {"recency_half_life": 604800})
    model = SemanticModel(2, 8, item_emb=np.eye(8, 4, dtype=np.float32), **to_dict(cfg))
    assert model.recency_half_life == 604800.0
