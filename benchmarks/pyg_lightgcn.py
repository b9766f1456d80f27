"""Epoch time of semrec's LightGCN against PyTorch Geometric's, side by side.

    pip install torch_geometric          # benchmark-only dependency (pure Python)
    python benchmarks/pyg_lightgcn.py --data ml-100k --split given:u1 --epochs 5
    python benchmarks/pyg_lightgcn.py --data gowalla --split given --epochs 2 --batches 40

Both models: 64-d, 3 layers, batch 2048, Adam lr 1e-3, BPR with one uniform negative
per positive and the LightGCN L2 term (1e-4) on the batch's layer-0 embeddings.

* semrec: ``LightGCN.loss`` over ``ranking_batches`` (the training loop's own parts).
* PyG: ``torch_geometric.nn.models.LightGCN`` with the plain loop of PyG's
  ``examples/lightgcn.py``: ``model(edge_index, edge_label_index)`` per batch and
  ``recommendation_loss(pos, neg, node_id=..., lambda_reg=1e-4)``.

The two run in one process, alternating epoch by epoch (semrec, PyG, semrec, ...), so
both see the same machine load. ``--batches N`` times only the first N batches of each
epoch and scales to a full epoch (for Gowalla, where a PyG epoch takes minutes).
Prints per-epoch seconds, the medians and the ratio PyG / semrec.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="ml-100k")
    ap.add_argument("--split", default="given:u1")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batches", type=int, default=0, help="time only this many batches per epoch (0: all)")
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from torch_geometric.nn.models import LightGCN as PygLightGCN

    from semrec.data.load import load_dataset
    from semrec.data.split import make_split
    from semrec.graph.interaction import InteractionGraph
    from semrec.models.lightgcn import LightGCN
    from semrec.train.sampler import NegativeSampler, n_batches, ranking_batches

    split = make_split(load_dataset(args.data), args.split)
    train = split.matrix("train")
    n_u, n_i = split.n_users, split.n_items
    total = n_batches(train.nnz, args.batch_size)
    timed = min(args.batches or total, total)
    print(f"{args.data} {args.split}: {n_u} users, {n_i} items, {train.nnz} train interactions, "
          f"{total} batches/epoch, timing {timed}; torch {torch.__version__}, {args.threads} thread(s)")

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    graph = InteractionGraph(train)
    ours = LightGCN(n_u, n_i, dim=64, layers=3, reg=1e-4)
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-3)
    sampler = NegativeSampler(train, rng)

    coo = train.tocoo()
    src = torch.as_tensor(coo.row, dtype=torch.long)
    dst = torch.as_tensor(coo.col, dtype=torch.long) + n_u
    edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])  # (2, 2·nnz)
    pyg = PygLightGCN(n_u + n_i, embedding_dim=64, num_layers=3)
    opt_pyg = torch.optim.Adam(pyg.parameters(), lr=1e-3)

    def epoch_ours() -> float:
        ours.train()
        t0 = time.perf_counter()
        for b, batch in enumerate(ranking_batches(train, args.batch_size, 1, rng, sampler)):
            if b == timed:
                break
            loss = ours.loss(batch, graph)["loss"]
            opt_ours.zero_grad(set_to_none=True)
            loss.backward()
            opt_ours.step()
        return (time.perf_counter() - t0) * total / timed

    def epoch_pyg() -> float:
        pyg.train()
        t0 = time.perf_counter()
        perm = torch.randperm(src.numel())
        for b in range(timed):
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            pos = torch.stack([src[idx], dst[idx]])
            neg = torch.stack([src[idx], torch.randint(n_u, n_u + n_i, (idx.numel(),))])
            label_index = torch.cat([pos, neg], dim=1)
            pos_rank, neg_rank = pyg(edge_index, label_index).chunk(2)
            loss = pyg.recommendation_loss(pos_rank, neg_rank, node_id=label_index.unique(), lambda_reg=1e-4)
            opt_pyg.zero_grad(set_to_none=True)
            loss.backward()
            opt_pyg.step()
        return (time.perf_counter() - t0) * total / timed

    times_ours, times_pyg = [], []
    for e in range(1, args.epochs + 1):
        times_ours.append(epoch_ours())
        times_pyg.append(epoch_pyg())
        print(f"epoch {e}: semrec {times_ours[-1]:.2f} s, PyG {times_pyg[-1]:.2f} s", flush=True)
    mo, mp = statistics.median(times_ours), statistics.median(times_pyg)
    print(f"median s/epoch: semrec {mo:.2f}, PyG {mp:.2f}; PyG / semrec = {mp / mo:.2f}")


if __name__ == "__main__":
    main()
