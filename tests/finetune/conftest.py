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
