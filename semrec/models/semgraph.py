"""SemGraph: items from what they are, users from what they did.

Items, text first (``t_i`` the frozen language-model vector of item ``i``)::

    z_i  = MLP(x_i) + P x_i, x_i = (t_i − c)/s  text, centred, projected to d dimensions
                                               (the linear path ``P`` with ``text_skip``)
    h_i⁰ = z_i + e_i                           plus a learned ID residual (``ids``), zero at
                                               the start, dropped for a random ``id_dropout``
                                               share of items in each step and always for
                                               items without training interactions

Graph (``R̂`` the normalised interactions, ``S`` the row-normalised semantic kNN graph,
``T`` the row-normalised item-transition graph, ``β = knn_weight``, ``γ =
transition_weight``; items without interactions take ``β = 1``)::

    U⁰ = mean of h⁰ over the user's training items (+ e_u with ``user_ids``)
    U⁽ˡ⁺¹⁾ = R̂ V⁽ˡ⁾
    V⁽ˡ⁺¹⁾ = (1 − β − γ) R̂ᵀ U⁽ˡ⁾ + β S V⁽ˡ⁾ + γ T V⁽ˡ⁾
    v_i = normalise(mean_l V_i⁽ˡ⁾)              (LightGCN's layer mean)

Users, from their history ``v_{j₁}, …, v_{j_n}`` (oldest first; see
:mod:`semrec.models.towers`): ``u = normalise(tower(v_{j₁..j_n}) + e_u + MLP_u(t_u))``
with the ID residual ``e_u`` (``user_ids``) and the profile text ``t_u`` (where the data
has user text) optional. The user is a function of the history, so a test-time history
(train + valid), a served user's live events and a new user all go through the same code.

Score: ``s(u, i) = ⟨u, v_i⟩ / τ + b_i`` (cosine; ``normalize = false`` uses the raw
inner product; the item prior ``b_i`` only with ``item_prior``).

Objective, ``L = α·L_sup + (1 − α)·L_ssl``:

* ``L_sup`` (``task = ranking``): with ordered data (``Split.sequential``) every
  position of every training sequence predicts the next item from the items before it
  (causal); otherwise each of a user's items is predicted from the others (set). The
  loss is a softmax over the catalogue's trained items (``loss = softmax``; sampled with
  ``negatives`` shared negatives when ``negatives > 0``) or BPR against one random
  negative (``loss = bpr``), plus ``reg`` times the squared norm of the ID residuals a
  batch touches. ``task = rating``: MSE of ``μ + b_u + b_i + ⟨u, v_i⟩``.
* ``L_ssl = (1 − text_weight) · [InfoNCE(U, U⁽¹⁾) + InfoNCE(V, V⁽¹⁾)] + text_weight ·
  InfoNCE(z_i, sg(v_i))``: XSimGCL's noisy graph views (final against first layer), and
  the text view against the graph view of the batch's items (``sg``: stop-gradient).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from semrec.errors import ConfigError
from semrec.graph.interaction import InteractionGraph
from semrec.graph.sequences import PAD, Sequences
from semrec.models.base import Batch, HistoryScorer, TrainableModel
from semrec.models.losses import bpr_loss, info_nce, l2_penalty, mse_loss, sampled_softmax_loss, softmax_loss
from semrec.models.space import Choice, Float, Int, Param
from semrec.models.towers import build_tower
from semrec.models.xsimgcl import contrast_nodes, sign_aligned_noise

#: Version of SemGraph's weights; run folders of another version cannot be rebuilt.
FORMAT = 2


@dataclass(frozen=True)
class SemGraphConfig:
    """Hyper-parameters of :class:`SemGraph`; field names are its keyword arguments.

    Args:
        dim: embedding size ``d`` (default 64).
        hidden: width of the text MLP (default 256).
        layers: graph propagation steps; 0 turns the graph off (default 2).
        user_tower: ``mean``, ``attention``, ``transformer`` or ``auto`` (default): the
            transformer where the split is sequential (``leave-one-out``, ``temporal`` with
            known order), the mean elsewhere. The run records the tower it used.
        max_len: the newest items a causal tower reads, and the items per user a step
            samples from an unordered history (default 50).
        blocks: transformer blocks (default 2).
        heads: transformer attention heads (default 2).
        feedforward: width of the transformer's feed-forward layers; ``None`` (default)
            is ``dim``.
        dropout: dropout on the tower's input items and inside the transformer (default 0.2).
        use_text: read the item text (default true); false leaves items to their ID
            residuals alone (the "no text" ablation; new items cannot be placed).
        text_skip: add a linear path beside the text MLP, started as a norm-preserving
            random projection of the text vector (default true: the text's own geometry,
            which the text-only model ranks by, is there from the first step).
        ids: learn an ID residual per item (default true); false makes a text-only model
            that can rank items it never saw.
        user_ids: learn an ID residual per user too (default false; needs ``ids``).
        id_dropout: share of items trained without their ID residual in each step
            (default 0.1).
        context_sampling: with unordered histories, the share of a step's users whose
            context is cut to a uniformly random number of their items (default 0.0), so
            that training also sees the few-item histories of new users.
        knn_weight: ``β``, the semantic neighbours' share of a trained item's update
            (default 0.0; items without interactions always take their neighbours).
        transition_weight: ``γ``, the item-transition graph's share; ``None`` (default)
            follows the history (:data:`AUTO`: 0.2 over sequences, 0 over sets, which have
            no transitions).
        loss: ``softmax`` (default) or ``bpr``.
        negatives: sampled softmax with this many shared uniform negatives per step;
            0 (default) is the full softmax over the trained items.
        temperature: ``τ`` of the softmax; ``None`` (default) is chosen with the
            history: 0.1 for sequences (one next item: a sharp softmax), 0.3 for sets.
        normalize: score by cosine (default true) rather than by inner product.
        item_prior: add a learned per-item bias ``b_i`` to every ranking logit, the
            item's prior. Cosine scores have no room for popularity; where it predicts much
            (a random hold-out of MovieLens ratings) the prior gives it back. Served as one
            more coordinate: items ``[v_i, τ·b_i]``, users ``[u, 1]``. Default true (it won
            on validation for sequences and for sets).
        reg: weight of the squared norm of the ID residuals a batch touches (default 0.0).
        alpha: ``α`` in ``L = α·L_sup + (1−α)·L_ssl`` (default 1.0: no contrastive term).
        eps: norm of the per-layer noise of the contrastive graph views (default 0.2).
        ssl_temperature: InfoNCE temperature of the contrastive terms (default 0.2).
        text_weight: share of ``L_ssl`` on the text-vs-graph contrast (default 0.5).
        ssl_nodes: the contrastive terms use at most this many of a batch's users and
            items (default 2048).
        task: ``ranking`` or ``rating``; set together with ``train.task`` (default ranking).
        graph_attention: GAT-style edge attention instead of LightGCN's fixed weights
            (default false).
    """

    dim: int = 64
    hidden: int = 256
    layers: int = 2
    user_tower: Literal["auto", "mean", "attention", "transformer"] = "auto"
    history: Literal["auto", "sequence", "set"] = "auto"
    max_len: int = 50
    blocks: int = 2
    heads: int = 2
    feedforward: int | None = None
    dropout: float = 0.2
    use_text: bool = True
    text_skip: bool = True
    ids: bool = True
    user_ids: bool = False
    id_dropout: float = 0.1
    context_sampling: float = 0.0
    knn_weight: float = 0.0
    transition_weight: float | None = None
    loss: Literal["softmax", "bpr"] = "softmax"
    negatives: int = 0
    temperature: float | None = None
    normalize: bool = True
    item_prior: bool = True
    reg: float = 0.0
    alpha: float = 1.0
    eps: float = 0.2
    ssl_temperature: float = 0.2
    text_weight: float = 0.5
    ssl_nodes: int = 2048
    task: Literal["ranking", "rating"] = "ranking"
    graph_attention: bool = False

    def __post_init__(self) -> None:
        for name in ("dim", "hidden", "max_len", "blocks", "heads", "ssl_nodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("layers", "negatives"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("alpha", "text_weight", "id_dropout", "knn_weight", "transition_weight", "dropout",
                     "context_sampling"):
            if getattr(self, name) is not None and not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"model.{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.knn_weight + (self.transition_weight or 0.0) > 1.0:
            raise ConfigError("model.knn_weight + model.transition_weight must be at most 1")
        if (self.temperature is not None and self.temperature <= 0) or self.ssl_temperature <= 0:
            raise ConfigError("model.temperature and model.ssl_temperature must be > 0")
        if self.eps < 0 or self.reg < 0:
            raise ConfigError("model.eps and model.reg must be >= 0")
        if self.user_ids and not self.ids:
            raise ConfigError("model.user_ids needs model.ids = true (a text-only model has no ID residuals)")
        if not (self.use_text or self.ids):
            raise ConfigError("model.use_text = false needs model.ids = true: items need text or an ID")
        if self.dim % self.heads:
            raise ConfigError(f"model.heads ({self.heads}) must divide model.dim ({self.dim})")


#: What ``auto`` settings become, by how a user's history is read: chosen on validation
#: (amazon-office ``leave-one-out`` for sequences, ml-100k ``given:u1`` for sets; see
#: BENCHMARKS.md).
AUTO = {
    "sequence": {"user_tower": "transformer", "temperature": 0.1, "transition_weight": 0.2},
    "set": {"user_tower": "mean", "temperature": 0.3, "transition_weight": 0.0},
}


def resolve_history(config: SemGraphConfig, sequential: bool) -> SemGraphConfig:
    """``config`` with its ``auto`` settings fixed for a split (see :data:`AUTO`):
    ``history = sequence`` where the split is ``sequential``
    (:attr:`~semrec.data.split.Split.sequential`), ``set`` elsewhere; the tower,
    temperature and item prior follow. A causal-only tower on an unordered split is
    refused."""
    import dataclasses

    history = config.history
    if history == "auto":
        history = "sequence" if sequential else "set"
    auto = AUTO[history]
    tower = auto["user_tower"] if config.user_tower == "auto" else config.user_tower
    if history == "sequence" and not sequential:
        raise ConfigError("model.history = sequence needs ordered data: a leave-one-out or temporal split "
                          "of interactions with times (or a format that lists them in order)")
    if tower == "transformer" and history != "sequence":
        raise ConfigError("model.user_tower = transformer reads ordered histories: use it on a "
                          "leave-one-out or temporal split of data with times (or a format that "
                          "keeps them in order); here use mean or attention")
    return dataclasses.replace(
        config, history=history, user_tower=tower,
        temperature=auto["temperature"] if config.temperature is None else config.temperature,
        transition_weight=(auto["transition_weight"] if config.transition_weight is None
                           else config.transition_weight))


#: ``semrec tune``'s search space for this model (see :mod:`semrec.models.space`).
SEARCH_SPACE: dict[str, Param] = {
    "train.lr": Float(3e-4, 1e-2, log=True),
    "model.dim": Choice((32, 64, 128)),
    "model.layers": Int(0, 3),
    "model.user_tower": Choice(("mean", "attention", "transformer")),
    "model.dropout": Float(0.0, 0.5),
    "model.temperature": Float(0.03, 0.3, log=True),
    "model.id_dropout": Float(0.0, 0.5),
    "model.knn_weight": Float(0.0, 0.5),
}


class TextProjection(nn.Module):
    """``z = W₂ GELU(W₁ x + b₁) + b₂ (+ P x)``, ``x = (t − c)/s``: frozen text vectors into
    the model's space, with an optional linear skip ``P`` (``skip``).

    ``c`` is the mean of the ``reference`` text vectors (the model's own items or users)
    and ``s`` the root mean square norm of ``t − c`` over them. Sentence-encoder vectors
    of one catalogue share a large common direction (on ml-100k the mean of the unit item
    vectors has norm 0.68): without centring ``z`` starts as nearly one vector for every
    item. ``c`` and ``s`` are non-persistent buffers recomputed from the reference at
    construction, so new texts (cold start) go through the same centring.
    """

    def __init__(self, text_dim: int, hidden: int, dim: int, reference: torch.Tensor | None = None,
                 skip: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.skip = None
        if skip:
            # a linear path that starts as a norm-preserving random projection: the text's own
            # geometry (what the semantic model ranks by) is there from the first step
            self.skip = nn.Linear(text_dim, dim, bias=False)
            nn.init.orthogonal_(self.skip.weight, gain=(text_dim / dim) ** 0.5 if dim < text_dim else 1.0)
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
        x = (t - self.center) / self.scale
        z = self.net(x)  # (n, dim)
        return z if self.skip is None else z + self.skip(x)


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
    """Text-first items refined by a graph, users encoded from their history by a tower
    (see the module docstring).

    Args:
        n_users: number of users.
        n_items: number of items.
        item_text: ``(n_items, t)`` frozen text embeddings (zero rows: no text).
        user_text: ``(n_users, t)`` profile text embeddings, or ``None``.
        rating_mean: ``μ`` of the rating head (training mean; default 0).
        Other arguments: see :class:`SemGraphConfig` (``user_tower`` must be resolved,
        see :func:`resolve_history`; ``auto`` means ``mean`` over a set here).
    """

    batches = "users"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        item_text: torch.Tensor,
        user_text: torch.Tensor | None = None,
        rating_mean: torch.Tensor | float = 0.0,
        **hyper,
    ) -> None:
        super().__init__()
        if item_text.shape[0] != n_items:
            raise ValueError(f"item_text has {item_text.shape[0]} rows for {n_items} items")
        cfg = SemGraphConfig(**hyper)
        if cfg.history == "auto" or cfg.temperature is None or cfg.transition_weight is None:
            # built outside the pipeline (which resolves with the split): the tower decides
            cfg = resolve_history(cfg, sequential=cfg.user_tower == "transformer" or cfg.history == "sequence")
        self.config = cfg
        self.n_users, self.n_items = n_users, n_items
        self.tower_name = cfg.user_tower
        self.causal = cfg.history == "sequence"
        self.register_buffer("format", torch.tensor(FORMAT))
        self.register_buffer("item_text", item_text.float())  # (n_items, t)
        self.register_buffer("rating_mean", torch.as_tensor(float(rating_mean)))
        self.item_proj = TextProjection(item_text.shape[1], cfg.hidden, cfg.dim, item_text, skip=cfg.text_skip)
        self.item_id = _zero_embedding(n_items, cfg.dim) if cfg.ids else None
        self.user_id = _zero_embedding(n_users, cfg.dim) if cfg.user_ids else None
        if user_text is not None:
            self.register_buffer("user_text", user_text.float())  # (n_users, t)
            self.user_proj = TextProjection(user_text.shape[1], cfg.hidden, cfg.dim, user_text)
        else:
            self.user_text = None
            self.user_proj = None
        self.tower = build_tower(self.tower_name, cfg.dim, cfg.max_len, cfg.blocks, cfg.heads, cfg.dropout,
                                 cfg.feedforward or cfg.dim)
        self.token_dropout = nn.Dropout(cfg.dropout)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        if cfg.graph_attention:
            self.att_user = nn.Parameter(torch.randn(cfg.dim) * 0.01)
            self.att_item = nn.Parameter(torch.randn(cfg.dim) * 0.01)

    @property
    def layers(self) -> int:
        return self.config.layers

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        found = state_dict.get(prefix + "format")
        if found is None or int(found) != FORMAT:
            from semrec.errors import RunError

            version = "1 (before history-encoded users)" if found is None else str(int(found))
            raise RunError(f"this semgraph run has weights of format {version}; this semrec reads "
                           f"format {FORMAT}: retrain it with `semrec train --model semgraph`")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ items
    def text_view(self) -> torch.Tensor:
        """``z_i = MLP(t_i)`` for every item ``(n_items, d)`` (zeros without ``use_text``)."""
        if not self.config.use_text:
            return self.item_text.new_zeros(self.n_items, self.config.dim)
        return self.item_proj(self.item_text)

    def layer0(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """``h⁰`` ``(n_items, d)`` and ``z`` ``(n_items, d)``."""
        z = self.text_view()
        if self.item_id is None:
            return z, z
        keep = graph.item_degree.to(z.device) > 0  # (n_items,) items without training: text alone
        if self.training and self.config.id_dropout > 0:
            keep = keep & (torch.rand(self.n_items, device=z.device) >= self.config.id_dropout)
        return z + self.item_id.weight * keep[:, None].to(z.dtype), z

    def propagate(self, graph: InteractionGraph, h0: torch.Tensor, noisy: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Layer-mean users ``(n_users, d)`` and items ``(n_items, d)`` and the item layers
        ``[V⁰, …, V^L]`` (see the module docstring)."""
        cfg = self.config
        u0 = graph.users_mean(h0)  # (n_users, d)
        if self.user_id is not None:
            u0 = u0 + self.user_id.weight
        us, vs = [u0], [h0]
        if cfg.layers == 0:
            return u0, h0, vs
        warm = graph.item_degree.to(h0.device) > 0
        beta = gamma = None
        if graph.item_item is not None and (cfg.knn_weight > 0 or not bool(warm.all())):
            # items without interactions always take their semantic neighbours (β = 1)
            beta = torch.where(warm, torch.full_like(h0[:, 0], cfg.knn_weight), torch.ones_like(h0[:, 0]))[:, None]
        if cfg.transition_weight > 0:
            gamma = torch.where(warm, torch.full_like(h0[:, 0], cfg.transition_weight),
                                torch.zeros_like(h0[:, 0]))[:, None]
        u, v = u0, h0
        for _ in range(cfg.layers):
            if cfg.graph_attention:
                nu, nv = edge_attention_propagate(graph, u, v, self.att_user, self.att_item)
            else:
                nu = graph.users_from_items(v)  # (n_users, d)
                nv = graph.items_from_users(u)  # (n_items, d)
            own = 1.0
            mix = 0.0
            if beta is not None:
                own = own - beta
                mix = mix + beta * graph.items_from_items(v)
            if gamma is not None:
                own = own - gamma
                mix = mix + gamma * graph.items_from_transitions(v)
            nv = own * nv + mix
            if noisy:
                nu, nv = sign_aligned_noise(nu, self.config.eps), sign_aligned_noise(nv, self.config.eps)
            u, v = nu, nv
            us.append(u)
            vs.append(v)
        return torch.stack(us).mean(0), torch.stack(vs).mean(0), vs

    def _out(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) if self.config.normalize else x

    def item_vectors(self, graph: InteractionGraph) -> torch.Tensor:
        """Final item vectors ``v`` ``(n_items, d)`` (unit length with ``normalize``)."""
        h0, _ = self.layer0(graph)
        return self._out(self.propagate(graph, h0)[1])

    # ------------------------------------------------------------------ users
    def encode_users(self, tokens: torch.Tensor, valid: torch.Tensor, users: torch.Tensor,
                     extra: torch.Tensor | None = None) -> torch.Tensor:
        """User vectors ``(B, d)`` from their histories: ``tokens`` ``(B, L, d)`` item
        vectors, left-padded (``valid`` ``(B, L)``), oldest first; ``users`` ``(B,)`` the
        internal index of each (``-1``: a user the run has no ID or profile for);
        ``extra`` ``(B, d)`` is added before normalising (a new user's profile vector)."""
        if self.causal:
            u = self.tower.causal(tokens, valid)[:, -1]  # (B, d)
        else:
            u = self.tower.pooled(tokens, valid)
        u = u + self._user_extras(users, u)
        return self._out(u if extra is None else u + extra)

    def _user_extras(self, users: torch.Tensor, like: torch.Tensor) -> torch.Tensor | float:
        """``e_u + MLP_u(t_u)`` ``(B, d)`` for known users, 0 for ``-1``."""
        extra: torch.Tensor | float = 0.0
        known = users >= 0
        if not bool(known.any()) or (self.user_id is None and self.user_text is None):
            return extra
        idx = users.clamp_min(0)
        mask = known[:, None].to(like.dtype)
        if self.user_id is not None:
            extra = extra + self.user_id(idx) * mask
        if self.user_text is not None:
            extra = extra + self.user_proj(self.user_text[idx]) * mask
        return extra

    def profile_vector(self, text: torch.Tensor) -> torch.Tensor:
        """``MLP_u(t)`` ``(m, d)`` for profile text vectors ``(m, t)`` (needs user text)."""
        if self.user_proj is None:
            raise ConfigError("this semgraph run has no user text adapter")
        return self.user_proj(text)

    # ------------------------------------------------------------------ objectives
    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """Users encoded from their training histories and the items, ``(n_users, d)``
        and ``(n_items, d)``."""
        items = self.item_vectors(graph)
        users = self._encode_csr(np.arange(self.n_users), graph.order if graph.order is not None
                                 else graph.train, items)
        return users, items

    def loss(self, batch: Batch, graph: InteractionGraph) -> dict[str, torch.Tensor]:
        cfg = self.config
        h0, z = self.layer0(graph)
        noisy = cfg.eps > 0 and cfg.alpha < 1
        users_g, items_raw, vs = self.propagate(graph, h0, noisy=noisy)
        items = self._out(items_raw)  # (n_items, d)
        if batch.ratings is not None:
            sup, touched = self._rating_loss(batch, graph, items)
        else:
            sup, touched = self._ranking_loss(batch, graph, items)
        l2 = torch.zeros((), device=h0.device)
        if cfg.reg > 0 and self.item_id is not None:
            l2 = l2_penalty(self.item_id(touched), batch_size=max(1, int(touched.numel())))
            if self.user_id is not None:
                l2 = l2 + l2_penalty(self.user_id(batch.users), batch_size=int(batch.users.numel()))
        sup = sup + cfg.reg * l2
        terms = {"sup": sup.detach(), "l2": l2.detach()}
        if cfg.alpha < 1:
            u = contrast_nodes(batch.users, cfg.ssl_nodes)
            i = contrast_nodes(touched, cfg.ssl_nodes)
            u1, v1 = graph.users_from_items(vs[0]), vs[1] if len(vs) > 1 else vs[0]
            graph_ssl = info_nce(users_g[u], u1[u], cfg.ssl_temperature) + info_nce(
                items_raw[i], v1[i], cfg.ssl_temperature)
            text_ssl = info_nce(z[i], items_raw[i].detach(), cfg.ssl_temperature)
            ssl = (1 - cfg.text_weight) * graph_ssl + cfg.text_weight * text_ssl
            terms.update(ssl=ssl.detach(), ssl_graph=graph_ssl.detach(), ssl_text=text_ssl.detach())
            loss = cfg.alpha * sup + (1 - cfg.alpha) * ssl
        else:
            loss = sup
        return {"loss": loss, **terms}

    def _ranking_loss(self, batch: Batch, graph: InteractionGraph, items: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """``L_sup`` of a batch of users and the item indices it touched."""
        cfg = self.config
        dev = items.device
        users_np = batch.users.cpu().numpy()
        seqs = graph.sequences
        if self.causal:
            win = _trim(torch.as_tensor(seqs.window(users_np, cfg.max_len + 1), device=dev))  # (B, L+1)
            inputs, targets = win[:, :-1], win[:, 1:]
            valid = inputs != PAD  # (B, L); a valid input is always followed by an item
            h = self.tower.causal(self._tokens(items, inputs), valid)  # (B, L, d)
        else:
            gen = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
            win = _trim(torch.as_tensor(seqs.window(users_np, cfg.max_len, rng=gen), device=dev))  # (B, L)
            inputs = targets = win
            present = win != PAD
            valid = present & (present.sum(1, keepdim=True) > 1)  # a target needs another item
            context = present
            if cfg.context_sampling > 0:
                context = _sample_contexts(present, cfg.context_sampling)
            h = self.tower.leave_out(self._tokens(items, inputs), context)  # (B, L, d)
            valid = valid & ((context.sum(1, keepdim=True) - context.long()) > 0)  # some other item in context
        rows = valid.nonzero(as_tuple=True)
        owner = batch.users.to(dev)[rows[0]]  # (N,)
        q = h[rows]  # (N, d)
        q = self._out(q + self._user_extras(owner, q))
        y = targets[rows]  # (N,)
        return self._catalogue_loss(q, items, y, graph), torch.unique(torch.cat([y, inputs[inputs != PAD]]))

    def _catalogue_loss(self, q: torch.Tensor, items: torch.Tensor, y: torch.Tensor,
                        graph: InteractionGraph) -> torch.Tensor:
        """Softmax or BPR of targets ``y`` ``(N,)`` for queries ``q`` ``(N, d)``, over the
        items that have training interactions (the others, e.g. held-out cold items,
        are never negatives)."""
        cfg = self.config
        warm = graph.warm_items.to(items.device)  # (W,)
        tau = cfg.temperature if cfg.normalize else 1.0
        if cfg.item_prior:  # ⟨q, v⟩/τ + b = ⟨[q/τ, 1], [v, b]⟩
            q = torch.cat([q / tau, q.new_ones(len(q), 1)], dim=1)
            items = torch.cat([items, self.item_bias.weight], dim=1)
            tau = 1.0
        if cfg.loss == "bpr":
            neg = warm[torch.randint(len(warm), (len(y),), device=items.device)]
            return bpr_loss((q * items[y]).sum(-1), (q * items[neg]).sum(-1))
        if cfg.negatives > 0:
            neg = warm[torch.randint(len(warm), (cfg.negatives,), device=items.device)]
            return sampled_softmax_loss(q, items, y, neg, temperature=tau)
        position = graph.warm_position.to(items.device)  # (n_items,) index into warm
        return softmax_loss(q, items[warm], position[y], temperature=tau)

    def _rating_loss(self, batch: Batch, graph: InteractionGraph, items: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        users = self._encode_csr(batch.users.cpu().numpy(), graph.order if graph.order is not None
                                 else graph.train, items, rows_are_users=True, train=True)
        pred = self._rating(users, items, batch.users, batch.pos_items)
        return mse_loss(pred, batch.ratings), batch.pos_items

    def _rating(self, users: torch.Tensor, items: torch.Tensor, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """``μ + b_u + b_i + ⟨u, v_i⟩`` for aligned ``users`` rows ``(B, d)`` and items ``i``."""
        dot = (users * items[i]).sum(-1)  # (B,)
        return self.rating_mean + self.user_bias(u).squeeze(-1) + self.item_bias(i).squeeze(-1) + dot

    def _tokens(self, items: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Item vectors of a padded index window ``(B, L)`` -> ``(B, L, d)`` (0 at padding),
        with dropout in training."""
        padded = torch.cat([items, items.new_zeros(1, items.shape[1])])  # row n_items: padding
        x = padded[torch.where(idx == PAD, torch.full_like(idx, items.shape[0]), idx)]
        return self.token_dropout(x)

    def _encode_csr(self, users: np.ndarray, history: sp.csr_matrix, items: torch.Tensor,
                    rows_are_users: bool = True, train: bool = False, chunk: int = 1024,
                    extra: torch.Tensor | None = None) -> torch.Tensor:
        """User vectors ``(B, d)`` of ``users`` from history rows (values: times) over the
        item vectors ``items``. With ``rows_are_users`` the rows are picked by the users'
        indices, else ``history`` has exactly one row per user in order. ``extra``: see
        :meth:`encode_users`."""
        rows = history[users] if rows_are_users else history
        seqs = Sequences(rows)
        out = []
        for start in range(0, len(users), chunk):
            part = np.arange(start, min(start + chunk, len(users)))
            win = _trim(torch.as_tensor(seqs.window(part, self.config.max_len if self.causal else None),
                                        device=items.device))
            tokens = self._tokens(items, win) if train else _gather(items, win)
            add = None if extra is None else extra[part[0] : part[-1] + 1].to(items.device)
            out.append(self.encode_users(tokens, win != PAD, torch.as_tensor(users[part], device=items.device), add))
        if not out:
            return items.new_zeros(0, items.shape[1])
        return torch.cat(out)

    @torch.no_grad()
    def predict_ratings(self, users, items, graph: InteractionGraph) -> np.ndarray:
        """Predicted ratings for aligned arrays of user and item indices."""
        was = self.training
        self.eval()
        item_vecs = self.item_vectors(graph)
        u = np.asarray(users, dtype=np.int64)
        uniq, inv = np.unique(u, return_inverse=True)
        vecs = self._encode_csr(uniq, graph.order if graph.order is not None else graph.train, item_vecs)
        self.train(was)
        dev = item_vecs.device
        return self._rating(vecs[torch.as_tensor(inv, device=dev)], item_vecs, torch.as_tensor(u, device=dev),
                            torch.as_tensor(np.asarray(items, dtype=np.int64), device=dev)).cpu().numpy()

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def scorer(self, graph: InteractionGraph) -> HistoryScorer:
        was = self.training
        self.eval()
        h0, _ = self.layer0(graph)
        _, v, layers = self.propagate(graph, h0)
        self.train(was)
        return self.scorer_from_embeddings(self._served_items(self._out(v)), graph.train, layers=torch.stack(layers))

    def _served_items(self, v: torch.Tensor) -> torch.Tensor:
        """Item vectors as served: ``[v, τ·b]`` with the item prior, else ``v``."""
        if not self.config.item_prior:
            return v
        tau = self.config.temperature if self.config.normalize else 1.0
        return torch.cat([v, tau * self.item_bias.weight.to(v.device)], dim=1)

    def scorer_from_embeddings(self, item_emb: torch.Tensor, train: sp.csr_matrix,
                               user_emb: torch.Tensor | None = None,
                               layers: torch.Tensor | None = None) -> HistoryScorer:
        """A scorer over final item vectors ``item_emb`` ``(n_items, d)`` whose users are
        encoded from their histories; ``user_emb`` (the users over their whole known
        history, for serving) defaults to zeros until :meth:`HistoryScorer.remember` fills it."""
        model = self

        prior = self.config.item_prior

        def encode(users: np.ndarray, history: sp.csr_matrix, items: torch.Tensor,
                   extra: torch.Tensor | None = None) -> torch.Tensor:
            was = model.training
            model.eval()
            tokens = items[:, :-1] if prior else items  # the prior coordinate is no part of an item's meaning
            with torch.no_grad():
                out = model._encode_csr(np.asarray(users, dtype=np.int64), history, tokens.to(item_emb.device),
                                        rows_are_users=False, extra=extra)
            model.train(was)
            return torch.cat([out, out.new_ones(len(out), 1)], dim=1) if prior else out

        degree = torch.as_tensor(np.asarray(train.getnnz(axis=0)), device=item_emb.device)
        if user_emb is None:
            user_emb = item_emb.new_zeros(self.n_users, item_emb.shape[1])
        return HistoryScorer(user_emb, item_emb, item_degree=degree, encoder=encode, item_layers=layers)

    def text_share(self, graph: InteractionGraph) -> torch.Tensor:
        """How much of each item's input comes from its text, ``‖z‖ / (‖z‖ + ‖e‖)`` ``(n_items,)``
        (1 for items without an ID residual)."""
        with torch.no_grad():
            z = self.text_view()
            if self.item_id is None:
                return torch.ones(self.n_items, device=z.device)
            e = self.item_id.weight * (graph.item_degree.to(z.device) > 0)[:, None]
            zn, en = z.norm(dim=1), e.norm(dim=1)
            return zn / (zn + en).clamp_min(1e-12)

    @torch.no_grad()
    def item_from_text(self, text: torch.Tensor, neighbours: sp.csr_matrix | None,
                       layers: torch.Tensor | None, return_layers: bool = False
                       ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Vectors ``(m, d)`` of new items from their text vectors ``(m, t)``, as training
        treats an item without interactions: ``V⁰ = z``, then ``V⁽ˡ⁺¹⁾ = S V⁽ˡ⁾`` over
        ``neighbours`` ``(m, n_items)`` (row-normalised text similarities to the
        catalogue) with the catalogue's item ``layers`` ``(L + 1, n_items, d)``. With
        ``return_layers``, also the new items' own layers ``(L + 1, m, d)`` (the last
        step repeated where there are no neighbours), to join the catalogue's."""
        if not self.config.use_text:
            raise ConfigError("this semgraph run was trained with model.use_text = false: it cannot place "
                              "items (or sentences) by their text")
        z = self.item_proj(text.to(self.item_text.device))  # (m, d)
        steps = [z]
        if neighbours is not None and layers is not None and self.config.layers > 0:
            s = torch.as_tensor(neighbours.toarray(), dtype=z.dtype, device=z.device)  # (m, n_items)
            for layer in layers[: self.config.layers]:
                steps.append(s @ layer.to(z.device))
        v = self._out(torch.stack(steps).mean(0))
        v = torch.cat([v, v.new_zeros(len(v), 1)], dim=1) if self.config.item_prior else v  # no prior yet
        if not return_layers:
            return v
        steps += [steps[-1]] * (self.config.layers + 1 - len(steps))
        return v, torch.stack(steps)  # (m, d), (L + 1, m, d)


def _sample_contexts(present: torch.Tensor, share: float) -> torch.Tensor:
    """``present`` ``(B, L)`` with, for a random ``share`` of the rows, only a uniformly
    random number ``k ∈ [1, n]`` of the row's ``n`` items kept (a random subset)."""
    b = present.shape[0]
    n = present.sum(1)  # (B,)
    k = (torch.rand(b, device=present.device) * n).floor().long() + 1  # (B,) in [1, n]
    rank = torch.rand(present.shape, device=present.device).masked_fill(~present, 2.0).argsort(1).argsort(1)
    cut = rank < k[:, None]  # the k randomly first-ranked items of each row
    chosen = torch.rand(b, device=present.device) < share
    return torch.where(chosen[:, None], present & cut, present)


def _trim(win: torch.Tensor) -> torch.Tensor:
    """A left-padded window without its leading all-padding columns. The towers'
    outputs do not change (positions count from the right end, padding is masked); most
    histories are far shorter than ``max_len``, so this saves most of the work."""
    used = (win != PAD).any(0).nonzero()
    return win[:, int(used[0]) :] if len(used) else win[:, -1:]


def _gather(items: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    padded = torch.cat([items, items.new_zeros(1, items.shape[1])])
    return padded[torch.where(idx == PAD, torch.full_like(idx, items.shape[0]), idx)]


def _zero_embedding(n: int, dim: int) -> nn.Embedding:
    """An ``(n, dim)`` table of zeros: a residual the data has to earn."""
    emb = nn.Embedding(n, dim)
    nn.init.zeros_(emb.weight)
    return emb
