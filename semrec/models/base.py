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

import warnings
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
    """Inner-product scores of final embeddings: ``s(u, i) = <U_u, V_i>``.

    Users without a trained vector (no training interaction: ``item_degree`` given and
    ``trained_users[u]`` false) are folded in from their history row instead, see
    :meth:`fold_in`, so a cold user is scored from what they did, not from noise.
    """

    user_emb: torch.Tensor  # (n_users, d)
    item_emb: torch.Tensor  # (n_items, d)
    item_degree: torch.Tensor | None = None  # (n_items,) training interactions per item
    trained_users: torch.Tensor | None = None  # (n_users,) bool: has a trained vector
    fold_map: torch.Tensor | None = None  # (d + 1, d): calibration of fold-in, see calibrate_fold_in

    @property
    def n_items(self) -> int:
        return int(self.item_emb.shape[0])

    def fold_in(self, history: sp.csr_matrix) -> torch.Tensor:
        """User vectors ``(B, d)`` from history rows ``(B, n_items)``, no training.

        One LightGCN propagation step from the items to a new user ``u`` with items
        ``N_u``: ``u = sum_{i in N_u} V_i / sqrt(|N_u| * d_i)``, ``d_i`` the item's
        training degree (at least 1). The final item embeddings stand in for each
        layer's, so this is the first-order answer, not the exact one; a row without
        items gets the zero vector (scores 0: the caller falls back to popularity).
        """
        h = sp.csr_matrix(history, dtype=np.float32)
        h.sum_duplicates()  # one entry per (user, item): membership, whatever the stored values
        per_row = np.diff(h.indptr)  # (B,) |N_u|
        # the weights 1/sqrt(|N_u| d_i) written straight into the row's entries: the same
        # numbers as diag(.) @ h @ diag(.), without two (n_items, n_items) diagonal
        # products per call (the serving path folds in one user per event)
        w = np.repeat(1.0 / np.sqrt(np.maximum(per_row, 1)), per_row).astype(np.float32)  # (nnz,)
        if self.item_degree is not None:
            deg = self.item_degree.detach().cpu().numpy()[h.indices]
            w /= np.sqrt(np.maximum(deg, 1)).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch marks sparse CSR as beta
            wt = torch.sparse_csr_tensor(
                torch.as_tensor(h.indptr, dtype=torch.int64), torch.as_tensor(h.indices, dtype=torch.int64),
                torch.from_numpy(w), size=h.shape, check_invariants=False,
            ).to(self.item_emb.device)
        f = torch.sparse.mm(wt, self.item_emb.float())  # (B, d)
        if self.fold_map is None:
            return f
        return f @ self.fold_map[:-1] + self.fold_map[-1]

    def calibrate_fold_in(self, train: sp.csr_matrix, ridge: float = 1.0) -> EmbeddingScorer:
        """Fit the affine map ``u ≈ W f(N_u) + c`` from the folded-in vector of every
        trained user to the vector training gave them (ridge regression, ``ridge`` on
        ``W`` and ``c``), and apply it in :meth:`fold_in` from now on.

        The raw one-step fold-in lacks what the layer mean and the training objective
        add to a user (its layer-0 share, the popularity direction every user shares);
        the map learns that from the users the model knows. Returns ``self``.
        """
        self.fold_map = None
        users = np.flatnonzero(np.asarray(train.getnnz(axis=1)) > 0)
        if len(users) < 2:
            return self
        f = self.fold_in(train[users]).float()  # (n, d)
        x = torch.cat([f, torch.ones(len(users), 1, device=f.device)], dim=1)  # (n, d + 1)
        y = self.user_emb[torch.as_tensor(users, device=self.user_emb.device)].float()  # (n, d)
        a = x.T @ x + ridge * torch.eye(x.shape[1], device=x.device)
        self.fold_map = torch.linalg.solve(a, x.T @ y)  # (d + 1, d)
        return self

    def user_vectors(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        """Trained vectors ``(B, d)``, folded in from ``history`` for untrained users."""
        idx = torch.as_tensor(users, dtype=torch.long, device=self.user_emb.device)
        vectors = self.user_emb[idx]
        if self.trained_users is None:
            return vectors
        cold = ~self.trained_users.to(idx.device)[idx]  # (B,)
        if bool(cold.any()):
            rows = cold.cpu().numpy()
            vectors = vectors.clone()
            vectors[cold] = self.fold_in(history[np.flatnonzero(rows)]).to(vectors.dtype)
        return vectors

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return self.user_vectors(users, history) @ self.item_emb.T  # (B, n_items)


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
        scorer = EmbeddingScorer(user_emb.detach(), item_emb.detach(), graph.item_degree,
                                 graph.user_degree > 0)
        return scorer.calibrate_fold_in(graph.train)
