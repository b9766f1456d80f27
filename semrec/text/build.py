"""Item and user texts from a dataset's tables and templates.

A dataset's ``item_template`` / ``user_template`` is written in the readers' template
language (:func:`semrec.data.readers.common.render_template`): ``{column}`` fields and
``[ ... ]`` optional segments that vanish, label and punctuation included, when a field
inside is empty — e.g. ml-100k ``"{title}.[ Genres: {genres}.]"``, Amazon
``"[{title}.][ Brand: {brand}.][ Categories: {categories}.][ {description}]"``. A
dataset without a template gets the readers' ``default_template`` over its columns, so
a text means the same everywhere.

Items (users) not in the table, or with every field empty, get ``""``; the encoder maps
it to the zero vector (cosine 0 with everything, no semantic neighbours, no weight in
a user's text profile).
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from semrec.data.dataset import Dataset
from semrec.data.readers.common import default_template, render_table


def effective_template(table: pd.DataFrame | None, template: str | None) -> str | None:
    """The template texts are rendered with: the dataset's own, else the default over
    the table's columns; ``None`` without a table."""
    if table is None:
        return None
    return template if template is not None else default_template(list(table.columns))


def _texts(table: pd.DataFrame | None, template: str | None, ids: Sequence[str]) -> list[str]:
    template = effective_template(table, template)
    if table is None or template is None:
        return [""] * len(ids)
    rendered = render_table(template, table)  # indexed like table
    by_id = dict(zip(rendered.index.astype(str), rendered.astype(str)))
    return [by_id.get(str(ext), "") for ext in ids]


def item_texts(dataset: Dataset, item_ids: Sequence[str]) -> list[str]:
    """One text per item of ``item_ids`` (external ids), from ``dataset.items`` and
    ``dataset.item_template``. Items not in the table, or with every field empty, get
    ``""``. A template naming a column the table lacks raises :class:`ConfigError`.
    """
    return _texts(dataset.items, dataset.item_template, item_ids)


def user_texts(dataset: Dataset, user_ids: Sequence[str]) -> list[str] | None:
    """One text per user (age, gender, occupation, ... per ``dataset.user_template``),
    or ``None`` when the dataset has no user table. Users without text get ``""``."""
    if dataset.users is None:
        return None
    return _texts(dataset.users, dataset.user_template, user_ids)
