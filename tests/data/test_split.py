"""make_split: every spec is deterministic under a seed, its parts are disjoint and
cover the data, and each cuts where its definition says."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from semrec.data import Dataset, make_split
from semrec.data.dataset import GivenSplit
from semrec.data.split import SplitSpec
from semrec.errors import ConfigError, DataError


def _dataset(n_users: int = 30, n_items: int = 12, per_user: int = 10, seed: int = 0, **kwargs) -> Dataset:
    """Each user rates ``per_user`` distinct items; timestamps are shuffled against
    file order, so time order and file order differ."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, size=per_user, replace=False)
        times = 1000 * u + 10 * rng.permutation(per_user)
        for i, t in zip(items, times):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(1, 6)), int(t)))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]).astype(
        {"user_id": object, "item_id": object}
    )
    return Dataset(name="toy", interactions=inter, **kwargs)


def _pairs(split, part: str) -> list[tuple[str, str]]:
    inter = getattr(split, part)
    return list(zip(split.users.to_external(inter.users), split.items.to_external(inter.items)))


def _same(a, b) -> bool:
    parts = [(getattr(a, p), getattr(b, p)) for p in ("train", "valid", "test")]
    same_parts = all(np.array_equal(x.users, y.users) and np.array_equal(x.items, y.items) for x, y in parts)
    return same_parts and a.users == b.users and a.items == b.items


