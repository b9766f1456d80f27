import json

import numpy as np
import pytest
import torch

from semrec.artifacts.run import load_run, save_run, staging
from semrec.config import DataConfig
from semrec.errors import RunError
from semrec.graph.interaction import InteractionGraph
from semrec.models.itemknn import ItemKNN, ItemKNNConfig
from semrec.models.mf import MF, MFConfig
from semrec.train.loop import TrainConfig


def _save(folder, split, name, model, cfg, scorer):
    save_run(folder, model_name=name, model=model, model_config=cfg, data_config=DataConfig(split="toy"),
             train_config=TrainConfig(epochs=2), split=split, scorer=scorer,
             dataset={"name": "toy", "path": None}, titles={"i1": "One"}, metrics={"test": {"recall@20": 0.5}})


def test_round_trip_of_an_embedding_model(toy_split, tmp_path):
    model = MF(toy_split.n_users, toy_split.n_items, dim=8)
    scorer = model.scorer(InteractionGraph(toy_split.matrix("train")))
    out = tmp_path / "run"
    with staging(out) as folder:
        _save(folder, toy_split, "mf", model, MFConfig(dim=8), scorer)
    run = load_run(out)
    assert run.model_name == "mf" and run.model_config == MFConfig(dim=8)
    assert run.train_config.epochs == 2
    assert run.users == toy_split.users and run.items == toy_split.items
    np.testing.assert_array_equal(run.split.test.items, toy_split.test.items)
    users = np.arange(5)
    torch.testing.assert_close(run.scorer.score(users, None), scorer.score(users, None))
    assert run.titles == {"i1": "One"}
    assert not any(p.suffix in (".pkl", ".pt") for p in out.iterdir())


def test_round_trip_of_a_fitted_model(toy_split, tmp_path):
    train = toy_split.matrix("train")
    model = ItemKNN(toy_split.n_users, toy_split.n_items, k=5).fit(train)
    with staging(tmp_path / "run") as folder:
        _save(folder, toy_split, "itemknn", model, ItemKNNConfig(k=5), model)
    run = load_run(tmp_path / "run")
    users = np.arange(3)
    torch.testing.assert_close(run.scorer.score(users, train[users]), model.score(users, train[users]))


def test_interrupted_save_leaves_old_run_intact(toy_split, tmp_path):
    model = MF(toy_split.n_users, toy_split.n_items, dim=8)
    scorer = model.scorer(InteractionGraph(toy_split.matrix("train")))
    out = tmp_path / "run"
    with staging(out) as folder:
        _save(folder, toy_split, "mf", model, MFConfig(dim=8), scorer)
    before = (out / "embeddings.safetensors").read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with staging(out) as folder:
            (folder / "run.json").write_text("{}")
            raise KeyboardInterrupt
    assert (out / "embeddings.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    load_run(out)


def test_incomplete_or_foreign_folders_are_clear_errors(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        load_run(tmp_path / "none")
    (tmp_path / "half").mkdir()
    with pytest.raises(RunError, match="run.json is missing"):
        load_run(tmp_path / "half")
    (tmp_path / "half" / "run.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(RunError, match="format 99 is not supported"):
        load_run(tmp_path / "half")
