"""Shared fixtures. Real datasets are reached through SEMREC_DATA_HOME (../shared/data)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("SEMREC_DATA_HOME", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_home() -> Path:
    home = Path(os.environ["SEMREC_DATA_HOME"])
    if not (home / "ml-100k" / "u.data").is_file():
        pytest.fail(f"real datasets not found under SEMREC_DATA_HOME={home}")
    return home
