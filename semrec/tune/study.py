"""``semrec tune``: Optuna search over a model's space, scored on the validation part.

Each trial builds a :class:`~semrec.pipeline.RunConfig` from the base settings plus the
sampled values (as ``--set`` pairs), trains on ``split.train`` and is scored on
``split.valid`` with the training metric (``train.metric``, or RMSE for ``task=rating``).
The test part is never read. Trainable models report the validation metric after every
validated epoch and a trial whose curve falls below the median of earlier trials at the
same epoch is pruned (:class:`optuna.pruners.MedianPruner`).

Outputs, next to ``BEST.toml``:

* ``BEST.toml``: the best trial's full config (``semrec train --config BEST.toml``);
* ``BEST.trials.json``: every trial (number, state, value, parameters, seconds);
* ``BEST.trials.png``: value per trial with the best-so-far line.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semrec.config import dump_toml, set_pair, to_dict
from semrec.data.dataset import Dataset
from semrec.data.load import load_dataset
from semrec.data.split import Split, make_split
from semrec.errors import ConfigError, SemrecError
from semrec.models import catalog
from semrec.pipeline import RunConfig, build_config, build_model, fit_model, resolve_for_split
from semrec.tune.spaces import SPACES, Choice, Float, Int, Param


def _optuna():
    try:
        import optuna
    except ModuleNotFoundError:
        raise SemrecError("semrec tune needs Optuna: pip install 'semrec[tune]'") from None
    return optuna


@dataclass
class _Context:
    """What every trial shares: the dataset, its split, text features (built once)."""

    dataset: Dataset
    split: Split
    features: Any = None
    features_done: bool = False


@dataclass
class TuneResult:
    best_value: float | None
    best_params: dict[str, Any]
    metric: str
    direction: str
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    seconds: float
    out: Path
    trials_json: Path
    plot: Path | None
    trials: list[dict] = field(default_factory=list)


def _fixed_keys(sets: list[str]) -> set[str]:
    """The names (``lr``) and dotted keys (``train.lr``) the user set themselves."""
    keys = set()
    for item in sets:
        key = item.partition("=")[0].strip()
        keys.add(key)
    return keys


def _is_fixed(key: str, fixed: set[str]) -> bool:
    return key in fixed or key.partition(".")[2] in fixed


def _suggest(trial, key: str, p: Param) -> Any:
    if isinstance(p, Float):
        return trial.suggest_float(key, p.low, p.high, log=p.log)
    if isinstance(p, Int):
        return trial.suggest_int(key, p.low, p.high, log=p.log)
    if isinstance(p, Choice):
        return trial.suggest_categorical(key, list(p.values))
    raise TypeError(f"unknown search parameter {p!r}")


class _EpochReporter:
    """``on_epoch`` for :func:`semrec.train.loop.fit`: reports each validated epoch's
    metric to the Optuna trial and raises ``TrialPruned`` when it should stop."""

    def __init__(self, trial, metric: str, pruned_exc: type[Exception]) -> None:
        self.trial, self.metric, self.pruned_exc = trial, metric, pruned_exc
        self.history: list[dict] = []

    def __call__(self, epoch: int, record: dict) -> None:
        self.history.append(record)
        value = record.get(self.metric)
        if value is None:
            return
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            raise self.pruned_exc(f"pruned at epoch {epoch} ({self.metric} {value:.4f})")


def _score_trial(config: RunConfig, ctx: _Context, trial, metric: str) -> float:
    """Train ``config`` on ``ctx.split.train``; the validation ``metric`` of the result."""
    import torch

    from semrec.evaluate.ranking import evaluate_ranking
    from semrec.text.features import text_features

    optuna = _optuna()
    split = ctx.split
    spec = catalog.spec(config.model)
    if spec.text and not ctx.features_done:
        ctx.features = text_features(ctx.dataset, split.items, split.users, config.text, progress=False)
        ctx.features_done = True
    features = ctx.features if spec.text else None
    config = resolve_for_split(config, split)  # as training resolves it (e.g. semgraph's auto tower)
    model = build_model(config, split, features)
    # a trial scores validation, so it never refits on it
    trial_config = dataclasses.replace(config, train=dataclasses.replace(config.train, refit=False))
    reporter = _EpochReporter(trial, metric, optuna.TrialPruned)
    scorer, result, _, _ = fit_model(model, split, trial_config, features, None, reporter)
    if result is not None:
        if result.best_value is None:
            raise SemrecError("the split has no validation interactions to tune on")
        return float(result.best_value)
    with torch.no_grad():
        if metric in ("rmse", "mae"):
            raise ConfigError(f"model '{config.model}' does not predict ratings; tune it with task=ranking")
        k = int(metric.split("@")[1]) if "@" in metric else 20
        out = evaluate_ranking(scorer, split, part="valid", ks=sorted({k, 20}))
    if metric not in out:
        raise ConfigError(f"train.metric '{metric}' is not a ranking metric; try ndcg@20 or recall@20")
    return float(out[metric])


def best_config_toml(config: RunConfig, header: list[str]) -> str:
    """``config`` as the TOML ``semrec train --config`` reads (progress left to the user)."""
    train = to_dict(config.train)
    train.pop("progress", None)
    sections: dict[str, dict[str, Any]] = {
        "data": to_dict(config.data),
        "model": {"name": config.model, **to_dict(config.model_params)},
        "train": train,
    }
    if catalog.spec(config.model).text:
        sections["text"] = to_dict(config.text)
    return "".join(f"# {line}\n" for line in header) + "\n" + dump_toml(sections)


def tune(
    data: str | Path,
    model: str,
    n_trials: int,
    out: str | Path,
    *,
    split: str | None = None,
    config_file: str | Path | None = None,
    sets: list[str] | tuple[str, ...] = (),
    timeout: float | None = None,
    seed: int = 0,
    on_trial: Callable[[dict], None] = lambda t: None,
    on_note: Callable[[str], None] = lambda s: None,
) -> TuneResult:
    """Search ``model``'s space (:data:`~semrec.tune.spaces.SPACES`) for ``n_trials``
    trials (or until ``timeout`` seconds) on ``data``'s validation part and write the best
    config to ``out``. ``sets`` fix fields (``epochs=20``); fixed fields are not searched."""
    optuna = _optuna()
    if n_trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {n_trials}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout must be positive seconds, got {timeout}")
    out = Path(out)
    if out.suffix != ".toml":
        raise ConfigError(f"--out: expected a .toml file name, got '{out}'")
    catalog.spec(model)
    sets = ["progress=false", *sets]
    base = build_config(model, config_file, sets, split)  # bad --set / --split fail here, before any work
    fixed = _fixed_keys(list(sets))
    space = {k: p for k, p in SPACES[model].items() if not _is_fixed(k, fixed)}
    if not space:
        why = "every searched field is fixed by --set" if SPACES[model] else "it has no hyper-parameters"
        on_note(f"model '{model}': nothing to search ({why}); running one trial")
        n_trials = 1
    metric = "rmse" if base.train.task == "rating" else base.train.metric
    direction = "minimize" if metric in ("rmse", "mae") else "maximize"

    dataset = load_dataset(data)
    for note in dataset.notes:
        on_note(note)
    cut = make_split(dataset, base.data.split, seed=base.data.split_seed)
    if len(cut.valid) == 0:
        raise ConfigError(f"--split '{base.data.split}' has no validation part to tune on; use a split "
                          "with one, e.g. random:0.8/0.1/0.1 or leave-one-out")
    ctx = _Context(dataset, cut)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    configs: dict[int, RunConfig] = {}
    t_start = time.perf_counter()

    def objective(trial) -> float:
        params = {k: _suggest(trial, k, p) for k, p in space.items()}
        config = build_config(model, config_file, [*sets, *(set_pair(k, v) for k, v in params.items())], split)
        configs[trial.number] = config
        t0 = time.perf_counter()
        try:
            value = _score_trial(config, ctx, trial, metric)
        finally:
            trial.set_user_attr("seconds", time.perf_counter() - t0)
        if not math.isfinite(value):
            raise FloatingPointError(f"validation {metric} is {value}")
        return value

    def report(study_, frozen) -> None:
        on_trial(_trial_row(frozen, metric, study_, n_trials))

    # a diverging trial (too high a learning rate) fails alone; input mistakes stop the search
    study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(FloatingPointError,),
                   callbacks=[report])
    seconds = time.perf_counter() - t_start
    states = optuna.trial.TrialState
    trials = [_trial_row(t, metric, None, n_trials) for t in study.trials]
    complete = [t for t in study.trials if t.state == states.COMPLETE]
    out.parent.mkdir(parents=True, exist_ok=True)
    trials_json = out.with_suffix(".trials.json")
    plot = out.with_suffix(".trials.png")
    if not complete:
        trials_json.write_text(json.dumps({"metric": metric, "trials": trials}, indent=2) + "\n")
        raise SemrecError(f"no trial finished ({len(study.trials)} tried); see {trials_json}")
    best = study.best_trial
    header = [
        f"semrec tune: best of {len(study.trials)} trials of '{model}' on {ctx.dataset.name}, "
        f"split {base.data.split}",
        f"validation {metric} = {best.value:.6g} (trial {best.number}); the test part was not used",
        f"train it: semrec train --data {data} --config {out.name} --out RUN_DIR",
    ]
    out.write_text(best_config_toml(configs[best.number], header), encoding="utf-8")
    summary = {
        "model": model,
        "dataset": ctx.dataset.name,
        "split": base.data.split,
        "metric": metric,
        "direction": direction,
        "best_value": best.value,
        "best_trial": best.number,
        "best_params": best.params,
        "seconds": seconds,
        "trials": trials,
    }
    trials_json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    trials_plot(trials, metric, direction, plot, title=f"semrec tune: {model} on {ctx.dataset.name}")
    count = {s: sum(t["state"] == s for t in trials) for s in ("complete", "pruned", "fail")}
    return TuneResult(best.value, dict(best.params), metric, direction, len(trials), count["complete"],
                      count["pruned"], count["fail"], seconds, out, trials_json, plot, trials)


def _trial_row(t, metric: str, study, n_trials: int) -> dict[str, Any]:
    row = {
        "number": t.number,
        "state": t.state.name.lower(),
        "value": t.value,
        "params": dict(t.params),
        "seconds": t.user_attrs.get("seconds"),
        "last_step": t.last_step,
        "last_value": None if t.last_step is None else t.intermediate_values.get(t.last_step),
        "metric": metric,
        "n_trials": n_trials,
    }
    if study is not None:
        try:
            row["best_value"] = study.best_value
        except ValueError:  # no complete trial yet
            row["best_value"] = None
    return row


def trials_plot(trials: list[dict], metric: str, direction: str, path: Path, title: str = "") -> Path:
    """Validation ``metric`` per trial (complete: dots; pruned: crosses at the last value
    they reported) with the best-so-far line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    done = [(t["number"], t["value"]) for t in trials if t["state"] == "complete" and t["value"] is not None]
    if done:
        xs, ys = zip(*done)
        ax.scatter(xs, ys, color="tab:blue", label="trial", zorder=3)
        best, line = None, []
        for x, y in done:
            if best is None or (y < best if direction == "minimize" else y > best):
                best = y
            line.append((x, best))
        ax.step(*zip(*line), where="post", color="tab:orange", label="best so far")
    pruned = [(t["number"], t["last_value"]) for t in trials
              if t["state"] == "pruned" and t.get("last_value") is not None]
    if pruned:
        ax.scatter(*zip(*pruned), marker="x", color="tab:gray", label="pruned")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(title or "semrec tune")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
