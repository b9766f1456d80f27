"""SemGraph: the language model's view of items fused with a graph neural network.

Per node (``d`` = ``dim``, ``t_i`` the frozen text embedding of item ``i``)::

    z_i  = MLP((t_i − c)/s)                           text, centred, projected into the graph space
    [a_id, a_txt] = softmax_k( qᵀ tanh(W x_k + b) + π_k )   attention over the views x ∈ {e_i, z_i}
    h_i⁰ = a_id · e_i + a_txt · z_i                   fused input (users: e_u, fused with
                                                      their profile text where there is one)

Propagation (``R̂`` the normalised interactions, ``S`` the row-normalised semantic
item–item kNN graph, ``β_i = knn_weight`` for items with training interactions and 1 for
items without)::

    U⁽ˡ⁺¹⁾ = R̂ V⁽ˡ⁾
    V⁽ˡ⁺¹⁾ = (1 − β_i) · R̂ᵀ U⁽ˡ⁾ + β_i · S V⁽ˡ⁾         semantic neighbours enrich the item side

with the layer mean as output (LightGCN). ``attention = "gat"`` replaces the fixed
``R̂`` weights by GAT-style edge attention ``a_uv = softmax_v(LeakyReLU(p·h_u + q·h_v))``.

Objective, ``L = α · L_sup + (1 − α) · L_ssl``:

* ``L_sup``: BPR on the final embeddings plus ``reg`` times the L2 penalty of the
  batch's fused layer-0 embeddings ``h⁰`` (``task = ranking``), or MSE of the rating head
  ``r̂_ui = μ + b_u + b_i + ⟨U_u, V_i⟩`` plus ``reg`` times the L2 penalty of the pair's
  ``h⁰`` and biases (``task = rating``, ``μ`` the training mean);
* ``L_ssl = (1 − text_weight) · [InfoNCE(U, U⁽¹⁾) + InfoNCE(V, V⁽¹⁾)]
  + text_weight · InfoNCE(z_i, sg(V_i))`` — the XSimGCL graph views (sign-aligned noise of
  norm ``eps`` at every layer, final vs first layer), and the text view against the
  graph view of the batch's items (``sg``: stop-gradient), which is what teaches ``z`` to
  stand in for an item the graph has not seen.

Design choices found on ml-100k validation (each one was a reason SemGraph stopped at
epoch 2-4 or trailed LightGCN):

* the contrastive weight: ``1 − α`` multiplies InfoNCE terms that start near
  ``log B ≈ 7`` each (BPR: 0.69) with gradients scaled by ``1/τ``; ``α = 0.96`` puts the
  graph contrast at XSimGCL's tuned ``λ ≈ 0.02``;
* the text MLP sees centred text (see :class:`TextProjection`), otherwise ``z`` starts
  as one shared vector;
* the gate starts at a text share of ``TEXT_PRIOR = 0.1`` (see :class:`ViewAttention`);
* the L2 term covers ``h⁰`` (so the text path), not only the ID tables: the MLP maps
  each item's own text vector to its own ``z`` and, unpenalised, memorised the training
  pairs (lower training loss than LightGCN, lower validation NDCG too);
* the text–graph contrast does not pull the graph view toward the text view.

Training drops ``e_i`` for a random ``id_dropout`` share of items (``h_i⁰ = z_i``), so
text alone can carry an item; items with no training interaction always use text alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from semrec.errors import ConfigError
from semrec.graph.interaction import InteractionGraph
from semrec.models.base import Batch, TrainableModel
from semrec.models.mf import batch_l2, bpr_scores, init_embedding
from semrec.models.xsimgcl import contrast_nodes, sign_aligned_noise
from semrec.models.losses import bpr_loss, info_nce, l2_penalty, mse_loss
from semrec.tune.space import GRAPH, Float, Param

#: Initial text share of the attention gate for nodes with both views (see
#: :class:`ViewAttention`): the ID view starts at 0.9.
TEXT_PRIOR = 0.1


@dataclass(frozen=True)
class SemGraphConfig:
    """Hyper-parameters of :class:`SemGraph`; field names are its keyword arguments.

    Args:
        dim: embedding size ``d`` (default 64).
        layers: propagation steps (default 3).
        reg: L2 weight on the batch's fused layer-0 embeddings ``h⁰`` (default 1e-3;
            1e-4 overfitted on ml-100k validation by epoch 20-25). For ``task = rating``
            use about 1e-2 (see ``benchmarks/tune_ml100k.py --preset semgraph-rating``).
        alpha: ``α`` in ``L = α·L_sup + (1−α)·L_ssl`` (default 1.0: no contrastive
            term). On ml-100k validation (NDCG@20) α = 1 peaked at 0.2613 (epoch 160)
            against 0.2503 (epoch 55) for α = 0.96 and 0.2512 (epoch 70) for α = 0.96
            with id_dropout 0.1; α = 0.8 (the old default) stopped at epoch 2. With
            contrast, use α = 0.96 (graph contrast at XSimGCL's tuned ``λ ≈ 0.02``): it
            converges 2-3x sooner, and on amazon-office it beat LightGCN and XSimGCL on
            validation (with knn_weight 0.2 and id_dropout 0.1).
        eps: norm of the per-layer noise of the contrastive graph views (default 0.2,
            XSimGCL's).
        temperature: InfoNCE temperature (default 0.2).
        text_weight: share of ``L_ssl`` on the text-vs-graph contrast (default 0.5).
        id_dropout: share of items trained from text alone in each step (default 0.0,
            the validated ml-100k setting). For cold start use 0.1: at α = 0.96 without
            it a cold item of the two-community toy was scored higher by the wrong
            community; at α = 1 both 0 and 0.1 score it right (0.1 by a wider margin).
            On ml-100k validation 0.1 cost nothing measurable at α = 0.96 (0.2512 vs
            0.2503).
        knn_weight: ``β``, the semantic neighbours' share of a warm item's update
            (default 0.0 on the same evidence; items without interactions always take
            their neighbours, ``β = 1``).
        hidden: width of the text projection MLP (default 64; 256 cost 4x the time of
            the MLP for no gain in validation).
        attention: ``gate`` (LightGCN weights) or ``gat`` (edge attention) (default ``gate``).
        task: ``ranking`` (BPR) or ``rating`` (MSE on the rating head); set together with
            ``train.task`` (default ``ranking``).
        ssl_nodes: the contrastive terms use at most this many of a batch's unique
            users and items, drawn at random (default 2048, as XSimGCL's).
    """

    dim: int = 64
    layers: int = 3
    reg: float = 1e-3
    alpha: float = 1.0
    eps: float = 0.2
    temperature: float = 0.2
    text_weight: float = 0.5
    id_dropout: float = 0.0
    knn_weight: float = 0.0
    hidden: int = 64
    attention: Literal["gate", "gat"] = "gate"
    task: Literal["ranking", "rating"] = "ranking"
    ssl_nodes: int = 2048

    def __post_init__(self) -> None:
        for name in ("dim", "layers", "hidden", "ssl_nodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("alpha", "text_weight", "id_dropout", "knn_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"model.{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.temperature <= 0 or self.eps < 0 or self.reg < 0:
            raise ConfigError("model.temperature must be > 0 and model.eps, model.reg >= 0")



#: ``semrec tune``'s search space for this model (see :mod:`semrec.tune.space`).
SEARCH_SPACE: dict[str, Param] = {
    **GRAPH,
    "model.alpha": Float(0.5, 1.0),
    "model.temperature": Float(0.1, 0.5),
    "model.text_weight": Float(0.0, 1.0),
    "model.id_dropout": Float(0.0, 0.5),
    "model.knn_weight": Float(0.0, 0.5),
}

class ViewAttention(nn.Module):
    """Softmax attention over K views of each node:
    ``a_k = softmax_k(qᵀ tanh(W x_k + b) + π_k)``.

    ``π`` (``prior``, learned) is a per-view offset. It starts at ``(0, log(p/(1−p)))`` for
    two views, so that the second (text) view starts with a share of about
    ``p = text_prior`` instead of one half. Why: with a convex mix
    ``h = (1 − a)·e + a·z`` every Adam step on the ID embedding ``e`` moves ``h`` by only
    ``(1 − a)`` of a step, and on ml-100k a half-speed ID view (plus a text view that
    starts as noise) left SemGraph well behind LightGCN at the same learning rate. The
    text view earns its share through the gate instead of being handed half of it.
    """

    def __init__(self, dim: int, n_views: int = 2, text_prior: float = 0.5) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.query = nn.Parameter(torch.randn(dim) / dim**0.5)
        prior = torch.zeros(n_views)
        if n_views == 2 and 0.0 < text_prior < 1.0:
            prior[1] = math.log(text_prior / (1.0 - text_prior))
        self.prior = nn.Parameter(prior)  # (K,)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # runs saved before ``prior`` existed: their gate had no offset (zeros)
        state_dict.setdefault(prefix + "prior", torch.zeros_like(self.prior))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, *views: torch.Tensor) -> torch.Tensor:
        """``views``: K tensors ``(n, d)``; returns weights ``(n, K)`` summing to 1."""
        logits = torch.stack([torch.tanh(self.proj(v)) @ self.query for v in views], dim=1)  # (n, K)
        return (logits + self.prior).softmax(dim=1)


class TextProjection(nn.Module):
    """``z = W₂ GELU(W₁ (t − c)/s + b₁) + b₂``: frozen text vectors into the graph space.

    ``c`` is the mean of the ``reference`` text vectors (the model's own items or users)
    and ``s`` the root mean square norm of ``t − c`` over them. Sentence-encoder vectors
    of one catalogue share a large common direction (on ml-100k the mean of the unit item
    vectors has norm 0.68): without centring, ``W₁ t`` is mostly that shared part and ``z``
    starts as nearly one vector for every item (its spread across items was 2% of its
    norm), so the text carried almost no signal into the graph. ``c`` and ``s`` are
    non-persistent buffers recomputed from the reference at construction, so the state
    dict is unchanged and new texts (cold start) go through the same centring.
    """

    def __init__(self, text_dim: int, hidden: int, dim: int, reference: torch.Tensor | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        center = torch.zeros(text_dim)
        scale = torch.tensor(1.0)
        if reference is not None and reference.shape[0] > 1:
            ref = reference.float()
            has_text = ref.abs().sum(1) > 0  # zero rows are "no text"
            if int(has_text.sum()) > 1:
                center = ref[has_text].mean(0)
                scale = (ref[has_text] - center).pow(2).sum(1).mean().sqrt().clamp_min(1e-6)
        self.register_buffer("center", center, persistent=False)  # (t,)
        self.register_buffer("scale", scale, persistent=False)  # ()

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.net((t - self.center) / self.scale)  # (n, dim)


def edge_attention_propagate(
    graph: InteractionGraph, u: torch.Tensor, v: torch.Tensor, p: torch.Tensor, q: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One GAT-style step over the bipartite graph.

    For an edge ``(u, i)``: ``e_ui = LeakyReLU(p·h_u + q·h_i)``; users aggregate
    ``Σ_i softmax_i(e_ui) V_i``, items ``Σ_u softmax_u(e_ui) U_u`` (softmax over each
    node's neighbours).
    """
    rows, cols = graph.edges  # (E,), (E,)
    logits = F.leaky_relu(u[rows] @ p + v[cols] @ q, 0.2)  # (E,)
    to_user = _segment_softmax(logits, rows, graph.n_users)  # (E,)
    to_item = _segment_softmax(logits, cols, graph.n_items)  # (E,)
    new_u = torch.zeros_like(u).index_add_(0, rows, to_user[:, None] * v[cols])  # (n_users, d)
    new_v = torch.zeros_like(v).index_add_(0, cols, to_item[:, None] * u[rows])  # (n_items, d)
    return new_u, new_v


def _segment_softmax(logits: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Softmax of ``logits`` within the groups given by ``index`` (one group per node)."""
    peak = torch.full((n,), float("-inf"), device=logits.device).scatter_reduce(
        0, index, logits, reduce="amax", include_self=True
    )
    ex = torch.exp(logits - peak[index])  # (E,)
    total = torch.zeros(n, device=logits.device).index_add_(0, index, ex)
    return ex / total[index].clamp_min(1e-12)


class SemGraph(TrainableModel):
    """Text ⊕ ID with attention, LightGCN (or edge-attention) propagation enriched by
    semantic item neighbours, XSimGCL and text-graph contrast, and a rating head.

    Args:
        n_users: number of users.
        n_items: number of items.
        item_text: ``(n_items, t)`` frozen text embeddings (zero rows: no text).
        user_text: ``(n_users, t)`` profile text embeddings, or ``None``.
        rating_mean: ``μ`` of the rating head (training mean; default 0).
        Other arguments: see :class:`SemGraphConfig`.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        item_text: torch.Tensor,
        user_text: torch.Tensor | None = None,
        rating_mean: torch.Tensor | float = 0.0,
        dim: int = 64,
        layers: int = 3,
        reg: float = 1e-3,
        alpha: float = 1.0,
        eps: float = 0.2,
        temperature: float = 0.2,
        text_weight: float = 0.5,
        id_dropout: float = 0.0,
        knn_weight: float = 0.0,
        hidden: int = 64,
        attention: str = "gate",
        task: str = "ranking",
        ssl_nodes: int = 2048,
    ) -> None:
        super().__init__()
        if item_text.shape[0] != n_items:
            raise ValueError(f"item_text has {item_text.shape[0]} rows for {n_items} items")
        self.n_users, self.n_items, self.dim, self.layers = n_users, n_items, dim, layers
        self.reg, self.alpha, self.eps, self.temperature = reg, alpha, eps, temperature
        self.text_weight, self.id_dropout, self.knn_weight = text_weight, id_dropout, knn_weight
        self.attention, self.task, self.ssl_nodes = attention, task, ssl_nodes
        self.register_buffer("item_text", item_text.float())  # (n_items, t)
        self.register_buffer("rating_mean", torch.as_tensor(float(rating_mean)))
        self.user_emb = init_embedding(n_users, dim)
        self.item_emb = init_embedding(n_items, dim)
        self.item_proj = TextProjection(item_text.shape[1], hidden, dim, item_text)
        self.item_gate = ViewAttention(dim, text_prior=TEXT_PRIOR)
        if user_text is not None:
            self.register_buffer("user_text", user_text.float())  # (n_users, t)
            self.user_proj = TextProjection(user_text.shape[1], hidden, dim, user_text)
            self.user_gate = ViewAttention(dim, text_prior=TEXT_PRIOR)
        else:
            self.user_text = None
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        if attention == "gat":
            self.att_user = nn.Parameter(torch.randn(dim) * 0.01)
            self.att_item = nn.Parameter(torch.randn(dim) * 0.01)

    # ------------------------------------------------------------------ layer 0
    def fuse(
        self, ids: torch.Tensor, text: torch.Tensor, gate: ViewAttention, text_only: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``h⁰ = a_id·e + a_txt·z`` ``(n, d)`` and the text share ``a_txt`` ``(n,)``.

        ``text_only`` ``(n,)`` bool marks nodes whose ID embedding is ignored.
        """
        a = gate(ids, text)  # (n, 2)
        a_txt = a[:, 1]
        if text_only is not None:
            a_txt = torch.where(text_only, torch.ones_like(a_txt), a_txt)
        return (1 - a_txt)[:, None] * ids + a_txt[:, None] * text, a_txt

    def text_view(self) -> torch.Tensor:
        """``z_i = MLP(t_i)`` for every item ``(n_items, d)``."""
        return self.item_proj(self.item_text)

    def layer0(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fused inputs ``(U⁰, V⁰)``, the text view ``z`` and the items' text share."""
        z = self.text_view()  # (n_items, d)
        cold = graph.item_degree.to(z.device) == 0  # (n_items,)
        if self.training and self.id_dropout > 0:
            cold = cold | (torch.rand(self.n_items, device=z.device) < self.id_dropout)
        v0, a_txt = self.fuse(self.item_emb.weight, z, self.item_gate, cold)
        u0 = self.user_emb.weight
        if self.user_text is not None:
            u0, _ = self.fuse(u0, self.user_proj(self.user_text), self.user_gate, None)
        return u0, v0, z, a_txt

    # ------------------------------------------------------------------ propagation
    def propagate(
        self, graph: InteractionGraph, u0: torch.Tensor, v0: torch.Tensor, noisy: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Layer-mean ``(U, V)`` and first-layer ``(U⁽¹⁾, V⁽¹⁾)``."""
        beta = None
        if graph.item_item is not None:
            warm = graph.item_degree.to(v0.device) > 0
            # cold items always take their semantic neighbours (β = 1), even at knn_weight 0
            if self.knn_weight > 0 or not bool(warm.all()):
                beta = torch.where(warm, torch.full_like(v0[:, 0], self.knn_weight), torch.ones_like(v0[:, 0]))
                beta = beta[:, None]  # (n_items, 1)
        us, vs = [u0], [v0]
        u, v = u0, v0
        for _ in range(self.layers):
            if self.attention == "gat":
                nu, nv = edge_attention_propagate(graph, u, v, self.att_user, self.att_item)
            else:
                nu = graph.users_from_items(v)  # (n_users, d)
                nv = graph.items_from_users(u)  # (n_items, d)
            if beta is not None:
                nv = (1 - beta) * nv + beta * graph.items_from_items(v)
            if noisy:
                nu, nv = sign_aligned_noise(nu, self.eps), sign_aligned_noise(nv, self.eps)
            u, v = nu, nv
            us.append(u)
            vs.append(v)
        return torch.stack(us).mean(0), torch.stack(vs).mean(0), us[1], vs[1]

    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        u0, v0, _, _ = self.layer0(graph)
        users, items, _, _ = self.propagate(graph, u0, v0, noisy=False)
        return users, items

    def text_share(self, graph: InteractionGraph) -> torch.Tensor:
        """``a_txt`` per item ``(n_items,)``: how much of its input comes from text."""
        with torch.no_grad():
            return self.layer0(graph)[3]

    # ------------------------------------------------------------------ objectives
    def loss(self, batch: Batch, graph: InteractionGraph) -> dict[str, torch.Tensor]:
        u0, v0, z, _ = self.layer0(graph)
        noisy = self.eps > 0 and self.alpha < 1
        users, items, users_1, items_1 = self.propagate(graph, u0, v0, noisy=noisy)
        bsz = int(batch.users.shape[0])
        # The L2 term is LightGCN's, on the batch's layer-0 ("ego") embeddings, and here
        # those are the fused h⁰ = (1 − a)·e + a·z, not the ID tables alone: the text MLP
        # maps each item's unique text vector to its own z, so it is as free as an
        # embedding table, and leaving it out of the penalty let it memorise the training
        # pairs (training loss below LightGCN's, validation below it too).
        if batch.ratings is not None:
            pred = self._rating(users, items, batch.users, batch.pos_items)
            sup_main = mse_loss(pred, batch.ratings)
            l2 = l2_penalty(u0[batch.users], v0[batch.pos_items], self.user_bias(batch.users),
                            self.item_bias(batch.pos_items), batch_size=bsz)
        else:
            pos, neg = bpr_scores(users, items, batch)  # (B,), (B, n_neg)
            sup_main = bpr_loss(pos, neg)
            l2 = batch_l2(u0, v0, batch)
        sup = sup_main + self.reg * l2
        terms = {"sup": sup.detach(), "l2": l2.detach()}
        if self.alpha < 1:
            u = contrast_nodes(batch.users, self.ssl_nodes)  # (B_u,)
            i = contrast_nodes(batch.pos_items, self.ssl_nodes)  # (B_i,)
            graph_ssl = info_nce(users[u], users_1[u], self.temperature) + info_nce(
                items[i], items_1[i], self.temperature)
            # stop-gradient on the graph view: the contrast teaches z to stand in for the
            # item's collaborative embedding (cold start); pulling warm items' graph
            # embeddings toward the frozen encoder's geometry only costs ranking quality
            text_ssl = info_nce(z[i], items[i].detach(), self.temperature)
            ssl = (1 - self.text_weight) * graph_ssl + self.text_weight * text_ssl
            terms.update(ssl=ssl.detach(), ssl_graph=graph_ssl.detach(), ssl_text=text_ssl.detach())
            loss = self.alpha * sup + (1 - self.alpha) * ssl
        else:
            loss = sup
        return {"loss": loss, **terms}

    def _rating(self, users: torch.Tensor, items: torch.Tensor, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        dot = (users[u] * items[i]).sum(-1)  # (B,)
        return self.rating_mean + self.user_bias(u).squeeze(-1) + self.item_bias(i).squeeze(-1) + dot

    @torch.no_grad()
    def predict_ratings(self, users, items, graph: InteractionGraph) -> np.ndarray:
        """Predicted ratings for aligned arrays of user and item indices."""
        dev = self.user_emb.weight.device
        u_all, i_all = self(graph)
        u = torch.as_tensor(users, dtype=torch.long, device=dev)
        i = torch.as_tensor(items, dtype=torch.long, device=dev)
        return self._rating(u_all, i_all, u, i).cpu().numpy()
