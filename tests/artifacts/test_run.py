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
        with staging(out, overwrite=True) as folder:
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


def _saved_run(toy_split, tmp_path, name="run"):
    model = MF(toy_split.n_users, toy_split.n_items, dim=8)
    scorer = model.scorer(InteractionGraph(toy_split.matrix("train")))
    out = tmp_path / name
    with staging(out) as folder:
        _save(folder, toy_split, "mf", model, MFConfig(dim=8), scorer)
    return out


@pytest.mark.parametrize("file,content,needle", [
    ("run.json", b"[]", "run.json: expected a JSON object"),
    ("run.json", b"{not json", "run.json: not valid JSON"),
    ("run.json", json.dumps({"format": 1, "model": "mf", "split": "toy"}).encode(), '"dataset" is missing'),
    ("ids.json", b"\xff\xfe\x00garbage", "ids.json: not valid JSON"),
    ("ids.json", json.dumps({"users": [1, 2], "items": []}).encode(), 'ids.json: expected "users"'),
    ("ids.json", json.dumps({"users": ["a"], "items": ["x"]}).encode(), "indices outside"),
    ("titles.json", b"[1, 2]", "titles.json: expected a JSON object"),
    ("config.toml", b"\xff\xfe binary \x00", "config.toml"),
    ("config.toml", b"model = 3", "[model] is not a table"),
    ("model.safetensors", b"not a safetensors file", "model.safetensors: not a readable safetensors file"),
    ("embeddings.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ", "embeddings.safetensors"),
    ("split.safetensors", b"", "split.safetensors: not a readable safetensors file"),
])
def test_a_damaged_run_folder_is_a_clear_error_naming_the_file(toy_split, tmp_path, file, content, needle):
    # used to escape as JSONDecodeError / AttributeError / SafetensorError / UnicodeDecodeError
    out = _saved_run(toy_split, tmp_path)
    (out / file).write_bytes(content)
    with pytest.raises(RunError) as e:
        load_run(out)
    assert needle in str(e.value) and str(out / file) in str(e.value)


def test_a_model_file_of_other_sizes_is_a_clear_error(toy_split, tmp_path, make_community_split):
    out = _saved_run(toy_split, tmp_path)
    other = _saved_run(make_community_split(n_users=10, n_items=22), tmp_path, "small")
    (out / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(RunError, match="does not hold a 'mf' model for 40 users and 30 items"):
        load_run(out)


def test_an_existing_run_is_replaced_only_when_asked(toy_split, tmp_path):
    out = _saved_run(toy_split, tmp_path)
    with pytest.raises(RunError, match="already holds a run; pass --overwrite"):
        with staging(out) as folder:
            _save(folder, toy_split, "mf", MF(40, 30, dim=8), MFConfig(dim=8),
                  MF(40, 30, dim=8).scorer(InteractionGraph(toy_split.matrix("train"))))
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing half-written left behind
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(RunError, match="not a semrec run"):
        with staging(tmp_path / "notes", overwrite=True):
            pass
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_overwriting_a_run_with_an_event_store_keeps_the_store(toy_split, tmp_path):
    out = _saved_run(toy_split, tmp_path)
    (out / "events.sqlite").write_bytes(b"619 acknowledged events")
    (out / "events.sqlite-wal").write_bytes(b"and the ones not yet checkpointed")
    with pytest.raises(RunError, match="already holds a run with an event store"):
        with staging(out):
            pass
    notes = []
    with staging(out, overwrite=True, on_note=notes.append) as folder:
        _save(folder, toy_split, "mf", MF(40, 30, dim=8), MFConfig(dim=8),
              MF(40, 30, dim=8).scorer(InteractionGraph(toy_split.matrix("train"))))
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert len(kept) == 1 and str(kept[0]) in notes[0]
    assert (kept[0] / "events.sqlite").read_bytes() == b"619 acknowledged events"
    assert (kept[0] / "events.sqlite-wal").read_bytes() == b"and the ones not yet checkpointed"
    assert not (out / "events.sqlite").exists()
    load_run(out)


def test_a_held_folder_is_never_replaced(toy_split, tmp_path):
    from semrec.artifacts.run import hold_folder, release_folder

    out = _saved_run(toy_split, tmp_path)
    held = hold_folder(out)  # what a server does while it serves the run or its store
    try:
        with pytest.raises(RunError, match="is being served"):
            with staging(out, overwrite=True):
                pass
        # the folder became served while the new run was being written: the new run is kept aside
        release_folder(held)
        with pytest.raises(RunError, match="new run was written to") as e:
            with staging(out, overwrite=True) as folder:
                held = hold_folder(out)
                (folder / "run.json").write_text("{}")
        kept = str(e.value).rsplit("written to ", 1)[1].rstrip(")")
        assert (tmp_path / kept.rsplit("/", 1)[1] / "run.json").read_text() == "{}"
        load_run(out)  # untouched
    finally:
        release_folder(held)
