"""The flow in one place: data -> split -> model -> train -> evaluate -> run folder."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from semrec.artifacts.run import check_out, dataset_fingerprint, save_run, staging
from semrec.config import DataConfig, TextConfig, apply_sets, from_dict, read_toml, to_dict
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


def build_config(
    model: str | None,
    config_file: str | Path | None = None,
    sets: tuple[str, ...] | list[str] = (),
    split: str | None = None,
) -> RunConfig:
    """Merge a TOML file, ``--split`` and ``--set`` pairs (in that order of precedence, last wins)."""
    raw = read_toml(config_file) if config_file else {}
    unknown = sorted(set(raw) - {"data", "model", "train", "text"})
    if unknown:
        raise ConfigError(
            f"{config_file}: unknown section(s) {', '.join(unknown)}; known: data, model, train, text"
        )
    model_values = dict(raw.get("model", {}))
    name = model or model_values.pop("name", None)
    model_values.pop("name", None)
    if not name:
        raise ConfigError("no model given: pass --model NAME or set [model] name in the config file")
    spec = catalog.spec(name)
    data_values = dict(raw.get("data", {}))
    if split:
        data_values["split"] = split
    sections = {
        "data": (DataConfig, data_values),
        "model": (spec.config, model_values),
        "train": (TrainConfig, dict(raw.get("train", {}))),
        "text": (TextConfig, dict(raw.get("text", {}))),
    }
    apply_sets(sections, sets)
    where = f"{config_file} " if config_file else ""
    return RunConfig(
        model=name,
        data=from_dict(DataConfig, data_values, f"{where}[data] "),
        model_params=from_dict(spec.config, model_values, f"{where}[model] "),
        train=from_dict(TrainConfig, sections["train"][1], f"{where}[train] "),
        text=from_dict(TextConfig, sections["text"][1], f"{where}[text] "),
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
            dataset={
                "name": dataset.name,
                "path": str(dataset.path) if dataset.path else None,
                "fingerprint": dataset_fingerprint(dataset),
                # how item and user text was written, so new items and profiles read the same
                "item_template": effective_template(dataset.items, dataset.item_template),
                "user_template": effective_template(dataset.users, dataset.user_template),
            },
            titles=dataset.item_titles(),
            metrics=metrics,
            text=features,
            text_config=config.text if features is not None else None,
        )
    distributed.finish(ctx)
    return TrainedRun(out, config, split, metrics, result)


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
