"""The ``align`` objective: pull the encoder's item text vectors towards what a graph
model learned about the same items.

For item ``i`` with text vector ``t_i`` ``(d_t,)`` from the encoder being tuned and graph
vector ``g_i`` ``(d_g,)`` from a trained run (fixed), a linear projection ``P`` maps text
into the graph space, and both directions of InfoNCE with in-batch negatives are
minimised (:func:`semrec.models.losses.info_nce`)::

    L = ½ · [ InfoNCE(P t, g) + InfoNCE(g, P t) ]  +  λ · KL(q ‖ p)

    q_ij = softmax_{j≠i}(ĝ_i·ĝ_j / τ)      p_ij = softmax_{j≠i}(t̂_i·t̂_j / τ)

The second term (weight ``λ = relational``) asks the encoder's **own** similarities
between the items of a batch to follow the graph's, without the projection in between:
a projection alone can absorb the first term (with few items it fits any target), the
relational term cannot, and it is the encoder's own geometry that text-only scoring
and the semantic item–item graph read.

Only items the graph saw in training (and that are in this split's training part) are
targets; held-out cold items never are, so their recall measures what the encoder
learned to generalise from text.

How much the encoder's **own** space moved is measured without the projection:
``similarity_correlation`` is the Pearson correlation between the text and the graph
cosine similarities over all pairs of target items, and ``knn_overlap@k`` the mean
fraction of an item's ``k`` nearest text neighbours that are also among its ``k``
nearest graph neighbours. The cold-item
payoff is measured by the text-only ``semantic`` model (a user is the mean of their
training items' text vectors) on a ``cold-items`` split.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semrec.data.split import Split
from semrec.errors import ConfigError, DataError
from semrec.models.losses import info_nce


@dataclass
class GraphTargets:
    """Graph item vectors for the items of a split that are alignment targets."""

    items: np.ndarray  # (N,) internal item indices of the split
    vectors: np.ndarray  # (N, d_g) float32, L2-normalised
    run: str  # the graph run folder
    model: str  # its model name
    notes: list[str] = field(default_factory=list)


def graph_targets(run_dir: str | Path, split: Split) -> GraphTargets:
    """Item vectors of the trained run ``run_dir`` for ``split``'s training items.

    Items are matched by external id. Raises :class:`ConfigError` when the run has no
    item embeddings (a fitted model such as ``popularity`` or ``semantic``) and
    :class:`DataError` when fewer than 2 items match (another dataset).
    """
    from semrec.artifacts.run import load_run

    run = load_run(run_dir)
    item_emb = getattr(run.scorer, "item_emb", None)
    if not isinstance(item_emb, torch.Tensor) or run.model_name == "semantic":
        raise ConfigError(
            f"--graph {run_dir}: the run's model '{run.model_name}' has no learned item embeddings; "
            "pass a run of an embedding model (lightgcn, semgraph, mf, xsimgcl, ...)"
        )
    graph_vecs = item_emb.detach().float().cpu().numpy()  # (n_run_items, d_g)
    run_degree = run.train_matrix().getnnz(axis=0)  # (n_run_items,)
    our_degree = split.matrix("train").getnnz(axis=0)  # (n_items,)
    items, rows = [], []
    for r, ext in enumerate(run.items.ids):
        i = split.items.get(ext)
        if i is not None and run_degree[r] > 0 and our_degree[i] > 0:
            items.append(i)
            rows.append(r)
    if len(items) < 2:
        raise DataError(
            f"--graph {run_dir}: fewer than 2 of its trained items are training items of this split "
            f"(matched {len(items)}); was it trained on another dataset?"
        )
    notes = []
    if split.cold_items is not None:
        trained_ext = {run.items.ids[r] for r in range(len(run.items)) if run_degree[r] > 0}
        leaked = sum(1 for i in split.cold_items if split.items.ids[i] in trained_ext)
        if leaked:
            notes.append(
                f"the graph run trained on {leaked} of this split's {len(split.cold_items)} held-out items "
                f"(split '{run.data_config.split}' seed {run.data_config.split_seed} vs '{split.spec}'): "
                "cold-item results are optimistic; use the run's own split"
            )
    vecs = graph_vecs[np.asarray(rows)]
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    return GraphTargets(np.asarray(items, dtype=np.int64), vecs.astype(np.float32), str(run.path),
                        run.model_name, notes)


class Projection(torch.nn.Module):
    """``P t`` : text space ``(B, d_t)`` -> graph space ``(B, d_g)``, one linear layer."""

    def __init__(self, text_dim: int, graph_dim: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(text_dim, graph_dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.linear(t)  # (B, d_g)

    @torch.no_grad()
    def fit_least_squares(self, text: torch.Tensor, graph: torch.Tensor, ridge: float = 1.0) -> None:
        """Start from the ridge-regression map of ``text`` ``(N, d_t)`` onto ``graph``
        ``(N, d_g)``, so the first steps train the encoder rather than a random ``P``."""
        x = torch.cat([text, torch.ones(text.shape[0], 1, dtype=text.dtype)], dim=1)  # (N, d_t + 1)
        a = x.T @ x + ridge * torch.eye(x.shape[1], dtype=x.dtype)
        w = torch.linalg.solve(a, x.T @ graph)  # (d_t + 1, d_g)
        self.linear.weight.copy_(w[:-1].T)
        self.linear.bias.copy_(w[-1])


def align_loss(projected: torch.Tensor, graph: torch.Tensor, temperature: float,
               text: torch.Tensor | None = None, relational: float = 0.0) -> torch.Tensor:
    """``½ · [InfoNCE(P t, g) + InfoNCE(g, P t)] + λ · KL(q ‖ p)`` over a batch:
    ``projected`` ``(B, d_g)``, ``graph`` ``(B, d_g)``, ``text`` ``(B, d_t)`` (needed when
    ``relational`` λ > 0)."""
    loss = 0.5 * (info_nce(projected, graph, temperature) + info_nce(graph, projected, temperature))
    if relational > 0 and text is not None:
        loss = loss + relational * relational_loss(text, graph, temperature)
    return loss


def relational_loss(text: torch.Tensor, graph: torch.Tensor, temperature: float) -> torch.Tensor:
    """``(1/B) Σ_i KL(q_i ‖ p_i)`` with ``q_i = softmax_{j≠i}(ĝ_i·ĝ_j/τ)`` and
    ``p_i = softmax_{j≠i}(t̂_i·t̂_j/τ)`` over a batch: ``text`` ``(B, d_t)``, ``graph``
    ``(B, d_g)`` (rows L2-normalised here). Denominator: ``B`` rows."""
    b = text.shape[0]
    if b < 3:
        return text.sum() * 0.0
    off = ~torch.eye(b, dtype=torch.bool, device=text.device)  # (B, B)
    t = torch.nn.functional.normalize(text.float(), dim=1)
    g = torch.nn.functional.normalize(graph.float(), dim=1)
    st = (t @ t.T / temperature)[off].view(b, b - 1)  # (B, B-1)
    sg = (g @ g.T / temperature)[off].view(b, b - 1)  # (B, B-1)
    log_p = torch.log_softmax(st, dim=1)
    log_q = torch.log_softmax(sg, dim=1)
    return (log_q.exp() * (log_q - log_p)).sum(1).mean()


def knn_overlap(text: np.ndarray, graph: np.ndarray, k: int = 10) -> float:
    """Mean over rows of ``|kNN_text(i) ∩ kNN_graph(i)| / k`` (cosine, self excluded).

    Args:
        text: ``(N, d_t)`` and graph: ``(N, d_g)`` vectors of the same ``N`` items.
    Denominator: ``k`` per item, then ``N`` items.
    """
    n = text.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return float("nan")

    def neighbours(x: np.ndarray) -> np.ndarray:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        sim = x @ x.T  # (N, N)
        np.fill_diagonal(sim, -np.inf)
        return np.argpartition(-sim, k - 1, axis=1)[:, :k]  # (N, k)

    a, b = neighbours(text), neighbours(graph)
    return float(np.mean([len(np.intersect1d(a[r], b[r])) / k for r in range(n)]))


def similarity_correlation(text: np.ndarray, graph: np.ndarray) -> float:
    """Pearson correlation of ``cos(t_i, t_j)`` and ``cos(g_i, g_j)`` over the pairs
    ``i < j`` of the ``N`` rows of ``text`` ``(N, d_t)`` and ``graph`` ``(N, d_g)``."""
    def cos(x: np.ndarray) -> np.ndarray:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x @ x.T

    upper = np.triu_indices(text.shape[0], k=1)
    a, b = cos(text)[upper], cos(graph)[upper]
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@torch.no_grad()
def mean_cosine(proj: Projection, text: np.ndarray, graph: np.ndarray) -> float:
    """Mean cosine between ``P t_i`` and ``g_i`` over the rows."""
    p = proj(torch.from_numpy(text))
    g = torch.from_numpy(graph)
    return float(torch.nn.functional.cosine_similarity(p, g, dim=1).mean())


def cold_recall(split: Split, item_vecs: np.ndarray, ks: tuple[int, ...] = (10, 20)) -> dict[str, Any]:
    """Cold-item metrics of the text-only ``semantic`` model with these item vectors
    ``(n_items, d)``: users' profiles from their training items, held-out test items
    ranked among themselves (:func:`semrec.evaluate.cold.cold_sections`)."""
    from semrec.evaluate.cold import cold_sections
    from semrec.models.semantic import SemanticModel

    if split.cold_items is None or not len(split.cold_items):
        return {}
    model = SemanticModel(split.n_users, split.n_items, torch.from_numpy(item_vecs))
    model.fit(split.matrix("train"))
    return cold_sections(model, split, ks=ks).get("cold", {})
