"""The train-and-save pipeline: refitting on train+valid once validation chose the epochs."""
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
