import threading

import pytest

from semrec.serve.store import Event, EventStore, StoreError


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.sqlite'}"
    return request.getfixturevalue("postgres_url")


def test_same_key_is_stored_once_and_order_is_kept(store_url):
    store = EventStore(store_url)
    first = store.add_events([Event("u1", "i1", key="k1"), Event("u1", "i2", 4.5, 100), Event("u2", "i1", key="k1")])
    again = store.add_events([Event("u1", "i1", key="k1"), Event("u3", "i3", key="k3")])
    assert first.fresh == [True, True, False] and again.fresh == [False, True]
    rows = list(store.events())
    assert first.ids == [rows[0].id, rows[1].id] and again.ids == [rows[2].id]
    assert [(e.user, e.item, e.key) for e in rows] == [("u1", "i1", "k1"), ("u1", "i2", None), ("u3", "i3", "k3")]
    assert rows[1].rating == 4.5 and rows[1].timestamp == 100
    assert [e.id for e in store.events(after=rows[0].id)] == [rows[1].id, rows[2].id]
    store.close()


def test_committed_events_survive_a_new_connection(store_url):
    store = EventStore(store_url)
    store.add_events([Event("u", f"i{j}", key=f"k{j}") for j in range(50)])
    store.close()
    reopened = EventStore(store_url)
    assert reopened.count_events() == 50
    reopened.close()


def test_concurrent_writers_store_each_key_once(store_url):
    store = EventStore(store_url)
    lock = threading.Lock()  # the service serialises its writes; two stores race on the key alone

    def post(worker: int) -> None:
        other = EventStore(store_url) if worker % 2 else store
        for j in range(30):
            with lock if other is store else _nothing():
                other.add_events([Event("u", f"i{j}", key=f"k{j}")])

    threads = [threading.Thread(target=post, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count_events() == 30
    assert all(store.count_events(key=f"k{j}") == 1 for j in range(30))


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_items_and_deletions(store_url):
    store = EventStore(store_url)
    row, created = store.add_item("new", "a red chair", "Chair")
    again, created_again = store.add_item("new", "another text", None)
    assert created and not created_again and again.text == "a red chair"
    store.add_events([Event("gone", "i1"), Event("gone", "i2"), Event("stays", "i1")])
    assert store.delete_user("gone") == 2
    assert [e.user for e in store.events()] == ["stays"]
    assert "gone" in store.deleted_users()
    assert store.watermark()[1] == row.id


def test_unusable_urls_are_clear_errors(tmp_path):
    with pytest.raises(StoreError, match="expected sqlite"):
        EventStore("mysql://x@localhost/db")
    with pytest.raises(StoreError, match="cannot open the event store"):
        EventStore(f"sqlite:///{tmp_path / 'missing-dir' / 'x.sqlite'}")
