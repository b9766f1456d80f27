"""MovieLens readers: the real ml-100k, and small csv / :: / 100K folders."""
from __future__ import annotations

import pytest

from semrec.data import load_dataset, render_template
from semrec.data.readers.movielens import read_ml100k
from semrec.errors import DataError

# ------------------------------------------------------------------ real ml-100k (SOURCE.md counts)


def test_ml100k_counts(ml100k):
    inter = ml100k.interactions
    assert ml100k.name == "ml-100k"
    assert len(inter) == 100_000
    assert inter["user_id"].nunique() == 943
    assert inter["item_id"].nunique() == 1682
    assert list(inter.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert str(inter["rating"].dtype) == "float64" and str(inter["timestamp"].dtype) == "int64"
    assert ml100k.rating_scale == (1.0, 5.0)
    counts = inter["rating"].value_counts().sort_index().tolist()
    assert counts == [6110, 11370, 27145, 34174, 21201]
    assert ml100k.notes == []


def test_ml100k_keeps_file_order_and_string_ids(ml100k):
    first = ml100k.interactions.iloc[0]
    assert first.tolist() == ["196", "242", 3.0, 881250949]
    assert all(isinstance(x, str) for x in ml100k.interactions["item_id"].head())


def test_ml100k_given_splits(ml100k):
    assert set(ml100k.given) == {"u1", "u2", "u3", "u4", "u5", "ua", "ub", "default"}
    assert ml100k.given["default"] is ml100k.given["u1"]
    for name in ("u1", "u2", "u3", "u4", "u5"):
        g = ml100k.given[name]
        assert (len(g.train), len(g.test), g.valid) == (80_000, 20_000, None)
    for name in ("ua", "ub"):
        g = ml100k.given[name]
        assert (len(g.train), len(g.test)) == (90_570, 9_430)
        assert g.test.groupby("user_id").size().eq(10).all()
    u1 = ml100k.given["u1"]
    pairs = lambda df: set(zip(df["user_id"], df["item_id"]))  # noqa: E731
    assert not pairs(u1.train) & pairs(u1.test)
    assert pairs(u1.train) | pairs(u1.test) == pairs(ml100k.interactions)


def test_ml100k_items(ml100k):
    items = ml100k.items
    assert len(items) == 1682 and items.index.name == "item_id"
    toy = items.loc["1"]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["year"] == 1995
    assert toy["genres"] == "Animation, Children's, Comedy"
    assert items.loc["543", "title"] == "Misérables, Les (1995)"  # latin-1 decoded
    assert items.loc["267", "title"] == "unknown" and items.loc["267", "genres"] == "unknown"
    expected = "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert render_template(ml100k.item_template, toy) == expected
    assert ml100k.text_columns()["items"][:2] == ["title", "genres"]


def test_ml100k_users(ml100k):
    users = ml100k.users
    assert len(users) == 943
    one = users.loc["1"]
    assert (one["age"], one["gender"], one["gender_word"], one["occupation"], one["zip_code"]) == (
        24, "M", "man", "technician", "85711"
    )
    assert render_template(ml100k.user_template, one) == "24 year old man, technician."
    assert render_template(ml100k.user_template, users.loc["2"]) == "53 year old woman, other."


# ------------------------------------------------------------------ small 100K folders

U_DATA = "1\t10\t4\t100\n1\t20\t5\t200\n2\t10\t3\t300\n"
U_ITEM = (
    "10|Heat (1995)|15-Dec-1995||http://x|0|1|0|0|0|0|1|0|1|0|0|0|0|0|0|0|1|0|0\n"
    "20|Untitled|01-Jan-1990||http://y|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
)


def test_ml100k_without_item_file_or_genre_list(make_folder):
    ds = read_ml100k(make_folder({"u.data": U_DATA}))
    assert ds.items is None and ds.item_template is None and ds.given == {}
    assert any("u.item not found" in n for n in ds.notes)

    ds = read_ml100k(make_folder({"u.data": U_DATA, "u.item": U_ITEM}, name="with-items"))
    # no u.genre: the known genre list names the flags
    assert ds.items.loc["10", "genres"] == "Action, Crime, Drama, Thriller"
    assert ds.items.loc["20", "year"] == 1990  # from the release date when the title has none
    assert render_template(ds.item_template, ds.items.loc["20"]) == "Untitled."


def test_ml100k_rating_out_of_range(make_folder):
    folder = make_folder({"u.data": "1\t10\t4\t100\n1\t20\t6\t200\n"})
    with pytest.raises(DataError) as e:
        read_ml100k(folder)
    assert (e.value.row, e.value.column) == (2, "rating")
    assert "rating 6" in str(e.value) and "from 1 to 5" in str(e.value) and "u.data" in str(e.value)


def test_ml100k_split_pair_needs_both_files(make_folder):
    folder = make_folder({"u.data": U_DATA, "u1.base": U_DATA, "u1.test": U_DATA, "u2.base": U_DATA})
    ds = read_ml100k(folder)
    assert set(ds.given) == {"u1", "default"}


# ------------------------------------------------------------------ csv releases

RATINGS_CSV = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,0.5,964981247\n2,1,5.0,964982224\n"
MOVIES_CSV = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children\n"
    '3,"Grumpier Old Men, The (1995)",(no genres listed)\n'
)
TAGS_CSV = "userId,movieId,tag,timestamp\n1,1,pixar,1\n2,1,Pixar,2\n2,1,fun,3\n"


