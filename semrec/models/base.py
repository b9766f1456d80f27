"""What every model offers: scores for a batch of users over all items.

Two families share that surface:

* :class:`FittedModel` — training-free (popularity, ItemKNN, graph filters): ``fit``
  on the training matrix, then ``score``.
* :class:`TrainableModel` — ``torch.nn.Module`` s trained by the one loop in
  :mod:`semrec.train`: ``forward(graph)`` returns user and item embeddings, ``loss``
  returns the training objective for a batch. Their scorer is an
  :class:`EmbeddingScorer` over the final embeddings.

Scoring, seen-item exclusion and candidate restriction live in
:func:`semrec.models.topk.topk`, one function for every model.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from semrec.graph.interaction import InteractionGraph


class Scorer(Protocol):
    """Anything that scores users against every item."""

    n_items: int

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        """Scores ``(B, n_items)`` for ``users`` (B,) whose known interactions are
        the rows of ``history`` ``(B, n_items)``. Higher is better."""
        ...


@dataclass
class EmbeddingScorer:
    """Inner-product scores of final embeddings: ``s(u, i) = <U_u, V_i>``."""

    user_emb: torch.Tensor  # (n_users, d)
    item_emb: torch.Tensor  # (n_items, d)

    @property
    def n_items(self) -> int:
        return int(self.item_emb.shape[0])

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        idx = torch.as_tensor(users, dtype=torch.long, device=self.user_emb.device)
        return self.user_emb[idx] @ self.item_emb.T  # (B, n_items)


class FittedModel(ABC):
    """A training-free model: ``fit(train)`` then ``score``.

    State is a flat mapping of tensors so that it saves as safetensors.
    """

    def __init__(self, n_users: int, n_items: int) -> None:
        self.n_users = n_users
        self.n_items = n_items

    @abstractmethod
    def fit(self, train: sp.csr_matrix) -> FittedModel:
        """Learn from the ``(n_users, n_items)`` training matrix; returns ``self``."""

    @abstractmethod
    def score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        """See :class:`Scorer`."""

    @abstractmethod
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything ``load_state_dict`` needs, as tensors."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        ...


@dataclass
class Batch:
    """A training batch of internal indices (all ``(B,)`` long tensors).

    ``neg_items`` is ``(B, n_neg)`` for ranking; ``ratings`` is set for rating tasks.
    """

    users: torch.Tensor
    pos_items: torch.Tensor
    neg_items: torch.Tensor | None = None
    ratings: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.users), move(self.pos_items), move(self.neg_items), move(self.ratings))


class TrainableModel(nn.Module, ABC):
    """A model trained by :func:`semrec.train.loop.fit`.

    Built from plain ints and hyper-parameters; the graph is passed to ``forward``
    and ``loss``, never stored.
    """

    @abstractmethod
    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user ``(n_users, d)`` and item ``(n_items, d)`` embeddings."""

    @abstractmethod
    def loss(self, batch: Batch, graph: InteractionGraph) -> dict[str, torch.Tensor]:
        """Loss terms for one batch; ``"loss"`` is the one minimised, the others are logged."""

    @torch.no_grad()
    def scorer(self, graph: InteractionGraph) -> EmbeddingScorer:
        was_training = self.training
        self.eval()
        user_emb, item_emb = self(graph)
        self.train(was_training)
        return EmbeddingScorer(user_emb.detach(), item_emb.detach())
