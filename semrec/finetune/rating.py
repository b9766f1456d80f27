"""The ``rating`` objective: a regression head over the encoded (user, item) texts.

For user profile vector ``u`` and item text vector ``i`` (unit vectors, ``(B, d)``)::

    r̂(u, i) = μ + MLP([√d·u, √d·i, d·(u ⊙ i)])  MLP: 3d -> hidden -> GELU -> dropout -> 1
    L = (1/B) Σ_b (r̂_b − r_b)²                   (semrec.models.losses.mse_loss)

``μ`` is the mean training rating; the scale factors give every input unit variance on
average (a unit vector's components are about ``1/√d``), so the default initialisation
suits them. At evaluation predictions are clipped to the rating scale.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from semrec.errors import RunError
from semrec.evaluate.metrics import mae, rmse
from semrec.finetune.data import Pairs


class RatingHead(torch.nn.Module):
    """``μ + MLP([√d·u, √d·i, d·(u ⊙ i)])`` (see the module docstring).

    Args:
        dim: width ``d`` of the user and item vectors.
        hidden: hidden width of the MLP (default 256).
        dropout: dropout after the hidden layer (default 0.1).
        mean: ``μ``, the mean training rating (default 0).
    """

    def __init__(self, dim: int, hidden: int = 256, dropout: float = 0.1, mean: float = 0.0) -> None:
        super().__init__()
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(3 * dim, hidden),
            torch.nn.GELU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, 1),
        )
        with torch.no_grad():  # start near the mean prediction, but not at a flat zero
            self.mlp[-1].weight.mul_(0.1)
            self.mlp[-1].bias.zero_()
        self.dim, self.hidden, self.dropout = dim, hidden, dropout
        self.register_buffer("mean", torch.tensor(float(mean)))

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """Predicted ratings ``(B,)`` for user vectors ``u`` ``(B, d)`` and item vectors ``i`` ``(B, d)``."""
        s = self.dim**0.5
        x = torch.cat([s * u, s * i, self.dim * (u * i)], dim=1)  # (B, 3d)
        return self.mean + self.mlp(x).squeeze(1)  # (B,)


#: The rating head's file inside a fine-tuned encoder folder.
HEAD_FILE = "rating_head.safetensors"


def save_rating_head(head: RatingHead, folder: Path) -> Path:
    """Write ``head`` as ``folder/rating_head.safetensors`` (its shape in the metadata)."""
    from safetensors.torch import save_file

    shape = {"dim": head.dim, "hidden": head.hidden, "dropout": head.dropout}
    path = Path(folder) / HEAD_FILE
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(path), metadata={"semrec": json.dumps(shape)})
    return path


def load_rating_head(folder: str | Path, device: str | torch.device = "cpu") -> RatingHead:
    """The rating head a ``semrec finetune --objective rating`` folder carries: with that
    folder as the encoder, ``head(user_vec, item_vec)`` predicts the rating (clip it to
    the dataset's scale).

    Raises:
        RunError: the folder has no head (another objective) or the file is not one.
    """
    from safetensors import safe_open

    path = Path(folder) / HEAD_FILE
    if not path.is_file():
        raise RunError(f"{folder} has no {HEAD_FILE}: only --objective rating writes a rating head")
    try:
        with safe_open(str(path), framework="pt") as f:
            shape = json.loads((f.metadata() or {})["semrec"])
            state = {k: f.get_tensor(k) for k in f.keys()}
        head = RatingHead(int(shape["dim"]), int(shape["hidden"]), float(shape["dropout"]))
        head.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError, OSError) as exc:
        raise RunError(f"{path} is not a semrec rating head: {exc}") from None
    return head.to(device).eval()


def pair_vectors(
    encode: Callable[[list[str]], torch.Tensor], texts: list[str], index: np.ndarray
) -> torch.Tensor:
    """``encode`` each distinct text of ``index`` once and gather rows ``(B, d)`` in order."""
    uniq, inverse = np.unique(index, return_inverse=True)
    vecs = encode([texts[k] for k in uniq])  # (U, d)
    return vecs[torch.as_tensor(inverse, device=vecs.device)]  # (B, d)


@torch.no_grad()
def predict(
    head: RatingHead, user_vecs: torch.Tensor, item_vecs: torch.Tensor, pairs: Pairs,
    scale: tuple[float, float], batch_size: int = 4096,
) -> np.ndarray:
    """Clipped predictions ``(N,)`` for ``pairs`` from precomputed vectors
    (``user_vecs`` ``(n_users, d)``, ``item_vecs`` ``(n_items, d)``)."""
    was_training = head.training
    head.eval()
    out = []
    dev = user_vecs.device
    for b in range(0, len(pairs), batch_size):
        u = torch.as_tensor(pairs.users[b : b + batch_size], device=dev)
        i = torch.as_tensor(pairs.items[b : b + batch_size], device=dev)
        out.append(head(user_vecs[u], item_vecs[i]).float().cpu())
    head.train(was_training)
    pred = torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)
    return np.clip(pred, scale[0], scale[1])


def rating_metrics(pred: np.ndarray, pairs: Pairs) -> dict[str, float]:
    """``{"rmse", "mae", "n"}`` of clipped predictions against the pairs' ratings."""
    return {"rmse": rmse(pred, pairs.ratings), "mae": mae(pred, pairs.ratings), "n": len(pairs)}
