"""What re-ranking adds to one recommendation request (issue #19), in process.

    python benchmarks/rerank_speed.py [--requests 3000] [--run RUN_DIR]

The catalogue is serve_load.py's synthetic MF run of Gowalla's size (29,858 users,
40,981 items, d = 64) unless --run names a real one. For random known users it times
``LiveState.recommend(user, 10)`` as ``semrec serve`` answers it (the precomputed row)
and the same request re-ranked (``diversity`` 0.3, ``novelty`` 0.5, both; the pool is
the best 100, read from the same row), interleaved user by user, and
:func:`semrec.models.rerank.rerank` alone on 384-d vectors (the size of semgraph's text
space) for the same pools. One thread (``torch.set_num_threads(1)``,
``OMP_NUM_THREADS=1``). Over HTTP a re-ranked GET takes the same bare ASGI path as a
plain one (two more query parameters to parse), so the extra measured here is the extra
per request.

Prints p50 / p90 / p99 per variant and of the extra over the plain request, with the
machine's load average: on a shared machine the numbers are an upper bound.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_load import synthetic_run  # noqa: E402

from semrec.models.rerank import ItemSpace, Rerank, rerank  # noqa: E402
from semrec.serve.live import Service  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="run folder (default: a synthetic Gowalla-size MF run)")
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="semrec-rerank-speed-"))
    try:
        run = Path(shutil.copytree(args.run, work / "run")) if args.run else \
            synthetic_run(work / "run", 29858, 40981, 64)
        service = Service(run, f"sqlite:///{work / 'events.sqlite'}", poll=0)
        state = service.state
        n_items = len(state.cat.items)
        rng = np.random.default_rng(0)
        users = [state.run.users.ids[i] for i in rng.integers(len(state.run.users), size=args.requests)]
        variants = {"plain": None, "diversity 0.3": Rerank(diversity=0.3), "novelty 0.5": Rerank(novelty=0.5),
                    "both": Rerank(0.3, 0.5)}
        text = ItemSpace("text", rng.standard_normal((n_items, 384)).astype(np.float32))
        counts = state.item_counts()
        for u in users[:200]:  # warm-up: first-use work (the item space, the counts) out of the timing
            for rr in variants.values():
                state.recommend(u, args.k, None, rr)
        times: dict[str, list[float]] = {name: [] for name in [*variants, "rerank() on 384-d text, diversity 0.3"]}
        for u in users:
            for name, rr in variants.items():
                t = time.perf_counter_ns()
                state.recommend(u, args.k, None, rr)
                times[name].append((time.perf_counter_ns() - t) / 1e6)
            row = state.cat.top.row(state.run.users.get(u), Rerank().pool_size(args.k))
            t = time.perf_counter_ns()
            rerank(row[0][None, :], row[1][None, :], args.k, diversity=0.3, space=text, counts=counts)
            times["rerank() on 384-d text, diversity 0.3"].append((time.perf_counter_ns() - t) / 1e6)
        service.close()
        load = os.getloadavg()
        print(f"{n_items:,} items, k = {args.k}, pool {Rerank().pool_size(args.k)}, {args.requests} requests, "
              f"cached rows: {state.cat.top is not None}; load average {load[0]:.1f} / {load[1]:.1f} / "
              f"{load[2]:.1f} on {os.cpu_count()} cores\n")
        print("| request | p50 ms | p90 ms | p99 ms | extra over plain, p50 / p99 ms |")
        print("|---|---|---|---|---|")
        plain = np.asarray(times["plain"])
        for name, ts in times.items():
            a = np.asarray(ts)
            extra = "" if name == "plain" or name.startswith("rerank()") else \
                f"{np.percentile(a - plain, 50):.3f} / {np.percentile(a - plain, 99):.3f}"
            print(f"| {name} | {np.percentile(a, 50):.3f} | {np.percentile(a, 90):.3f} | "
                  f"{np.percentile(a, 99):.3f} | {extra} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
