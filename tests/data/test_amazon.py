"""Amazon JSON pair: the real Office Products set and small synthetic pairs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from semrec.data import load_dataset, make_split, render_template
from semrec.errors import DataError

# ------------------------------------------------------------------ real amazon-office (SOURCE.md counts)


def test_amazon_counts(amazon):
    inter = amazon.interactions
    assert len(inter) == 53_258
    assert inter["user_id"].nunique() == 4_905
    assert inter["item_id"].nunique() == 2_420
    assert list(inter.columns) == ["user_id", "item_id"]
    assert len(amazon.items) == 2_420 and amazon.notes == []
    sizes = inter.groupby("user_id").size()
    assert (sizes.min(), sizes.max()) == (5, 94)


def test_amazon_keeps_sequence_order(amazon, data_home):
    raw = json.loads((data_home / "amazon-office" / "Office.inter.json").read_text())
    inter = amazon.interactions
    for user in ("0", "1", "4904"):
        assert inter.loc[inter["user_id"] == user, "item_id"].tolist() == [str(i) for i in raw[user]]


def test_amazon_text_is_unescaped(amazon):
    items = amazon.items
    assert not items["title"].str.contains("&amp;", regex=False).any()
    assert items.loc["0", "title"] == "VTECH CS6114 DECT 6.0 Cordless Phone, White/Grey, 1 Handset"
    assert items["title"].str.contains("AT&T", regex=False).any()
    assert (items["description"] == "").sum() == 639 and (items["brand"] == "").sum() == 485


def test_amazon_template_leaves_no_dangling_labels(amazon):
    items = amazon.items
    bare = items[(items["description"] == "") & (items["brand"] == "")].iloc[0]
    text = render_template(amazon.item_template, bare)
    assert "Brand" not in text and ".." not in text and not text.endswith(" ")
    assert text == f"{bare['title']}. Categories: {bare['categories']}."
    full = items.loc["1"]
    start = f"{full['title']}. Brand: {full['brand']}. Categories: {full['categories']}. "
    assert render_template(amazon.item_template, full).startswith(start + full["description"][:20])


def test_amazon_leave_one_out_follows_file_order(amazon):
    split = make_split(amazon, "leave-one-out")
    assert any("file positions stand for time" in n for n in split.notes)
    assert split.sequential  # the sequence models read these histories in order
    # the positions ride along as times: each user's training items, then valid, then test
    order = split.matrix("train+valid+test", "timestamps")
    u = int(split.test.users[0])
    row = order[u]
    newest = row.indices[np.argsort(row.data)][-1]
    assert newest == split.test.items[0]
    last = amazon.interactions.groupby("user_id", sort=False)["item_id"].last()
    test_users = split.users.to_external(split.test.users)
    test_items = split.items.to_external(split.test.items)
    assert len(test_users) > 4_800  # a few test items never occur in training and are dropped
    assert all(last[u] == i for u, i in zip(test_users, test_items))


# ------------------------------------------------------------------ synthetic pairs

ITEMS = {
    "7": {"title": "Stapler &amp; Staples", "description": "", "brand": "Acme", "categories": "Staplers"},
    "8": {"title": "Pen", "description": "Blue ink.", "brand": "", "categories": "Office, Pens"},
}


def _pair(make_folder, inter, items=ITEMS, stem="Toy"):
    files = {f"{stem}.inter.json": json.dumps(inter) if not isinstance(inter, str) else inter}
    if items is not None:
        files[f"{stem}.item.json"] = json.dumps(items)
    return make_folder(files)


def test_small_pair(make_folder):
    ds = load_dataset(_pair(make_folder, {"u1": [7, 8], "u0": [8, "9"], "u2": []}))
    assert ds.interactions.values.tolist() == [["u1", "7"], ["u1", "8"], ["u0", "8"], ["u0", "9"]]
    assert ds.items.loc["7", "title"] == "Stapler & Staples"
    assert render_template(ds.item_template, ds.items.loc["7"]) == (
        "Stapler & Staples. Brand: Acme. Categories: Staplers."
    )
    assert render_template(ds.item_template, ds.items.loc["8"]) == "Pen. Categories: Office, Pens. Blue ink."
    assert any("Toy.item.json describes only 2 of the 3 items in the interactions (67%; 75% of the "
               "interactions): the other 1 have no row and so no text, e.g. '9'" in n for n in ds.notes)
    assert any("1 users have an empty item list" in n for n in ds.notes)


def test_pair_without_item_file(make_folder):
    ds = load_dataset(_pair(make_folder, {"u1": [1, 2]}, items=None))
    assert ds.items is None and ds.item_template is None
    assert any("Toy.item.json not found" in n for n in ds.notes)


def test_two_inter_files_are_ambiguous(make_folder):
    folder = make_folder({"A.inter.json": "{}", "B.inter.json": "{}"})
    expected = r"exactly one \*\.inter\.json file .* found A\.inter\.json, B\.inter\.json"
    with pytest.raises(DataError, match=expected):
        load_dataset(folder)


def test_malformed_json_names_the_line(make_folder):
    folder = _pair(make_folder, '{\n  "u1": [1, 2],\n  "u2": [3 4]\n}\n')
    with pytest.raises(DataError) as e:
        load_dataset(folder)
    assert e.value.row == 3 and "not valid JSON" in str(e.value)


@pytest.mark.parametrize(
    ("inter", "expected"),
    [
        ({"u1": [1, None]}, "user 'u1', position 2: expected an item id"),
        ({"u1": [1], "u2": [2, 3, " "]}, "user 'u2', position 3: expected an item id"),
        ({"u1": 5}, "user 'u1': expected a list of item ids, got int"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_sequences(make_folder, inter, expected):
    with pytest.raises(DataError, match=expected):
        load_dataset(_pair(make_folder, inter))


def test_bad_item_entry(make_folder):
    with pytest.raises(DataError, match="item '3': expected an object of text fields, got str"):
        load_dataset(_pair(make_folder, {"u1": [3]}, items={"3": "just a title"}))


def test_an_item_file_describing_none_of_the_items_is_refused(make_folder):
    # before the fix (3433209) this trained without a word on a catalogue of strangers
    with pytest.raises(DataError, match=r"Toy.item.json: none of its 2 item ids occurs in the interactions"):
        load_dataset(_pair(make_folder, {"u1": ["B07", "B08"]}))
