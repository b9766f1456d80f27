"""The README's commands run as written (issue 20).

Every fenced ``bash`` block after the two set-up commands is run line by line, unchanged,
in a fresh folder, as a user who ran the set-up would: ``SEMREC_DATA_HOME`` exported, every
extra installed, ``semrec`` on the PATH (here: this checkout, through ``sys.executable -m
semrec``). The first block runs in the default suite; all of them, in order, in one
session, are ``slow`` (under an hour on 2 busy cores: ``python -m pytest -m slow tests/test_readme.py``).

Three kinds of line are not plain commands: ``pip install`` (the set-up installed every
extra, so the test checks that each extra it names exists and is part of ``[test]``),
``semrec serve`` (started in the background; the block's later lines talk to it, and it is
stopped when the block ends) and ``curl`` (run as written; the answer must not be an HTTP
error).
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SETUP_BLOCKS = 2  # the install + demo command and the install + test command


def readme_blocks() -> list[list[str]]:
    """The commands of each fenced ``bash`` block, continuation lines joined."""
    blocks = re.findall(r"^```bash\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    out = []
    for block in blocks:
        commands = re.sub(r"\\\n\s*", "", block).splitlines()
        out.append([c.strip() for c in commands if c.strip() and not c.strip().startswith("#")])
    return out


def _session_env(bin_dir: Path) -> dict[str, str]:
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "semrec"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m semrec "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["SEMREC_DATA_HOME"] = os.environ["SEMREC_DATA_HOME"]  # what the set-up exports
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


def _check_pip(command: str) -> None:
    """A ``pip install -e ".[a,b]"`` line: the extras exist and ``[test]`` has them."""
    extras = {e.strip() for m in re.findall(r"\.\[([^\]]+)\]", command) for e in m.split(",")}
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    optional = project["optional-dependencies"]
    in_test = {re.fullmatch(r"semrec\[(\w+)\]", d).group(1) for d in optional["test"] if d.startswith("semrec[")}
    assert extras <= set(optional), f"{command}: no extra {sorted(extras - set(optional))}"
    assert extras <= in_test | {"test"}, f"{command}: the set-up's [test] lacks {sorted(extras - in_test)}"


def _port(command: str) -> int:
    args = shlex.split(command)
    return int(args[args.index("--port") + 1]) if "--port" in args else 8000


def _wait_for(port: int, server: subprocess.Popen, seconds: float = 300.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode}: {server.stderr.read()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the server did not listen on port {port} within {seconds:.0f}s")


def run_block(commands: list[str], cwd: Path, env: dict[str, str]) -> None:
    """Run one block's commands in order, as written; fail on the first that fails."""
    servers: list[subprocess.Popen] = []
    try:
        for command in commands:
            if command.startswith("pip install"):
                _check_pip(command)
                continue
            if command.startswith("semrec serve"):
                port = _port(command)
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        pytest.skip(f"port {port} is taken on this machine: cannot run '{command}' as written")
                server = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env, text=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          start_new_session=True)
                servers.append(server)
                _wait_for(port, server)
                continue
            if command.startswith("curl"):
                # as written (less its comment), plus the HTTP status on a last line: curl exits 0
                # on a 4xx or 5xx
                command = shlex.join([*shlex.split(command, comments=True), "-w", "\n%{http_code}"])
            proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True)
            detail = f"$ {command}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
            assert proc.returncode == 0, detail
            assert "Traceback" not in proc.stderr, detail
            if command.startswith("curl"):
                status = int(proc.stdout.strip().splitlines()[-1])
                assert status < 400, detail
    finally:
        for server in servers:  # each in its own session: its process group is just it
            if server.poll() is not None:
                continue
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def test_the_readme_has_its_set_up_and_command_blocks():
    blocks = readme_blocks()
    assert len(blocks) > SETUP_BLOCKS + 1
    setup = " ".join(blocks[0] + blocks[1])
    # the set-up exports the data home for every command after it, not just for the demo
    assert "export SEMREC_DATA_HOME=" in setup and '-e ".[test]"' in setup
    # every run folder a command reads is written by an earlier command
    written: set[str] = set()
    for command in (c for block in blocks[SETUP_BLOCKS:] for c in block):
        args = shlex.split(command)
        if "--out" in args:
            written.add(args[args.index("--out") + 1])
        if args[:1] == ["semrec"] and len(args) > 2 and args[1] in ("evaluate", "recommend", "similar",
                                                                     "serve", "retrain", "explain"):
            assert args[2] in written, f"'{command}' reads {args[2]}, which no earlier command writes"


def test_the_first_readme_block_runs_as_written(tmp_path, data_home):
    # data info, an MF run, evaluate, recommend, models: what a new user types first
    run_block(readme_blocks()[SETUP_BLOCKS], tmp_path, _session_env(tmp_path / ".bin"))
    assert (tmp_path / "runs" / "mf" / "model.safetensors").is_file()


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path, data_home):
    env = _session_env(tmp_path / ".bin")
    for block in readme_blocks()[SETUP_BLOCKS:]:
        run_block(block, tmp_path, env)
