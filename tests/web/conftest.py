"""A small trained text run and a real ``semrec serve`` process for the web page tests.

The dataset is a copy of the serving tests' two-taste toy (tests/serve/conftest.py):
users u0-u29 pick science fiction (items s*), u30-u59 romances (items r*)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope="session")
def web_data(tastes) -> Path:
    return tastes


@pytest.fixture(scope="session")
def semgraph_web_run(web_data, tmp_path_factory, train_run) -> Path:
    """SemGraph (text + behaviour), so the page shows text shares and takes sentences."""
    return train_run(web_data, "semgraph", tmp_path_factory.mktemp("webruns") / "semgraph",
                     ["epochs=4", "dim=16", "hidden=32", "lr=0.02", "batch_size=128", "knn=5",
                      "patience=100"])


@pytest.fixture(scope="session")
def mf_web_run(web_data, tmp_path_factory, train_run) -> Path:
    return train_run(web_data, "mf", tmp_path_factory.mktemp("webruns") / "mf",
                     ["epochs=5", "dim=16", "lr=0.02", "batch_size=128", "patience=100"])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """``semrec serve RUN_DIR`` as a child process on a free loopback port."""

    def __init__(self, run_dir: Path, log: Path, timeout: float = 120) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "semrec", "serve", str(run_dir), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, env={"OMP_NUM_THREADS": "1", **os.environ},
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"semrec serve exited with {self.proc.returncode}: {log.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"semrec serve did not answer within {timeout}s: {log.read_text()}")
            time.sleep(0.2)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def semrec_server(semgraph_web_run, tmp_path):
    """``semrec serve`` on a private copy of the SemGraph run (its event store is inside)."""
    import shutil

    run = Path(shutil.copytree(semgraph_web_run, tmp_path / "run"))
    proc = ServeProcess(run, tmp_path / "serve.log")
    yield proc
    proc.close()
