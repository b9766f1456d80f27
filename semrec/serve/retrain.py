"""``semrec retrain``: a served run plus its stored events, warm-started into a new run.

* users: the run's, minus users deleted since the run was made (their interactions leave
  every part of the split), then users first seen in events; items: the run's, then the
  items posted to the service (their posted text is their text);
* training part: the run's plus the stored events the run does not contain yet, read in
  one snapshot of the store (:meth:`~semrec.serve.store.EventStore.snapshot`); validation
  and test parts stay as they were, so metrics stay comparable, and an event whose
  (user, item) pair is already in validation, test or support is not added to training
  (the run knows that pair already; training on it would leak it into the test);
* held-out entities of cold-start splits that live events name join training (a re-split,
  said in the run's notes): a cold item with live events is no longer cold, and a cold user
  with live events is trained on with their support interactions;
* an event without a rating, in a run whose data has ratings: for a rating run it is not
  a rating target, so it becomes a known but untrained interaction (the ``support`` part:
  left out of recommendations, never regressed on); for a ranking run the rating plays no
  part in training and it gets the training mean (not the top of the scale). Both are
  counted in the run's notes (``run.json``);
* the model is rebuilt at the new sizes and every per-user and per-item row of a known
  id is copied from the run (embeddings, biases, text buffers); new ids get fresh rows,
  other weights (text adapter, user tower) are copied whole; training then resumes
  with the run's own settings unless ``--set`` overrides them.

The new run folder records the store (its URL and id), how far it read (``serve.json``:
every id through a mark, plus the ids read above it) and which deletions it applied, so
a service switched to it replays only what came after, and a service on another store
replays that store whole.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semrec.artifacts.run import check_out, load_run, save_run, staging
from semrec.config import apply_sets, from_dict, to_dict
from semrec.data.dataset import Interactions
from semrec.data.idmap import IdMap
from semrec.data.split import Split
from semrec.errors import SemrecError
from semrec.evaluate.ranking import evaluate_ranking
from semrec.pipeline import DEFAULT_KS, RunConfig, fit_model, grown_model
from semrec.serve.store import EventStore, StoredEvent, default_url
from semrec.serve.tail import Watermark
from semrec.train.loop import TrainConfig, seed_everything


def retrain(
    run_dir: str | Path,
    out: str | Path,
    *,
    store_url: str | None = None,
    sets: Sequence[str] = (),
    overwrite: bool = False,
    on_note: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write a new run at ``out`` from ``run_dir`` and its stored events; returns a summary.
    An existing run at ``out`` is replaced only with ``overwrite``."""
    run_dir, out = Path(run_dir), Path(out)
    if out.resolve() == run_dir.resolve():
        raise SemrecError(f"--out {out} is the run being retrained; write the new run to another folder")
    check_out(out, overwrite)
    run = load_run(run_dir)
    mark = Watermark.read(run_dir)
    store = EventStore(store_url or mark.store or default_url(run_dir))
    try:
        if not mark.applies_to(store):
            mark = Watermark()  # the run holds nothing of this store: all of it is new
        snap = store.snapshot(events_after=mark.events, items_after=mark.items)
        url = store.url
    finally:
        store.close()
    events = [e for e in snap.events if e.id not in mark.events_above]
    posted = [s for s in snap.items if s.id not in mark.items_above and s.item not in run.items]
    # deletions the run has not applied yet (a retrained run applied those before it)
    deleted = {u for u, last in snap.deleted.items() if mark.deletions.get(u) != last}
    new_mark = Watermark(
        store=url, store_id=snap.store_id,
        events=snap.events_through, items=snap.items_through,
        events_above=_above(snap.events_through, mark.events_above, [e.id for e in snap.events]),
        items_above=_above(snap.items_through, mark.items_above, [s.id for s in snap.items]),
        deletions=dict(snap.deleted),
    )

    values = to_dict(run.train_config)
    apply_sets({"train": (TrainConfig, values)}, list(sets))
    train_config = from_dict(TrainConfig, values, "--set train.")

    keep_users = np.asarray([u not in deleted for u in run.users.ids], dtype=bool)
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
    split, notes = _grow_split(run.split, users, items, user_map, events, run.train_config.task)
    for note in notes:
        if on_note is not None:
            on_note(note)

    seed_everything(train_config.seed)  # the new rows' initialisation is part of the seeded run
    model, text = grown_model(run, split, user_map, [s.text for s in posted])
    titles = dict(run.titles)
    titles.update({s.item: s.title for s in posted if s.title})
    # the pipeline's own fit, on the grown split (a retrain resumes training: no refit)
    config = RunConfig(model=run.model_name, data=run.data_config, model_params=run.model_config,
                       train=dataclasses.replace(train_config, refit=False), text=run.text_config)
    with staging(out, overwrite=overwrite, on_note=on_note) as folder:
        t0 = time.perf_counter()
        scorer, result, _, split = fit_model(model, split, config, text, folder, None)
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
                 text_config=run.text_config if text is not None else None,
                 notes=[*run.info.get("notes", []), *notes])
        new_mark.write(folder, parent=run_dir)
    return {
        "run": str(out), "model": run.model_name, "new_events": len(events),
        "new_users": len(users) - n_known_users, "new_items": len(posted), "deleted_users": len(deleted),
        "n_users": len(users), "n_items": len(items), "fit_s": fit_s, "metrics": test, "notes": notes,
    }


def _above(through: int, before: Sequence[int], read: Sequence[int]) -> list[int]:
    """Ids above ``through`` that the new run contains: read now, or contained already."""
    return sorted({i for i in (*before, *read) if i > through})


