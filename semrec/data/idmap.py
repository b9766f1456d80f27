"""External ids <-> contiguous internal indices, in one place.

Users and items each get their own :class:`IdMap`; internal integers never leave
the public API. External ids are kept as strings, so ``"42"`` from a CSV and
``42`` from a JSON file name the same entity.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd


class IdMap:
    """A bijection between external string ids and ``0..n-1``.

    Indices follow first appearance in ``ids`` (so the map is deterministic for a
    given input order). New ids can be appended with :meth:`add` (used by online
    updates); existing indices never change.
    """

    def __init__(self, ids: Iterable[object] = ()) -> None:
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._lookup: pd.Index | None = None  # bulk lookups, rebuilt after add()
        self.add(ids)

    def add(self, ids: Iterable[object]) -> np.ndarray:
        """Append unseen ids; return the indices of all ``ids`` (int64)."""
        out = []
        self._lookup = None
        for raw in ids:
            key = str(raw)
            idx = self._index.get(key)
            if idx is None:
                idx = len(self._ids)
                self._index[key] = idx
                self._ids.append(key)
            out.append(idx)
        return np.asarray(out, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return str(key) in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._ids == other._ids

    def __repr__(self) -> str:
        return f"IdMap({len(self)} ids)"

    @property
    def ids(self) -> list[str]:
        """External ids in index order (a copy)."""
        return list(self._ids)

    def index(self, key: object) -> int:
        """Index of one external id; ``KeyError`` if unknown."""
        return self._index[str(key)]

    def get(self, key: object, default: int | None = None) -> int | None:
        return self._index.get(str(key), default)

    def indices(self, keys: Iterable[object]) -> np.ndarray:
        """Indices of known ids, ``-1`` for unknown ones (int64)."""
        if self._lookup is None:
            # a hash index looks up a whole column at C speed; the dict serves single ids
            self._lookup = pd.Index(np.asarray(self._ids, dtype=object))
        keys = pd.Series(np.asarray(list(keys) if not hasattr(keys, "__len__") else keys, dtype=object))
        return self._lookup.get_indexer(keys.astype(str).astype(object)).astype(np.int64)

    def to_external(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        ids = self._ids
        return [ids[int(i)] for i in indices]

    def to_list(self) -> list[str]:
        """Serialisable form (``IdMap(m.to_list()) == m``)."""
        return list(self._ids)
