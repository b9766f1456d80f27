"""What every reader shares: reading delimited files, validating an interaction
table (in one place), and rendering text templates.

Readers keep the 1-based line number of each row in the DataFrame index until
:func:`validate_interactions` has checked the table, so that every
:class:`~semrec.errors.DataError` can name the row as a text editor shows it
(header included).
"""
from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from semrec.errors import ConfigError, DataError

#: dtypes the typed first read of an interaction file asks for; ``Int64`` lets a
#: blank line through as ``<NA>`` so that blank lines can be dropped afterwards.
READ_DTYPES = {"user_id": str, "item_id": str, "rating": "float64", "timestamp": "Int64"}


# --------------------------------------------------------------------------- reading


def read_csv(
    path: Path,
    *,
    sep: str = ",",
    encoding: str = "utf-8",
    names: Sequence[str] | None = None,
    usecols: Sequence[str] | None = None,
    dtype: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """Read a delimited text file; the index holds each row's 1-based line number.

    Args:
        path: the file.
        sep: field separator (one character).
        encoding: text encoding; bytes that do not decode raise a :class:`DataError`
            with the byte offset and line.
        names: column names for a file without a header line (``None``: the first
            line is the header).
        usecols: the columns to keep (names). Leave it out where a line with too
            many fields must be an error: pandas ignores surplus fields with it.
        dtype: dtype per column name. If a value does not convert (a word in a
            numeric column), the file is read again with those columns as text, so
            that :func:`validate_interactions` can name the row.

    Blank lines are skipped but still counted, so line numbers stay exact.
    """
    if not path.is_file():
        raise DataError("file not found", file=path)
    kwargs = dict(
        sep=sep,
        encoding=encoding,
        header=None if names is not None else "infer",
        names=names,
        usecols=usecols,
        skip_blank_lines=False,
        keep_default_na=False,
        na_values=[""],
    )
    try:
        try:
            with warnings.catch_warnings():  # a huge number cast to Int64 warns before it fails
                warnings.simplefilter("ignore", RuntimeWarning)
                df = pd.read_csv(path, dtype=dtype, **kwargs)
        except (ValueError, TypeError, OverflowError) as e:  # OverflowError: an integer beyond 64 bits
            if isinstance(e, (pd.errors.ParserError, UnicodeDecodeError)) or not dtype:
                raise
            df = pd.read_csv(path, dtype={k: str for k in dtype}, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty; expected a header line and data rows", file=path) from None
    except UnicodeDecodeError:
        raise decode_error(path, encoding) from None
    except pd.errors.ParserError as e:
        raise _parser_error(path, e, sep) from None
    first_line = 1 if names is not None else 2
    df.index = pd.RangeIndex(first_line, first_line + len(df))
    blank = df.isna().all(axis=1)
    return df[~blank] if blank.any() else df


def read_header(path: Path, *, sep: str = ",", encoding: str = "utf-8") -> list[str]:
    """Column names of a delimited file with a header line."""
    if not path.is_file():
        raise DataError("file not found", file=path)
    try:
        return [str(c) for c in pd.read_csv(path, sep=sep, encoding=encoding, nrows=0).columns]
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty; expected a header line and data rows", file=path) from None
    except UnicodeDecodeError:
        raise decode_error(path, encoding) from None
    except pd.errors.ParserError as e:  # e.g. a quote that is never closed
        raise _parser_error(path, e, sep) from None


def decode_error(path: Path, encoding: str) -> DataError:
    """The :class:`DataError` for a file that does not decode as ``encoding``:
    names the encoding, the byte offset and the line of the first bad byte."""
    data = path.read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        bad = data[e.start : e.start + 1].hex()
        return DataError(
            f"cannot decode byte 0x{bad} at byte offset {e.start} as {encoding} ({e.reason}); "
            "save the file as UTF-8, or give its encoding (encoding = \"latin-1\" in dataset.toml)",
            file=path,
            row=line,
        )
    return DataError(f"cannot decode the file as {encoding}", file=path)


def _parser_error(path: Path, error: Exception, sep: str) -> DataError:
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
    if match:
        expected, line, saw = (int(g) for g in match.groups())
        return DataError(
            f"expected {expected} fields separated by {sep!r}, found {saw}",
            file=path,
            row=line,
        )
    if "EOF inside string" in str(error):
        return DataError('a field opens a quote (") that is never closed; close it (a quote inside a '
                         'quoted field is written twice: "")', file=path)
    return DataError(f"cannot parse the file as {sep!r}-separated text: {error}", file=path)


# --------------------------------------------------------------------------- validating


def validate_interactions(
    df: pd.DataFrame,
    file: str | Path,
    *,
    rating_range: tuple[float, float] | None = None,
    line_numbers: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """Check and normalise an interaction table; the one place that does so.

    Args:
        df: columns ``user_id``, ``item_id`` and optionally ``rating`` and
            ``timestamp`` (any dtype; text is converted); other columns are dropped.
            Its index holds 1-based line numbers (see :func:`read_csv`).
        file: named in errors and notes.
        rating_range: ``(min, max)`` allowed ratings, or ``None`` for any number.
        line_numbers: ``False`` where the index holds no line numbers (JSON input);
            errors then name no row.

    Returns:
        The table with ``user_id``, ``item_id`` as ``str`` (whitespace stripped),
        ``rating`` float64 and ``timestamp`` int64 (integer seconds, or ISO 8601
        date-times converted to Unix seconds), in file order with a fresh
        ``RangeIndex``; repeated ``(user_id, item_id)`` pairs keep their last row.
        And the notes on what was dropped.

    Raises:
        DataError: no rows; a missing column; a blank id; a rating that is not a
            number or is outside ``rating_range``; a timestamp that is not an integer.
    """
    if df.empty:
        raise DataError("no interactions: the file has no data rows (only a header, or blank)", file=file)
    lines = df.index.to_numpy()
    df = df.reset_index(drop=True)

    def row_of(mask: pd.Series | np.ndarray) -> int | None:
        """Line number of the first row where ``mask`` holds."""
        pos = int(np.flatnonzero(np.asarray(mask))[0])
        return int(lines[pos]) if line_numbers else None

    for col in ("user_id", "item_id"):
        if col not in df.columns:
            raise DataError(
                f"missing column; found columns: {', '.join(map(str, df.columns))}", file=file, column=col
            )
    out = pd.DataFrame(index=df.index)  # a RangeIndex: positions, not lines
    for col in ("user_id", "item_id"):
        ids, blank = _ids_as_str(df[col])
        if blank.any():
            what = col.replace("_", " ")
            raise DataError(f"blank {what}; every row needs one", file=file, row=row_of(blank), column=col)
        out[col] = ids
    if "rating" in df.columns:
        out["rating"] = _numbers(df["rating"], file, "rating", row_of)
        if rating_range is not None:
            lo, hi = rating_range
            bad = (out["rating"] < lo) | (out["rating"] > hi)
            if bad.any():
                value = out["rating"][bad].iloc[0]
                raise DataError(
                    f"rating {value:g} is outside the allowed range; expected a number from {lo:g} to {hi:g}",
                    file=file,
                    row=row_of(bad),
                    column="rating",
                )
    if "timestamp" in df.columns:
        out["timestamp"] = _timestamps(df["timestamp"], file, row_of)

    notes = []
    # integer ids hash faster than their text, and name the same pairs
    keys = pd.DataFrame(
        {c: df[c] if pd.api.types.is_integer_dtype(df[c].dtype) else out[c] for c in ("user_id", "item_id")}
    )
    dup = keys.duplicated(keep="last")
    n_dup = int(dup.sum())
    if n_dup:
        out = out[~dup.to_numpy()]
        notes.append(
            f"{Path(file).name}: dropped {n_dup} duplicate interactions "
            "(kept the last of each user-item pair)"
        )
    return out.reset_index(drop=True), notes


def _ids_as_str(ids: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Ids as stripped Python strings (object dtype), and a mask of the missing or
    blank ones (NaN in the result). Integral floats (``3.0`` from a parquet column
    with gaps) become ``"3"``.

    Each distinct id is converted once (via :func:`pandas.factorize`). The result
    has object dtype, not pandas' Arrow-backed ``str``: id columns are iterated
    element by element when ids are mapped (:class:`~semrec.data.idmap.IdMap`),
    and iterating an Arrow-backed column is some fifty times slower.
    """
    if pd.api.types.is_float_dtype(ids.dtype):
        finite = ids.dropna()
        if (finite == np.floor(finite)).all():
            ids = ids.astype("Int64")
    codes, uniques = pd.factorize(ids)  # code -1: missing
    text = pd.Series(uniques).astype(str)
    if not pd.api.types.is_integer_dtype(ids.dtype):
        text = text.str.strip()
    names = text.to_numpy(dtype=object)
    blank = np.append(names == "", True)  # the appended slot is code -1
    names = np.append(names, np.nan)
    names[blank] = np.nan
    return pd.Series(names[codes], index=ids.index, dtype=object), blank[codes]


def _numbers(values: pd.Series, file: str | Path, column: str, row_of) -> pd.Series:
    """A numeric column as float64; blank or non-numeric cells raise a DataError."""
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = numbers.isna() | ~np.isfinite(numbers)
    if bad.any():
        raw = values[bad].iloc[0]
        got = "a blank cell" if pd.isna(raw) or str(raw).strip() == "" else repr(str(raw))
        raise DataError(f"expected a number, got {got}", file=file, row=row_of(bad), column=column)
    return numbers


def _timestamps(values: pd.Series, file: str | Path, row_of) -> pd.Series:
    """Timestamps as int64: integers as they are, ISO 8601 date-times as Unix seconds."""
    numbers = pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_integer_dtype(numbers.dtype) and not numbers.isna().any():
        return numbers.astype("int64")
    numbers = numbers.astype("float64")
    if numbers.isna().any():
        # as text: pandas reads numbers given with a format as epochs in future versions
        dates = pd.to_datetime(values.astype("string"), errors="coerce", utc=True, format="ISO8601")
        if dates.notna().all():
            return (dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    # int64 seconds: beyond +-2**62 (1.5e11 years) is no time, and would overflow the cast
    bad = ~np.isfinite(numbers) | (numbers != np.floor(numbers)) | (numbers.abs() > 2.0**62)
    if bad.any():
        raw = values[bad].iloc[0]
        got = "a blank cell" if pd.isna(raw) or str(raw).strip() == "" else repr(str(raw))
        raise DataError(
            f"expected an integer Unix timestamp or an ISO 8601 date-time, got {got}",
            file=file,
            row=row_of(bad),
            column="timestamp",
        )
    return numbers.astype("int64")


def require_columns(found: Sequence[str], needed: Sequence[str], file: str | Path, hint: str = "") -> None:
    """Raise a :class:`DataError` naming the first of ``needed`` not in ``found``."""
    for col in needed:
        if col not in found:
            raise DataError(
                f"missing column; found columns: {', '.join(map(str, found))}{hint}", file=file, column=col
            )


def index_table(
    df: pd.DataFrame, id_column: str, file: str | Path, *, index_name: str, line_numbers: bool = True
) -> tuple[pd.DataFrame, list[str]]:
    """An item or user table indexed by its id (as ``str``, named ``index_name``).

    Blank ids raise a :class:`DataError`; a repeated id keeps its last row, with a
    note. ``df``'s index holds line numbers as for :func:`validate_interactions`.
    """
    require_columns(list(df.columns), [id_column], file)
    ids, blank = _ids_as_str(df[id_column])
    if blank.any():
        row = int(df.index[np.flatnonzero(blank)[0]]) if line_numbers else None
        raise DataError("blank id; every row needs one", file=file, row=row, column=id_column)
    table = df.drop(columns=[id_column])
    table.index = pd.Index(ids.to_numpy(), name=index_name, dtype=ids.dtype)
    notes = []
    dup = table.index.duplicated(keep="last")
    if dup.any():
        table = table[~dup]
        notes.append(f"{Path(file).name}: {int(dup.sum())} repeated ids (kept the last row of each)")
    return table, notes


def check_table_ids(
    table: pd.DataFrame, interacted: pd.Series, file: str | Path, *, kind: str, column: str | None = None
) -> list[str]:
    """Check that an item (or user) table describes the items (users) of the interactions.

    A table whose ids match none of them is a mistake (another id column, ids written
    differently: ``42`` against ``item-42``) that would silently train on a catalogue of
    strangers, so it raises a :class:`DataError` with examples of both sides. When only
    some match, the note returned gives the counts and examples of ids without a row.

    Args:
        table: indexed by id (``str``), as :func:`index_table` returns it.
        interacted: the interactions' ``item_id`` (or ``user_id``) column.
        file: the table's file, named in the error and the note.
        kind: ``"item"`` or ``"user"``.
        column: the table's id column, named in the error (``None``: a JSON object's keys).
    """
    ids = pd.Index(pd.unique(interacted))
    has_row = ids.isin(table.index)  # (n distinct interacted ids,)
    n, n_have = len(ids), int(has_row.sum())
    if n_have == n:
        return []
    name = Path(file).name

    def examples(values) -> str:
        return ", ".join(repr(str(v)) for v in list(values)[:3])

    if n_have == 0:
        raise DataError(
            f"none of its {len(table):,} {kind} ids occurs in the interactions ({n:,} {kind}s), so it "
            f"describes nothing that was interacted with: its ids look like {examples(table.index)}, the "
            f"interactions' like {examples(ids)}; the two must use the same {kind} ids",
            file=file,
            column=column,
        )
    rows = float(interacted.isin(table.index).mean())
    return [
        f"{name} describes only {n_have:,} of the {n:,} {kind}s in the interactions ({n_have / n:.0%}; "
        f"{rows:.0%} of the interactions): the other {n - n_have:,} have no row and so no text, e.g. "
        f"{examples(ids[~has_row])}; check that {name} uses the interactions' {kind} ids"
    ]


# --------------------------------------------------------------------------- text templates


@dataclass(frozen=True)
class _Field:
    name: str
    conversion: str | None
    spec: str


@dataclass(frozen=True)
class _Segment:
    parts: tuple[str | _Field, ...]
    optional: bool


_TOKEN = re.compile(r"\{\{|\}\}|\[\[|\]\]|\{[^{}]*\}|[\[\]{}]")
_FIELD = re.compile(r"\{([^{}!:]+)(?:!([rsa]))?(?::([^{}]*))?\}")


@functools.lru_cache(maxsize=256)
def _parse(template: str) -> tuple[_Segment, ...]:
    segments: list[_Segment] = []
    parts: list[str | _Field] = []
    optional = False
    pos = 0

    def close(next_optional: bool) -> None:
        nonlocal parts, optional
        if parts:
            segments.append(_Segment(tuple(parts), optional))
        parts, optional = [], next_optional

    for m in _TOKEN.finditer(template):
        if m.start() > pos:
            parts.append(template[pos : m.start()])
        pos = m.end()
        tok = m.group()
        if tok in ("{{", "}}", "[[", "]]"):
            parts.append(tok[0])
        elif tok == "[":
            if optional:
                raise ConfigError(f"template {template!r}: optional segments [...] cannot nest")
            close(True)
        elif tok == "]":
            if not optional:
                raise ConfigError(
                    f"template {template!r}: ']' without a matching '[' (write ']]' for a literal)"
                )
            close(False)
        else:
            field = _FIELD.fullmatch(tok)
            if field is None:
                raise ConfigError(
                    f"template {template!r}: {tok!r} is not a field; write {{column}} or {{column:spec}}, "
                    "and '{{' or '}}' for a literal brace"
                )
            parts.append(_Field(field.group(1).strip(), field.group(2), field.group(3) or ""))
    if pos < len(template):
        parts.append(template[pos:])
    if optional:
        raise ConfigError(f"template {template!r}: '[' without a matching ']' (write '[[' for a literal)")
    close(False)
    return tuple(segments)


def template_fields(template: str) -> list[str]:
    """The column names a template uses, in order of first use.

    Raises:
        ConfigError: the template is malformed.
    """
    names: list[str] = []
    for seg in _parse(template):
        for part in seg.parts:
            if isinstance(part, _Field) and part.name not in names:
                names.append(part.name)
    return names


def check_template(template: str, columns: Sequence[str], where: str) -> None:
    """Raise a :class:`ConfigError` naming ``where`` if the template is malformed or
    uses a field that is not one of ``columns``."""
    try:
        fields = template_fields(template)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    missing = [f for f in fields if f not in columns]
    if missing:
        raise ConfigError(
            f"{where}: template {template!r} uses {', '.join('{' + f + '}' for f in missing)}, "
            f"which is not a column; columns: {', '.join(map(str, columns))}"
        )


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return len(value) == 0
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _format(value: object, field: _Field) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        value = ", ".join(str(v) for v in value)
    if field.conversion == "r":
        value = repr(value)
    elif field.conversion in ("s", "a"):
        value = str(value) if field.conversion == "s" else ascii(value)
    return format(value, field.spec)


def render_template(template: str, row: Mapping[str, object]) -> str:
    """Fill a text template from one row of an item or user table.

    Syntax (``str.format`` plus optional segments):

    * ``{column}`` is replaced by the row's value; a format spec and conversion
      work as in ``str.format`` (``{price:.2f}``, ``{name!r}``). A list value is
      joined with ``", "``. ``{{`` and ``}}`` write literal braces.
    * ``[ ... ]`` marks an optional segment: it is left out entirely when any field
      inside it is empty (missing value, ``None``, NaN, blank string or empty list),
      so no dangling label or punctuation remains. Segments do not nest; ``[[``
      and ``]]`` write literal brackets.
    * Outside brackets an empty field renders as an empty string.
    * Runs of whitespace collapse to one space; the result is stripped.
    * A value that already ends in ``.`` followed by a literal ``.`` gives one
      period, not two (``"pad."`` + ``". Brand"`` -> ``"pad. Brand"``); an ellipsis
      ``...`` is left alone.

    Example: ``"{title}.[ Brand: {brand}.][ {description}]"`` gives
    ``"Stapler. Brand: Acme."`` when the description is empty, and
    ``"Stapler."`` when the brand is empty too.

    Args:
        template: the template.
        row: column name -> value (a dict, or a row of a DataFrame as a Series).

    Raises:
        ConfigError: the template is malformed or names a column ``row`` lacks.
    """
    out: list[str] = []
    for seg in _parse(template):
        texts: list[str] = []
        for part in seg.parts:
            if isinstance(part, str):
                texts.append(part)
                continue
            if part.name not in row:
                raise ConfigError(
                    f"template {template!r} uses {{{part.name}}}, which is not a column; "
                    f"columns: {', '.join(map(str, row.keys()))}"
                )
            value = row[part.name]
            if _is_empty(value):
                if seg.optional:
                    break
                continue
            texts.append(_format(value, part))
        else:
            out.extend(texts)
    return _DOUBLE_PERIOD.sub(".", " ".join("".join(out).split()))


#: a ".." that is not part of "...": the value's own full stop met the template's.
_DOUBLE_PERIOD = re.compile(r"(?<!\.)\.\.(?!\.)")


def render_table(template: str, table: pd.DataFrame) -> pd.Series:
    """:func:`render_template` for every row of ``table``; indexed like ``table``."""
    check_template(template, list(table.columns), "render_table")
    fields = template_fields(template)
    records = table[fields].to_dict("records") if fields else [{}] * len(table)
    return pd.Series([render_template(template, r) for r in records], index=table.index, dtype=object)


def default_template(columns: Sequence[str]) -> str | None:
    """A template over all ``columns``: the title (or name) first, then
    ``Label: value.`` per column, every segment optional. ``None`` if no columns."""
    columns = [str(c) for c in columns]
    if not columns:
        return None
    first = next((c for c in ("title", "name") if c in columns), None)
    segs = [f"[{{{first}}}.]"] if first else []
    for c in columns:
        if c != first:
            segs.append(f"[ {c.replace('_', ' ').capitalize()}: {{{c}}}.]")
    return "".join(segs).strip()