# ------------------------------------------------------------------ specs


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("given", SplitSpec("given")),
        ("given:u2", SplitSpec("given", name="u2")),
        ("random", SplitSpec("random", fractions=(0.8, 0.1, 0.1))),
        ("temporal:0.7/0.1/0.2", SplitSpec("temporal", fractions=(0.7, 0.1, 0.2))),
        ("leave-one-out", SplitSpec("leave-one-out")),
        ("cold-items:0.2", SplitSpec("cold-items", fractions=(0.2, 0.1))),
        ("cold-items:0.2/0.05", SplitSpec("cold-items", fractions=(0.2, 0.05))),
        ("cold-users", SplitSpec("cold-users", fractions=(0.1,), support=5)),
        ("cold-users:0.3/2", SplitSpec("cold-users", fractions=(0.3,), support=2)),
    ],
)
def test_specs_parse(spec, parsed):
    assert SplitSpec.parse(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("shuffle", "unknown split 'shuffle'"),
        ("random:0.8/0.2", "expected 3 fractions"),
        ("random:0.8/0.1/0.2", "must sum to 1"),
        ("temporal:a/b/c", "fractions must be numbers"),
        ("random:1.5/-0.25/-0.25", r"fractions must lie in \[0, 1\]"),
        ("leave-one-out:2", "leave-one-out takes no argument"),
        ("cold-items:0.6/0.5", "fractions summing below 1"),
        ("cold-items:0.1/0.1/0.1", "cold-items:TEST"),
        ("cold-users:1.0", "strictly between 0 and 1"),
        ("cold-users:0.2/x", "N a whole number"),
        ("cold-users:0.2/0", "at least 1"),
        ("cold-users:0.01", "no user of 'toy' is held out"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_split(_dataset(), spec)


# ------------------------------------------------------------------ determinism, disjoint, cover


SPECS = ["random:0.8/0.1/0.1", "temporal:0.6/0.2/0.2", "leave-one-out", "cold-items:0.2", "cold-users:0.2/3"]


@pytest.mark.parametrize("spec", SPECS)
def test_deterministic_under_seed(spec):
    ds = _dataset()
    assert _same(make_split(ds, spec, seed=3), make_split(ds, spec, seed=3))


@pytest.mark.parametrize("spec", ["random:0.8/0.1/0.1", "cold-items:0.2"])
def test_seed_changes_random_cuts(spec):
    ds = _dataset()
    assert not _same(make_split(ds, spec, seed=3), make_split(ds, spec, seed=4))


@pytest.mark.parametrize("spec", SPECS)
def test_parts_are_disjoint_and_cover_the_data(spec):
    ds = _dataset()
    split = make_split(ds, spec, seed=1)
    assert not any("dropped" in n for n in split.notes)  # so the parts must cover everything
    parts = ["train", "valid", "test"] + (["support"] if split.support is not None else [])
    pairs = [set(_pairs(split, p)) for p in parts]
    assert sum(map(len, pairs)) == len(set().union(*pairs))  # disjoint
    assert set().union(*pairs) == set(zip(ds.interactions["user_id"], ds.interactions["item_id"]))
    assert sum(len(getattr(split, p)) for p in parts) == len(ds.interactions)


def test_random_fractions_per_user():
    split = make_split(_dataset(per_user=10), "random:0.6/0.2/0.2", seed=0)
    for part, expected in (("train", 6), ("valid", 2), ("test", 2)):
        assert np.bincount(getattr(split, part).users, minlength=split.n_users).tolist() == [expected] * 30


# ------------------------------------------------------------------ where each spec cuts


def test_leave_one_out_takes_the_last_by_timestamp():
    ds = _dataset()
    split = make_split(ds, "leave-one-out")
    by_time = ds.interactions.sort_values("timestamp").groupby("user_id")["item_id"]
    last, second = by_time.nth(-1), by_time.nth(-2)
    test = dict(_pairs(split, "test"))
    valid = dict(_pairs(split, "valid"))
    assert test == dict(zip(ds.interactions.loc[last.index, "user_id"], last))
    assert valid == dict(zip(ds.interactions.loc[second.index, "user_id"], second))
    last_in_file = ds.interactions.groupby("user_id")["item_id"].last()
    assert any(last_in_file[u] != i for u, i in test.items())  # time order is not file order here


def test_leave_one_out_keeps_short_histories_in_train():
    # user d puts y and z into training; a, b and c have 1, 2 and 3 interactions
    inter = pd.DataFrame(
        {
            "user_id": ["a", "b", "b", "c", "c", "c"] + ["d"] * 5,
            "item_id": ["x", "x", "y", "x", "y", "z"] + ["y", "z", "x", "w", "v"],
        }
    )
    split = make_split(Dataset(name="short", interactions=inter), "leave-one-out")
    test, valid, train = (_pairs(split, p) for p in ("test", "valid", "train"))
    assert ("b", "y") in test and ("c", "z") in test  # two or more: the last is the test item
    assert ("c", "y") in valid and not any(u == "b" for u, _ in valid)  # three or more: validation too
    assert ("a", "x") in train and not any(u == "a" for u, _ in test + valid)  # one: training only


def test_temporal_test_is_later_than_train_per_user():
    ds = _dataset()
    split = make_split(ds, "temporal:0.6/0.2/0.2")
    for user in range(split.n_users):
        t_train = split.train.timestamps[split.train.users == user]
        t_valid = split.valid.timestamps[split.valid.users == user]
        t_test = split.test.timestamps[split.test.users == user]
        assert t_train.max() < t_valid.min() <= t_valid.max() < t_test.min()


def test_temporal_without_timestamps_uses_file_order():
    ds = _dataset()
    ds.interactions = ds.interactions.drop(columns="timestamp")
    split = make_split(ds, "temporal:0.8/0.1/0.1")
    assert any("file order is taken as time order" in n for n in split.notes)
    last_in_file = ds.interactions.groupby("user_id").tail(1)
    assert set(zip(last_in_file["user_id"], last_in_file["item_id"])) <= set(_pairs(split, "test"))


def test_cold_items_have_no_training_interactions():
    ds = _dataset(n_items=20)
    split = make_split(ds, "cold-items:0.2", seed=5)
    cold = set(split.cold_items.tolist())
    assert len(cold) == 4 + 2  # 20% test, half that for validation
    assert not cold & set(split.train.items.tolist())
    assert set(split.test.items.tolist()) | set(split.valid.items.tolist()) == cold
    assert not set(split.test.items.tolist()) & set(split.valid.items.tolist())
    assert any("4 test and 2 validation items held out" in n for n in split.notes)


def test_cold_users_show_their_first_interactions_at_test_time_only():
    ds = _dataset(n_users=30, n_items=12, per_user=10)
    split = make_split(ds, "cold-users:0.2/3", seed=2)
    cold = set(split.users.to_external(split.cold_users))
    assert len(cold) == 6 and any("6 of 30 users held out" in n for n in split.notes)
    assert not cold & set(split.users.to_external(split.train.users))  # never trained on
    assert not cold & set(split.users.to_external(split.valid.users))
    assert set(split.users.to_external(split.test.users)) == cold
    inter = ds.interactions.sort_values("timestamp")
    for user in cold:
        mine = inter[inter["user_id"] == user]
        support = {i for u, i in _pairs(split, "support") if u == user}
        assert support == set(mine["item_id"][:3])  # the first three by time
        assert {i for u, i in _pairs(split, "test") if u == user} == set(mine["item_id"][3:])
    history = split.history("test")
    u = split.cold_users[0]
    assert set(history[u].indices) == set(split.support.items[split.support.users == u])


def test_implicit_threshold_drops_low_ratings():
    ds = _dataset(implicit_threshold=4.0)
    split = make_split(ds, "random:0.8/0.1/0.1")
    n_positive = int((ds.interactions["rating"] >= 4).sum())
    assert len(split.train) + len(split.valid) + len(split.test) == n_positive
    assert split.train.ratings.min() >= 4


# ------------------------------------------------------------------ given splits


def test_given_on_ml100k(ml100k):
    def pairs(df):
        return set(zip(df["user_id"], df["item_id"]))

    split = make_split(ml100k, "given")
    u1 = ml100k.given["u1"]
    train, valid, test = (set(_pairs(split, p)) for p in ("train", "valid", "test"))
    assert train | valid <= pairs(u1.train) and not train & valid
    assert 0.09 < len(valid) / len(u1.train) < 0.11  # carved: 10% of each user's u1.base
    assert any("carved" in n for n in split.notes)
    assert test <= pairs(u1.test) and len(test) > 19_900  # a few test items never occur in training
    assert _same(split, make_split(ml100k, "given"))
    assert set(_pairs(make_split(ml100k, "given:u2"), "test")) <= pairs(ml100k.given["u2"].test)


def test_given_name_must_exist():
    ds = _dataset()
    with pytest.raises(ConfigError, match="ships no split"):
        make_split(ds, "given")
    ds.given = {"default": GivenSplit(train=ds.interactions, test=ds.interactions.iloc[:0])}
    with pytest.raises(ConfigError, match="has no given split 'u9'; available: default"):
        make_split(ds, "given:u9")


def test_unseen_test_ids_are_dropped_and_reported():
    train = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["x", "y", "x", "y"]})
    test = pd.DataFrame({"user_id": ["a", "c", "b", "c"], "item_id": ["z", "x", "y", "w"]})
    valid = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "q"]})
    ds = Dataset(
        name="unseen",
        interactions=pd.concat([train, valid, test], ignore_index=True),
        given={"default": GivenSplit(train=train, test=test, valid=valid)},
    )
    split = make_split(ds, "given")
    assert _pairs(split, "test") == [("b", "y")]
    assert _pairs(split, "valid") == [("a", "x")]
    assert "test: dropped 2 interactions of 1 users unseen in training" in split.notes
    assert "test: dropped 1 interactions with 1 items unseen in training" in split.notes
    assert "valid: dropped 1 interactions with 1 items unseen in training" in split.notes


