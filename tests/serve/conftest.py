"""Small trained runs and a real HTTP server on loopback for the serving tests."""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope="session")
def toy_data(tastes) -> Path:
    return tastes


@pytest.fixture(scope="session")
def mf_run_master(toy_data, tmp_path_factory, train_run) -> Path:
    return train_run(toy_data, "mf", tmp_path_factory.mktemp("runs") / "mf",
                     ["epochs=20", "dim=16", "lr=0.02", "batch_size=128", "patience=100"])


@pytest.fixture(scope="session")
def semgraph_run_master(toy_data, tmp_path_factory, train_run) -> Path:
    return train_run(toy_data, "semgraph", tmp_path_factory.mktemp("runs") / "semgraph",
                     ["epochs=10", "dim=16", "hidden=32", "lr=0.02", "batch_size=128", "knn=5",
                      "patience=100"])


@pytest.fixture(scope="session")
def transformer_run_master(toy_data, tmp_path_factory) -> Path:
    """semgraph with its transformer user tower: a leave-one-out split of the timed tastes."""
    from semrec.pipeline import build_config, train_and_save

    out = tmp_path_factory.mktemp("runs") / "transformer"
    config = build_config("semgraph", split="leave-one-out", sets=[
        "progress=false", "seed=0", "epochs=15", "dim=16", "hidden=32", "lr=0.01", "batch_size=64",
        "knn=5", "patience=100", "max_len=10"])
    train_and_save(str(toy_data), config, out)
    return out


@pytest.fixture
def transformer_run(transformer_run_master, tmp_path) -> Path:
    return Path(shutil.copytree(transformer_run_master, tmp_path / "transformer"))


@pytest.fixture
def mf_run(mf_run_master, tmp_path) -> Path:
    """A private copy of the MF run (its event store lives inside the folder)."""
    return Path(shutil.copytree(mf_run_master, tmp_path / "mf"))


@pytest.fixture
def semgraph_run(semgraph_run_master, tmp_path) -> Path:
    return Path(shutil.copytree(semgraph_run_master, tmp_path / "semgraph"))


@pytest.fixture
def postgres_url() -> str:
    """A URL of empty tables on the test PostgreSQL, or a skip when none is configured.

    Each xdist worker gets its own schema (``search_path`` in the URL), so that two tests
    running at once never drop each other's tables."""
    url = os.environ.get("SEMREC_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL not configured: set SEMREC_TEST_POSTGRES_URL (.ci/run does)")
    from sqlalchemy import create_engine, text

    from semrec.serve.store import metadata

    schema = f"semrec_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            metadata.drop_all(conn)
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    return url


class LiveServer:
    """A uvicorn server in a thread on a free loopback port."""

    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def close(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def serve():
    """``serve(run_dir, store_url=None, token=None, fast_reads=True, open_writes=False,
    runs_root=None) -> LiveServer`` over real HTTP."""
    from semrec.serve.api import create_app
    from semrec.serve.live import Service

    started = []

    def start(run_dir, store_url=None, token=None, fast_reads=True, open_writes=False, runs_root=None):
        service = Service(run_dir, store_url, runs_root=runs_root)
        server = LiveServer(create_app(service, token, fast_reads, open_writes=open_writes))
        server.service = service
        started.append(server)
        return server

    yield start
    for s in started:
        s.close()
        s.service.close()
