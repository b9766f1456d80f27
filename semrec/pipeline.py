"""The flow in one place: data -> split -> model -> train -> evaluate -> run folder."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from semrec.artifacts.run import Run, check_out, dataset_fingerprint, save_run, staging
from semrec.config import DataConfig, TextConfig, apply_sets, from_dict, read_toml, tables, to_dict
from semrec.data.dataset import Dataset
from semrec.data.load import load_dataset
from semrec.data.split import Split, make_split
from semrec.errors import ConfigError
from semrec.evaluate.cold import cold_sections
from semrec.evaluate.plots import metric_at_k_curve
from semrec.evaluate.ranking import evaluate_ranking, evaluate_rating
from semrec.graph.interaction import InteractionGraph
from semrec.models import catalog
from semrec.models.base import FittedModel, HistoryScorer, Scorer
from semrec.models.rerank import item_space
from semrec.models.semantic import SemanticModel
from semrec.text.build import effective_template
from semrec.text.features import TextFeatures, text_features
from semrec.train import distributed
from semrec.train.loop import TrainConfig, TrainResult, fit, resolve_device, seed_everything, training_graph
from semrec.train.plots import learning_curve
from semrec.train.tracking import TensorBoardTracker

DEFAULT_KS = (10, 20)


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run is built from."""

    model: str
    data: DataConfig
    train: TrainConfig
    model_params: Any
    text: TextConfig = TextConfig()


#: The sections of a run's config (``--config`` TOML tables and ``--set`` prefixes).
SECTIONS = ("data", "model", "train", "text")

#: Training settings only a model trained over epochs uses: a fitted model (popularity,
#: itemknn, graphfilter, semantic) refuses any of them set to a value other than its default.
TRAINING_ONLY = ("epochs", "batch_size", "lr", "weight_decay", "seed", "n_negatives", "task", "metric",
                 "eval_every", "patience", "max_seconds", "device")


def build_config(
    model: str | None,
    config_file: str | Path | None = None,
    sets: tuple[str, ...] | list[str] = (),
    split: str | None = None,
) -> RunConfig:
    """Merge a TOML file, ``--split`` and ``--set`` pairs (in that order of precedence, last wins).

    A bare ``task=...`` sets both ``model.task`` and ``train.task`` where the model has a
    task. Settings the model would ignore are refused (:func:`_refuse_inapplicable`), and
    a model's task must agree with the training task.
    """
    where = f"{config_file}: " if config_file else ""
    raw = tables(read_toml(config_file) if config_file else {}, SECTIONS, where)
    model_values = raw["model"]
    name = model or model_values.pop("name", None)
    model_values.pop("name", None)
    if not name:
        raise ConfigError("no model given: pass --model NAME or set [model] name in the config file")
    spec = catalog.spec(name)
    data_values = raw["data"]
    if split:
        data_values["split"] = split
    sections = {
        "data": (DataConfig, data_values),
        "model": (spec.config, model_values),
        "train": (TrainConfig, raw["train"]),
        "text": (TextConfig, raw["text"]),
    }
    has_task = "task" in {f.name for f in dataclasses.fields(spec.config)}
    apply_sets(sections, _both_tasks(sets) if has_task else sets)
    _refuse_inapplicable(name, spec, sections)
    where = f"{config_file} " if config_file else ""
    config = RunConfig(
        model=name,
        data=from_dict(DataConfig, data_values, f"{where}[data] "),
        model_params=from_dict(spec.config, model_values, f"{where}[model] "),
        train=from_dict(TrainConfig, sections["train"][1], f"{where}[train] "),
        text=from_dict(TextConfig, sections["text"][1], f"{where}[text] "),
    )
    _check_task(config, has_task)
    return config


