"""The in-memory shapes every reader produces and every model consumes.

A reader turns files into a :class:`Dataset` of external ids (strings), validated
and de-duplicated. :func:`semrec.data.split.make_split` then maps ids to
contiguous indices and cuts a :class:`Split` of :class:`Interactions`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Columns of an interaction table, in this order; ``rating`` and ``timestamp``
#: may be absent.
INTERACTION_COLUMNS = ("user_id", "item_id", "rating", "timestamp")


@dataclass
class GivenSplit:
    """A split that ships with the data (ml-100k ``u1``, LightGCN ``test.txt``).

    Each part is an interaction table like :attr:`Dataset.interactions`.
    ``valid`` is ``None`` where the files give none (one is then carved from train).
    """

    train: pd.DataFrame
    test: pd.DataFrame
    valid: pd.DataFrame | None = None


@dataclass
class Dataset:
    """Validated interactions with optional item and user tables.

    Attributes:
        name: short name (``ml-100k``) or the folder's name.
        interactions: columns ``user_id``, ``item_id`` (str) and, where known,
            ``rating`` (float64) and ``timestamp`` (int64), in file order.
        items: item table indexed by ``item_id`` (str); text columns such as
            ``title``. ``None`` where the data has no item file.
        users: user table indexed by ``user_id`` (str), or ``None``.
        given: named given splits; ``"default"`` is used for plain ``given``.
        item_template: ``str.format`` template for item text over ``items`` columns.
        user_template: the same for users.
        implicit_threshold: ratings below it are not positive interactions for
            ranking (``None``: every interaction is positive).
        path: the folder it was read from.
        file_order_is_time: the format promises that each user's interactions are in
            time order in the file (the Amazon JSON pair) although there are no
            timestamps; splits then take file positions as times.
        notes: what the reader fixed or dropped (duplicates kept last, ...), for
            the user to see.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    given: dict[str, GivenSplit] = field(default_factory=dict)
    item_template: str | None = None
    user_template: str | None = None
    implicit_threshold: float | None = None
    path: Path | None = None
    notes: list[str] = field(default_factory=list)
    file_order_is_time: bool = False

    @property
    def has_ratings(self) -> bool:
        return "rating" in self.interactions.columns

    @property
    def has_timestamps(self) -> bool:
        return "timestamp" in self.interactions.columns

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        if not self.has_ratings or self.interactions.empty:
            return None
        r = self.interactions["rating"]
        return float(r.min()), float(r.max())

    def item_titles(self) -> dict[str, str]:
        """External item id -> title, where the item table has one."""
        if self.items is None or "title" not in self.items.columns:
            return {}
        titles = self.items["title"].dropna().astype(str)
        return dict(zip(titles.index.astype(str), titles))

    def text_columns(self) -> dict[str, list[str]]:
        """Text-bearing columns of the item and user tables."""
        out: dict[str, list[str]] = {}
        for kind, table in (("items", self.items), ("users", self.users)):
            if table is not None:
                out[kind] = [c for c in table.columns if pd.api.types.is_string_dtype(table[c].dtype)]
        return out


@dataclass
class Interactions:
    """Interactions in internal index space (int64 arrays of equal length)."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def take(self, mask_or_index: np.ndarray) -> Interactions:
        """The subset selected by a boolean mask or an index array."""
        return Interactions(
            self.users[mask_or_index],
            self.items[mask_or_index],
            None if self.ratings is None else self.ratings[mask_or_index],
            None if self.timestamps is None else self.timestamps[mask_or_index],
        )

    @staticmethod
    def concat(parts: list[Interactions]) -> Interactions:
        parts = [p for p in parts if p is not None]
        keep_r = all(p.ratings is not None for p in parts)
        keep_t = all(p.timestamps is not None for p in parts)
        return Interactions(
            np.concatenate([p.users for p in parts]),
            np.concatenate([p.items for p in parts]),
            np.concatenate([p.ratings for p in parts]) if keep_r else None,
            np.concatenate([p.timestamps for p in parts]) if keep_t else None,
        )

    def csr(self, n_users: int, n_items: int, values: str = "ones") -> sp.csr_matrix:
        """``(n_users, n_items)`` CSR matrix of ``values``: ``"ones"`` (float32),
        ``"ratings"`` (float32) or ``"timestamps"`` (float64, so that Unix seconds keep
        their precision).

        Duplicate pairs are collapsed: a ``1``, or the pair's last rating or time.
        """
        column = {"ratings": self.ratings, "timestamps": self.timestamps}.get(values)
        if column is not None:
            # keep the last value of a repeated pair
            key = self.users * n_items + self.items
            _, last = np.unique(key[::-1], return_index=True)
            idx = len(key) - 1 - last
            data = column[idx].astype(np.float64 if values == "timestamps" else np.float32)
            rows, cols = self.users[idx], self.items[idx]
        else:
            data = np.ones(len(self), dtype=np.float32)
            rows, cols = self.users, self.items
        m = sp.csr_matrix((data, (rows, cols)), shape=(n_users, n_items), dtype=data.dtype)
        m.sum_duplicates()
        if column is None:
            m.data[:] = 1.0
        return m
