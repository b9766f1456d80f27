"""One top-K for every model: score, drop seen items, restrict candidates."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def mask_seen(scores: torch.Tensor, seen: sp.csr_matrix | None) -> torch.Tensor:
    """Set ``scores[b, i] = -inf`` wherever ``seen[b, i] != 0`` (in place; returns it).

    ``scores`` is ``(B, n_items)``; ``seen`` holds the same B rows as a CSR matrix.
    """
    if seen is not None and seen.nnz:
        rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
        r = torch.as_tensor(rows, dtype=torch.long, device=scores.device)
        c = torch.as_tensor(seen.indices, dtype=torch.long, device=scores.device)
        scores[r, c] = float("-inf")
    return scores


def topk(
    scores: torch.Tensor,
    k: int,
    seen: sp.csr_matrix | None = None,
    candidates: torch.Tensor | np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best ``k`` items per row.

    Args:
        scores: ``(B, n_items)`` float scores; modified in place.
        k: list length (clipped to ``n_items``).
        seen: ``(B, n_items)`` CSR of items to exclude (a user's history), or ``None``.
        candidates: indices of the only items allowed, or ``None`` for all.

    Returns:
        ``(values, indices)``, each ``(B, k)``, best first. Excluded items get
        ``-inf`` and sort last; callers drop them where fewer than ``k`` remain.
    """
    mask_seen(scores, seen)
    if candidates is not None:
        allowed = torch.zeros(scores.shape[1], dtype=torch.bool, device=scores.device)
        allowed[torch.as_tensor(candidates, dtype=torch.long, device=scores.device)] = True
        scores.masked_fill_(~allowed, float("-inf"))
    k = min(k, scores.shape[1])
    return torch.topk(scores, k, dim=1)
