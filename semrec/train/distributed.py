"""Data-parallel training on ``torch.distributed``: one process per device, launched by
``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous).

What data parallelism means here (see :func:`semrec.train.loop.fit`):

* every rank holds the whole model and the whole graph, and draws the same shuffled
  epoch and the same negatives from the same seed; rank ``r`` then keeps every
  ``world_size``-th interaction (``[r::world_size]``) and trains on batches of
  ``batch_size / world_size``, so the ranks' batches together are exactly the
  single-process batch;
* the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`, which
  averages gradients across ranks in buckets during the backward pass: for a loss that is
  a mean over the batch (BPR, MSE, the L2 term) the update equals the single-process one
  up to floating-point order, so the same config trains the same model;
* rank 0 validates and decides early stopping (broadcast to the others), and only rank 0
  writes the run folder and the logs.

Backends: NCCL when the process has a CUDA device, gloo on CPU. Multi-node runs use
torchrun's usual ``--nnodes``, ``--node-rank``, ``--rdzv-endpoint`` flags; nothing here
depends on the node count.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from semrec.errors import ConfigError


@dataclass(frozen=True)
class Context:
    """Where this process sits in the job; the default is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        return (self.rank, self.world_size)

    def local_batch(self, batch_size: int) -> int:
        """This rank's share of a global batch; the global batch must divide evenly."""
        if batch_size % self.world_size:
            raise ConfigError(
                f"train.batch_size {batch_size} does not divide among {self.world_size} processes; "
                f"use a multiple of {self.world_size}"
            )
        return batch_size // self.world_size


def context() -> Context:
    """The job this process belongs to, joining its process group on first call.

    Reads torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without them (or with
    ``WORLD_SIZE=1``) this is a single process and nothing is initialised.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
    return Context(rank, world, local)


def device_for(ctx: Context, requested: torch.device) -> torch.device:
    """One GPU per process under NCCL (``cuda:LOCAL_RANK``); otherwise as requested."""
    if ctx.enabled and requested.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return requested


class _LossModule(nn.Module):
    """``forward(batch) = model.loss(batch, graph)``: the call DDP must see, so that its
    gradient hooks are armed for each step."""

    def __init__(self, model: nn.Module, graph: Any) -> None:
        super().__init__()
        self.model = model
        self.graph = graph

    def forward(self, batch):
        return self.model.loss(batch, self.graph)


def loss_function(model: nn.Module, graph: Any, ctx: Context, device: torch.device):
    """``batch -> loss terms``; gradients are averaged across ranks when ``ctx`` is a job."""
    if not ctx.enabled:
        return lambda batch: model.loss(batch, graph)
    ids = [device.index] if device.type == "cuda" else None
    # some parameters take no gradient in a given configuration (the rating head while
    # ranking, the edge-attention vectors without graph_attention): DDP must not wait for them
    ddp = nn.parallel.DistributedDataParallel(_LossModule(model, graph), device_ids=ids,
                                              find_unused_parameters=True)
    return ddp


def broadcast(ctx: Context, value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not ctx.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def finish(ctx: Context) -> None:
    """Leave the process group (all ranks together)."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
