"""One entry point for every dataset: :func:`load_dataset`.

A name (``ml-100k``) is a folder under the data home (see :mod:`semrec.data.home`);
a path to a folder works wherever a name does. The format is told from the files
present (:func:`detect_format`), and read by the reader of that format.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from semrec.data.dataset import Dataset
from semrec.data.home import PUBLIC_DATASETS, data_home, ensure_dataset
from semrec.data.readers.amazon import INTER_SUFFIX, read_amazon
from semrec.data.readers.generic import CONFIG_FILE, find_table, read_generic
from semrec.data.readers.lightgcn import read_lightgcn
from semrec.data.readers.movielens import read_ml100k, read_movielens_csv, read_movielens_dat
from semrec.errors import DataError

#: Format name -> reader (folder, name) -> Dataset.
READERS: dict[str, Callable[[Path, str | None], Dataset]] = {
    "generic": read_generic,
    "ml-100k": read_ml100k,
    "movielens-csv": read_movielens_csv,
    "movielens-dat": read_movielens_dat,
    "amazon-json": read_amazon,
    "lightgcn": read_lightgcn,
}

#: What each format is told by, for messages.
FORMAT_FILES = {
    "generic": f"interactions.csv / interactions.parquet, train.* + test.*, or {CONFIG_FILE}",
    "ml-100k": "u.data",
    "movielens-csv": "ratings.csv",
    "movielens-dat": "ratings.dat",
    "amazon-json": f"*{INTER_SUFFIX}",
    "lightgcn": "train.txt + test.txt",
}


def detect_format(folder: Path) -> str:
    """The format of the dataset in ``folder`` (a key of :data:`READERS`).

    The generic layout wins when its files are there; then the file that marks
    each known format, in the order of :data:`FORMAT_FILES`.

    Raises:
        DataError: no known format's files are in ``folder``.
    """
    if (
        (folder / CONFIG_FILE).is_file()
        or find_table(folder, "interactions") is not None
        or find_table(folder, "train") is not None
    ):
        return "generic"
    if (folder / "u.data").is_file():
        return "ml-100k"
    if (folder / "ratings.csv").is_file():
        return "movielens-csv"
    if (folder / "ratings.dat").is_file():
        return "movielens-dat"
    if any(folder.glob(f"*{INTER_SUFFIX}")):
        return "amazon-json"
    if (folder / "train.txt").is_file():
        return "lightgcn"
    present = sorted(p.name for p in folder.iterdir())
    shown = ", ".join(present[:12]) + (", ..." if len(present) > 12 else "") if present else "nothing"
    expected = "; ".join(f"{files} ({fmt})" for fmt, files in FORMAT_FILES.items())
    raise DataError(
        f"no dataset files found (the folder holds {shown}); expected one of: {expected}", file=folder
    )


def load_dataset(name_or_path: str | Path, *, download: bool = True) -> Dataset:
    """Read a dataset by name or folder.

    Args:
        name_or_path: a dataset name, looked up under the data home (public sets
            such as ``ml-100k``, ``ml-latest-small``, ``gowalla``, ``amazon-office``
            are downloaded there when absent), or a path to a folder. A bare word
            that is not under the data home but is a folder in the working
            directory is read from there.
        download: whether an absent public set may be downloaded.

    Raises:
        DataError: the folder or name does not exist, a public set is absent and
            cannot be downloaded (the message says which files to put where), the
            format is unknown, or the files are malformed.
    """
    folder, name = resolve(name_or_path, download=download)
    return READERS[detect_format(folder)](folder, name)


def resolve(name_or_path: str | Path, *, download: bool = True) -> tuple[Path, str | None]:
    """The folder of a dataset name or path, and the name to give the dataset
    (``None``: the reader takes the folder's name)."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or _looks_like_path(text):
        return _folder(Path(text).expanduser()), None
    home_folder = data_home() / text
    if text in PUBLIC_DATASETS:
        return ensure_dataset(text, download=download), text
    if home_folder.is_dir():
        return home_folder, text
    if Path(text).is_dir():
        return _folder(Path(text)), None
    raise DataError(
        f"no dataset '{text}': not a folder under the data home {data_home()} nor in the working "
        f"directory; public datasets: {', '.join(PUBLIC_DATASETS)}"
    )


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.startswith((".", "~"))


def _folder(path: Path) -> Path:
    if not path.exists():
        raise DataError("folder not found; expected a folder holding the dataset's files", file=path)
    if not path.is_dir():
        raise DataError(
            f"expected a folder holding the dataset's files, not a file; try {path.parent}", file=path
        )
    return path
