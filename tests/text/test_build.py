"""Item and user texts from templates: no dangling punctuation when fields are missing.

Datasets carry templates in the readers' language (``[...]`` optional segments), whose
renderer is tested with the readers; here: the texts a dataset gives per id."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from semrec.data.dataset import Dataset
from semrec.errors import SemrecError
from semrec.text.build import item_texts, user_texts

#: Signs of a field dropped badly: empty brackets, a label without value, doubled
#: separators, or punctuation at the start.
DANGLING = re.compile(r"\(\s*\)|\[\s*\]|:\s*[.,;]|:\s*$|[.,;]\s*[.,;]|^\s*[.,;:)]|\s[.,;:]|\s$|^\s")


def _dataset(items: pd.DataFrame | None, users: pd.DataFrame | None = None, **kw: str) -> Dataset:
    inter = pd.DataFrame({"user_id": ["u1"], "item_id": ["1"]})
    return Dataset(name="toy", interactions=inter, items=items, users=users, **kw)


MOVIES = pd.DataFrame(
    {
        "title": ["Heat", "Alien", None],
        "year": pd.array([1995, None, None], dtype="Int64"),
        "genres": ["Action", "Sci-Fi", None],
    },
    index=pd.Index(["1", "2", "3"], name="item_id"),
)


def test_item_texts_follow_the_dataset_template_and_ids() -> None:
    ds = _dataset(MOVIES, item_template="{title}[ ({year})].[ Genres: {genres}.]")
    texts = item_texts(ds, ["2", "1", "404"])
    assert texts == ["Alien. Genres: Sci-Fi.", "Heat (1995). Genres: Action.", ""]
    ds = _dataset(MOVIES, item_template="[{title}.][ Genres: {genres}.]")
    assert item_texts(ds, ["3"]) == [""]  # no text at all: "" (the zero vector)


def test_default_item_template_uses_the_columns_present() -> None:
    items = pd.DataFrame(
        {"title": ["Pen"], "brand": [""], "categories": ["Office, Writing"], "description": ["Blue ink"]},
        index=["7"],
    )
    text = item_texts(_dataset(items), ["7"])[0]
    assert text.startswith("Pen.") and "Office, Writing" in text and "Blue ink" in text
    assert "Brand" not in text
    assert not DANGLING.search(text)


def test_user_texts() -> None:
    users = pd.DataFrame(
        {"age": [24, 53], "gender": ["M", None], "occupation": ["technician", "other"]}, index=["1", "2"]
    )
    ds = _dataset(None, users, user_template="Age: {age}.[ Gender: {gender}.][ Occupation: {occupation}.]")
    assert user_texts(ds, ["2", "1"]) == [
        "Age: 53. Occupation: other.",
        "Age: 24. Gender: M. Occupation: technician.",
    ]
    assert user_texts(_dataset(None), ["1"]) is None
    assert item_texts(_dataset(None), ["1", "2"]) == ["", ""]


def test_unknown_template_column_is_a_user_error() -> None:
    items = pd.DataFrame({"title": ["x"]}, index=["1"])
    with pytest.raises(SemrecError, match="plot"):
        item_texts(_dataset(items, item_template="{title}: {plot}"), ["1"])


@pytest.mark.parametrize("name", ["ml-100k", "amazon-office"])
def test_real_datasets_give_clean_texts(name: str, data_home) -> None:  # noqa: ANN001
    from semrec.data.load import load_dataset

    ds = load_dataset(name, download=False)
    texts = item_texts(ds, list(ds.items.index))
    assert len(texts) == len(ds.items) and all(texts)
    # titles and descriptions hold their own punctuation ("Sally...", "Jr., The"), so
    # only what the template adds is checked: no empty label, bracket or leading mark
    decoration = re.compile(r"(Genres|Brand|Categories):\s*([.,;]|$)|\(\s*\)|^[\s.,;:]|\s$|\s\s")
    bad = [t for t in texts if decoration.search(t)]
    assert not bad, bad[:3]
    users = user_texts(ds, list(ds.users.index)) if ds.users is not None else []
    assert not [t for t in users or [] if not t or DANGLING.search(t)]
