"""The fine-tuning loop and the two objectives wired through it.

:func:`finetune` loads the data, cuts the split, makes the encoder trainable (LoRA via
``peft`` unless ``full``), runs :func:`train_loop` on the objective's loss with early
stopping on validation, and writes ``out`` as a sentence-transformers folder (adapters
merged; the rating objective adds its head, :func:`semrec.finetune.rating.load_rating_head`)
with ``finetune.json`` (config, metrics, base and new fingerprints) and
``learning_curve.png``.

Config (``--set key=value``, all optional)::

    epochs = 1            max_steps = none      batch_size = 32     grad_accum = 1
    lr = none (5e-4 LoRA, 3e-5 full)            head_lr = 1e-3      weight_decay = 0.01
    lora_r = 8            lora_alpha = 16       lora_dropout = 0.1  lora_layers = none
    full = false
    patience = 3          eval_every = 0 (about ten validations per run)
    max_seq_length = 128  profile_items = 10    head_hidden = 256   head_dropout = 0.1
    temperature = 0.1     relational = 1.0      align_valid = 0.1     max_valid = 2000    baseline = false
    seed = 0              device = "auto"       progress = true
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from semrec.config import apply_sets, from_dict, to_dict
from semrec.data.dataset import Dataset
from semrec.data.load import load_dataset
from semrec.data.split import Split, make_split
from semrec.errors import ConfigError
from semrec.finetune.align import (
    GraphTargets,
    Projection,
    align_loss,
    cold_recall,
    graph_targets,
    knn_overlap,
    mean_cosine,
    similarity_correlation,
)
from semrec.finetune.data import Pairs, RatingData, rating_data
from semrec.finetune.ensemble import blend_report, graph_ratings
from semrec.finetune.model import TrainableEncoder, base_path
from semrec.finetune.rating import RatingHead, pair_vectors, predict, rating_metrics, save_rating_head
from semrec.models.losses import mse_loss
from semrec.train.loop import resolve_device

OBJECTIVES = ("rating", "align")
#: Learning rate of the encoder when ``lr`` is not set.
DEFAULT_LR = {"lora": 5e-4, "full": 3e-5}


@dataclass(frozen=True)
class FinetuneConfig:
    """How the language model is fine-tuned (``--set key=value``).

    Args:
        epochs: passes over the training examples (default 1).
        max_steps: stop after this many optimiser steps (default ``None``: epochs decide).
        lr: encoder (adapter) learning rate; ``None`` (default) is 5e-4 with LoRA, 3e-5 full.
        head_lr: learning rate of the rating head / alignment projection (default 1e-3).
        weight_decay: AdamW weight decay (default 0.01).
        lora_r, lora_alpha, lora_dropout: LoRA rank (default 8), scale (16), dropout (0.1).
        lora_layers: put adapters in the top this many transformer blocks only (default
            ``None``: all); backpropagation stops below them, so a step costs less.
        full: train every encoder weight instead of LoRA adapters (default false).
        batch_size: examples per forward pass (default 32).
        grad_accum: forward passes per optimiser step (default 1); the effective batch is
            ``batch_size * grad_accum``.
        patience: stop after this many validations without improvement (0: never; default 3).
        eval_every: validate every this many optimiser steps (0, default: about ten times
            per run, and at the end).
        max_seq_length: tokens kept per text while training (default 128).
        profile_items: rated training items written into a user's profile text (rating;
            default 10).
        head_hidden, head_dropout: the rating head's MLP (default 256, 0.1).
        temperature: InfoNCE temperature (align; default 0.1).
        relational: weight of the relational term of ``align`` that makes the encoder's
            own item similarities follow the graph's (default 1; 0: InfoNCE only).
        align_valid: fraction of the alignment items held out to validate on (default 0.1).
        max_valid: validation pairs used during training for ``rating`` (default 2000;
            ``None``: all). The final validation and test use every pair.
        baseline: also train the same head on the frozen encoder and report it (default false).
        seed: seeds sampling and initialisation (default 0).
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``, ...
        progress: show a progress bar (default true).
    """

    epochs: int = 1
    max_steps: int | None = None
    lr: float | None = None
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.1
    lora_layers: int | None = None
    full: bool = False
    batch_size: int = 32
    grad_accum: int = 1
    patience: int = 3
    eval_every: int = 0
    max_seq_length: int = 128
    profile_items: int = 10
    head_hidden: int = 256
    head_dropout: float = 0.1
    temperature: float = 0.1
    relational: float = 1.0
    align_valid: float = 0.1
    max_valid: int | None = 2000
    baseline: bool = False
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum", "head_hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"finetune.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_steps", "max_valid", "lora_layers"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"finetune.{name} must be at least 1 or none, got {v}")
        for name in ("lora_r", "patience", "eval_every", "profile_items"):
            if getattr(self, name) < 0:
                raise ConfigError(f"finetune.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "head_lr", "temperature", "lora_alpha"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ConfigError(f"finetune.{name} must be positive, got {v}")
        for name in ("weight_decay", "relational"):
            if getattr(self, name) < 0:
                raise ConfigError(f"finetune.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lora_dropout", "head_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"finetune.{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 < self.align_valid < 1:
            raise ConfigError(f"finetune.align_valid must be in (0, 1), got {self.align_valid}")
        if self.max_seq_length < 8:
            raise ConfigError(f"finetune.max_seq_length must be at least 8, got {self.max_seq_length}")

    @property
    def encoder_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR["full" if self.full else "lora"]


def build_finetune_config(sets: Sequence[str] = (), values: dict[str, Any] | None = None) -> FinetuneConfig:
    """``--set`` pairs (``key=value`` or ``finetune.key=value``) over ``values`` into a
    :class:`FinetuneConfig`; unknown keys and bad values raise :class:`ConfigError`
    naming the key."""
    sections = {"finetune": (FinetuneConfig, dict(values or {}))}
    apply_sets(sections, list(sets))
    return from_dict(FinetuneConfig, sections["finetune"][1], "[finetune] ")


# ----------------------------------------------------------------------------- loop


@dataclass
class LoopResult:
    """What :func:`train_loop` did. ``history`` rows: ``epoch`` (fractional), ``step``,
    ``loss`` (mean training loss since the previous row) and ``valid``."""

    history: list[dict[str, float]]
    steps: int
    best_step: int
    best_valid: float
    initial_valid: float
    stopped_early: bool
    train_s: float

    @property
    def s_per_step(self) -> float:
        return self.train_s / max(self.steps, 1)


def train_loop(
    *,
    n_train: int,
    loss_fn: Callable[[np.ndarray], torch.Tensor],
    evaluate: Callable[[], float],
    param_groups: list[dict[str, Any]],
    modules: list[torch.nn.Module],
    config: FinetuneConfig,
    device: torch.device,
    desc: str = "finetune",
) -> LoopResult:
    """Minimise ``loss_fn(batch_indices)`` over ``n_train`` examples with AdamW.

    Every ``eval_every`` optimiser steps (and at step 0 and at the end) ``evaluate()``
    (lower is better) decides early stopping; the trainable parameters of the best
    validation are restored at the end. ``grad_accum`` forward passes make one step; on
    CUDA the forward passes run in float16 autocast with a gradient scaler.
    """
    rng = np.random.default_rng(config.seed)
    per_step = config.batch_size * config.grad_accum
    steps_per_epoch = max(1, math.ceil(n_train / per_step))
    total = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    eval_every = config.eval_every or max(1, total // 10)
    params = [p for g in param_groups for p in g["params"]]
    optimizer = torch.optim.AdamW(param_groups, weight_decay=config.weight_decay)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if amp else None
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if amp else contextlib.nullcontext

    def set_train(mode: bool) -> None:
        for m in modules:
            m.train(mode)

    def snapshot() -> list[torch.Tensor]:
        return [p.detach().clone() for p in params]

    set_train(False)
    best_valid = initial = float(evaluate())
    best_state, best_step = snapshot(), 0
    history: list[dict[str, float]] = []
    bad, step, stopped = 0, 0, False
    running, n_running = 0.0, 0
    t0 = time.perf_counter()
    eval_s = 0.0
    set_train(True)
    bar = tqdm(total=total, desc=desc, unit="step", disable=not config.progress)
    order = np.zeros(0, dtype=np.int64)
    cursor = 0
    while step < total and not stopped:
        optimizer.zero_grad(set_to_none=True)
        for _ in range(config.grad_accum):
            if cursor >= len(order):
                order, cursor = rng.permutation(n_train), 0
            idx = order[cursor : cursor + config.batch_size]
            cursor += config.batch_size
            with autocast():
                loss = loss_fn(idx) / config.grad_accum
            if scaler is not None:
                scaler.scale(loss).backward()
            else:
                loss.backward()
            running += float(loss.detach()) * config.grad_accum
            n_running += 1
        if scaler is not None:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        step += 1
        bar.update(1)
        if step % eval_every == 0 or step == total:
            te = time.perf_counter()
            set_train(False)
            value = float(evaluate())
            set_train(True)
            eval_s += time.perf_counter() - te
            history.append({"epoch": step / steps_per_epoch, "step": step,
                            "loss": running / max(n_running, 1), "valid": value})
            bar.set_postfix(loss=f"{running / max(n_running, 1):.4f}", valid=f"{value:.4f}")
            running, n_running = 0.0, 0
            if value < best_valid:
                best_valid, best_state, best_step, bad = value, snapshot(), step, 0
            else:
                bad += 1
                if config.patience and bad >= config.patience:
                    stopped = step < total
    bar.close()
    train_s = time.perf_counter() - t0 - eval_s
    with torch.no_grad():
        for p, saved in zip(params, best_state):
            p.copy_(saved)
    set_train(False)
    return LoopResult(history, step, best_step, best_valid, initial, stopped, train_s)


# ----------------------------------------------------------------------------- objectives


@dataclass
class Outcome:
    """What an objective reports, written into ``finetune.json``."""

    metrics: dict[str, Any]
    loop: LoopResult
    notes: list[str] = field(default_factory=list)
    plot_metric: str = "valid"
    head: RatingHead | None = None  # the rating objective's head, saved beside the encoder


def _vectors(encoder: TrainableEncoder, texts: list[str], index: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Eval-mode vectors of the distinct ``index`` texts, scattered into ``(len(texts), d)``."""
    uniq = np.unique(index)
    out = torch.zeros(len(texts), encoder.dim)
    out[torch.as_tensor(uniq)] = torch.from_numpy(encoder.encode([texts[k] for k in uniq]))
    return out.to(encoder.device), uniq


