"""XSimGCL (Yu et al., "XSimGCL: Towards Extremely Simple Graph Contrastive Learning
for Recommendation", TKDE 2023).

LightGCN propagation in which, during training, every propagated layer gets a small
random noise that keeps the sign of each coordinate:

``e⁽ˡ⁾ ← e⁽ˡ⁾ + ε · sign(e⁽ˡ⁾) ⊙ normalize(Δ)``, ``Δ ~ U(0, 1)^d`` per node and layer,

so each node moves by exactly ``ε`` (L2) within its own orthant. One perturbed forward
pass gives both contrastive views: the final embeddings (mean of layers ``1..L``) and
the output of layer ``cl_layer`` ("cross-layer" contrast). The objective is

``L = BPR + reg · l2 + λ · (InfoNCE_τ(users) + InfoNCE_τ(items))``

over the batch's unique users and unique positive items (at most ``ssl_nodes`` of each),
``λ = ssl_weight``.

**Relation to the project formula** ``L_α = α·L_sup + (1−α)·L_ssl`` with
``L_sup = BPR + reg · l2`` and ``L_ssl`` the InfoNCE sum: for ``α = 1/(1+λ)``
(equivalently ``λ = (1−α)/α``), ``L = (1+λ) · L_α`` exactly. Both objectives have the
same minimisers; with plain SGD, learning rate ``η`` on ``L`` is the same update as
learning rate ``(1+λ)·η`` on ``L_α``. Adam is invariant to a constant positive scale
of the loss (up to its ``eps`` term), so with Adam the two give the same run at the
same learning rate. The default ``λ = 0.02`` is ``α = 1/1.02 ≈ 0.980``.

**Why λ = 0.02 and not SELFRec's 0.2** (tuned on ml-100k ``given:u1`` validation):
the InfoNCE terms start near ``2·log(B) ≈ 14`` against BPR's 0.69 and their gradient
carries the factor ``1/τ = 5``; on a small dense graph where nearly every user is in
every batch, ``λ = 0.2`` made the uniformity term the objective (validation NDCG@20
peaked at epoch 4 and fell while the loss kept dropping). ``λ = 0.02`` trains
properly and converges faster than LightGCN (valid NDCG@20 0.2318 at epoch 15 against
0.2071), peaking at 0.2584 (epoch 90).

Differences from LightGCN kept from the paper's reference code (SELFRec): the final
embeddings average layers ``1..L`` without the input layer 0, and the item view of the
contrastive loss uses the batch's positive items. The L2 penalty is LightGCN's, on the
layer-0 embeddings of the batch. With ``self.training`` false there is no noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from semrec.errors import ConfigError
from semrec.graph.interaction import InteractionGraph
from semrec.models.base import Batch, TrainableModel
from semrec.models.lightgcn import propagate_layers
from semrec.models.losses import info_nce
from semrec.models.mf import (
    batch_l2,
    check_non_negative,
    check_positive,
    init_embedding,
    ranking_loss,
    scored,
)
from semrec.models.space import GRAPH, Float, Param


def sign_aligned_noise(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``x + eps · sign(x) ⊙ normalize(U(0,1))``, row-wise L2 normalisation.

    Args:
        x: ``(n, d)`` one layer's embeddings.
        eps: the L2 norm of each row's noise (rows with a zero coordinate get less).
    """
    # sign(x) has zero gradient, so the noise is a constant offset for autograd: built
    # without the graph, its backward is the identity instead of four (n, d) passes
    with torch.no_grad():
        noise = F.normalize(torch.rand_like(x), dim=-1).mul_(torch.sign(x)).mul_(eps)  # (n, d)
    return x + noise  # (n, d)


def contrast_nodes(ids: torch.Tensor, cap: int) -> torch.Tensor:
    """The batch's unique nodes for an in-batch InfoNCE, at most ``cap`` of them.

    InfoNCE builds a ``(B, B)`` similarity matrix, so its cost grows with the square of
    the number of nodes: at a Gowalla batch of 8192 (about 6,200 unique users and 6,600
    items) a step took 1.4 s uncapped against 0.46 s capped at 2048
    (``benchmarks/profile_xsimgcl_step.py``). Above ``cap`` a uniform random subset is
    kept; at or below it every unique node is, with no random draw.

    Args:
        ids: ``(B,)`` node indices of the batch (repeats allowed).
        cap: the largest number of nodes kept, ``>= 1``.

    Returns:
        ``(min(B_unique, cap),)`` sorted unique indices, or a random subset of them.
    """
    nodes = torch.unique(ids)  # (B_u,)
    if nodes.shape[0] <= cap:
        return nodes
    return nodes[torch.randperm(nodes.shape[0], device=nodes.device)[:cap]]  # (cap,)


