"""The generic folder layout: csv / parquet, item and user tables, dataset.toml, given parts."""
from __future__ import annotations

import pandas as pd
import pytest

from semrec.data import load_dataset, make_split, render_template
from semrec.errors import ConfigError, DataError

INTERACTIONS = "user_id,item_id,rating,timestamp\nu1,i1,4,10\nu1,i2,2,20\nu2,i1,5,30\nu2,i3,3,40\n"
ITEMS = "item_id,title,genres\ni1,Heat,Crime\ni2,Up,\ni3,Only in the table,Drama\ni4,Never rated,\n"
USERS = "user_id,age,job\nu1,31,nurse\nu2,,pilot\n"


def test_csv_folder_with_items_and_users(make_folder):
    files = {"interactions.csv": INTERACTIONS, "items.csv": ITEMS, "users.csv": USERS}
    ds = load_dataset(make_folder(files, "mine"))
    assert ds.name == "mine"
    inter = ds.interactions
    assert inter.values.tolist() == [
        ["u1", "i1", 4.0, 10], ["u1", "i2", 2.0, 20], ["u2", "i1", 5.0, 30], ["u2", "i3", 3.0, 40]
    ]
    assert [str(t) for t in inter.dtypes] == ["object", "object", "float64", "int64"]
    assert ds.items.loc["i2", "genres"] != ds.items.loc["i2", "genres"]  # blank -> NaN
    assert ds.text_columns() == {"items": ["title", "genres"], "users": ["age", "job"]}
    # default templates: title first, then every column as an optional labelled segment
    assert ds.item_template == "[{title}.][ Genres: {genres}.]"
    assert render_template(ds.item_template, ds.items.loc["i2"]) == "Up."
    assert render_template(ds.user_template, ds.users.loc["u2"]) == "Job: pilot."
    assert ds.given == {} and ds.implicit_threshold is None
    split = make_split(ds, "cold-items:0.25/0")
    assert split.n_items == 4  # i4 has text but no interaction: still gets an index


def test_dataset_toml_names_columns_and_templates(make_folder):
    folder = make_folder(
        {
            "interactions.csv": "uid;mid;stars;when\n1;10;4.5;2024-01-01T00:00:00Z\n2;10;1;2024-01-02\n",
            "items.csv": "mid;name\n10;Café\n",
            "dataset.toml": (
                'name = "shop"\nsep = ";"\nimplicit_threshold = 4\nrating_range = [1, 5]\n'
                'item_text = "Product: {name}"\n'
                '[columns]\nuser = "uid"\nitem = "mid"\nrating = "stars"\ntimestamp = "when"\n'
            ),
        }
    )
    ds = load_dataset(folder)
    assert ds.name == "shop" and ds.implicit_threshold == 4.0
    assert ds.interactions.values.tolist() == [["1", "10", 4.5, 1704067200], ["2", "10", 1.0, 1704153600]]
    assert ds.items.index.tolist() == ["10"] and ds.items.index.name == "item_id"
    assert render_template(ds.item_template, ds.items.loc["10"]) == "Product: Café"
    # the rating-1 row is not a positive (see test_split.py), and one interaction per user
    # leaves nothing to test on
    with pytest.raises(ConfigError, match="every user has a single interaction"):
        make_split(ds, "random:0.5/0/0.5")


def test_tab_separated_latin1(make_folder):
    folder = make_folder(
        {
            "interactions.csv": "user_id\titem_id\na\tb\n",
            "items.csv": "item_id\ttitle\nb\tCaf\xe9\n".encode("latin-1"),
            "dataset.toml": 'sep = "\\t"\nencoding = "latin-1"\n',
        }
    )
    ds = load_dataset(folder)
    assert ds.items.loc["b", "title"] == "Café"
    assert list(ds.interactions.columns) == ["user_id", "item_id"]


def test_parquet_folder(make_folder):
    folder = make_folder({})
    inter = {"user_id": [1, 1, 2], "item_id": [7.0, 8.0, 7.0], "rating": [1, 2, 3], "timestamp": [5, 6, 7]}
    pd.DataFrame(inter).to_parquet(folder / "interactions.parquet")
    items = {"item_id": [7, 8], "title": ["Seven", "Eight"], "price": [1.5, 2.0]}
    pd.DataFrame(items).to_parquet(folder / "items.parquet")
    ds = load_dataset(folder)
    assert ds.interactions.values.tolist() == [["1", "7", 1.0, 5], ["1", "8", 2.0, 6], ["2", "7", 3.0, 7]]
    assert ds.items.loc["8", "title"] == "Eight"
    assert render_template("{title} costs {price:.2f}", ds.items.loc["7"]) == "Seven costs 1.50"


def test_given_parts_form_the_default_split(make_folder):
    folder = make_folder(
        {
            "train.csv": "user_id,item_id\na,x\na,y\nb,x\nb,z\n",
            "valid.csv": "user_id,item_id\na,z\n",
            "test.csv": "user_id,item_id\nb,y\nc,x\n",
        }
    )
    ds = load_dataset(folder)
    g = ds.given["default"]
    assert (len(g.train), len(g.valid), len(g.test)) == (4, 1, 2)
    assert len(ds.interactions) == 7
    assert any("no interactions file" in n for n in ds.notes)
    split = make_split(ds, "given")
    assert len(split.valid) == 1
    assert split.users.to_external(split.test.users) == ["b"]  # c never occurs in training
    assert any("test: dropped 1 interactions of 1 users unseen in training" in n for n in split.notes)


