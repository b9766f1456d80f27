"""LightGCN (He et al., SIGIR 2020): linear propagation over the normalised graph.

One layer is ``U⁽ˡ⁺¹⁾ = R̂ V⁽ˡ⁾``, ``V⁽ˡ⁺¹⁾ = R̂ᵀ U⁽ˡ⁾`` with
``R̂ = D_u^{-1/2} R D_i^{-1/2}`` (:attr:`InteractionGraph.norm_ui`); the final
embeddings are the mean over layers ``0..L``. This is the paper's
``E⁽ˡ⁺¹⁾ = D^{-1/2} A D^{-1/2} E⁽ˡ⁾`` on the square ``(n_users + n_items)`` adjacency
``A = [[0, R], [Rᵀ, 0]]``, written blockwise so users and items keep their own indices.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from semrec.errors import ConfigError
from semrec.graph.interaction import InteractionGraph
from semrec.models.base import Batch, TrainableModel
from semrec.models.mf import (
    batch_l2,
    check_non_negative,
    check_positive,
    init_embedding,
    ranking_loss,
    scored,
)
from semrec.models.space import GRAPH, Param

#: ``perturb(x)`` returns a perturbed copy of one layer's ``(n, d)`` output.
Perturb = Callable[[torch.Tensor], torch.Tensor]


def propagate_layers(
    graph: InteractionGraph,
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    layers: int,
    perturb: Perturb | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every layer's output of LightGCN propagation, layer 0 (the input) first.

    ``U⁽ˡ⁺¹⁾ = R̂ V⁽ˡ⁾`` and ``V⁽ˡ⁺¹⁾ = R̂ᵀ U⁽ˡ⁾`` as explicit sparse products with
    ``graph.norm_ui`` ``(n_users, n_items)`` and ``graph.norm_iu`` ``(n_items, n_users)``;
    the backward of each product uses the other matrix
    (:meth:`InteractionGraph.users_from_items`, :meth:`InteractionGraph.items_from_users`).

    Args:
        graph: the training graph.
        user_emb: ``(n_users, d)`` layer-0 user embeddings.
        item_emb: ``(n_items, d)`` layer-0 item embeddings.
        layers: number of propagation steps ``L >= 0``.
        perturb: applied to each propagated layer ``1..L`` before it feeds the next
            one (XSimGCL's noise); default ``None``, no perturbation.

    Returns:
        ``(users, items)``: two lists of ``L + 1`` tensors, ``(n_users, d)`` and
        ``(n_items, d)``.
    """
    if layers < 0:
        raise ValueError(f"layers: expected an int >= 0, got {layers}")
    if user_emb.shape[0] != graph.n_users or item_emb.shape[0] != graph.n_items:
        raise ValueError(
            f"embeddings ({user_emb.shape[0]} users, {item_emb.shape[0]} items) do not match the "
            f"graph ({graph.n_users} users, {graph.n_items} items)"
        )
    us, vs = [user_emb], [item_emb]
    u, v = user_emb, item_emb
    for _ in range(layers):
        u, v = (
            graph.users_from_items(v),  # R̂ V (n_users, d)
            graph.items_from_users(u),  # R̂ᵀ U (n_items, d)
        )
        if perturb is not None:
            u, v = perturb(u), perturb(v)
        us.append(u)
        vs.append(v)
    return us, vs


def propagate(
    graph: InteractionGraph, user_emb: torch.Tensor, item_emb: torch.Tensor, layers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """LightGCN's final embeddings: the mean of layers ``0..L``.

    ``U = 1/(L+1) Σ_{l=0..L} U⁽ˡ⁾``, ``V = 1/(L+1) Σ_{l=0..L} V⁽ˡ⁾`` (see
    :func:`propagate_layers`; ``layers = 0`` returns the inputs).

    Args:
        graph: the training graph (``norm_ui``, ``norm_iu``).
        user_emb: ``(n_users, d)`` layer-0 user embeddings.
        item_emb: ``(n_items, d)`` layer-0 item embeddings.
        layers: number of propagation steps ``L >= 0``.

    Returns:
        ``(U (n_users, d), V (n_items, d))``.
    """
    us, vs = propagate_layers(graph, user_emb, item_emb, layers)
    return torch.stack(us).mean(0), torch.stack(vs).mean(0)  # (n_users, d), (n_items, d)


@dataclass(frozen=True)
class LightGCNConfig:
    """Hyper-parameters of :class:`LightGCN`, the one place they are declared.

    Args:
        dim: embedding size ``d``; default 64.
        layers: propagation steps ``L``; default 3.
        reg: weight of the L2 penalty on the batch's layer-0 embeddings; default 1e-3
            (see BENCHMARKS.md, ml-100k).
        loss: ``bpr`` (default) or ``softmax`` (:func:`~semrec.models.mf.ranking_loss`).
        temperature: ``τ`` of the softmax over cosine scores; default 0.1.
    """

    dim: int = 64
    layers: int = 3
    reg: float = 1e-3
    loss: Literal["bpr", "softmax"] = "bpr"
    temperature: float = 0.1

    def __post_init__(self) -> None:
        check_positive("model.dim", self.dim, error=ConfigError)
        check_non_negative("model.layers", self.layers, error=ConfigError)
        check_non_negative("model.reg", self.reg, error=ConfigError)
        check_positive("model.temperature", self.temperature, error=ConfigError)


#: ``semrec tune``'s search space for this model (see :mod:`semrec.models.space`).
SEARCH_SPACE: dict[str, Param] = dict(GRAPH)

class LightGCN(TrainableModel):
    """LightGCN with BPR or a sampled softmax.

    ``loss = BPR(U_u·V_i, U_u·V_j) + reg · Σ(||e⁰_u||² + ||e⁰_i||² + ||e⁰_j||²)/(2B)``,
    the penalty on the layer-0 ("ego") embeddings of the batch, as in the paper (the
    softmax replaces the first term, see :func:`~semrec.models.mf.ranking_loss`).

    Args:
        n_users: number of users.
        n_items: number of items.
        hyper: the fields of :class:`LightGCNConfig`.
    """

    def __init__(self, n_users: int, n_items: int, **hyper) -> None:
        super().__init__()
        check_positive("n_users", n_users)
        check_positive("n_items", n_items)
        self.config = cfg = LightGCNConfig(**hyper)
        self.n_users, self.n_items, self.dim = n_users, n_items, cfg.dim
        self.layers, self.reg = cfg.layers, cfg.reg
        self.user_emb = init_embedding(n_users, cfg.dim)
        self.item_emb = init_embedding(n_items, cfg.dim)

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer-mean embeddings ``(n_users, d)``, ``(n_items, d)`` (unit rows when
        trained with the softmax)."""
        users, items = propagate(graph, self.user_emb.weight, self.item_emb.weight, self.layers)
        return scored(users, items, self.config.loss)

    def loss(self, batch: Batch, graph: InteractionGraph) -> dict[str, torch.Tensor]:
        """``ranking loss + reg · l2``; keys ``loss``, the objective's name, ``l2`` (the
        unweighted penalty)."""
        cfg = self.config
        users, items = propagate(graph, self.user_emb.weight, self.item_emb.weight, self.layers)
        sup = ranking_loss(users, items, batch, cfg.loss, cfg.temperature)
        l2 = batch_l2(self.user_emb.weight, self.item_emb.weight, batch)  # ego embeddings
        return {"loss": sup + self.reg * l2, cfg.loss: sup.detach(), "l2": l2.detach()}
