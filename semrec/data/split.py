"""Train / validation / test splits, deterministic under a seed.

Spec strings (the ``--split`` option):

=========================  ==================================================================
``given`` / ``given:NAME``  the split shipped with the data (ml-100k ``u1``, LightGCN files);
                            a validation part is carved from train when none is given
``random:0.8/0.1/0.1``      per user, interactions shuffled and cut by these fractions
``temporal:0.8/0.1/0.1``    per user, by timestamp (file order where there is none)
``leave-one-out``           per user: last interaction test, second-to-last validation
``cold-items:0.2[/0.1]``    a fraction of items held out entirely; their interactions are the
                            test set (a second fraction, default half the first, validates)
``cold-users:0.1[/5]``      a fraction of users (among those with more than N = 5
                            interactions) held out of training; their first N interactions
                            (by time) are the ``support`` given at test time, the rest is test
=========================  ==================================================================

Ids are mapped here, once: users and items seen in training get the first indices;
items known only from the item table (or held out as cold) follow. Test and
validation interactions whose user or item never appears in training are dropped
and reported in :attr:`Split.notes` (except cold items, which are the point).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from semrec.data.dataset import Dataset, Interactions
from semrec.data.idmap import IdMap
from semrec.errors import ConfigError, DataError

DEFAULT_VALID_FRACTION = 0.1
DEFAULT_SUPPORT = 5  # cold-users: interactions a held-out user shows at test time


@dataclass
class Split:
    """A dataset cut into train / valid / test in internal index space."""

    spec: str
    users: IdMap
    items: IdMap
    train: Interactions
    valid: Interactions
    test: Interactions
    cold_items: np.ndarray | None = None  # internal indices held out of training
    notes: list[str] = field(default_factory=list)
    #: Interactions never trained on but known at test time: a cold user's first few.
    support: Interactions | None = None
    cold_users: np.ndarray | None = None  # internal indices of users held out of training

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def sequential(self) -> bool:
        """Whether the evaluated items are each user's *next* items in time: a
        ``leave-one-out`` or ``temporal`` split of interactions that carry times (or file
        positions the format promises are in time order). Sequence models train on causal
        prefixes exactly when this holds; elsewhere (random and shipped splits, cold
        items or users, no order known) a user's items are a set."""
        kind = self.spec.partition(":")[0].strip()
        return kind in ("leave-one-out", "temporal") and self.train.timestamps is not None

    @property
    def n_items(self) -> int:
        return len(self.items)

    def matrix(self, part: str, values: str = "ones") -> sp.csr_matrix:
        """CSR ``(n_users, n_items)`` of ``train``, ``valid``, ``test``, ``support`` or a
        ``+``-joined list such as ``train+valid``; an absent ``support`` is empty."""
        parts = [getattr(self, p) for p in part.split("+")]
        parts = [p for p in parts if p is not None] or [self.train.take(np.zeros(0, dtype=np.int64))]
        inter = parts[0] if len(parts) == 1 else Interactions.concat(parts)
        return inter.csr(self.n_users, self.n_items, values)

    def history(self, part: str, values: str = "ones") -> sp.csr_matrix:
        """What is known of every user when ``part`` (``valid`` or ``test``) is predicted:
        ``train`` for validation; ``train+valid`` and the cold users' ``support`` for test.

        ``values`` as in :meth:`matrix`: ``"ones"`` (membership), or ``"timestamps"`` for
        the ordered histories of sequence models (each entry's time; ones where the data
        has no order)."""
        if part == "valid":
            return self.matrix("train", values)
        if part == "test":
            return self.matrix("train+valid+support", values)
        raise ValueError(f"part must be 'valid' or 'test', got '{part}'")

    def with_valid_in_train(self) -> Split:
        """This split with the validation part moved into training and ``valid`` left
        empty: what a model is refitted on once validation has chosen its settings."""
        return dataclasses.replace(
            self, train=Interactions.concat([self.train, self.valid]),
            valid=self.valid.take(np.zeros(0, dtype=np.int64)),
            notes=[*self.notes, "refit: the validation part joined training"],
        )

    def cold_test_items(self) -> np.ndarray | None:
        """Held-out items that occur in the test part (sorted), or ``None``."""
        if self.cold_items is None:
            return None
        return np.intersect1d(self.cold_items, self.test.items)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class SplitSpec:
    kind: str  # given | random | temporal | leave-one-out | cold-items | cold-users
    name: str | None = None
    fractions: tuple[float, ...] = ()
    support: int = 0  # cold-users: interactions given at test time

    @staticmethod
    def parse(spec: str) -> SplitSpec:
        spec = spec.strip()
        kind, _, arg = spec.partition(":")
        if kind == "given":
            return SplitSpec("given", name=arg or None)
        if kind == "leave-one-out":
            if arg:
                raise ConfigError(f"split '{spec}': leave-one-out takes no argument")
            return SplitSpec("leave-one-out")
        if kind in ("random", "temporal"):
            fr = _fractions(spec, arg or "0.8/0.1/0.1", 3)
            if abs(sum(fr) - 1.0) > 1e-6:
                raise ConfigError(f"split '{spec}': the three fractions must sum to 1, got {sum(fr):g}")
            return SplitSpec(kind, fractions=fr)
        if kind == "cold-items":
            fr = _fractions(spec, arg or "0.2", None)
            if len(fr) == 1:
                fr = (fr[0], fr[0] / 2)
            if len(fr) != 2 or sum(fr) >= 1:
                raise ConfigError(
                    f"split '{spec}': expected cold-items:TEST[/VALID] with fractions summing below 1"
                )
            return SplitSpec(kind, fractions=fr)
        if kind == "cold-users":
            fraction, _, support = (arg or "0.1").partition("/")
            (fr,) = _fractions(spec, fraction, 1)
            if not 0 < fr < 1:
                raise ConfigError(f"split '{spec}': the cold-user fraction must lie strictly between 0 and 1")
            if support and not support.isdigit():
                raise ConfigError(f"split '{spec}': expected cold-users:FRACTION[/N] with N a whole number")
            n = int(support or DEFAULT_SUPPORT)
            if n < 1:
                raise ConfigError(f"split '{spec}': N (interactions given at test time) must be at least 1")
            return SplitSpec(kind, fractions=(fr,), support=n)
        raise ConfigError(
            f"unknown split '{spec}': expected given[:NAME], random:A/B/C, temporal:A/B/C, "
            "leave-one-out, cold-items:F or cold-users:F[/N]"
        )


