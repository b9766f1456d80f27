"""The run folder: a self-describing, pickle-free record of one trained model.

Layout (``RUN_DIR/``)::

    run.json              format version, model name and kind, dataset, split, sizes, timings
    config.toml           [data], [model] (name + hyper-parameters), [train]
    ids.json              {"users": [...], "items": [...]}: external ids in index order
    titles.json           {item_id: title} where the data has titles
    split.safetensors     train / valid / test (and cold users' support) interactions, internal
                          indices; cold items and cold users
    model.safetensors     the model's state (weights or fitted statistics)
    embeddings.safetensors  final user and item embeddings (embedding models)
    knn.safetensors       semantic item–item neighbours (text models)
    metrics.json          test metrics (and cold sections), best validation value and epoch
    log.jsonl             one line per training epoch
    learning_curve.png
    metrics_at_k.png      test recall and NDCG against K
    tensorboard/          TensorBoard event files: per-epoch scalars, hyper-parameters, metrics
    events.sqlite         the event store, once the run is served (semrec serve)

A run is written into a hidden staging folder beside ``RUN_DIR`` and renamed into
place only when complete, so an interrupted save never leaves a run that loads.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from semrec import __version__
from semrec.config import DataConfig, TextConfig, dump_toml, from_dict, read_toml, to_dict
from semrec.data.dataset import Interactions
from semrec.data.idmap import IdMap
from semrec.data.split import Split
from semrec.errors import RunError
from semrec.graph.interaction import InteractionGraph
from semrec.graph.semantic import load_knn, save_knn
from semrec.models import catalog
from semrec.models.base import EmbeddingScorer, FittedModel, HistoryScorer, Scorer
from semrec.train.loop import TrainConfig

RUN_FORMAT = 1
PARTS = ("train", "valid", "test", "support")  # support: only in cold-user splits


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A fresh folder to write a run into; moved to ``out`` when the block succeeds.

    A previous run at ``out`` is replaced only after the new one is complete.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}-{time.time_ns()}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _split_tensors(split: Split) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for part in PARTS:
        inter: Interactions | None = getattr(split, part)
        if inter is None:
            continue
        out[f"{part}.users"] = torch.tensor(np.asarray(inter.users, dtype=np.int64))
        out[f"{part}.items"] = torch.tensor(np.asarray(inter.items, dtype=np.int64))
        if inter.ratings is not None:
            out[f"{part}.ratings"] = torch.tensor(np.asarray(inter.ratings, dtype=np.float32))
        if inter.timestamps is not None:
            out[f"{part}.timestamps"] = torch.tensor(np.asarray(inter.timestamps, dtype=np.int64))
    for name in ("cold_items", "cold_users"):
        if getattr(split, name) is not None:
            out[name] = torch.tensor(np.asarray(getattr(split, name), dtype=np.int64))
    return out


def _state_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_run(
    folder: Path,
    *,
    model_name: str,
    model: Any,
    model_config: Any,
    data_config: DataConfig,
    train_config: TrainConfig,
    split: Split,
    scorer: Scorer,
    dataset: dict[str, Any],
    titles: dict[str, str],
    metrics: dict[str, Any],
    text: Any = None,
    text_config: TextConfig | None = None,
) -> None:
    """Write every file of a run into ``folder`` (a staging folder from :func:`staging`)."""
    folder = Path(folder)
    spec = catalog.spec(model_name)
    info = {
        "format": RUN_FORMAT,
        "semrec_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": model_name,
        "kind": spec.kind,
        "dataset": dataset,
        "split": split.spec,
        "task": train_config.task,
        "n_users": split.n_users,
        "n_items": split.n_items,
        "text_encoder": None if text is None else text.encoder,
    }
    _write_json(folder / "run.json", info)
    sections = {
        "data": to_dict(data_config),
        "model": {"name": model_name, **to_dict(model_config)},
        "train": to_dict(train_config),
    }
    if text_config is not None:
        sections["text"] = to_dict(text_config)
    (folder / "config.toml").write_text(dump_toml(sections), encoding="utf-8")
    _write_json(folder / "ids.json", {"users": split.users.to_list(), "items": split.items.to_list()})
    _write_json(folder / "titles.json", titles)
    save_file(_split_tensors(split), str(folder / "split.safetensors"))
    save_file(_state_tensors(model.state_dict()), str(folder / "model.safetensors"))
    if isinstance(scorer, EmbeddingScorer):
        tables = {"user_emb": scorer.user_emb, "item_emb": scorer.item_emb}
        if isinstance(scorer, HistoryScorer) and scorer.item_layers is not None:
            tables["item_layers"] = scorer.item_layers  # (L + 1, n_items, d): new items propagate from them
        save_file({k: v.detach().cpu().contiguous() for k, v in tables.items()},
                  str(folder / "embeddings.safetensors"))
    if text is not None and text.knn is not None:
        save_knn(folder / "knn.safetensors", text.knn)
    _write_json(folder / "metrics.json", metrics)


@dataclass
class Run:
    """A loaded run folder."""

    path: Path
    info: dict[str, Any]
    model_name: str
    data_config: DataConfig
    train_config: TrainConfig
    model_config: Any
    text_config: TextConfig
    split: Split
    titles: dict[str, str]
    metrics: dict[str, Any]
    model: Any
    scorer: Scorer
    _seen: Any = field(default=None, repr=False)
    _train: Any = field(default=None, repr=False)
    _seen_times: Any = field(default=None, repr=False)

    @property
    def text_encoder(self) -> dict[str, Any] | None:
        """Name, fingerprint and settings of the encoder the run's text came from."""
        return self.info.get("text_encoder")

    def knn(self):
        """The semantic item–item graph ``(n_items, n_items)`` CSR, or ``None``."""
        p = self.path / "knn.safetensors"
        return load_knn(p) if p.is_file() else None

    @property
    def users(self) -> IdMap:
        return self.split.users

    @property
    def items(self) -> IdMap:
        return self.split.items

    def graph(self, device: str | torch.device = "cpu") -> InteractionGraph:
        """The graph the model propagates over: the training interactions, with the
        semantic item–item graph when the run has one (as training built it)."""
        order = self.split.matrix("train", "timestamps") if self.split.train.timestamps is not None else None
        return InteractionGraph(self.train_matrix(), device, item_item=self.knn(), order=order)

    def train_matrix(self):
        """CSR ``(n_users, n_items)`` of the training interactions (cached)."""
        if self._train is None:
            self._train = self.split.matrix("train")
        return self._train

    def seen(self):
        """CSR ``(n_users, n_items)`` of every interaction the run knows
        (train+valid+test, and the cold users' support)."""
        if self._seen is None:
            self._seen = self.split.matrix("train+valid+test+support")
        return self._seen

    def seen_times(self):
        """:meth:`seen` with each interaction's time as its value (ones where the data
        has no times): the ordered histories of models that read them in order."""
        if self._seen_times is None:
            self._seen_times = self.split.matrix("train+valid+test+support", "timestamps")
        return self._seen_times

    def history_of(self, user: int) -> np.ndarray:
        """User ``user``'s known items, oldest first (internal indices)."""
        m = self.seen_times()
        lo, hi = m.indptr[user], m.indptr[user + 1]
        cols, times = m.indices[lo:hi], m.data[lo:hi]
        return cols[np.lexsort((cols, times))].astype(np.int64)