def _predict_rating(encoder: TrainableEncoder, head: RatingHead, data: RatingData,
                    *parts: Pairs) -> list[np.ndarray]:
    """Clipped predictions ``(len(part),)`` for each of ``parts``; every distinct user and
    item text is encoded once."""
    users, _ = _vectors(encoder, data.user_texts, np.concatenate([p.users for p in parts]))
    items, _ = _vectors(encoder, data.item_texts, np.concatenate([p.items for p in parts]))
    return [predict(head, users, items, p, data.scale) for p in parts]


def _eval_rating(encoder: TrainableEncoder, head: RatingHead, data: RatingData,
                 *parts: Pairs) -> list[dict[str, float]]:
    """RMSE/MAE on each of ``parts``."""
    return [rating_metrics(pred, p) for pred, p in zip(_predict_rating(encoder, head, data, *parts), parts)]


def _rating(encoder: TrainableEncoder, data: RatingData, config: FinetuneConfig,
            device: torch.device, graph_preds: list[np.ndarray] | None = None) -> Outcome:
    torch.manual_seed(config.seed)
    head = RatingHead(encoder.dim, config.head_hidden, config.head_dropout, data.mean).to(device)
    valid = _subsample(data.valid, config.max_valid, config.seed)
    train = data.train

    def loss_fn(idx: np.ndarray) -> torch.Tensor:
        u = pair_vectors(encoder, data.user_texts, train.users[idx])  # (B, d)
        i = pair_vectors(encoder, data.item_texts, train.items[idx])  # (B, d)
        target = torch.as_tensor(train.ratings[idx], device=device)
        return mse_loss(head(u, i), target)

    loop = train_loop(
        n_train=len(train), loss_fn=loss_fn,
        evaluate=lambda: _eval_rating(encoder, head, data, valid)[0]["rmse"],
        param_groups=[{"params": encoder.trainable_parameters(), "lr": config.encoder_lr},
                      {"params": list(head.parameters()), "lr": config.head_lr}],
        modules=[encoder, head], config=config, device=device, desc="finetune rating",
    )
    preds = _predict_rating(encoder, head, data, data.valid, data.test)
    metrics = {"valid": rating_metrics(preds[0], data.valid), "test": rating_metrics(preds[1], data.test),
               "valid_rmse_before": loop.initial_valid}
    if graph_preds is not None:
        metrics["ensemble"] = blend_report((preds[0], preds[1]), (graph_preds[0], graph_preds[1]),
                                           data.valid, data.test, data.scale)
    return Outcome(metrics, loop, plot_metric="valid_rmse", head=head)


