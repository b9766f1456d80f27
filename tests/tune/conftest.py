"""A tiny two-taste dataset folder for the tuning tests (seconds per trial)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Users u0-u19 pick items a0-a9, u20-u39 pick b0-b9; 6 interactions each."""
    folder = tmp_path_factory.mktemp("tune") / "tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["user_id,item_id,timestamp"]
    for u in range(40):
        prefix = "a" if u < 20 else "b"
        for t, i in enumerate(rng.choice(10, size=6, replace=False)):
            rows.append(f"u{u},{prefix}{i},{1000 + t}")
    (folder / "interactions.csv").write_text("\n".join(rows) + "\n")
    return folder
