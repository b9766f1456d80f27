"""Readers and writers at once over real HTTP: no 5xx, and every acknowledged write is
visible afterwards (#20 item 6 and its deliverable)."""
from __future__ import annotations

import sys
import threading
import time
from collections import defaultdict

import httpx
import pytest

from semrec.serve.service import Service

WRITERS, EVENTS_PER_WRITER, BATCH = 4, 30, 20
ITEMS, VICTIMS = 6, 6
DEADLINE_S = 240  # a bound on the whole exchange, not a measurement


@pytest.fixture
def eager_thread_switches():
    """Threads switch every 10 us instead of every 5 ms, so that a reader caught halfway
    by a writer happens within one bounded run, not after hours of traffic."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


def test_reads_during_writes_items_and_deletions(serve, semgraph_run, eager_thread_switches):
    srv = serve(semgraph_run)
    url = srv.url
    statuses: dict[str, list[int]] = defaultdict(list)
    acknowledged: list[dict] = []  # events answered 200
    items_made: list[str] = []
    kept_after_deletion: dict[str, str] = {}  # victim -> the item posted after their deletion
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + DEADLINE_S

    def note(kind: str, r: httpx.Response) -> None:
        with lock:
            statuses[kind].append(r.status_code)

    def writer(w: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            for j in range(EVENTS_PER_WRITER):
                if time.monotonic() > deadline:
                    return
                # many new users per request: the users table grows while readers walk it
                batch = [{"user": f"w{w}-{j}-{b}", "item": f"{'s' if b % 2 else 'r'}{(j + b) % 18}",
                          "key": f"w{w}-{j}-{b}"} for b in range(BATCH)]
                batch.append({"user": f"u{w}", "item": f"s{j % 18}", "key": f"u{w}-{j}"})
                r = c.post("/events", json={"events": batch})
                note("events", r)
                if r.status_code == 200:
                    with lock:
                        acknowledged.extend(batch)

    def item_writer() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            for j in range(ITEMS):
                if time.monotonic() > deadline:
                    return
                item = f"new-{j}"
                r = c.post("/items", json={"item": item, "text": f"Starship crew {j} explores a distant galaxy"})
                note("items", r)
                if r.status_code == 201:
                    with lock:
                        items_made.append(item)
                    e = c.post("/events", json={"user": f"fan{j}", "item": item, "key": f"fan{j}"})
                    note("events", e)
                    if e.status_code == 200:
                        with lock:
                            acknowledged.append({"user": f"fan{j}", "item": item, "key": f"fan{j}"})

    def deleter() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            for v in range(VICTIMS):
                if time.monotonic() > deadline:
                    return
                user = f"u{40 + v}"  # a trained user
                note("events", c.post("/events", json={"user": user, "item": "r3"}))
                note("delete", c.delete(f"/users/{user}"))
                r = c.post("/events", json={"user": user, "item": "s4", "key": f"back-{user}"})
                note("events", r)
                if r.status_code == 200:
                    with lock:
                        kept_after_deletion[user] = "s4"

    def reader(r_id: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            j = 0
            while not stop.is_set() and time.monotonic() < deadline:
                user = f"u{(r_id * 7 + j) % 60}"
                note("recommend", c.get("/recommend", params={"user": user, "k": 10}))
                note("users", c.get("/users", params={"query": "w", "limit": 50}))
                note("similar", c.get("/similar", params={"item": f"s{j % 18}", "k": 5}))
                note("explain", c.get("/explain", params={"user": user, "item": f"r{j % 18}"}))
                note("history", c.get("/history", params={"user": f"w{j % WRITERS}-{j % EVENTS_PER_WRITER}-0"}))
                j += 1

    writers = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    writers += [threading.Thread(target=item_writer), threading.Thread(target=deleter)]
    readers = [threading.Thread(target=reader, args=(r,)) for r in range(4)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()

    server_errors = {k: [s for s in v if s >= 500] for k, v in statuses.items()}
    assert not any(server_errors.values()), {k: v for k, v in server_errors.items() if v}
    assert all(statuses[k] for k in ("recommend", "users", "similar", "explain", "history", "events", "items", "delete"))
    assert len(acknowledged) == WRITERS * EVENTS_PER_WRITER * (BATCH + 1) + ITEMS  # nothing ran out of time

    def visible(service: Service) -> None:
        state = service.state
        missing = []
        for e in acknowledged:
            user = e["user"]
            if user in kept_after_deletion:
                continue
            if state.cat.items.get(e["item"]) not in state.seen(state.user_entry(user)).tolist():
                missing.append(e)
        assert not missing, missing[:5]
        for user, item in kept_after_deletion.items():  # forgotten, then what came after the deletion
            entry = state.user_entry(user)
            assert entry.index is None and state.cat.items.ids[entry.items[0]] == item and len(entry.items) == 1
        assert all(i in state.cat.items for i in items_made)

    visible(srv.service)
    with httpx.Client(base_url=url, timeout=60) as c:
        for item in items_made:
            assert c.get("/similar", params={"item": item, "k": 3}).status_code == 200
        found = c.get("/users", params={"query": "w0-0-", "limit": 1000}).json()["users"]
        assert {u["user"] for u in found} >= {f"w0-0-{b}" for b in range(BATCH)}
    # and a server started afresh on the same store replays every one of them
    store = srv.service.store
    assert all(store.count_events(key=e["key"]) == 1 for e in acknowledged)
    again = Service(semgraph_run, srv.service.store_url, poll=0)
    try:
        visible(again)
    finally:
        again.close()
