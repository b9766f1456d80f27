"""Cold start: users and items a run has never trained on.

One rule per question, whatever the model:

* **A user known only by a few items** is *folded in*: one LightGCN propagation step
  from their items, ``u = sum_i V_i / sqrt(|N_u| d_i)``
  (:meth:`~semrec.models.base.EmbeddingScorer.fold_in`). A trained user with new items
  moves by the change that step makes, ``u' = u + f(N_u ∪ new) − f(N_u)``. Models that
  score a history row directly (popularity, ItemKNN, the graph filter, ``semantic``)
  simply receive the longer row.
* **A user known only by a sentence** ("quiet sci-fi about time travel"): the run's
  own text encoder embeds it; ``semgraph`` maps it through its trained item text adapter
  ``z = MLP(t)`` into the space the items live in, ``semantic`` compares it with item
  texts directly. A sentence and items together are summed at equal norm.
* **A user known only by profile fields** (``age=25, occupation=engineer`` where the
  dataset has user text): the fields are rendered with the dataset's user template and
  mapped by ``semgraph``'s user adapter; with no ID embedding that is the user's whole
  layer 0, worth ``1/(L+1)`` of the layer mean, the folded-in items the rest.
* **A new item known only by its text**: ``semgraph`` gives it what training gives a
  cold item, ``h⁰ = z``, then ``L`` steps over its semantic neighbours ``S`` (the run's
  ``k`` nearest items by text, cosine-weighted):
  ``v ≈ (z + L · sum_j s_j V_j) / (L + 1)``, final neighbour embeddings standing in for
  each layer's; ``semantic`` uses the text embedding itself.
* **Nothing at all**: training popularity.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from semrec.artifacts.run import Run
from semrec.data.readers.common import render_template, template_fields
from semrec.errors import SemrecError
from semrec.models.base import EmbeddingScorer
from semrec.models.semantic import SemanticModel
from semrec.models.semgraph import SemGraph
from semrec.models.topk import topk
from semrec.serve.recommend import format_items
from semrec.serve.similar import encode_query


def item_indices(run: Run, items: Sequence[str | int]) -> np.ndarray:
    """Internal indices ``(n,)`` of external item ids; unknown ids are an error naming them."""
    idx = run.items.indices([str(i) for i in items])
    if (idx < 0).any():
        missing = [str(i) for i, j in zip(items, idx) if j < 0]
        raise SemrecError(
            f"unknown item id(s): {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
            f"(this run knows {len(run.items)} items, e.g. {', '.join(run.items.ids[:3])})"
        )
    return np.unique(idx.astype(np.int64))


def history_row(n_items: int, items: np.ndarray) -> sp.csr_matrix:
    """A one-user history ``(1, n_items)`` with ones at ``items``."""
    items = np.unique(np.asarray(items, dtype=np.int64))
    return sp.csr_matrix(
        (np.ones(len(items), dtype=np.float32), items, np.array([0, len(items)])), shape=(1, n_items)
    )


def popularity(run: Run) -> torch.Tensor:
    """Training interactions per item ``(n_items,)`` as float scores."""
    counts = np.bincount(run.split.train.items, minlength=len(run.items)).astype(np.float32)
    return torch.as_tensor(counts)


def render_profile(run: Run, fields: Mapping[str, str]) -> str:
    """Profile fields rendered with the dataset's user template (stored in the run)."""
    template = (run.info.get("dataset") or {}).get("user_template")
    if not template:
        raise SemrecError(f"run {run.path} has no user text: its dataset has no user table to "
                          "describe a profile with; give items or a sentence instead")
    known = template_fields(template)
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise SemrecError(f"unknown profile field(s) {', '.join(unknown)}; this run's users are "
                          f"described by: {', '.join(known)}")
    text = render_template(template, {f: str(fields.get(f, "")) for f in known})
    if not text.strip():
        raise SemrecError(f"the profile fields {sorted(fields)} fill none of the user template "
                          f"'{template}'")
    return text


def _text_vector(run: Run, text: str) -> torch.Tensor:
    """A sentence about what a user wants, in the space the run scores items in ``(d,)``."""
    t = encode_query(run, text)  # (1, t)
    if isinstance(run.model, SemGraph):
        with torch.no_grad():
            return run.model.item_proj(t.to(run.model.item_text.device))[0].float().cpu()
    raise SemrecError(f"model '{run.model_name}' cannot map text to users; use semgraph or semantic")


def _profile_vector(run: Run, fields: Mapping[str, str]) -> torch.Tensor:
    """Layer-0 vector ``(d,)`` of a new user from profile fields (semgraph with user text)."""
    model = run.model
    if not isinstance(model, SemGraph) or model.user_text is None:
        raise SemrecError(f"model '{run.model_name}' of run {run.path} has no user text adapter; "
                          "profiles need semgraph trained on a dataset with user text")
    t = encode_query(run, render_profile(run, fields))
    with torch.no_grad():
        return model.user_proj(t.to(model.user_text.device))[0].float().cpu()


def _sum_at_equal_norm(a: torch.Tensor | None, b: torch.Tensor) -> torch.Tensor:
    if a is None or float(a.norm()) == 0.0:
        return b
    return a + b * (a.norm() / b.norm().clamp_min(1e-12))


