"""The item–item text kNN graph against a naive numpy computation and hand-made cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from semrec.errors import DataError, RunError
from semrec.graph.semantic import load_knn, save_knn, semantic_knn


def naive_knn(x: np.ndarray, k: int) -> dict[int, dict[int, float]]:
    """Row -> {neighbour: cosine} by brute force."""
    norms = np.linalg.norm(x, axis=1)
    out: dict[int, dict[int, float]] = {}
    for i in range(len(x)):
        if norms[i] == 0:
            out[i] = {}
            continue
        sims = []
        for j in range(len(x)):
            if j != i and norms[j] > 0:
                sims.append((float(x[i] @ x[j] / (norms[i] * norms[j])), j))
        sims.sort(reverse=True)
        out[i] = {j: s for s, j in sims[:k]}
    return out


def as_dict(m: sp.csr_matrix) -> dict[int, dict[int, float]]:
    out = {}
    for i in range(m.shape[0]):
        lo, hi = m.indptr[i], m.indptr[i + 1]
        out[i] = dict(zip(m.indices[lo:hi].tolist(), m.data[lo:hi].tolist()))
    return out


def test_known_answer_on_three_vectors() -> None:
    x = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 2.0]], dtype=np.float32)  # not unit length
    g = semantic_knn(x, k=1)
    assert g.shape == (3, 3) and g.dtype == np.float32
    # cos(0,1) = 0.8, cos(0,2) = 0, cos(1,2) = 0.6
    np.testing.assert_allclose(g.toarray(), [[0, 0.8, 0], [0.8, 0, 0], [0, 0.6, 0]], atol=1e-6)


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_matches_naive_numpy(k: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    x[[5, 17]] = 0.0  # items without text
    g = semantic_knn(x, k)
    got, want = as_dict(g), naive_knn(x, k)
    for i in range(len(x)):
        assert got[i].keys() == want[i].keys(), i
        for j, s in want[i].items():
            assert got[i][j] == pytest.approx(s, abs=1e-5)
    assert g.diagonal().sum() == 0  # self excluded
    assert g[[5, 17]].nnz == 0 and g[:, [5, 17]].nnz == 0  # zero vectors: no neighbours
    assert np.all(np.diff(g.indptr)[[i for i in range(40) if i not in (5, 17)]] == min(k, 37))


def test_self_excluded_even_with_duplicate_vectors() -> None:
    x = np.array([[1, 0]] * 6 + [[0, 1]], dtype=np.float32)  # 6 identical items
    g = semantic_knn(x, k=2)  # FAISS may rank other copies above the item itself
    assert g.diagonal().sum() == 0
    assert np.all(np.diff(g.indptr) == 2)
    for i in range(6):
        assert set(g[i].indices) <= set(range(6)) - {i}
        np.testing.assert_allclose(g[i].data, 1.0, atol=1e-6)


def test_min_similarity_and_degenerate_inputs() -> None:
    x = np.array([[1, 0], [0, 1], [1, 0.1]], dtype=np.float32)
    g = semantic_knn(x, k=2, min_similarity=0.5)
    assert as_dict(g)[1] == {}
    assert semantic_knn(np.zeros((3, 4), np.float32), 2).nnz == 0
    assert semantic_knn(np.ones((1, 4), np.float32), 2).nnz == 0
    with pytest.raises(DataError, match="k must be"):
        semantic_knn(x, 0)
    with pytest.raises(DataError, match=r"\(n_items, d\)"):
        semantic_knn(np.ones(4), 1)
    with pytest.raises(DataError, match="NaN"):
        semantic_knn(np.array([[np.nan, 1.0], [1.0, 0.0]]), 1)


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    g = semantic_knn(rng.standard_normal((20, 4)).astype(np.float32), 3)
    save_knn(tmp_path / "knn.safetensors", g)
    back = load_knn(tmp_path / "knn.safetensors")
    assert back.shape == g.shape
    assert (back != g).nnz == 0
    with pytest.raises(RunError, match="does not exist"):
        load_knn(tmp_path / "nope.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(RunError, match="rebuild"):
        load_knn(tmp_path / "bad.safetensors")
