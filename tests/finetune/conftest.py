"""A tiny rated dataset with a learnable signal, and a graph run trained on it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from finetune_toy import COOKING, SCIFI


@pytest.fixture(scope="session")
def rated_books(tmp_path_factory) -> Path:
    """40 users x 6 rated books: astronomers and rocket engineers (u0-u19) rate sci-fi
    (b0-b7) 5 and cooking (b8-b15) 1; pastry chefs and cooks (u20-u39) the other way
    round. 240 ratings, learnable from the user's occupation and the item's title."""
    root = tmp_path_factory.mktemp("rated-books")
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        fan_of_scifi = u < 20
        for i in rng.choice(16, size=6, replace=False):
            scifi = i < 8
            rows.append((f"u{u}", f"b{i}", 5.0 if scifi == fan_of_scifi else 1.0, 1_000 + len(rows)))
    pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]).to_csv(
        root / "interactions.csv", index=False)
    pd.DataFrame({"item_id": [f"b{i}" for i in range(16)], "title": SCIFI + COOKING}).to_csv(
        root / "items.csv", index=False)
    jobs = ["astronomer", "rocket engineer"] * 10 + ["pastry chef", "restaurant cook"] * 10
    pd.DataFrame({"user_id": [f"u{u}" for u in range(40)], "occupation": jobs}).to_csv(
        root / "users.csv", index=False)
    return root


@pytest.fixture(scope="session")
def graph_run(rated_books, tmp_path_factory) -> Path:
    """An ``mf`` run on ``rated_books`` with 20% of the items held out cold."""
    from semrec.pipeline import build_config, train_and_save

    out = tmp_path_factory.mktemp("graph") / "mf"
    config = build_config("mf", sets=["epochs=5", "dim=16", "batch_size=64", "progress=false"],
                          split="cold-items:0.2")
    train_and_save(rated_books, config, out)
    return out
