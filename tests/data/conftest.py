"""Real datasets loaded once per session, and a fixture that writes small folders."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from semrec.data import Dataset, load_dataset


@pytest.fixture(scope="session")
def ml100k(data_home: Path) -> Dataset:
    return load_dataset("ml-100k")


@pytest.fixture(scope="session")
def gowalla(data_home: Path) -> Dataset:
    return load_dataset("gowalla")


@pytest.fixture(scope="session")
def amazon(data_home: Path) -> Dataset:
    return load_dataset("amazon-office")


@pytest.fixture
def make_folder(tmp_path: Path) -> Callable[..., Path]:
    """``make_folder({"name": text or bytes, ...}, name="data")`` writes the files
    into ``tmp_path / name`` and returns that folder."""

    def make(files: dict[str, str | bytes], name: str = "data") -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        for file, content in files.items():
            path = folder / file
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return folder

    return make
