"""Seconds per XSimGCL training step on Gowalla, by batch size, with and without the cap
on the contrastive nodes.

For each batch size and each ``ssl_nodes`` value, runs 12 steps of the real model (``loss``,
``backward``, Adam) on the ``given`` split and prints the median forward, backward and
optimiser seconds of the last 10, and the epoch they add up to. ``--ssl-nodes 1000000``
is the uncapped InfoNCE over every unique user and item of the batch.

    python benchmarks/profile_xsimgcl_step.py --batch-sizes 2048,8192 --ssl-nodes 1000000,2048
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from semrec.data.load import load_dataset
from semrec.data.split import make_split
from semrec.graph.interaction import InteractionGraph
from semrec.models.xsimgcl import XSimGCL
from semrec.train.sampler import NegativeSampler, ranking_batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="gowalla")
    ap.add_argument("--split", default="given")
    ap.add_argument("--batch-sizes", default="2048,8192")
    ap.add_argument("--ssl-nodes", default="1000000,2048")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    split = make_split(load_dataset(args.data), args.split)
    train = split.matrix("train")
    graph = InteractionGraph(train)
    rng = np.random.default_rng(0)
    print(f"{args.data} {args.split}: {graph.n_users} users, {graph.n_items} items, {train.nnz} train; "
          f"threads {args.threads}")
    print("| batch | ssl_nodes | forward s | backward s | step s | total s | s / epoch |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        for cap in (int(c) for c in args.ssl_nodes.split(",")):
            torch.manual_seed(0)
            model = XSimGCL(graph.n_users, graph.n_items, ssl_nodes=cap)
            opt = torch.optim.Adam(model.parameters(), lr=5e-3)
            batches = ranking_batches(train, bs, 1, rng, NegativeSampler(train, rng))
            times: dict[str, list[float]] = {"forward": [], "backward": [], "step": []}
            for k in range(args.steps):
                batch = next(batches)
                t0 = time.perf_counter()
                terms = model.loss(batch, graph)
                t1 = time.perf_counter()
                opt.zero_grad()
                terms["loss"].backward()
                t2 = time.perf_counter()
                opt.step()
                t3 = time.perf_counter()
                if k >= 2:
                    times["forward"].append(t1 - t0)
                    times["backward"].append(t2 - t1)
                    times["step"].append(t3 - t2)
            med = {k: statistics.median(v) for k, v in times.items()}
            total = sum(med.values())
            print(f"| {bs} | {cap} | {med['forward']:.3f} | {med['backward']:.3f} | {med['step']:.3f} | "
                  f"{total:.3f} | {total * train.nnz / bs:.1f} |", flush=True)


if __name__ == "__main__":
    main()
