"""Texts and pairs the fine-tuning objectives read.

A **user profile text** is the user's own text (age, occupation, ... from the dataset's
user template, where there is one) followed by a few of their training ratings::

    "24, M, technician. Rated: Star Wars (1977) 5/5; Fargo (1996) 4/5; ..."

The ``profile_items`` rated items are drawn once per user (seeded) from the training
part. Those (user, item) pairs then serve as context only and are **removed from the
training targets**: a pair whose rating is written in its own input would teach the
model to read the label. Validation and test items never appear in a profile (profiles
come from training interactions only).

An **item text** is the dataset's item template rendered for the item
(:func:`semrec.text.build.item_texts`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semrec.data.dataset import Dataset, Interactions
from semrec.data.split import Split
from semrec.errors import DataError
from semrec.text.build import item_texts, user_texts


@dataclass
class Pairs:
    """(user, item, rating) triples in internal index space, int64 / float32 ``(N,)``."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @staticmethod
    def of(inter: Interactions, keep: np.ndarray | None = None) -> Pairs:
        if inter.ratings is None:
            raise DataError("these interactions carry no ratings")
        idx = slice(None) if keep is None else keep
        return Pairs(inter.users[idx].astype(np.int64), inter.items[idx].astype(np.int64),
                     inter.ratings[idx].astype(np.float32))

    def head(self, n: int | None) -> Pairs:
        """The first ``n`` pairs (all when ``n`` is ``None``)."""
        if n is None or n >= len(self):
            return self
        return Pairs(self.users[:n], self.items[:n], self.ratings[:n])


@dataclass
class RatingData:
    """Everything the ``rating`` objective reads, in the split's index space."""

    user_texts: list[str]  # (n_users,) profile texts
    item_texts: list[str]  # (n_items,)
    train: Pairs  # training targets (profile pairs removed)
    valid: Pairs
    test: Pairs
    scale: tuple[float, float]  # (min, max) rating
    mean: float  # mean training rating
    n_context: int  # training pairs used as profile context, not as targets


def _format_rating(r: float) -> str:
    return f"{r:g}"


def profile_texts(
    dataset: Dataset, split: Split, profile_items: int, seed: int, scale_max: float
) -> tuple[list[str], np.ndarray]:
    """One profile text per user of ``split`` and a boolean mask ``(len(split.train),)``
    of the training interactions written into a profile.

    Args:
        profile_items: rated items per profile (0: the user's own text only). A user
            keeps at least half of their training interactions as targets.
        seed: which items are drawn.
        scale_max: the top of the rating scale, written as ``"4/5"``.
    """
    if profile_items < 0:
        raise DataError(f"profile_items must be >= 0, got {profile_items}")
    own = user_texts(dataset, split.users.ids) or [""] * split.n_users
    titles = item_texts(dataset, split.items.ids)
    short = [_title(t) for t in titles]
    train = split.train
    used = np.zeros(len(train), dtype=bool)
    texts = []
    rng = np.random.default_rng(seed)
    order = np.argsort(train.users, kind="stable")
    bounds = np.searchsorted(train.users[order], np.arange(split.n_users + 1))
    top = _format_rating(scale_max)
    for u in range(split.n_users):
        rows = order[bounds[u] : bounds[u + 1]]  # this user's training interactions
        k = min(profile_items, len(rows) // 2)
        parts = [own[u].strip()] if own[u].strip() else []
        if k > 0 and train.ratings is not None:
            chosen = rng.choice(rows, size=k, replace=False)
            used[chosen] = True
            rated = "; ".join(f"{short[train.items[r]]} {_format_rating(float(train.ratings[r]))}/{top}"
                              for r in chosen)
            parts.append(f"Rated: {rated}.")
        texts.append(" ".join(parts))
    return texts, used


def _title(text: str) -> str:
    """The first sentence of an item text (its title under the usual templates)."""
    head = text.split(". ", 1)[0].strip()
    return head.rstrip(".") or text[:60]


def rating_data(dataset: Dataset, split: Split, profile_items: int = 10, seed: int = 0) -> RatingData:
    """Texts and rating pairs for ``split`` (see the module docstring).

    Raises:
        DataError: the dataset has no ratings, or a part of the split is empty.
    """
    if not dataset.has_ratings or split.train.ratings is None:
        raise DataError(
            f"the rating objective needs explicit ratings; dataset '{dataset.name}' has none "
            "(use --objective align for implicit feedback)"
        )
    scale = dataset.rating_scale or (float(split.train.ratings.min()), float(split.train.ratings.max()))
    users_text, used = profile_texts(dataset, split, profile_items, seed, scale[1])
    train = Pairs.of(split.train, ~used)
    valid = Pairs.of(split.valid)
    test = Pairs.of(split.test)
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        if len(part) == 0:
            raise DataError(f"split '{split.spec}' has no {name} ratings to fine-tune or evaluate on")
    return RatingData(
        user_texts=users_text,
        item_texts=item_texts(dataset, split.items.ids),
        train=train,
        valid=valid,
        test=test,
        scale=scale,
        mean=float(train.ratings.mean()),
        n_context=int(used.sum()),
    )
