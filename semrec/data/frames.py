"""A :class:`~semrec.data.dataset.Dataset` from pandas DataFrames already in memory.

The tables follow the generic folder layout (see :mod:`semrec.data.readers.generic`):
interactions with columns ``user_id``, ``item_id`` and optionally ``rating`` and
``timestamp``; an item table with ``item_id`` (a column, or the index) and any text
columns; a user table likewise with ``user_id``. They are checked exactly as the files
are (:func:`~semrec.data.readers.common.validate_interactions`); errors name the table
(``interactions``, ``items``, ``users``), the row position and the column.
"""
from __future__ import annotations

import pandas as pd

from semrec.data.dataset import Dataset
from semrec.data.readers.common import (
    check_table_ids,
    check_template,
    default_template,
    index_table,
    validate_interactions,
)
from semrec.errors import DataError


def dataset_from_frames(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    *,
    name: str = "dataframe",
    item_text: str | None = None,
    user_text: str | None = None,
) -> Dataset:
    """The dataset of these tables (nothing is read from disk).

    Args:
        interactions: ``user_id``, ``item_id`` [, ``rating``] [, ``timestamp``] (integer
            Unix time, or date-times); other columns are ignored.
        items: item table (``item_id`` column or index, text columns such as ``title``).
        users: user table (``user_id`` column or index, e.g. ``age``, ``occupation``).
        name: the dataset's name, as runs record it.
        item_text / user_text: text templates over the tables' columns (see
            :func:`~semrec.data.readers.common.render_template`); default: every column,
            the title first.

    Raises:
        DataError: a table is not a DataFrame, lacks its id column, has a blank id or a
            malformed rating or time (named by table, row position and column).
    """
    inter = _frame(interactions, "interactions")
    inter, notes = validate_interactions(_numbered(inter), "interactions")
    tables = {}
    for kind, table in (("item", items), ("user", users)):
        if table is None:
            tables[kind] = None
            continue
        where = f"{kind}s"
        df = _frame(table, where)
        id_col = f"{kind}_id"
        if id_col not in df.columns and df.index.name == id_col:
            df = df.reset_index()
        indexed, n = index_table(_numbered(df), id_col, where, index_name=id_col)
        notes += n + check_table_ids(indexed, inter[id_col], where, kind=kind, column=id_col)
        tables[kind] = indexed
    return Dataset(
        name=name,
        interactions=inter,
        items=tables["item"],
        users=tables["user"],
        item_template=_template(item_text, tables["item"], "items"),
        user_template=_template(user_text, tables["user"], "users"),
        notes=notes,
    )


def _frame(table: object, what: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(table).__name__}", file=what)
    if table.empty:
        raise DataError("the table has no rows", file=what)
    return table


def _numbered(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` indexed by row position from 1 (the validators' row numbers)."""
    out = df.copy()
    out.index = pd.RangeIndex(1, len(out) + 1)
    return out


def _template(template: str | None, table: pd.DataFrame | None, what: str) -> str | None:
    if table is None:
        if template is not None:
            raise DataError(f"a text template was given for {what} but there is no {what} table", file=what)
        return None
    if template is None:
        return default_template(list(table.columns))
    check_template(template, list(table.columns), f"{what} text template")
    return template