def _pairs(inter: Interactions | None, n_items: int) -> np.ndarray:
    if inter is None:
        return np.zeros(0, dtype=np.int64)
    return inter.users.astype(np.int64) * n_items + inter.items.astype(np.int64)


def _live_events(events: list[StoredEvent], users: IdMap, items: IdMap) -> tuple[np.ndarray, ...]:
    """Stored events as ``(users, items, ratings or NaN, timestamps)`` in the new index
    space, the last one per (user, item) pair."""
    last: dict[tuple[int, int], StoredEvent] = {}
    for e in events:
        last[(users.index(e.user), items.index(e.item))] = e
    pairs = list(last)
    u = np.asarray([p[0] for p in pairs], dtype=np.int64)
    i = np.asarray([p[1] for p in pairs], dtype=np.int64)
    r = np.asarray([np.nan if last[p].rating is None else last[p].rating for p in pairs], dtype=np.float64)
    t = np.asarray([last[p].timestamp for p in pairs], dtype=np.int64)
    return u, i, r, t


def _remap(inter: Interactions, user_map: np.ndarray) -> Interactions:
    u = user_map[inter.users]
    return dataclasses.replace(inter.take(u >= 0), users=u[u >= 0])


def _grow_split(split: Split, users: IdMap, items: IdMap, user_map: np.ndarray, events: list[StoredEvent],
                task: str) -> tuple[Split, list[str]]:
    """The run's split in the new index space with the live events added (see the module
    docstring for which part each event joins); and notes saying what was done."""
    notes: list[str] = []
    changes: dict[str, Any] = {"users": users, "items": items, "notes": []}
    for f in dataclasses.fields(split):
        value = getattr(split, f.name)
        if isinstance(value, Interactions):
            changes[f.name] = _remap(value, user_map)
    cold_users = None
    if split.cold_users is not None:
        mapped = user_map[split.cold_users]
        cold_users = mapped[mapped >= 0]
    cold_items = split.cold_items
    n_items = len(items)
    train, support = changes["train"], changes.get("support")
    u, i, r, t = _live_events(events, users, items)
    if not len(u):
        return dataclasses.replace(split, **changes, cold_users=cold_users), notes

    # pairs the run already has in validation, test or support: known, and never trained on
    held = np.concatenate([_pairs(changes.get(p), n_items) for p in ("valid", "test", "support")])
    keep = ~np.isin(u * n_items + i, held)
    if (~keep).sum():
        notes.append(f"retrain: {int((~keep).sum())} live event(s) repeat a (user, item) pair of the "
                     "validation, test or support part; they stay there, out of training")
    u, i, r, t = u[keep], i[keep], r[keep], t[keep]

    # held-out entities with live events join training (a re-split of those entities)
    if cold_items is not None and len(u):
        warmed = np.intersect1d(cold_items, i)
        if len(warmed):
            cold_items = np.setdiff1d(cold_items, warmed)
            notes.append(f"retrain: {len(warmed)} held-out (cold) item(s) have live events and joined "
                         f"training; the cold section now covers the other {len(cold_items)}")
    if cold_users is not None and len(u):
        warmed = np.intersect1d(cold_users, u)
        if len(warmed):
            cold_users = np.setdiff1d(cold_users, warmed)
            if support is not None:
                moving = np.isin(support.users, warmed)
                train = Interactions.concat([train, support.take(np.flatnonzero(moving))])
                support = support.take(np.flatnonzero(~moving))
            notes.append(f"retrain: {len(warmed)} held-out (cold) user(s) have live events and joined "
                         f"training with their support interactions; the cold section covers the other "
                         f"{len(cold_users)}")

    rated_data = train.ratings is not None
    unrated = np.isnan(r)
    untrained = np.zeros(len(u), dtype=bool)  # unrated events of a rating run: known, not trained
    if rated_data and unrated.any():
        if task == "rating":
            untrained = unrated
            notes.append(f"retrain: {int(unrated.sum())} live event(s) without a rating are known "
                         "interactions (support part) but not rating targets")
        else:
            mean = float(np.mean(train.ratings)) if len(train.ratings) else 1.0
            r = np.where(unrated, mean, r)
            notes.append(f"retrain: {int(unrated.sum())} live event(s) without a rating got the training "
                         f"mean {mean:.3g} (a ranking run does not train on ratings)")
    # a pair already in training: a rated event updates its rating, an unrated one adds nothing
    in_train = np.isin(u * n_items + i, _pairs(train, n_items))
    replace = in_train & ~unrated if rated_data else np.zeros(len(u), dtype=bool)
    if replace.any():
        stale = np.isin(_pairs(train, n_items), (u * n_items + i)[replace])
        train = train.take(np.flatnonzero(~stale))
    add = (~in_train | replace) & ~untrained
    new_train = Interactions(u[add], i[add], r[add].astype(np.float32) if rated_data else None,
                             t[add] if train.timestamps is not None else None)
    changes["train"] = Interactions.concat([train, new_train])
    if untrained.any():
        # ratings only to keep the column whole: the support part is never a rating target
        fill = np.full(int(untrained.sum()), np.mean(train.ratings) if len(train.ratings) else 1.0, np.float32)
        extra = Interactions(u[untrained], i[untrained], fill, t[untrained] if train.timestamps is not None else None)
        support = extra if support is None else Interactions.concat([support, extra])
    if support is not None:
        changes["support"] = support
    return dataclasses.replace(split, **changes, cold_users=cold_users, cold_items=cold_items), notes
