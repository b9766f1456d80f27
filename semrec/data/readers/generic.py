"""The generic folder layout, for data of one's own.

::

    my-data/
      interactions.csv | .parquet   user_id,item_id[,rating][,timestamp]
      items.csv | .parquet          optional: item_id + any text columns
      users.csv | .parquet          optional: user_id + any text columns
      train.* valid.* test.*        optional given split "default" (valid optional)
      dataset.toml                  optional, see below

``dataset.toml`` (every key optional; unknown keys are rejected)::

    name = "my-data"
    sep = ","                  # one character; "\\t" for tab-separated files
    encoding = "utf-8"
    implicit_threshold = 4.0   # ratings below it are not positives for ranking
    rating_range = [1, 5]      # ratings outside it are an error
    item_text = "{title}.[ Genres: {genres}.]"   # see render_template
    user_text = "{age} year old {occupation}"

    [columns]                  # source column names, where they differ
    user = "userId"
    item = "movieId"
    rating = "stars"
    timestamp = "time"         # integer Unix time, or ISO 8601 date-times

Without ``interactions.*``, the interactions are the given parts put together.
Timestamps may be ISO 8601 date-times; they become Unix seconds.
"""
from __future__ import annotations

import codecs
import dataclasses
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from semrec.config import from_dict, read_toml
from semrec.data.dataset import Dataset, GivenSplit
from semrec.data.readers.common import (
    READ_DTYPES,
    check_table_ids,
    check_template,
    default_template,
    index_table,
    read_csv,
    read_header,
    require_columns,
    validate_interactions,
)
from semrec.errors import ConfigError, DataError

CONFIG_FILE = "dataset.toml"
SUFFIXES = (".csv", ".parquet")


@dataclasses.dataclass(frozen=True)
class ColumnNames:
    """Source column names of the interaction columns (``[columns]`` in dataset.toml)."""

    user: str = "user_id"
    item: str = "item_id"
    rating: str = "rating"
    timestamp: str = "timestamp"


@dataclasses.dataclass(frozen=True)
class GenericConfig:
    """The contents of ``dataset.toml`` (see the module docstring)."""

    name: str | None = None
    sep: str = ","
    encoding: str = "utf-8"
    implicit_threshold: float | None = None
    rating_range: tuple[float, float] | None = None
    item_text: str | None = None
    user_text: str | None = None
    columns: ColumnNames = dataclasses.field(default_factory=ColumnNames)


def read_generic_config(path: Path) -> GenericConfig:
    """Parse ``dataset.toml``; unknown keys and wrong types raise :class:`ConfigError`."""
    data = dict(read_toml(path))
    where = f"{path}: "
    columns = data.pop("columns", {})
    if not isinstance(columns, dict):
        raise ConfigError(f"{where}columns: expected a [columns] table, got {columns!r}")
    cfg = from_dict(GenericConfig, data, where=where)
    cfg = dataclasses.replace(cfg, columns=from_dict(ColumnNames, columns, where=f"{where}[columns] "))
    if len(cfg.sep) != 1:
        raise ConfigError(f"{where}sep: expected one character (\"\\t\" for tabs), got {cfg.sep!r}")
    try:
        codecs.lookup(cfg.encoding)
    except LookupError:
        raise ConfigError(f"{where}encoding: unknown encoding {cfg.encoding!r}") from None
    rr = cfg.rating_range
    if rr is not None:
        numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in rr)
        if len(rr) != 2 or not numbers or rr[0] > rr[1]:
            raise ConfigError(f"{where}rating_range: expected [min, max] with min <= max, got {list(rr)!r}")
        cfg = dataclasses.replace(cfg, rating_range=(float(rr[0]), float(rr[1])))
    return cfg


def find_table(folder: Path, stem: str) -> Path | None:
    """``stem.csv`` or ``stem.parquet`` in ``folder``; ``None`` if neither;
    a :class:`DataError` if both."""
    found = [folder / f"{stem}{s}" for s in SUFFIXES if (folder / f"{stem}{s}").is_file()]
    if len(found) > 1:
        raise DataError(f"both {found[0].name} and {found[1].name} exist; keep one", file=folder)
    return found[0] if found else None


