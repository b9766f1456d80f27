"""``semrec retrain``: a served run plus its stored events, warm-started into a new run.

* users: the run's, minus deleted ones (their interactions leave every part of the
  split), then users first seen in events; items: the run's, then the items posted to
  the service (their posted text is their text);
* training part: the run's plus every stored event after the run's watermark;
  validation and test parts stay as they were, so metrics stay comparable;
* the model is rebuilt at the new sizes and every per-user and per-item row of a known
  id is copied from the run (embeddings, biases, text buffers); new ids get fresh rows,
  other weights (text adapter, attention gate) are copied whole; training then resumes
  with the run's own settings unless ``--set`` overrides them.

The new run folder records the store and how far it read (``serve.json``), so a service
switched to it replays only the events that came after.
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semrec.artifacts.run import Run, load_run, save_run, staging
from semrec.config import apply_sets, from_dict, to_dict
from semrec.data.dataset import Interactions
from semrec.data.idmap import IdMap
from semrec.data.split import Split
from semrec.errors import SemrecError
from semrec.models import catalog
from semrec.models.base import FittedModel, Scorer
from semrec.models.semantic import SemanticModel
from semrec.serve.live import SERVE_FILE, Watermark
from semrec.serve.store import EventStore, StoredEvent, default_url
from semrec.train.loop import TrainConfig, fit, resolve_device, seed_everything


def retrain(
    run_dir: str | Path,
    out: str | Path,
    *,
    store_url: str | None = None,
    sets: Sequence[str] = (),
) -> dict[str, Any]:
    """Write a new run at ``out`` from ``run_dir`` and its stored events; returns a summary."""
    from semrec.evaluate.ranking import evaluate_ranking
    from semrec.graph.interaction import InteractionGraph
    from semrec.pipeline import DEFAULT_KS

    run_dir, out = Path(run_dir), Path(out)
    if out.resolve() == run_dir.resolve():
        raise SemrecError(f"--out {out} is the run being retrained; write the new run to another folder")
    run = load_run(run_dir)
    mark = Watermark.read(run_dir)
    store = EventStore(store_url or mark.store or default_url(run_dir))
    try:
        deleted = set(store.deleted_users())
        events = list(store.events(after=mark.events))
        posted = [s for s in store.items(after=mark.items) if s.item not in run.items]
        events_through, items_through = store.watermark()
        url = store.url
    finally:
        store.close()

    values = to_dict(run.train_config)
    apply_sets({"train": (TrainConfig, values)}, list(sets))
    train_config = from_dict(TrainConfig, values, "--set train.")

    keep_users = np.asarray([u not in deleted for u in run.users.ids])
    users = IdMap([u for u, k in zip(run.users.ids, keep_users) if k])
    n_known_users = len(users)
    users.add(e.user for e in events)
    items = IdMap(run.items.ids + [s.item for s in posted])
    unknown = sorted({e.item for e in events if e.item not in items})
    if unknown:
        raise SemrecError(f"stored events name items that are neither in the run nor posted: "
                          f"{', '.join(unknown[:5])}")
    user_map = np.full(len(run.users), -1, dtype=np.int64)
    user_map[keep_users] = np.arange(n_known_users)
    split = _grow_split(run.split, users, items, user_map, _events_part(run, events, users, items))

    model, text = _grown_model(run, split, user_map, [s.text for s in posted])
    titles = dict(run.titles)
    titles.update({s.item: s.title for s in posted if s.title})
    seed_everything(train_config.seed)
    with staging(out) as folder:
        t0 = time.perf_counter()
        result = None
        train = split.matrix("train")
        if isinstance(model, SemanticModel):
            model.fit(train)
            scorer: Scorer = model
        elif isinstance(model, FittedModel):
            model.fit(train)
            scorer = model
        else:
            device = resolve_device(train_config.device)
            graph = InteractionGraph(train, device, item_item=None if text is None else text.knn)
            result = fit(model, split, train_config, graph=graph, log_path=folder / "log.jsonl", device=device)
            scorer = model.scorer(graph)
        fit_s = time.perf_counter() - t0
        test = evaluate_ranking(scorer, split, part="test", ks=DEFAULT_KS)
        n_test_users = int(test.pop("n_users", 0))
        metrics = {
            "test": test, "n_test_users": n_test_users, "fit_s": fit_s,
            "best_epoch": None if result is None else result.best_epoch,
            "best_valid": None if result is None else result.best_value,
            "epochs_run": None if result is None else result.epochs_run,
            "warm_start": str(run_dir),
        }
        save_run(folder, model_name=run.model_name, model=model, model_config=run.model_config,
                 data_config=run.data_config, train_config=train_config, split=split, scorer=scorer,
                 dataset=run.info["dataset"], titles=titles, metrics=metrics, text=text,
                 text_config=run.text_config if text is not None else None)
        (folder / SERVE_FILE).write_text(json.dumps({
            "store": url, "events_through": events_through, "items_through": items_through,
            "parent": str(run_dir.resolve()),
        }, indent=2) + "\n", encoding="utf-8")
    return {
        "run": str(out), "model": run.model_name, "new_events": len(events),
        "new_users": len(users) - n_known_users, "new_items": len(posted), "deleted_users": len(deleted),
        "n_users": len(users), "n_items": len(items), "fit_s": fit_s, "metrics": test,
    }


def _events_part(run: Run, events: list[StoredEvent], users: IdMap, items: IdMap) -> Interactions:
    """Stored events as training interactions in the new index space (last one per pair)."""
    last: dict[tuple[int, int], StoredEvent] = {}
    for e in events:
        last[(users.index(e.user), items.index(e.item))] = e
    pairs = list(last)
    u = np.asarray([p[0] for p in pairs], dtype=np.int64)
    i = np.asarray([p[1] for p in pairs], dtype=np.int64)
    ratings = timestamps = None
    base = run.split.train
    if base.ratings is not None:
        # an event without a rating is a positive: it gets the top of the run's scale
        top = float(np.max(base.ratings)) if len(base.ratings) else 1.0
        ratings = np.asarray([top if last[p].rating is None else last[p].rating for p in pairs], np.float32)
    if base.timestamps is not None:
        timestamps = np.asarray([last[p].timestamp for p in pairs], dtype=np.int64)
    return Interactions(u, i, ratings, timestamps)


def _remap(inter: Interactions, user_map: np.ndarray) -> Interactions:
    u = user_map[inter.users]
    return dataclasses.replace(inter.take(u >= 0), users=u[u >= 0])


def _grow_split(split: Split, users: IdMap, items: IdMap, user_map: np.ndarray, new: Interactions) -> Split:
    changes: dict[str, Any] = {"users": users, "items": items, "notes": []}
    for f in dataclasses.fields(split):
        value = getattr(split, f.name)
        if isinstance(value, Interactions):
            changes[f.name] = _remap(value, user_map)
    if getattr(split, "cold_users", None) is not None:
        mapped = user_map[split.cold_users]
        changes["cold_users"] = mapped[mapped >= 0]
    if len(new):
        train = changes["train"]
        keep_r = train.ratings is not None and new.ratings is not None
        keep_t = train.timestamps is not None and new.timestamps is not None
        changes["train"] = Interactions(
            np.concatenate([train.users, new.users]), np.concatenate([train.items, new.items]),
            np.concatenate([train.ratings, new.ratings]) if keep_r else None,
            np.concatenate([train.timestamps, new.timestamps]) if keep_t else None,
        )
    return dataclasses.replace(split, **changes)


def _grown_model(run: Run, split: Split, user_map: np.ndarray, new_texts: list[str]):
    """The run's model at the new sizes, rows of known ids copied; and the text features."""
    state = {k: v.detach().cpu() for k, v in run.model.state_dict().items()}
    old_users, old_items = len(run.users), len(run.items)
    n_users, n_items = split.n_users, split.n_items
    kept = torch.as_tensor(np.flatnonzero(user_map >= 0))
    text = None
    inputs: dict[str, Any] = {}
    spec = catalog.spec(run.model_name)
    if spec.text:
        from semrec.graph.semantic import semantic_knn
        from semrec.text.features import TextFeatures, load_encoder

        key = "item_text" if "item_text" in state else "item_emb"
        vectors = state[key].float().numpy()
        if new_texts:
            encoder = load_encoder(run.text_config, progress=False)
            if run.text_encoder and encoder.fingerprint != run.text_encoder.get("fingerprint"):
                raise SemrecError(f"the text encoder at hand ({encoder.name}) is not the one run {run.path} "
                                  "was trained with; set [text] encoder to it")
            vectors = np.vstack([vectors, encoder.encode(new_texts).astype(np.float32)])
        inputs["item_text"] = inputs["item_emb"] = torch.from_numpy(vectors)
        if state.get("user_text") is not None and "user_text" in state:
            grown = torch.zeros(n_users, state["user_text"].shape[1])
            grown[: len(kept)] = state["user_text"][kept]
            inputs["user_text"] = grown
        knn = semantic_knn(vectors, run.text_config.knn) if run.text_config.knn > 0 and n_items > 1 else None
        text = TextFeatures(vectors, None, run.text_encoder or {}, {}, knn)
    if "rating_mean" in state:
        inputs["rating_mean"] = float(state["rating_mean"])
    model = catalog.build(run.model_name, n_users, n_items, run.model_config, inputs)
    if isinstance(model, FittedModel):
        return model, text  # refitted from the grown training part
    fresh = model.state_dict()
    for name, value in state.items():
        if name not in fresh:
            continue
        target = fresh[name]
        if name.startswith("user") and value.shape[:1] == (old_users,) and target.shape[:1] == (n_users,):
            target[: len(kept)] = value[kept]
        elif name.startswith("item") and value.shape[:1] == (old_items,) and target.shape[:1] == (n_items,):
            target[:old_items] = value
        elif value.shape == target.shape:
            target.copy_(value)
    model.load_state_dict(fresh)
    return model, text
