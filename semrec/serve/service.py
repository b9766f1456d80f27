"""The service over a run: :class:`Service` owns the event store, the write lock and the
current :class:`~semrec.serve.state.LiveState`, and can switch to a new run without
dropping requests.

Several server processes may share one store (PostgreSQL, or one SQLite file): each
reads the store every ``poll`` seconds (:meth:`Service.sync`) and applies what the
others wrote, resuming after the last id below which nothing is missing
(:class:`~semrec.serve.tail.Tail`: PostgreSQL rows can commit out of id order).

Concurrency: readers never lock (see :mod:`semrec.serve.state`). Writers hold
:attr:`Service.lock` across the store commit and the update of the state, so the order
of the state equals the order of the store.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semrec.artifacts.run import Run, hold_folder, load_run, release_folder
from semrec.errors import SemrecError
from semrec.serve.index import IndexConfig
from semrec.serve.state import Conflict, LiveState, NotFound
from semrec.serve.store import Event, EventStore, default_url
from semrec.serve.tail import Watermark

log = logging.getLogger("semrec.serve")


def _resolved(path: str | None) -> Path | None:
    return None if not path else Path(path).resolve()


def _hold_store_folder(url: str) -> int | None:
    """Hold the folder of a SQLite store file (see :func:`hold_folder`)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # EventStore says what is wrong with the URL
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return hold_folder(Path(parsed.database).absolute().parent)



