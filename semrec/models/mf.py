"""Matrix factorisation trained with BPR (Rendle et al. 2009) or a sampled softmax.

``s(u, i) = <e_u, e_i>`` with free embeddings ``e_u``, ``e_i``; the graph is not used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from semrec.errors import ConfigError
from semrec.graph.interaction import InteractionGraph
from semrec.models.base import Batch, TrainableModel
from semrec.models.losses import bpr_loss, l2_penalty, sampled_softmax_loss
from semrec.models.space import EMBEDDING, Param

#: Standard deviation of the normal initialisation of every embedding table, as in
#: the LightGCN reference code.
INIT_STD = 0.1


@dataclass(frozen=True)
class MFConfig:
    """Hyper-parameters of :class:`MF`, the one place they are declared.

    Args:
        dim: embedding size ``d``; default 64.
        reg: weight of :func:`~semrec.models.losses.l2_penalty` on the batch's
            embeddings; default 1e-4.
        loss: ``bpr`` (default) or ``softmax`` (see :func:`ranking_loss`).
        temperature: ``τ`` of the softmax over cosine scores; default 0.1.
    """

    dim: int = 64
    reg: float = 1e-4
    loss: Literal["bpr", "softmax"] = "bpr"
    temperature: float = 0.1

    def __post_init__(self) -> None:
        check_positive("model.dim", self.dim, error=ConfigError)
        check_non_negative("model.reg", self.reg, error=ConfigError)
        check_positive("model.temperature", self.temperature, error=ConfigError)


#: ``semrec tune``'s search space for this model (see :mod:`semrec.models.space`).
SEARCH_SPACE: dict[str, Param] = dict(EMBEDDING)

def check_positive(name: str, value: float, error: type[Exception] = ValueError) -> None:
    if not value > 0:
        raise error(f"{name}: expected a positive number, got {value!r}")


def check_non_negative(name: str, value: float, error: type[Exception] = ValueError) -> None:
    if not value >= 0:
        raise error(f"{name}: expected a number >= 0, got {value!r}")


def init_embedding(n: int, dim: int) -> nn.Embedding:
    """An ``(n, dim)`` embedding table drawn from ``N(0, INIT_STD²)``."""
    emb = nn.Embedding(n, dim)
    nn.init.normal_(emb.weight, std=INIT_STD)
    return emb


def neg_items_2d(batch: Batch) -> torch.Tensor:
    """``batch.neg_items`` as ``(B, n_neg)``; a ``(B,)`` tensor is one negative per row."""
    if batch.neg_items is None:
        raise ValueError("this model trains with BPR and needs batch.neg_items (B, n_neg); got None")
    neg = batch.neg_items
    return neg.unsqueeze(1) if neg.dim() == 1 else neg  # (B, n_neg)


def batch_l2(user_emb: torch.Tensor, item_emb: torch.Tensor, batch: Batch) -> torch.Tensor:
    """:func:`~semrec.models.losses.l2_penalty` of a BPR batch's rows of ``user_emb``
    ``(n_users, d)`` and ``item_emb`` ``(n_items, d)``: its users, positives and
    negatives, divided by the batch size ``B`` — LightGCN's regulariser when the
    tables are the layer-0 ("ego") embeddings."""
    return l2_penalty(
        user_emb[batch.users],  # (B, d)
        item_emb[batch.pos_items],  # (B, d)
        item_emb[neg_items_2d(batch)],  # (B, n_neg, d)
        batch_size=int(batch.users.shape[0]),
    )


def bpr_scores(
    user_emb: torch.Tensor, item_emb: torch.Tensor, batch: Batch
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inner-product scores of a batch's positives ``(B,)`` and negatives ``(B, n_neg)``.

    Args:
        user_emb: ``(n_users, d)`` user embeddings.
        item_emb: ``(n_items, d)`` item embeddings.
        batch: users ``(B,)``, pos_items ``(B,)``, neg_items ``(B, n_neg)`` or ``(B,)``.
    """
    neg = neg_items_2d(batch)  # (B, n_neg)
    u = user_emb[batch.users]  # (B, d)
    pos = (u * item_emb[batch.pos_items]).sum(-1)  # (B,)
    negs = (u.unsqueeze(1) * item_emb[neg]).sum(-1)  # (B, n_neg)
    return pos, negs


def ranking_loss(
    user_emb: torch.Tensor, item_emb: torch.Tensor, batch: Batch, loss: str, temperature: float
) -> torch.Tensor:
    """The ranking objective of a (users, positives, negatives) batch.

    * ``bpr``: :func:`~semrec.models.losses.bpr_loss` of the inner products against each
      row's own negatives;
    * ``softmax``: :func:`~semrec.models.losses.sampled_softmax_loss` of the cosine
      scores over temperature ``τ``, every row's positive against all the batch's
      negatives (uniform draws shared by the batch, so no log-q correction).

    Args:
        user_emb: ``(n_users, d)``; item_emb: ``(n_items, d)``.
        batch: users ``(B,)``, pos_items ``(B,)``, neg_items ``(B, n_neg)``.
        loss: ``bpr`` or ``softmax``; temperature: ``τ`` of the softmax.
    """
    if loss == "bpr":
        pos, neg = bpr_scores(user_emb, item_emb, batch)  # (B,), (B, n_neg)
        return bpr_loss(pos, neg)
    pool = torch.unique(neg_items_2d(batch))  # (M,) shared negatives
    q = F.normalize(user_emb[batch.users], dim=-1)  # (B, d)
    return sampled_softmax_loss(q, F.normalize(item_emb, dim=-1), batch.pos_items, pool, temperature=temperature)


def scored(users: torch.Tensor, items: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The embeddings that score what ``loss`` trained: unit vectors for the cosine
    softmax, as they are for ``bpr``."""
    if loss == "softmax":
        return F.normalize(users, dim=-1), F.normalize(items, dim=-1)
    return users, items


class MF(TrainableModel):
    """Matrix factorisation, ``s(u, i) = <e_u, e_i>``, trained with BPR or a softmax.

    Args:
        n_users: number of users.
        n_items: number of items.
        hyper: the fields of :class:`MFConfig`.
    """

    def __init__(self, n_users: int, n_items: int, **hyper) -> None:
        super().__init__()
        check_positive("n_users", n_users)
        check_positive("n_items", n_items)
        self.config = cfg = MFConfig(**hyper)
        self.n_users, self.n_items, self.dim, self.reg = n_users, n_items, cfg.dim, cfg.reg
        self.user_emb = init_embedding(n_users, cfg.dim)
        self.item_emb = init_embedding(n_items, cfg.dim)

    def forward(self, graph: InteractionGraph | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The embedding tables ``(n_users, d)``, ``(n_items, d)`` (unit rows when trained
        with the softmax); ``graph`` is ignored."""
        return scored(self.user_emb.weight, self.item_emb.weight, self.config.loss)

    def loss(self, batch: Batch, graph: InteractionGraph | None = None) -> dict[str, torch.Tensor]:
        """``ranking loss + reg · l2``; keys ``loss``, the objective's name, ``l2`` (the
        unweighted penalty)."""
        cfg = self.config
        sup = ranking_loss(self.user_emb.weight, self.item_emb.weight, batch, cfg.loss, cfg.temperature)
        l2 = batch_l2(self.user_emb.weight, self.item_emb.weight, batch)
        return {"loss": sup + self.reg * l2, cfg.loss: sup.detach(), "l2": l2.detach()}
