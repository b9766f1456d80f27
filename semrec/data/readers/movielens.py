"""MovieLens readers: the 100K folder, the csv releases and the ``::`` releases.

* :func:`read_ml100k` — ``u.data``, ``u.item``, ``u.user``, ``u.genre`` and the
  given splits ``u1``..``u5``, ``ua``, ``ub`` (https://grouplens.org/datasets/movielens/100k/).
* :func:`read_movielens_csv` — ``ratings.csv``, ``movies.csv``, ``tags.csv``:
  ml-latest, ml-latest-small, ml-20m, ml-25m, ml-32m.
* :func:`read_movielens_dat` — ``ratings.dat``, ``movies.dat``, ``users.dat``,
  ``tags.dat``: ml-1m and ml-10m.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from semrec.data.dataset import Dataset, GivenSplit
from semrec.data.readers.common import (
    READ_DTYPES,
    index_table,
    read_csv,
    read_header,
    require_columns,
    validate_interactions,
)
from semrec.errors import DataError

#: The 19 genres of ``u.item``'s flag columns, in order (as listed in ``u.genre``).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

#: Given splits of ml-100k: name -> (train file, test file).
ML100K_SPLITS = {s: (f"{s}.base", f"{s}.test") for s in ("u1", "u2", "u3", "u4", "u5", "ua", "ub")}

MOVIE_TEMPLATE = "{title}.[ Genres: {genres}.]"
MOVIE_TAGS_TEMPLATE = MOVIE_TEMPLATE + "[ Tags: {tags}.]"
ML100K_USER_TEMPLATE = "{age} year old {gender_word}[, {occupation}]."
ML1M_USER_TEMPLATE = "[{gender_word}][, age {age}][, {occupation}]."

_GENDER_WORDS = {"M": "man", "F": "woman"}

#: ml-1m ``users.dat`` codes (from the ml-1m README).
ML1M_AGES = {
    "1": "under 18", "18": "18-24", "25": "25-34", "35": "35-44", "45": "45-49", "50": "50-55", "56": "56+",
}  # fmt: skip
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip

_ML100K_INTERACTIONS = ["user_id", "item_id", "rating", "timestamp"]
#: MovieLens ids are integers: parsing them as such is faster than as text (a
#: stray word makes :func:`read_csv` read the column again as text).
_ML_DTYPES = {**READ_DTYPES, "user_id": "Int64", "item_id": "Int64"}


# --------------------------------------------------------------------------- ml-100k


def read_ml100k(folder: Path, name: str | None = None) -> Dataset:
    """Read a MovieLens 100K folder.

    Interactions from ``u.data`` (tab-separated user, item, rating 1-5, Unix
    time). Items from ``u.item`` (latin-1, ``|``-separated) with columns ``title``
    (as MovieLens writes it, year included), ``year``, ``genres`` (comma-joined
    names from ``u.genre``), ``release_date``, ``imdb_url``. Users from ``u.user``
    with ``age``, ``gender`` (M/F), ``gender_word`` (man/woman), ``occupation``,
    ``zip_code``. Given splits ``u1``..``u5``, ``ua``, ``ub`` where both files are
    present; ``default`` is ``u1``.
    """
    notes: list[str] = []
    inter, n = _read_ml100k_ratings(folder / "u.data")
    notes += n
    given: dict[str, GivenSplit] = {}
    for split, (base, test) in ML100K_SPLITS.items():
        if (folder / base).is_file() and (folder / test).is_file():
            train_df, n1 = _read_ml100k_ratings(folder / base)
            test_df, n2 = _read_ml100k_ratings(folder / test)
            given[split] = GivenSplit(train=train_df, test=test_df)
            notes += n1 + n2
    if "u1" in given:
        given["default"] = given["u1"]

    items = users = None
    if (folder / "u.item").is_file():
        items, n = _read_ml100k_items(folder / "u.item", _ml100k_genres(folder / "u.genre"))
        notes += n
    else:
        notes.append("u.item not found: no item titles or genres")
    if (folder / "u.user").is_file():
        users, n = _read_ml100k_users(folder / "u.user")
        notes += n
    return Dataset(
        name=name or folder.name,
        interactions=inter,
        items=items,
        users=users,
        given=given,
        item_template=MOVIE_TEMPLATE if items is not None else None,
        user_template=ML100K_USER_TEMPLATE if users is not None else None,
        path=folder,
        notes=notes,
    )


def _read_ml100k_ratings(path: Path) -> tuple[pd.DataFrame, list[str]]:
    df = read_csv(path, sep="\t", names=_ML100K_INTERACTIONS, dtype=_ML_DTYPES)
    return validate_interactions(df, path, rating_range=(1.0, 5.0))


def _ml100k_genres(path: Path) -> list[str]:
    """Genre names by flag position, from ``u.genre`` (``name|id``) or the known list."""
    if not path.is_file():
        return list(ML100K_GENRES)
    df = read_csv(path, sep="|", encoding="latin-1", names=["name", "id"], dtype={"name": str, "id": "Int64"})
    return df.sort_values("id")["name"].tolist()


def _read_ml100k_items(path: Path, genres: list[str]) -> tuple[pd.DataFrame, list[str]]:
    base = ["item_id", "title", "release_date", "video_release_date", "imdb_url"]
    flags = [f"genre_{i}" for i in range(len(genres))]
    df = read_csv(path, sep="|", encoding="latin-1", names=base + flags, dtype={c: str for c in base + flags})
    items, notes = index_table(df, "item_id", path, index_name="item_id")
    items["genres"] = _join_flags(items[flags].to_numpy() == "1", genres)
    items["year"] = _year(items["title"], items["release_date"])
    items = items[["title", "year", "genres", "release_date", "imdb_url"]]
    return items, notes


def _join_flags(flags: np.ndarray, names: list[str]) -> list[str]:
    """Comma-joined names of the set flags of each row of an ``(n, len(names))`` bool array."""
    return [", ".join(np.asarray(names, dtype=object)[row]) for row in flags]


def _read_ml100k_users(path: Path) -> tuple[pd.DataFrame, list[str]]:
    cols = ["user_id", "age", "gender", "occupation", "zip_code"]
    df = read_csv(path, sep="|", encoding="latin-1", names=cols, dtype={c: str for c in cols})
    users, notes = index_table(df, "user_id", path, index_name="user_id")
    users["age"] = pd.to_numeric(users["age"], errors="coerce").astype("Int64")
    users.insert(2, "gender_word", users["gender"].map(_GENDER_WORDS))
    return users, notes


def _year(titles: pd.Series, dates: pd.Series | None = None) -> pd.Series:
    """Release year from a ``"Title (1995)"`` title, else from a ``dd-Mon-yyyy`` date."""
    year = titles.str.extract(r"\((\d{4})\)\s*$", expand=False)
    if dates is not None:
        year = year.fillna(dates.str.extract(r"(\d{4})\s*$", expand=False))
    return pd.to_numeric(year, errors="coerce").astype("Int64")


# --------------------------------------------------------------------------- csv releases


def read_movielens_csv(folder: Path, name: str | None = None) -> Dataset:
    """Read a MovieLens csv release (ml-latest(-small), ml-20m, ml-25m, ...).

    Interactions from ``ratings.csv`` (``userId,movieId,rating,timestamp``, ratings
    0.5-5). Items from ``movies.csv`` with ``title``, ``year``, ``genres``
    (``|`` turned into ``", "``; "(no genres listed)" left empty) and, from
    ``tags.csv``, ``tags``: each movie's distinct tags in file order. No users
    table and no given split.
    """
    path = folder / "ratings.csv"
    header = read_header(path)
    require_columns(header, ["userId", "movieId"], path)
    source = {"userId": "user_id", "movieId": "item_id", "rating": "rating", "timestamp": "timestamp"}
    present = [c for c in source if c in header]
    # every column is read (usecols would hide a line with too many fields)
    df = read_csv(path, dtype={c: _ML_DTYPES[source[c]] if c in present else str for c in header})[present]
    inter, notes = validate_interactions(df.rename(columns=source), path, rating_range=(0.5, 5.0))

    items = None
    movies_path = folder / "movies.csv"
    if movies_path.is_file():
        require_columns(read_header(movies_path), ["movieId", "title"], movies_path)
        movies = read_csv(movies_path, dtype={"movieId": str, "title": str, "genres": str})
        items, n = index_table(movies, "movieId", movies_path, index_name="item_id")
        notes += n
        items = _movie_columns(items)
        tags_path = folder / "tags.csv"
        if tags_path.is_file():
            tags_header = read_header(tags_path)
            require_columns(tags_header, ["movieId", "tag"], tags_path)
            tags = read_csv(tags_path, dtype={c: str for c in tags_header})
            items["tags"] = _tags_per_item(tags["movieId"], tags["tag"]).reindex(items.index)
    else:
        notes.append("movies.csv not found: no item titles or genres")
    return Dataset(
        name=name or folder.name,
        interactions=inter,
        items=items,
        item_template=_movie_template(items),
        path=folder,
        notes=notes,
    )


def _movie_template(items: pd.DataFrame | None) -> str | None:
    if items is None:
        return None
    return MOVIE_TAGS_TEMPLATE if "tags" in items.columns else MOVIE_TEMPLATE


def _movie_columns(movies: pd.DataFrame) -> pd.DataFrame:
    """``title``, ``year``, ``genres`` from the ``title`` and ``|``-joined ``genres`` of
    ``movies.csv`` / ``movies.dat``."""
    out = pd.DataFrame(index=movies.index)
    out["title"] = movies["title"].str.strip()
    out["year"] = _year(out["title"])
    genres = movies["genres"] if "genres" in movies.columns else pd.Series("", index=movies.index)
    genres = genres.fillna("").str.replace("(no genres listed)", "", regex=False)
    out["genres"] = genres.str.replace("|", ", ", regex=False)
    return out


def _tags_per_item(item_ids: pd.Series, tags: pd.Series) -> pd.Series:
    """Each item's distinct tags (case-insensitively) in file order, joined with ``", "``."""
    df = pd.DataFrame({"item_id": item_ids.str.strip(), "tag": tags.str.strip()}).dropna()
    df = df[df["tag"] != ""]
    df = df[~df.assign(key=df["tag"].str.lower()).duplicated(["item_id", "key"])]
    return df.groupby("item_id", sort=False)["tag"].agg(", ".join)


