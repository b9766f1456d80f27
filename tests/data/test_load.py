"""load_dataset: names and paths, format detection, and describe()."""
from __future__ import annotations

import json

import pytest

from semrec.data import describe, load_dataset
from semrec.data.load import detect_format
from semrec.errors import DataError


@pytest.mark.parametrize(
    ("files", "fmt"),
    [
        ({"u.data": ""}, "ml-100k"),
        ({"ratings.csv": ""}, "movielens-csv"),
        ({"ratings.dat": ""}, "movielens-dat"),
        ({"Toy.inter.json": ""}, "amazon-json"),
        ({"train.txt": "", "test.txt": ""}, "lightgcn"),
        ({"interactions.parquet": ""}, "generic"),
        ({"train.csv": ""}, "generic"),
        ({"dataset.toml": "", "train.txt": ""}, "generic"),  # the explicit layout wins
    ],
)
def test_detect_format(make_folder, files, fmt):
    assert detect_format(make_folder(files)) == fmt


def test_path_works_wherever_a_name_does(data_home, make_folder, monkeypatch):
    by_path = load_dataset(str(data_home / "amazon-office"))
    assert by_path.name == "amazon-office" and len(by_path.interactions) == 53_258
    folder = make_folder({"interactions.csv": "user_id,item_id\na,b\n"}, "local-set")
    monkeypatch.chdir(folder.parent)
    assert load_dataset("local-set").name == "local-set"  # a bare word: a folder in the working directory
    assert load_dataset("./local-set").path.resolve() == folder.resolve()


def test_unknown_name(data_home):
    with pytest.raises(DataError) as e:
        load_dataset("no-such-set")
    assert f"no dataset 'no-such-set': not a folder under the data home {data_home}" in str(e.value)
    assert "ml-100k, ml-latest-small, gowalla, amazon-office" in str(e.value)


def test_describe_ml100k(ml100k):
    info = describe(ml100k)
    assert json.loads(json.dumps(info)) == info  # JSON-ready
    counts = (info["name"], info["n_users"], info["n_items"], info["n_interactions"])
    assert counts == ("ml-100k", 943, 1682, 100_000)
    assert info["density"] == pytest.approx(100_000 / (943 * 1682))
    assert info["rating_scale"] == [1.0, 5.0] and info["has_timestamps"] is True
    assert info["text_columns"] == {
        "items": ["title", "genres", "release_date", "imdb_url"],
        "users": ["gender", "gender_word", "occupation", "zip_code"],
    }
    assert info["given_splits"] == ["u1", "u2", "u3", "u4", "u5", "ua", "ub", "default"]
    assert info["given_sizes"]["ua"] == {"train": 90_570, "valid": None, "test": 9_430}


def test_describe_without_ratings_or_text(make_folder):
    info = describe(load_dataset(make_folder({"train.txt": "0 1 2\n1 2\n", "test.txt": "0 2\n"})))
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (2, 2, 3)
    assert info["rating_scale"] is None and info["has_timestamps"] is False
    assert info["text_columns"] == {"items": [], "users": []}
    assert info["given_splits"] == ["default"]
