"""Fixtures for the text stage: the real packaged MiniLM (loaded once, with the network
cut off to prove loading is offline) and a cache root in a temporary folder."""
from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from semrec.text.encoder import TextEncoder


@contextlib.contextmanager
def _no_network() -> Iterator[None]:
    """Any attempt to open a network connection raises inside this block."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    saved = socket.socket.connect, socket.create_connection, socket.getaddrinfo
    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]
    socket.getaddrinfo = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect, socket.create_connection, socket.getaddrinfo = saved  # type: ignore[misc]


@pytest.fixture(scope="session")
def no_network():  # noqa: ANN201
    """A context manager factory: ``with no_network(): ...`` fails on any connection."""
    return _no_network


@pytest.fixture(scope="session")
def minilm() -> TextEncoder:
    with _no_network():
        return TextEncoder(device="cpu", progress=False, batch_size=8)


@pytest.fixture(autouse=True)
def _cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write into the real ~/.cache while testing."""
    monkeypatch.setenv("SEMREC_CACHE", str(tmp_path_factory.mktemp("semrec-cache")))
