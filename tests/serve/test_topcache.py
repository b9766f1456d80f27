"""The precomputed top-item cache answers exactly what the scan answers, also after
events and new items."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from semrec.models.rerank import Rerank
from semrec.serve.index import IndexConfig
from semrec.serve.live import Service
from semrec.serve.store import Event, StoredItem
from semrec.serve.topcache import TopCache


def naive(queries, vectors, seen, depth):
    """Per-user loop: score, drop seen, stable sort."""
    rows = []
    for u, q in enumerate(queries):
        s = vectors @ q
        s[seen[u].indices] = -np.inf
        order = np.argsort(-s, kind="stable")[:depth]
        rows.append([i for i in order if np.isfinite(s[i])])
    return rows


@pytest.fixture
def toy():
    rng = np.random.default_rng(1)
    queries = rng.standard_normal((40, 8)).astype(np.float32)
    vectors = rng.standard_normal((30, 8)).astype(np.float32)
    seen = sp.random(40, 30, density=0.2, format="csr", random_state=2)
    seen = seen.tolil()
    seen[3, :] = 0.0
    seen[3, :26] = 1.0  # user 3 has seen all but 4 items: a short row
    return queries, vectors, seen.tocsr()


def test_build_matches_a_naive_loop_and_pads_short_rows(toy):
    queries, vectors, seen = toy
    cache = TopCache.build(queries, vectors, seen, depth=6)
    expected = naive(queries, vectors, seen, 6)
    for u in range(len(queries)):
        scores, items = cache.row(u, 6)
        assert items.tolist() == expected[u]
        np.testing.assert_allclose(scores, vectors[items] @ queries[u], rtol=1e-5)
    assert sorted(cache.row(3, 6)[1].tolist()) == [26, 27, 28, 29]
    assert cache.items[3, 4:].tolist() == [-1, -1] and np.isneginf(cache.scores[3, 4:]).all()
    assert cache.row(0, 7) is None  # deeper than the cache: the caller scans


def test_new_items_merge_into_exactly_the_rows_they_enter(toy):
    queries, vectors, seen = toy
    extra = np.random.default_rng(5).standard_normal((3, 8)).astype(np.float32) * 2
    merged = TopCache.build(queries, vectors, seen, depth=6).with_items(extra, first=len(vectors))
    wide = sp.csr_matrix((seen.data, seen.indices, seen.indptr), shape=(40, 33))
    rebuilt = TopCache.build(queries, np.vstack([vectors, extra]), wide, depth=6)
    np.testing.assert_array_equal(merged.items, rebuilt.items)
    np.testing.assert_allclose(merged.scores, rebuilt.scores, rtol=1e-5)
    assert (merged.items >= len(vectors)).any(), "the big new vectors enter some rows"


def test_rows_are_read_only(toy):
    cache = TopCache.build(*toy, depth=4)
    with pytest.raises(ValueError):
        cache.scores[0, 0] = 1.0


def same_answers(a, b, users, k=10):
    """Both services give every user the same items in the same order, scores to float precision."""
    for u in users:
        ra, rb = a.state.recommend(u, k), b.state.recommend(u, k)
        assert [r["item"] for r in ra] == [r["item"] for r in rb], u
        np.testing.assert_allclose([r["score"] for r in ra], [r["score"] for r in rb], rtol=1e-5, atol=1e-6)
    return True


def test_the_service_answers_from_the_cache_as_the_scan_does(mf_run, tmp_path):
    cached = Service(mf_run, f"sqlite:///{tmp_path / 'a.sqlite'}")
    scanned = Service(mf_run, f"sqlite:///{tmp_path / 'b.sqlite'}", IndexConfig(cache_depth=0))
    try:
        assert cached.state.cat.top is not None and scanned.state.cat.top is None
        users = cached.state.run.users.ids[:25]
        assert same_answers(cached, scanned, users)
        assert same_answers(cached, scanned, users[:3], k=150)  # deeper than the cache: both scan

        # an event: the user's next answer drops the item and is that of the scan
        user, top_item = users[0], cached.state.recommend(users[0], 1)[0]["item"]
        for s in (cached, scanned):
            s.post_events([Event(user, top_item, None, None, "e1")])
        assert top_item not in [r["item"] for r in cached.state.recommend(user, 10)]
        assert same_answers(cached, scanned, users[:5])

        # a new item close to the user's query enters their cached row at once
        query = cached.state.query(cached.state.user_entry(users[1]))
        vector = (query / np.linalg.norm(query) * 50)[None, :].astype(np.float32)
        for s in (cached, scanned):
            s.state.add_items([StoredItem(1, "brand-new", "a new thing", None)], vector)
        assert cached.state.recommend(users[1], 1)[0]["item"] == "brand-new"
        assert same_answers(cached, scanned, users)
    finally:
        cached.close()
        scanned.close()


def test_the_cache_is_skipped_over_its_limit_or_for_approximate_indexes(mf_run, tmp_path):
    for config in (IndexConfig(cache_limit=10), IndexConfig(kind="hnsw")):
        service = Service(mf_run, f"sqlite:///{tmp_path / f'{config.kind}.sqlite'}", config)
        try:
            assert service.state.cat.top is None
            assert len(service.state.recommend(service.state.run.users.ids[0], 5)) == 5
        finally:
            service.close()


def test_reranked_answers_from_the_cache_are_the_scans(mf_run, tmp_path, monkeypatch):
    """A re-ranked request re-ranks the user's cached row when it is deep enough; the
    answer is the one re-ranking the scan's pool gives."""
    cached = Service(mf_run, f"sqlite:///{tmp_path / 'a.sqlite'}")
    scanned = Service(mf_run, f"sqlite:///{tmp_path / 'b.sqlite'}", IndexConfig(cache_depth=0))
    try:
        users = cached.state.run.users.ids[:15]

        def boom(*args, **kwargs):
            raise AssertionError("a known user's re-ranked request scanned instead of reading the cache")

        monkeypatch.setattr(cached.state.cat.index, "search", boom)
        settings = [Rerank(diversity=0.5), Rerank(novelty=1.0), Rerank(0.3, 0.5, pool=20), Rerank(diversity=1.0)]
        for rr in settings:
            for u in users:
                a, b = cached.state.recommend(u, 10, None, rr), scanned.state.recommend(u, 10, None, rr)
                assert [r["item"] for r in a] == [r["item"] for r in b], (u, rr)
                np.testing.assert_allclose([r["score"] for r in a], [r["score"] for r in b], rtol=1e-5, atol=1e-6)
        assert cached.state.recommend(users[0], 10, None, settings[0]) != cached.state.recommend(users[0], 10)
        # after an event the user reads their own row: the same again
        item = cached.state.recommend(users[0], 1)[0]["item"]
        for s in (cached, scanned):
            s.post_events([Event(users[0], item, None, None, "e1")])
        for rr in settings:
            a, b = cached.state.recommend(users[0], 10, None, rr), scanned.state.recommend(users[0], 10, None, rr)
            assert [r["item"] for r in a] == [r["item"] for r in b] and item not in [r["item"] for r in a]
    finally:
        cached.close()
        scanned.close()
