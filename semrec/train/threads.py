"""How many threads semrec's tensor and matrix work may use: one rule, one place.

torch's intra-op pool (and numpy's BLAS) start one thread per core. That is right on an
idle machine and badly wrong on a busy one: when other processes hold the cores, the
pool's threads wait on each other at the end of every parallel region, and a training
epoch made of many small operations gets far slower than its fair share of the CPU (an
ml-100k MF epoch went from 0.74 s to about 17 s with two other busy processes on two
cores). One thread per process only ever loses the parallel speed-up; so the default
takes the cores nobody else is using, and at least one.

Every entry point (``semrec train``, ``evaluate``, ``recommend``, ``demo``, ``tune``,
``serve``, ...) calls :func:`use_threads` once before any heavy work, with the run's
``train.threads`` setting where it has one; :func:`semrec.train.loop.fit` applies an
explicit ``train.threads`` too, for library callers.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

#: The thread count torch started with: one per physical core, or ``OMP_NUM_THREADS``
#: when the environment sets it. ``auto`` never goes above it.
_STARTED_WITH = torch.get_num_threads()


def available_cores() -> int:
    """CPUs this process may run on: its affinity mask, and a cgroup CPU quota (a
    container limited to 1.5 CPUs counts as 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, math.floor(quota))
    return max(1, cores)


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup v2 quota (``/sys/fs/cgroup/cpu.max``), or ``None``."""
    try:
        fields = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        return int(fields[0]) / int(fields[1])
    except (ValueError, ZeroDivisionError):
        return None


def machine_load() -> float:
    """How many runnable tasks other processes keep busy: the larger of the 1-minute load
    average and the tasks runnable right now (``/proc/loadavg``, less this process). The
    average lags a load that has just started, the instant count is noisy; taking the
    larger errs towards fewer threads, the cheap side to err on. 0 where neither is known."""
    try:
        average = os.getloadavg()[0]
    except (AttributeError, OSError):  # not a Unix
        average = 0.0
    try:
        running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])  # "R/T": R includes us
    except (OSError, IndexError, ValueError):
        running = 1
    return max(average, running - 1.0)


def auto_threads(cores: int | None = None, load: float | None = None, most: int | None = None) -> int:
    """The default thread count: the cores left free by other processes, rounded to the
    nearest whole core, at least 1 and at most ``most``.

    Args:
        cores: CPUs this process may use (default :func:`available_cores`).
        load: runnable tasks of other processes (default :func:`machine_load`).
        most: the upper bound (default: the thread count torch had when this module was
            first imported, one per physical core unless ``OMP_NUM_THREADS`` says otherwise).
    """
    cores = available_cores() if cores is None else cores
    load = machine_load() if load is None else load
    most = _STARTED_WITH if most is None else most
    free = math.floor(cores - load + 0.5)
    return max(1, min(free, cores, most))


def use_threads(threads: int | None = None) -> int:
    """Set the threads of torch's intra-op pool, of the BLAS and OpenMP libraries numpy,
    scipy and FAISS have loaded, to ``threads`` (``None``: :func:`auto_threads`).
    Returns the number set."""
    n = auto_threads() if threads is None else int(threads)
    torch.set_num_threads(n)
    threadpool_limits(n)
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(n)
    return n
