"""The user–item interaction graph and its normalised adjacency.

Users and items keep separate index spaces: instead of one square
``(n_users + n_items)`` adjacency we keep the bipartite block
``R̂ = D_u^{-1/2} R D_i^{-1/2}``, so that one propagation step is
``U' = R̂ V`` and ``V' = R̂ᵀ U`` — the same numbers as LightGCN's symmetric
normalisation of the square matrix, without offset arithmetic.
"""
from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import torch

from semrec.graph.sequences import Sequences


def normalize_bipartite(r: sp.csr_matrix) -> sp.csr_matrix:
    """``D_u^{-1/2} R D_i^{-1/2}``; rows or columns with degree 0 stay 0.

    ``D_u`` and ``D_i`` are the row and column sums of ``R`` (``(n_users, n_items)``).
    """
    r = sp.csr_matrix(r, dtype=np.float32)
    du = np.asarray(r.sum(axis=1)).ravel()
    di = np.asarray(r.sum(axis=0)).ravel()
    with np.errstate(divide="ignore"):
        su = np.where(du > 0, du ** -0.5, 0.0).astype(np.float32)
        si = np.where(di > 0, di ** -0.5, 0.0).astype(np.float32)
    return sp.csr_matrix(sp.diags(su) @ r @ sp.diags(si), dtype=np.float32)


