"""semrec.Recommender as a user meets it: mistakes are errors that say what and where
(table, row, column), never a traceback from pandas or numpy; help() documents it.

What every model does is in tests/models/test_contract.py; these tests use popularity,
which needs no training.
"""
from __future__ import annotations

import inspect
import pydoc

import numpy as np
import pandas as pd
import pytest

import semrec
from semrec import Recommender
from semrec.errors import ConfigError, DataError, RunError, SemrecError

ITEMS = list("qrstvwxyz")


def interactions() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [(u, str(i), t) for u in "abcdefgh" for t, i in enumerate(rng.permutation(ITEMS)[:6])]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


@pytest.fixture(scope="module")
def rec() -> Recommender:
    return Recommender("popularity").fit(interactions(), split="leave-one-out")


@pytest.mark.parametrize(("change", "where", "what"), [
    (lambda df: df.rename(columns={"item_id": "item"}), "interactions, column 'item_id'", "missing column"),
    (lambda df: df.assign(user_id=["a", "a", " "] + list(df["user_id"][3:])), "interactions, row 3, column 'user_id'",
     "blank user id"),
    (lambda df: df.assign(rating=["4", "x"] + ["5"] * (len(df) - 2)), "interactions, row 2, column 'rating'",
     "expected a number, got 'x'"),
    (lambda df: df.assign(timestamp=[1, 2, 3, None] + list(range(5, len(df) + 1))),
     "interactions, row 4, column 'timestamp'", "expected an integer Unix timestamp"),
    (lambda df: df.to_dict("records"), "interactions", "expected a pandas DataFrame, got list"),
])
def test_bad_interaction_tables_name_the_row_and_column(change, where, what):
    with pytest.raises(DataError) as e:
        Recommender("popularity").fit(change(interactions()))
    assert str(e.value).startswith(where) and what in str(e.value)


def test_bad_item_tables_name_the_column():
    with pytest.raises(DataError, match="items, column 'item_id': missing column"):
        Recommender("popularity").fit(interactions(), items=pd.DataFrame({"title": ["A film"]}))


def test_settings_are_checked_by_name_before_any_work():
    with pytest.raises(ConfigError, match="unknown model 'nope'; available: popularity"):
        Recommender("nope")
    with pytest.raises(ConfigError, match="unknown key 'epochz'"):
        Recommender("mf", epochz=3)
    with pytest.raises(ConfigError, match="train.epochs: cannot read 'many' as int"):
        Recommender("mf", epochs="many")
    with pytest.raises(ConfigError, match="unknown split 'bogus'"):
        Recommender("popularity").fit(interactions(), split="bogus")


def test_questions_a_model_cannot_answer_are_errors(rec):
    with pytest.raises(SemrecError, match="not fitted yet"):
        Recommender("popularity").recommend("a")
    with pytest.raises(SemrecError, match="unknown user 'zzz'"):
        rec.recommend("zzz")
    for k in (0, -1, "5", 2.5, True):
        with pytest.raises(ConfigError, match="k: expected a whole number of items, at least 1"):
            rec.recommend("a", k=k)
    with pytest.raises(SemrecError, match="unknown item id"):
        rec.recommend_for_history(["nope"])
    with pytest.raises(ConfigError, match="expected a list of item ids"):
        rec.recommend_for_history("q")
    with pytest.raises(SemrecError, match=r"this run \(in memory\) was trained without text"):
        rec.similar_items(text="a space opera")
    with pytest.raises(ConfigError, match="exactly one of item=ID or text="):
        rec.similar_items()


def test_bad_events_name_the_row_and_column(rec):
    events = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["q", "r", "nope"]})
    with pytest.raises(DataError) as e:
        rec.partial_fit(events)
    assert str(e.value).startswith("events, row 3, column 'item_id': unknown item id(s) 'nope'")
    with pytest.raises(DataError, match="events, column 'user_id': missing column"):
        rec.partial_fit(events.rename(columns={"user_id": "user"}))
    with pytest.raises(DataError, match="events: expected a pandas DataFrame, got list"):
        rec.partial_fit([("a", "q")])
    with pytest.raises(ConfigError, match="cannot add items"):
        rec.partial_fit(items=pd.DataFrame({"item_id": ["new"], "text": ["A new film"]}))
    assert "nope" not in rec.items and "new" not in rec.items  # nothing half-applied


def test_save_refuses_to_replace_a_run_in_python_terms(rec, tmp_path):
    path = rec.save(tmp_path / "run")
    with pytest.raises(RunError, match=f"^{tmp_path / 'run'} already holds a run; pass overwrite=True"):
        rec.save(path)
    rec.save(path, overwrite=True)
    assert Recommender.load(path).recommend("a", k=3).equals(rec.recommend("a", k=3))
    with pytest.raises(RunError, match="does not exist"):
        Recommender.load(tmp_path / "nothing")


def test_help_documents_the_public_api():
    text = pydoc.render_doc(semrec.Recommender, renderer=pydoc.plaintext)
    for method in ("fit", "recommend", "recommend_for_history", "similar_items", "partial_fit", "evaluate",
                   "save", "load"):
        doc = inspect.getdoc(getattr(Recommender, method))
        assert doc and doc.splitlines()[0] in text, method
        hints = inspect.signature(getattr(Recommender, method)).return_annotation
        assert hints is not inspect.Signature.empty, f"{method} has no return type"