def frozen_baseline(base: Path, data: RatingData, config: FinetuneConfig, device: torch.device,
                    graph_preds: list[np.ndarray] | None = None) -> dict[str, Any]:
    """The same head trained on the frozen encoder's vectors (computed once): with the
    same schedule as the fine-tuning run, and (``converged``) until validation stops
    improving; with ``graph_preds`` (valid, test) each also blended with the graph."""
    frozen = TrainableEncoder(base, full=True, max_seq_length=config.max_seq_length, device=device)
    for p in frozen.parameters():
        p.requires_grad_(False)
    t0 = time.perf_counter()
    users = torch.from_numpy(frozen.encode(data.user_texts)).to(device)  # (n_users, d)
    items = torch.from_numpy(frozen.encode(data.item_texts)).to(device)  # (n_items, d)
    encode_s = time.perf_counter() - t0
    del frozen

    def train_head(cfg: FinetuneConfig) -> dict[str, Any]:
        torch.manual_seed(cfg.seed)
        head = RatingHead(users.shape[1], cfg.head_hidden, cfg.head_dropout, data.mean).to(device)

        def loss_fn(idx: np.ndarray) -> torch.Tensor:
            u = users[torch.as_tensor(train.users[idx], device=device)]
            i = items[torch.as_tensor(train.items[idx], device=device)]
            return mse_loss(head(u, i), torch.as_tensor(train.ratings[idx], device=device))

        loop = train_loop(
            n_train=len(train), loss_fn=loss_fn,
            evaluate=lambda: rating_metrics(predict(head, users, items, valid, data.scale), valid)["rmse"],
            param_groups=[{"params": list(head.parameters()), "lr": cfg.head_lr}],
            modules=[head], config=cfg, device=device,
        )
        pv, pt = (predict(head, users, items, part, data.scale) for part in (data.valid, data.test))
        out = {"valid": rating_metrics(pv, data.valid), "test": rating_metrics(pt, data.test),
               "steps": loop.steps, "best_step": loop.best_step, "train_s": loop.train_s}
        if graph_preds is not None:
            out["ensemble"] = blend_report((pv, pt), (graph_preds[0], graph_preds[1]), data.valid, data.test,
                                           data.scale)
        return out

    valid = _subsample(data.valid, config.max_valid, config.seed)
    train = data.train
    same = train_head(dataclasses.replace(config, progress=False))
    # the head alone is cheap: also train it to convergence (20 epochs at most, early stopping)
    per_epoch = math.ceil(len(train) / 256)
    converged = train_head(dataclasses.replace(
        config, progress=False, batch_size=256, grad_accum=1, epochs=20, max_steps=None,
        eval_every=per_epoch, patience=3))
    return {**same, "encode_s": encode_s, "converged": converged}


