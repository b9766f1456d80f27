"""FAISS retrieval over item embeddings: top-K by inner product, seen items excluded,
candidates restricted, new items added without a rebuild.

Index kinds (:class:`IndexConfig`):

* ``flat`` (default): ``IndexFlatIP``, exact inner product — the same ranking as the
  model's own ``<user, item>`` scores;
* ``hnsw``: ``IndexHNSWFlat`` with inner-product metric, approximate, for large
  catalogues (``hnsw_m`` links per node, ``ef_search`` breadth of the search);
* ``ivf``: ``IndexIVFFlat`` with ``nlist`` cells, ``nprobe`` of them searched; trained
  once on the vectors at hand.

Internal item indices are the FAISS ids: the ``n``-th vector added is item ``n``, so new
items are appended in the order they arrive. Seen items are excluded inside the search by a
FAISS ``IDSelector`` (passed in ``SearchParameters``), so the answer is still a top-K over
the remaining items, never a post-filter that may come back short. A candidate list is
scored exactly over just those vectors: graph and cell indices cannot reach a small
allowed set reliably, and a product over the subset is cheaper than any search.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np

from semrec.errors import ConfigError, SemrecError


@dataclass(frozen=True)
class IndexConfig:
    """How the item index is built (the ``[serve]`` concern).

    Args:
        kind: ``flat`` (exact, default), ``hnsw`` or ``ivf`` (approximate).
        hnsw_m: HNSW links per node (default 32).
        ef_search: HNSW search breadth; higher is more exact and slower (default 128).
        nlist: IVF cells (default 0: ``4·sqrt(n_items)``, at most ``n_items / 39``).
        nprobe: IVF cells searched per query (default 16).
        threads: FAISS OpenMP threads; 1 (default) because the API serves requests from
            several threads already, and nested parallelism on few cores only adds waiting.
        precision: how item vectors are stored: ``float32`` (default) or ``float16``
            (FAISS scalar quantizer ``QT_fp16``: half the memory; on trained Gowalla
            embeddings 99.98% of the float32 top-20 survives, see BENCHMARKS.md).
        cache_depth: with the exact ``flat`` index, each user's best ``cache_depth``
            unseen items are ranked once at load and kept exact as events and items
            arrive (:mod:`semrec.serve.topcache`), so a request for ``k <= cache_depth``
            without candidate filters is a lookup; 0 turns it off (default 100).
        cache_limit: the cache is built only when users x items is at most this many
            scores (default 2e9: about 10 s of a core per 1e9 at load).
    """

    kind: Literal["flat", "hnsw", "ivf"] = "flat"
    hnsw_m: int = 32
    ef_search: int = 128
    nlist: int = 0
    nprobe: int = 16
    threads: int = 1
    precision: Literal["float32", "float16"] = "float32"
    cache_depth: int = 100
    cache_limit: int = 2_000_000_000

    def __post_init__(self) -> None:
        if self.precision not in ("float32", "float16"):
            raise ConfigError(f"serve.precision: expected 'float32' or 'float16', got {self.precision!r}")
        if self.kind not in ("flat", "hnsw", "ivf"):
            raise ConfigError(f"serve.index: expected one of 'flat', 'hnsw', 'ivf', got {self.kind!r}")
        for name in ("hnsw_m", "ef_search", "nprobe", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("nlist", "cache_depth", "cache_limit"):
            if getattr(self, name) < 0:
                raise ConfigError(f"serve.{name} must be >= 0, got {getattr(self, name)}")

    @property
    def caching(self) -> bool:
        """Whether users' top items are precomputed (exact index, positive depth)."""
        return self.kind == "flat" and self.cache_depth > 0