def test_no_positive_interactions():
    ds = _dataset(implicit_threshold=10.0)
    with pytest.raises(DataError, match="no interactions to split"):
        make_split(ds, "random")


# ------------------------------------------------------------------ nothing to test on (issue 20)


@pytest.mark.parametrize("kind", ["random", "temporal"])
@pytest.mark.parametrize("per_user", [2, 4, 5])
def test_short_histories_under_a_per_user_split_are_a_clear_error(kind, per_user):
    # 10% of at most 5 interactions rounds to 0 for every user: the run used to train and then
    # fail in evaluation with a traceback (failed before the fix on 3433209)
    ds = _dataset(per_user=per_user)
    with pytest.raises(ConfigError) as err:
        make_split(ds, f"{kind}:0.8/0.1/0.1")
    message = str(err.value)
    assert f"10% of {per_user} interactions (the most any user has) rounds to 0" in message
    assert "leave-one-out" in message
    # the fraction it suggests does hold something out
    suggested = message.rsplit("e.g. ", 1)[1].rstrip(")")
    assert suggested.startswith(f"{kind}:")
    assert len(make_split(ds, suggested).test) > 0
    assert len(make_split(ds, "leave-one-out").test) == 30


def test_single_interactions_cannot_be_split_per_user():
    with pytest.raises(ConfigError, match="every user has a single interaction"):
        make_split(_dataset(per_user=1), "random")


def test_a_split_whose_test_part_is_dropped_entirely_is_a_clear_error():
    # every test item is unseen in training, so the test part ends up empty
    train = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]})
    test = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["z", "w"]})
    ds = Dataset(name="unseen", interactions=pd.concat([train, test], ignore_index=True),
                 given={"default": GivenSplit(train=train, test=test)})
    with pytest.raises(DataError, match=r"leaves nothing to test on \(test: dropped 2 interactions with 2 "
                                        r"items unseen in training\)"):
        make_split(ds, "given")
