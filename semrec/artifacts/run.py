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

An existing run folder is replaced only when asked (``overwrite``), never while a
server holds it (:func:`hold_folder`), and a folder that holds an event store is never
deleted: the old run moves aside whole, store included, to ``RUN_DIR.replaced-TIME``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from semrec import __version__
from semrec.config import DataConfig, TextConfig, dump_toml, from_dict, read_toml, to_dict
from semrec.data.dataset import Interactions
from semrec.data.idmap import IdMap
from semrec.data.split import Split
from semrec.errors import ConfigError, RunError
from semrec.graph.interaction import InteractionGraph
from semrec.graph.semantic import load_knn, save_knn
from semrec.models import catalog
from semrec.models.base import EmbeddingScorer, FittedModel, HistoryScorer, Scorer
from semrec.train.loop import TrainConfig

try:  # advisory folder locks (POSIX); elsewhere a served folder is not detected
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

RUN_FORMAT = 1
PARTS = ("train", "valid", "test", "support")  # support: only in cold-user splits
#: The event store ``semrec serve`` keeps inside the run folder by default (SQLite file;
#: ``-wal`` and ``-shm`` beside it while it is open).
STORE_FILE = "events.sqlite"


def _has_store(folder: Path) -> bool:
    return any(folder.glob(f"{STORE_FILE}*"))


def hold_folder(folder: str | Path) -> int | None:
    """Take a shared lock on ``folder`` (a served run, or the folder of a SQLite event
    store) for as long as the returned descriptor is open; ``None`` where the folder does
    not exist or locks are not available. :func:`staging` refuses to replace a held
    folder. Waits while a run is being renamed into place there, then holds the new one.
    """
    if fcntl is None:
        return None
    folder = Path(folder)
    while True:
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            now = os.stat(folder)
        except OSError:
            now = None
        held = os.fstat(fd)
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)  # the folder was replaced while we waited for it: hold the new one


