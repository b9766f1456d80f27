"""GF-CF (:class:`~semrec.models.graphfilter.GraphFilter`) on LightGCN's Gowalla split.

Reads ``train.txt`` / ``test.txt`` (one line per user: ``user item item ...``), fits
the graph filter on train and ranks every item for every test user, train items
excluded. Prints load, fit and eval seconds, the process's peak RSS (after fit and
at the end) and

* Recall@K = |top-K ∩ test_u| / |test_u|, averaged over users with a test item;
* NDCG@K = Σ_{j<K} hit_j / log2(j + 2) divided by IDCG = Σ_{j<min(|test_u|, K)} 1 / log2(j + 2).

The paper reports Recall@20 0.1849 and NDCG@20 0.1518 for GF-CF on this split.

    python benchmarks/graphfilter_gowalla.py [--data /work/shared/data/gowalla] [--batch 1024]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from semrec.models.graphfilter import GraphFilter, GraphFilterConfig
from semrec.models.topk import topk

DEFAULT_DATA = Path(os.environ.get("SEMREC_DATA_HOME", "/work/shared/data")) / "gowalla"


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


def evaluate(model: GraphFilter, train: sp.csr_matrix, test: sp.csr_matrix, k: int, batch: int) -> dict:
    """Mean Recall@k and NDCG@k over users with at least one test item."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
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
    ap.add_argument("--batch", type=int, default=1024, help="users per scoring batch")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--svd-iters", type=int, default=GraphFilterConfig.svd_iters)
    ap.add_argument("--svd-oversample", type=int, default=GraphFilterConfig.svd_oversample)
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args()

    t0 = time.perf_counter()
    tr_u, tr_i = read_lines(args.data / "train.txt")
    te_u, te_i = read_lines(args.data / "test.txt")
    shape = (int(max(tr_u.max(), te_u.max())) + 1, int(max(tr_i.max(), te_i.max())) + 1)
    train, test = to_csr(tr_u, tr_i, shape), to_csr(te_u, te_i, shape)
    t1 = time.perf_counter()
    cfg = GraphFilterConfig(svd_iters=args.svd_iters, svd_oversample=args.svd_oversample)
    model = GraphFilter(*shape, alpha=cfg.alpha, k=cfg.k, svd_iters=cfg.svd_iters,
                        svd_oversample=cfg.svd_oversample, seed=cfg.seed).fit(train)
    t2 = time.perf_counter()
    rss_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with torch.inference_mode():
        metrics = evaluate(model, train, test, args.k, args.batch)
    t3 = time.perf_counter()
    out = {
        "users": shape[0], "items": shape[1], "train": int(train.nnz), "test": int(test.nnz),
        "alpha": cfg.alpha, "svd_k": cfg.k, "svd_iters": cfg.svd_iters, "svd_oversample": cfg.svd_oversample,
        "threads": torch.get_num_threads(),
        "load_s": round(t1 - t0, 2), "fit_s": round(t2 - t1, 2), "eval_s": round(t3 - t2, 2),
        "total_s": round(t3 - t0, 2),
        "peak_rss_fit_mb": round(rss_fit, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()},
    }
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:>15}: {value}")


if __name__ == "__main__":
    main()
