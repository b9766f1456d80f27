"""``semrec tune``: spaces beside the catalogue, validation-only trials, pruning, and a
best config that ``semrec train --config`` accepts."""
from __future__ import annotations

import dataclasses
import json

import pytest

pytest.importorskip("optuna", reason="optuna is not installed (pip install 'semrec[tune]')")

from semrec.config import read_toml  # noqa: E402
from semrec.models.catalog import MODELS  # noqa: E402
from semrec.pipeline import build_config  # noqa: E402
from semrec.train.loop import TrainConfig  # noqa: E402
from semrec.tune.spaces import SPACES, Choice, Float, Int  # noqa: E402
from semrec.tune.study import _EpochReporter, tune  # noqa: E402

SPLIT = "random:0.7/0.15/0.15"
FAST = ["epochs=2", "batch_size=64", "patience=100"]


def test_every_model_has_a_space_of_real_fields():
    assert set(SPACES) == set(MODELS)
    for name, space in SPACES.items():
        model_fields = {f.name for f in dataclasses.fields(MODELS[name].config)}
        train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
        for key, p in space.items():
            section, _, field = key.partition(".")
            assert field in {"model": model_fields, "train": train_fields}[section], (name, key)
            if isinstance(p, (Float, Int)):
                assert p.low < p.high and (not p.log or p.low > 0), (name, key)
            else:
                assert isinstance(p, Choice) and p.values


def test_tune_mf_writes_a_config_train_accepts(tiny_data, tmp_path, monkeypatch, run_cli):
    # trials are scored on the validation part only: record every evaluated part
    import semrec.evaluate.ranking as ranking

    parts = []
    real = ranking.evaluate_ranking

    def spy(scorer, split, part="test", *args, **kwargs):
        parts.append(part)
        return real(scorer, split, part, *args, **kwargs)

    monkeypatch.setattr(ranking, "evaluate_ranking", spy)
    out = tmp_path / "best.toml"
    seen = []
    result = tune(str(tiny_data), "mf", 3, out, split=SPLIT, sets=[*FAST, "lr=0.01"], on_trial=seen.append)
    assert parts and set(parts) == {"valid"}
    assert [t["number"] for t in seen] == [0, 1, 2]
    assert result.n_trials == 3 and result.n_complete >= 1
    # lr was fixed by --set: not searched, kept in the config; dim and reg were searched
    assert set(result.best_params) == {"model.dim", "model.reg"}
    assert result.best_params["model.dim"] in (32, 64, 128)
    raw = read_toml(out)
    assert raw["model"]["name"] == "mf" and raw["train"]["lr"] == 0.01 and raw["train"]["epochs"] == 2
    assert raw["model"]["dim"] == result.best_params["model.dim"]
    assert raw["data"]["split"] == SPLIT and "progress" not in raw["train"]
    config = build_config(None, out)
    assert config.model == "mf" and config.model_params.reg == pytest.approx(result.best_params["model.reg"])
    trials = json.loads(out.with_suffix(".trials.json").read_text())
    assert len(trials["trials"]) == 3 and trials["metric"] == "ndcg@20"
    best = max(t["value"] for t in trials["trials"] if t["state"] == "complete")
    assert trials["best_value"] == pytest.approx(best) == pytest.approx(result.best_value)
    assert out.with_suffix(".trials.png").stat().st_size > 5_000

    monkeypatch.setattr(ranking, "evaluate_ranking", real)
    code, stdout, err = run_cli("train", "--data", str(tiny_data), "--config", str(out), "--set", "epochs=1",
                                "--out", str(tmp_path / "run"), "--quiet", "--json")
    assert code == 0, err
    assert json.loads(stdout)["model"] == "mf"


def test_tune_fitted_models_and_cli(tiny_data, tmp_path, run_cli):
    code, out, err = run_cli("tune", "--data", str(tiny_data), "--model", "itemknn", "--trials", "2",
                             "--split", SPLIT, "--out", str(tmp_path / "knn.toml"), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["n_trials"] == 2 and set(summary["best_params"]) == {"model.k", "model.shrink"}
    assert 10 <= read_toml(tmp_path / "knn.toml")["model"]["k"] <= 400
    assert "trial 1/2" not in err  # --json: no progress lines

    code, out, err = run_cli("tune", "--data", str(tiny_data), "--model", "popularity", "--trials", "3",
                             "--split", SPLIT, "--out", str(tmp_path / "pop.toml"))
    assert code == 0, err
    assert "nothing to search" in err and "trial 1/1" in err and "after 1 trials" in out
    assert read_toml(tmp_path / "pop.toml")["model"] == {"name": "popularity"}


def test_tune_input_errors(tiny_data, tmp_path, run_cli):
    code, _, err = run_cli("tune", "--data", str(tiny_data), "--model", "mf", "--trials", "2",
                           "--out", str(tmp_path / "best.txt"))
    assert code == 2 and "--out" in err and ".toml" in err
    code, _, err = run_cli("tune", "--data", str(tiny_data), "--model", "mf", "--trials", "2",
                           "--set", "dimm=3", "--out", str(tmp_path / "b.toml"))
    assert code == 2 and "dimm" in err
    code, _, err = run_cli("tune", "--data", str(tiny_data), "--model", "nope", "--trials", "2",
                           "--out", str(tmp_path / "b.toml"))
    assert code == 2 and "unknown model 'nope'" in err


class _Trial:
    def __init__(self, prune_at: int) -> None:
        self.prune_at, self.reports = prune_at, []

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return self.reports[-1][0] >= self.prune_at


class _Pruned(Exception):
    pass


def test_epoch_reporter_reports_validated_epochs_and_prunes():
    trial = _Trial(prune_at=3)
    rep = _EpochReporter(trial, "ndcg@20", _Pruned)
    rep(1, {"epoch": 1, "loss": 0.7})  # not validated: nothing reported
    rep(2, {"epoch": 2, "loss": 0.6, "ndcg@20": 0.1})
    assert trial.reports == [(2, 0.1)]
    with pytest.raises(_Pruned, match="epoch 3"):
        rep(3, {"epoch": 3, "loss": 0.5, "ndcg@20": 0.05})
    assert [r["epoch"] for r in rep.history] == [1, 2, 3]