def release_folder(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _lock_exclusive(folder: Path) -> int | None:
    """An exclusive lock on ``folder``, or :class:`RunError` when a server holds it."""
    if fcntl is None:
        return None
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunError(f"{folder} is being served (a semrec server holds it or its event store); "
                       "stop the server first, or write the new run to another folder and switch "
                       "the server to it with POST /run") from None
    return fd


def check_out(out: str | Path, overwrite: bool = False) -> None:
    """Refuse ``out`` as a place for a new run unless it is new, empty, or a run folder
    that may be replaced (``overwrite``, not being served). Cheap: call it before
    training so that a long run does not end in this error."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise RunError(f"--out {out} is a file; give a folder for the run")
    if not any(out.iterdir()):
        return
    store = _has_store(out)
    if not (out / "run.json").is_file() and not store:
        raise RunError(f"--out {out} is a folder that is not a semrec run; give a new or empty folder "
                       "(only run folders are ever replaced)")
    if not overwrite:
        if store:
            raise RunError(f"--out {out} already holds a run with an event store; pass --overwrite to replace "
                           f"the run (it moves, store included, to {out.name}.replaced-TIME: nothing is "
                           "deleted), or choose another folder")
        raise RunError(f"--out {out} already holds a run; pass --overwrite to replace it, or choose another folder")
    release_folder(_lock_exclusive(out))


@contextmanager
def staging(out: Path, *, overwrite: bool = False,
            on_note: Callable[[str], None] | None = None) -> Iterator[Path]:
    """A fresh folder to write a run into; moved to ``out`` when the block succeeds.

    An existing run at ``out`` is refused unless ``overwrite`` (see :func:`check_out`),
    and replaced only after the new one is complete. A replaced folder that holds an event
    store is kept whole beside it (``OUT.replaced-TIME``, said through ``on_note``);
    one without a store is deleted. A folder a server holds is never replaced: the new run
    is then kept at ``OUT.new-TIME`` and :class:`RunError` says so.
    """
    out = Path(out)
    check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        check_out(out, overwrite)  # again: the folder may have appeared, or be served, by now
        fd = _lock_exclusive(out) if out.exists() else None
    except RunError as e:
        kept = out.parent / f"{out.name}.new-{stamp}-{os.getpid()}"
        os.replace(tmp, kept)
        raise RunError(f"{e} (the new run was written to {kept})") from None
    old = store = None
    try:
        if out.exists():
            store = _has_store(out)
            old = out.parent / (f"{out.name}.replaced-{stamp}-{os.getpid()}" if store
                                else f".{out.name}.old-{os.getpid()}-{time.time_ns()}")
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        release_folder(fd)
    if old is not None and store:
        if on_note is not None:
            on_note(f"the run replaced at {out} held an event store; the old run was kept whole, "
                    f"store included, at {old}")
    elif old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
    notes: list[str] | None = None,
) -> None:
    """Write every file of a run into ``folder`` (a staging folder from :func:`staging`).
    ``notes``: what the split (or a retrain) changed or dropped, kept in ``run.json``."""
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
        "notes": list(split.notes if notes is None else notes),
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


def _read_json(path: Path, name: str, kind: type, required: bool = True) -> Any:
    """``path/name`` parsed as JSON of type ``kind``; a clear :class:`RunError` otherwise."""
    p = path / name
    if not required and not p.is_file():
        return kind()
    try:
        value = json.loads(_require(path, name).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunError(f"{p}: not valid JSON ({e}); the run folder is damaged") from None
    if not isinstance(value, kind):
        raise RunError(f"{p}: expected a JSON {'object' if kind is dict else 'array'}, "
                       f"got {type(value).__name__}; the run folder is damaged")
    return value


def _read_tensors(path: Path, name: str) -> dict[str, torch.Tensor]:
    p = _require(path, name)
    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise RunError(f"{p}: not a readable safetensors file ({e}); the run folder is damaged") from None


def _ids(path: Path, ids: dict[str, Any], key: str) -> IdMap:
    values = ids.get(key)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RunError(f"{path / 'ids.json'}: expected \"{key}\": a list of string ids; the run folder is damaged")
    if len(set(values)) != len(values):
        raise RunError(f"{path / 'ids.json'}: \"{key}\" repeats an id; the run folder is damaged")
    return IdMap(values)


def _split_part(path: Path, tensors: dict[str, torch.Tensor], part: str, n_users: int,
                n_items: int) -> Interactions:
    where = f"{path / 'split.safetensors'} part '{part}'"
    cols = [tensors.get(f"{part}.{k}") for k in ("users", "items", "ratings", "timestamps")]
    if cols[1] is None:
        raise RunError(f"{where}: the items are missing; the run folder is damaged")
    arrays = [None if c is None else c.numpy() for c in cols]
    if any(a is not None and (a.ndim != 1 or len(a) != len(arrays[0])) for a in arrays):
        raise RunError(f"{where}: columns of different lengths; the run folder is damaged")
    for a, n, what in ((arrays[0], n_users, "user"), (arrays[1], n_items, "item")):
        if len(a) and (a.dtype.kind not in "iu" or a.min() < 0 or a.max() >= n):
            raise RunError(f"{where}: {what} indices outside the {n} ids of {path / 'ids.json'}; "
                           "the run folder is damaged")
    return Interactions(*arrays)


def load_run(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """Load a run folder written by :func:`save_run` (no pickle involved). A missing,
    unreadable or inconsistent file is a :class:`RunError` that names it."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"run folder {path} does not exist")
    info = _read_json(path, "run.json", dict)
    if info.get("format") != RUN_FORMAT:
        raise RunError(f"{path}: run format {info.get('format')} is not supported (expected {RUN_FORMAT})")
    for key, kind in (("model", str), ("split", str), ("dataset", dict)):
        if not isinstance(info.get(key), kind):
            raise RunError(f"{path / 'run.json'}: \"{key}\" is missing or not a {kind.__name__}; "
                           "the run folder is damaged")
    try:
        cfg = read_toml(_require(path, "config.toml"))
    except ConfigError as e:  # not UTF-8, not TOML: a file of the run, not the user's config
        raise RunError(f"{e}; the run folder is damaged") from None
    model_name = info["model"]
    if model_name not in catalog.MODELS:
        raise RunError(f"{path / 'run.json'}: unknown model '{model_name}' (this semrec knows "
                       f"{', '.join(catalog.MODELS)})")
    spec = catalog.spec(model_name)
    sections = {}
    for name in ("data", "model", "train", "text"):
        section = cfg.get(name, {})
        if not isinstance(section, dict):
            raise RunError(f"{path / 'config.toml'}: [{name}] is not a table; the run folder is damaged")
        sections[name] = dict(section)
    sections["model"].pop("name", None)
    data_config = from_dict(DataConfig, sections["data"], f"{path / 'config.toml'} [data] ")
    train_config = from_dict(TrainConfig, sections["train"], f"{path / 'config.toml'} [train] ")
    model_config = from_dict(spec.config, sections["model"], f"{path / 'config.toml'} [model] ")
    text_config = from_dict(TextConfig, sections["text"], f"{path / 'config.toml'} [text] ")
    ids = _read_json(path, "ids.json", dict)
    users, items = _ids(path, ids, "users"), _ids(path, ids, "items")
    tensors = _read_tensors(path, "split.safetensors")
    parts = {part: _split_part(path, tensors, part, len(users), len(items))
             for part in PARTS if f"{part}.items" in tensors or f"{part}.users" in tensors}
    missing = [p for p in ("train", "valid", "test") if p not in parts]
    if missing:
        raise RunError(f"{path / 'split.safetensors'}: part(s) {', '.join(missing)} missing; the run folder is damaged")
    optional = {name: tensors[name].numpy() for name in ("cold_items", "cold_users") if name in tensors}
    split = Split(spec=info["split"], users=users, items=items, **optional, **parts)
    state = _read_tensors(path, "model.safetensors")
    try:
        model = catalog.build(model_name, split.n_users, split.n_items, model_config, state)
        model.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunError(f"{path / 'model.safetensors'}: does not hold a '{model_name}' model for "
                       f"{split.n_users} users and {split.n_items} items ({reason}); the run folder is damaged") from None
    if isinstance(model, FittedModel):
        scorer: Scorer = model
    else:
        emb = _read_tensors(path, "embeddings.safetensors")
        user_emb, item_emb = emb.get("user_emb"), emb.get("item_emb")
        if (user_emb is None or item_emb is None or user_emb.ndim != 2 or item_emb.ndim != 2
                or user_emb.shape[0] != split.n_users or item_emb.shape[0] != split.n_items
                or user_emb.shape[1] != item_emb.shape[1]):
            raise RunError(f"{path / 'embeddings.safetensors'}: expected user_emb ({split.n_users}, d) and "
                           f"item_emb ({split.n_items}, d); the run folder is damaged")
        layers = emb.get("item_layers")
        if layers is not None and (layers.ndim != 3 or layers.shape[1] != split.n_items):
            raise RunError(f"{path / 'embeddings.safetensors'}: item_layers should be (L + 1, {split.n_items}, d); "
                           "the run folder is damaged")
        extra = {} if layers is None else {"layers": layers.float().to(device)}
        # tables may be stored in half precision (semrec.serve.precision); score in float32
        scorer = model.scorer_from_embeddings(item_emb.float().to(device), split.matrix("train"),
                                              user_emb=user_emb.float().to(device), **extra)
    titles = _read_json(path, "titles.json", dict, required=False)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in titles.items()):
        raise RunError(f"{path / 'titles.json'}: expected {{item id: title}} strings; the run folder is damaged")
    metrics = _read_json(path, "metrics.json", dict, required=False)
    return Run(path, info, model_name, data_config, train_config, model_config, text_config, split,
               titles, metrics, model, scorer)


def dataset_fingerprint(dataset: Any) -> str:
    """What the dataset's item ids mean: ``sha256`` over its item ids (sorted) and their
    titles where it has any. Two runs share it when their ids name the same things (any
    split of one dataset, a retrain of either); ``POST /run`` refuses a run whose
    fingerprint differs from the served one's."""
    ids = set(dataset.interactions["item_id"].astype(str))
    if dataset.items is not None:
        ids.update(dataset.items.index.astype(str))
    titles = dataset.item_titles()
    digest = hashlib.sha256()
    for item in sorted(ids):
        digest.update(item.encode("utf-8", "surrogatepass") + b"\x1f")
        digest.update(titles.get(item, "").encode("utf-8", "surrogatepass") + b"\x1e")
    return "items-v1:" + digest.hexdigest()
