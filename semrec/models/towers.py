"""User towers: a user's vector computed from the items they interacted with.

A tower reads a batch of item sequences as vectors ``x`` ``(B, T, d)`` with a mask
``valid`` ``(B, T)``. Sequences are *left*-padded: the most recent item sits at position
``T − 1`` (SASRec's layout), so the user's vector after their whole history is the output
at the last position, whatever their length.

Two ways to read a history:

* **causal** (the items are in time order; the next item is predicted):
  ``causal(x, valid)[:, t]`` summarises the items at positions ``≤ t``. Training feeds
  the history without its last item and predicts each following item, all positions at
  once; at inference the output at ``T − 1`` is the user.
* **set** (order unknown or irrelevant): ``leave_out(x, valid)[:, t]`` summarises every
  item of the history except the one at ``t``, which is what it is trained to predict;
  ``pooled(x, valid)`` summarises all of them and is the user at inference.

Towers:

* :class:`MeanTower` — the mean of the items (AlphaRec's user), then a linear map.
* :class:`AttentionTower` — a weighted mean: a content score per item, a learned
  recency bias by distance from the newest item, and the newest item as the query
  (causal); the content score alone (set).
* :class:`TransformerTower` — SASRec's causal self-attention encoder (learned positions,
  pre-norm blocks, dropout); causal only.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from semrec.errors import ConfigError

TOWERS = ("mean", "attention", "transformer")


class MeanTower(nn.Module):
    """``u = W · mean_j x_j`` (``W`` starts as the identity).

    Args:
        dim: vector size ``d``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        nn.init.eye_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def causal(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)``: position ``t`` is the mean of the valid items at ``≤ t``."""
        m = valid.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        total = torch.cumsum(x * m, dim=1)  # (B, T, d)
        count = torch.cumsum(m, dim=1).clamp_min(1.0)  # (B, T, 1)
        return self.proj(total / count)

    def leave_out(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)``: position ``t`` is the mean of the other valid items."""
        m = valid.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        total = (x * m).sum(1, keepdim=True)  # (B, 1, d)
        count = m.sum(1, keepdim=True)  # (B, 1, 1)
        return self.proj((total - x * m) / (count - m).clamp_min(1.0))

    def pooled(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``(B, d)``: the mean of every valid item."""
        m = valid.unsqueeze(-1).to(x.dtype)
        return self.proj((x * m).sum(1) / m.sum(1).clamp_min(1.0))


class AttentionTower(nn.Module):
    """A weighted mean of the user's items, ``u = W · Σ_j a_j x_j``.

    Causal, for the summary at position ``t`` over the items ``j ≤ t``::

        a_j ∝ exp( wᵀ tanh(A x_j) + r[t − j] + ⟨Q x_t, K x_j⟩ / √d )

    a content score (which items say much about a user), a learned recency bias ``r``
    by distance from the newest item, and the newest item ``x_t`` as the query (which
    earlier items matter for what comes next). In set mode only the content score
    applies (there is no order and no newest item).

    Args:
        dim: vector size ``d``.
        max_len: longest distance with its own recency bias (longer ones share the last).
    """

    def __init__(self, dim: int, max_len: int) -> None:
        super().__init__()
        self.content = nn.Linear(dim, dim)
        self.w = nn.Parameter(torch.zeros(dim))
        self.recency = nn.Parameter(torch.zeros(max_len))
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        nn.init.normal_(self.query.weight, std=0.02)
        nn.init.normal_(self.key.weight, std=0.02)
        self.proj = nn.Linear(dim, dim)
        nn.init.eye_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def _content(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.content(x)) @ self.w  # (B, T)

    def causal(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        pos = torch.arange(t, device=x.device)
        dist = (pos[:, None] - pos[None, :]).clamp(0, self.recency.shape[0] - 1)  # (T, T): t − j
        logits = self._content(x)[:, None, :] + self.recency[dist][None]  # (B, T, T)
        logits = logits + (self.query(x) @ self.key(x).transpose(1, 2)) / math.sqrt(d)
        allowed = (pos[None, :] <= pos[:, None])[None] & valid[:, None, :]  # (B, T, T): j ≤ t, valid
        return self.proj(_masked_mean(logits, allowed, x))

    def leave_out(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        logits = self._content(x)[:, None, :].expand(b, t, t)  # (B, T, T)
        eye = torch.eye(t, dtype=torch.bool, device=x.device)
        allowed = valid[:, None, :] & ~eye[None]
        return self.proj(_masked_mean(logits, allowed, x))

    def pooled(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        logits = self._content(x)[:, None, :]  # (B, 1, T)
        return self.proj(_masked_mean(logits, valid[:, None, :], x))[:, 0]


def _masked_mean(logits: torch.Tensor, allowed: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``Σ_j softmax_j(logits) x_j`` over the allowed ``j`` (rows with none give 0)."""
    logits = logits.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # (B, T', T)
    return weights @ x  # (B, T', d)


class TransformerTower(nn.Module):
    """SASRec's encoder (Kang & McAuley 2018): ``LayerNorm(x + P)``, dropout, ``blocks``
    pre-norm blocks of causal multi-head self-attention and a feed-forward layer, and a
    final layer norm; position ``p`` of the left-padded window has its own vector ``P_p``.

    Args:
        dim: vector size ``d``.
        max_len: the window (positions).
        blocks: self-attention blocks.
        heads: attention heads (must divide ``dim``).
        dropout: dropout on the input and inside the blocks.
        feedforward: width of each block's feed-forward layer (default ``dim``).
    """

    def __init__(self, dim: int, max_len: int, blocks: int, heads: int, dropout: float,
                 feedforward: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"model.heads ({heads}) must divide model.dim ({dim})")
        self.heads = heads
        self.positions = nn.Embedding(max_len, dim)
        nn.init.normal_(self.positions.weight, std=0.02)
        self.norm_in = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=feedforward or dim, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
        self.norm_out = nn.LayerNorm(dim)

    def causal(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        if t > self.positions.num_embeddings:  # keep the newest max_len items
            x, valid = x[:, -self.positions.num_embeddings :], valid[:, -self.positions.num_embeddings :]
            t = x.shape[1]
        # positions of a window of length t end where the full window ends
        pos = torch.arange(self.positions.num_embeddings - t, self.positions.num_embeddings, device=x.device)
        h = self.dropout(self.norm_in(x + self.positions(pos)[None]))  # (B, T, d)
        # key j is allowed for query t when j ≤ t and j is an item; every position may
        # attend to itself, so a padding row stays defined (its output is never used)
        pos_t = torch.arange(t, device=x.device)
        allowed = (pos_t[None, :] <= pos_t[:, None])[None] & (valid[:, None, :] | torch.eye(
            t, dtype=torch.bool, device=x.device)[None])  # (B, T, T)
        mask = (~allowed).repeat_interleave(self.heads, dim=0)  # (B·heads, T, T), True: masked
        h = self.blocks(h, mask=mask)
        return self.norm_out(h)

    def leave_out(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        raise ConfigError("the transformer tower reads ordered histories only (causal); "
                          "use user_tower = mean or attention for this split")

    def pooled(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.leave_out(x, valid)


def build_tower(name: str, dim: int, max_len: int, blocks: int, heads: int, dropout: float,
                feedforward: int | None = None) -> nn.Module:
    """The tower called ``name`` (one of :data:`TOWERS`)."""
    if name == "mean":
        return MeanTower(dim)
    if name == "attention":
        return AttentionTower(dim, max_len)
    if name == "transformer":
        return TransformerTower(dim, max_len, blocks, heads, dropout, feedforward)
    raise ConfigError(f"model.user_tower: expected one of {', '.join(TOWERS)}, got {name!r}")