class Service:
    """A served run: its store, its live state, and the lock writers share.

    While it runs it holds the served run folder, and the folder of a SQLite store, so
    that ``semrec train --out`` never replaces either (:func:`semrec.artifacts.run.hold_folder`).

    Args:
        run_dir: the run folder to serve.
        store_url: SQLAlchemy URL of the event store; default: the store a retrain
            recorded in the run's ``serve.json``, else ``RUN_DIR/events.sqlite``.
        index_config: how item vectors are indexed.
        poll: seconds between reads of the store for what other server processes on
            it wrote (events, items, deletions); 0: never (default 1).
        runs_root: the folder :meth:`swap` may load runs from (default: ``run_dir``'s parent).
    """

    def __init__(self, run_dir: str | Path, store_url: str | None = None,
                 index_config: IndexConfig | None = None, poll: float = 1.0,
                 runs_root: str | Path | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.runs_root = Path(runs_root if runs_root is not None else self.run_dir.absolute().parent).resolve()
        self._held = {"run": hold_folder(self.run_dir), "store": None}
        try:
            self.store_url = store_url or Watermark.read(self.run_dir).store or default_url(self.run_dir)
            self._held["store"] = _hold_store_folder(self.store_url)
            self.index_config = index_config or IndexConfig()
            self.lock = threading.RLock()
            self.store = EventStore(self.store_url)
            try:
                self.state = LiveState.load(self.run_dir, self.store, self.index_config)
            except BaseException:
                self.store.close()
                raise
        except BaseException:
            for fd in self._held.values():
                release_folder(fd)
            raise
        run = self.state.run
        # what a switched-to run may name: the data and text encoder the operator started with
        self.dataset_path = _resolved((run.info.get("dataset") or {}).get("path"))
        self.encoder = _resolved(run.text_config.encoder)
        self._closed = threading.Event()
        self._poller = None
        if poll > 0:
            self._poller = threading.Thread(target=self._poll, args=(poll,), name="semrec-store-poll", daemon=True)
            self._poller.start()

    def _poll(self, every: float) -> None:
        while not self._closed.wait(every):
            self.sync()

    def sync(self) -> None:
        """Apply what the store holds and this process has not seen (the poller's step)."""
        try:
            with self.lock:
                self.state.catch_up(self.store)
        except SemrecError as e:  # a store that is down for a moment: serve on, try again
            log.warning("reading the event store failed: %s", e)
        except Exception:  # never let the poller die silently; the next poll tries again
            log.exception("applying what the event store holds failed")

    def close(self) -> None:
        self._closed.set()
        if self._poller is not None:
            self._poller.join(timeout=10)
        self.store.close()
        for key, fd in self._held.items():
            release_folder(fd)
            self._held[key] = None

    # ------------------------------------------------------------------ writes
    def post_events(self, batch: Sequence[Event]) -> dict[str, int]:
        """Store and apply events; ``{"received", "stored", "duplicates"}``.

        Every item must be known (the run's or posted to ``/items``); users may be new.
        """
        with self.lock:
            state = self.state
            unknown = sorted({e.item for e in batch if e.item not in state.cat.items})
            if unknown:
                raise NotFound(f"item: unknown item id(s) {', '.join(unknown[:5])}; post new items to "
                               "/items (with their text) before their events")
            added = self.store.add_events(batch)
            state.apply_events([e for e, new in zip(batch, added.fresh) if new])
            state.event_tail.mark(added.ids, time.monotonic())
        stored = sum(added.fresh)
        return {"received": len(batch), "stored": stored, "duplicates": len(batch) - stored}

    def post_item(self, item: str, text: str, title: str | None) -> dict[str, Any]:
        """Store, embed and index a new item; posting the same item again is a no-op."""
        if not text.strip():
            raise SemrecError("text: the item text is empty; a new item needs a description")
        with self.lock:
            state = self.state
            if item in state.run.items:
                raise Conflict(f"item: '{item}' is already in the run; new items need new ids")
            if item in state.cat.items:
                prior = self.store.stored_item(item)
                if prior is not None and (prior.text != text or prior.title != title):
                    raise Conflict(f"item: '{item}' was already posted with another text or title")
                return {"item": item, "created": False}
            # embedded before it is stored: an item whose text cannot be embedded is never stored
            vector = state.embed_item(text)
            stored, created = self.store.add_item(item, text, title)
            if stored.text != text or stored.title != title:
                raise Conflict(f"item: '{item}' was already posted with another text or title")
            state.add_items([stored], vector[None, :])
        return {"item": item, "created": created}

    def delete_user(self, user: str) -> dict[str, Any]:
        """Delete the user's events and forget them; ``{"user", "events_deleted", "known"}``."""
        with self.lock:
            state = self.state
            known = user in state.run.users or user in state.users
            removed = self.store.delete_user(user)
            state.forget_user(user)
        return {"user": user, "events_deleted": removed, "known": known}

    def swap(self, run_dir: str | Path) -> dict[str, Any]:
        """Serve ``run_dir`` from now on. Requests keep being answered by the old run
        while the new one loads and replays; the switch itself is one assignment.

        ``run_dir`` must be a run folder under :attr:`runs_root` (a name relative to it, or
        to the working directory, or an absolute path); anything else, existing or not, is
        the same :class:`NotFound`. The run must be of the served dataset
        (:meth:`check_compatible`) and name no other dataset folder or text encoder than
        the served run did, unless one under the runs root.
        """
        run_dir = self.resolve_run(run_dir)
        held = hold_folder(run_dir)
        try:
            run = load_run(run_dir)
            self.check_compatible(run)
            fresh = LiveState.load(run, self.store, self.index_config)
            with self.lock:
                fresh.catch_up(self.store)  # what was written while it loaded
                old, self.state = self.state, fresh
                self.run_dir = run_dir
                held, self._held["run"] = self._held["run"], held
        finally:
            release_folder(held)  # the folder no longer served (or the refused one)
        return {"run": str(run_dir), "previous": str(old.run.path), "model": fresh.run.model_name}

    def resolve_run(self, name: str | Path) -> Path:
        """The run folder ``name`` names under :attr:`runs_root`, or :class:`NotFound`
        (one message whether the path is outside the root, missing or no run)."""
        name = Path(name)
        tries = [name] if name.is_absolute() else [self.runs_root / name, Path.cwd() / name]
        for path in tries:
            try:
                real = path.resolve()
                if real.is_relative_to(self.runs_root) and real != self.runs_root and (real / "run.json").is_file():
                    return path
            except (OSError, RuntimeError, ValueError):  # unreadable, a symlink loop, a NUL byte
                continue
        raise NotFound(f"run: no run folder '{name}' under this server's runs root")

    def check_compatible(self, run: Run) -> None:
        """Refuse (:class:`Conflict`) a run of another dataset than the served one: the
        store's events name the served dataset's items. Runs carry the fingerprint of their
        dataset's items (:func:`~semrec.artifacts.run.dataset_fingerprint`); where either
        run predates it, the dataset names must agree and every item both runs know must
        have the same title. Also refused: a run naming another dataset folder or text
        encoder than the served one, unless it lies under the runs root."""
        served = self.state.run
        mine, theirs = served.info.get("dataset") or {}, run.info.get("dataset") or {}
        if mine.get("fingerprint") and theirs.get("fingerprint"):
            same = mine["fingerprint"] == theirs["fingerprint"]
        else:
            common = set(served.titles) & set(run.titles)
            same = mine.get("name") == theirs.get("name") and all(served.titles[i] == run.titles[i] for i in common)
        if not same:
            raise Conflict(f"run: '{run.path.name}' was trained on dataset '{theirs.get('name')}', not on the "
                           f"served '{mine.get('name')}' (their items differ); the store's events name the "
                           "served dataset's items, so it cannot take over this store")
        for what, path, allowed in (("dataset folder", theirs.get("path"), self.dataset_path),
                                    ("text encoder", run.text_config.encoder, self.encoder)):
            real = _resolved(path)
            if real is not None and real != allowed and not real.is_relative_to(self.runs_root):
                raise Conflict(f"run: '{run.path.name}' names a {what} this server was not started with; "
                               "switching to it needs a restart with that run")

    # ------------------------------------------------------------------ reads
    def health(self) -> dict[str, Any]:
        s = self.state
        return {
            "status": "ok",
            "run": str(s.run.path),
            "model": s.run.model_name,
            "n_users": len(s.run.users),
            "n_items": len(s.cat.items),
            "live_users": len(s.users),
            "cached_users": 0 if s.cat.top is None else len(s.cat.top.scores),
            "events_through": s.events_through,
            "store": self.store.dialect,
        }
