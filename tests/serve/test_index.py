import numpy as np
import pytest

from semrec.errors import SemrecError
from semrec.serve.index import CategoryFilter, IndexConfig, ItemIndex, parse_category


@pytest.fixture
def vectors():
    return np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)


def brute(vectors, q, k, exclude=()):
    s = vectors @ q
    s[list(exclude)] = -np.inf
    order = np.argsort(-s, kind="stable")[:k]
    return order


def test_flat_is_exact_and_excludes_seen(vectors):
    q = vectors[7] + 0.1
    index = ItemIndex(vectors)
    scores, ids = index.search(q, 10)
    np.testing.assert_array_equal(ids, brute(vectors, q, 10))
    np.testing.assert_allclose(scores, vectors[ids] @ q, rtol=1e-5)
    seen = ids[:4]
    _, ids2 = index.search(q, 10, exclude=seen)
    np.testing.assert_array_equal(ids2, brute(vectors, q, 10, seen))
    assert not set(seen) & set(ids2) and len(ids2) == 10


def test_candidates_restrict_the_answer_exactly(vectors):
    q = vectors[3]
    index = ItemIndex(vectors, IndexConfig(kind="hnsw"))
    allowed = np.array([5, 50, 500, 1500])
    _, ids = index.search(q, 10, allowed=allowed, exclude=np.array([50]))
    assert sorted(ids) == [5, 500, 1500]
    assert list(ids) == sorted(ids, key=lambda i: -float(vectors[i] @ q))


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_find_most_of_the_exact_top(vectors, kind):
    index = ItemIndex(vectors, IndexConfig(kind=kind, nprobe=8))
    hits = 0
    for j in range(20):
        q = vectors[j]
        hits += len(set(index.search(q, 10)[1]) & set(brute(vectors, q, 10)))
    assert hits / 200 >= 0.8


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_float16_storage_halves_memory_and_keeps_the_ranking(vectors, kind):
    full = ItemIndex(vectors, IndexConfig(kind=kind, nprobe=8))
    half = ItemIndex(vectors, IndexConfig(kind=kind, nprobe=8, precision="float16"))
    assert half.vectors.nbytes * 2 == full.vectors.nbytes
    if kind == "flat":
        assert half._index.sa_code_size() == 2 * 16  # two bytes per dimension inside FAISS too
    agree = 0
    for j in range(20):
        q = vectors[j] + 0.05
        agree += len(set(half.search(q, 10, exclude=np.array([j]))[1]) &
                     set(full.search(q, 10, exclude=np.array([j]))[1]))
    assert agree / 200 >= (0.98 if kind == "flat" else 0.8)
    new = half.add(np.ones((1, 16), dtype=np.float32) * 9)
    assert half.search(np.ones(16, dtype=np.float32), 1)[1][0] == new[0]


def test_precision_is_checked():
    with pytest.raises(Exception, match="serve.precision: expected 'float32' or 'float16'"):
        IndexConfig(precision="int8")


def test_added_items_are_searchable_and_copies_are_independent(vectors):
    index = ItemIndex(vectors)
    twin = index.copy()
    q = np.ones(16, dtype=np.float32)
    new = twin.add((q * 5)[None, :])
    assert list(new) == [2000] and twin.n_items == 2001 and index.n_items == 2000
    assert twin.search(q, 1)[1][0] == 2000
    assert 2000 not in index.search(q, 5)[1]
    with pytest.raises(SemrecError, match="3 dimensions, the index has 16"):
        twin.add(np.ones((1, 3)))


def test_category_filter_matches_whole_cells_and_list_parts():
    f = CategoryFilter({"genres": {"a": "Action, Comedy", "b": "Drama", "c": None, "d": "comedy"}})
    assert f.items("genres", "comedy") == ["a", "d"]
    assert f.items("genres", " Drama ") == ["b"]
    with pytest.raises(SemrecError, match="category column 'brand' is not in the item table"):
        f.items("brand", "x")
    assert parse_category("genres:Film-Noir") == ("genres", "Film-Noir")
    with pytest.raises(SemrecError, match="expected COLUMN:VALUE"):
        parse_category("Comedy")
