"""Mini-batch training of LightGCN-style models with neighbour sampling.

Where :func:`semrec.train.loop.fit` propagates over the whole graph for every batch (cost
and memory grow with the graph), :func:`fit_neighbor` samples, per batch, the L-hop
neighbourhood of the batch's users, positives and negatives
(:class:`semrec.graph.sampling.NeighborSampler`, full-graph degrees in the normalisation),
slices the embedding tables to that neighbourhood, runs LightGCN's propagation on it
(:func:`semrec.graph.sampling.propagate_block`) and takes the same loss as
:class:`semrec.models.lightgcn.LightGCN`:

``loss = BPR(U_u·V_i, U_u·V_j) + reg · Σ(||e⁰_u||² + ||e⁰_i||² + ||e⁰_j||²)/(2B)``.

Evaluation is full-graph, through the model's own ``scorer(graph)`` (one propagation
without gradients, then user batches sized from a memory budget).

The model needs ``user_emb`` and ``item_emb`` (``nn.Embedding``), ``layers`` and ``reg``
(LightGCN has them); the number of hops is ``len(fanouts)`` and must equal ``layers``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from semrec.data.split import Split
from semrec.errors import ConfigError
from semrec.graph.interaction import InteractionGraph
from semrec.graph.sampling import NeighborSampler, propagate_block
from semrec.models.base import Batch
from semrec.models.losses import bpr_loss, l2_penalty
from semrec.train.loop import TrainConfig, TrainResult, fit, resolve_device


def block_loss(model: torch.nn.Module, sampler: NeighborSampler, batch: Batch,
               device: torch.device | str = "cpu", sparse_grad: bool = False) -> dict[str, torch.Tensor]:
    """LightGCN's BPR + L2 loss of ``batch`` from a sampled block (keys ``loss``, ``bpr``,
    ``l2``, and ``block_nodes`` / ``block_edges`` as 0-dim tensors, for logging).

    ``sparse_grad``: the embedding tables get sparse gradients (only the block's rows), for
    :class:`torch.optim.SparseAdam`; default false (dense gradients, plain Adam)."""
    neg = batch.neg_items if batch.neg_items.dim() == 2 else batch.neg_items.unsqueeze(1)  # (B, n_neg)
    block = sampler.sample(batch.users, batch.pos_items, neg).to(device)
    u0 = F.embedding(block.users, model.user_emb.weight, sparse=sparse_grad)  # (|N_L users|, d) ego rows
    v0 = F.embedding(block.items, model.item_emb.weight, sparse=sparse_grad)  # (|N_L items|, d)
    users, items = propagate_block(block, u0, v0)  # seeds only
    su, (sp_, sn) = block.seed_users, block.seed_items
    u = users[su]  # (B, d)
    pos = (u * items[sp_]).sum(-1)  # (B,)
    negs = (u.unsqueeze(1) * items[sn]).sum(-1)  # (B, n_neg)
    bpr = bpr_loss(pos, negs)
    l2 = l2_penalty(u0[su], v0[sp_], v0[sn], batch_size=int(su.shape[0]))
    return {
        "loss": bpr + model.reg * l2, "bpr": bpr.detach(), "l2": l2.detach(),
        "block_nodes": torch.tensor(float(block.n_nodes)), "block_edges": torch.tensor(float(block.n_edges)),
    }


def fit_neighbor(
    model: torch.nn.Module,
    split: Split,
    config: TrainConfig,
    fanouts: Sequence[int] = (10, 10, 10),
    *,
    graph: InteractionGraph | None = None,
    log_path: Path | None = None,
    max_batches: int | None = None,
    validate: bool = True,
    sparse_grad: bool = False,
) -> TrainResult:
    """Train ``model`` on ``split.train`` with neighbour-sampled mini-batches.

    Same epochs, batches (every training interaction once per epoch, uniform negatives),
    optimiser (Adam, ``config.lr``, ``config.weight_decay``), validation (``config.metric``
    on ``split.valid`` every ``config.eval_every`` epochs, full graph), early stopping
    (``config.patience``) and ``config.max_seconds`` as :func:`semrec.train.loop.fit`; the
    best validation epoch's weights are restored. Single process only.

    Args:
        model: a LightGCN-style model (see the module notes).
        split: the data.
        config: training settings (``task`` must be ``ranking``).
        fanouts: neighbours per node at each hop, hop 1 first; ``len(fanouts)`` must equal
            ``model.layers``. Default ``(10, 10, 10)``.
        graph: the full training graph for evaluation (default: built from ``split``).
        log_path: one JSON line per epoch is appended here (as ``fit`` does, plus the mean
            ``block_nodes`` and ``block_edges`` per batch).
        max_batches: stop each epoch after this many batches (for timing; default all).
        validate: validate on ``split.valid`` (default true, when it is non-empty).
        sparse_grad: sparse gradients of the embedding tables and
            :class:`torch.optim.SparseAdam` (lazy Adam: only the block's rows are updated and
            their moments advanced), so a step costs the block, not the tables; default false
            (dense Adam, the same optimiser as :func:`~semrec.train.loop.fit`).
            ``config.weight_decay`` must be 0 with it.
    """
    if config.task != "ranking":
        raise ConfigError("neighbour-sampled training is for ranking (BPR) only")
    fanouts = [int(f) for f in fanouts]
    if len(fanouts) != model.layers:
        raise ConfigError(f"fanouts {fanouts} give {len(fanouts)} hops but the model has {model.layers} layers")
    device = resolve_device(config.device)
    neighbors = NeighborSampler(split.matrix("train"), fanouts, np.random.default_rng(config.seed + 1))
    optimizer = None
    if sparse_grad:
        if config.weight_decay:
            raise ConfigError("sparse_grad uses SparseAdam, which has no weight decay; set weight_decay=0")
        model.to(device)
        optimizer = torch.optim.SparseAdam(list(model.parameters()), lr=config.lr)
    return fit(
        model, split, config, graph=graph, log_path=log_path, device=device, max_batches=max_batches,
        validate=validate, optimizer=optimizer,
        # the sampler works on host arrays; the block moves to the device inside block_loss
        batch_loss=lambda batch: block_loss(model, neighbors, batch.to("cpu"), device, sparse_grad),
    )
