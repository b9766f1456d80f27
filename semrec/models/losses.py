"""Training losses as pure functions of tensors.

Every function returns a 0-dim tensor averaged over the batch (the denominator is
stated in each docstring), so that a loss does not grow with the batch size.
Models combine them in :meth:`~semrec.models.base.TrainableModel.loss`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking (Rendle et al. 2009).

    ``L = -1/(B·n_neg) · Σ_b Σ_j log σ(s⁺_b − s⁻_bj)``

    Args:
        pos_scores: ``(B,)`` scores of the observed (user, item) pairs.
        neg_scores: ``(B, n_neg)`` scores of sampled negatives for the same users;
            a ``(B,)`` tensor is read as ``n_neg = 1``.

    Returns:
        0-dim tensor; the mean is over all ``B·n_neg`` (positive, negative) pairs.
    """
    if neg_scores.dim() == 1:
        neg_scores = neg_scores.unsqueeze(1)  # (B, 1)
    diff = pos_scores.unsqueeze(1) - neg_scores  # (B, n_neg)
    return -F.logsigmoid(diff).mean()


def l2_penalty(*tensors: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """The LightGCN batch regulariser on the embeddings a batch touches.

    ``L = Σ_t ||t||²_F / (2·B)``

    ``B`` is the number of training triples in the batch: ``batch_size`` when given,
    otherwise the first dimension of the first tensor (the batch's user rows). The
    penalty is summed over the tensors (e.g. ego embeddings of users, positives and
    negatives), not averaged, as in He et al. 2020. Multiply by the model's ``reg``.

    Args:
        *tensors: one or more embedding tensors, e.g. ``(B, d)`` and ``(B, n_neg, d)``.
        batch_size: ``B``; default ``None`` (first dimension of the first tensor).
    """
    if not tensors:
        raise ValueError("l2_penalty needs at least one tensor")
    b = int(tensors[0].shape[0]) if batch_size is None else int(batch_size)
    if b <= 0:
        raise ValueError(f"l2_penalty: batch size must be positive, got {b}")
    total = sum(t.pow(2).sum() for t in tensors)
    return total / (2.0 * b)


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error for rating regression.

    ``L = 1/B · Σ_b (ŷ_b − y_b)²``

    Args:
        pred: ``(B,)`` predicted ratings.
        target: ``(B,)`` true ratings.
    """
    return (pred - target.to(pred.dtype)).pow(2).mean()


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits (pointwise ranking, e.g. positives 1, negatives 0).

    ``L = -1/N · Σ_n [ y_n log σ(x_n) + (1 − y_n) log(1 − σ(x_n)) ]``

    Args:
        logits: any shape, ``N`` elements in all (e.g. ``(B,)`` or ``(B, 1 + n_neg)``).
        targets: same shape, values in ``[0, 1]``.

    Returns:
        0-dim tensor; the mean is over all ``N`` elements. Computed with the
        log-sum-exp trick, stable for large ``|x|``.
    """
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="mean")


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """InfoNCE between two views with in-batch negatives (cosine similarity).

    With ``â = a/||a||`` and ``b̂ = b/||b||`` row-wise and ``S = â b̂ᵀ / τ`` ``(B, B)``,
    row ``i``'s positive is ``b_i`` (the diagonal) and its negatives are the other rows
    of ``b``:

    ``L = -1/B · Σ_i log( exp(S_ii) / Σ_j exp(S_ij) )``

    Args:
        a: ``(B, d)`` first view.
        b: ``(B, d)`` second view, row ``i`` the same node as ``a``'s row ``i``.
        temperature: ``τ > 0``; default 0.2.

    Returns:
        0-dim tensor; the mean is over the ``B`` rows.
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(
            f"info_nce needs two (B, d) views of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"info_nce: temperature must be > 0, got {temperature}")
    # 1/τ folded into one (B, d) factor: a (B, d) scale instead of a (B, B) division
    a = F.normalize(a, dim=1) * (1.0 / temperature)  # (B, d)
    b = F.normalize(b, dim=1)  # (B, d)
    logits = a @ b.T  # (B, B)
    target = torch.arange(a.shape[0], device=a.device)  # (B,)
    return F.cross_entropy(logits, target, reduction="mean")
