"""Time full-ranking evaluation at Gowalla size.

Synthetic data shaped like LightGCN's Gowalla (29,858 users x 40,981 items,
~810k train and ~217k test interactions), with power-law item popularity and user
activity, and an :class:`~semrec.models.base.EmbeddingScorer` of random dim-64
embeddings. Prints the median wall time of ``--runs`` calls of
:func:`semrec.evaluate.ranking.evaluate_ranking` and the process's peak RSS.

    python benchmarks/eval_speed.py [--threads 2] [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np
import torch

from semrec.data.dataset import Interactions
from semrec.data.idmap import IdMap
from semrec.data.split import Split
from semrec.evaluate.ranking import default_batch_size, evaluate_ranking
from semrec.models.base import EmbeddingScorer


def synthetic_split(n_users: int, n_items: int, n_train: int, n_test: int, seed: int) -> Split:
    """Distinct (user, item) pairs drawn with Zipf-like popularity and activity, cut at random."""
    rng = np.random.default_rng(seed)
    item_p = 1.0 / np.arange(1, n_items + 1) ** 0.8
    item_p = rng.permutation(item_p / item_p.sum())
    user_p = 1.0 / np.arange(1, n_users + 1) ** 0.5
    user_p = rng.permutation(user_p / user_p.sum())
    want = n_train + n_test
    keys = np.empty(0, dtype=np.int64)
    while keys.shape[0] < want:  # draw extra, keep distinct pairs
        m = int((want - keys.shape[0]) * 1.3) + 1000
        u = rng.choice(n_users, size=m, p=user_p)
        i = rng.choice(n_items, size=m, p=item_p)
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
    keys = rng.permutation(keys)[:want]
    users, items = keys // n_items, keys % n_items
    tr, te = slice(0, n_train), slice(n_train, want)
    empty = np.empty(0, dtype=np.int64)
    return Split(
        spec="synthetic",
        users=IdMap(range(n_users)),
        items=IdMap(range(n_items)),
        train=Interactions(users[tr], items[tr]),
        valid=Interactions(empty, empty),
        test=Interactions(users[te], items[te]),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=29_858)
    ap.add_argument("--items", type=int, default=40_981)
    ap.add_argument("--train", type=int, default=810_128)
    ap.add_argument("--test", type=int, default=217_242)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--memory-budget-mb", type=float, default=512)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    split = synthetic_split(args.users, args.items, args.train, args.test, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    scorer = EmbeddingScorer(
        torch.randn(args.users, args.dim, generator=gen) * 0.1,  # (n_users, d)
        torch.randn(args.items, args.dim, generator=gen) * 0.1,  # (n_items, d)
    )
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"data: {args.users} users x {args.items} items, {len(split.train)} train / "
        f"{len(split.test)} test interactions, dim {args.dim} "
        f"(built in {time.perf_counter() - t0:.1f} s, peak RSS so far {rss_data:.0f} MiB)"
    )
    print(
        f"torch threads: {torch.get_num_threads()}, batch size "
        f"{default_batch_size(args.items, args.memory_budget_mb)} users "
        f"({args.memory_budget_mb:g} MiB score budget)"
    )

    times, cpu_times = [], []
    result: dict[str, float] = {}
    load_before = os.getloadavg()[0]
    for _ in range(args.runs):
        t, c = time.perf_counter(), time.process_time()
        result = evaluate_ranking(
            scorer, split, "test", ks=args.ks, memory_budget_mb=args.memory_budget_mb
        )
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB -> MiB
    print("runs (s): " + ", ".join(f"{t:.2f}" for t in times))
    print(f"median seconds: {statistics.median(times):.2f}")
    # CPU seconds of this process (all threads): less sensitive to other load on the machine
    print(f"median CPU seconds: {statistics.median(cpu_times):.2f}")
    print(f"1-min load average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
          f"on {os.cpu_count()} CPUs")
    print(f"peak RSS: {peak:.0f} MiB")
    print(f"users evaluated: {result['n_users']}; " + ", ".join(
        f"{k}={v:.4f}" for k, v in result.items() if k != "n_users"
    ))


if __name__ == "__main__":
    main()