def to_torch_csr(m: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor (float32) on ``device``."""
    m = sp.csr_matrix(m, dtype=np.float32)
    with warnings.catch_warnings():
        # torch marks sparse CSR as beta; the products used here are stable.
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.as_tensor(m.indptr, dtype=torch.int64),
            torch.as_tensor(m.indices, dtype=torch.int64),
            torch.as_tensor(m.data, dtype=torch.float32),
            size=m.shape,
            check_invariants=False,
        ).to(device)


class _SparseProduct(torch.autograd.Function):
    """``A @ X`` for a constant sparse ``A`` whose transpose is already at hand.

    torch's own backward of ``torch.sparse.mm(A_csr, X)`` re-builds ``Aᵀ`` as a CSR
    matrix (a sort of all non-zeros) on every call; here the backward is the product
    with the precomputed ``Aᵀ``, so a training step costs two plain sparse products
    per layer.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a_t = a_t
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, torch.sparse.mm(ctx.a_t, grad)


def sparse_product(a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a @ x`` (``a`` sparse ``(m, n)``, ``x`` dense ``(n, d)``) whose gradient with
    respect to ``x`` uses ``a_t`` (= ``aᵀ``, sparse ``(n, m)``)."""
    if not x.requires_grad:
        return torch.sparse.mm(a, x)
    return _SparseProduct.apply(a, a_t, x)


class InteractionGraph:
    """Training interactions as a graph, with derived matrices built on first use.

    Args:
        train: ``(n_users, n_items)`` binary CSR of training interactions.
        device: where the torch matrices live.
        item_item: optional ``(n_items, n_items)`` item–item graph (the semantic kNN
            graph); rows are normalised to sum to 1 for propagation.
        order: optional ``(n_users, n_items)`` CSR of the training interactions' times
            (same pattern as ``train``): the users' ordered sequences and the
            item-transition graph are built from it. ``None``: ``train`` itself (no
            order; sequences fall back to item order).
    """

    def __init__(
        self,
        train: sp.csr_matrix,
        device: torch.device | str = "cpu",
        item_item: sp.csr_matrix | None = None,
        order: sp.csr_matrix | None = None,
    ) -> None:
        self.train = sp.csr_matrix(train, dtype=np.float32)
        self.device = torch.device(device)
        if order is not None and order.shape != self.train.shape:
            raise ValueError(f"order is {order.shape}, expected {self.train.shape}")
        self.order = order
        if item_item is not None and item_item.shape != (self.n_items, self.n_items):
            raise ValueError(
                f"item_item graph is {item_item.shape}, expected ({self.n_items}, {self.n_items})"
            )
        self.item_item = None if item_item is None else sp.csr_matrix(item_item, dtype=np.float32)

    @property
    def n_users(self) -> int:
        return self.train.shape[0]

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    @cached_property
    def norm(self) -> sp.csr_matrix:
        """``R̂`` as scipy CSR ``(n_users, n_items)``."""
        return normalize_bipartite(self.train)

    @cached_property
    def norm_ui(self) -> torch.Tensor:
        """``R̂`` as torch sparse CSR ``(n_users, n_items)``, for ``U' = R̂ V``."""
        return to_torch_csr(self.norm, self.device)

    @cached_property
    def norm_iu(self) -> torch.Tensor:
        """``R̂ᵀ`` as torch sparse CSR ``(n_items, n_users)``, for ``V' = R̂ᵀ U``."""
        return to_torch_csr(self.norm.T.tocsr(), self.device)

    def users_from_items(self, item_emb: torch.Tensor) -> torch.Tensor:
        """One propagation step to users: ``R̂ V`` ``(n_users, d)``."""
        return sparse_product(self.norm_ui, self.norm_iu, item_emb)

    def items_from_users(self, user_emb: torch.Tensor) -> torch.Tensor:
        """One propagation step to items: ``R̂ᵀ U`` ``(n_items, d)``."""
        return sparse_product(self.norm_iu, self.norm_ui, user_emb)

    def items_from_items(self, item_emb: torch.Tensor) -> torch.Tensor:
        """One step over the row-normalised item–item graph: ``S V`` ``(n_items, d)``."""
        return sparse_product(self.item_item_t, self.item_item_tt, item_emb)

    @cached_property
    def item_item_tt(self) -> torch.Tensor | None:
        """``Sᵀ`` (for the gradient of ``S V``)."""
        if self.item_item_t is None:
            return None
        return self.item_item_t.to_sparse_coo().t().to_sparse_csr()

    @cached_property
    def user_degree(self) -> torch.Tensor:
        """Training interactions per user ``(n_users,)`` (0: a cold user)."""
        return torch.as_tensor(np.asarray(self.train.getnnz(axis=1)), device=self.device)

    @cached_property
    def item_degree(self) -> torch.Tensor:
        """Training interactions per item ``(n_items,)`` (0: a cold item)."""
        return torch.as_tensor(np.asarray(self.train.getnnz(axis=0)), device=self.device)

    @cached_property
    def warm_items(self) -> torch.Tensor:
        """Indices ``(W,)`` of the items with training interactions (a softmax's classes)."""
        return torch.as_tensor(np.flatnonzero(self.train.getnnz(axis=0) > 0), device=self.device)

    @cached_property
    def warm_position(self) -> torch.Tensor:
        """``(n_items,)``: each warm item's position in :attr:`warm_items` (-1 for the others)."""
        pos = torch.full((self.n_items,), -1, dtype=torch.long, device=self.device)
        pos[self.warm_items] = torch.arange(len(self.warm_items), device=self.device)
        return pos

    @cached_property
    def mean_ui(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``D_u⁻¹ R`` (each user's row averages their items) and its transpose, as torch
        sparse CSR."""
        m = row_normalize(self.train)
        return to_torch_csr(m, self.device), to_torch_csr(m.T.tocsr(), self.device)

    def users_mean(self, item_emb: torch.Tensor) -> torch.Tensor:
        """Each user's mean item vector ``D_u⁻¹ R V`` ``(n_users, d)`` (0 without items)."""
        m, m_t = self.mean_ui
        return sparse_product(m, m_t, item_emb)

    @cached_property
    def edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Edge list ``(user indices (E,), item indices (E,))`` in CSR order."""
        coo = self.train.tocoo()
        return (
            torch.as_tensor(coo.row, dtype=torch.long, device=self.device),
            torch.as_tensor(coo.col, dtype=torch.long, device=self.device),
        )

    @cached_property
    def item_item_t(self) -> torch.Tensor | None:
        """Row-normalised item–item graph ``S`` as torch sparse CSR, for ``V' = S V``.

        Only positive similarities are edges: a neighbour with a negative cosine is
        dissimilar and must not be averaged in as if it were alike.
        """
        if self.item_item is None:
            return None
        return to_torch_csr(row_normalize(self.item_item.maximum(0)), self.device)

    @cached_property
    def sequences(self) -> Sequences:
        """Every user's training items, oldest first (item order where none is known)."""
        return Sequences(self.train if self.order is None else self.order)

    @cached_property
    def transitions_t(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The item-transition graph ``T`` (``i → j`` when ``j`` follows ``i`` in a user's
        training sequence, both directions, counts row-normalised) and ``Tᵀ``, as torch
        sparse CSR, for ``V' = T V``."""
        m = self.sequences.transitions()
        t = row_normalize(m + m.T)
        return to_torch_csr(t, self.device), to_torch_csr(t.T.tocsr(), self.device)

    def items_from_transitions(self, item_emb: torch.Tensor) -> torch.Tensor:
        """One step over the row-normalised item-transition graph: ``T V`` ``(n_items, d)``."""
        t, t_t = self.transitions_t
        return sparse_product(t, t_t, item_emb)


def row_normalize(m: sp.spmatrix) -> sp.csr_matrix:
    """``D⁻¹ M`` with ``D`` the row sums (rows summing to 0 stay 0), float32 CSR."""
    m = sp.csr_matrix(m, dtype=np.float32)
    rows = np.asarray(m.sum(axis=1)).ravel()
    inv = np.divide(1.0, rows, out=np.zeros_like(rows), where=rows > 0)
    return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ m, dtype=np.float32)
