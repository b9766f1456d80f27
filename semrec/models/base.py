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
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from semrec.graph.interaction import InteractionGraph


class Scorer(Protocol):
    """Anything that scores users against every item.

    ``ordered`` says what the values of the ``history`` rows are: ``False``, ones (or
    the counts a model was fitted with); ``True``, each interaction's time, so that a
    model reading histories in order (:class:`HistoryScorer`) can sort them. Only the
    pattern of a history row marks items as seen, so both kinds serve for exclusion.
    """

    n_items: int
    ordered: bool

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
    ordered: ClassVar[bool] = False

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


@dataclass
class HistoryScorer(EmbeddingScorer):
    """Inner-product scores of item vectors and users encoded from their history.

    A user's vector is a function of their history (``encoder(users, history, item_emb)``,
    the history rows' values being times), not a trained table: the same code scores a
    test-time history, a served user's live events and a new user, with nothing to fold
    in. ``user_emb`` holds every run user over their whole known history (what serving
    answers from until a user's next event); ``item_layers`` ``(L + 1, n_items, d)`` are
    the graph layers a new item's vector is propagated from.
    """

    #: ``(users (B,), history (B, n) CSR of times, item vectors (n, d), extra (B, d) | None) ->
    #: (B, d)``; ``extra`` is added before normalising (a new user's profile)
    encoder: Callable[..., torch.Tensor] | None = None
    item_layers: torch.Tensor | None = None
    ordered: ClassVar[bool] = True

    def user_vectors(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        """``(B, d)`` from the history rows ``(B, n_items)`` (values: times)."""
        if history.shape[1] != self.n_items:
            raise ValueError(f"history rows span {history.shape[1]} items; this scorer has {self.n_items}")
        return self.encoder(np.asarray(users, dtype=np.int64), sp.csr_matrix(history), self.item_emb)

    def fold_in(self, history: sp.csr_matrix) -> torch.Tensor:
        """New users ``(B, d)``: their history alone (no ID or profile)."""
        return self.user_vectors(np.full(history.shape[0], -1, dtype=np.int64), history)

    def calibrate_fold_in(self, train: sp.csr_matrix, ridge: float = 1.0) -> HistoryScorer:
        return self  # nothing to calibrate: users are encoded, not folded in

    def remember(self, history: sp.csr_matrix) -> HistoryScorer:
        """Fill :attr:`user_emb` with every user encoded over ``history`` ``(n_users,
        n_items)`` (values: times), e.g. all they did in train, valid and test."""
        self.user_emb = self.user_vectors(np.arange(history.shape[0]), history)
        return self


class FittedModel(ABC):
    """A training-free model: ``fit(train)`` then ``score``.

    State is a flat mapping of tensors so that it saves as safetensors.
    """

    ordered: ClassVar[bool] = False  # history rows hold ones (see Scorer)

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

    ``neg_items`` is ``(B, n_neg)`` for ranking; ``ratings`` is set for rating tasks. A
    model that trains on whole users (``batches = "users"``) gets ``users`` alone.
    """

    users: torch.Tensor
    pos_items: torch.Tensor | None = None
    neg_items: torch.Tensor | None = None
    ratings: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.users), move(self.pos_items), move(self.neg_items), move(self.ratings))


class TrainableModel(nn.Module, ABC):
    """A model trained by :func:`semrec.train.loop.fit`.

    Built from plain ints and hyper-parameters; the graph is passed to ``forward``
    and ``loss``, never stored. ``batches`` says what a training batch holds:
    ``"interactions"`` (user, positive, negatives) or ``"users"`` (whole users, whose
    training sequences the model reads from the graph).
    """

    batches: ClassVar[str] = "interactions"

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
        return self.scorer_from_embeddings(item_emb.detach(), graph.train, user_emb.detach())

    def scorer_from_embeddings(self, item_emb: torch.Tensor, train: sp.csr_matrix,
                               user_emb: torch.Tensor | None = None) -> EmbeddingScorer:
        """The scorer over final embeddings (as saved in a run folder); users without
        training interactions are folded in."""
        dev = item_emb.device
        return EmbeddingScorer(
            user_emb, item_emb,
            item_degree=torch.as_tensor(np.asarray(train.getnnz(axis=0)), device=dev),
            trained_users=torch.as_tensor(np.asarray(train.getnnz(axis=1)) > 0, device=dev),
        ).calibrate_fold_in(train)
