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


def softmax_loss(
    queries: torch.Tensor,
    items: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 1.0,
    chunk: int = 4096,
) -> torch.Tensor:
    """Softmax cross-entropy of each query's target over the whole catalogue.

    With ``S = Q Vᵀ / τ`` ``(N, n_items)``:

    ``L = -1/N · Σ_n [ S_{n, y_n} − log Σ_j exp(S_nj) ]``

    The ``(N, n_items)`` logits are formed ``chunk`` queries at a time and each chunk's
    loss is recomputed in the backward pass (activation checkpointing), so the memory
    held is one chunk's logits, whatever ``N``.

    Args:
        queries: ``(N, d)`` user (or context) vectors.
        items: ``(n_items, d)`` item vectors.
        targets: ``(N,)`` index of each query's positive item.
        temperature: ``τ > 0``; default 1.
        chunk: queries per block of logits; default 4096.

    Returns:
        0-dim tensor; the mean is over the ``N`` queries.
    """
    if temperature <= 0:
        raise ValueError(f"softmax_loss: temperature must be > 0, got {temperature}")
    n = int(queries.shape[0])
    if n == 0:
        return queries.sum() * 0.0
    scale = 1.0 / temperature
    if n <= chunk or not torch.is_grad_enabled():
        return F.cross_entropy((queries * scale) @ items.T, targets, reduction="sum") / n
    from torch.utils.checkpoint import checkpoint

    total = queries.new_zeros(())
    for start in range(0, n, chunk):
        q, t = queries[start : start + chunk], targets[start : start + chunk]
        total = total + checkpoint(_chunk_ce, q * scale, items, t, use_reentrant=False)
    return total / n


def _chunk_ce(q: torch.Tensor, items: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(q @ items.T, t, reduction="sum")


def sampled_softmax_loss(
    queries: torch.Tensor,
    items: torch.Tensor,
    targets: torch.Tensor,
    negatives: torch.Tensor,
    log_q: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Softmax cross-entropy over the target and ``M`` negatives shared by the batch,
    with the log-q correction of the sampling distribution (Bengio & Senécal 2008; Yi et
    al. 2019).

    With ``s_n = ⟨q_n, v_{y_n}⟩/τ`` and ``s_nm = ⟨q_n, v_{k_m}⟩/τ − log q(k_m)`` for the
    negatives ``k_1..k_M`` drawn with probabilities ``q``, and the target's own logit
    corrected the same way (``− log q(y_n)``):

    ``L = -1/N · Σ_n [ s̃_n − log( exp(s̃_n) + Σ_{m: k_m ≠ y_n} exp(s_nm) ) ]``

    A negative that is the query's own target is masked out of its denominator.
    Uniform sampling (``log_q = None``) makes the correction a constant and drops it.

    Args:
        queries: ``(N, d)``.
        items: ``(n_items, d)``.
        targets: ``(N,)`` positive item per query.
        negatives: ``(M,)`` sampled item indices, shared by all queries.
        log_q: ``(n_items,)`` log sampling probability of every item, or ``None``.
        temperature: ``τ > 0``; default 1.

    Returns:
        0-dim tensor; the mean is over the ``N`` queries.
    """
    if temperature <= 0:
        raise ValueError(f"sampled_softmax_loss: temperature must be > 0, got {temperature}")
    q = queries * (1.0 / temperature)
    pos = (q * items[targets]).sum(-1)  # (N,)
    neg = q @ items[negatives].T  # (N, M)
    if log_q is not None:
        pos = pos - log_q[targets]
        neg = neg - log_q[negatives][None, :]
    neg = neg.masked_fill(negatives[None, :] == targets[:, None], float("-inf"))
    logits = torch.cat([pos[:, None], neg], dim=1)  # (N, 1 + M)
    return -(pos - torch.logsumexp(logits, dim=1)).mean()