def _both_tasks(sets: tuple[str, ...] | list[str]) -> list[str]:
    """``task=X`` (no section) as ``model.task=X`` and ``train.task=X``: the two must agree."""
    out = []
    for item in sets:
        key, eq, value = item.partition("=")
        out += [f"model.task={value}", f"train.task={value}"] if eq and key.strip() == "task" else [item]
    return out


def _refuse_inapplicable(name: str, spec: catalog.ModelSpec, sections: dict[str, tuple[type, dict]]) -> None:
    """Raise a :class:`ConfigError` naming the settings ``name`` would silently ignore:
    any ``[text]`` setting for a model that reads no text, and a training setting other
    than its default for a fitted model."""
    text_keys = [f"text.{k}" for k in sections["text"][1]]
    if text_keys and not spec.text:
        readers = ", ".join(n for n, s in catalog.MODELS.items() if s.text)
        raise ConfigError(
            f"{', '.join(text_keys)}: model '{name}' reads no text, so [text] settings do not apply to it; "
            f"drop them, or choose a model that reads text ({readers})"
        )
    if spec.kind == "fitted":
        defaults = TrainConfig()
        ignored = [f"train.{k}" for k, v in sections["train"][1].items()
                   if k in TRAINING_ONLY and v != getattr(defaults, k)]
        if ignored:
            raise ConfigError(
                f"{', '.join(ignored)}: model '{name}' is fitted in one pass, not trained over epochs, so "
                "this does not apply to it; drop it, or choose a trained model "
                f"({', '.join(n for n, s in catalog.MODELS.items() if s.kind == 'trainable')})"
            )


def _check_task(config: RunConfig, has_task: bool) -> None:
    """A rating run needs a model with a rating head, and its task set on both sides."""
    train_task = config.train.task
    if has_task:
        model_task = config.model_params.task
        if model_task != train_task:
            raise ConfigError(
                f"model.task is '{model_task}' but train.task is '{train_task}'; they must agree: "
                f"--set task={model_task} sets both (in a config file: task = \"{model_task}\" under "
                "[model] and under [train])"
            )
    elif train_task == "rating":
        heads = ", ".join(n for n, s in catalog.MODELS.items()
                          if "task" in {f.name for f in dataclasses.fields(s.config)})
        raise ConfigError(
            f"train.task is 'rating' but model '{config.model}' has no rating head (it learns a ranking); "
            f"models that predict ratings: {heads}"
        )


def resolve_for_split(config: RunConfig, split: Split) -> RunConfig:
    """``config`` with the model's data-dependent settings fixed for ``split`` (e.g.
    semgraph's ``auto`` user tower); the run folder records the resolved values."""
    resolve = catalog.spec(config.model).resolve
    if resolve is None:
        return config
    return dataclasses.replace(config, model_params=resolve(config.model_params, split.sequential))


def model_inputs(split: Split, features: TextFeatures | None) -> dict[str, Any]:
    """The constructor tensors named by :attr:`ModelSpec.inputs`, from the split and text."""
    inputs: dict[str, Any] = {}
    if features is not None:
        inputs["item_emb"] = torch.from_numpy(features.items)
        inputs["item_text"] = torch.from_numpy(features.items)
        inputs["user_text"] = None if features.users is None else torch.from_numpy(features.users)
    if split.train.ratings is not None:
        inputs["rating_mean"] = float(split.train.ratings.mean())
    return inputs


@dataclass
class TrainedRun:
    path: Path
    config: RunConfig
    split: Split
    metrics: dict[str, Any]
    result: TrainResult | None