def test_given_parts_need_train_and_test(make_folder):
    folder = make_folder({"interactions.csv": INTERACTIONS, "train.csv": INTERACTIONS})
    with pytest.raises(DataError, match=r"found train\.\* but no test\.csv or test\.parquet"):
        load_dataset(folder)


def test_csv_and_parquet_side_by_side_is_ambiguous(make_folder):
    folder = make_folder({"interactions.csv": INTERACTIONS})
    pd.read_csv(folder / "interactions.csv").to_parquet(folder / "interactions.parquet")
    with pytest.raises(DataError, match="both interactions.csv and interactions.parquet exist"):
        load_dataset(folder)


# ------------------------------------------------------------------ dataset.toml mistakes


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('nmae = "x"\n', r"unknown key\(s\) nmae"),
        ('[columns]\nusr = "u"\n', r"\[columns\] unknown key\(s\) usr"),
        ("implicit_threshold = \"high\"\n", r"implicit_threshold: expected float or none"),
        ("rating_range = [5, 1]\n", r"rating_range: expected \[min, max\] with min <= max"),
        ("rating_range = [1, 2, 3]\n", r"rating_range: expected \[min, max\]"),
        ('sep = "::"\n', r"sep: expected one character"),
        ('encoding = "klingon"\n', r"encoding: unknown encoding 'klingon'"),
        ('item_text = "{title} by {author}"\n', r"item_text: template .* uses \{author\}, which is not a"),
        ('user_text = "{job}"\n', r"user_text is set but there is no users.csv"),
        ('item_text = "[{title}"\n', r"'\[' without a matching '\]'"),
        ("name = \n", r"not valid TOML"),
    ],
)
def test_bad_dataset_toml(make_folder, toml, expected):
    folder = make_folder({"interactions.csv": INTERACTIONS, "items.csv": ITEMS, "dataset.toml": toml})
    with pytest.raises(ConfigError, match=expected) as e:
        load_dataset(folder)
    assert "dataset.toml" in str(e.value)


def test_rating_range_from_toml(make_folder):
    folder = make_folder({"interactions.csv": INTERACTIONS, "dataset.toml": "rating_range = [3, 5]\n"})
    with pytest.raises(DataError) as e:
        load_dataset(folder)
    assert (e.value.row, e.value.column) == (3, "rating")
    assert "rating 2 is outside the allowed range; expected a number from 3 to 5" in str(e.value)


def test_missing_id_column_suggests_toml_columns(make_folder):
    folder = make_folder({"interactions.csv": "user,item_id\n1,2\n"})
    with pytest.raises(DataError) as e:
        load_dataset(folder)
    assert e.value.column == "user_id"
    assert "found columns: user, item_id" in str(e.value) and "[columns]" in str(e.value)


# ------------------------------------------------------------------ tables that describe other ids (issue 20)

RATED = "user_id,item_id\n" + "".join(f"u{u},i{i}\n" for u in range(6) for i in range(u % 3, u % 3 + 4))


def test_an_item_table_matching_none_of_the_interactions_is_refused(make_folder):
    # ids written differently (10 against i10): before the fix (3433209) this trained without a
    # word, on a catalogue twice the size, and scored recall 0
    items = "item_id,title\n" + "".join(f"{i},Film {i}\n" for i in range(6))
    with pytest.raises(DataError) as err:
        load_dataset(make_folder({"interactions.csv": RATED, "items.csv": items}))
    message = str(err.value)
    assert "items.csv, column 'item_id': none of its 6 item ids occurs in the interactions (6 items)" in message
    assert "its ids look like '0', '1', '2', the interactions' like 'i0', 'i1', 'i2'" in message


def test_an_item_table_matching_a_third_of_the_items_is_a_note_with_counts(make_folder):
    items = "item_id,title\ni0,Heat\ni1,Up\nx9,Unknown\n"
    ds = load_dataset(make_folder({"interactions.csv": RATED, "items.csv": items}))
    note = next(n for n in ds.notes if n.startswith("items.csv describes only"))
    assert note.startswith("items.csv describes only 2 of the 6 items in the interactions (33%; 25% of the "
                           "interactions): the other 4 have no row and so no text, e.g. 'i2', 'i3', 'i4'")


def test_a_user_table_under_its_own_column_name_is_checked_too(make_folder):
    users = "uid,job\n1,nurse\n2,pilot\n"
    folder = make_folder({"interactions.csv": RATED.replace("user_id", "uid", 1), "users.csv": users,
                          "dataset.toml": '[columns]\nuser = "uid"\n'})
    with pytest.raises(DataError, match="users.csv, column 'uid': none of its 2 user ids"):
        load_dataset(folder)


def test_a_complete_item_table_adds_no_note(make_folder):
    items = "item_id,title\n" + "".join(f"i{i},Film {i}\n" for i in range(6))
    ds = load_dataset(make_folder({"interactions.csv": RATED, "items.csv": items}))
    assert not any("describes" in n for n in ds.notes)
