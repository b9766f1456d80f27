"""The thread rule every entry point applies (issue 20: a busy intra-op pool made an
ml-100k epoch 20x slower on a loaded 2-core machine)."""
from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_info

from semrec.train import threads
from semrec.train.threads import auto_threads, machine_load, use_threads


@pytest.mark.parametrize("cores,load,most,expected", [
    (2, 0.1, 2, 2),   # idle: every core
    (2, 0.6, 2, 1),   # most of a core taken
    (2, 2.0, 2, 1),   # two other busy processes: one thread, never zero
    (2, 4.0, 2, 1),
    (8, 3.0, 8, 5),   # the cores left free
    (8, 0.0, 4, 4),   # never more than torch's own default (physical cores, OMP_NUM_THREADS)
    (1, 0.0, 4, 1),   # an affinity mask or a container quota of one CPU
])
def test_auto_takes_the_cores_other_processes_leave_free(cores, load, most, expected):
    assert auto_threads(cores, load, most) == expected


def test_machine_load_and_cores_are_read():
    assert machine_load() >= 0.0
    assert threads.available_cores() >= 1


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    use_threads(before)


def test_use_threads_sets_torch_and_blas(restore_threads):
    assert use_threads(2) == 2
    assert torch.get_num_threads() == 2
    assert all(lib["num_threads"] == 2 for lib in threadpool_info() if lib["user_api"] == "blas")
    assert use_threads(1) == 1 and torch.get_num_threads() == 1


def test_use_threads_defaults_to_the_auto_rule(restore_threads, monkeypatch):
    monkeypatch.setattr(threads, "auto_threads", lambda: 2)
    assert use_threads() == 2 and torch.get_num_threads() == 2


def test_fit_applies_an_explicit_setting_and_leaves_the_callers_otherwise(toy_split, restore_threads):
    from semrec.models.mf import MF
    from semrec.train.loop import TrainConfig, fit

    use_threads(1)
    fit(MF(toy_split.n_users, toy_split.n_items, dim=4), toy_split, TrainConfig(epochs=1, progress=False))
    assert torch.get_num_threads() == 1
    fit(MF(toy_split.n_users, toy_split.n_items, dim=4), toy_split,
        TrainConfig(epochs=1, progress=False, threads=2))
    assert torch.get_num_threads() == 2