def train_and_save(
    data: str | Path,
    config: RunConfig,
    out: str | Path,
    *,
    dataset: Dataset | None = None,
    on_note: Callable[[str], None] = lambda s: None,
    overwrite: bool = False,
) -> TrainedRun | None:
    """Train ``config.model`` on ``data`` and write the run folder ``out``.

    Under ``torchrun`` every process trains its shard; process 0 evaluates, writes the
    run and returns it, the others return ``None``. An existing run at ``out`` is
    replaced only with ``overwrite`` (see :func:`semrec.artifacts.run.staging`).
    """
    check_out(out, overwrite)  # before any work: a refusal should not cost a training run
    dataset = dataset or load_dataset(data)
    for note in dataset.notes:
        on_note(note)
    split = make_split(dataset, config.data.split, seed=config.data.split_seed)
    for note in split.notes:
        on_note(note)
    config = resolve_for_split(config, split)
    spec = catalog.spec(config.model)
    features = None
    if spec.text:
        features = text_features(dataset, split.items, split.users, config.text,
                                 progress=config.train.progress)
        r = features.report
        on_note(f"text: {r['encoded']} texts encoded, {r['cached']} from cache ({features.encoder['name']})")
    seed_everything(config.train.seed)  # initialisation is part of the seeded run
    model = catalog.build(config.model, split.n_users, split.n_items, config.model_params,
                          model_inputs(split, features))
    out = Path(out)
    ctx = distributed.context()
    if not ctx.is_main:
        # other processes of a torchrun job train in step with process 0, which alone
        # evaluates and writes the run
        fit_model(model, split, config, features, None, None)
        distributed.finish(ctx)
        return None
    with staging(out, overwrite=overwrite, on_note=on_note) as folder:
        tracker = TensorBoardTracker(folder / "tensorboard", config.train.tensorboard, on_note=on_note)
        t0 = time.perf_counter()
        scorer, result, graph, split = fit_model(model, split, config, features, folder, tracker.log_epoch)
        fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        # what accuracy does not see too (diversity, novelty, popularity, groups), in the
        # model's own item space (text, else learned vectors, else co-occurrence)
        space = item_space(model, scorer, split.matrix("train"))
        test = evaluate_ranking(scorer, split, part="test", ks=DEFAULT_KS, beyond=True, space=space)
        beyond = test.pop("beyond")
        if config.train.task == "rating" and hasattr(model, "predict_ratings"):
            test.update(evaluate_rating(lambda u, i: model.predict_ratings(u, i, graph), split, "test"))
        cold = cold_sections(scorer, split, ks=DEFAULT_KS)
        eval_s = time.perf_counter() - t1
        n_test_users = int(test.pop("n_users", 0))
        metrics = {
            "test": test,
            **cold,
            "beyond": beyond,
            "n_test_users": n_test_users,
            "fit_s": fit_s,
            "eval_s": eval_s,
            "best_epoch": None if result is None else result.best_epoch,
            "best_valid": None if result is None else result.best_value,
            "epochs_run": None if result is None else result.epochs_run,
            "stopped_early": None if result is None else result.stopped_early,
        }
        if config.train.refit and result is not None:
            metrics["refit_epochs"] = result.best_epoch
        tracker.log_hparams({"model": {"name": config.model, **to_dict(config.model_params)},
                             "train": to_dict(config.train), "data": to_dict(config.data)},
                            {"test": test, **cold})
        tracker.close()  # before staging renames the folder
        metric_at_k_curve(test, folder / "metrics_at_k.png", title=f"{config.model}: test metrics at K")
        save_run(
            folder,
            model_name=config.model,
            model=model,
            model_config=config.model_params,
            data_config=config.data,
            train_config=config.train,
            split=split,
            scorer=scorer,
            dataset=describe_dataset(dataset),
            titles=dataset.item_titles(),
            metrics=metrics,
            text=features,
            text_config=config.text if features is not None else None,
        )
    distributed.finish(ctx)
    return TrainedRun(out, config, split, metrics, result)


def describe_dataset(dataset: Dataset) -> dict[str, Any]:
    """What a run records of its dataset (``run.json`` ``dataset``)."""
    return {
        "name": dataset.name,
        "path": str(dataset.path) if dataset.path else None,
        "fingerprint": dataset_fingerprint(dataset),
        # how item and user text was written, so new items and profiles read the same
        "item_template": effective_template(dataset.items, dataset.item_template),
        "user_template": effective_template(dataset.users, dataset.user_template),
    }


