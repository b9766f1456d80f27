"""Where one LightGCN epoch on Gowalla spends its time, and how close the sparse
products are to the memory-bandwidth bound.

Runs the training loop's own components (``NegativeSampler``/``ranking_batches``,
``propagate``, ``bpr_scores``/``bpr_loss``/``l2_penalty``, ``backward``, Adam) for
``--batches`` batches of a LightGCN (64-d, 3 layers, batch 2048, BPR, 1 negative) on
the ``given`` split of Gowalla (validation carved from train), and prints

* per-batch median seconds of each stage and the per-epoch estimate
  (median x batches per epoch; sampling is the whole epoch's up-front draw plus the
  per-batch slicing);
* the median of 20 single 64-d products ``norm_ui @ V`` and ``norm_iu @ U``, forward
  and forward+backward, against a memory-bandwidth bound.

Byte model of one product ``A @ X`` with ``A`` ``(n_rows, n_cols)`` CSR, ``X`` ``(n_cols, d)``
float32: values ``4·nnz`` + column indices ``8·nnz`` (int64) + row pointers ``8·(n_rows+1)``
+ output ``4·n_rows·d`` + gathered input rows ``4·nnz·d`` (worst case: no cache reuse; the
best case reads ``X`` once, ``4·n_cols·d``). The bandwidth is a measured large
``copy_`` (256M float32 = 1 GiB; bytes = read + write = 2 GiB).

    nice -n 10 python benchmarks/profile_epoch.py [--batches 40] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from semrec.data.load import load_dataset
from semrec.data.split import make_split
from semrec.graph.interaction import InteractionGraph
from semrec.models.lightgcn import LightGCN, propagate
from semrec.models.losses import bpr_loss, l2_penalty
from semrec.models.mf import bpr_scores, neg_items_2d
from semrec.train.sampler import NegativeSampler, n_batches, ranking_batches


def median_time(fn, repeats: int = 20, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def copy_bandwidth(n: int = 256 * 2**20) -> float:
    """Bytes per second of ``dst.copy_(src)`` on ``n`` float32 (counts read + write)."""
    src = torch.ones(n, dtype=torch.float32)
    dst = torch.empty_like(src)
    t = median_time(lambda: dst.copy_(src), repeats=5, warmup=1)
    return 2 * 4 * n / t


def product_bytes(a: torch.Tensor, d: int) -> tuple[int, int]:
    """(worst, best) bytes moved by ``a @ X`` for ``X`` ``(n_cols, d)`` float32 (see module doc)."""
    n_rows, n_cols = a.shape
    nnz = a._nnz()
    fixed = nnz * (4 + 8) + 8 * (n_rows + 1) + 4 * n_rows * d
    return fixed + 4 * nnz * d, fixed + 4 * n_cols * d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="gowalla")
    ap.add_argument("--batches", type=int, default=40, help="batches timed (after 3 warm-up)")
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    t0 = time.perf_counter()
    split = make_split(load_dataset(args.data), "given", seed=0)
    train = split.matrix("train")
    graph = InteractionGraph(train, "cpu")
    a_ui, a_iu = graph.norm_ui, graph.norm_iu
    print(f"data: {split.n_users} users, {split.n_items} items, {train.nnz} train interactions "
          f"(load+split+graph {time.perf_counter() - t0:.1f}s), threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}")

    # ---- one epoch's stages ---------------------------------------------------------
    model = LightGCN(split.n_users, split.n_items, dim=args.dim, layers=args.layers, reg=1e-4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    sampler = NegativeSampler(train, rng)
    steps = n_batches(train.nnz, args.batch_size)
    t = time.perf_counter()
    batches = ranking_batches(train, args.batch_size, 1, rng, sampler)
    first = next(batches)  # permutation + the whole epoch's negatives
    epoch_sample_s = time.perf_counter() - t
    stages: dict[str, list[float]] = {k: [] for k in ("sample", "forward", "loss", "backward", "step")}
    batch = first
    for b in range(args.batches + 3):
        if b > 0:
            t = time.perf_counter()
            batch = next(batches)
            sample_s = time.perf_counter() - t
        else:
            sample_s = 0.0
        t1 = time.perf_counter()
        users, items = propagate(graph, model.user_emb.weight, model.item_emb.weight, model.layers)
        t2 = time.perf_counter()
        pos, neg = bpr_scores(users, items, batch)
        l2 = l2_penalty(model.user_emb(batch.users), model.item_emb(batch.pos_items),
                        model.item_emb(neg_items_2d(batch)), batch_size=int(batch.users.shape[0]))
        loss = bpr_loss(pos, neg) + model.reg * l2
        t3 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t4 = time.perf_counter()
        opt.step()
        float(loss.detach())
        t5 = time.perf_counter()
        if b >= 3:
            for k, v in zip(stages, (sample_s, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                stages[k].append(v)

    med = {k: statistics.median(v) for k, v in stages.items()}
    per_batch = sum(med.values())
    print(f"\n### One LightGCN epoch ({args.dim}-d, {args.layers} layers, batch {args.batch_size}, "
          f"BPR, 1 negative; {steps} batches/epoch; median of {args.batches} batches)\n")
    print("| stage | s / batch (median) | s / epoch (est.) | share |")
    print("|---|---:|---:|---:|")
    epoch_total = per_batch * steps + epoch_sample_s
    for k, v in med.items():
        ep = v * steps + (epoch_sample_s if k == "sample" else 0.0)
        note = " (incl. up-front negatives)" if k == "sample" else ""
        print(f"| {k}{note} | {v:.4f} | {ep:.1f} | {ep / epoch_total:.0%} |")
    print(f"| **total** | {per_batch:.4f} | {epoch_total:.1f} | 100% |")
    print(f"\nup-front sampling of the epoch (permutation + {train.nnz} negatives): {epoch_sample_s:.2f}s")

    # ---- single products vs the bandwidth bound -------------------------------------
    d = args.dim
    v_in = torch.randn(split.n_items, d)
    u_in = torch.randn(split.n_users, d)
    bw = copy_bandwidth()
    print(f"\n### Sparse products ({d}-d, median of 20) vs the bandwidth bound\n")
    print(f"measured copy bandwidth: {bw / 1e9:.2f} GB/s (256M float32 copy_, read+write counted)\n")
    print("| product | shape | nnz | s | bytes worst / best (MB) | bound worst / best (s) | "
          "achieved GB/s (worst model) | of bound |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, a, x in (("norm_ui @ V", a_ui, v_in), ("norm_iu @ U", a_iu, u_in)):
        s = median_time(lambda a=a, x=x: torch.sparse.mm(a, x))
        worst, best = product_bytes(a, d)
        print(f"| {name} | {tuple(a.shape)} | {a._nnz()} | {s:.4f} | {worst / 1e6:.0f} / {best / 1e6:.0f} | "
              f"{worst / bw:.4f} / {best / bw:.4f} | {worst / s / 1e9:.2f} | {worst / bw / s:.0%} |")

    # forward+backward of one layer pair, autograd through torch.sparse.mm vs explicit R̂ᵀ
    def layer_autograd() -> None:
        u = u_in.clone().requires_grad_()
        v = v_in.clone().requires_grad_()
        out_u, out_v = torch.sparse.mm(a_ui, v), torch.sparse.mm(a_iu, u)
        (out_u.sum() + out_v.sum()).backward()

    def layer_fwd() -> None:
        torch.sparse.mm(a_ui, v_in), torch.sparse.mm(a_iu, u_in)

    fwd = median_time(layer_fwd)
    fb = median_time(layer_autograd)
    print(f"\none layer (R̂ V and R̂ᵀ U): forward {fwd:.4f}s; forward+backward through "
          f"autograd of torch.sparse.mm {fb:.4f}s (backward ≈ {fb - fwd:.4f}s, "
          f"{(fb - fwd) / fwd:.1f}x the forward)")
    def layer_explicit() -> None:
        u = u_in.clone().requires_grad_()
        v = v_in.clone().requires_grad_()
        out_u, out_v = graph.users_from_items(v), graph.items_from_users(u)
        (out_u.sum() + out_v.sum()).backward()

    fe = median_time(layer_explicit)
    print(f"one layer with the explicit-transpose backward (graph.users_from_items / "
          f"items_from_users, what propagate_layers uses): {fe:.4f}s (backward ≈ {fe - fwd:.4f}s)")
    print(f"\npeak RSS {__import__('resource').getrusage(__import__('resource').RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"pid {os.getpid()}")


if __name__ == "__main__":
    main()
