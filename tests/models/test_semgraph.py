import numpy as np
import pytest
import scipy.sparse as sp
import torch

from semrec.data.dataset import Interactions
from semrec.data.idmap import IdMap
from semrec.data.split import Split
from semrec.errors import ConfigError, RunError
from semrec.evaluate.ranking import evaluate_ranking
from semrec.graph.interaction import InteractionGraph
from semrec.models.base import Batch, HistoryScorer
from semrec.models.semgraph import (
    SemGraph,
    SemGraphConfig,
    _segment_softmax,
    edge_attention_propagate,
    resolve_history,
)
from semrec.train.loop import TrainConfig, fit, seed_everything, training_graph


def community_text(n_items: int, dim: int = 8, seed: int = 0) -> torch.Tensor:
    """Text vectors that say which community an item belongs to (first half: A)."""
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(n_items, dim, generator=g) * 0.1
    text[: n_items // 2, 0] += 1.0
    text[n_items // 2 :, 1] += 1.0
    return torch.nn.functional.normalize(text, dim=1)


def _fit(model, split, epochs=30, lr=0.02, **train):
    return fit(model, split, TrainConfig(epochs=epochs, batch_size=64, lr=lr, progress=False, **train),
               graph=training_graph(split))


def test_a_text_only_model_ranks_a_users_unseen_community_item_first(make_community_split):
    """No ID anywhere (``ids = false``, no graph): the text is all that tells the two
    communities apart, and one item of community B that everybody has beats every
    other item on popularity."""
    split = make_community_split()
    seed_everything(0)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=16, ids=False, layers=0)
    _fit(model, split, epochs=30, lr=0.01)
    scores = model.scorer(training_graph(split)).score(np.arange(split.n_users), split.matrix("train+valid"))
    seen = torch.as_tensor(split.matrix("train+valid").toarray() > 0)
    best = scores.masked_fill(seen, float("-inf")).argmax(1)  # (n_users,)
    community_a = torch.arange(split.n_users) < split.n_users // 2
    assert torch.equal(best < split.n_items // 2, community_a)  # A's users get A's items, B's get B's


def _chain_split(n_users: int = 200, n_items: int = 30, seed: int = 0) -> Split:
    """The next item depends only on the last one (A → B, B → C, …): each sequence steps
    to ``σ(last) = last + 7 mod n`` with probability 0.6, else jumps to a random item, and
    its last two steps (the validation and test items) follow ``σ``. A history is then a
    few arcs of the cycle; which arc ends with the newest item only the order says."""
    rng = np.random.default_rng(seed)
    rows = {"train": ([], [], []), "valid": ([], [], []), "test": ([], [], [])}
    for u in range(n_users):
        length = int(rng.integers(6, 10))
        seq = [int(rng.integers(n_items))]
        while len(seq) < length:
            step = (seq[-1] + 7) % n_items
            forced = len(seq) >= length - 2
            if step in seq or not (forced or rng.random() < 0.6):
                if forced:  # σ(last) was used already: start this user again
                    seq = [int(rng.integers(n_items))]
                    continue
                step = int(rng.choice(np.setdiff1d(np.arange(n_items), seq)))
            seq.append(step)
        for pos, item in enumerate(seq):
            part = "test" if pos == length - 1 else "valid" if pos == length - 2 else "train"
            rows[part][0].append(u)
            rows[part][1].append(item)
            rows[part][2].append(pos)
    parts = {k: Interactions(np.array(v[0]), np.array(v[1]), timestamps=np.array(v[2])) for k, v in rows.items()}
    return Split("leave-one-out", IdMap(f"u{i}" for i in range(n_users)), IdMap(f"i{i}" for i in range(n_items)),
                 **parts)


def test_transformer_tower_learns_what_follows_the_last_item_and_the_mean_cannot():
    split = _chain_split()
    assert split.sequential
    text = torch.zeros(split.n_items, 4)  # no text at all: order is the only signal
    results = {}
    for tower in ("transformer", "mean"):
        seed_everything(0)
        cfg = resolve_history(SemGraphConfig(user_tower=tower, dim=16, layers=0, max_len=8, dropout=0.0,
                                             id_dropout=0.0), split.sequential)
        model = SemGraph(split.n_users, split.n_items, text, **vars(cfg))
        _fit(model, split, epochs=60, lr=0.01, metric="hit@1", patience=60)
        results[tower] = evaluate_ranking(model.scorer(training_graph(split)), split, "test", ks=(1,))["hit@1"]
    assert results["transformer"] >= 0.9  # the next item is σ(last), always
    assert results["mean"] < 0.7  # a mean of the history cannot tell which arc ends with the newest item


def test_one_more_event_changes_the_scores_with_no_training_step():
    split = _chain_split()
    seed_everything(1)
    cfg = resolve_history(SemGraphConfig(dim=8, layers=1, max_len=8), split.sequential)
    model = SemGraph(split.n_users, split.n_items, torch.zeros(split.n_items, 4), **vars(cfg))
    _fit(model, split, epochs=3)
    scorer = model.scorer(training_graph(split))
    assert isinstance(scorer, HistoryScorer) and scorer.ordered
    history = split.matrix("train", "timestamps")[[0]]
    before = scorer.score(np.array([0]), history)
    unseen = int(np.setdiff1d(np.arange(split.n_items), history.indices)[0])
    newest = sp.csr_matrix(([99.0], ([0], [unseen])), shape=history.shape)  # one event, later than all
    after = scorer.score(np.array([0]), history + newest)
    assert not torch.allclose(before, after)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    scorer.score(np.array([0]), history + newest)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())  # nothing trained


def test_cold_items_and_cold_users_go_through_the_same_towers(make_community_split):
    split = make_community_split()
    cold = 3  # an item of community A stripped of all training interactions
    split.train = split.train.take(split.train.items != cold)
    seed_everything(0)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=16, layers=2)
    knn = sp.csr_matrix(np.ones((split.n_items, split.n_items)) - np.eye(split.n_items))
    graph = InteractionGraph(split.matrix("train"), item_item=knn)
    fit(model, split, TrainConfig(epochs=30, batch_size=64, lr=0.02, progress=False), graph=graph)
    assert int(graph.item_degree[cold]) == 0
    scorer = model.scorer(graph)
    scores = scorer.score(np.arange(split.n_users), split.matrix("train"))
    assert scores[:20, cold].mean() > scores[20:, cold].mean() + 0.1  # community A wants it
    # a new user known by two items of A is an unknown index: the same tower, no ID
    row = sp.csr_matrix(([1.0, 1.0], ([0, 0], [0, 1])), shape=(1, split.n_items))
    new = scorer.fold_in(row)[0]
    torch.testing.assert_close(new, scorer.user_vectors(np.array([-1]), row)[0])
    assert float(new @ scorer.item_emb[2]) > float(new @ scorer.item_emb[20])
    share = model.text_share(graph)
    assert share[cold] == 1.0 and torch.all((share >= 0) & (share <= 1))