def fit_model(model, split: Split, config: RunConfig, features: TextFeatures | None, folder: Path | None,
              on_epoch) -> tuple[Scorer, TrainResult | None, InteractionGraph | None, Split]:
    """Fit ``model`` on the split's training part: ``(scorer, training result, graph,
    split)``. ``folder`` receives the epoch log and learning curve (``None``: nothing
    written); ``on_epoch`` is the training loop's per-epoch hook (TensorBoard, a tuner's
    pruning). With ``train.refit`` the model is trained a second time on train+valid
    (:func:`_refit`) and the split returned is that one. :func:`train_and_save` and
    ``semrec tune`` both fit through here."""
    if config.train.refit and split.cold_items is not None:
        raise ConfigError("train.refit: a cold-items split validates on held-out items, and training "
                          "on them would make them warm; leave refit off for this split")
    if config.train.refit and isinstance(model, FittedModel):
        split = split.with_valid_in_train()  # nothing to choose on validation: fit on all of it
    train = split.matrix("train")
    if isinstance(model, SemanticModel):
        stamps = None if split.train.timestamps is None else split.matrix("train", "timestamps")
        model.fit(train, timestamps=stamps)
        return model, None, None, split
    if isinstance(model, FittedModel):
        model.fit(train)
        return model, None, None, split
    device = resolve_device(config.train.device)
    knn = None if features is None else features.knn
    graph = training_graph(split, device, knn)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()} if config.train.refit else None
    result = fit(model, split, config.train, graph=graph, device=device, on_epoch=on_epoch,
                 log_path=None if folder is None else folder / "log.jsonl")
    if folder is not None:
        metric = "rmse" if config.train.task == "rating" else config.train.metric
        learning_curve(result.history, folder / "learning_curve.png", metric)
    if initial is not None and len(split.valid) and result.best_epoch >= 1:
        split, graph = _refit(model, initial, split, config, knn, device, result.best_epoch, folder)
    scorer = model.scorer(graph)
    if isinstance(scorer, HistoryScorer):  # serving answers a run user from all they did
        scorer.remember(split.matrix("train+valid+test+support", "timestamps"))
    return scorer, result, graph, split


def _refit(model, initial: dict[str, torch.Tensor], split: Split, config: RunConfig, knn, device: torch.device,
           epochs: int, folder: Path | None) -> tuple[Split, InteractionGraph]:
    """Train ``model`` again from its ``initial`` weights on train+valid for ``epochs``
    epochs (the count validation chose), without validation; the epochs are logged to
    ``refit_log.jsonl``. Returns the merged split and its graph."""
    full = split.with_valid_in_train()
    graph = training_graph(full, device, knn)
    model.load_state_dict(initial)
    fit(model, full, dataclasses.replace(config.train, epochs=epochs, max_seconds=None), graph=graph,
        device=device, validate=False, log_path=None if folder is None else folder / "refit_log.jsonl")
    return full, graph


def transfer_run(run: Run, data: str | Path, split_spec: str | None = None, *, dataset: Dataset | None = None,
                 on_note: Callable[[str], None] = lambda s: None) -> Run:
    """A text-only ``semgraph`` run (trained with ``--set ids=false``) applied, without
    training, to another dataset's catalogue and users: the run's text MLP, graph and user
    tower over the other dataset's item texts, its training interactions as the graph and
    its users' histories. Returns a :class:`Run` over the other dataset's split that
    ``evaluate`` and ``recommend`` use like any run (nothing is written; see
    :func:`save_transfer`).

    What does not carry over is left out: per-item priors (new catalogue: none) and user
    profile text (another dataset describes users differently). The text MLP centres the
    new catalogue's vectors by the new catalogue's own mean (see
    :class:`~semrec.models.semgraph.TextProjection`).
    """
    return _transfer(run, data, split_spec, dataset, on_note)[0]


