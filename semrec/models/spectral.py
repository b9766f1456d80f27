"""The spectral math behind :mod:`semrec.models.graphfilter`: the normalised item–item
operator, its top eigenpairs, and the published filters' responses.

Notation. ``R`` ``(n_users, n_items)`` is the interaction matrix, ``d_u`` and ``d_i`` its
row and column sums. The normalised matrix is

``R̃ = D_u^{-a} R D_i^{-b} / σ₁``

with user and item exponents ``a`` and ``b`` (``a = b = 1/2`` is LightGCN's and GF-CF's
symmetric normalisation) and ``σ₁`` the largest singular value of ``D_u^{-a} R D_i^{-b}``
(exactly 1 when ``a = b = 1/2``), so that the item–item operator ``P̃ = R̃ᵀR̃`` has its
spectrum in ``[0, 1]``: eigenvalue ``s`` near 1 is a smooth (low-frequency) signal on the
item graph, near 0 a rough one. A graph filter is a response ``F(s)`` applied to a
history signal through ``P̃``'s eigenvectors.

The filters of the published family, as responses on ``[0, 1]``:

* ``linear`` — ``F(s) = s``: the linear low-pass ``P̃`` of GF-CF (Shen et al., CIKM 2021);
* ``plateau`` — ChebyCF's target (Kim et al., SIGIR 2025), written in the rescaled
  Laplacian eigenvalue ``x = 1 - 2s`` ∈ ``[-1, 1]``: ``F = 1/2 - sign(x)·|x|^φ / 2``, a
  step at ``s = 1/2`` whose flatness ``φ`` sets how sharp it is (``φ = 1`` is the linear
  filter; larger ``φ`` flattens both ends);
* ``bspm`` — BSPM (Choi et al., SIGIR 2023): blurring by one Euler step of the heat
  equation ``dr/dt = r(P̃ - I)`` over ``t ∈ [0, 1]`` (``r ↦ r P̃``), then sharpening by one
  classical Runge–Kutta step of ``dr/dt = -r P̃`` over ``[0, T]``, which multiplies by
  ``q(s) = Σ_{j=0}^{4} (-T s)^j / j!``: ``F(s) = s · q(s)``. The ideal low-pass term is
  added before sharpening, so it is sharpened too.

Each filter also adds an ideal low-pass ``α·V_k V_kᵀ`` on the top-``k`` eigenvectors
(GF-CF, BSPM and ChebyCF all do), multiplied by ``q(s)`` for ``bspm`` and by 1 otherwise:
:func:`response` returns the pair ``(F, M)`` and the top-``k`` eigenvalue ``s_j`` gets
``F(s_j) + α·M(s_j)``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from numpy.polynomial import chebyshev

from semrec.graph.interaction import to_torch_csr

#: Matrices with at most this many entries (``n_rows · n_cols``; 64 MB as float64)
#: get an exact dense SVD; larger ones the randomized one.
EXACT_SVD_MAX_ENTRIES = 2**23

FilterKind = Literal["linear", "plateau", "bspm"]
FILTERS: tuple[str, ...] = ("linear", "plateau", "bspm")


def normalize(r: sp.csr_matrix, user_exponent: float, item_exponent: float) -> sp.csr_matrix:
    """``D_u^{-a} R D_i^{-b}`` as float32 CSR; rows and columns with degree 0 stay 0.

    Args:
        r: ``(n_rows, n_cols)`` non-negative weights (interactions, or text similarities).
        user_exponent: ``a``, applied to the row sums ``D_u``.
        item_exponent: ``b``, applied to the column sums ``D_i``.
    """
    r = sp.csr_matrix(r, dtype=np.float32)
    du = np.asarray(r.sum(axis=1), dtype=np.float64).ravel()  # (n_rows,)
    di = np.asarray(r.sum(axis=0), dtype=np.float64).ravel()  # (n_cols,)
    with np.errstate(divide="ignore"):
        su = np.where(du > 0, du ** -user_exponent, 0.0).astype(np.float32)
        si = np.where(di > 0, di ** -item_exponent, 0.0).astype(np.float32)
    out = sp.csr_matrix(sp.diags(su) @ r @ sp.diags(si), dtype=np.float32)
    out.eliminate_zeros()
    return out


#: Rows per block when a tall ``(n, q)`` block is multiplied in place, so that the
#: eigensolver's work space stays at two blocks (about 3 GiB at 10x Gowalla, k = 1024).
ROW_CHUNK = 32768


def _times_in_place(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x ← x m`` for a tall ``x`` ``(n, q)`` and a square ``m`` ``(q, q)``, a row block
    at a time (no second ``(n, q)`` block); returns ``x``."""
    for start in range(0, x.shape[0], ROW_CHUNK):
        x[start:start + ROW_CHUNK] = x[start:start + ROW_CHUNK] @ m
    return x


