"""Bad input raises a DataError naming file, row (1-based, header counted), column and
what was expected; duplicates are dropped with a note instead."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from semrec.data import load_dataset
from semrec.errors import DataError

HEADER = "user_id,item_id,rating,timestamp\n"


def _error(folder) -> DataError:
    with pytest.raises(DataError) as e:
        load_dataset(folder)
    return e.value


# ------------------------------------------------------------------ missing things


def test_missing_folder(tmp_path):
    err = _error(tmp_path / "nowhere")
    assert err.file == str(tmp_path / "nowhere") and "folder not found" in str(err)


def test_folder_without_dataset_files(make_folder):
    err = _error(make_folder({"notes.md": "hello"}))
    assert "no dataset files found (the folder holds notes.md)" in str(err)
    assert "interactions.csv" in str(err) and "u.data" in str(err) and "train.txt + test.txt" in str(err)


def test_path_to_a_file(make_folder):
    folder = make_folder({"interactions.csv": HEADER + "1,2,3,4\n"})
    err = _error(folder / "interactions.csv")
    assert "not a file" in str(err) and str(folder) in str(err)


def test_missing_column(make_folder):
    err = _error(make_folder({"interactions.csv": "user_id,rating\n1,3\n"}))
    assert err.column == "item_id" and err.file.endswith("interactions.csv")
    assert "missing column; found columns: user_id, rating" in str(err)


# ------------------------------------------------------------------ empty data


def test_header_only(make_folder):
    err = _error(make_folder({"interactions.csv": HEADER}))
    assert err.file.endswith("interactions.csv") and "no interactions" in str(err)


def test_empty_file(make_folder):
    err = _error(make_folder({"interactions.csv": ""}))
    assert "the file is empty" in str(err) and err.file.endswith("interactions.csv")


def test_blank_lines_only_after_header(make_folder):
    err = _error(make_folder({"interactions.csv": HEADER + "\n\n"}))
    assert "no interactions" in str(err)


# ------------------------------------------------------------------ ids


@pytest.mark.parametrize(
    ("rows", "row", "column"),
    [
        ("1,10,3,1\n,11,3,2\n", 3, "user_id"),
        ("1,10,3,1\n2,11,3,2\n3,  ,3,3\n", 4, "item_id"),
        ("1,10,3,1\n\n2,,3,2\n", 4, "item_id"),  # the blank line still counts
    ],
)
def test_blank_ids(make_folder, rows, row, column):
    err = _error(make_folder({"interactions.csv": HEADER + rows}))
    assert (err.row, err.column) == (row, column)
    assert f"row {row}, column '{column}': blank" in str(err)


def test_nan_id_in_parquet(make_folder):
    folder = make_folder({})
    inter = pd.DataFrame({"user_id": [1.0, np.nan], "item_id": ["a", "b"]})
    inter.to_parquet(folder / "interactions.parquet")
    err = _error(folder)
    assert (err.row, err.column) == (2, "user_id") and "blank user id" in str(err)


# ------------------------------------------------------------------ ratings and timestamps


def test_non_numeric_rating(make_folder):
    err = _error(make_folder({"interactions.csv": HEADER + "1,10,3,1\n1,11,good,2\n"}))
    assert (err.row, err.column) == (3, "rating")
    assert "expected a number, got 'good'" in str(err)


def test_blank_rating(make_folder):
    err = _error(make_folder({"interactions.csv": HEADER + "1,10,,1\n"}))
    assert (err.row, err.column) == (2, "rating") and "got a blank cell" in str(err)


def test_out_of_range_rating_in_ml100k(make_folder):
    err = _error(make_folder({"u.data": "1\t10\t5\t1\n1\t11\t0\t2\n"}))
    assert (err.row, err.column) == (2, "rating") and err.file.endswith("u.data")
    assert "rating 0 is outside the allowed range; expected a number from 1 to 5" in str(err)


@pytest.mark.parametrize("value", ["yesterday", "1.5"])
def test_bad_timestamp(make_folder, value):
    err = _error(make_folder({"interactions.csv": HEADER + f"1,10,3,1\n1,11,3,{value}\n"}))
    assert (err.row, err.column) == (3, "timestamp")
    assert f"expected an integer Unix timestamp or an ISO 8601 date-time, got '{value}'" in str(err)


# ------------------------------------------------------------------ duplicates: a note, not an error


def test_duplicates_keep_the_last(make_folder):
    rows = "1,10,1,1\n1,11,2,2\n1,10,3,3\n2,10,4,4\n1,10,5,5\n1,11,2,6\n"
    ds = load_dataset(make_folder({"interactions.csv": HEADER + rows}))
    assert ds.interactions.values.tolist() == [["2", "10", 4.0, 4], ["1", "10", 5.0, 5], ["1", "11", 2.0, 6]]
    note = "interactions.csv: dropped 3 duplicate interactions (kept the last of each user-item pair)"
    assert note in ds.notes


def test_duplicate_item_rows_keep_the_last(make_folder):
    items = "item_id,title\n10,Old\n10,New\n"
    folder = make_folder({"interactions.csv": HEADER + "1,10,3,1\n", "items.csv": items})
    ds = load_dataset(folder)
    assert ds.items["title"].tolist() == ["New"]
    assert any("items.csv: 1 repeated ids" in n for n in ds.notes)


# ------------------------------------------------------------------ encodings and malformed lines


def test_undecodable_text(make_folder):
    content = (HEADER + "1,10,3,1\n").encode() + "2,caf\xe9,3,2\n".encode("latin-1")
    err = _error(make_folder({"interactions.csv": content}))
    offset = content.index(b"\xe9")
    assert err.row == 3 and err.file.endswith("interactions.csv")
    assert f"cannot decode byte 0xe9 at byte offset {offset} as utf-8" in str(err)
    assert 'encoding = "latin-1"' in str(err)


def test_undecodable_item_table(make_folder):
    items = b"item_id,title\n10,\xff\xfe\n"
    folder = make_folder({"interactions.csv": HEADER + "1,10,3,1\n", "items.csv": items})
    err = _error(folder)
    assert err.row == 2 and err.file.endswith("items.csv") and "as utf-8" in str(err)


def test_ragged_line(make_folder):
    err = _error(make_folder({"interactions.csv": HEADER + "1,10,3,1\n1,11,3,2,9\n"}))
    assert err.row == 3 and "expected 4 fields separated by ',', found 5" in str(err)


def test_malformed_lightgcn_line(make_folder):
    err = _error(make_folder({"train.txt": "0 1\n1 2 three\n", "test.txt": "0 2\n"}))
    assert err.row == 2 and "got 'three'" in str(err)


# ------------------------------------------------------------------ found while trying to break it (issue 20)


@pytest.mark.parametrize("value", ["99999999999999999999999", "1e30", "-1e19"])
def test_a_timestamp_beyond_64_bits_is_named(make_folder, value):
    # 99999999999999999999999 raised OverflowError and 1e30 was cast to garbage before the
    # fix (3433209)
    err = _error(make_folder({"interactions.csv": HEADER + f"u1,i1,4,{value}\n"}))
    assert (err.row, err.column) == (2, "timestamp")
    assert f"expected an integer Unix timestamp or an ISO 8601 date-time, got '{value}'" in str(err)


@pytest.mark.parametrize("text", [HEADER.replace("item_id", '"item_id') + "u1,i1,4,5\n",
                                  HEADER + 'u1,i1,4,5\nu2,"i2,4,5\nu3,i3,4,5\n'])
def test_a_quote_never_closed_is_named(make_folder, text):
    # in the header it raised pandas' ParserError before the fix (3433209)
    err = _error(make_folder({"interactions.csv": text}))
    assert 'a field opens a quote (") that is never closed' in str(err)
    assert err.file.endswith("interactions.csv")