def _fractions(spec: str, arg: str, n: int | None) -> tuple[float, ...]:
    try:
        fr = tuple(float(x) for x in arg.split("/"))
    except ValueError:
        raise ConfigError(f"split '{spec}': fractions must be numbers like 0.8/0.1/0.1") from None
    if n is not None and len(fr) != n:
        raise ConfigError(f"split '{spec}': expected {n} fractions separated by '/'")
    if any(not 0 <= f <= 1 for f in fr):
        raise ConfigError(f"split '{spec}': fractions must lie in [0, 1]")
    return fr


# --------------------------------------------------------------------------- splitting


def make_split(dataset: Dataset, spec: str = "given", seed: int = 0) -> Split:
    """Cut ``dataset`` by ``spec`` (see the module docstring)."""
    parsed = SplitSpec.parse(spec)
    rng = np.random.default_rng(seed)
    inter = _positives(dataset.interactions, dataset.implicit_threshold)
    if inter.empty:
        raise DataError(f"dataset '{dataset.name}' has no interactions to split")
    notes: list[str] = []
    if dataset.file_order_is_time and "timestamp" not in inter.columns:
        # the format promises time order without times: file positions stand in for them,
        # so every part (and the ordered histories of the sequence models) keeps that order
        inter = inter.assign(timestamp=np.arange(len(inter), dtype=np.int64))
        notes.append("no timestamps: file positions stand for time (the format lists each user's items in order)")

    if parsed.kind == "given":
        train, valid, test = _given(dataset, parsed.name, notes)
        if valid is None:
            train, valid = _carve(train, DEFAULT_VALID_FRACTION, rng)
            notes.append(
                f"no validation part given: carved {len(valid)} interactions "
                f"({DEFAULT_VALID_FRACTION:.0%} per user) from train"
            )
        return _assemble(spec, dataset, train, valid, test, notes)

    if parsed.kind in ("random", "temporal", "leave-one-out"):
        order = _order(inter, parsed.kind, rng, notes)
        pos, count = _rank_in_user(inter["user_id"].to_numpy(), order)
        if parsed.kind == "leave-one-out":
            part = np.where(pos == count - 1, 2, np.where(pos == count - 2, 1, 0))
            part[count < 3] = np.where(pos[count < 3] == count[count < 3] - 1, 2, 0)
            part[count < 2] = 0
        else:
            _, f_valid, f_test = parsed.fractions
            n_test = np.rint(count * f_test).astype(np.int64)
            n_valid = np.rint(count * f_valid).astype(np.int64)
            # every user keeps at least one training interaction
            n_test = np.minimum(n_test, count - 1)
            n_valid = np.minimum(n_valid, count - 1 - n_test)
            part = np.where(pos >= count - n_test, 2, np.where(pos >= count - n_test - n_valid, 1, 0))
            if f_test > 0 and not (part == 2).any():
                raise ConfigError(_nothing_held_out(spec, dataset.name, f_test, int(count.max())))
        return _assemble(spec, dataset, inter[part == 0], inter[part == 1], inter[part == 2], notes)

    if parsed.kind == "cold-users":
        return _cold_users(spec, dataset, inter, parsed, rng, notes)

    # cold-items
    f_test, f_valid = parsed.fractions
    item_ids = pd.unique(inter["item_id"])
    perm = rng.permutation(len(item_ids))
    n_test = int(round(len(item_ids) * f_test))
    n_valid = int(round(len(item_ids) * f_valid))
    test_items = set(item_ids[perm[:n_test]])
    valid_items = set(item_ids[perm[n_test : n_test + n_valid]])
    is_test = inter["item_id"].isin(test_items).to_numpy()
    is_valid = inter["item_id"].isin(valid_items).to_numpy()
    train = inter[~is_test & ~is_valid]
    notes.append(
        f"cold items: {len(test_items)} test and {len(valid_items)} validation items "
        "held out of training"
    )
    return _assemble(
        spec, dataset, train, inter[is_valid], inter[is_test], notes, cold=test_items | valid_items
    )


