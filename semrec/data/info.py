"""A short, JSON-ready description of a dataset (``semrec data info``)."""
from __future__ import annotations

from typing import Any

from semrec.data.dataset import Dataset


def describe(dataset: Dataset) -> dict[str, Any]:
    """Counts and shape of ``dataset`` as plain JSON values.

    Keys: ``name``, ``path``, ``n_users`` and ``n_items`` (distinct ids in the
    interactions), ``n_interactions``, ``density`` (``n_interactions / (n_users *
    n_items)``), ``rating_scale`` (``[min, max]`` or ``None``), ``has_timestamps``,
    ``n_items_with_text`` and ``n_users_with_text`` (rows of the item and user
    tables, 0 without one), ``text_columns`` (``{"items": [...], "users": [...]}``),
    ``item_template``, ``user_template``, ``implicit_threshold``, ``given_splits``
    (names, each with its part sizes in ``given_sizes``) and ``notes``.
    """
    inter = dataset.interactions
    n_users = int(inter["user_id"].nunique())
    n_items = int(inter["item_id"].nunique())
    n = len(inter)
    scale = dataset.rating_scale
    text = dataset.text_columns()
    return {
        "name": dataset.name,
        "path": None if dataset.path is None else str(dataset.path),
        "n_users": n_users,
        "n_items": n_items,
        "n_interactions": n,
        "density": n / (n_users * n_items) if n_users and n_items else 0.0,
        "rating_scale": None if scale is None else [scale[0], scale[1]],
        "has_timestamps": dataset.has_timestamps,
        "n_items_with_text": 0 if dataset.items is None else len(dataset.items),
        "n_users_with_text": 0 if dataset.users is None else len(dataset.users),
        "text_columns": {"items": text.get("items", []), "users": text.get("users", [])},
        "item_template": dataset.item_template,
        "user_template": dataset.user_template,
        "implicit_threshold": dataset.implicit_threshold,
        "given_splits": list(dataset.given),
        "given_sizes": {
            name: {
                "train": len(g.train),
                "valid": None if g.valid is None else len(g.valid),
                "test": len(g.test),
            }
            for name, g in dataset.given.items()
        },
        "notes": list(dataset.notes),
    }