def _orthonormalize(x: torch.Tensor, rounds: int = 2) -> torch.Tensor:
    """Orthonormal basis of the columns of ``x`` ``(n, q)`` by Cholesky QR, in place.

    ``rounds`` times ``x ← x L⁻ᵀ`` with ``L Lᵀ = xᵀx`` (factorised and inverted in
    float64); two rounds (CholeskyQR2) are orthonormal to float precision when ``x`` is
    well conditioned, one round is enough inside a power iteration. It is two matrix
    products and a ``q×q`` factorisation, several times faster than Householder QR
    for tall blocks.
    """
    for _ in range(rounds):
        gram = (x.T @ x).double()  # (q, q)
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        chol = torch.linalg.cholesky(gram + 1e-12 * gram.diagonal().mean() * eye)
        inv_t = torch.linalg.solve_triangular(chol, eye, upper=False).T  # L⁻ᵀ (q, q)
        x = _times_in_place(x, inv_t.to(x.dtype))
    return x


def top_singular_pairs(
    m: sp.csr_matrix,
    k: int,
    iters: int = 4,
    oversample: int = 64,
    seed: int = 0,
    exact: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest singular values of ``m`` ``(n_rows, n_cols)``, squared, and their
    right singular vectors: ``(V (n_cols, k) float32, s (k,) float64)``, largest first.
    ``s`` are the top eigenvalues of ``mᵀm`` and ``V`` its eigenvectors.

    Small matrices (``n_rows · n_cols <= EXACT_SVD_MAX_ENTRIES``) use a dense LAPACK SVD. Large
    ones use randomized subspace iteration (Halko, Martinsson & Tropp 2011, Alg. 4.4)
    on ``mᵀm`` with a ``k + oversample`` block, CholeskyQR re-orthonormalisation and a
    final Rayleigh–Ritz step, whose Ritz values are the returned ``s``.

    Why neither ``scipy.sparse.linalg.svds`` nor ``torch.svd_lowrank``, measured on
    Gowalla (R̃ 29,858 × 40,981, 810k non-zeros, k = 256) on 2 shared CPU cores:

    * ARPACK ``svds``: 34 s in one run, 142 s in another with the cores busier. Its
      restarts are Householder work on 513-column blocks through OpenBLAS, whose
      threads degrade badly on shared cores (a 41k × 512 QR took 70 s under load).
    * ``torch.svd_lowrank(q=320, niter=4)``: 55 s, against 8–12 s for this function
      with the same block (``k + oversample = 320``) and iterations, run back to
      back. It spends its time in Householder QR and COO products; this function
      in matrix products (CSR products, CholeskyQR), which share cores well.
    * accuracy: both recover about 80% of the exact top-256 subspace
      (``||V_exactᵀ V||²_F / k``: 0.81 and 0.78). The spectrum is flat there
      (σ₂₅₆ = 0.489, σ₃₈₄ = 0.460), so the last directions are nearly
      interchangeable.

    Args:
        m: sparse matrix ``(n_rows, n_cols)``.
        k: number of pairs, ``1 <= k < min(n_rows, n_cols)``.
        iters: subspace iterations (each one product with ``m`` and one with
            ``mᵀ``); default 4.
        oversample: extra block columns; default 64.
        seed: seed of the Gaussian starting block; default 0.
        exact: force the dense (``True``) or randomized (``False``) path; default
            ``None`` chooses by size.
    """
    n_rows, n_cols = m.shape
    if not 1 <= k < min(n_rows, n_cols):
        raise ValueError(f"k: expected 1 <= k < min{m.shape} = {min(m.shape)}, got {k}")
    if exact is None:
        exact = n_rows * n_cols <= EXACT_SVD_MAX_ENTRIES
    if exact:
        dense = torch.as_tensor(m.toarray(), dtype=torch.float64)
        _, sv, vh = torch.linalg.svd(dense, full_matrices=False)  # (r,), (r, n_cols)
        return vh[:k].T.to(torch.float32).contiguous(), sv[:k] ** 2  # (n_cols, k), (k,)
    a = to_torch_csr(m)  # (n_rows, n_cols)
    at = to_torch_csr(m.T.tocsr())  # (n_cols, n_rows)
    q = min(k + oversample, min(n_rows, n_cols))
    gen = torch.Generator().manual_seed(seed)
    basis = _orthonormalize(torch.randn(n_cols, q, generator=gen), rounds=1)  # (n_cols, q)
    for step in range(iters):
        # one step multiplies direction j by s_j² (at most 1 for R̃): conditioning stays mild
        rows = torch.sparse.mm(a, basis)  # (n_rows, q)
        del basis  # at most two blocks alive at a time
        basis = _orthonormalize(torch.sparse.mm(at, rows), rounds=2 if step == iters - 1 else 1)  # (n_cols, q)
        del rows
    y = torch.sparse.mm(a, basis)  # (n_rows, q)
    gram = (y.T @ y).double()  # (q, q)
    del y
    evals, evecs = torch.linalg.eigh(gram)  # ascending, (q,), (q, q)
    top = torch.argsort(evals, descending=True)[:k]  # (k,)
    rotation = evecs[:, top].to(torch.float32)  # (q, k); a rotation: float32 suffices
    vectors = torch.empty(n_cols, k)
    for start in range(0, n_cols, ROW_CHUNK):
        vectors[start:start + ROW_CHUNK] = basis[start:start + ROW_CHUNK] @ rotation
    return vectors, evals[top].clamp(min=0.0)  # (n_cols, k), (k,)


def top_singular_value(m: sp.csr_matrix, iters: int = 30, seed: int = 0) -> float:
    """The largest singular value of ``m``, by block power iteration on ``mᵀm`` (a
    4-column block, then Rayleigh–Ritz); 0 for a zero matrix."""
    if m.nnz == 0:
        return 0.0
    if m.shape[0] * m.shape[1] <= EXACT_SVD_MAX_ENTRIES:
        return float(np.linalg.norm(m.toarray().astype(np.float64), 2))
    mt = m.T.tocsr()
    rng = np.random.default_rng(seed)
    x = np.linalg.qr(rng.standard_normal((m.shape[1], min(4, m.shape[1]))))[0]  # (n_cols, 4)
    for _ in range(iters):
        x = np.linalg.qr(mt @ (m @ x))[0]
    y = m @ x  # (n_rows, 4)
    return float(np.sqrt(max(np.linalg.eigvalsh(y.T @ y).max(), 0.0)))


def plateau(s: np.ndarray, flatness: float) -> np.ndarray:
    """ChebyCF's response ``1/2 - sign(x)·|x|^φ / 2`` at ``x = 1 - 2s`` (module doc)."""
    x = 1.0 - 2.0 * np.asarray(s, dtype=np.float64)
    return 0.5 - 0.5 * np.sign(x) * np.abs(x) ** flatness


def rk4_sharpening(s: np.ndarray, t: float) -> np.ndarray:
    """``q(s) = Σ_{j=0}^{4} (-t s)^j / j!``: one Runge–Kutta-4 step of ``dr/dt = -r P̃``
    of length ``t``, on eigenvalue ``s``."""
    z = -t * np.asarray(s, dtype=np.float64)
    return sum(z**j / math.factorial(j) for j in range(5))


def response(kind: str, flatness: float = 1.5, sharpen: float = 2.5) -> tuple[
        Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """``(F, M)`` of filter ``kind`` (module doc): the response ``F(s)`` and the factor
    ``M(s)`` of the ideal low-pass term, as vectorised functions of ``s`` ∈ ``[0, 1]``.

    Args:
        kind: ``linear``, ``plateau`` or ``bspm``.
        flatness: ``φ`` of ``plateau``.
        sharpen: ``T`` of ``bspm``'s sharpening step.
    """
    one = lambda s: np.ones_like(np.asarray(s, dtype=np.float64))  # noqa: E731
    if kind == "linear":
        return (lambda s: np.asarray(s, dtype=np.float64)), one
    if kind == "plateau":
        return (lambda s: plateau(s, flatness)), one
    if kind == "bspm":
        return (lambda s: np.asarray(s, dtype=np.float64) * rk4_sharpening(s, sharpen)), (
            lambda s: rk4_sharpening(s, sharpen))
    raise ValueError(f"filter: expected one of {', '.join(FILTERS)}, got {kind!r}")


def chebyshev_fit(fn: Callable[[np.ndarray], np.ndarray], order: int, span: float) -> np.ndarray:
    """Coefficients ``c`` ``(order + 1,)`` of the polynomial of degree ``order`` that
    interpolates ``fn`` on ``[0, span]`` at the Chebyshev nodes (of the first kind), in the
    Chebyshev basis of ``t = 2s/span - 1``: ``p(s) = Σ_j c_j T_j(2s/span - 1)``.

    Interpolating at Chebyshev nodes (ChebyCF's choice) keeps the error close to the
    best polynomial's and free of Runge oscillations.
    """
    if order < 0 or not span > 0:
        raise ValueError(f"chebyshev_fit: expected order >= 0 and span > 0, got {order}, {span}")
    return chebyshev.chebinterpolate(lambda t: fn((np.asarray(t) + 1.0) * span / 2.0), order)


def chebyshev_eval(c: np.ndarray, s: np.ndarray, span: float) -> np.ndarray:
    """``p(s)`` for the coefficients of :func:`chebyshev_fit`."""
    return chebyshev.chebval(2.0 * np.asarray(s, dtype=np.float64) / span - 1.0, c)
