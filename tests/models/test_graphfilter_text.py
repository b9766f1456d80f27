"""graphfilter-text: the semantic neighbour graph mixed into the item–item operator."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from test_graphfilter import dense_filter, dense_operator
from toy_graphs import two_communities

from semrec.errors import ConfigError, DataError
from semrec.models import catalog
from semrec.models.graphfilter import GraphFilter, TextGraphFilter, TextGraphFilterConfig, text_graph


def brute_force_text_graph(emb: np.ndarray, k: int) -> np.ndarray:
    """``I + S`` dense: each item's ``k`` most cosine-similar other items, negatives dropped."""
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cos = x @ x.T
    np.fill_diagonal(cos, -np.inf)
    out = np.eye(len(emb))
    for i, row in enumerate(cos):
        for j in np.argsort(-row)[:k]:
            out[i, j] = max(row[j], 0.0)
    return out


def test_the_text_graph_is_self_plus_nearest_neighbours():
    emb = np.random.default_rng(1).standard_normal((10, 6)).astype(np.float32)
    emb[7] = 0  # an item without text: no row, no column, no self-loop
    got = text_graph(emb, 3).toarray()
    want = np.zeros((10, 10))
    keep = np.arange(10) != 7
    want[np.ix_(keep, keep)] = brute_force_text_graph(emb[keep], 3)
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("settings", [dict(k=3, order=1), dict(k=2, order=3, filter="bspm"),
                                      dict(k=4, order=6, exact_top=False)])
@pytest.mark.parametrize("weight", [0.3, 0.7])
def test_the_mixed_operator_matches_its_dense_definition(settings, weight):
    rng = np.random.default_rng(5)
    r = (rng.random((9, 11)) < 0.4).astype(np.float64)
    r[:, 6] = 0  # a cold item: text only
    emb = rng.standard_normal((11, 8)).astype(np.float32)
    model = TextGraphFilter(9, 11, emb, text_weight=weight, text_k=3, user_exponent=0.4, item_exponent=0.5,
                            **settings).fit(sp.csr_matrix(r))
    got = model.score(np.arange(9), sp.csr_matrix(r))
    m_r = dense_operator(r, 0.4, 0.5)
    m_t = dense_operator(brute_force_text_graph(emb, 3), 0.4, 0.5)
    p_tilde = (1 - weight) * m_r.T @ m_r + weight * m_t.T @ m_t
    np.testing.assert_allclose(got.numpy(), dense_filter(p_tilde, r.sum(0), r, model.config), atol=2e-6)


def communities_with_cold_items() -> tuple[sp.csr_matrix, np.ndarray]:
    """Two communities of 6 items (:func:`two_communities`) and two items nobody has seen:
    item 12 reads like community 0's items, item 13 like community 1's."""
    rng = np.random.default_rng(0)
    train = sp.hstack([two_communities(), sp.csr_matrix((12, 2))]).tocsr()  # (12, 14)
    topic = np.eye(8)[[0] * 6 + [1] * 6 + [0, 1]]  # (14, 8) community of each item's text
    emb = (topic + 0.1 * rng.standard_normal((14, 8))).astype(np.float32)
    return train, emb


def test_only_text_links_a_cold_item_to_its_community():
    train, emb = communities_with_cold_items()
    users = np.arange(12)
    alone = TextGraphFilter(12, 14, emb, text_weight=0.0, k=4, text_k=3).fit(train)
    assert alone.score(users, train)[:, 12:].abs().max() < 1e-6  # interactions alone: unreachable
    mixed = TextGraphFilter(12, 14, emb, text_weight=0.3, k=4, text_k=3).fit(train)
    scores = mixed.score(users, train)
    for u in users:
        own, other = (12, 13) if u < 6 else (13, 12)
        outside = [i for i in range(12) if i // 6 != u // 6]
        assert scores[u, own] > scores[u, other]  # each cold item reaches its own community
        assert scores[u, own] > scores[u, outside].max()  # above the other community's warm items


def test_without_text_weight_it_is_the_plain_graph_filter():
    train, emb = communities_with_cold_items()
    users = np.arange(12)
    plain = GraphFilter(12, 14, k=4, order=2).fit(train)
    same = {f: getattr(plain.config, f) for f in ("filter", "flatness", "alpha")}  # the text model's differ
    text = TextGraphFilter(12, 14, emb, text_weight=0.0, k=4, order=2, **same).fit(train)
    torch.testing.assert_close(text.score(users, train), plain.score(users, train))


def test_state_round_trip_rebuilds_from_the_stored_text():
    train, emb = communities_with_cold_items()
    cfg = TextGraphFilterConfig(text_weight=0.4, text_k=3, k=4)
    a = catalog.build("graphfilter-text", 12, 14, cfg, {"item_emb": torch.from_numpy(emb)}).fit(train)
    state = a.state_dict()
    torch.testing.assert_close(state["item_emb"], torch.from_numpy(emb))
    b = catalog.build("graphfilter-text", 12, 14, cfg, state)  # how a run folder rebuilds it
    b.load_state_dict(state)
    users = np.arange(12)
    torch.testing.assert_close(b.score(users, train), a.score(users, train))


def test_errors_a_caller_can_act_on():
    with pytest.raises(DataError, match="item_emb must be"):
        TextGraphFilter(3, 4, np.zeros((5, 2)))
    for bad, field in ((dict(text_weight=1.0), "text_weight"), (dict(text_weight=-0.1), "text_weight"),
                       (dict(text_k=0), "text_k")):
        with pytest.raises(ConfigError, match=field):
            TextGraphFilterConfig(**bad)