def _subsample(pairs: Pairs, n: int | None, seed: int) -> Pairs:
    if n is None or n >= len(pairs):
        return pairs
    keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=n, replace=False))
    return Pairs(pairs.users[keep], pairs.items[keep], pairs.ratings[keep])


def _align(encoder: TrainableEncoder, item_texts: list[str], targets: GraphTargets, split: Split,
           config: FinetuneConfig, device: torch.device) -> Outcome:
    rng = np.random.default_rng(config.seed)
    n = len(targets.items)
    perm = rng.permutation(n)
    n_valid = max(2, int(round(n * config.align_valid)))
    if n - n_valid < 2:
        raise ConfigError(f"only {n} items to align: too few to hold out {n_valid} for validation")
    valid_rows, train_rows = np.sort(perm[:n_valid]), np.sort(perm[n_valid:])
    graph = torch.from_numpy(targets.vectors).to(device)  # (N, d_g)
    texts = [item_texts[i] for i in targets.items]

    base_items = encoder.encode(item_texts)  # (n_items, d_t) before tuning
    base_text = base_items[targets.items]  # (N, d_t)
    torch.manual_seed(config.seed)
    proj = Projection(encoder.dim, graph.shape[1])
    proj.fit_least_squares(torch.from_numpy(base_text[train_rows]), graph[train_rows].cpu())
    proj.to(device)
    start_proj = Projection(encoder.dim, graph.shape[1])
    start_proj.load_state_dict(proj.state_dict())

    def loss_fn(idx: np.ndarray) -> torch.Tensor:
        rows = train_rows[idx]
        t = encoder([texts[r] for r in rows])  # (B, d_t)
        g = graph[torch.as_tensor(rows, device=device)]  # (B, d_g)
        return align_loss(proj(t), g, config.temperature, t, config.relational)

    @torch.no_grad()
    def evaluate() -> float:
        t = torch.from_numpy(encoder.encode([texts[r] for r in valid_rows])).to(device)
        g = graph[torch.as_tensor(valid_rows, device=device)]
        return float(align_loss(proj(t), g, config.temperature, t, config.relational))

    loop = train_loop(
        n_train=len(train_rows), loss_fn=loss_fn, evaluate=evaluate,
        param_groups=[{"params": encoder.trainable_parameters(), "lr": config.encoder_lr},
                      {"params": list(proj.parameters()), "lr": config.head_lr}],
        modules=[encoder, proj], config=config, device=device, desc="finetune align",
    )
    tuned_items = encoder.encode(item_texts)
    tuned_text = tuned_items[targets.items]
    proj = proj.cpu()
    g = targets.vectors
    metrics: dict[str, Any] = {
        "n_align_items": int(len(train_rows)),
        "n_valid_items": int(len(valid_rows)),
        "valid_loss_before": loop.initial_valid,
        "valid_loss": loop.best_valid,
        "similarity_correlation": {"before": similarity_correlation(base_text, g),
                                   "after": similarity_correlation(tuned_text, g),
                                   "train_before": similarity_correlation(base_text[train_rows], g[train_rows]),
                                   "train_after": similarity_correlation(tuned_text[train_rows], g[train_rows])},
        "knn_overlap@10": {"before": knn_overlap(base_text, g), "after": knn_overlap(tuned_text, g)},
        # the same (final) projection, applied to the base and to the tuned encoder
        "cosine_to_graph": {
            "before": mean_cosine(proj, base_text[train_rows], g[train_rows]),
            "after": mean_cosine(proj, tuned_text[train_rows], g[train_rows]),
            "start_projection_before": mean_cosine(start_proj, base_text[train_rows], g[train_rows]),
        },
    }
    before, after = cold_recall(split, base_items), cold_recall(split, tuned_items)
    if before:
        metrics["cold"] = {"n_items": before.get("n_items"), "n_users": before.get("n_users"),
                           "before": {k: v for k, v in before.items() if "@" in k},
                           "after": {k: v for k, v in after.items() if "@" in k}}
    return Outcome(metrics, loop, list(targets.notes), plot_metric="valid_infonce")