class ItemIndex:
    """Top-K inner-product search over ``(n_items, d)`` item vectors.

    Args:
        vectors: ``(n_items, d)`` float item embeddings, in internal index order.
        config: index kind and its parameters.
    """

    def __init__(self, vectors: np.ndarray, config: IndexConfig = IndexConfig()) -> None:
        vectors = _as_matrix(vectors)
        self.config = config
        self.dim = int(vectors.shape[1])
        faiss.omp_set_num_threads(config.threads)
        half = config.precision == "float16"
        ip, fp16 = faiss.METRIC_INNER_PRODUCT, faiss.ScalarQuantizer.QT_fp16
        if config.kind == "flat":
            self._index = faiss.IndexScalarQuantizer(self.dim, fp16, ip) if half else faiss.IndexFlatIP(self.dim)
        elif config.kind == "hnsw":
            self._index = (faiss.IndexHNSWSQ(self.dim, fp16, config.hnsw_m, ip) if half
                           else faiss.IndexHNSWFlat(self.dim, config.hnsw_m, ip))
        else:
            # FAISS's k-means wants at least 39 training points per cell
            nlist = config.nlist or min(int(4 * np.sqrt(len(vectors))), len(vectors) // 39)
            nlist = max(1, min(nlist, len(vectors)))
            self._quantizer = faiss.IndexFlatIP(self.dim)  # kept alive: the IVF index borrows it
            self._index = (faiss.IndexIVFScalarQuantizer(self._quantizer, self.dim, nlist, fp16, ip) if half
                           else faiss.IndexIVFFlat(self._quantizer, self.dim, nlist, ip))
        if not self._index.is_trained:
            self._index.train(vectors)
        self._index.add(vectors)
        # our own copy for exact candidate scoring and reconstruction, grown by doubling
        self._vectors = vectors.astype(np.float16 if half else np.float32)
        self._n = len(vectors)

    @property
    def n_items(self) -> int:
        return self._n

    @property
    def vectors(self) -> np.ndarray:
        """The item vectors ``(n_items, d)`` (a read-only view)."""
        view = self._vectors[: self._n]
        view.flags.writeable = False
        return view

    def copy(self) -> ItemIndex:
        """An independent copy (the live service adds to a copy, then swaps it in, so a
        search in flight never sees the index grow under it)."""
        twin = ItemIndex.__new__(ItemIndex)
        twin.config, twin.dim, twin._n = self.config, self.dim, self._n
        twin._index = faiss.clone_index(self._index)
        twin._vectors = self._vectors.copy()
        return twin

    def add(self, vectors: np.ndarray) -> np.ndarray:
        """Append ``(m, d)`` vectors; returns their internal indices ``(m,)``."""
        vectors = _as_matrix(vectors)
        if vectors.shape[1] != self.dim:
            raise SemrecError(f"new item vectors have {vectors.shape[1]} dimensions, the index has {self.dim}")
        start, end = self._n, self._n + len(vectors)
        if end > len(self._vectors):
            grown = np.empty((max(end, 2 * len(self._vectors)), self.dim), dtype=self._vectors.dtype)
            grown[:start] = self._vectors[:start]
            self._vectors = grown
        self._vectors[start:end] = vectors
        self._index.add(vectors)
        self._n = end
        return np.arange(start, end, dtype=np.int64)

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        exclude: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` items for one query vector ``(d,)``.

        Args:
            query: ``(d,)`` user (or query) vector.
            k: how many; fewer come back when fewer items are allowed.
            exclude: internal indices never returned (the user's seen items).
            allowed: if given, the only internal indices that may be returned.

        Returns:
            ``(scores, indices)``, each ``(m,)`` with ``m <= k``, best first.
        """
        q = _as_matrix(query.reshape(1, -1))
        if q.shape[1] != self.dim:
            raise SemrecError(f"query vector has {q.shape[1]} dimensions, the index has {self.dim}")
        k = max(1, min(int(k), self.n_items))
        if allowed is not None:
            return self._search_subset(q[0], k, np.asarray(allowed, dtype=np.int64), exclude)
        if self.config.kind == "flat" and self._vectors.dtype == np.float32:
            return self._search_exact(q[0], k, exclude)
        if self.config.kind == "flat" and exclude is not None and len(exclude) <= MAX_OVERFETCH:
            # exact search: fetch k more per excluded item and drop them afterwards, cheaper
            # than building an ID selector for every query
            return self._search_overfetch(q, k, np.asarray(exclude, dtype=np.int64))
        selector = _exclusion(exclude)
        params = None
        if self.config.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.config.ef_search, k))
        elif self.config.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self.config.nprobe)
        if selector is not None:
            params = params or faiss.SearchParameters()
            params.sel = selector
        scores, ids = self._index.search(q, k, params=params)
        keep = ids[0] >= 0  # FAISS pads with -1 when fewer than k items pass the filter
        return scores[0][keep], ids[0][keep].astype(np.int64)

    def _search_exact(self, q: np.ndarray, k: int, exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` of float32 vectors by one matrix-vector product and a partial sort.

        Our own code rather than FAISS's flat index here: for a single query FAISS scans
        with a k-heap (and needs ``k + |seen|`` results to drop the seen ones), while one
        BLAS product over our float32 copy plus ``argpartition`` measured about 1.5-2x
        faster on a 41k-item catalogue (``benchmarks/serve_load.py``).
        """
        scores = self._vectors[: self._n] @ q  # (n,)
        if exclude is not None and len(exclude):
            ex = np.asarray(exclude, dtype=np.int64)
            scores[ex[(ex >= 0) & (ex < self._n)]] = -np.inf
        k = min(k, self._n)
        top = np.argpartition(-scores, k - 1)[:k] if k < self._n else np.arange(self._n)
        top = top[np.argsort(-scores[top], kind="stable")]
        keep = np.isfinite(scores[top])
        return scores[top][keep].astype(np.float32), top[keep].astype(np.int64)

    def _search_overfetch(self, q: np.ndarray, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fetch = min(k + len(exclude), self._n)
        scores, ids = self._index.search(q, fetch)
        keep = (ids[0] >= 0) & ~np.isin(ids[0], exclude)
        return scores[0][keep][:k], ids[0][keep][:k].astype(np.int64)

    def _search_subset(
        self, q: np.ndarray, k: int, allowed: np.ndarray, exclude: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        allowed = np.unique(allowed[(allowed >= 0) & (allowed < self._n)])
        if exclude is not None and len(exclude):
            allowed = np.setdiff1d(allowed, exclude, assume_unique=False)
        if not len(allowed):
            return np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64)
        scores = self._vectors[allowed].astype(np.float32) @ q  # (m,)
        order = np.argsort(-scores, kind="stable")[:k]
        return scores[order].astype(np.float32), allowed[order]


#: Seen items up to which an exact search over-fetches instead of using an ID selector.
MAX_OVERFETCH = 2048


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    m = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if m.ndim != 2:
        raise SemrecError(f"expected a (n, d) matrix of vectors, got shape {m.shape}")
    return m


def _exclusion(exclude: np.ndarray | None) -> faiss.IDSelector | None:
    """An ``IDSelector`` passing every id but ``exclude`` (``None`` when nothing is excluded).

    The outer selector holds a pointer to the inner one; ``referenced_objects`` is the
    attribute the FAISS Python layer uses to keep such parts alive.
    """
    if exclude is None or not len(exclude):
        return None
    ids = np.ascontiguousarray(exclude, dtype=np.int64)
    batch = faiss.IDSelectorBatch(ids)
    sel = faiss.IDSelectorNot(batch)
    sel.referenced_objects = [ids, batch]
    return sel


class CategoryFilter:
    """Which items carry a value in a column of the dataset's item table.

    A cell matches when it equals the value, or when one of its comma- or
    ``|``-separated parts does (``genres = "Action, Comedy"`` matches ``Comedy``);
    comparison ignores case and surrounding spaces.

    Args:
        columns: column name -> ``{item_id: cell text}``.
    """

    _SPLIT = re.compile(r"\s*[,|]\s*")

    def __init__(self, columns: Mapping[str, Mapping[str, object]]) -> None:
        self._columns = {name: dict(cells) for name, cells in columns.items()}

    @property
    def columns(self) -> list[str]:
        return sorted(self._columns)

    def add(self, item: str, cells: Mapping[str, object]) -> None:
        """Record the category cells of a new item (unknown columns are ignored)."""
        for name, value in cells.items():
            if name in self._columns:
                self._columns[name][item] = value

    def items(self, column: str, value: str) -> list[str]:
        """External ids of the items whose ``column`` holds ``value``."""
        if column not in self._columns:
            known = ", ".join(self.columns) or "none"
            raise SemrecError(f"category column '{column}' is not in the item table (columns: {known})")
        want = value.strip().lower()
        return [item for item, cell in self._columns[column].items() if _matches(cell, want)]


def _matches(cell: object, want: str) -> bool:
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return False
    text = str(cell).strip().lower()
    return text == want or want in CategoryFilter._SPLIT.split(text)


def parse_category(text: str) -> tuple[str, str]:
    """``"COLUMN:VALUE"`` -> ``(column, value)``; a clear error otherwise."""
    column, sep, value = text.partition(":")
    if not sep or not column.strip() or not value.strip():
        raise SemrecError(f"category: expected COLUMN:VALUE such as genres:Comedy, got {text!r}")
    return column.strip(), value.strip()