def _nothing_held_out(spec: str, name: str, f_test: float, most: int) -> str:
    """Why a per-user random or temporal split left the test part empty, and what to use."""
    if most < 2:
        return (f"split '{spec}' of '{name}' holds nothing out for testing: every user has a single "
                "interaction, which must stay in training; a per-user split needs users with at least 2")
    # a user's share is np.rint(count * f): a test item needs count * f > 0.5
    needed = math.floor(0.5 / most * 20 + 1) / 20  # the next multiple of 0.05 above 0.5 / most
    hint = (f", or a test fraction of at least {needed:g} (e.g. {spec.partition(':')[0]}:"
            f"{1 - 2 * needed:g}/{needed:g}/{needed:g})" if needed < 0.5 else "")
    return (f"split '{spec}' of '{name}' holds nothing out for testing: each user's test share is rounded "
            f"to whole interactions, and {f_test:.0%} of {most} interactions (the most any user has) rounds "
            f"to 0. Use --split leave-one-out (each user's last interaction is the test, the one before it "
            f"validation){hint}")


def _cold_users(
    spec: str, dataset: Dataset, inter: pd.DataFrame, parsed: SplitSpec, rng: np.random.Generator,
    notes: list[str],
) -> Split:
    """Hold out a fraction of the users with more than N interactions: their first N
    (by time) become ``support``, the rest ``test``; everyone else trains, with
    validation carved from their interactions."""
    n = parsed.support
    counts = inter["user_id"].value_counts()
    eligible = counts.index[counts > n].to_numpy()
    n_cold = int(round(len(eligible) * parsed.fractions[0]))
    if n_cold < 1:
        raise ConfigError(
            f"split '{spec}': no user of '{dataset.name}' is held out: {len(eligible)} users have more "
            f"than {n} interactions; raise the fraction or lower N"
        )
    cold = set(eligible[rng.permutation(len(eligible))[:n_cold]])
    is_cold = inter["user_id"].isin(cold).to_numpy()
    order = _order(inter, "temporal", rng, notes)
    pos, _ = _rank_in_user(inter["user_id"].to_numpy(), order)
    warm_train, valid = _carve(inter[~is_cold], DEFAULT_VALID_FRACTION, rng)
    notes.append(
        f"cold users: {n_cold} of {inter['user_id'].nunique()} users held out of training; "
        f"their first {n} interactions are given at test time"
    )
    split = _assemble(spec, dataset, warm_train, valid, inter[is_cold & (pos >= n)], notes,
                      cold_users=(cold, inter[is_cold & (pos < n)]))
    return split


def _positives(inter: pd.DataFrame, threshold: float | None) -> pd.DataFrame:
    if threshold is None or "rating" not in inter.columns:
        return inter.reset_index(drop=True)
    return inter[inter["rating"] >= threshold].reset_index(drop=True)


def _given(dataset: Dataset, name: str | None, notes: list[str]):
    if not dataset.given:
        raise ConfigError(
            f"dataset '{dataset.name}' ships no split: use random:0.8/0.1/0.1, "
            "temporal:0.8/0.1/0.1, leave-one-out or cold-items:0.2"
        )
    key = name or ("default" if "default" in dataset.given else next(iter(dataset.given)))
    if key not in dataset.given:
        raise ConfigError(
            f"dataset '{dataset.name}' has no given split '{key}'; "
            f"available: {', '.join(sorted(dataset.given))}"
        )
    g = dataset.given[key]
    thr = dataset.implicit_threshold
    valid = None if g.valid is None else _positives(g.valid, thr)
    return _positives(g.train, thr), valid, _positives(g.test, thr)


