"""The train-and-save pipeline: refitting on train+valid once validation chose the epochs; the
settings build_config refuses."""
from __future__ import annotations

import json

import pytest

from semrec.artifacts.run import load_run
from semrec.errors import ConfigError
from semrec.pipeline import build_config, train_and_save


def test_refit_trains_again_on_train_and_valid_for_the_chosen_epochs(tastes, tmp_path):
    sets = ["epochs=12", "dim=8", "batch_size=32", "progress=false", "tensorboard=false", "patience=3"]
    split = "random:0.8/0.1/0.1"
    plain = train_and_save(tastes, build_config("lightgcn", sets=sets, split=split), tmp_path / "plain")
    refit = train_and_save(tastes, build_config("lightgcn", sets=[*sets, "refit=true"], split=split),
                           tmp_path / "refit")

    best = refit.metrics["best_epoch"]
    assert best == plain.metrics["best_epoch"] >= 1  # the first fit is the plain run
    assert refit.metrics["refit_epochs"] == best and "refit_epochs" not in plain.metrics
    log = (tmp_path / "refit" / "refit_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == list(range(1, best + 1))

    # the run keeps the split it was refitted on: validation moved into training
    run, before = load_run(tmp_path / "refit"), load_run(tmp_path / "plain")
    assert len(run.split.valid) == 0
    assert len(run.split.train) == len(before.split.train) + len(before.split.valid)
    assert run.train_matrix().nnz > before.train_matrix().nnz
    # a different model (more data), evaluated on the same test part
    assert not (run.scorer.user_emb == before.scorer.user_emb).all()
    assert refit.metrics["n_test_users"] == plain.metrics["n_test_users"]


def test_refit_fits_a_training_free_model_on_train_and_valid(tastes, tmp_path):
    split = "random:0.8/0.1/0.1"
    plain = train_and_save(tastes, build_config("popularity", split=split, sets=["progress=false"]),
                           tmp_path / "plain")
    refit = train_and_save(tastes, build_config("popularity", split=split, sets=["progress=false", "refit=true"]),
                           tmp_path / "refit")
    before, run = load_run(plain.path), load_run(refit.path)
    assert len(run.split.valid) == 0 and len(run.split.train) == len(before.split.train) + len(before.split.valid)
    # popularity counts the validation interactions too
    assert run.model.state_dict()["counts"].sum() > before.model.state_dict()["counts"].sum()


def test_refit_refuses_a_cold_items_split(tastes, tmp_path):
    config = build_config("mf", sets=["epochs=2", "refit=true", "progress=false"], split="cold-items:0.2")
    with pytest.raises(ConfigError, match="refit"):
        train_and_save(tastes, config, tmp_path / "run")


# ------------------------------------------------------------------ settings a model would ignore (issue 20)


@pytest.mark.parametrize("model,sets,message", [
    ("mf", ["text.encoder=/models/minilm"], "text.encoder: model 'mf' reads no text"),
    ("lightgcn", ["knn=5", "text.cache=false"], "text.knn, text.cache: model 'lightgcn' reads no text"),
    ("popularity", ["epochs=5"], "train.epochs: model 'popularity' is fitted in one pass"),
    ("itemknn", ["lr=0.1", "batch_size=64"], "train.lr, train.batch_size: model 'itemknn' is fitted"),
])
def test_settings_the_model_would_ignore_are_refused(model, sets, message):
    # before the fix (3433209) these trained without a word, the setting ignored
    with pytest.raises(ConfigError, match=message):
        build_config(model, sets=sets)


def test_a_text_section_in_a_config_file_is_refused_for_a_model_without_text(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[model]\nname = "mf"\n[text]\nencoder = "/models/minilm"\n')
    with pytest.raises(ConfigError, match="text.encoder: model 'mf' reads no text"):
        build_config(None, path)


def test_settings_that_apply_are_accepted():
    assert build_config("semantic", sets=["text.encoder=/models/minilm"]).text.encoder == "/models/minilm"
    assert build_config("mf", sets=["epochs=5", "threads=1"]).train.epochs == 5
    # a fitted model takes the training settings that apply to every run, and defaults
    cfg = build_config("popularity", sets=["refit=true", "tensorboard=false", "threads=2", "epochs=300"])
    assert cfg.train.refit and cfg.train.threads == 2


def test_a_config_written_by_tune_for_a_fitted_model_trains(tmp_path):
    from semrec.tune.study import best_config_toml

    path = tmp_path / "best.toml"
    path.write_text(best_config_toml(build_config("itemknn", sets=["k=20"]), ["tuned"]))
    assert build_config(None, path).model_params.k == 20


# ------------------------------------------------------------------ the rating task (issue 20)


def test_a_bare_task_sets_the_model_and_the_training_task():
    # failed before the fix (3433209): "'task' is in several sections"
    cfg = build_config("semgraph", sets=["task=rating"])
    assert cfg.model_params.task == "rating" and cfg.train.task == "rating"


def test_a_model_task_without_the_training_task_says_which_keys_to_set(tmp_path):
    with pytest.raises(ConfigError, match="model.task is 'rating' but train.task is 'ranking'.*task=rating"):
        build_config("semgraph", sets=["model.task=rating"])
    path = tmp_path / "c.toml"
    path.write_text('[model]\nname = "semgraph"\ntask = "rating"\n[train]\ntask = "rating"\n')
    assert build_config(None, path).train.task == "rating"


def test_a_rating_task_needs_a_model_with_a_rating_head():
    # failed before the fix (3433209) with a traceback from the BPR loss, after loading the data
    with pytest.raises(ConfigError, match="model 'mf' has no rating head.*predict ratings: semgraph"):
        build_config("mf", sets=["task=rating"])
