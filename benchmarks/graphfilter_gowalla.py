"""The graph filter (:class:`~semrec.models.graphfilter.GraphFilter`) on LightGCN's Gowalla
split, or on a synthetic graph ``--scale`` times Gowalla's size: quality, time, memory.

Gowalla: reads ``train.txt`` / ``test.txt`` (one line per user: ``user item item ...``),
fits the filter on all of train (the setting of the published numbers, and of ``semrec
train --split given --set refit=true``) and ranks every item for every test user, train
items excluded:

* Recall@K = |top-K ∩ test_u| / |test_u|, averaged over users with a test item;
* NDCG@K = Σ_{j<K} hit_j / log2(j + 2) divided by IDCG = Σ_{j<min(|test_u|, K)} 1 / log2(j + 2).

Published on this split: GF-CF 0.1849 / 0.1518, SGFCF 0.1898 / 0.1566, BSPM 0.1920 / 0.1597,
ChebyCF 0.1941 / 0.1616 (Recall@20 / NDCG@20).

``--scale S``: the power-law graph of ``benchmarks/scale.py`` (``S × 29,858`` users,
``S × 40,981`` items, about ``S × 810k`` interactions, 10% of each user's held out), fitted
on the rest; ``--eval-users`` test users are scored and ranked and the time is
extrapolated to all of them (the quality of a random graph means nothing).

Prints load, fit and evaluation seconds, the process's peak RSS after the fit and at the
end, the load average at the start and the end, and the thread count.

    python benchmarks/graphfilter_gowalla.py [--threads 2] [--set order=2 ...]
    python benchmarks/graphfilter_gowalla.py --scale 10 --eval-users 4096
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from semrec.config import parse_value
from semrec.evaluate.ranking import default_batch_size
from semrec.models.graphfilter import GraphFilter, GraphFilterConfig
from semrec.models.topk import topk

DEFAULT_DATA = Path(os.environ.get("SEMREC_DATA_HOME", "/work/shared/data")) / "gowalla"
HERE = Path(__file__).resolve().parent


def read_lines(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(users, items)`` int64 arrays of the pairs in a LightGCN-format file."""
    users, items = [], []
    with path.open() as f:
        for line in f:
            ids = np.array(line.split(), dtype=np.int64)
            if ids.size > 1:
                users.append(np.full(ids.size - 1, ids[0]))
                items.append(ids[1:])
    return np.concatenate(users), np.concatenate(items)


def to_csr(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(users.size, dtype=np.float32), (users, items)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def synthetic(scale: float, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(train, test)`` of ``scale.py``'s power-law graph: 10% of each user's items test."""
    sys.path.insert(0, str(HERE))
    from scale import synthetic_split

    split = synthetic_split(scale, seed)
    return split.matrix("train"), split.matrix("test")


def evaluate(model: GraphFilter, train: sp.csr_matrix, test: sp.csr_matrix, k: int, batch: int,
             users: np.ndarray) -> dict:
    """Mean Recall@k and NDCG@k over ``users`` (each with at least one test item)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))  # (k,)
    idcg_table = np.concatenate([[0.0], np.cumsum(discounts)])  # (k + 1,)
    recall_sum = ndcg_sum = 0.0
    for start in range(0, users.size, batch):
        u = users[start:start + batch]  # (B,)
        hist = train[u]
        scores = model.score(u, hist)  # (B, n_items)
        _, top = topk(scores, k, seen=hist)  # (B, k)
        top = top.numpy()
        truth = test[u]
        relevant = np.zeros(truth.shape, dtype=bool)  # (B, n_items)
        relevant[np.repeat(np.arange(u.size), np.diff(truth.indptr)), truth.indices] = True
        hits = np.take_along_axis(relevant, top, axis=1)  # (B, k)
        n_test = np.diff(truth.indptr)  # (B,)
        recall_sum += float((hits.sum(1) / n_test).sum())
        ndcg_sum += float(((hits * discounts).sum(1) / idcg_table[np.minimum(n_test, k)]).sum())
    n = users.size
    return {f"recall@{k}": recall_sum / n, f"ndcg@{k}": ndcg_sum / n, "users": int(n)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--scale", type=float, default=None, help="a synthetic graph this many times Gowalla")
    ap.add_argument("--eval-users", type=int, default=None,
                    help="score this many test users and extrapolate (default: all; 4096 with --scale)")
    ap.add_argument("--batch", type=int, default=None,
                    help="users per scoring batch (default: a 512 MiB score matrix, as semrec evaluate)")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="a GraphFilterConfig field, key=value (default: the model's defaults)")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]

    t0 = time.perf_counter()
    if args.scale is None:
        tr_u, tr_i = read_lines(args.data / "train.txt")
        te_u, te_i = read_lines(args.data / "test.txt")
        shape = (int(max(tr_u.max(), te_u.max())) + 1, int(max(tr_i.max(), te_i.max())) + 1)
        train, test = to_csr(tr_u, tr_i, shape), to_csr(te_u, te_i, shape)
    else:
        train, test = synthetic(args.scale)
        shape = train.shape
    t1 = time.perf_counter()
    hyper = {}
    for item in args.sets:
        key, _, text = item.partition("=")
        hyper[key] = parse_value(GraphFilterConfig, key.strip(), text, where="--set ")
    model = GraphFilter(*shape, **hyper).fit(train)
    t2 = time.perf_counter()
    rss_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    n_users = users.size
    limit = args.eval_users or (4096 if args.scale is not None else None)
    if limit and limit < n_users:
        users = np.sort(np.random.default_rng(0).choice(users, limit, replace=False))
    batch = args.batch or default_batch_size(shape[1])
    with torch.inference_mode():
        metrics = evaluate(model, train, test, args.k, batch, users)
    t3 = time.perf_counter()
    eval_s = (t3 - t2) * n_users / users.size
    out = {
        "graph": "gowalla" if args.scale is None else f"synthetic {args.scale:g}x",
        "users": shape[0], "items": shape[1], "train": int(train.nnz), "test": int(test.nnz),
        **dataclasses.asdict(model.config),
        "threads": torch.get_num_threads(),
        "load_s": round(t1 - t0, 2), "fit_s": round(t2 - t1, 2),
        "eval_s": round(eval_s, 2), "eval_users": int(users.size), "batch": batch, "eval_extrapolated": bool(users.size < n_users),
        "total_s": round(t1 - t0 + t2 - t1 + eval_s, 2),
        "peak_rss_fit_mb": round(rss_fit, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items() if k != "users"},
    }
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:>18}: {value}")


if __name__ == "__main__":
    main()