def _carve(train: pd.DataFrame, fraction: float, rng: np.random.Generator):
    """Move ``fraction`` of each user's train interactions (never all) to validation."""
    order = rng.permutation(len(train))
    pos, count = _rank_in_user(train["user_id"].to_numpy(), order)
    n_valid = np.minimum(np.rint(count * fraction).astype(np.int64), count - 1)
    is_valid = pos >= count - n_valid
    return train[~is_valid], train[is_valid]


def _order(inter: pd.DataFrame, kind: str, rng: np.random.Generator, notes: list[str]) -> np.ndarray:
    """Row order within which positions per user are counted (stable)."""
    if kind == "random":
        return rng.permutation(len(inter))
    if "timestamp" in inter.columns:
        return np.argsort(inter["timestamp"].to_numpy(), kind="stable")
    notes.append(f"{kind} split: no timestamps, so file order is taken as time order")
    return np.arange(len(inter))


def _rank_in_user(users: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row: its position among its user's rows taken in ``order``, and the
    user's row count."""
    codes = np.unique(users, return_inverse=True)[1]
    counts = np.bincount(codes)
    ordered_codes = codes[order]
    # stable sort by user keeps ``order`` within each user
    by_user = order[np.argsort(ordered_codes, kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.empty(len(users), dtype=np.int64)
    pos[by_user] = np.arange(len(users)) - np.repeat(starts, counts)
    return pos, counts[codes]


def _assemble(
    spec: str,
    dataset: Dataset,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    notes: list[str],
    cold: set[str] | None = None,
    cold_users: tuple[set[str], pd.DataFrame] | None = None,
) -> Split:
    if train.empty:
        raise DataError(f"split '{spec}' of '{dataset.name}' leaves no training interactions")
    users = IdMap(pd.unique(train["user_id"]))
    cold_user_ids = sorted(cold_users[0], key=_natural) if cold_users else []
    users.add(cold_user_ids)
    items = IdMap(pd.unique(train["item_id"]))
    cold_ids = sorted(cold or (), key=_natural)
    items.add(cold_ids)
    if dataset.items is not None:
        items.add(dataset.items.index)  # items with text but no training history
    cold_idx = np.asarray([items.index(i) for i in cold_ids], dtype=np.int64) if cold else None

    def convert(df: pd.DataFrame, part: str) -> Interactions:
        u = users.indices(df["user_id"])
        i = items.indices(df["item_id"])
        known_user = u >= 0
        known_item = i >= 0
        if part != "train" and cold is None:
            # an item that never occurs in training cannot be learned from behaviour
            seen = np.zeros(len(items), dtype=bool)
            seen[tr_items] = True
            known_item &= np.where(i >= 0, seen[np.maximum(i, 0)], False)
        keep = known_user & known_item
        dropped_u = int((~known_user).sum())
        dropped_i = int((known_user & ~known_item).sum())
        if dropped_u:
            n = df.loc[~known_user, "user_id"].nunique()
            notes.append(f"{part}: dropped {dropped_u} interactions of {n} users unseen in training")
        if dropped_i:
            n = df.loc[known_user & ~known_item, "item_id"].nunique()
            notes.append(f"{part}: dropped {dropped_i} interactions with {n} items unseen in training")
        sub = df[keep]
        return Interactions(
            u[keep],
            i[keep],
            sub["rating"].to_numpy(np.float32) if "rating" in sub.columns else None,
            sub["timestamp"].to_numpy(np.int64) if "timestamp" in sub.columns else None,
        )

    tr_items = np.arange(0)
    tr = convert(train, "train")
    tr_items = np.unique(tr.items)
    support = None if cold_users is None else convert(cold_users[1], "support")
    te = convert(test, "test")
    if len(te) == 0:
        why = "; ".join(n for n in notes if n.startswith("test:")) or "the test part is empty"
        raise DataError(f"split '{spec}' of '{dataset.name}' leaves nothing to test on ({why}); "
                        "choose another split, e.g. leave-one-out")
    return Split(
        spec=spec,
        users=users,
        items=items,
        train=tr,
        valid=convert(valid, "valid"),
        test=te,
        cold_items=cold_idx,
        notes=notes,
        support=support,
        cold_users=users.indices(cold_user_ids).astype(np.int64) if cold_users else None,
    )


def _natural(key: str):
    return (0, int(key), "") if key.isdigit() else (1, 0, key)
