"""Item and user texts from a dataset's tables and templates.

A dataset's ``item_template`` / ``user_template`` is written in the readers' template
language (:func:`semrec.data.readers.common.render_template`): ``{column}`` fields and
``[ ... ]`` optional segments that vanish, label and punctuation included, when a field
inside is empty — e.g. ml-100k ``"{title}.[ Genres: {genres}.]"``, Amazon
``"[{title}.][ Brand: {brand}.][ Categories: {categories}.][ {description}]"``. A
dataset without a template gets the readers' ``default_template`` over its columns.
The readers' renderer is the one used here, so a text means the same everywhere.

Until the readers' module is importable, :func:`render_fields` stands in: a plain
``str.format`` template whose empty fields are dropped *together with their
decoration* (label or opening bracket before, closing bracket after, the separator that
would dangle), e.g. ``"{title} ({year}). Genres: {genres}."`` gives ``"Heat. Genres:
Action."`` for a movie without a year.

Items (users) not in the table, or with every field empty, get ``""``; the encoder maps
it to the zero vector (cosine 0 with everything, no semantic neighbours, no weight in
a user's text profile).
"""
from __future__ import annotations

import html
import math
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from semrec.data.dataset import Dataset
from semrec.errors import DataError

try:  # the readers' template language (semrec.data.readers); see the module docstring
    from semrec.data.readers.common import default_template as _reader_default_template
    from semrec.data.readers.common import render_table as _reader_render_table
except ImportError:  # pragma: no cover - only before the readers land
    _reader_default_template = None
    _reader_render_table = None

#: :func:`render_fields` templates used when a dataset names none and the readers'
#: ``default_template`` is not available; fields the table lacks are left out.
DEFAULT_ITEM_TEMPLATE = (
    "{title} ({year}). Genres: {genres}. Brand: {brand}. Categories: {categories}. {description}"
)
DEFAULT_USER_TEMPLATE = "Age: {age}. Gender: {gender}. Occupation: {occupation}."

_CLOSERS = ")]}\"'»"
_SEPARATORS = " \t\n.,;:|/-–—·"
_SPACES = re.compile(r"\s+")


def _clean_value(value: Any) -> str:
    """A cell as text: ``None``/NaN/blank -> ``""``; integral floats without ``.0``;
    lists joined by ``", "``; HTML entities unescaped; runs of whitespace collapsed."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    if isinstance(value, (list, tuple, set)):
        return ", ".join(v for v in (_clean_value(x) for x in value) if v)
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass  # array-likes
    text = str(value)
    if "&" in text:
        text = html.unescape(text)
    return _SPACES.sub(" ", text).strip()


def _split_literal(lit: str) -> tuple[str, str, str]:
    """``(closers, separator, prefix)`` of a literal between two fields."""
    i = 0
    while i < len(lit) and lit[i] in _CLOSERS:
        i += 1
    j = i
    while j < len(lit) and lit[j] in _SEPARATORS:
        j += 1
    return lit[:i], lit[i:j], lit[j:]


def template_fields(template: str) -> list[str]:
    """Column names a template refers to, in order."""
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def render_fields(template: str, row: Mapping[str, Any]) -> str:
    """Fill ``template`` from ``row``; empty or missing fields vanish with their label,
    brackets and separator. Returns ``""`` when every field is empty.

    >>> render_fields("{title} ({year}). Genres: {genres}.", {"title": "Heat", "genres": "Action"})
    'Heat. Genres: Action.'
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise DataError(f"text template {template!r} is not a valid format string: {e}") from None
    literals: list[str] = []
    fields: list[tuple[str, str, str | None]] = []  # (name, format spec, conversion)
    for lit, name, spec, conv in parsed:
        literals.append(lit)
        if name is not None:
            fields.append((name, spec or "", conv))
    if len(literals) == len(fields):
        literals.append("")  # template ends with a field
    if not fields:
        return template.strip()
    # decoration of field k: prefix (from the literal before), closers (from the literal after);
    # seps[k] is the separator in front of field k (k >= 1)
    prefix = [""] * len(fields)
    closers = [""] * len(fields)
    seps = [""] * len(fields)
    prefix[0] = literals[0]
    for k in range(1, len(fields)):
        closers[k - 1], seps[k], prefix[k] = _split_literal(literals[k])
    tail = literals[-1]
    closers[-1] = tail[: len(tail) - len(tail.lstrip(_CLOSERS))]
    end = tail[len(closers[-1]) :]
    parts: list[str] = []
    for k, (name, spec, conv) in enumerate(fields):
        value = row.get(name)
        text = _clean_value(value)
        if not text:
            continue
        if conv == "r":
            text = repr(text)
        if spec:
            try:
                text = format(value, spec)
            except (TypeError, ValueError):
                pass
        if parts:
            parts.append(seps[k])
        parts.append(prefix[k] + text + closers[k])
    if not parts:
        return ""
    out = "".join(parts) + end
    return _SPACES.sub(" ", out).strip()


