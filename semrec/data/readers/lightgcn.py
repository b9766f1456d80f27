"""The LightGCN / NGCF text format (Gowalla, Yelp2018, Amazon-Book).

``train.txt`` and ``test.txt`` hold one line per user: ``user item item ...``,
integer ids separated by whitespace; the items of a line are a set. A line with a
user and no items is allowed. An optional ``lightgcnpp_split/`` folder (LightGCN++)
holds ``train.txt`` and ``valid.txt`` that together make up ``train.txt``.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from semrec.data.dataset import Dataset, GivenSplit
from semrec.data.readers.common import validate_interactions
from semrec.errors import DataError

LIGHTGCNPP_FOLDER = "lightgcnpp_split"
_INTEGER = re.compile(rb"[+-]?[0-9]+")
_IS_SPACE = np.zeros(256, dtype=bool)  # byte -> is it whitespace (what bytes.split() splits on)
_IS_SPACE[list(b" \t\n\r\x0b\x0c")] = True


def read_lightgcn(folder: Path, name: str | None = None) -> Dataset:
    """Read a LightGCN folder.

    ``interactions`` is ``train.txt`` followed by ``test.txt`` (no ratings, no
    timestamps). Given splits: ``default`` = train / test (no validation part);
    ``lightgcnpp`` = ``lightgcnpp_split/train.txt`` / ``valid.txt`` / ``test.txt``
    where that folder exists.
    """
    raw_train, notes = _parse(folder / "train.txt")
    raw_test, n = _parse(folder / "test.txt")
    notes += n
    train, n = validate_interactions(raw_train, folder / "train.txt")
    notes += n
    test, n = validate_interactions(raw_test, folder / "test.txt")
    notes += n
    # validated again together: integer ids make that cheap, and it drops pairs in both files
    inter, _ = validate_interactions(pd.concat([raw_train, raw_test]), folder, line_numbers=False)
    repeated = len(train) + len(test) - len(inter)
    if repeated:
        notes.append(
            f"{repeated} user-item pairs of train.txt are repeated in test.txt; "
            "the interaction table keeps them once"
        )
    given = {"default": GivenSplit(train=train, test=test)}
    pp = folder / LIGHTGCNPP_FOLDER
    if (pp / "train.txt").is_file() and (pp / "valid.txt").is_file():
        pp_train, n1 = read_lightgcn_file(pp / "train.txt")
        pp_valid, n2 = read_lightgcn_file(pp / "valid.txt")
        given["lightgcnpp"] = GivenSplit(train=pp_train, valid=pp_valid, test=test)
        notes += n1 + n2
    return Dataset(name=name or folder.name, interactions=inter, given=given, path=folder, notes=notes)


def read_lightgcn_file(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """One ``user item item ...`` file as a validated interaction table, and notes.

    Raises:
        DataError: the file is missing, holds no interaction, or a token is not an
            integer (naming its line and the token).
    """
    df, notes = _parse(path)
    df, n = validate_interactions(df, path)
    return df, notes + n


def _parse(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Integer ``user_id``, ``item_id`` columns (int64), indexed by line number."""
    if not path.is_file():
        raise DataError(
            "file not found; a LightGCN folder holds train.txt and test.txt "
            "(lines of 'user item item ...')",
            file=path,
        )
    data = path.read_bytes()
    buf = np.frombuffer(data, dtype=np.uint8)  # (n_bytes,)
    space = _IS_SPACE[buf]
    token_start = np.flatnonzero(~space & np.concatenate([[True], space[:-1]]))  # byte offsets
    newlines = np.flatnonzero(buf == ord("\n"))
    n_lines = len(newlines) + 1
    line_of_token = np.searchsorted(newlines, token_start)  # 0-based line of each token
    lengths = np.bincount(line_of_token, minlength=n_lines)  # tokens per line, (n_lines,)
    values = _integers(data, int(lengths.sum()))
    if values is None:
        raise _bad_token(path, data)

    has_user = lengths > 0
    starts = (np.cumsum(lengths) - lengths)[has_user]  # first token (the user) of each line
    n_items = lengths[has_user] - 1
    is_item = np.ones(len(values), dtype=bool)
    is_item[starts] = False
    lines = np.arange(1, n_lines + 1)[has_user]
    df = pd.DataFrame(
        {"user_id": np.repeat(values[starts], n_items), "item_id": values[is_item]},
        index=np.repeat(lines, n_items),
    )
    if df.empty:
        raise DataError("no interactions: expected lines of 'user item item ...'", file=path)
    n_bare = int((n_items == 0).sum())
    notes = [f"{path.name}: {n_bare} line(s) hold a user with no items"] if n_bare else []
    return df, notes


def _integers(data: bytes, count: int) -> np.ndarray | None:
    """All whitespace-separated integers of ``data`` (int64), or ``None`` if some
    token is not an integer. numpy's text parser stops at the first bad token, so a
    short result means a bad token."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "could not be read to its end"
        try:
            values = np.fromstring(data, dtype=np.int64, sep=" ")
        except ValueError:
            return None
    return values if len(values) == count else None


def _bad_token(path: Path, data: bytes) -> DataError:
    for line_no, line in enumerate(data.split(b"\n"), start=1):
        for pos, tok in enumerate(line.split()):
            if not _INTEGER.fullmatch(tok):
                what = "user id" if pos == 0 else "item id"
                return DataError(
                    f"expected an integer {what}, got {tok.decode('utf-8', 'replace')!r} "
                    f"(token {pos + 1} of the line)",
                    file=path,
                    row=line_no,
                )
    return DataError("cannot parse the file as lines of integer ids 'user item item ...'", file=path)
