"""Cold-start sections of an evaluation: the same metrics, restricted to what is new.

* ``cold`` — where the split holds entities out of training:

  - ``cold-items``: users' test items among the held-out items, ranked among the
    held-out test items only (``entity: "items"``; the main metrics rank over all items);
  - ``cold-users``: the held-out users, scored from their ``support`` interactions alone
    (``entity: "users"``, ``support``: the most interactions any of them showed, N).

* ``sparse_users`` — on any split, the test users with at most ``max_train`` training
  interactions (the users a recommender knows least; ``max_train`` is reported).

Each section carries the metric keys of :func:`~semrec.evaluate.ranking.evaluate_ranking`
plus ``n_users``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from semrec.data.split import Split
from semrec.evaluate.ranking import evaluate_ranking
from semrec.models.base import Scorer
from semrec.models.rerank import ItemSpace, Rerank

#: ``sparse_users`` holds test users with at most this many training interactions.
SPARSE_MAX_TRAIN = 5


def cold_sections(
    scorer: Scorer, split: Split, ks: Iterable[int] = (10, 20), sparse_max_train: int = SPARSE_MAX_TRAIN,
    *, rerank: Rerank | None = None, space: ItemSpace | None = None,
) -> dict[str, Any]:
    """``{"cold": {...}, "sparse_users": {...}}``, each present where it applies; lists
    re-ranked by ``rerank`` (in ``space``) when given, as the main evaluation's are."""
    out: dict[str, Any] = {}
    again = {"rerank": rerank, "space": space}
    cold_items = split.cold_test_items()
    if cold_items is not None and len(cold_items):
        m = evaluate_ranking(scorer, split, "test", ks=ks, candidates=cold_items, **again)
        out["cold"] = {"entity": "items", "n_items": len(cold_items), **m}
    if split.cold_users is not None and len(split.cold_users):
        m = evaluate_ranking(scorer, split, "test", ks=ks, users=split.cold_users, **again)
        support = 0 if split.support is None else int(np.bincount(split.support.users).max(initial=0))
        out["cold"] = {"entity": "users", "support": support, **m}
    train_counts = np.bincount(split.train.users, minlength=split.n_users)  # (n_users,)
    sparse = np.flatnonzero((train_counts > 0) & (train_counts <= sparse_max_train))
    sparse = np.intersect1d(sparse, split.test.users)
    if len(sparse):
        m = evaluate_ranking(scorer, split, "test", ks=ks, users=sparse, **again)
        out["sparse_users"] = {"max_train": sparse_max_train, **m}
    return out