@dataclass(frozen=True)
class XSimGCLConfig:
    """Hyper-parameters of :class:`XSimGCL`, the one place they are declared.

    Args:
        dim: embedding size ``d``; default 64.
        layers: propagation steps ``L >= 1``; default 3.
        reg: weight of the L2 penalty on the batch's layer-0 embeddings; default 1e-4.
        eps: norm of the per-layer noise; default 0.2.
        ssl_temperature: InfoNCE temperature; default 0.2.
        ssl_weight: ``λ``, weight of the contrastive loss; default 0.02 (see the module
            doc for why not 0.2).
        cl_layer: which layer (1-based, ``<= layers``) is contrasted with the final
            embeddings; default 1.
        ssl_nodes: the contrastive loss uses at most this many of a batch's unique
            users (and as many unique items), drawn at random (:func:`contrast_nodes`);
            default 2048, every node of a batch of 2048.
        loss: ``bpr`` (default) or ``softmax`` (:func:`~semrec.models.mf.ranking_loss`).
        temperature: ``τ`` of the softmax over cosine scores; default 0.1.
    """

    dim: int = 64
    layers: int = 3
    reg: float = 1e-4
    eps: float = 0.2
    ssl_temperature: float = 0.2
    ssl_weight: float = 0.02
    cl_layer: int = 1
    ssl_nodes: int = 2048
    loss: Literal["bpr", "softmax"] = "bpr"
    temperature: float = 0.1

    def __post_init__(self) -> None:
        p, e = "model.", ConfigError
        check_positive(p + "dim", self.dim, e)
        check_positive(p + "layers", self.layers, e)
        check_non_negative(p + "reg", self.reg, e)
        check_non_negative(p + "eps", self.eps, e)
        check_positive(p + "ssl_temperature", self.ssl_temperature, e)
        check_non_negative(p + "ssl_weight", self.ssl_weight, e)
        check_positive(p + "ssl_nodes", self.ssl_nodes, e)
        check_positive(p + "temperature", self.temperature, e)
        if not 1 <= self.cl_layer <= self.layers:
            raise e(f"{p}cl_layer: expected an int in 1..layers={self.layers}, got {self.cl_layer!r}")


#: ``semrec tune``'s search space for this model (see :mod:`semrec.models.space`).
SEARCH_SPACE: dict[str, Param] = {
    **GRAPH,
    "model.eps": Float(0.05, 0.5),
    "model.ssl_temperature": Float(0.1, 0.5),
    "model.ssl_weight": Float(0.01, 1.0, log=True),
}

class XSimGCL(TrainableModel):
    """XSimGCL: LightGCN + sign-aligned noise + cross-layer InfoNCE (see module doc).

    Args:
        n_users: number of users.
        n_items: number of items.
        hyper: the fields of :class:`XSimGCLConfig`.
    """

    def __init__(self, n_users: int, n_items: int, **hyper) -> None:
        super().__init__()
        check_positive("n_users", n_users)
        check_positive("n_items", n_items)
        self.config = cfg = XSimGCLConfig(**hyper)
        self.n_users, self.n_items, self.dim, self.layers = n_users, n_items, cfg.dim, cfg.layers
        self.reg, self.eps, self.temperature = cfg.reg, cfg.eps, cfg.ssl_temperature
        self.ssl_weight, self.cl_layer, self.ssl_nodes = cfg.ssl_weight, cfg.cl_layer, cfg.ssl_nodes
        self.user_emb = init_embedding(n_users, cfg.dim)
        self.item_emb = init_embedding(n_items, cfg.dim)

    def views(
        self, graph: InteractionGraph
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Final and layer-``cl_layer`` embeddings, perturbed when ``self.training``.

        Returns:
            ``(U (n_users, d), V (n_items, d), U_cl (n_users, d), V_cl (n_items, d))``.
        """
        perturb = (lambda x: sign_aligned_noise(x, self.eps)) if self.training and self.eps > 0 else None
        us, vs = propagate_layers(graph, self.user_emb.weight, self.item_emb.weight, self.layers, perturb)
        users = torch.stack(us[1:]).mean(0)  # (n_users, d)
        items = torch.stack(vs[1:]).mean(0)  # (n_items, d)
        return users, items, us[self.cl_layer], vs[self.cl_layer]

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """Final embeddings ``(n_users, d)``, ``(n_items, d)`` (unit rows when trained with
        the softmax); noisy only in training."""
        users, items, _, _ = self.views(graph)
        return scored(users, items, self.config.loss)

    def loss(self, batch: Batch, graph: InteractionGraph) -> dict[str, torch.Tensor]:
        """``ranking loss + reg · l2 + ssl_weight · ssl``; keys ``loss``, the objective's
        name, ``l2``, ``ssl`` (``l2`` and ``ssl`` unweighted)."""
        cfg = self.config
        users, items, users_cl, items_cl = self.views(graph)
        sup = ranking_loss(users, items, batch, cfg.loss, cfg.temperature)
        l2 = batch_l2(self.user_emb.weight, self.item_emb.weight, batch)  # ego embeddings
        u = contrast_nodes(batch.users, self.ssl_nodes)  # (B_u,)
        i = contrast_nodes(batch.pos_items, self.ssl_nodes)  # (B_i,)
        ssl = info_nce(users[u], users_cl[u], self.temperature) + info_nce(
            items[i], items_cl[i], self.temperature
        )
        loss = sup + self.reg * l2 + self.ssl_weight * ssl
        return {"loss": loss, cfg.loss: sup.detach(), "l2": l2.detach(), "ssl": ssl.detach()}
