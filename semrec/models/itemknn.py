"""Item-based k-nearest-neighbours with cosine similarity (Sarwar et al. 2001)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from semrec.errors import ConfigError
from semrec.models.base import FittedModel
from semrec.models.mf import check_non_negative, check_positive
from semrec.tune.space import Float, Int, Param


@dataclass(frozen=True)
class ItemKNNConfig:
    """Args:
    k: neighbours kept per item (default 100).
    shrink: added to the cosine denominator, damping similarities resting on few
        co-occurrences (default 0).
    """

    k: int = 100
    shrink: float = 0.0

    def __post_init__(self) -> None:
        check_positive("model.k", self.k, error=ConfigError)
        check_non_negative("model.shrink", self.shrink, error=ConfigError)



#: ``semrec tune``'s search space for this model (see :mod:`semrec.tune.space`).
SEARCH_SPACE: dict[str, Param] = {"model.k": Int(10, 400, log=True), "model.shrink": Float(0.0, 100.0)}

class ItemKNN(FittedModel):
    """``s(u, i) = Σ_{j ∈ N(u)} sim(j, i)``, with ``sim`` the cosine between item
    columns of the training matrix, ``|r_j · r_i| / (‖r_j‖ ‖r_i‖ + shrink)``, pruned
    to each item's ``k`` most similar items (self excluded).
    """

    def __init__(self, n_users: int, n_items: int, k: int = 100, shrink: float = 0.0) -> None:
        super().__init__(n_users, n_items)
        if k <= 0:
            raise ValueError(f"ItemKNN k must be positive, got {k}")
        self.k = k
        self.shrink = shrink
        self.sim = sp.csr_matrix((n_items, n_items), dtype=np.float32)

    def fit(self, train: sp.csr_matrix, block: int = 1024) -> ItemKNN:
        x = sp.csc_matrix(train, dtype=np.float32)  # (n_users, n_items)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())  # (n_items,)
        xt = x.T.tocsr()  # (n_items, n_users)
        k = min(self.k, self.n_items - 1)
        rows, cols, vals = [], [], []
        # Blocks of items bound memory to (block, n_items) floats, never n_items².
        for start in range(0, self.n_items, block):
            stop = min(start + block, self.n_items)
            co = (xt[start:stop] @ x).toarray()  # (b, n_items) co-occurrence counts
            denom = np.outer(norms[start:stop], norms) + self.shrink + 1e-12
            sim = co / denom
            sim[np.arange(stop - start), np.arange(start, stop)] = 0.0  # no self-similarity
            if k <= 0:
                continue
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]  # (b, k)
            top_vals = np.take_along_axis(sim, top, axis=1)
            keep = top_vals > 0
            rows.append(np.repeat(np.arange(start, stop), k)[keep.ravel()])
            cols.append(top.ravel()[keep.ravel()])
            vals.append(top_vals.ravel()[keep.ravel()])
        if rows:
            # row j holds j's neighbours; scores use sim[j, i] summed over history j
            self.sim = sp.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                shape=(self.n_items, self.n_items),
                dtype=np.float32,
            )
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return torch.as_tensor((history @ self.sim).toarray(), dtype=torch.float32)  # (B, n_items)

    def state_dict(self) -> dict[str, torch.Tensor]:
        s = self.sim
        return {
            "sim_indptr": torch.as_tensor(s.indptr, dtype=torch.int64),
            "sim_indices": torch.as_tensor(s.indices, dtype=torch.int64),
            "sim_data": torch.as_tensor(s.data, dtype=torch.float32),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.sim = sp.csr_matrix(
            (state["sim_data"].numpy(), state["sim_indices"].numpy(), state["sim_indptr"].numpy()),
            shape=(self.n_items, self.n_items),
        )
