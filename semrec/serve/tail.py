"""Where a live state is in the event store: :class:`Watermark`, the rows a run already
contains (a retrain writes it into ``serve.json``), and :class:`Tail`, the rows a state
has applied when several writers commit out of id order.
"""
from __future__ import annotations

import dataclasses
import heapq
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from semrec.errors import RunError
from semrec.serve.store import EventStore

#: What a retrain writes into its run folder: which store it read and how far, so a
#: service on that run replays only what came after.
SERVE_FILE = "serve.json"


@dataclass
class Watermark:
    """The store rows already contained in a run (written by a retrain into ``serve.json``).

    Args:
        store: URL of the store the retrain read (the default store of a service on the run).
        store_id: that store's id (:attr:`EventStore.store_id`): the mark applies to it alone.
        events / items: every row id through this one is contained (or never committed).
        events_above / items_above: ids above the mark that are contained too.
        deletions: ``{user: last event id at deletion}`` of the deletions applied.
    """

    store: str | None = None
    store_id: str | None = None
    events: int = 0
    items: int = 0
    events_above: list[int] = dataclasses.field(default_factory=list)
    items_above: list[int] = dataclasses.field(default_factory=list)
    deletions: dict[str, int] = dataclasses.field(default_factory=dict)

    @staticmethod
    def read(run_dir: Path) -> Watermark:
        p = Path(run_dir) / SERVE_FILE
        if not p.is_file():
            return Watermark()
        try:
            data = json.loads(p.read_bytes().decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            return Watermark(
                data.get("store"), data.get("store_id"),
                int(data.get("events_through", 0)), int(data.get("items_through", 0)),
                [int(i) for i in data.get("events_above", [])], [int(i) for i in data.get("items_above", [])],
                {str(u): int(e) for u, e in dict(data.get("deletions", {})).items()},
            )
        except (UnicodeDecodeError, ValueError, TypeError) as e:
            raise RunError(f"{p}: not a readable record of the event store ({e}); the run folder is damaged") from None

    def write(self, folder: Path, parent: Path | None = None) -> None:
        out = {"store": self.store, "store_id": self.store_id, "events_through": self.events,
               "items_through": self.items, "events_above": self.events_above,
               "items_above": self.items_above, "deletions": self.deletions}
        if parent is not None:
            out["parent"] = str(Path(parent).resolve())
        (Path(folder) / SERVE_FILE).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")

    def applies_to(self, store: EventStore) -> bool:
        """Whether the rows this mark counts are rows of ``store``. A mark without a store
        id (written before stores had one) is trusted for the store at the same URL."""
        if not (self.events or self.items or self.events_above or self.items_above or self.deletions):
            return True
        if self.store_id is not None:
            return self.store_id == store.store_id
        return self.store is not None and self.store == store.url


class Tail:
    """Which rows of an append-only table (ids increasing) a state has applied, when
    rows may commit out of id order.

    PostgreSQL hands out ids when a row is inserted, not when it commits: with several
    writers, row 12 can become visible before row 11. So a reader may not simply resume
    after the largest id it saw. It resumes after :attr:`through`, below which nothing
    is missing. Rows above it that are already applied are kept in :attr:`above` and
    skipped when read again. A missing id is given up (a rolled-back insert, or a
    deleted user's event) once it has stayed missing for ``grace`` seconds, counted from
    when the first row above it was applied.

    Args:
        through: ids up to this one are already applied.
        grace: seconds a missing id may take to commit (default 10).
    """

    def __init__(self, through: int = 0, grace: float = 10.0) -> None:
        self.through = int(through)
        self.grace = grace
        self.above: set[int] = set()
        self._heap: list[int] = []  # the ids of ``above``, smallest first
        self._marked: deque[tuple[float, int]] = deque()  # (when, id) in marking order

    def is_new(self, row_id: int) -> bool:
        return row_id > self.through and row_id not in self.above

    def mark(self, ids: Sequence[int], now: float) -> None:
        """Record ``ids`` as applied at time ``now`` (monotonic seconds, never
        decreasing) and move :attr:`through` as far as no id below it is missing."""
        for i in ids:
            if self.is_new(i):
                self.above.add(i)
                heapq.heappush(self._heap, i)
                self._marked.append((now, i))
        while self._heap:
            low = self._heap[0]
            if low == self.through + 1:
                heapq.heappop(self._heap)
                self.above.discard(low)
                self.through = low
                continue
            # ids through+1 .. low-1 are missing, and have been since the earliest
            # applied id above them was marked (every id still above is above them)
            while self._marked[0][1] <= self.through:
                self._marked.popleft()
            if now - self._marked[0][0] < self.grace:
                return
            self.through = low - 1