def test_training_lowers_the_loss_with_every_term(make_community_split):
    split = make_community_split()
    seed_everything(1)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=16, alpha=0.7,
                     knn_weight=0.2)
    knn = sp.csr_matrix(np.ones((split.n_items, split.n_items)) - np.eye(split.n_items))
    result = fit(model, split, TrainConfig(epochs=15, batch_size=64, lr=0.02, progress=False, patience=20),
                 graph=InteractionGraph(split.matrix("train"), item_item=knn))
    first, last = result.history[0], result.history[-1]
    assert {"sup", "ssl", "ssl_graph", "ssl_text"} <= set(first)
    assert last["loss"] < first["loss"]
    assert result.best_value > 0.3  # valid ndcg@20 on the two communities


@pytest.mark.parametrize("settings", [{"loss": "bpr"}, {"negatives": 5}, {"user_tower": "attention"},
                                      {"user_ids": True, "reg": 1e-3}, {"normalize": False}, {"item_prior": False}])
def test_every_objective_and_tower_learns_the_communities(make_community_split, settings):
    split = make_community_split()
    seed_everything(2)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=16, **settings)
    result = _fit(model, split, epochs=20)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.best_value > 0.3


def test_softmax_never_trains_against_items_without_interactions(make_community_split):
    split = make_community_split()
    held_out = np.array([2, 17])
    split.train = split.train.take(~np.isin(split.train.items, held_out))
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=8, id_dropout=0.0)
    graph = training_graph(split)
    model.loss(Batch(torch.arange(10)), graph)["loss"].backward()
    assert model.item_id.weight.grad[held_out].abs().sum() == 0  # no push-down of a cold item
    assert model.item_id.weight.grad[0].abs().sum() > 0


def test_gat_variant_normalises_attention_per_node_and_learns(make_community_split):
    logits = torch.tensor([0.0, 1.0, 2.0, 5.0])
    index = torch.tensor([0, 0, 1, 1])
    sm = _segment_softmax(logits, index, 2)
    torch.testing.assert_close(sm[:2].sum(), torch.tensor(1.0))
    torch.testing.assert_close(sm[2:], torch.softmax(torch.tensor([2.0, 5.0]), 0))
    # zero attention vectors: every neighbour weighs the same -> plain neighbour mean
    r = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    g = InteractionGraph(r)
    u, v = torch.randn(2, 4), torch.randn(3, 4)
    nu, nv = edge_attention_propagate(g, u, v, torch.zeros(4), torch.zeros(4))
    torch.testing.assert_close(nu[0], (v[0] + v[1]) / 2)
    torch.testing.assert_close(nv[1], (u[0] + u[1]) / 2)

    split = make_community_split()
    seed_everything(2)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=16, graph_attention=True)
    result = _fit(model, split, epochs=10)
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_rating_head_learns_ratings(make_community_split):
    split = make_community_split()
    rng = np.random.default_rng(0)
    for part in ("train", "valid", "test"):
        inter = getattr(split, part)
        # community A rates 5, community B rates 2: a pattern the head can learn
        inter.ratings = np.where(inter.users < 20, 5.0, 2.0).astype(np.float32) + rng.normal(0, 0.1, len(inter))
    mean = float(split.train.ratings.mean())
    seed_everything(3)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), rating_mean=mean, dim=8,
                     task="rating")
    graph = training_graph(split)
    result = fit(model, split, TrainConfig(epochs=40, batch_size=64, lr=0.05, task="rating", progress=False),
                 graph=graph)
    assert result.best_value < 0.5  # RMSE; predicting the mean would give about 1.5
    pred = model.predict_ratings(np.array([0, 30]), np.array([1, 20]), graph)
    assert pred[0] > pred[1] + 1.5