def read_generic(folder: Path, name: str | None = None) -> Dataset:
    """Read a folder in the generic layout (see the module docstring)."""
    cfg_path = folder / CONFIG_FILE
    cfg = read_generic_config(cfg_path) if cfg_path.is_file() else GenericConfig()
    notes: list[str] = []

    parts: dict[str, pd.DataFrame] = {}
    for part in ("train", "valid", "test"):
        path = find_table(folder, part)
        if path is not None:
            parts[part], n = _read_interactions(path, cfg)
            notes += n
    given = {}
    if parts:
        for needed in ("train", "test"):
            if needed not in parts:
                have = ", ".join(f"{p}.*" for p in parts)
                raise DataError(
                    f"found {have} but no {needed}.csv or {needed}.parquet; a given split needs "
                    "train and test files (valid is optional)",
                    file=folder,
                )
        given["default"] = GivenSplit(train=parts["train"], test=parts["test"], valid=parts.get("valid"))

    inter_path = find_table(folder, "interactions")
    if inter_path is not None:
        inter, n = _read_interactions(inter_path, cfg)
        notes += n
    elif parts:
        inter, n = validate_interactions(pd.concat(parts.values()), folder, line_numbers=False)
        notes += [f"no interactions file: the interactions are {' + '.join(parts)} together"] + n
    else:
        raise DataError(
            "no interactions.csv or interactions.parquet (columns user_id,item_id[,rating][,timestamp]), "
            "and no train/test files",
            file=folder,
        )

    items = _read_entities(folder, "items", ("item_id", cfg.columns.item), "item_id", cfg, notes)
    users = _read_entities(folder, "users", ("user_id", cfg.columns.user), "user_id", cfg, notes)
    for table, kind, source in ((items, "item", cfg.columns.item), (users, "user", cfg.columns.user)):
        if table is not None:
            path = find_table(folder, f"{kind}s")
            column = f"{kind}_id" if f"{kind}_id" in _columns(path, cfg) else source
            notes += check_table_ids(table, inter[f"{kind}_id"], path, kind=kind, column=column)
    return Dataset(
        name=cfg.name or name or folder.name,
        interactions=inter,
        items=items,
        users=users,
        given=given,
        item_template=_template(cfg.item_text, items, "item_text", "items", cfg_path),
        user_template=_template(cfg.user_text, users, "user_text", "users", cfg_path),
        implicit_threshold=cfg.implicit_threshold,
        path=folder,
        notes=notes,
    )


def _read_interactions(path: Path, cfg: GenericConfig) -> tuple[pd.DataFrame, list[str]]:
    cols = cfg.columns
    source = {cols.user: "user_id", cols.item: "item_id", cols.rating: "rating", cols.timestamp: "timestamp"}
    header = _columns(path, cfg)
    hint = f" (name the source columns in {CONFIG_FILE} [columns]: user, item, rating, timestamp)"
    require_columns(header, [cols.user, cols.item], path, hint)
    present = [c for c in source if c in header]
    if path.suffix == ".parquet":
        df = _read_parquet(path, present)
    else:
        # every column is read (usecols would hide a line with too many fields)
        dtype = {c: READ_DTYPES[source[c]] if c in present else str for c in header}
        df = read_csv(path, sep=cfg.sep, encoding=cfg.encoding, dtype=dtype)[present]
    return validate_interactions(df.rename(columns=source), path, rating_range=cfg.rating_range)


def _read_entities(
    folder: Path,
    stem: str,
    id_columns: tuple[str, str],
    index_name: str,
    cfg: GenericConfig,
    notes: list[str],
) -> pd.DataFrame | None:
    """The items or users table (all columns as read; csv columns as text)."""
    path = find_table(folder, stem)
    if path is None:
        return None
    header = _columns(path, cfg)
    id_col = next((c for c in id_columns if c in header), id_columns[0])
    if path.suffix == ".parquet":
        df = _read_parquet(path, header)
    else:
        df = read_csv(path, sep=cfg.sep, encoding=cfg.encoding, dtype={c: str for c in header})
    table, n = index_table(df, id_col, path, index_name=index_name)
    notes += n
    return table


def _template(
    template: str | None, table: pd.DataFrame | None, key: str, stem: str, cfg_path: Path
) -> str | None:
    if table is None:
        if template is not None:
            raise ConfigError(f"{cfg_path}: {key} is set but there is no {stem}.csv or {stem}.parquet")
        return None
    if template is None:
        return default_template(list(table.columns))
    check_template(template, list(table.columns), f"{cfg_path}: {key}")
    return template


def _columns(path: Path, cfg: GenericConfig) -> list[str]:
    if path.suffix != ".parquet":
        return read_header(path, sep=cfg.sep, encoding=cfg.encoding)
    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"not a readable parquet file ({e})", file=path) from None


def _read_parquet(path: Path, columns: list[str]) -> pd.DataFrame:
    """Parquet columns; the index counts records from 1 (``row`` in errors)."""
    try:
        df = pd.read_parquet(path, columns=columns)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"not a readable parquet file ({e})", file=path) from None
    df.index = pd.RangeIndex(1, len(df) + 1)
    return df
