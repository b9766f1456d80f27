"""`semrec retrain` against a live store: one snapshot, a watermark tied to the store it
read, nothing acknowledged lost, and no test pair trained on."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from sqlalchemy import create_engine, event, text

from semrec.artifacts.run import load_run
from semrec.serve import retrain as retrain_module
from semrec.serve.retrain import retrain
from semrec.serve.service import Service
from semrec.serve.store import Event, EventStore, events

QUICK = ["epochs=1", "progress=false", "tensorboard=false"]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'live.sqlite'}"
    return request.getfixturevalue("postgres_url")


def knows(service: Service, user: str, item: str) -> bool:
    """Whether the served state counts ``item`` among what ``user`` did (run or live)."""
    state = service.state
    return state.cat.items.get(item) in state.seen(state.user_entry(user)).tolist()


def test_an_event_committed_while_retrain_reads_is_not_lost(mf_run, tmp_path, store_url, monkeypatch):
    """The event lands between the read of the events and the read of the watermark; it
    was in neither the new run nor the replay before the snapshot (#20 item 2)."""
    writer = EventStore(store_url)
    writer.add_events([Event("u1", "s5"), Event("fresh", "r2")])

    class Interrupted(EventStore):
        def __init__(self, url):
            super().__init__(url)
            fired = []

            @event.listens_for(self.engine, "after_cursor_execute")
            def another_writer_commits(conn, cursor, statement, *args):
                if statement.lstrip().startswith("SELECT events.id,") and not fired:
                    fired.append(True)
                    writer.add_events([Event("racer", "s3", key="in-between")])

    monkeypatch.setattr(retrain_module, "EventStore", Interrupted)
    retrain(mf_run, tmp_path / "next", store_url=store_url, sets=QUICK)
    writer.close()
    service = Service(tmp_path / "next", store_url, poll=0)
    try:
        assert knows(service, "racer", "s3")  # in the new run or replayed on it
        assert knows(service, "fresh", "r2") and knows(service, "u1", "s5")
    finally:
        service.close()


def test_a_postgres_event_that_commits_after_a_later_one_is_not_lost(mf_run, tmp_path, postgres_url):
    """Row 1 takes its id first and commits last; the max-id watermark skipped it."""
    EventStore(postgres_url).close()  # the tables
    engine = create_engine(postgres_url)
    conn = engine.connect()
    slow = conn.begin()
    conn.execute(events.insert().values(user_id="late", item_id="s1", timestamp=0, key="slow"))
    store = EventStore(postgres_url)
    store.add_events([Event("early", "s2", key="fast")])
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(
        retrain(mf_run, tmp_path / "next", store_url=postgres_url, sets=QUICK)))
    worker.start()
    with engine.connect() as probe:  # until the retrain waits for the slow writer (or is done without it)
        deadline = time.monotonic() + 60
        while worker.is_alive() and time.monotonic() < deadline:
            waiting = probe.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one()
            if waiting:
                break
            time.sleep(0.05)
    slow.commit()
    conn.close()
    worker.join(timeout=120)
    assert done, "retrain did not finish"
    service = Service(tmp_path / "next", postgres_url, poll=0)
    try:
        assert knows(service, "late", "s1") and knows(service, "early", "s2")
    finally:
        service.close()
        store.close()
        engine.dispose()


def test_a_retrained_run_on_another_store_replays_that_store_whole(mf_run, tmp_path):
    """The watermark counts rows of the store the retrain read; before it was tied to that
    store, `serve --store X` skipped X's first N events."""
    own = Service(mf_run, poll=0)
    own.post_events([Event(f"own{j}", "s1") for j in range(6)])
    own.close()
    retrain(mf_run, tmp_path / "next", sets=QUICK)
    other_url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    other = EventStore(other_url)
    other.add_events([Event(f"other{j}", "r1") for j in range(6)])
    other.close()
    service = Service(tmp_path / "next", other_url, poll=0)
    try:
        assert all(knows(service, f"other{j}", "r1") for j in range(6))
    finally:
        service.close()
    # on its own store it replays nothing twice: the six events are inside the run
    service = Service(tmp_path / "next", poll=0)
    try:
        assert all(service.state.user_entry(f"own{j}").index is not None for j in range(6))
        assert not service.state.live_users()
    finally:
        service.close()


def pairs(inter, users, items):
    return {(users.ids[u], items.ids[i]) for u, i in zip(inter.users.tolist(), inter.items.tolist())}