def test_user_text_joins_the_user_vector(make_community_split):
    split = make_community_split()
    user_text = community_text(split.n_users)
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), user_text=user_text, dim=8)
    graph = training_graph(split)
    u, v = model(graph)
    assert u.shape == (split.n_users, 8) and v.shape == (split.n_items, 8)
    assert "user_text" in model.state_dict()
    scorer = model.scorer(graph)
    row = split.matrix("train")[[0]]
    # the same history as a known user (with profile) and as a stranger (without)
    assert not torch.allclose(scorer.user_vectors(np.array([0]), row), scorer.user_vectors(np.array([-1]), row))


def test_auto_settings_follow_the_split_and_causal_towers_need_order():
    seq = resolve_history(SemGraphConfig(), sequential=True)
    assert (seq.user_tower, seq.history, seq.temperature, seq.transition_weight) == ("transformer", "sequence", 0.1, 0.2)
    flat = resolve_history(SemGraphConfig(), sequential=False)
    assert (flat.user_tower, flat.history, flat.temperature, flat.transition_weight) == ("mean", "set", 0.3, 0.0)
    mine = resolve_history(SemGraphConfig(user_tower="attention", temperature=0.2, transition_weight=0.0), True)
    assert (mine.user_tower, mine.history, mine.temperature, mine.transition_weight) == ("attention", "sequence",
                                                                                      0.2, 0.0)
    with pytest.raises(ConfigError, match="ordered histories"):
        resolve_history(SemGraphConfig(user_tower="transformer"), sequential=False)
    with pytest.raises(ConfigError, match="needs ordered data"):
        resolve_history(SemGraphConfig(history="sequence"), sequential=False)


def test_config_rejects_out_of_range_values():
    with pytest.raises(ConfigError, match="alpha must lie in"):
        SemGraphConfig(alpha=1.5)
    with pytest.raises(ConfigError, match="dim must be at least 1"):
        SemGraphConfig(dim=0)
    with pytest.raises(ConfigError, match="user_ids needs model.ids"):
        SemGraphConfig(ids=False, user_ids=True)


def test_weights_of_the_old_format_fail_with_a_message_naming_it(make_community_split):
    split = make_community_split()
    model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=8)
    old = {k: v for k, v in model.state_dict().items() if k != "format"}
    with pytest.raises(RunError, match="format 1 .*retrain"):
        SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=8).load_state_dict(old)


def test_text_projection_centres_its_input_without_new_state():
    from semrec.models.semgraph import TextProjection

    g = torch.Generator().manual_seed(0)
    ref = torch.nn.functional.normalize(torch.randn(50, 8, generator=g) + 3.0, dim=1)  # shared direction
    proj = TextProjection(8, 16, 4, ref)
    # the reference mean maps to the MLP's value at the origin; the state dict is unchanged
    torch.testing.assert_close(proj(ref.mean(0, keepdim=True)), proj.net(torch.zeros(1, 8)))
    assert set(proj.state_dict()) == set(TextProjection(8, 16, 4).state_dict())
    centred = (ref - proj.center) / proj.scale
    assert centred.pow(2).sum(1).mean().item() == pytest.approx(1.0, rel=1e-5)


def test_text_contrast_trains_the_text_view_not_the_graph_view(make_community_split):
    split = make_community_split()
    graph = training_graph(split)
    batch = Batch(torch.arange(10))
    grads = {}
    for alpha in (1.0, 0.5):  # text_weight 1: L = α·sup + (1 − α)·InfoNCE(z, sg(v))
        seed_everything(0)
        model = SemGraph(split.n_users, split.n_items, community_text(split.n_items), dim=8, alpha=alpha,
                         text_weight=1.0, eps=0.0, id_dropout=0.0, dropout=0.0)
        seed_everything(0)
        model.loss(batch, graph)["loss"].backward()
        grads[alpha] = (model.item_id.weight.grad.clone(), model.item_proj.net[0].weight.grad.clone())
    # the ID residuals get only the supervised gradient; the text MLP gets the contrast's too
    torch.testing.assert_close(grads[0.5][0], 0.5 * grads[1.0][0])
    assert not torch.allclose(grads[0.5][1], 0.5 * grads[1.0][1])
