"""Amazon review sequences as a JSON pair (the LC-Rec / TIGER preprocessing).

``NAME.inter.json`` maps each user to their items in order:
``{"user": [item, item, ...]}``. ``NAME.item.json`` maps each item to its text:
``{item: {"title", "description", "brand", "categories"}}``. There are no ratings
and no timestamps: file order stands for time (leave-one-out takes a user's last
item). HTML entities left in the text (``&amp;``) are unescaped.
"""
from __future__ import annotations

import html
import json
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from semrec.data.dataset import Dataset
from semrec.data.readers.common import check_table_ids, decode_error, index_table, validate_interactions
from semrec.errors import DataError

INTER_SUFFIX = ".inter.json"
ITEM_SUFFIX = ".item.json"

#: Default item text, one optional segment per field, in this order; a field the
#: item file lacks is left out of the template.
TEMPLATE_SEGMENTS = {
    "title": "[{title}.]",
    "brand": "[ Brand: {brand}.]",
    "categories": "[ Categories: {categories}.]",
    "description": "[ {description}]",
}


def find_amazon_pair(folder: Path) -> tuple[Path, Path]:
    """The ``*.inter.json`` file of ``folder`` and its ``*.item.json`` partner
    (which may not exist). Raises :class:`DataError` unless there is exactly one."""
    found = sorted(folder.glob(f"*{INTER_SUFFIX}"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise DataError(
            f"expected exactly one *{INTER_SUFFIX} file (user -> ordered item list), found {names}",
            file=folder,
        )
    inter = found[0]
    return inter, inter.with_name(inter.name[: -len(INTER_SUFFIX)] + ITEM_SUFFIX)


def read_amazon(folder: Path, name: str | None = None) -> Dataset:
    """Read an Amazon JSON pair folder.

    ``interactions`` has ``user_id`` and ``item_id`` only, users in file order and
    each user's items in sequence order. ``items`` has the item file's fields as
    text columns with HTML entities unescaped.
    """
    inter_path, item_path = find_amazon_pair(folder)
    inter, notes = _read_sequences(inter_path)
    items = None
    template = None
    if item_path.is_file():
        items, n = _read_item_text(item_path)
        notes += n
        notes += check_table_ids(items, inter["item_id"], item_path, kind="item")
        template = "".join(seg for col, seg in TEMPLATE_SEGMENTS.items() if col in items.columns) or None
    else:
        notes.append(f"{item_path.name} not found: items have no text")
    return Dataset(
        name=name or folder.name,
        interactions=inter,
        items=items,
        item_template=template,
        path=folder,
        notes=notes,
        file_order_is_time=True,
    )


def _load_json(path: Path) -> object:
    try:
        return json.loads(path.read_bytes())
    except UnicodeDecodeError:
        raise decode_error(path, "utf-8") from None
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON: {e.msg} (column {e.colno})", file=path, row=e.lineno) from None


def _read_sequences(path: Path) -> tuple[pd.DataFrame, list[str]]:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DataError('expected a JSON object {"user": [item, item, ...], ...}', file=path)
    bad_user = next((u for u, seq in data.items() if not isinstance(seq, list)), None)
    if bad_user is not None:
        got = type(data[bad_user]).__name__
        raise DataError(f"user {bad_user!r}: expected a list of item ids, got {got}", file=path)
    lengths = np.fromiter(map(len, data.values()), dtype=np.int64, count=len(data))  # (n_users,)
    items = pd.Series(list(chain.from_iterable(data.values())), dtype=object)
    is_id = items.map(type).isin([int, str]).to_numpy() & (items.astype(str).str.strip() != "").to_numpy()
    if not is_id.all():
        pos = int(np.flatnonzero(~is_id)[0])
        user_index = int(np.searchsorted(np.cumsum(lengths), pos, side="right"))
        user = list(data)[user_index]
        at = pos - int(lengths[:user_index].sum())
        raise DataError(
            f"user {user!r}, position {at + 1}: expected an item id (integer or non-blank string), "
            f"got {items[pos]!r}",
            file=path,
        )
    df = pd.DataFrame({"user_id": np.repeat(np.asarray(list(data), dtype=object), lengths), "item_id": items})
    df, notes = validate_interactions(df, path, line_numbers=False)
    n_empty = int((lengths == 0).sum())
    if n_empty:
        notes.append(f"{path.name}: {n_empty} users have an empty item list")
    return df, notes


def _read_item_text(path: Path) -> tuple[pd.DataFrame, list[str]]:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DataError('expected a JSON object {"item": {"title": ..., ...}, ...}', file=path)
    bad = next((k for k, v in data.items() if not isinstance(v, dict)), None)
    if bad is not None:
        got = type(data[bad]).__name__
        raise DataError(f"item {bad!r}: expected an object of text fields, got {got}", file=path)
    table = pd.DataFrame.from_dict(data, orient="index")
    table.insert(0, "item_id", table.index)
    table, notes = index_table(
        table.reset_index(drop=True), "item_id", path, index_name="item_id", line_numbers=False
    )
    for col in table.columns:
        table[col] = _unescape(table[col])
    return table, notes


def _unescape(values: pd.Series) -> pd.Series:
    """``html.unescape`` on the strings that hold an entity (``&``)."""
    is_text = values.map(type).eq(str).to_numpy()
    if not is_text.any():
        return values
    has_entity = np.zeros(len(values), dtype=bool)
    has_entity[is_text] = values[is_text].str.contains("&", regex=False).to_numpy(dtype=bool)
    if has_entity.any():
        values = values.copy()
        values[has_entity] = values[has_entity].map(html.unescape)
    return values