def _require(path: Path, name: str) -> Path:
    p = path / name
    if not p.is_file():
        raise RunError(f"{path} is not a complete semrec run: {name} is missing")
    return p


def load_run(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """Load a run folder written by :func:`save_run` (no pickle involved)."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"run folder {path} does not exist")
    info = json.loads(_require(path, "run.json").read_text(encoding="utf-8"))
    if info.get("format") != RUN_FORMAT:
        raise RunError(f"{path}: run format {info.get('format')} is not supported (expected {RUN_FORMAT})")
    cfg = read_toml(_require(path, "config.toml"))
    model_name = info["model"]
    spec = catalog.spec(model_name)
    model_section = dict(cfg.get("model", {}))
    model_section.pop("name", None)
    data_config = from_dict(DataConfig, cfg.get("data", {}), "config.toml [data] ")
    train_config = from_dict(TrainConfig, cfg.get("train", {}), "config.toml [train] ")
    model_config = from_dict(spec.config, model_section, "config.toml [model] ")
    text_config = from_dict(TextConfig, cfg.get("text", {}), "config.toml [text] ")
    ids = json.loads(_require(path, "ids.json").read_text(encoding="utf-8"))
    tensors = load_file(str(_require(path, "split.safetensors")))
    parts = {}
    for part in PARTS:
        if f"{part}.users" in tensors:
            cols = [tensors.get(f"{part}.{k}") for k in ("users", "items", "ratings", "timestamps")]
            parts[part] = Interactions(*(None if c is None else c.numpy() for c in cols))
    optional = {name: tensors[name].numpy() for name in ("cold_items", "cold_users") if name in tensors}
    split = Split(spec=info["split"], users=IdMap(ids["users"]), items=IdMap(ids["items"]),
                  **optional, **parts)
    state = load_file(str(_require(path, "model.safetensors")))
    model = catalog.build(model_name, split.n_users, split.n_items, model_config, state)
    model.load_state_dict(state)
    if isinstance(model, FittedModel):
        scorer: Scorer = model
    else:
        emb = load_file(str(_require(path, "embeddings.safetensors")))
        # tables may be stored in half precision (semrec.serve.precision); score in float32
        tables = {k: v.float().to(device) for k, v in emb.items()}
        extra = {"layers": tables["item_layers"]} if "item_layers" in tables else {}
        scorer = model.scorer_from_embeddings(tables["item_emb"], split.matrix("train"),
                                              user_emb=tables["user_emb"], **extra)
    titles_path = path / "titles.json"
    titles = json.loads(titles_path.read_text(encoding="utf-8")) if titles_path.is_file() else {}
    metrics_path = path / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    return Run(path, info, model_name, data_config, train_config, model_config, text_config, split,
               titles, metrics, model, scorer)
