"""The one training loop every trainable model shares.

A model contributes ``loss(batch, graph)``; this loop owns sampling, the optimiser,
validation, early stopping, the best checkpoint, progress and the per-epoch log.
"""
from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from semrec.data.split import Split
from semrec.errors import ConfigError, TrainingDiverged
from semrec.graph.interaction import InteractionGraph
from semrec.models.base import Batch, TrainableModel
from semrec.train import distributed
from semrec.train.sampler import NegativeSampler, n_batches, ranking_batches, rating_batches, user_batches
from semrec.train.threads import use_threads


@dataclass(frozen=True)
class TrainConfig:
    """How a trainable model is trained.

    Args:
        epochs: maximum passes over the training interactions (default 300; early
            stopping usually ends a run well before).
        batch_size: interactions per optimiser step (default 2048).
        lr: Adam learning rate (default 5e-3). Tuned on ml-100k ``given:u1``
            validation: at 1e-3 with 36 steps an epoch LightGCN was still rising after
            100 epochs; 5e-3 reaches a higher validation peak for LightGCN, XSimGCL and
            SemGraph.
        weight_decay: Adam weight decay; models add their own embedding
            regularisation on top (default 0).
        seed: seeds numpy and torch for sampling and initialisation (default 0).
        n_negatives: negatives per positive for ranking losses (default 1).
        task: ``ranking`` (BPR-style, early stopping on ``metric``) or ``rating``
            (MSE on observed ratings, early stopping on validation RMSE).
        metric: validation metric for early stopping in ranking (default ``ndcg@20``).
        eval_every: validate every this many epochs (default 1).
        patience: stop after this many validations without improvement (default 30:
            at lr 5e-3 the validation curves of the graph models rise slowly and
            noisily for 100-200 epochs; 10 stopped LightGCN early).
        max_seconds: stop after the epoch that passes this much training time
            (default ``None``: no limit).
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:1``, ...
        progress: show progress bars (default true).
        refit: once early stopping has chosen the number of epochs on validation, train
            again from the same initialisation on train+valid for that many epochs and
            keep that model (default false). The test then sees a model trained on all
            the interactions that reference results train on; the run's validation
            figures are the first fit's. Fitted models (popularity, ItemKNN, graph
            filter, semantic), which choose nothing on validation, are simply fitted on
            train+valid. Not for cold-items splits, whose validation items are held out
            of training on purpose.
        tensorboard: write TensorBoard logs (per-epoch scalars, hyper-parameters, final
            metrics) into the run folder (default true; ``--set tensorboard=false`` turns
            them off).
        threads: threads of torch's intra-op pool and numpy's BLAS. ``None`` (default):
            the cores other processes leave free, at least one, chosen when a ``semrec``
            command starts (:mod:`semrec.train.threads`: a busy pool slows small
            operations far beyond a fair share of the CPU); library callers keep their
            own setting unless this is set.
    """

    epochs: int = 300
    batch_size: int = 2048
    lr: float = 5e-3
    weight_decay: float = 0.0
    seed: int = 0
    n_negatives: int = 1
    task: Literal["ranking", "rating"] = "ranking"
    metric: str = "ndcg@20"
    eval_every: int = 1
    patience: int = 30
    max_seconds: float | None = None
    device: str = "auto"
    progress: bool = True
    refit: bool = False
    tensorboard: bool = True
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "n_negatives", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        if self.seed < 0:
            raise ConfigError(f"train.seed must be a whole number >= 0, got {self.seed}")
        if self.patience < 0:
            raise ConfigError(f"train.patience must be >= 0, got {self.patience}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"train.threads must be at least 1 (or none: chosen from the load), "
                              f"got {self.threads}")


def resolve_device(name: str, field: str = "train.device") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; errors name ``field``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{field}: unknown device '{name}'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{field} is '{name}' but no CUDA device is available")
    return dev


def training_graph(split: Split, device: torch.device | str = "cpu", item_item=None) -> InteractionGraph:
    """The graph a model trains on: the training interactions, their times (for the
    users' ordered sequences) where the data has them, and an optional item–item graph."""
    order = split.matrix("train", "timestamps") if split.train.timestamps is not None else None
    return InteractionGraph(split.matrix("train"), device, item_item=item_item, order=order)


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


@dataclass
class TrainResult:
    """What :func:`fit` did."""

    best_epoch: int
    best_value: float | None
    epochs_run: int
    train_s: float
    stopped_early: bool
    history: list[dict] = field(default_factory=list)


