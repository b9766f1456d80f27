"""A tiny rated dataset with a learnable signal, and a graph run trained on it."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def graph_run(rated_books, tmp_path_factory) -> Path:
    """An ``mf`` run on ``rated_books`` with 20% of the items held out cold."""
    from semrec.pipeline import build_config, train_and_save

    out = tmp_path_factory.mktemp("graph") / "mf"
    config = build_config("mf", sets=["epochs=5", "dim=16", "batch_size=64", "progress=false"],
                          split="cold-items:0.2")
    train_and_save(rated_books, config, out)
    return out


@pytest.fixture(scope="session")
def rating_run(rated_books, tmp_path_factory) -> Path:
    """A ``semgraph`` run with a rating head on ``rated_books`` (split :data:`RATING_SPLIT`)."""
    from finetune_toy import RATING_SPLIT

    from semrec.pipeline import build_config, train_and_save

    out = tmp_path_factory.mktemp("rating") / "semgraph"
    sets = ["model.task=rating", "train.task=rating", "epochs=30", "dim=16", "batch_size=64", "lr=0.02",
            "progress=false", "tensorboard=false"]
    train_and_save(rated_books, build_config("semgraph", split=RATING_SPLIT, sets=sets), out)
    return out
