"""Data-parallel training: two CPU processes with gloo under torchrun train the model a
single process trains with the same config."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from semrec.train.distributed import Context, context

SETS = ["epochs=4", "dim=8", "layers=2", "batch_size=64", "lr=0.01", "seed=3", "progress=false",
        "tensorboard=false"]


def _train(books, out, launcher: list[str]) -> dict:
    args = ["train", "--data", str(books), "--model", "lightgcn", "--split", "leave-one-out",
            "--out", str(out), "--json"] + [x for s in SETS for x in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(launcher + ["-m", "semrec", *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def test_two_gloo_processes_train_what_one_process_trains(books, tmp_path):
    single = _train(books, tmp_path / "one", [sys.executable])
    # torchrun's own module: present wherever torch is, whether or not its script is on PATH
    double = _train(books, tmp_path / "two",
                    [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"])
    # the same model, up to the order of floating-point sums in the gradient average
    one = load_file(str(tmp_path / "one" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model.safetensors"))
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-5, rtol=1e-4)
    for key, value in single["metrics"].items():
        assert double["metrics"][key] == pytest.approx(value, abs=1e-6), key
    # only process 0 wrote: one log line per epoch, no leftovers
    log = (tmp_path / "two" / "log.jsonl").read_text().splitlines()
    assert len(log) == single_epochs(tmp_path / "one")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]


def single_epochs(run) -> int:
    return len((run / "log.jsonl").read_text().splitlines())


def test_a_single_process_is_not_a_job(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = context()
    assert ctx == Context() and not ctx.enabled and ctx.is_main and ctx.shard == (0, 1)
    assert ctx.local_batch(2048) == 2048


def test_the_global_batch_must_divide_among_processes():
    from semrec.errors import ConfigError

    assert Context(rank=1, world_size=4).local_batch(2048) == 512
    with pytest.raises(ConfigError, match="batch_size 100 does not divide among 3 processes"):
        Context(rank=0, world_size=3).local_batch(100)