def fit(
    model: TrainableModel,
    split: Split,
    config: TrainConfig,
    *,
    graph: InteractionGraph | None = None,
    log_path: Path | None = None,
    device: torch.device | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
    batch_loss: Callable[[Batch], dict[str, torch.Tensor]] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    max_batches: int | None = None,
    validate: bool = True,
) -> TrainResult:
    """Train ``model`` on ``split.train``, validating on ``split.valid``.

    ``graph`` defaults to the training interactions; pass one to add an item–item
    graph. Restores the weights of the best validation epoch before returning. Each epoch
    appends one JSON line to ``log_path``: ``epoch``, ``loss`` (mean over batches),
    ``train_s`` (that epoch's training seconds), the other loss terms, and the
    validation metrics under their keys (``ndcg@20``, ... or ``rmse``) with
    ``eval_s`` when validated. ``on_epoch(epoch, record)`` is called after each epoch's
    record is logged; it may raise to abandon training (a tuner pruning a trial).

    The defaults train the usual way: ``model.loss(batch, graph)`` with Adam. Another
    strategy plugs in here without a second loop: ``batch_loss`` (terms of one batch,
    e.g. from a sampled neighbourhood, see :mod:`semrec.train.neighbor`), ``optimizer``,
    ``max_batches`` per epoch (timing runs) and ``validate=False`` (no validation).

    Under ``torchrun`` (see :mod:`semrec.train.distributed`) each process trains on its
    shard of every batch with gradients averaged across processes; process 0 validates,
    decides early stopping for all, and alone writes the log.
    """
    from semrec.evaluate.ranking import evaluate_ranking, evaluate_rating

    if config.threads is not None:
        use_threads(config.threads)
    rng = seed_everything(config.seed)
    ctx = distributed.context()
    device = distributed.device_for(ctx, device or resolve_device(config.device))
    batch_size = ctx.local_batch(config.batch_size)  # the global batch, split among processes
    model.to(device)
    train_csr = split.matrix("train")
    if graph is None:
        graph = training_graph(split, device)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rating = config.task == "rating"
    if rating and split.train.ratings is None:
        raise ConfigError("train.task is 'rating' but the dataset has no ratings")
    metric = "rmse" if rating else config.metric
    lower_is_better = metric in ("rmse", "mae")
    has_valid = validate and len(split.valid) > 0
    by_user = not rating and model.batches == "users"
    sampler = None if rating or by_user else NegativeSampler(train_csr, rng)
    if by_user:
        # whole users per step, about batch_size training interactions' worth of them
        active = np.flatnonzero(train_csr.getnnz(axis=1) > 0)
        users_per_batch = max(1, round(batch_size * len(active) / max(train_csr.nnz, 1)))
        steps = n_batches(len(range(ctx.rank, len(active), ctx.world_size)), users_per_batch)
    else:
        n_train = len(split.train) if rating else train_csr.nnz
        steps = n_batches(len(range(ctx.rank, n_train, ctx.world_size)), batch_size)
    if max_batches is not None:
        steps = min(steps, max_batches)
    if batch_loss is not None and ctx.enabled:
        raise ConfigError("a custom batch loss (neighbour sampling) trains in one process, not under torchrun")
    loss_of = batch_loss or distributed.loss_function(model, graph, ctx, device)

    def validate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            if rating:
                return evaluate_rating(lambda u, i: model.predict_ratings(u, i, graph), split, "valid")
            k = int(metric.split("@")[1]) if "@" in metric else 20
            # on a cold-items split the validation items are all held out: rank them among
            # themselves, as the test's cold section does, so early stopping follows cold quality
            cold = None if split.cold_items is None else np.intersect1d(split.cold_items, split.valid.items)
            out = evaluate_ranking(model.scorer(graph), split, part="valid", ks=sorted({k, 20}),
                                   candidates=cold if cold is not None and len(cold) else None)
            if metric not in out:
                raise ConfigError(f"train.metric '{metric}' is not a ranking metric; try ndcg@20 or recall@20")
            return out

    log = log_path.open("a", encoding="utf-8") if log_path is not None and ctx.is_main else None
    best_state = copy.deepcopy(model.state_dict())
    best_epoch, best_value, since_best = 0, None, 0
    history: list[dict] = []
    total_train_s = 0.0
    stopped_early = False
    epochs_bar = tqdm(range(1, config.epochs + 1), desc="train", unit="epoch", disable=not config.progress)
    try:
        for epoch in epochs_bar:
            model.train()
            t0 = time.perf_counter()
            if rating:
                tr = split.train
                batches = rating_batches(tr.users, tr.items, tr.ratings, batch_size, rng, ctx.shard)
            elif by_user:
                batches = user_batches(active, users_per_batch, rng, ctx.shard)
            else:
                batches = ranking_batches(train_csr, batch_size, config.n_negatives, rng, sampler, ctx.shard)
            sums: dict[str, float] = {}
            for step, batch in enumerate(tqdm(batches, total=steps, leave=False, desc=f"epoch {epoch}",
                                              disable=not config.progress)):
                if step >= steps:
                    break
                terms = loss_of(batch.to(device))
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
                for key, value in terms.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
            train_s = time.perf_counter() - t0
            total_train_s += train_s
            record: dict = {"epoch": epoch, **{k: v / steps for k, v in sums.items()}, "train_s": train_s}
            finite = math.isfinite(record["loss"]) and all(torch.isfinite(p).all() for p in model.parameters())
            if not finite:
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch} (loss {record['loss']:.4g}, or weights no longer "
                    "finite); lower train.lr (or the model's regularisation weight)"
                )
            last = epoch == config.epochs or (
                config.max_seconds is not None and total_train_s >= config.max_seconds
            )
            if config.max_seconds is not None:
                last = distributed.broadcast(ctx, last)  # clocks differ; process 0 decides
            if has_valid and (epoch % config.eval_every == 0 or last):
                t1 = time.perf_counter()
                scores = distributed.broadcast(ctx, validate() if ctx.is_main else None)
                record.update({k: v for k, v in scores.items() if k != "n_users"})
                record["eval_s"] = time.perf_counter() - t1
                value = scores[metric]
                better = best_value is None or (value < best_value if lower_is_better else value > best_value)
                if better:
                    best_epoch, best_value, since_best = epoch, value, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    since_best += 1
                epochs_bar.set_postfix(loss=f"{record['loss']:.4f}", **{metric: f"{value:.4f}"})
            else:
                epochs_bar.set_postfix(loss=f"{record['loss']:.4f}")
            history.append(record)
            if log is not None:
                log.write(json.dumps(record) + "\n")
                log.flush()
            if on_epoch is not None and ctx.is_main:
                on_epoch(epoch, record)
            if has_valid and since_best > config.patience:
                stopped_early = True
                break
            if last:
                break
    finally:
        if log is not None:
            log.close()
    if has_valid:
        model.load_state_dict(best_state)
    else:
        best_epoch = len(history)
    return TrainResult(best_epoch, best_value, len(history), total_train_s, stopped_early, history)