# --------------------------------------------------------------------------- :: releases


def read_movielens_dat(folder: Path, name: str | None = None) -> Dataset:
    """Read a MovieLens ``::`` release (ml-1m, ml-10m).

    Interactions from ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``,
    ratings 0.5-5). Items from ``movies.dat`` (``MovieID::Title::Genres``) as for
    :func:`read_movielens_csv`, with ``tags`` from ``tags.dat`` (ml-10m). Users from
    ``users.dat`` (ml-1m: ``UserID::Gender::Age::Occupation::Zip-code``) with the
    age-group and occupation codes spelled out.
    """
    path = folder / "ratings.dat"
    # ':' as a one-character separator keeps pandas' fast parser; the empty fields
    # between the two colons of '::' are the unnamed columns
    names = ["user_id", "_a", "item_id", "_b", "rating", "_c", "timestamp"]
    df = read_csv(path, sep=":", names=names, usecols=names[::2], dtype=_ML_DTYPES)
    inter, notes = validate_interactions(df, path, rating_range=(0.5, 5.0))

    items = users = None
    if (folder / "movies.dat").is_file():
        movies = _read_dat(folder / "movies.dat", ["movieId", "title", "genres"])
        items, n = index_table(movies, "movieId", folder / "movies.dat", index_name="item_id")
        notes += n
        items = _movie_columns(items)
        if (folder / "tags.dat").is_file():
            tags = _read_dat(folder / "tags.dat", ["userId", "movieId", "tag", "timestamp"])
            items["tags"] = _tags_per_item(tags["movieId"], tags["tag"]).reindex(items.index)
    if (folder / "users.dat").is_file():
        raw = _read_dat(folder / "users.dat", ["user_id", "gender", "age", "occupation", "zip_code"])
        users, n = index_table(raw, "user_id", folder / "users.dat", index_name="user_id")
        notes += n
        users.insert(1, "gender_word", users["gender"].map(_GENDER_WORDS))
        users["age"] = users["age"].map(ML1M_AGES)
        occupations = pd.Series(ML1M_OCCUPATIONS, index=[str(i) for i in range(len(ML1M_OCCUPATIONS))])
        users["occupation"] = users["occupation"].map(occupations)
    return Dataset(
        name=name or folder.name,
        interactions=inter,
        items=items,
        users=users,
        item_template=_movie_template(items),
        user_template=ML1M_USER_TEMPLATE if users is not None else None,
        path=folder,
        notes=notes,
    )


def _read_dat(path: Path, names: list[str]) -> pd.DataFrame:
    """A ``::``-separated file as text columns (index: line numbers), decoded as
    UTF-8 or else latin-1 (ml-1m's ``movies.dat`` is latin-1). Titles may hold ':'."""
    if not path.is_file():
        raise DataError("file not found", file=path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    lines = text.split("\n")
    series = pd.Series(lines, index=pd.RangeIndex(1, len(lines) + 1)).str.rstrip("\r")
    series = series[series.str.strip() != ""]
    if series.empty:
        raise DataError("the file is empty", file=path)
    df = series.str.split("::", n=len(names) - 1, expand=True)
    short = df[len(names) - 1].isna() if df.shape[1] == len(names) else pd.Series(True, index=df.index)
    if short.any():
        raise DataError(
            f"expected {len(names)} fields separated by '::' ({'::'.join(names)})",
            file=path,
            row=int(df.index[short.to_numpy()][0]),
        )
    df.columns = names
    return df
