"""Most-popular items: the baseline every model must beat."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from semrec.models.base import FittedModel
from semrec.models.space import Param


@dataclass(frozen=True)
class PopularityConfig:
    """Popularity has no hyper-parameters."""


#: ``semrec tune``'s search space for this model (see :mod:`semrec.models.space`).
SEARCH_SPACE: dict[str, Param] = {}  # nothing to tune

class Popularity(FittedModel):
    """``s(u, i) = |{v : R_vi = 1}|``, the item's number of training interactions."""

    def __init__(self, n_users: int, n_items: int, **hyper) -> None:
        """``hyper``: the fields of :class:`PopularityConfig` (there are none)."""
        super().__init__(n_users, n_items)
        self.config = PopularityConfig(**hyper)
        self.counts = torch.zeros(n_items)  # (n_items,)

    def fit(self, train: sp.csr_matrix) -> Popularity:
        self.counts = torch.as_tensor(np.asarray(train.getnnz(axis=0)), dtype=torch.float32)
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return self.counts.expand(len(users), -1).clone()  # (B, n_items)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"counts": self.counts}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.counts = state["counts"]
