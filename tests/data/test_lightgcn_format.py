"""LightGCN text format: the real Gowalla split and small synthetic folders."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from semrec.data import load_dataset, make_split
from semrec.data.readers.lightgcn import read_lightgcn_file
from semrec.errors import DataError

# ------------------------------------------------------------------ real gowalla (SOURCE.md counts)


def test_gowalla_counts(gowalla):
    g = gowalla.given["default"]
    assert (len(g.train), len(g.test), g.valid) == (810_128, 217_242, None)
    assert len(gowalla.interactions) == 810_128 + 217_242  # no pair is in both files
    assert gowalla.interactions["user_id"].nunique() == 29_858
    assert gowalla.interactions["item_id"].nunique() == 40_981
    assert set(g.test["item_id"]) <= set(g.train["item_id"])
    assert list(gowalla.interactions.columns) == ["user_id", "item_id"]
    assert not gowalla.has_timestamps and gowalla.rating_scale is None
    assert gowalla.items is None and gowalla.notes == []


def test_gowalla_lightgcnpp_split(gowalla):
    pp = gowalla.given["lightgcnpp"]
    assert (len(pp.train), len(pp.valid), len(pp.test)) == (719_081, 91_047, 217_242)
    assert pp.test is gowalla.given["default"].test

    def keys(*parts):  # one sorted int64 per (user, item) pair
        df = pd.concat(parts)
        users, items = (df[c].astype(np.int64).to_numpy() for c in ("user_id", "item_id"))
        return np.sort(users * 100_000 + items)

    together = keys(pp.train, pp.valid)
    assert np.array_equal(together, keys(gowalla.given["default"].train))
    assert len(np.unique(together)) == len(together)  # train and valid are disjoint


def test_gowalla_train_parses_fast(data_home):
    path = data_home / "gowalla" / "train.txt"
    start = time.process_time()  # this process's CPU time: other load on the machine does not count
    df, _ = read_lightgcn_file(path)
    assert time.process_time() - start < 2.0
    assert len(df) == 810_128
    assert df.iloc[:3].values.tolist() == [["0", "0"], ["0", "1"], ["0", "2"]]


# ------------------------------------------------------------------ synthetic folders


def test_user_without_items_and_repeated_items(make_folder):
    folder = make_folder({"train.txt": "0 1 2 1\n1\n\n2 3\n", "test.txt": "0 3\n2 1\n"})
    ds = load_dataset(folder)
    train = ds.given["default"].train
    assert train.values.tolist() == [["0", "2"], ["0", "1"], ["2", "3"]]  # the set of a line, last kept
    assert any("1 line(s) hold a user with no items" in n for n in ds.notes)
    assert any("dropped 1 duplicate interactions" in n for n in ds.notes)
    assert ds.interactions.values.tolist() == train.values.tolist() + [["0", "3"], ["2", "1"]]


def test_pairs_in_train_and_test_are_kept_once(make_folder):
    ds = load_dataset(make_folder({"train.txt": "0 1 2\n", "test.txt": "0 2\n"}))
    assert len(ds.interactions) == 2
    assert any("1 user-item pairs of train.txt are repeated in test.txt" in n for n in ds.notes)


def test_lightgcnpp_folder_adds_a_given_split(make_folder):
    folder = make_folder(
        {
            "train.txt": "0 1 2 3 4\n1 1 2 3\n",
            "test.txt": "0 5\n1 4\n",
            "lightgcnpp_split/train.txt": "0 1 2 4\n1 1 3\n",
            "lightgcnpp_split/valid.txt": "0 3\n1 2\n",
        }
    )
    ds = load_dataset(folder)
    assert set(ds.given) == {"default", "lightgcnpp"}
    split = make_split(ds, "given:lightgcnpp")
    assert (len(split.train), len(split.valid)) == (5, 2)
    assert split.users.to_external(split.test.users) == ["1"]  # item 5 never in training: dropped
    assert any("test: dropped 1 interactions" in n for n in split.notes)


def test_malformed_token_names_row_and_token(make_folder):
    folder = make_folder({"train.txt": "0 1 2\n1 3 4x 5\n", "test.txt": "0 3\n"})
    with pytest.raises(DataError) as e:
        load_dataset(folder)
    assert e.value.row == 2 and e.value.file.endswith("train.txt")
    assert "'4x'" in str(e.value) and "integer item id" in str(e.value) and "token 3" in str(e.value)


@pytest.mark.parametrize("bad", ["1.5", "abc", "-"])
def test_non_integer_user(make_folder, bad):
    folder = make_folder({"train.txt": f"0 1\n\n{bad} 2\n", "test.txt": "0 1\n"})
    with pytest.raises(DataError, match=rf"row 3: expected an integer user id, got '{bad}'"):
        load_dataset(folder)


def test_missing_test_file(make_folder):
    folder = make_folder({"train.txt": "0 1\n"})
    with pytest.raises(DataError) as e:
        load_dataset(folder)
    assert e.value.file == str(folder / "test.txt") and "file not found" in str(e.value)


@pytest.mark.parametrize("content", ["", "\n\n", "0\n1\n"])
def test_no_interactions(make_folder, content):
    folder = make_folder({"train.txt": content, "test.txt": "0 1\n"})
    with pytest.raises(DataError, match="train.txt: no interactions"):
        load_dataset(folder)
