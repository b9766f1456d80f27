"""The item–item semantic neighbour graph: each item's ``k`` nearest items by text.

``S[i, j] = cos(t_i, t_j)`` for the ``k`` items ``j ≠ i`` most similar to ``i`` (exact
search: FAISS ``IndexFlatIP`` over L2-normalised vectors), 0 elsewhere. Rows are
neighbour lists, so ``S`` is not symmetric in general. Items whose text vector is zero
(no text) have no neighbours and are nobody's neighbour.

Saved as safetensors with ``indptr``, ``indices`` (int64), ``data`` (float32) and
``shape`` (int64 ``[n, n]``), no pickle.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from semrec.errors import DataError, RunError

#: Vectors with a norm below this count as "no text".
ZERO_NORM = 1e-8
#: Queries searched per FAISS call (bounds the (chunk, k) result buffers).
_QUERY_CHUNK = 65536


def semantic_knn(item_emb: np.ndarray, k: int, min_similarity: float | None = None) -> sp.csr_matrix:
    """Top-``k`` cosine neighbours of every item, self excluded.

    Args:
        item_emb: ``(n, d)`` item text embeddings (any scale; normalised here).
        k: neighbours per item (fewer where fewer items have text).
        min_similarity: drop neighbours with a cosine below this; ``None`` keeps all ``k``.

    Returns:
        ``(n, n)`` float32 CSR; row ``i`` holds its neighbours' cosines, sorted indices.
    """
    import faiss

    x = np.asarray(item_emb, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"item embeddings must be (n_items, d), got shape {x.shape}")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise DataError(f"k must be a positive integer number of neighbours, got {k!r}")
    if not np.isfinite(x).all():
        raise DataError("item embeddings contain NaN or infinite values; re-encode the item texts")
    n, d = x.shape
    norms = np.linalg.norm(x, axis=1)  # (n,)
    has_text = np.flatnonzero(norms > ZERO_NORM)  # (m,) global ids of indexed items
    m = len(has_text)
    if m < 2:
        return sp.csr_matrix((n, n), dtype=np.float32)
    xn = np.ascontiguousarray(x[has_text] / norms[has_text, None])  # (m, d)
    index = faiss.IndexFlatIP(d)
    index.add(xn)
    kk = min(k + 1, m)  # +1: the item itself comes back too
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for start in range(0, m, _QUERY_CHUNK):
        q = xn[start : start + _QUERY_CHUNK]
        sims, nbrs = index.search(q, kk)  # (c, kk) each; nbrs are local ids, -1 for none
        local = np.arange(start, start + len(q))[:, None]  # (c, 1)
        keep = (nbrs >= 0) & (nbrs != local)
        # where the item was not returned as its own neighbour (ties), drop the last one
        overflow = keep.sum(1) > k
        keep[overflow, kk - 1 - np.argmax(keep[overflow][:, ::-1], axis=1)] = False
        if min_similarity is not None:
            keep &= sims >= min_similarity
        r, c = np.nonzero(keep)
        rows.append(has_text[local[r, 0]])
        cols.append(has_text[nbrs[r, c]])
        vals.append(sims[r, c])
    out = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=np.float32
    )
    out.sort_indices()
    return out


def save_knn(path: str | os.PathLike[str], graph: sp.csr_matrix) -> None:
    """Write ``graph`` to ``path`` (safetensors; written to a temp file, then renamed)."""
    from safetensors.numpy import save

    g = sp.csr_matrix(graph, dtype=np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = save(
        {
            "indptr": g.indptr.astype(np.int64),
            "indices": g.indices.astype(np.int64),
            "data": g.data.astype(np.float32),
            "shape": np.asarray(g.shape, dtype=np.int64),
        },
        metadata={"format": "semrec-knn/1"},
    )
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def load_knn(path: str | os.PathLike[str]) -> sp.csr_matrix:
    """Read a graph written by :func:`save_knn`; raises :class:`RunError` if the file is
    missing or not such a graph."""
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise RunError(f"semantic graph file {path} does not exist")
    try:
        t = load_file(str(path))
        shape = tuple(int(s) for s in t["shape"])
        g = sp.csr_matrix((t["data"], t["indices"], t["indptr"]), shape=shape)
        g.check_format(full_check=True)
    except Exception as e:  # noqa: BLE001 - any bad file is the user's to fix
        raise RunError(f"{path} is not a readable semantic graph ({e}); rebuild it") from None
    return g