# ----------------------------------------------------------------------------- entry point


def finetune(
    data: str | Path,
    objective: str,
    out: str | Path,
    *,
    config: FinetuneConfig | None = None,
    split: str | None = None,
    split_seed: int | None = None,
    encoder: str | None = None,
    graph: str | Path | None = None,
    dataset: Dataset | None = None,
    on_note: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Fine-tune the encoder on ``data`` with ``objective`` and write the folder ``out``.

    Returns the summary also written to ``out/finetune.json``. ``split`` (a spec, see
    :mod:`semrec.data.split`) defaults to ``given`` for ``rating`` and to the graph run's
    own split and seed for ``align``; ``split_seed`` defaults to 0 (or the run's).
    """
    from semrec.artifacts.run import staging

    config = config or FinetuneConfig()
    if objective not in OBJECTIVES:
        raise ConfigError(f"--objective: unknown objective '{objective}'; expected one of {', '.join(OBJECTIVES)}")
    if objective == "align" and graph is None:
        raise ConfigError("--objective align needs --graph RUN_DIR: a trained graph run on the same dataset "
                          "(e.g. semrec train --model lightgcn --split cold-items:0.2 --out RUN_DIR)")
    device = resolve_device(config.device, "finetune.device")
    base = base_path(encoder)
    dataset = dataset or load_dataset(data)
    for note in dataset.notes:
        on_note(note)
    if split is None and objective == "align":
        from semrec.artifacts.run import load_run

        run_cfg = load_run(graph).data_config  # the graph's own split: no held-out item leaks
        split = run_cfg.split
        split_seed = run_cfg.split_seed if split_seed is None else split_seed
    split = split or "given"
    split_seed = 0 if split_seed is None else split_seed
    if objective == "rating":
        dataset = dataclasses.replace(dataset, implicit_threshold=None)  # every rating is a target
    spec, split = split, make_split(dataset, split, seed=split_seed)
    for note in split.notes:
        on_note(note)
    # everything about the data is checked before a model is loaded
    if objective == "rating":
        rdata = rating_data(dataset, split, config.profile_items, config.seed)
        on_note(f"rating: {len(rdata.train)} training pairs ({rdata.n_context} more written into "
                f"profiles), {len(rdata.valid)} valid, {len(rdata.test)} test")
        graph_preds = None if graph is None else graph_ratings(graph, split, rdata.valid, rdata.test)
    else:
        from semrec.text.build import item_texts

        targets = graph_targets(graph, split)
        for note in targets.notes:
            on_note(note)
    base_fp = _fingerprint(str(base))

    t0 = time.perf_counter()
    tenc = TrainableEncoder(base, lora_r=config.lora_r, lora_alpha=config.lora_alpha,
                            lora_dropout=config.lora_dropout, lora_layers=config.lora_layers, full=config.full,
                            max_seq_length=config.max_seq_length, device=device)
    trainable, total = tenc.count_parameters()
    torch.manual_seed(config.seed)
    baseline = None
    if objective == "rating":
        outcome = _rating(tenc, rdata, config, device, graph_preds)
        if config.baseline:
            baseline = frozen_baseline(base, rdata, config, device, graph_preds)
    else:
        outcome = _align(tenc, item_texts(dataset, split.items.ids), targets, split, config, device)
    fit_s = time.perf_counter() - t0

    out = Path(out)
    with staging(out, overwrite=True) as folder:  # an encoder folder is rewritten in place
        tenc.save(folder)
        if outcome.head is not None:
            save_rating_head(outcome.head, folder)
        from semrec.train.plots import learning_curve

        start = {"epoch": 0.0, "loss": float("nan"), outcome.plot_metric: outcome.loop.initial_valid}
        rows = [start] + [{**r, outcome.plot_metric: r["valid"]} for r in outcome.loop.history]
        learning_curve(rows, folder / "learning_curve.png", outcome.plot_metric)
        summary = {
            "objective": objective,
            "data": dataset.name,
            "split": spec,
            "split_seed": split_seed,
            "graph": None if graph is None else str(graph),
            "base_encoder": str(base),
            "base_fingerprint": base_fp,
            "method": "full" if tenc.full else "lora",
            "trainable_params": trainable,
            "total_params": total,
            "config": to_dict(config),
            "metrics": outcome.metrics,
            "baseline_frozen": baseline,
            "steps": outcome.loop.steps,
            "best_step": outcome.loop.best_step,
            "stopped_early": outcome.loop.stopped_early,
            "train_s": outcome.loop.train_s,
            "s_per_step": outcome.loop.s_per_step,
            "fit_s": fit_s,
            "history": outcome.loop.history,
            "notes": outcome.notes,
        }
        (folder / "finetune.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        # the fingerprint covers every file of the folder, this record included, so it is
        # taken last (and reported, not stored in the record it would have to cover)
        summary["fingerprint"] = _fingerprint(str(folder), memo=False)
    summary["out"] = str(out)
    return summary


def _fingerprint(folder: str, memo: bool = True) -> str:
    """What :attr:`semrec.text.encoder.TextEncoder.fingerprint` says of ``folder`` loaded
    with the ``[text]`` section's default settings (memoised per process and folder
    state unless ``memo`` is false)."""
    from semrec.text.encoder import TextEncoder

    path = Path(folder)
    key = f"{path.resolve()}:{max((p.stat().st_mtime_ns for p in path.rglob('*')), default=0)}"
    if not memo or key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = TextEncoder(folder, device="cpu", progress=False).fingerprint
    return _FINGERPRINTS[key]


_FINGERPRINTS: dict[str, str] = {}