def test_live_events_of_test_pairs_are_not_trained_on(mf_run, tmp_path):
    run = load_run(mf_run)
    test = sorted(pairs(run.split.test, run.users, run.items))
    valid = sorted(pairs(run.split.valid, run.users, run.items))
    seen = pairs(run.split.train, run.users, run.items) | set(test) | set(valid)
    fresh = next((u, i) for u in run.users.ids for i in run.items.ids if (u, i) not in seen)
    service = Service(mf_run, poll=0)
    service.post_events([Event(*test[0]), Event(*valid[0]), Event(*fresh)])
    service.close()
    summary = retrain(mf_run, tmp_path / "next", sets=QUICK)
    new = load_run(tmp_path / "next")
    trained = pairs(new.split.train, new.users, new.items)
    assert test[0] not in trained and valid[0] not in trained and fresh in trained
    assert test[0] in pairs(new.split.test, new.users, new.items)
    assert any("validation, test or support" in n for n in summary["notes"])
    assert new.info["notes"] == summary["notes"]


@pytest.fixture(scope="module")
def rated_mf(rated_books, tmp_path_factory, train_run):
    return train_run(rated_books, "mf", tmp_path_factory.mktemp("rated") / "mf", ["epochs=2", "dim=8"])


def test_an_unrated_event_does_not_become_the_top_rating(rated_mf, tmp_path):
    import shutil

    run_dir = shutil.copytree(rated_mf, tmp_path / "mf")
    run = load_run(run_dir)
    seen = (pairs(run.split.train, run.users, run.items) | pairs(run.split.valid, run.users, run.items)
            | pairs(run.split.test, run.users, run.items))
    user = "u0"
    item = next(i for i in run.items.ids if (user, i) not in seen)
    service = Service(run_dir, poll=0)
    service.post_events([Event(user, item)])  # no rating
    service.close()
    summary = retrain(run_dir, tmp_path / "next", sets=QUICK)
    new = load_run(tmp_path / "next")
    train = new.split.train
    at = np.flatnonzero((train.users == new.users.get(user)) & (train.items == new.items.get(item)))
    assert len(at) == 1
    mean = float(np.mean(run.split.train.ratings))
    assert float(train.ratings[at[0]]) == pytest.approx(mean, rel=1e-5)
    assert float(np.max(run.split.train.ratings)) == 5.0 and mean < 4.5  # the top would be 5
    assert any("without a rating got the training mean" in n for n in summary["notes"])


def test_a_rating_run_learns_from_rated_events_only(rated_books, tmp_path, train_run):
    run_dir = train_run(rated_books, "semgraph", tmp_path / "sg",
                        ["model.task=rating", "train.task=rating", "epochs=1", "dim=8", "hidden=16",
                         "tensorboard=false"])
    run = load_run(run_dir)
    known = (pairs(run.split.train, run.users, run.items) | pairs(run.split.valid, run.users, run.items)
             | pairs(run.split.test, run.users, run.items))
    free = [i for i in run.items.ids if ("u1", i) not in known]
    service = Service(run_dir, poll=0)
    service.post_events([Event("u1", free[0]), Event("u1", free[1], rating=2.0)])
    service.close()
    summary = retrain(run_dir, tmp_path / "next", sets=QUICK)
    new = load_run(tmp_path / "next")
    trained = pairs(new.split.train, new.users, new.items)
    assert ("u1", free[0]) not in trained and ("u1", free[1]) in trained
    assert ("u1", free[0]) in pairs(new.split.support, new.users, new.items)  # known, never a target
    at = np.flatnonzero((new.split.train.users == new.users.get("u1"))
                        & (new.split.train.items == new.items.get(free[1])))
    assert new.split.train.ratings[at].tolist() == [2.0]
    assert any("not rating targets" in n for n in summary["notes"])
    # served, the unrated item still counts as seen
    service = Service(tmp_path / "next", poll=0)
    try:
        assert knows(service, "u1", free[0]) and not service.state.live_users()
    finally:
        service.close()


def test_a_cold_item_with_live_events_joins_training_and_the_notes_say_so(toy_data, tmp_path):
    from semrec.pipeline import build_config, train_and_save

    config = build_config("mf", sets=["epochs=1", "dim=8", "progress=false", "tensorboard=false"],
                          split="cold-items:0.2")
    train_and_save(str(toy_data), config, tmp_path / "cold")
    run = load_run(tmp_path / "cold")
    cold = run.items.ids[int(run.split.cold_items[0])]
    service = Service(tmp_path / "cold", poll=0)
    service.post_events([Event("newcomer", cold)])
    service.close()
    summary = retrain(tmp_path / "cold", tmp_path / "next", sets=QUICK)
    new = load_run(tmp_path / "next")
    assert new.items.get(cold) not in new.split.cold_items.tolist()
    assert len(new.split.cold_items) == len(run.split.cold_items) - 1
    assert ("newcomer", cold) in pairs(new.split.train, new.users, new.items)
    assert any("held-out (cold) item" in n for n in summary["notes"])


def test_retrain_refuses_an_existing_out_unless_asked(mf_run, tmp_path):
    from semrec.errors import RunError

    retrain(mf_run, tmp_path / "next", sets=QUICK)
    with pytest.raises(RunError, match="already holds a run"):
        retrain(mf_run, tmp_path / "next", sets=QUICK)
    retrain(mf_run, tmp_path / "next", sets=QUICK, overwrite=True)
