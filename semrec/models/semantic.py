"""Text-only recommendations: a user is the (recency-weighted) mean of the texts they chose.

For user ``u`` with history items ``i_1..i_m`` and item text embeddings ``t_i``
(unit vectors, or zero for items without text)::

    p_u = Σ_j w_j · t_{i_j}                       w_j = 0.5 ** ((T_u − τ_j) / h)
    s(u, i) = cos(p_u, t_i) = <p_u / ‖p_u‖, t_i>

where ``τ_j`` is when ``u`` chose ``i_j``, ``T_u`` the user's latest time and ``h`` the
recency half-life (same unit as the timestamps). Without timestamps, or with
``recency_half_life=None``, every ``w_j = 1`` (a plain mean; normalising makes sum and
mean the same direction). A user with no history, or only text-less items, has
``p_u = 0`` and scores 0 everywhere.

Scores come from the ``history`` rows passed to :meth:`SemanticModel.score`, so a user
unseen at fit time is scored from their events alone. For a fitted user, items of the
training history keep their fitted recency weight and items that arrived since count as
the most recent (weight 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from semrec.errors import ConfigError, DataError, RunError
from semrec.models.base import FittedModel
from semrec.models.space import Param


@dataclass(frozen=True)
class SemanticConfig:
    """Hyper-parameters of the text-only model (``[model]`` with ``name = "semantic"``).

    Which text model encodes the items (and how) is the ``[text]`` section's business
    (:class:`semrec.config.TextConfig`); the encoded matrix comes in as ``item_emb``.

    Args:
        recency_half_life: how long until an interaction counts half as much as the
            user's latest one, in timestamp units (seconds for MovieLens, so one week is
            ``604800``); ``None`` (default) weighs a user's items equally. Ignored where
            the data has no timestamps.
    """

    recency_half_life: float | None = None

    def __post_init__(self) -> None:
        if self.recency_half_life is not None and not self.recency_half_life > 0:
            raise ConfigError(f"model.recency_half_life: expected a positive number or none, "
                              f"got {self.recency_half_life!r}")


#: ``semrec tune``'s search space for this model (see :mod:`semrec.models.space`).
SEARCH_SPACE: dict[str, Param] = {}  # text only: its one knob (recency) depends on the data's time scale

def recency_weights(train: sp.csr_matrix, timestamps: np.ndarray, half_life: float) -> sp.csr_matrix:
    """``W`` with ``train``'s pattern and ``W[u, i] = 0.5 ** ((T_u − τ_ui) / half_life)``.

    Args:
        train: ``(n_users, n_items)`` CSR (canonical: sorted indices, no duplicates).
        timestamps: ``(nnz,)`` time of each stored entry of ``train``, in CSR order.
        half_life: positive, in timestamp units.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    n_rows = train.shape[0]
    lengths = np.diff(train.indptr)
    latest = np.full(n_rows, -np.inf)
    np.maximum.at(latest, np.repeat(np.arange(n_rows), lengths), ts)
    age = np.repeat(latest, lengths) - ts  # (nnz,) >= 0
    w = np.power(0.5, age / half_life).astype(np.float32)
    return sp.csr_matrix((w, train.indices.copy(), train.indptr.copy()), shape=train.shape)