def save_transfer(run_dir: str | Path, data: str | Path, out: str | Path, split_spec: str | None = None, *,
                  overwrite: bool = False, on_note: Callable[[str], None] = lambda s: None) -> Run:
    """:func:`transfer_run` written as a run folder at ``out`` (with its test metrics), to
    serve, evaluate or recommend from like any run; returns the loaded new run."""
    from semrec.artifacts.run import load_run

    out = Path(out)
    check_out(out, overwrite)
    moved, features, dataset = _transfer(load_run(run_dir), data, split_spec, None, on_note)
    test = evaluate_ranking(moved.scorer, moved.split, part="test", ks=DEFAULT_KS)
    n_test = int(test.pop("n_users", 0))
    with staging(out, overwrite=overwrite, on_note=on_note) as folder:
        save_run(folder, model_name=moved.model_name, model=moved.model, model_config=moved.model_config,
                 data_config=dataclasses.replace(moved.data_config, split=moved.split.spec),
                 train_config=moved.train_config, split=moved.split, scorer=moved.scorer,
                 dataset=describe_dataset(dataset), titles=moved.titles,
                 metrics={"test": test, "n_test_users": n_test, "transferred_from": str(run_dir)},
                 text=features, text_config=moved.text_config,
                 notes=[f"zero-shot: the text-only model of {run_dir}, not trained on this dataset"])
    return load_run(out)


def _transfer(run: Run, data: str | Path, split_spec: str | None, dataset: Dataset | None,
              on_note: Callable[[str], None]) -> tuple[Run, TextFeatures, Dataset]:
    from semrec.models.semgraph import SemGraph, resolve_history

    if run.model_name != "semgraph" or run.model_config.ids:
        raise ConfigError(f"run {run.path} cannot rank a catalogue it never saw: only a text-only semgraph run "
                          "can (train it with --model semgraph --set ids=false)")
    dataset = dataset or load_dataset(data)
    for note in dataset.notes:
        on_note(note)
    split = make_split(dataset, split_spec or run.data_config.split, seed=run.data_config.split_seed)
    cfg = run.model_config
    if cfg.history == "sequence" and not split.sequential:
        raise ConfigError(f"run {run.path} reads ordered histories (user_tower {cfg.user_tower}); split "
                          f"'{split.spec}' of {dataset.name} is not sequential: use leave-one-out or temporal "
                          "on data with times")
    cfg = resolve_history(cfg, split.sequential)
    features = text_features(dataset, split.items, None, run.text_config, progress=False)
    if run.text_encoder and features.encoder["fingerprint"] != run.text_encoder.get("fingerprint"):
        raise ConfigError(f"the text encoder at hand ({features.encoder['name']}) is not the one run {run.path} "
                          "was trained with; set [text] encoder to it")
    model = SemGraph(split.n_users, split.n_items, torch.from_numpy(features.items), **to_dict(cfg))
    mine = model.state_dict()
    # the learned maps carry over; tables of the old catalogue's items and users do not
    shared = {k: v for k, v in run.model.state_dict().items()
              if k in mine and v.shape == mine[k].shape and not k.startswith(("item_text", "user_", "item_bias"))}
    mine.update(shared)
    model.load_state_dict(mine)
    graph = training_graph(split, resolve_device("auto"), features.knn)
    scorer = model.scorer(graph).remember(split.matrix("train+valid+test+support", "timestamps"))
    info = {**run.info, "dataset": describe_dataset(dataset), "split": split.spec, "n_users": split.n_users,
            "n_items": split.n_items, "transferred_from": str(run.path)}
    moved = dataclasses.replace(run, info=info, model_config=cfg, split=split, titles=dataset.item_titles(),
                                metrics={}, model=model, scorer=scorer, _seen=None, _train=None, _seen_times=None)
    return moved, features, dataset
