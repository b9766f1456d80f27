import json

import pytest
import torch

from semrec.errors import ConfigError
from semrec.evaluate.ranking import evaluate_ranking
from semrec.models.mf import MF
from semrec.models.popularity import Popularity
from semrec.train.loop import TrainConfig, fit, resolve_device, seed_everything


def test_short_training_lowers_loss_and_beats_popularity(toy_split, tmp_path):
    model = MF(toy_split.n_users, toy_split.n_items, dim=16, reg=1e-4)
    cfg = TrainConfig(epochs=40, batch_size=64, lr=0.05, progress=False, patience=40)
    log = tmp_path / "log.jsonl"
    result = fit(model, toy_split, cfg, log_path=log)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == result.epochs_run
    assert {"epoch", "loss", "train_s", "ndcg@20", "recall@20"} <= set(lines[0])
    assert lines[-1]["loss"] < lines[0]["loss"] * 0.5
    graph_scorer = model.scorer(__import__("semrec.graph.interaction", fromlist=["x"]).InteractionGraph(
        toy_split.matrix("train")))
    mf = evaluate_ranking(graph_scorer, toy_split, "test", ks=(5,))
    pop = evaluate_ranking(Popularity(toy_split.n_users, toy_split.n_items).fit(toy_split.matrix("train")),
                           toy_split, "test", ks=(5,))
    assert mf["recall@5"] > pop["recall@5"] + 0.2


def test_early_stopping_restores_the_best_epoch(toy_split, tmp_path):
    model = MF(toy_split.n_users, toy_split.n_items, dim=8)
    cfg = TrainConfig(epochs=200, batch_size=64, lr=0.05, progress=False, patience=2)
    result = fit(model, toy_split, cfg)
    assert result.stopped_early
    assert result.epochs_run == result.best_epoch + 3
    from semrec.graph.interaction import InteractionGraph

    again = evaluate_ranking(model.scorer(InteractionGraph(toy_split.matrix("train"))), toy_split, "valid",
                             ks=(20,))
    assert again["ndcg@20"] == pytest.approx(result.best_value)


def test_same_seed_same_model(toy_split):
    def run():
        seed_everything(7)  # initialisation is seeded by the caller, sampling by fit
        m = MF(toy_split.n_users, toy_split.n_items, dim=8)
        fit(m, toy_split, TrainConfig(epochs=3, batch_size=64, progress=False, seed=7))
        return m.state_dict()

    a, b = run(), run()
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_rating_task_needs_ratings(toy_split):
    m = MF(toy_split.n_users, toy_split.n_items, dim=8)
    with pytest.raises(ConfigError, match="no ratings"):
        fit(m, toy_split, TrainConfig(epochs=1, task="rating", progress=False))


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu9")


@pytest.mark.parametrize("lr", [1e30, 1e308])
def test_divergence_is_a_users_error_not_a_traceback(toy_split, lr):
    # before the fix (3433209) a huge lr left NaN weights that evaluation met first
    # (ValueError: scorer.score returned NaN scores), or raised a bare FloatingPointError
    from semrec.errors import SemrecError, TrainingDiverged

    m = MF(toy_split.n_users, toy_split.n_items, dim=8)
    with pytest.raises(TrainingDiverged, match="training diverged at epoch .*lower train.lr") as err:
        fit(m, toy_split, TrainConfig(epochs=2, batch_size=4096, lr=lr, progress=False))
    assert isinstance(err.value, SemrecError) and isinstance(err.value, FloatingPointError)  # tune catches it
