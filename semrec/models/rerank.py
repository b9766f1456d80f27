"""Re-ranking a model's best candidates: more diverse lists, less popularity bias.

Off by default. Every model's list comes out of the shared top-K
(:func:`semrec.models.topk.topk`); re-ranking takes a *pool* of the best ``P`` unseen
items from there (``P = max(100, 2k)`` unless given, :meth:`Rerank.pool_size`) and picks
``k`` of them. Nothing outside the pool can enter, so the cost does not grow with the
catalogue. Two knobs, which combine:

1. **Standardise** the pool's scores: ``z_i = (s_i − mean) / std`` over the pool (0 when
   all are equal), so that one strength means the same for every model's score scale.
2. **Popularity** (``novelty = β``, ``0 ≤ β ≤ 10``), *inverse propensity*:

   ``a_i = z_i − β · ln p_i``,  ``p_i = max(n_i, 1) / N``

   with ``n_i`` the item's training interactions and ``N`` all training interactions
   (an item never trained on counts once). Reading ``exp(z_i)`` as the item's relevance
   under a softmax over the pool, ``exp(a_i) = exp(z_i) / p_i^β``: the relevance divided
   by the propensity of the item to have been seen, raised to β (inverse-propensity
   weighting, Schnabel et al., ICML 2016; the same correction as logit adjustment,
   Menon et al., ICLR 2021). β = 1 divides by the whole propensity. We chose inverse
   propensity over *calibrated* popularity (Abdollahpouri et al. 2021, which matches each
   user's past head/tail mix) because its one knob moves the tail share monotonically
   for every user, which is what a trade-off curve needs.
3. **Diversity** (``diversity = λ``, ``0 ≤ λ ≤ 1``), *maximal marginal relevance*
   (Carbonell & Goldstein, SIGIR 1998), greedily: with ``r_i`` the adjusted score
   ``a_i`` min-max scaled to ``[0, 1]`` over the pool and ``S`` the items picked so far,

   ``next = argmax_{i ∉ S} (1 − λ) · r_i − λ · max_{j ∈ S} cos(i, j)``

   (the max over an empty ``S`` is 0, so the best item always comes first; ties go to
   the better-scored item). λ = 0 keeps the order; λ = 1 then always takes the item
   least like the list so far. ``redundancy="mean"`` replaces the max by the mean
   similarity to ``S``, which greedily optimises intra-list diversity itself (Ziegler et
   al. 2005's objective); BENCHMARKS.md compares the two.

Without either knob the pool's first ``k`` come back unchanged. The returned scores are
the model's own, in the re-ranked order (so no longer decreasing).

Similarity lives in an :class:`ItemSpace`: cosine between the run's text vectors where
the model has text (``semgraph``'s frozen language-model vectors, ``semantic``'s item
embeddings), else between the learned item embeddings (``mf``, ``lightgcn``,
``xsimgcl``), else between the items' columns of the training matrix (co-occurrence
cosine, ``|U_i ∩ U_j| / sqrt(|U_i| |U_j|)``, the Auralist / Microsoft Recommenders
default) for models with neither (popularity, ItemKNN, the graph filter).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from semrec.models.base import EmbeddingScorer
from semrec.models.semantic import SemanticModel
from semrec.models.semgraph import SemGraph

#: Candidates re-ranked when no pool is given: ``max(DEFAULT_POOL, 2k)``.
DEFAULT_POOL = 100
#: The largest popularity strength β accepted (β = 1 already divides by the full propensity).
MAX_NOVELTY = 10.0
#: Lists whose pairwise similarities are held in memory at once (``B x P x P`` floats).
CHUNK = 256


# ----------------------------------------------------------------------------- item space


@dataclass(frozen=True)
class ItemSpace:
    """Where the similarity of two items is measured (for MMR and intra-list diversity).

    Exactly one of ``vectors`` and ``incidence`` is set.

    Args:
        name: ``"text"``, ``"learned"`` or ``"cooccurrence"``: what the similarity reads.
        vectors: ``(n, d)`` item vectors, any float dtype, not necessarily unit length;
            similarity is their cosine. A zero row (an item without text), an item index
            ``>= n`` (an item added after training) and padding (``-1``) have similarity 0
            with every item.
        incidence: ``(n, n_users)`` CSR, each item's row of users scaled to unit length,
            so that the dot product of two rows is their co-occurrence cosine; build it
            with :meth:`cooccurrence`.
    """

    name: str
    vectors: np.ndarray | None = None
    incidence: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        if (self.vectors is None) == (self.incidence is None):
            raise ValueError("an ItemSpace needs exactly one of vectors and incidence")
        if self.vectors is not None and np.ndim(self.vectors) != 2:
            raise ValueError(f"vectors must be an (n_items, d) matrix, got shape {np.shape(self.vectors)}")

    @classmethod
    def cooccurrence(cls, train: sp.spmatrix) -> ItemSpace:
        """The co-occurrence space of a ``(n_users, n_items)`` training matrix: item ``i``
        is the set of users who interacted with it (values are ignored)."""
        x = sp.csr_matrix(train, dtype=np.float32).T.tocsr()  # (n_items, n_users)
        x.data[:] = 1.0
        x.sum_duplicates()
        x.data[:] = 1.0
        norms = np.sqrt(np.diff(x.indptr)).astype(np.float32)  # (n_items,) = sqrt(|U_i|)
        x.data /= np.repeat(np.maximum(norms, 1.0), np.diff(x.indptr))
        return cls("cooccurrence", incidence=x)

    @property
    def n_items(self) -> int:
        """Items the space knows (later indices count as unlike everything)."""
        return int((self.vectors if self.vectors is not None else self.incidence).shape[0])

    def similarity(self, items: np.ndarray) -> np.ndarray:
        """Pairwise cosine similarities ``(B, K, K)`` float32 of each row of ``items``
        ``(B, K)`` (internal indices, ``-1`` padding); rows and columns of padding and of
        unknown items are 0, the diagonal of a known item is 1 (0 for a zero vector)."""
        items = np.asarray(items, dtype=np.int64)
        if items.ndim != 2:
            raise ValueError(f"items must be a (B, K) matrix, got shape {items.shape}")
        known = (items >= 0) & (items < self.n_items)  # (B, K)
        if not known.any():
            return np.zeros(items.shape + (items.shape[1],), dtype=np.float32)
        if self.vectors is not None:
            v = np.asarray(self.vectors[np.where(known, items, 0)], dtype=np.float32)  # (B, K, d)
            v[~known] = 0.0
            norms = np.linalg.norm(v, axis=2, keepdims=True)  # (B, K, 1)
            v /= np.maximum(norms, 1e-12)
            return np.matmul(v, v.transpose(0, 2, 1))  # (B, K, K)
        out = np.zeros(items.shape + (items.shape[1],), dtype=np.float32)  # (B, K, K)
        for b in range(items.shape[0]):
            cols = np.flatnonzero(known[b])
            if len(cols):
                rows = self.incidence[items[b, cols]]  # (K', n_users)
                out[b][np.ix_(cols, cols)] = (rows @ rows.T).toarray()
        return out


def item_space(model: object, scorer: object, train: sp.spmatrix) -> ItemSpace:
    """The space a model's lists are diversified and measured in: its text vectors
    (``semgraph``, ``semantic``), else its learned item embeddings (any
    :class:`~semrec.models.base.EmbeddingScorer`), else co-occurrence in ``train``
    ``(n_users, n_items)``."""
    if isinstance(model, SemGraph):
        text = model.item_text.detach().float().cpu().numpy()  # (n_items, t)
        if np.abs(text).sum() > 0:
            return ItemSpace("text", text)
    if isinstance(model, SemanticModel):
        return ItemSpace("text", model.item_emb.detach().float().cpu().numpy())
    if isinstance(scorer, EmbeddingScorer):
        return ItemSpace("learned", scorer.item_emb.detach().float().cpu().numpy())
    return ItemSpace.cooccurrence(train)


def item_counts(train_items: np.ndarray, n_items: int) -> np.ndarray:
    """Training interactions per item ``(n_items,)`` int64 from the items of the training
    interactions (``split.train.items``), one count per interaction."""
    return np.bincount(np.asarray(train_items, dtype=np.int64), minlength=n_items).astype(np.int64)


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Rerank:
    """How strongly to re-rank (see the module notes); the default does nothing.

    Args:
        diversity: MMR trade-off λ in ``[0, 1]`` (default 0: off).
        novelty: inverse-propensity exponent β in ``[0, 10]`` (default 0: off).
        pool: candidates re-ranked; ``None`` (default): ``max(100, 2k)``.
    """

    diversity: float = 0.0
    novelty: float = 0.0
    pool: int | None = None

    def __post_init__(self) -> None:
        _check_strengths(self.diversity, self.novelty)
        if self.pool is not None and (isinstance(self.pool, bool) or not isinstance(self.pool, (int, np.integer))
                                      or self.pool < 1):
            raise ValueError(f"pool must be a positive integer or None, got {self.pool!r}")

    @property
    def active(self) -> bool:
        """Whether re-ranking changes anything."""
        return self.diversity > 0 or self.novelty > 0

    def pool_size(self, k: int) -> int:
        """How many of the best items to re-rank for a list of ``k``: the pool, at least ``k``."""
        return max(int(k), self.pool if self.pool is not None else max(DEFAULT_POOL, 2 * int(k)))


def _check_strengths(diversity: float, novelty: float) -> None:
    if not (isinstance(diversity, (int, float)) and math.isfinite(diversity) and 0 <= diversity <= 1):
        raise ValueError(f"diversity must be a number in [0, 1], got {diversity!r}")
    if not (isinstance(novelty, (int, float)) and math.isfinite(novelty) and 0 <= novelty <= MAX_NOVELTY):
        raise ValueError(f"novelty must be a number in [0, {MAX_NOVELTY:g}], got {novelty!r}")


# ----------------------------------------------------------------------------- re-ranking


def rerank(
    scores: np.ndarray | torch.Tensor,
    items: np.ndarray | torch.Tensor,
    k: int,
    *,
    diversity: float = 0.0,
    novelty: float = 0.0,
    space: ItemSpace | None = None,
    counts: np.ndarray | None = None,
    redundancy: str = "max",
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``k`` of each row's pool (see the module notes for the formulas).

    Args:
        scores: ``(B, P)`` the pool's scores, best first as :func:`~semrec.models.topk.topk`
            returns them; ``-inf`` marks padding (fewer than ``P`` items were rankable).
        items: ``(B, P)`` their internal item indices (``-1`` or anything at ``-inf`` is padding).
        k: list length; at most ``P`` come back.
        diversity: MMR λ in ``[0, 1]`` (default 0); needs ``space``.
        novelty: inverse-propensity β in ``[0, 10]`` (default 0); needs ``counts``.
        space: where item similarity is measured.
        counts: ``(n_items,)`` training interactions per item; items past its end count 0.
        redundancy: how a candidate's likeness to the picked items is summed up: ``"max"``
            (default, maximal marginal relevance) or ``"mean"``.

    Returns:
        ``(scores, items)``, each ``(B, min(k, P))``: the model's scores of the picked items
        in their new order, padded with ``-inf`` / ``-1`` where a row had fewer items.
    """
    _check_strengths(diversity, novelty)
    s = (scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores))
    s = s.astype(np.float64)
    it = (items.detach().cpu().numpy() if isinstance(items, torch.Tensor) else np.asarray(items)).astype(np.int64)
    if s.ndim != 2 or s.shape != it.shape:
        raise ValueError(f"scores and items must be (B, P) matrices of one shape, got {s.shape} and {it.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if diversity > 0 and space is None:
        raise ValueError("diversity needs an item space to measure similarity in")
    if novelty > 0 and counts is None:
        raise ValueError("novelty needs the items' training interaction counts")
    if redundancy not in ("max", "mean"):
        raise ValueError(f"redundancy must be 'max' or 'mean', got {redundancy!r}")
    kk = min(int(k), s.shape[1])
    valid = np.isfinite(s) & (it >= 0)  # (B, P)
    if not (diversity > 0 or novelty > 0):
        return np.where(valid, s, -np.inf)[:, :kk], np.where(valid, it, -1)[:, :kk]
    adjusted = _standardised(s, valid)  # (B, P)
    if novelty > 0:
        adjusted = adjusted + novelty * _surprisal(it, valid, np.asarray(counts))
    if diversity > 0:
        parts = [_mmr(adjusted[c : c + CHUNK], valid[c : c + CHUNK], it[c : c + CHUNK], kk, diversity, space,
                      redundancy) for c in range(0, s.shape[0], CHUNK)]
        order = np.concatenate([o for o, _ in parts]) if parts else np.zeros((0, kk), np.int64)
        found = np.concatenate([f for _, f in parts]) if parts else np.zeros((0, kk), bool)
    else:
        ranked = np.where(valid, adjusted, -np.inf)
        order = np.argsort(-ranked, axis=1, kind="stable")[:, :kk]  # ties keep the score order
        found = np.ones(order.shape, dtype=bool)
    picked = np.take_along_axis(valid, order, axis=1) & found  # (B, kk)
    out_s = np.where(picked, np.take_along_axis(s, order, axis=1), -np.inf)
    out_i = np.where(picked, np.take_along_axis(it, order, axis=1), -1)
    return out_s, out_i


def _standardised(s: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(s − mean) / std`` per row over the valid entries; 0 where a row's std is 0."""
    n = np.maximum(valid.sum(axis=1, keepdims=True), 1)  # (B, 1)
    mean = np.where(valid, s, 0.0).sum(axis=1, keepdims=True) / n
    dev = np.where(valid, s - mean, 0.0)  # (B, P)
    std = np.sqrt((dev**2).sum(axis=1, keepdims=True) / n)
    return np.where(std > 0, dev / np.where(std > 0, std, 1.0), 0.0)


def _surprisal(it: np.ndarray, valid: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``−ln p_i`` with ``p_i = max(n_i, 1) / N`` (``N`` all training interactions)."""
    counts = counts.astype(np.float64).reshape(-1)
    total = max(float(counts.sum()), 1.0)
    inside = valid & (it < len(counts))
    n = np.zeros(it.shape, dtype=np.float64)
    n[inside] = counts[it[inside]]
    return -np.log(np.maximum(n, 1.0) / total)  # (B, P) >= 0


def _mmr(adjusted: np.ndarray, valid: np.ndarray, it: np.ndarray, kk: int, lam: float,
         space: ItemSpace, redundancy: str = "max") -> tuple[np.ndarray, np.ndarray]:
    """Greedy MMR: positions ``(B, kk)`` into the pool, and whether each step found an
    item ``(B, kk)`` (false once a row's valid items are used up)."""
    b, p = adjusted.shape
    lo = np.where(valid, adjusted, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, adjusted, -np.inf).max(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    rel = np.where(valid, (adjusted - np.where(np.isfinite(lo), lo, 0.0)) / span, 0.0)  # (B, P) in [0, 1]
    sim = space.similarity(np.where(valid, it, -1))  # (B, P, P)
    closest = np.zeros((b, p), dtype=np.float64)  # max (or summed) similarity to the picked items
    free = valid.copy()
    order = np.zeros((b, kk), dtype=np.int64)
    found = np.zeros((b, kk), dtype=bool)
    rows = np.arange(b)
    for step in range(kk):
        like = closest if redundancy == "max" else closest / max(step, 1)  # 0 before any pick
        gain = np.where(free, (1.0 - lam) * rel - lam * like, -np.inf)  # (B, P)
        j = np.argmax(gain, axis=1)  # (B,) first best: ties go to the better score
        order[:, step] = j
        found[:, step] = free[rows, j]
        free[rows, j] = False
        picked_sim = sim[rows, j, :].astype(np.float64)  # (B, P)
        if redundancy == "max":
            closest = picked_sim if step == 0 else np.maximum(closest, picked_sim)
        else:
            closest = closest + picked_sim
    return order, found
