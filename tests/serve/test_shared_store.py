"""Several server processes on one event store: each picks up what the others write
(events, items, deletions), also when rows commit out of id order."""
from __future__ import annotations

import time
from contextlib import contextmanager

import pytest

from semrec.serve.service import Service
from semrec.serve.store import Event
from semrec.serve.tail import Tail


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.sqlite'}"
    return request.getfixturevalue("postgres_url")


def test_tail_waits_for_an_id_that_commits_late_then_gives_up_on_it():
    tail = Tail(through=0, grace=10)
    tail.mark([1, 2, 4], now=0.0)  # 3 is not visible yet
    assert tail.through == 2 and tail.is_new(3) and not tail.is_new(4)
    tail.mark([3], now=1.0)  # it committed late: read and applied
    assert tail.through == 4 and tail.above == set()
    tail.mark([6], now=2.0)  # 5 never commits
    tail.mark([8], now=5.0)  # nor does 7
    tail.mark([], now=11.0)
    assert tail.through == 4 and tail.is_new(5)  # within the grace period: still waiting
    tail.mark([], now=12.5)
    assert tail.through == 6  # 5 given up (missing since 6 came at 2.0); 7 only since 5.0
    tail.mark([], now=15.5)
    assert tail.through == 8 and tail.above == set()


def test_tail_gives_up_many_old_gaps_at_once():
    tail = Tail(through=0, grace=10)
    tail.mark(range(2, 20_000, 2), now=0.0)  # every odd id missing, as after a replay with deletions
    tail.mark([], now=10.0)
    assert tail.through == 19_998 and not tail.above


def items_of(service, user, k=10):
    return [r["item"] for r in service.state.recommend(user, k)]


@contextmanager
def two_servers(run, url, poll_b=0.0):
    """Servers ``a`` (never polls) and ``b`` (polls every ``poll_b`` s; 0: only on sync())."""
    a = Service(run, url, poll=0)
    b = Service(run, url, poll=poll_b)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def test_two_servers_on_one_store_see_each_others_writes(mf_run, store_url):
    with two_servers(mf_run, store_url) as (a, b):
        top = items_of(a, "u1")[0]
        a.post_events([Event("u1", top, key="a1")])
        assert top in items_of(b, "u1")  # b has not read the store yet
        b.sync()
        assert top not in items_of(b, "u1") and items_of(b, "u1") == items_of(a, "u1")

        a.delete_user("u1")
        b.sync()
        assert b.state.user_entry("u1").index is None and items_of(b, "u1") == items_of(a, "u1")

        # the id comes back on b after its deletion: a applies it, and b keeps it on its next reads
        b.post_events([Event("u1", "s2", key="b1")])
        a.sync()
        b.sync()
        b.sync()
        for s in (a, b):
            assert s.state.user_entry("u1").items.tolist() == [s.state.cat.items.get("s2")]
        assert items_of(a, "u1") == items_of(b, "u1")
        # a server's own events are not applied a second time by its reads of the store
        assert a.state.events_through == b.state.events_through == max(e.id for e in a.store.events())


def test_the_poller_applies_other_servers_events_on_its_own(mf_run, tmp_path):
    with two_servers(mf_run, f"sqlite:///{tmp_path / 'polled.sqlite'}", poll_b=0.05) as (a, b):
        top = items_of(b, "u2")[0]
        a.post_events([Event("u2", top)])
        deadline = time.monotonic() + 10
        while top in items_of(b, "u2"):
            assert time.monotonic() < deadline, "the poller did not pick up the event"
            time.sleep(0.02)


def test_a_new_item_posted_to_one_server_is_recommendable_on_the_other(semgraph_run, tmp_path):
    with two_servers(semgraph_run, f"sqlite:///{tmp_path / 'items.sqlite'}") as (a, b):
        a.post_item("new-scifi", "Starship pilots fight an alien armada near a distant space station", "Armada")
        a.post_events([Event("fan", "new-scifi")])
        b.sync()
        assert "new-scifi" in b.state.cat.items and b.state.cat.titles["new-scifi"] == "Armada"
        assert items_of(b, "fan") == items_of(a, "fan")
        assert "new-scifi" in items_of(b, "u1", 60)


def test_an_event_that_commits_after_a_later_id_is_still_applied(mf_run, postgres_url):
    from sqlalchemy import create_engine

    from semrec.serve.store import events

    engine = create_engine(postgres_url)
    with two_servers(mf_run, postgres_url) as (a, b):
        late_item, early_item = items_of(b, "u3")[:2]
        with engine.connect() as conn:
            slow = conn.begin()  # takes its id now, commits after the next writer
            conn.execute(events.insert().values(user_id="u3", item_id=late_item, timestamp=0, key="slow"))
            a.post_events([Event("u4", early_item, key="fast")])
            b.sync()
            assert b.state.user_entry("u4").items.size == 1 and late_item in items_of(b, "u3")
            slow.commit()
        b.sync()
        assert late_item not in items_of(b, "u3")
    engine.dispose()


def test_switching_runs_keeps_what_a_deleted_user_did_after_the_deletion(mf_run, tmp_path):
    service = Service(mf_run, f"sqlite:///{tmp_path / 'swap.sqlite'}", poll=0)
    try:
        service.post_events([Event("u1", "s2")])
        service.delete_user("u1")
        service.post_events([Event("u1", "r1")])  # the id comes back
        service.swap(mf_run)
        entry = service.state.user_entry("u1")
        assert entry.index is None and entry.items.tolist() == [service.state.cat.items.get("r1")]
    finally:
        service.close()