def _texts(
    table: pd.DataFrame | None, template: str | None, default: str, ids: Sequence[str], kind: str
) -> list[str]:
    if table is None:
        return [""] * len(ids)
    if _reader_render_table is not None:
        if template is None:
            template = _reader_default_template(list(table.columns))
        if template is None:
            return [""] * len(ids)
        rendered = _reader_render_table(template, table)  # indexed like table
        by_id = dict(zip(rendered.index.astype(str), rendered.astype(str)))
        return [by_id.get(str(ext), "") for ext in ids]
    return _texts_fallback(table, template, default, ids, kind)


def _texts_fallback(
    table: pd.DataFrame, template: str | None, default: str, ids: Sequence[str], kind: str
) -> list[str]:
    columns = [str(c) for c in table.columns]
    id_col = "item_id" if kind == "items" else "user_id"
    if template is None:
        # the default's fields that the table has; none of them: every text column
        if any(f in columns for f in template_fields(default)):
            template = default
        else:
            text_cols = [
                c
                for c in columns
                if pd.api.types.is_object_dtype(table[c]) or pd.api.types.is_string_dtype(table[c])
            ]
            template = ". ".join("{" + c + "}" for c in text_cols)
    else:
        known = set(columns) | {id_col}
        unknown = [f for f in template_fields(template) if f not in known]
        if unknown:
            raise DataError(
                f"the {kind} text template {template!r} names column(s) {', '.join(unknown)} that "
                f"the {kind} table does not have; columns: {', '.join(columns)}"
            )
    index = {str(k): pos for pos, k in enumerate(table.index)}
    records = table.to_dict("records")
    out = []
    for ext in ids:
        pos = index.get(str(ext))
        if pos is None:
            out.append("")
            continue
        row = dict(records[pos])
        row[id_col] = str(ext)
        out.append(render_fields(template, row))
    return out


def item_texts(dataset: Dataset, item_ids: Sequence[str]) -> list[str]:
    """One text per item of ``item_ids`` (external ids), from ``dataset.items`` and
    ``dataset.item_template`` (default :data:`DEFAULT_ITEM_TEMPLATE`: title, year,
    genres, brand, categories, description, whichever the table has).

    Items not in the table, or with every field empty, get ``""`` (encoded as the zero
    vector). A template naming a column the table lacks raises :class:`DataError`.
    """
    return _texts(dataset.items, dataset.item_template, DEFAULT_ITEM_TEMPLATE, item_ids, "items")


def user_texts(dataset: Dataset, user_ids: Sequence[str]) -> list[str] | None:
    """One text per user (age, gender, occupation, ... per ``dataset.user_template``),
    or ``None`` when the dataset has no user table. Users without text get ``""``."""
    if dataset.users is None:
        return None
    return _texts(dataset.users, dataset.user_template, DEFAULT_USER_TEMPLATE, user_ids, "users")