def user_vector(
    run: Run,
    items: np.ndarray | Sequence[int] = (),
    text: str | None = None,
    user: int | None = None,
    profile: Mapping[str, str] | None = None,
) -> torch.Tensor | None:
    """A query vector ``(d,)`` in the run's item-embedding space, or ``None`` for models
    without one (popularity, ItemKNN, graph filter, semantic: use :func:`anonymous_scores`).

    Args:
        items: internal item indices the user interacted with (for a known ``user``:
            their history plus any new events; items already in the history are fine).
        text: a sentence describing what the user wants.
        user: internal index of a known user whose trained vector is the starting point.
        profile: profile fields rendered by the dataset's user template.
    """
    scorer = run.scorer
    if not isinstance(scorer, EmbeddingScorer):
        return None
    items = np.unique(np.asarray(items, dtype=np.int64))
    n = scorer.n_items
    trained = user is not None and (scorer.trained_users is None or bool(scorer.trained_users[user]))
    vec: torch.Tensor | None = None
    if trained:
        vec = scorer.user_emb[user].float().cpu().clone()
        known = run.train_matrix()[user].indices
        if len(np.setdiff1d(items, known)):
            grown = np.union1d(known, items)
            rows = sp.vstack([history_row(n, grown), history_row(n, known)]).tocsr()
            f = scorer.fold_in(rows).cpu()  # (2, d)
            vec = vec + f[0] - f[1]
    elif len(items):
        vec = scorer.fold_in(history_row(n, items))[0].float().cpu()
    if profile:
        layers = int(getattr(run.model, "layers", 0))
        u0 = _profile_vector(run, profile)
        vec = u0 / (layers + 1) if vec is None else (u0 + layers * vec) / (layers + 1)
    if text is not None:
        vec = _sum_at_equal_norm(vec, _text_vector(run, text))
    return vec


def anonymous_scores(
    run: Run,
    items: np.ndarray | Sequence[int] = (),
    text: str | None = None,
    user: int | None = None,
    profile: Mapping[str, str] | None = None,
) -> torch.Tensor:
    """Scores ``(n_items,)`` of every item for a user described as in :func:`user_vector`,
    for any model; with nothing to go on, training popularity."""
    items = np.unique(np.asarray(items, dtype=np.int64))
    if text is not None and not text.strip():
        raise SemrecError("the text is empty: describe what the user likes")
    if not len(items) and text is None and not profile and user is None:
        return popularity(run)
    vec = user_vector(run, items, text, user, profile)
    if vec is not None:
        return vec @ run.scorer.item_emb.float().cpu().T
    if profile:
        raise SemrecError(f"model '{run.model_name}' cannot use profile fields; use semgraph")
    history = history_row(len(run.items), items)
    if user is not None:
        history = history_row(len(run.items), np.union1d(run.seen()[user].indices, items))
    users = np.asarray([-1 if user is None else user], dtype=np.int64)
    model = run.model
    if isinstance(model, SemanticModel):
        with torch.no_grad():
            profile_vec = model.user_vectors(users, history)[0].float().cpu()  # (t,) unit or zero
            if text is not None:
                profile_vec = _sum_at_equal_norm(profile_vec, encode_query(run, text)[0])
            return F.normalize(profile_vec, dim=0) @ model.item_emb.float().cpu().T
    if text is not None:
        raise SemrecError(f"model '{run.model_name}' cannot read text; train semgraph or semantic "
                          "for sentence queries")
    with torch.no_grad():
        return run.scorer.score(np.maximum(users, 0), history)[0].float().cpu()


def item_vector_from_text(run: Run, text: str) -> torch.Tensor:
    """The embedding ``(d,)`` a brand-new item gets from its text (see the module notes)."""
    if not text or not text.strip():
        raise SemrecError("the item text is empty: a new item needs a description to be embedded")
    model = run.model
    if isinstance(model, SemanticModel):
        return F.normalize(encode_query(run, text)[0], dim=0)
    if not isinstance(model, SemGraph) or not isinstance(run.scorer, EmbeddingScorer):
        raise SemrecError(f"model '{run.model_name}' cannot embed a new item from text; "
                          "use semgraph or semantic")
    t = encode_query(run, text)  # (1, t)
    with torch.no_grad():
        z = model.item_proj(t.to(model.item_text.device))[0].float().cpu()  # (d,)
    k = int(run.text_config.knn)
    if k < 1 or model.layers < 1:
        return z
    item_text = F.normalize(model.item_text.float().cpu(), dim=1)  # (n_items, t); zero rows stay 0
    sims = item_text @ F.normalize(t.float().cpu(), dim=1)[0]  # (n_items,)
    values, nbrs = torch.topk(sims, min(k, len(sims)))
    keep = values > 0
    if not bool(keep.any()):
        return z
    weights = values[keep] / values[keep].sum()
    neighbours = weights @ run.scorer.item_emb.float().cpu()[nbrs[keep]]  # (d,)
    return (z + model.layers * neighbours) / (model.layers + 1)


def recommend_anonymous(
    run: Run,
    items: Sequence[str | int] = (),
    text: str | None = None,
    k: int = 10,
    *,
    user: str | int | None = None,
    profile: Mapping[str, str] | None = None,
    candidates: Sequence[str] | None = None,
) -> list[dict]:
    """Top-``k`` ``[{"item", "score", "title"}]`` for a user described by item ids,
    a sentence and/or profile fields (optionally a known ``user`` with new items);
    the given items and the known user's history are never recommended back."""
    if k < 1:
        raise SemrecError(f"k must be at least 1, got {k}")
    idx = item_indices(run, items) if items else np.zeros(0, dtype=np.int64)
    u = None
    if user is not None:
        u = run.users.get(user)
        if u is None:
            raise SemrecError(f"unknown user '{user}' (this run knows {len(run.users)} users)")
    scores = anonymous_scores(run, idx, text, u, profile)[None, :].clone()  # (1, n_items)
    seen = idx if u is None else np.union1d(run.seen()[u].indices, idx)
    cand = None if candidates is None else torch.as_tensor(item_indices(run, candidates))
    values, indices = topk(scores, k, seen=history_row(len(run.items), seen), candidates=cand)
    return format_items(run, values[0], indices[0])
