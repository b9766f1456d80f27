"""The event store: every event, new item and user deletion the service acknowledges.

SQLAlchemy Core over SQLite by default (``RUN_DIR/events.sqlite``, WAL journal with
``synchronous=FULL`` so a committed transaction survives a killed process or a power
cut) or PostgreSQL by URL (``postgresql+psycopg://user:pw@host/db``). Every write
commits before it returns, so an event the API acknowledged is on disk.

Tables:

* ``events``: ``id`` (increasing, never reused), ``user_id``, ``item_id``, ``rating``
  (nullable), ``timestamp`` (Unix seconds), ``key`` (idempotency key, unique; nullable).
* ``items``: items posted to the service: ``id``, ``item_id`` (unique), ``text``, ``title``.
* ``deleted_users``: ``user_id``, ``event_id`` (the last event id at deletion time).
* ``meta``: ``key``, ``value``; ``store_id`` is a random id written when the store is
  created, so a run that records how far it read a store (``serve.json``) can tell that
  store from another one.

Replaying ``events`` and ``items`` in ``id`` order rebuilds the service's state.
:meth:`EventStore.snapshot` reads everything in one consistent view, with the id below
which nothing more can appear (PostgreSQL commits rows out of id order).
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from semrec.artifacts.run import STORE_FILE
from semrec.errors import SemrecError

MAX_ID = 256  # longest external id / idempotency key accepted

metadata = MetaData()

# Integer (not BigInteger) primary keys on SQLite: only INTEGER PRIMARY KEY is the rowid
# alias that AUTOINCREMENT needs; BigInteger elsewhere.
_Id = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("user_id", String(MAX_ID), nullable=False, index=True),
    Column("item_id", String(MAX_ID), nullable=False),
    Column("rating", Float, nullable=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("key", String(MAX_ID), nullable=True, unique=True),
    sqlite_autoincrement=True,  # ids never reused after deletions: replay order is stable
)

items = Table(
    "items",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("item_id", String(MAX_ID), nullable=False, unique=True),
    Column("text", Text, nullable=False),
    Column("title", Text, nullable=True),
    sqlite_autoincrement=True,
)

deleted_users = Table(
    "deleted_users",
    metadata,
    Column("user_id", String(MAX_ID), primary_key=True),
    Column("event_id", BigInteger, nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: Seconds a snapshot waits for writers that hold rows not yet committed (PostgreSQL).
SNAPSHOT_LOCK_TIMEOUT_S = 10


class StoreError(SemrecError):
    """The event store cannot be opened or written."""


@dataclass(frozen=True)
class Event:
    """One interaction as the API receives it (external ids)."""

    user: str
    item: str
    rating: float | None = None
    timestamp: int | None = None
    key: str | None = None


class Added(NamedTuple):
    """What :meth:`EventStore.add_events` wrote."""

    fresh: list[bool]  # per event of the batch: stored now (not a repeated key)
    ids: list[int]  # ids of the rows written, ascending


@dataclass(frozen=True)
class StoredEvent:
    id: int
    user: str
    item: str
    rating: float | None
    timestamp: int
    key: str | None


@dataclass(frozen=True)
class StoredItem:
    id: int
    item: str
    text: str
    title: str | None


@dataclass(frozen=True)
class Snapshot:
    """What a store held at one instant (:meth:`EventStore.snapshot`).

    ``events`` and ``items`` are the rows with ids above the ``after`` asked for, in id
    order. ``events_through`` / ``items_through``: no row with a smaller or equal id can
    become visible later (rows above it may, on PostgreSQL, commit late).
    """

    store_id: str
    deleted: dict[str, int]
    events: list[StoredEvent]
    items: list[StoredItem]
    events_through: int
    items_through: int


def default_url(run_dir: str | Path) -> str:
    """The SQLite file inside the served run folder."""
    return f"sqlite:///{Path(run_dir).resolve() / STORE_FILE}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit: acknowledged = durable
    cur.execute("PRAGMA busy_timeout=10000")  # wait for another process's write instead of failing
    cur.close()


class EventStore:
    """Durable events, items and deletions behind one SQLAlchemy engine.

    Args:
        url: SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            backend = make_url(url).get_backend_name()
        except ArgumentError:
            backend = None
        if backend not in ("sqlite", "postgresql"):
            raise StoreError(f"store URL {_redact(url)!r}: expected sqlite:///PATH or "
                             "postgresql+psycopg://USER:PASSWORD@HOST/DB")
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=backend == "postgresql")
        except (ArgumentError, ImportError) as e:
            raise StoreError(f"store URL {_redact(url)!r} cannot be used: {e}") from None
        if backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            metadata.create_all(self.engine)
            with self.engine.begin() as conn:  # a new store gets its id; an existing one keeps it
                conn.execute(self._insert(meta).on_conflict_do_nothing(index_elements=["key"]),
                             {"key": "store_id", "value": uuid.uuid4().hex})
                self.store_id: str = conn.execute(select(meta.c.value).where(meta.c.key == "store_id")).scalar_one()
        except SQLAlchemyError as e:
            raise StoreError(f"cannot open the event store at {_redact(url)}: {_reason(e)}") from None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, table: Table):
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    # ------------------------------------------------------------------ writes
    def add_events(self, batch: Sequence[Event]) -> Added:
        """Store ``batch`` in one committed transaction: per event, whether it is new, and
        the ids of the rows this call wrote.

        An event whose ``key`` is already stored (or repeats an earlier key of the same
        batch) is not stored again. Events without a key are always stored.
        """
        now = int(time.time())
        rows, fresh, seen_keys, ids = [], [], set(), []
        keys = [e.key for e in batch if e.key is not None]
        with self._begin() as conn:
            existing = set()
            for start in range(0, len(keys), 500):  # bounded IN lists
                chunk = keys[start:start + 500]
                existing.update(conn.execute(select(events.c.key).where(events.c.key.in_(chunk))).scalars())
            for e in batch:
                new = e.key is None or (e.key not in existing and e.key not in seen_keys)
                fresh.append(new)
                if e.key is not None:
                    seen_keys.add(e.key)
                if new:
                    rows.append({"user_id": e.user, "item_id": e.item, "rating": e.rating,
                                 "timestamp": now if e.timestamp is None else int(e.timestamp), "key": e.key})
            if rows:
                # ON CONFLICT DO NOTHING: another process may insert the same key between our
                # check and this insert; the unique key still stores it once.
                stmt = self._insert(events).on_conflict_do_nothing(index_elements=["key"]).returning(events.c.id)
                ids = sorted(conn.execute(stmt, rows).scalars())
        return Added(fresh, ids)

    def add_item(self, item: str, text: str, title: str | None) -> tuple[StoredItem, bool]:
        """Store a new item; returns the stored row and whether this call created it
        (an item stored before keeps its first text and title)."""
        with self._begin() as conn:
            stmt = self._insert(items).on_conflict_do_nothing(index_elements=["item_id"]).returning(items.c.id)
            created = conn.execute(stmt, {"item_id": item, "text": text, "title": title}).first() is not None
            row = conn.execute(select(items).where(items.c.item_id == item)).one()
        return StoredItem(row.id, row.item_id, row.text, row.title), created

    def stored_item(self, item: str) -> StoredItem | None:
        with self._connect() as conn:
            row = conn.execute(select(items).where(items.c.item_id == item)).one_or_none()
        return None if row is None else StoredItem(row.id, row.item_id, row.text, row.title)

    def delete_user(self, user: str) -> int:
        """Delete every event of ``user`` and record the deletion; returns events removed."""
        with self._begin() as conn:
            removed = conn.execute(delete(events).where(events.c.user_id == user)).rowcount
            last = conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
            conn.execute(delete(deleted_users).where(deleted_users.c.user_id == user))
            conn.execute(deleted_users.insert().values(user_id=user, event_id=int(last)))
        return int(removed or 0)

    # ------------------------------------------------------------------ reads
    def events(self, after: int = 0) -> Iterator[StoredEvent]:
        """Stored events with ``id > after``, in id order."""
        with self._connect() as conn:
            rows = conn.execute(select(events).where(events.c.id > after).order_by(events.c.id)).all()
        for r in rows:
            yield StoredEvent(r.id, r.user_id, r.item_id, r.rating, r.timestamp, r.key)

    def items(self, after: int = 0) -> list[StoredItem]:
        with self._connect() as conn:
            rows = conn.execute(select(items).where(items.c.id > after).order_by(items.c.id)).all()
        return [StoredItem(r.id, r.item_id, r.text, r.title) for r in rows]

    def events_of(self, users: Sequence[str], after: int = 0) -> list[StoredEvent]:
        """Stored events of ``users`` with ``id > after``, in id order."""
        users, rows = sorted(set(users)), []
        with self._connect() as conn:
            for start in range(0, len(users), 500):  # bounded IN lists
                chunk = users[start:start + 500]
                rows += conn.execute(select(events).where(events.c.user_id.in_(chunk) & (events.c.id > after))).all()
        rows.sort(key=lambda r: r.id)
        return [StoredEvent(r.id, r.user_id, r.item_id, r.rating, r.timestamp, r.key) for r in rows]

    def deleted_users(self) -> dict[str, int]:
        """``{user: last event id at deletion}``."""
        with self._connect() as conn:
            return {u: int(e) for u, e in conn.execute(select(deleted_users.c.user_id, deleted_users.c.event_id))}

    def count_events(self, key: str | None = None) -> int:
        with self._connect() as conn:
            q = select(func.count()).select_from(events)
            if key is not None:
                q = q.where(events.c.key == key)
            return int(conn.execute(q).scalar_one())

    def snapshot(self, events_after: int = 0, items_after: int = 0) -> Snapshot:
        """Deletions, events (``id > events_after``) and items (``id > items_after``) as of
        one instant, read in one transaction, with the ids through which nothing more can
        appear.

        SQLite commits one writer at a time in id order, so what one read transaction
        sees is a prefix: everything through its largest id. PostgreSQL hands out ids at
        insert and commits in any order, so the snapshot first waits (``LOCK ... IN SHARE
        MODE``, a few milliseconds) for every transaction still holding an uncommitted row
        and notes the largest id then: everything through it is final. Rows above it that
        the snapshot sees are returned too; the caller records them as applied above the
        mark (:class:`semrec.serve.tail.Tail`).
        """
        fence = None
        if self.dialect == "postgresql":
            fence = self._fence()
        try:
            with self.engine.connect() as conn:
                if self.dialect == "postgresql":
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                    conn.begin()
                else:
                    conn.exec_driver_sql("BEGIN")  # pysqlite would run each SELECT on its own
                deleted = {u: int(e) for u, e in conn.execute(select(deleted_users.c.user_id, deleted_users.c.event_id))}
                ev = conn.execute(select(events).where(events.c.id > events_after).order_by(events.c.id)).all()
                it = conn.execute(select(items).where(items.c.id > items_after).order_by(items.c.id)).all()
                e_max = conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
                i_max = conn.execute(select(func.coalesce(func.max(items.c.id), 0))).scalar_one()
                conn.commit()
        except OperationalError as e:
            raise StoreError(f"event store {_redact(self.url)} is unavailable: {_reason(e)}") from None
        through = (int(e_max), int(i_max)) if fence is None else fence
        return Snapshot(
            self.store_id, deleted,
            [StoredEvent(r.id, r.user_id, r.item_id, r.rating, r.timestamp, r.key) for r in ev],
            [StoredItem(r.id, r.item_id, r.text, r.title) for r in it],
            max(through[0], events_after), max(through[1], items_after),
        )

    def _fence(self) -> tuple[int, int]:
        """PostgreSQL: the largest event and item ids once no transaction holds an
        uncommitted row of either table (new writers wait for the few milliseconds this takes)."""
        tries, attempt = 3, 0
        while True:
            attempt += 1
            try:
                with self.engine.begin() as conn:
                    conn.execute(text(f"SET LOCAL lock_timeout = '{SNAPSHOT_LOCK_TIMEOUT_S}s'"))
                    conn.execute(text("LOCK TABLE events, items IN SHARE MODE"))
                    e = conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
                    i = conn.execute(select(func.coalesce(func.max(items.c.id), 0))).scalar_one()
                return int(e), int(i)
            except OperationalError as err:
                if attempt >= tries:
                    raise StoreError(f"event store {_redact(self.url)}: a writer kept rows uncommitted for "
                                     f"{SNAPSHOT_LOCK_TIMEOUT_S} s, {tries} times; try again ({_reason(err)})") from None

    def watermark(self) -> tuple[int, int]:
        """The largest event id and item id stored (0 when empty)."""
        with self._connect() as conn:
            e = conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
            i = conn.execute(select(func.coalesce(func.max(items.c.id), 0))).scalar_one()
        return int(e), int(i)

    # ------------------------------------------------------------------ plumbing
    def _begin(self):
        return _Guard(self, begin=True)

    def _connect(self):
        return _Guard(self, begin=False)


class _Guard:
    """A connection (or transaction) whose database errors become :class:`StoreError`."""

    def __init__(self, store: EventStore, begin: bool) -> None:
        self.store, self.begin = store, begin

    def __enter__(self):
        try:
            self._cm = self.store.engine.begin() if self.begin else self.store.engine.connect()
            return self._cm.__enter__()
        except OperationalError as e:
            raise StoreError(f"event store {_redact(self.store.url)} is unavailable: {_reason(e)}") from None

    def __exit__(self, *exc):
        try:
            return self._cm.__exit__(*exc)
        except OperationalError as e:
            raise StoreError(f"event store {_redact(self.store.url)} failed to commit: {_reason(e)}") from None


def _reason(e: SQLAlchemyError) -> str:
    return str(getattr(e, "orig", None) or e).splitlines()[0]


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, cred = head.partition("://")
    user = cred.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"