def test_movielens_csv_release(make_folder):
    files = {"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV, "tags.csv": TAGS_CSV}
    folder = make_folder(files, "ml-latest-small")
    ds = load_dataset(folder)
    assert ds.name == "ml-latest-small"
    assert ds.interactions["rating"].tolist() == [4.0, 0.5, 5.0]
    assert ds.interactions["timestamp"].tolist() == [964982703, 964981247, 964982224]
    items = ds.items
    assert items.loc["3", "title"] == "Grumpier Old Men, The (1995)"
    assert items.loc["3", "genres"] == ""  # "(no genres listed)"
    assert items.loc["1", "tags"] == "pixar, fun"  # distinct ignoring case, in file order
    assert items.loc["1", "year"] == 1995
    assert render_template(ds.item_template, items.loc["1"]) == (
        "Toy Story (1995). Genres: Adventure, Animation, Children. Tags: pixar, fun."
    )
    assert render_template(ds.item_template, items.loc["3"]) == "Grumpier Old Men, The (1995)."


def test_movielens_csv_rating_range_and_columns(make_folder):
    bad = make_folder({"ratings.csv": "userId,movieId,rating,timestamp\n1,1,4,1\n1,2,5.5,2\n"}, "bad")
    with pytest.raises(DataError, match=r"row 3, column 'rating': rating 5.5 .* from 0.5 to 5"):
        load_dataset(bad)
    missing = make_folder({"ratings.csv": "userId,itemId,rating\n1,1,4\n"}, "missing")
    with pytest.raises(DataError) as e:
        load_dataset(missing)
    assert e.value.column == "movieId" and "userId, itemId, rating" in str(e.value)


# ------------------------------------------------------------------ :: releases (ml-1m style)


def test_movielens_dat_release(make_folder):
    folder = make_folder(
        {
            "ratings.dat": "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n",
            "movies.dat": "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n".encode("latin-1")
            + "661::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi\n".encode("latin-1")
            + "7::Misérables, Les (1995)::Drama\n".encode("latin-1"),
            "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
        },
        "ml-1m",
    )
    ds = load_dataset(folder)
    pairs = ds.interactions[["user_id", "item_id"]].values.tolist()
    assert pairs == [["1", "1193"], ["1", "661"], ["2", "1193"]]
    assert ds.interactions["rating"].tolist() == [5.0, 3.0, 4.0]
    assert ds.items.loc["661", "title"] == "Star Wars: Episode IV - A New Hope (1977)"  # ':' inside a title
    assert ds.items.loc["661", "genres"] == "Action, Sci-Fi"
    assert ds.items.loc["7", "title"] == "Misérables, Les (1995)"  # latin-1 fallback
    one = ds.users.loc["1"]
    assert (one["gender_word"], one["age"], one["occupation"]) == ("woman", "under 18", "K-12 student")
    assert render_template(ds.user_template, ds.users.loc["2"]) == "man, age 56+, self-employed."


def test_movielens_dat_short_line(make_folder):
    folder = make_folder({"ratings.dat": "1::1::5::9\n", "movies.dat": "1::Heat (1995)::Action\n2::Broken\n"})
    with pytest.raises(DataError) as e:
        load_dataset(folder)
    assert e.value.row == 2 and "movies.dat" in str(e.value) and "3 fields" in str(e.value)