class SemanticModel(FittedModel):
    """Cosine between a user's text profile and each item's text embedding.

    Args:
        n_users: users known at fit time.
        n_items: items (rows of ``item_emb``).
        item_emb: ``(n_items, d)`` item text embeddings (normalised here; zero rows stay
            zero: items without text are never recommended by text).
        device: where the embeddings live and scores are computed.
        hyper: the fields of :class:`SemanticConfig` (validated there).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        item_emb: torch.Tensor | np.ndarray,
        device: torch.device | str = "cpu",
        **hyper,
    ) -> None:
        super().__init__(n_users, n_items)
        self.config = SemanticConfig(**hyper)
        recency_half_life = self.config.recency_half_life
        item_emb = torch.as_tensor(item_emb, dtype=torch.float32)
        if item_emb.dim() != 2 or item_emb.shape[0] != n_items:
            raise DataError(
                f"item_emb must be (n_items, d) = ({n_items}, d), got {tuple(item_emb.shape)}; "
                "encode one text per item in internal index order"
            )
        self.device = torch.device(device)
        self.recency_half_life = recency_half_life
        self.item_emb = F.normalize(item_emb, dim=1).to(self.device)  # (n_items, d)
        self.user_emb = torch.zeros(n_users, item_emb.shape[1], device=self.device)  # (n_users, d)
        self.weights: sp.csr_matrix | None = None  # (n_users, n_items) recency weights

    @property
    def dim(self) -> int:
        return int(self.item_emb.shape[1])

    def fit(
        self, train: sp.csr_matrix, timestamps: sp.csr_matrix | np.ndarray | None = None
    ) -> SemanticModel:
        """Build every user's profile from ``train``.

        Args:
            train: ``(n_users, n_items)`` interactions (non-zero = interacted).
            timestamps: when each interaction happened: a CSR ``(n_users, n_items)`` with
                the time at the same positions as ``train``, or an ``(nnz,)`` array in
                the CSR order of ``train`` (after :meth:`~scipy.sparse.csr_matrix.sum_duplicates`).
                Used only when ``recency_half_life`` is set.
        """
        train = self._check_matrix(train, self.n_users, "train")
        if timestamps is not None and self.recency_half_life is not None:
            if sp.issparse(timestamps):
                ts_m = sp.csr_matrix(timestamps)
                if ts_m.shape != train.shape:
                    raise DataError(f"timestamps must be {train.shape} like train, got {ts_m.shape}")
                rows = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
                ts = np.asarray(ts_m[rows, train.indices]).ravel()
            else:
                ts = np.asarray(timestamps).ravel()
                if ts.shape[0] != train.nnz:
                    raise DataError(
                        f"timestamps must hold one time per stored entry of train ({train.nnz}), "
                        f"got {ts.shape[0]}"
                    )
            self.weights = recency_weights(train, ts, self.recency_half_life)
            self.user_emb = self._profiles(self.weights)
        else:
            self.weights = None
            self.user_emb = self._profiles(train)
        return self

    def _check_matrix(self, m: sp.csr_matrix, n_rows: int | None, what: str) -> sp.csr_matrix:
        m = sp.csr_matrix(m, dtype=np.float32)
        if m.shape[1] != self.n_items or (n_rows is not None and m.shape[0] != n_rows):
            want = f"({n_rows}, {self.n_items})" if n_rows is not None else f"(B, {self.n_items})"
            raise DataError(f"{what} must be {want}, got {m.shape}")
        m.sum_duplicates()
        m.eliminate_zeros()
        return m

    def _profiles(self, w: sp.csr_matrix) -> torch.Tensor:
        """``normalise(W @ T)`` ``(rows, d)`` for a weight matrix ``W`` ``(rows, n_items)``."""
        coo = w.tocoo()
        wt = torch.sparse_coo_tensor(
            torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.int64),
            torch.as_tensor(coo.data, dtype=torch.float32),
            size=w.shape,
            check_invariants=False,
        ).to(self.device)
        return F.normalize(torch.sparse.mm(wt, self.item_emb), dim=1)  # (rows, d)

    def history_weights(self, users: np.ndarray, history: sp.csr_matrix) -> sp.csr_matrix:
        """Weights ``(B, n_items)`` of the items in ``history``: a fitted user's recency
        weight where the item was in training, 1 for everything else."""
        h = self._check_matrix(history, len(users), "history")
        h.data[:] = 1.0
        if self.weights is None:
            return h
        users = np.asarray(users, dtype=np.int64)
        known = (users >= 0) & (users < self.n_users)
        fitted = self.weights[np.where(known, users, 0)]  # (B, n_items)
        fitted = sp.diags(known.astype(np.float32)) @ fitted
        both = h.multiply(fitted).tocsr()  # fitted weight where in both
        only_new = h - h.multiply(fitted > 0)  # 1 where only in history
        return sp.csr_matrix(both + only_new, dtype=np.float32)

    def user_vectors(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        """Unit (or zero) text profiles ``(B, d)`` from the ``history`` rows."""
        return self._profiles(self.history_weights(users, history))

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        """Cosine scores ``(B, n_items)`` of the profiles built from ``history`` rows."""
        return self.user_vectors(users, history) @ self.item_emb.T  # (B, n_items)

    def score_text(self, query_embeddings: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Cosine scores ``(Q, n_items)`` of encoded free-text queries ``(Q, d)`` (or ``(d,)``)."""
        q = torch.as_tensor(query_embeddings, dtype=torch.float32, device=self.device)
        if q.dim() == 1:
            q = q.unsqueeze(0)
        if q.dim() != 2 or q.shape[1] != self.dim:
            raise DataError(
                f"query embeddings must be (Q, {self.dim}) from the same text model as the items, "
                f"got {tuple(q.shape)}"
            )
        return F.normalize(q, dim=1) @ self.item_emb.T  # (Q, n_items)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {
            "item_emb": self.item_emb.cpu(),
            "user_emb": self.user_emb.cpu(),
            "recency_half_life": torch.tensor(
                float("nan") if self.recency_half_life is None else self.recency_half_life,
                dtype=torch.float64,
            ),
        }
        if self.weights is not None:
            state["weights.indptr"] = torch.as_tensor(self.weights.indptr, dtype=torch.int64)
            state["weights.indices"] = torch.as_tensor(self.weights.indices, dtype=torch.int64)
            state["weights.data"] = torch.as_tensor(self.weights.data, dtype=torch.float32)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = [k for k in ("item_emb", "user_emb", "recency_half_life") if k not in state]
        if missing:
            raise RunError(f"semantic model state lacks {', '.join(missing)}; the run folder is incomplete")
        item_emb, user_emb = state["item_emb"], state["user_emb"]
        if tuple(item_emb.shape) != (self.n_items, self.dim) or user_emb.shape[0] != self.n_users:
            raise RunError(
                f"semantic model state is for {user_emb.shape[0]} users x {item_emb.shape[0]} items "
                f"(d={item_emb.shape[1]}), this model has {self.n_users} x {self.n_items} (d={self.dim})"
            )
        self.item_emb = item_emb.to(self.device, torch.float32)
        self.user_emb = user_emb.to(self.device, torch.float32)
        h = float(state["recency_half_life"])
        self.recency_half_life = None if np.isnan(h) else h
        if "weights.indptr" in state:
            self.weights = sp.csr_matrix(
                (
                    state["weights.data"].numpy(),
                    state["weights.indices"].numpy(),
                    state["weights.indptr"].numpy(),
                ),
                shape=(self.n_users, self.n_items),
            )
        else:
            self.weights = None
