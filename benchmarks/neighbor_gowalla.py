"""Accuracy cost of neighbour-sampled training against full-graph training, on Gowalla.

Both train LightGCN (64-d, 3 layers, L2 weight ``--reg``, default 1e-3 as LightGCNConfig) with BPR,
Adam, the same seed, batch size, learning rate and epoch / time budget on the ``given``
split, without validation during training (the budget is too short for early stopping to
matter); then test Recall@20 / NDCG@20, full ranking over all items (history excluded):

* ``full``: :func:`semrec.train.loop.fit` (full-graph propagation every batch);
* ``neighbor``: :func:`semrec.train.neighbor.fit_neighbor` with ``--fanouts`` (sampled
  L-hop blocks, full-graph degrees).

Each mode runs in its own process (``--mode``), one thread:

    OMP_NUM_THREADS=1 python benchmarks/neighbor_gowalla.py --mode full --epochs 3 --max-seconds 420
    OMP_NUM_THREADS=1 python benchmarks/neighbor_gowalla.py --mode neighbor --epochs 3 --max-seconds 420
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("full", "neighbor"), required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-seconds", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=8192)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--reg", type=float, default=1e-3)
    p.add_argument("--fanouts", default="10,10,10")
    p.add_argument("--out", default=None, help="append the result as a JSON line here")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)
    from semrec.data.load import load_dataset
    from semrec.data.split import make_split
    from semrec.evaluate.ranking import evaluate_ranking
    from semrec.graph.interaction import InteractionGraph
    from semrec.models.lightgcn import LightGCN
    from semrec.train.loop import TrainConfig, fit
    from semrec.train.neighbor import fit_neighbor

    split = make_split(load_dataset("gowalla"), "given")
    # no validation during training: same budget for both, test measured once at the end
    split_nv = replace(split, valid=split.valid.take(np.zeros(0, dtype=np.int64)))
    torch.manual_seed(0)
    model = LightGCN(split.n_users, split.n_items, dim=64, layers=3, reg=args.reg)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=0,
                      max_seconds=args.max_seconds, progress=False, tensorboard=False, device="cpu")
    graph = InteractionGraph(split.matrix("train"))
    t0 = time.perf_counter()
    if args.mode == "full":
        res = fit(model, split_nv, cfg, graph=graph)
    else:
        fan = [int(x) for x in args.fanouts.split(",")]
        res = fit_neighbor(model, split_nv, cfg, fanouts=fan, graph=graph)
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    metrics = evaluate_ranking(model.scorer(graph), split, "test", ks=(20,))
    row = {
        "mode": args.mode, "fanouts": args.fanouts if args.mode == "neighbor" else None,
        "epochs_run": res.epochs_run, "batch_size": args.batch_size, "lr": args.lr, "reg": args.reg,
        "train_s": round(res.train_s, 1), "s_per_epoch": [round(h["train_s"], 1) for h in res.history],
        "loss_per_epoch": [round(h["loss"], 4) for h in res.history],
        "block_nodes_mean": [round(h["block_nodes"]) for h in res.history if "block_nodes" in h],
        "block_edges_mean": [round(h["block_edges"]) for h in res.history if "block_edges" in h],
        "recall@20": round(metrics["recall@20"], 4), "ndcg@20": round(metrics["ndcg@20"], 4),
        "eval_s": round(time.perf_counter() - t1, 1), "wall_s": round(wall, 1),
        "load_avg_1m": os.getloadavg()[0],
    }
    print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
