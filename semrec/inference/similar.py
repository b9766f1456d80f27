"""Items like an item, or like a piece of free text, for a trained run.

Which vectors answer depends on what the run learned:

* embedding models (``mf``, ``lightgcn``, ``xsimgcl``, ``semgraph``): cosine between
  final item embeddings;
* ``semantic``: cosine between item text embeddings;
* ``itemknn``: the learned item–item similarities.

Free text is encoded by the run's own text encoder (checked by fingerprint) and
compared with item text embeddings (``semantic``) or, for ``semgraph``, turned into the
vector an item with that text would get (:func:`semgraph_text_vectors`) first.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from semrec.artifacts.run import Run
from semrec.errors import SemrecError
from semrec.inference.known import format_items
from semrec.models.base import EmbeddingScorer, HistoryScorer
from semrec.models.itemknn import ItemKNN
from semrec.models.semantic import SemanticModel
from semrec.models.semgraph import SemGraph
from semrec.models.topk import topk


def _item_vectors(run: Run) -> torch.Tensor | None:
    """Unit-norm item vectors ``(n_items, d)`` used for item-to-item similarity."""
    if isinstance(run.scorer, EmbeddingScorer):
        return F.normalize(run.scorer.item_emb.float(), dim=1)
    if isinstance(run.model, SemanticModel):
        return F.normalize(run.model.item_emb.float(), dim=1)
    return None


def similar_items(run: Run, item: str | int, k: int = 10) -> list[dict]:
    """The ``k`` items most similar to a known ``item`` (itself excluded)."""
    i = run.items.get(item)
    if i is None:
        raise SemrecError(f"unknown item '{item}' (this run knows {len(run.items)} items, "
                          f"e.g. {', '.join(run.items.ids[:5])})")
    vectors = _item_vectors(run)
    if vectors is not None:
        scores = (vectors @ vectors[i])[None, :].clone()  # (1, n_items)
    elif isinstance(run.model, ItemKNN):
        scores = torch.as_tensor(run.model.sim[i].toarray(), dtype=torch.float32)  # (1, n_items)
        scores[scores == 0] = float("-inf")
    else:
        raise SemrecError(f"model '{run.model_name}' has no notion of item similarity; "
                          "use an embedding model, semantic or itemknn")
    scores[0, i] = float("-inf")
    values, indices = topk(scores, k)
    return format_items(run, values[0], indices[0])


def encode_query(run: Run, text: str) -> torch.Tensor:
    """The run's text encoder applied to ``text``: ``(1, t)`` unit-norm."""
    if not text.strip():
        raise SemrecError("the query text is empty")
    return encode_texts(run, [text])


def encode_texts(run: Run, texts: list[str]) -> torch.Tensor:
    """The run's own text encoder (checked by fingerprint) applied to ``texts``: ``(m, t)``."""
    from semrec.text.features import load_encoder

    info = run.text_encoder
    if info is None:
        raise SemrecError(f"{run.label} was trained without text ({run.model_name}); "
                          "free-text queries need a text model: semantic or semgraph")
    encoder = load_encoder(run.text_config, progress=False)
    if encoder.fingerprint != info["fingerprint"]:
        raise SemrecError(
            f"the text encoder at hand ({encoder.name}) is not the one {run.label} was trained "
            f"with ({info['name']}, fingerprint {info['fingerprint'][:12]}); set [text] encoder to it"
        )
    return torch.as_tensor(encoder.encode(list(texts)), dtype=torch.float32)  # (m, t)


def semgraph_text_vectors(run: Run, texts: torch.Tensor, return_layers: bool = False
                          ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """What items with these text vectors ``(m, t)`` would be in a semgraph run ``(m, d)``:
    ``z = MLP(t)``, then the graph steps a trained item without interactions takes, over
    its ``k`` nearest catalogue items by text (positive cosines, row-normalised; ``k`` the
    run's ``[text] knn``) and the run's saved item layers. With ``return_layers``, also
    their layers ``(L + 1, m, d)`` (see :meth:`SemGraph.item_from_text`)."""
    model, scorer = run.model, run.scorer
    if not isinstance(model, SemGraph) or not isinstance(scorer, HistoryScorer):
        raise SemrecError(f"model '{run.model_name}' cannot embed text as items; use semgraph or semantic")
    t = texts.float().cpu()
    neighbours = None
    k = int(run.text_config.knn)
    if k > 0 and model.layers > 0 and scorer.item_layers is not None:
        catalogue = F.normalize(model.item_text.float().cpu(), dim=1)  # (n_items, t); zero rows stay 0
        n_run = catalogue.shape[0]
        sims = F.normalize(t, dim=1) @ catalogue.T  # (m, n_run)
        values, nbrs = torch.topk(sims, min(k, n_run), dim=1)
        values = values.clamp_min(0)
        total = values.sum(1, keepdim=True)
        weights = torch.where(total > 0, values / total.clamp_min(1e-12), torch.zeros_like(values))
        rows = np.repeat(np.arange(len(t)), nbrs.shape[1])
        neighbours = sp.csr_matrix((weights.numpy().ravel(), (rows, nbrs.numpy().ravel())), shape=(len(t), n_run))
    with torch.no_grad():
        layers = None if scorer.item_layers is None else scorer.item_layers[:, : model.n_items]
        out = model.item_from_text(t, neighbours, layers, return_layers=return_layers)
    if return_layers:
        return out[0].float().cpu(), out[1].float().cpu()
    return out.float().cpu()


def text_query_scores(run: Run, text: str) -> torch.Tensor:
    """Scores ``(1, n_items)`` of every item against a free-text query."""
    t = encode_query(run, text)  # (1, t)
    if isinstance(run.model, SemanticModel):
        return run.model.score_text(t).float().cpu()  # (1, n_items)
    if isinstance(run.model, SemGraph) and isinstance(run.scorer, HistoryScorer):
        items = F.normalize(run.scorer.item_emb.float(), dim=1).cpu()
        return F.normalize(semgraph_text_vectors(run, t), dim=1) @ items.T  # (1, n_items)
    raise SemrecError(f"model '{run.model_name}' cannot answer free-text queries")


def similar_to_text(run: Run, text: str, k: int = 10) -> list[dict]:
    """The ``k`` items that best match a free-text description."""
    values, indices = topk(text_query_scores(run, text), k)
    return format_items(run, values[0], indices[0])
