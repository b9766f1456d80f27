"""Training-free graph filters: GF-CF, ChebyCF and BSPM in one model, optionally with the
items' text mixed into the item–item operator.

A user's history row ``r_u`` ``(n_items,)`` is a signal on the item graph. With the
normalised item–item operator ``P̃`` (spectrum in ``[0, 1]``, see
:mod:`semrec.models.spectral`), its top-``k`` eigenpairs ``(s_j, v_j)`` and the item
degrees ``d`` (training interactions, at least 1), the score is

``s_u = [ p(P̃) x_u + V_k diag(g) V_kᵀ x_u ] ∘ d^β``,   ``x_u = r_u ∘ d^{-β}``

* ``F`` and ``M`` are the chosen filter's response and ideal-pass factor
  (:func:`~semrec.models.spectral.response`: ``linear`` for GF-CF, ``plateau`` for ChebyCF,
  ``bspm`` for BSPM), ``α`` the weight of the ideal low-pass on the top-``k``;
* ``p`` is the polynomial of degree ``order`` interpolating ``F`` at Chebyshev nodes on
  ``[0, s_k]``, the part of the spectrum the eigenvectors do not cover (``[0, 1]`` when
  ``k = 0``), applied by the Chebyshev recurrence: ``order`` products with ``P̃``;
* ``g_j = F(s_j) + α·M(s_j) - p(s_j)`` puts the exact response back on the top-``k``.
  With ``exact_top = false`` (the published filters' own form) ``p`` interpolates ``F``
  on all of ``[0, 1]`` and ``g_j = α·M(s_j)``: ChebyCF is ``order = 8``, BSPM ``order = 5``
  (its response is a polynomial of degree 5), GF-CF ``order = 1``;
* ``β`` is ChebyCF's degree normalisation: the input is divided by ``d^β`` and the
  output multiplied by it (``β > 0`` favours popular items).

So the filter is exact on the top-``k`` eigenvectors and polynomial below them. ChebyCF
applies a degree-8 Chebyshev interpolation over the whole spectrum (8 products with
``P̃`` per user); below the top 512 eigenvalues of Gowalla's ``P̃`` (``s ≤ 0.21``) its
response is nearly straight, so ``order = 1`` (one product, GF-CF's cost) reproduces it:
validation numbers in BENCHMARKS.md ("Graph filters (issue #18)").

With ``user_exponent = item_exponent = 1/2`` and ``β = 0``, ``filter = "linear"`` is GF-CF's
linear filter plus an ideal low-pass. GF-CF itself normalises only its ideal term
(``β = 1/2`` there, 0 on the linear term); one ``β`` for both is ChebyCF's form.

Text (:class:`TextGraphFilter`): the item–item operator mixes the interaction graph with
the items' semantic neighbour graph ``S`` (each item's ``text_k`` nearest items by text
cosine, :func:`~semrec.graph.semantic.semantic_knn`). Every item becomes a pseudo-user
whose "interactions" are itself and its neighbours, weighted by cosine: ``T = I + S``
(negative cosines dropped, items without text left out), normalised like ``R``. Stacking

``M = [ √(1 - w) · R̃ ; √w · T̃ ]``,   ``P̃ = MᵀM = (1 - w) R̃ᵀR̃ + w T̃ᵀT̃``

keeps ``P̃`` symmetric positive semi-definite with its spectrum in ``[0, 1]``, so
everything above applies unchanged (``w`` = ``text_weight``). An item nobody interacted
with (a cold item) is then linked to its text neighbours, and a history of warm items
reaches it; in a sparse catalogue text adds links the interactions lack.

Memory: ``P̃`` is ``(n_items, n_items)`` and fairly dense (Gowalla: 42M non-zeros), so it
is never formed: ``P̃ x`` is ``Mᵀ(M x)``, a sparse–sparse product (the history is very
sparse) then a sparse–dense one (``nnz(M)`` multiply-adds per user); each further order
is two sparse–dense products. The top-``k`` term is ``(x V_k)`` ``(B, k)`` then a
``k``-deep matrix product. A batch of ``B`` users needs ``B·(n_rows + 2·n_items)`` floats
of work space (``n_rows``: users, plus items with text); the model holds ``M`` twice
(CSR), ``V_k`` ``(n_items, k)`` and the degrees.

Incremental: scores come from the history rows alone, so a user's new events change the
answer at the next call, and users unknown at fit time are scored from their events.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from semrec.errors import ConfigError, DataError
from semrec.graph.interaction import to_torch_csr
from semrec.graph.semantic import ZERO_NORM, semantic_knn
from semrec.models.base import FittedModel
from semrec.models.mf import check_non_negative, check_positive
from semrec.models.space import Choice, Float, Int, Param
from semrec.models.spectral import (
    FILTERS,
    chebyshev_eval,
    chebyshev_fit,
    normalize,
    response,
    top_singular_pairs,
    top_singular_value,
)


@dataclass(frozen=True)
class GraphFilterConfig:
    """Hyper-parameters of :class:`GraphFilter`, the one place they are declared; the
    defaults are the best on Gowalla's validation part (``given``: 10% of each user's
    training items; BENCHMARKS.md, "Graph filters (issue #18)").

    Args:
        filter: the response (:func:`~semrec.models.spectral.response`): ``bspm``
            (BSPM, default), ``plateau`` (ChebyCF) or ``linear`` (GF-CF).
        flatness: ``φ`` of ``plateau``; default 1.5 (ChebyCF's value for Gowalla).
        sharpen: length ``T`` of ``bspm``'s sharpening step; default 1.5.
        alpha: weight ``α`` of the ideal low-pass on the top-``k`` eigenvectors; default 0.1.
        k: eigenvectors of ``P̃`` computed and filtered exactly; default 1024, clipped to
            ``min(n_rows, n_items) - 1`` on small data. 0: none (no ideal low-pass, and
            the polynomial covers the whole spectrum).
        order: degree of the Chebyshev polynomial applied below the top-``k``
            (``order`` products with ``P̃`` per scored user); default 1. 0: none (the
            top-``k`` eigenvectors alone).
        exact_top: the top-``k`` eigenvectors get the exact response (default true).
            ``false`` is the published filters' form: the polynomial covers the whole
            spectrum ``[0, 1]`` and the top-``k`` get only the ideal low-pass ``α·M(s)``
            (ChebyCF: ``order = 8``; BSPM: ``order = 5``, its response's exact degree).
        degree_exponent: ``β`` of the degree normalisation; default 0.2.
        user_exponent: ``a`` in ``R̃ = D_u^{-a} R D_i^{-b}``; default 0.3.
        item_exponent: ``b``; default 0.4.
        svd_iters: subspace iterations of the randomized eigensolver (large graphs only);
            default 4.
        svd_oversample: extra columns of its search block; default 64.
        svd_seed: seed of its starting block; default 0.
    """

    filter: Literal["linear", "plateau", "bspm"] = "bspm"
    flatness: float = 1.5
    sharpen: float = 1.5
    alpha: float = 0.1
    k: int = 1024
    order: int = 1
    exact_top: bool = True
    degree_exponent: float = 0.2
    user_exponent: float = 0.3
    item_exponent: float = 0.4
    svd_iters: int = 4
    svd_oversample: int = 64
    svd_seed: int = 0

    def __post_init__(self) -> None:
        if self.filter not in FILTERS:
            raise ConfigError(f"model.filter: expected one of {', '.join(FILTERS)}, got {self.filter!r}")
        check_positive("model.flatness", self.flatness, error=ConfigError)
        check_non_negative("model.sharpen", self.sharpen, error=ConfigError)
        check_non_negative("model.alpha", self.alpha, error=ConfigError)
        check_non_negative("model.k", self.k, error=ConfigError)
        check_non_negative("model.order", self.order, error=ConfigError)
        if self.k == 0 and self.order == 0:
            raise ConfigError("model.k and model.order are both 0: the filter would score nothing; "
                              "set k (eigenvectors) or order (polynomial degree) above 0")
        for name in ("degree_exponent", "user_exponent", "item_exponent"):
            check_non_negative(f"model.{name}", getattr(self, name), error=ConfigError)
        check_positive("model.svd_iters", self.svd_iters, error=ConfigError)
        check_non_negative("model.svd_oversample", self.svd_oversample, error=ConfigError)

    #: fields that only change how the fitted operator is filtered (no refit needed)
    FILTER_FIELDS = ("filter", "flatness", "sharpen", "alpha", "order", "exact_top", "degree_exponent")


@dataclass(frozen=True)
class TextGraphFilterConfig(GraphFilterConfig):
    """Hyper-parameters of :class:`TextGraphFilter`: those of :class:`GraphFilterConfig`,
    with the defaults that were best on amazon-office's validation part (``leave-one-out``;
    BENCHMARKS.md) where they differ: ``filter = "plateau"``, ``flatness = 2``, ``alpha =
    0.2``, ``k = 512``, ``order = 2``; and

    Args:
        text_weight: share ``w`` of the text graph in the item–item operator, in
            ``[0, 1)``; default 0.4. 0 is the interaction graph alone.
        text_k: semantic neighbours per item; default 20.
    """

    filter: Literal["linear", "plateau", "bspm"] = "plateau"
    flatness: float = 2.0
    alpha: float = 0.2
    k: int = 512
    order: int = 2
    text_weight: float = 0.4
    text_k: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.text_weight < 1.0:
            raise ConfigError(f"model.text_weight: expected a number in [0, 1), got {self.text_weight!r}")
        check_positive("model.text_k", self.text_k, error=ConfigError)


#: ``semrec tune``'s search spaces (see :mod:`semrec.tune.space`).
SEARCH_SPACE: dict[str, Param] = {
    "model.filter": Choice(FILTERS),
    "model.alpha": Float(0.0, 0.5),
    "model.k": Int(64, 1024, log=True),
    "model.degree_exponent": Float(0.0, 0.6),
    "model.user_exponent": Float(0.2, 0.6),
    "model.item_exponent": Float(0.3, 0.6),
}
TEXT_SEARCH_SPACE: dict[str, Param] = {
    **SEARCH_SPACE,
    "model.text_weight": Float(0.0, 0.9),
    "model.text_k": Int(5, 100, log=True),
}


class GraphFilter(FittedModel):
    """``s_u = [p(P̃) x_u + V_k diag(g) V_kᵀ x_u] ∘ d^β`` (module doc).

    Args:
        n_users: users in the training matrix.
        n_items: items.
        hyper: the fields of :class:`GraphFilterConfig`.
    """

    config_class: type[GraphFilterConfig] = GraphFilterConfig

    def __init__(self, n_users: int, n_items: int, **hyper) -> None:
        super().__init__(n_users, n_items)
        check_positive("n_users", n_users)
        check_positive("n_items", n_items)
        self.config = self.config_class(**hyper)
        self._op: sp.csr_matrix | None = None  # M (n_rows, n_items)
        self._op_t: torch.Tensor | None = None  # Mᵀ, torch CSR
        self._op_torch: torch.Tensor | None = None  # M, torch CSR (order >= 2 only)
        self._vectors: torch.Tensor | None = None  # V_k (n_items, k)
        self._values: torch.Tensor | None = None  # s (k,) float64
        self._degree: torch.Tensor | None = None  # d (n_items,) training interactions

    # ------------------------------------------------------------------ fitting
    def _operator(self, train: sp.csr_matrix) -> sp.csr_matrix:
        """``M`` with ``MᵀM = P̃``: here ``R̃`` alone."""
        return scaled(train, self.config)

    def fit(self, train: sp.csr_matrix) -> GraphFilter:
        """Build the operator from ``train`` ``(n_users, n_items)`` and take its top-``k``
        eigenpairs."""
        train = sp.csr_matrix(train, dtype=np.float32)
        if train.shape != (self.n_users, self.n_items):
            raise ValueError(
                f"train has shape {train.shape}; this model was built for ({self.n_users}, {self.n_items})"
            )
        op = self._operator(train)
        cfg = self.config
        k = min(cfg.k, min(op.shape) - 1)
        if k < 1 or op.nnz == 0:
            vectors, values = torch.zeros(self.n_items, 0), torch.zeros(0, dtype=torch.float64)
        else:
            vectors, values = top_singular_pairs(op, k, iters=cfg.svd_iters, oversample=cfg.svd_oversample,
                                                 seed=cfg.svd_seed)
        degree = torch.as_tensor(np.asarray(train.getnnz(axis=0)), dtype=torch.float32)  # (n_items,)
        self._set(op, vectors, values, degree)
        return self

    def _set(self, op: sp.csr_matrix, vectors: torch.Tensor, values: torch.Tensor, degree: torch.Tensor) -> None:
        self._op = sp.csr_matrix(op, dtype=np.float32)
        self._op_t = to_torch_csr(self._op.T.tocsr())  # (n_items, n_rows)
        self._op_torch = to_torch_csr(self._op) if self.config.order >= 2 else None
        self._vectors = vectors.to(torch.float32).contiguous()
        self._values = values.to(torch.float64)
        self._degree = degree.to(torch.float32)
        self._derive()

    def _derive(self) -> None:
        """The filter's coefficients from the eigenvalues and the config: the span
        ``[0, s_k]``, the polynomial ``c`` ``(order + 1,)``, the top-``k`` gains ``g`` and
        the degree scalings."""
        cfg = self.config
        f, m = response(cfg.filter, cfg.flatness, cfg.sharpen)
        s = self._values.numpy()  # (k,)
        exact = cfg.exact_top and len(s) and s[-1] > 1e-6
        self._span = float(s[-1]) if exact else 1.0
        self._coeffs = chebyshev_fit(f, cfg.order, self._span) if cfg.order > 0 else np.zeros(1)
        if exact:
            poly = chebyshev_eval(self._coeffs, s, self._span) if cfg.order > 0 else np.zeros_like(s)
            gains = f(s) + cfg.alpha * m(s) - poly
        else:
            gains = cfg.alpha * m(s)
        self._gains = torch.as_tensor(gains, dtype=torch.float32)  # (k,)
        d = self._degree.clamp(min=1.0)  # (n_items,)
        self._pre = (d ** -cfg.degree_exponent).numpy()  # (n_items,)
        self._post = d ** cfg.degree_exponent  # (n_items,)

    def with_filter(self, **changes) -> GraphFilter:
        """A copy sharing this fitted operator and eigenpairs, with other filter settings
        (:attr:`GraphFilterConfig.FILTER_FIELDS` only: nothing is refitted). For choosing
        the filter on validation without recomputing the eigenvectors."""
        self._require_fitted()
        bad = sorted(set(changes) - set(GraphFilterConfig.FILTER_FIELDS))
        if bad:
            raise ValueError(f"with_filter: {', '.join(bad)} change the operator; fit a new model instead")
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.config = dataclasses.replace(self.config, **changes)
        if other.config.order >= 2 and other._op_torch is None:
            other._op_torch = to_torch_csr(other._op)
        other._derive()
        return other

    def _require_fitted(self) -> None:
        if self._op is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(train) or load_state_dict first")

    # ------------------------------------------------------------------ scoring
    def _times_p(self, x: torch.Tensor) -> torch.Tensor:
        """``P̃ x`` for a dense item-major block ``x`` ``(n_items, B)``."""
        return torch.sparse.mm(self._op_t, torch.sparse.mm(self._op_torch, x))

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        """Scores ``(B, n_items)`` from the history rows ``(B, n_items)`` (values as
        given, binary in the usual case); ``users`` only fixes ``B``.

        The products are taken item-major (``(n_items, B)``) so that the sparse
        products and the rank-``k`` update write contiguous rows; one transposing copy
        at the end.
        """
        self._require_fitted()
        b = len(users)
        if history.shape != (b, self.n_items):
            raise ValueError(
                f"history has shape {history.shape}; expected ({b}, {self.n_items}), one row per user over all items"
            )
        x = sp.csr_matrix(history, dtype=np.float32, copy=True)  # (B, n_items)
        x.data *= self._pre[x.indices]  # x_u = r_u ∘ d^{-β}
        c, order, span = self._coeffs, self.config.order, self._span
        out = torch.zeros(self.n_items, b)  # (n_items, B)
        if order > 0:
            # Chebyshev recurrence in L = (2/span) P̃ - I: T_0 x = x, T_1 x = L x,
            # T_{j+1} x = 2 L T_j x - T_{j-1} x; the first P̃ x is sparse–sparse then dense
            mid = torch.from_numpy((self._op @ x.T).toarray())  # (n_rows, B)
            lx = torch.sparse.mm(self._op_t, mid).mul_(2.0 / span)  # (2/span) P̃ x, (n_items, B)
            if order >= 2:
                t_prev = torch.from_numpy(x.T.toarray())  # T_0 x, (n_items, B)
                t_cur = lx.sub_(t_prev)  # T_1 x
                out.add_(t_prev, alpha=float(c[0])).add_(t_cur, alpha=float(c[1]))
                for j in range(2, order + 1):
                    t_next = self._times_p(t_cur).mul_(4.0 / span).sub_(t_cur, alpha=2.0).sub_(t_prev)
                    out.add_(t_next, alpha=float(c[j]))
                    t_prev, t_cur = t_cur, t_next
            else:  # c_0 x + c_1 (L x) without a dense copy of x
                out.add_(lx, alpha=float(c[1]))
                _add_sparse_t(out, x, float(c[0] - c[1]))
        if self._vectors.shape[1]:
            low = torch.from_numpy(np.asarray(x @ self._vectors.numpy())).T  # V_kᵀ x, (k, B)
            out.addmm_(self._vectors, low.mul_(self._gains[:, None]))  # + V_k diag(g) V_kᵀ x
        out.mul_(self._post[:, None])  # ∘ d^β
        return out.T.contiguous()  # (B, n_items)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The operator ``M`` as CSR parts, the eigenpairs and the item degrees."""
        self._require_fitted()
        op = self._op
        return {
            "op_crow": torch.as_tensor(op.indptr, dtype=torch.int64),
            "op_col": torch.as_tensor(op.indices, dtype=torch.int64),
            "op_values": torch.as_tensor(op.data, dtype=torch.float32).clone(),
            "vectors": self._vectors.clone(),
            "values": self._values.clone(),
            "item_degree": self._degree.clone(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        name = type(self).__name__
        missing = {"op_crow", "op_col", "op_values", "vectors", "values", "item_degree"} - set(state)
        if missing:
            raise ValueError(f"{name} state is missing {', '.join(sorted(missing))}")
        vectors, values, degree = state["vectors"], state["values"], state["item_degree"]
        if vectors.dim() != 2 or vectors.shape[0] != self.n_items or degree.shape != (self.n_items,):
            raise ValueError(f"{name} state is for {vectors.shape[0]} items; this model has {self.n_items}")
        if values.shape != (vectors.shape[1],):
            raise ValueError(f"{name} state has {vectors.shape[1]} eigenvectors but {values.shape[0]} eigenvalues")
        crow = state["op_crow"].numpy()
        op = sp.csr_matrix((state["op_values"].numpy(), state["op_col"].numpy(), crow),
                           shape=(len(crow) - 1, self.n_items))
        self._set(op, vectors, values, degree)


def scaled(weights: sp.csr_matrix, cfg: GraphFilterConfig) -> sp.csr_matrix:
    """``D_u^{-a} W D_i^{-b} / σ₁`` (module doc of :mod:`semrec.models.spectral`): its Gram
    matrix has its largest eigenvalue at 1 (a zero matrix stays zero)."""
    m = normalize(weights, cfg.user_exponent, cfg.item_exponent)
    if cfg.user_exponent == 0.5 and cfg.item_exponent == 0.5:
        return m  # σ₁ = 1 exactly: the all-√d vector is a singular vector
    top = top_singular_value(m, seed=cfg.svd_seed)
    return m if top == 0.0 else sp.csr_matrix(m / np.float32(top), dtype=np.float32)


def _add_sparse_t(out: torch.Tensor, x: sp.csr_matrix, scale: float) -> None:
    """``out += scale · xᵀ`` for a dense ``out`` ``(n_items, B)`` and a CSR ``x`` ``(B, n_items)``."""
    if scale == 0.0 or x.nnz == 0:
        return
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))  # (nnz,)
    out.index_put_((torch.as_tensor(x.indices, dtype=torch.int64), torch.as_tensor(rows, dtype=torch.int64)),
                   torch.as_tensor(x.data * np.float32(scale)), accumulate=True)


class TextGraphFilter(GraphFilter):
    """:class:`GraphFilter` over an item–item operator that mixes in the items' semantic
    neighbour graph (module doc).

    Args:
        n_users: users in the training matrix.
        n_items: items.
        item_emb: ``(n_items, t)`` item text vectors in internal index order (zero rows
            for items without text).
        hyper: the fields of :class:`TextGraphFilterConfig`.
    """

    config_class = TextGraphFilterConfig

    def __init__(self, n_users: int, n_items: int, item_emb: torch.Tensor | np.ndarray, **hyper) -> None:
        super().__init__(n_users, n_items, **hyper)
        item_emb = torch.as_tensor(item_emb, dtype=torch.float32)
        if item_emb.dim() != 2 or item_emb.shape[0] != n_items:
            raise DataError(
                f"item_emb must be (n_items, t) = ({n_items}, t), got {tuple(item_emb.shape)}; "
                "encode one text per item in internal index order"
            )
        self.item_emb = item_emb  # (n_items, t)

    def _operator(self, train: sp.csr_matrix) -> sp.csr_matrix:
        """``M = [√(1-w) R̃ ; √w T̃]`` with ``T = I + S`` over the items with text."""
        cfg = self.config
        interactions = scaled(train, cfg)  # (n_users, n_items)
        if cfg.text_weight == 0.0:
            return interactions
        text = scaled(text_graph(self.item_emb.numpy(), cfg.text_k), cfg)  # (n_items, n_items)
        return sp.csr_matrix(sp.vstack([interactions * np.float32(np.sqrt(1.0 - cfg.text_weight)),
                                        text * np.float32(np.sqrt(cfg.text_weight))]), dtype=np.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """:meth:`GraphFilter.state_dict` and ``item_emb`` (a run rebuilds the model from it)."""
        return {**super().state_dict(), "item_emb": self.item_emb.clone()}


def text_graph(item_emb: np.ndarray, k: int) -> sp.csr_matrix:
    """``T = I + S`` ``(n_items, n_items)``: row ``m`` is item ``m`` as a pseudo-user who
    "chose" itself (weight 1) and its ``k`` nearest items by text cosine (weight the
    cosine; negative ones dropped). Items without text (zero vectors) have empty rows
    and columns."""
    emb = np.asarray(item_emb, dtype=np.float32)
    n = emb.shape[0]
    knn = semantic_knn(emb, k) if n > 1 else sp.csr_matrix((n, n), dtype=np.float32)
    knn.data = np.maximum(knn.data, 0.0)
    has_text = (np.linalg.norm(emb, axis=1) > ZERO_NORM).astype(np.float32)  # (n,)
    out = sp.csr_matrix(knn + sp.diags(has_text), dtype=np.float32)
    out.eliminate_zeros()
    return out
