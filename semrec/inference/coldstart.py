"""Cold start: users and items a run has never trained on.

One rule per question, whatever the model:

* **A user known only by a few items**: ``semgraph`` encodes users from their history,
  so a new user is simply their items, in the order given, through the run's own user
  tower (:class:`~semrec.models.base.HistoryScorer`), and a known user with new items is
  their history by time followed by the new items. Other embedding models *fold in*:
  one LightGCN propagation step from the items, ``u = sum_i V_i / sqrt(|N_u| d_i)``
  (:meth:`~semrec.models.base.EmbeddingScorer.fold_in`), and a trained user with new
  items moves by the change that step makes, ``u' = u + f(N_u ∪ new) − f(N_u)``. Models
  that score a history row directly (popularity, ItemKNN, the graph filter, ``semantic``)
  simply receive the longer row.
* **A user known only by a sentence** ("quiet sci-fi about time travel"): the run's
  own text encoder embeds it; ``semgraph`` reads it as the newest item of the user's
  history, the vector an item with that text would get
  (:func:`~semrec.inference.similar.semgraph_text_vectors`), and adds the language
  model's own match of sentence and item text (:func:`sentence_match`): the tower
  predicts what *follows* an item like the sentence (toner after ink), the text match
  keeps the list on what the user asked for, and the tower orders within it.
  ``semantic`` compares it with item texts directly, a sentence and items together
  summed at equal norm.
* **A user known only by profile fields** (``age=25, occupation=engineer`` where the
  dataset has user text): the fields are rendered with the dataset's user template and
  mapped by ``semgraph``'s user text adapter, which is added to the tower's output as
  for a known user's profile.
* **A new item known only by its text**: ``semgraph`` gives it what training gives an
  item without interactions: ``V⁰ = z``, then the graph steps over its semantic
  neighbours (the run's ``k`` nearest items by text, cosine-weighted) and the saved item
  layers; ``semantic`` uses the text embedding itself.
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
from semrec.inference.known import format_items
from semrec.inference.similar import encode_query, semgraph_text_vectors
from semrec.models.base import EmbeddingScorer, HistoryScorer
from semrec.models.semantic import SemanticModel
from semrec.models.semgraph import SemGraph
from semrec.models.topk import topk

#: Weight of a sentence's text cosine against a semgraph score (whose cosine part is at
#: most 1): what a user says they want outweighs what the model expects to follow it, and
#: the model orders the items that match. 5 and 20 score within 0.3 of 10 on the
#: text-query benchmark (BENCHMARKS.md); 0 reads the sentence through the tower alone.
SENTENCE_WEIGHT = 10.0


def sentence_match(query: torch.Tensor, unit_texts: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``SENTENCE_WEIGHT · cos(query, t_i)`` ``(n_items,)`` of a sentence's text vector
    ``query`` ``(t,)`` and the items' unit-length text vectors ``(n_items, t)`` (zero rows:
    items without text, which get 0). The caller normalises the items once (the service
    at load); the query here."""
    return SENTENCE_WEIGHT * (torch.as_tensor(unit_texts) @ F.normalize(query.float(), dim=0))


def item_indices(run: Run, items: Sequence[str | int]) -> np.ndarray:
    """Internal indices ``(n,)`` of external item ids, in the order given (an id given
    twice counts where it last occurs); unknown ids are an error naming them."""
    idx = run.items.indices([str(i) for i in items])
    if (idx < 0).any():
        missing = [str(i) for i, j in zip(items, idx) if j < 0]
        raise SemrecError(
            f"unknown item id(s): {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
            f"(this run knows {len(run.items)} items, e.g. {', '.join(run.items.ids[:3])})"
        )
    return last_occurrences(idx.astype(np.int64))


def last_occurrences(seq: np.ndarray) -> np.ndarray:
    """``seq`` with each value kept only where it last occurs, order otherwise kept."""
    seq = np.asarray(seq, dtype=np.int64)
    if not len(seq):
        return seq
    _, last = np.unique(seq[::-1], return_index=True)
    return seq[np.sort(len(seq) - 1 - last)]


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
        raise SemrecError(f"{run.label} has no user text: its dataset has no user table to "
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


def _profile_text(run: Run, fields: Mapping[str, str]) -> torch.Tensor:
    """The profile fields' text vector ``(1, t)`` (semgraph with user text)."""
    model = run.model
    if not isinstance(model, SemGraph) or model.user_text is None:
        raise SemrecError(f"model '{run.model_name}' of {run.label} has no user text adapter; "
                          "profiles need semgraph trained on a dataset with user text")
    return encode_query(run, render_profile(run, fields))


def history_vector(
    run: Run,
    items: np.ndarray | Sequence[int] = (),
    text: str | torch.Tensor | None = None,
    user: int | None = None,
    profile: Mapping[str, str] | None = None,
) -> torch.Tensor | None:
    """A semgraph user ``(d,)`` from an ordered history through the run's own user
    tower: the known ``user``'s items by time, then ``items`` in the order given, then
    the sentence ``text`` (or its vector ``(1, t)`` from :func:`encode_query`, when the
    caller has encoded it already) as the newest entry; ``profile`` fields join as a known
    user's profile text does. ``None`` when there is nothing to go on."""
    scorer = run.scorer
    model = run.model
    seq = list(last_occurrences(np.concatenate([
        run.history_of(user) if user is not None else np.zeros(0, dtype=np.int64),
        np.asarray(items, dtype=np.int64)])))
    item_emb = scorer.item_emb.float().cpu()
    if text is not None:
        query = text if isinstance(text, torch.Tensor) else encode_query(run, text)
        item_emb = torch.cat([item_emb, semgraph_text_vectors(run, query)])
        seq.append(scorer.n_items)
    extra = None
    if profile:
        with torch.no_grad():
            extra = model.profile_vector(_profile_text(run, profile).to(model.item_text.device)).float().cpu()
    if not seq and extra is None and user is None:
        return None
    row = sp.csr_matrix((np.arange(1, len(seq) + 1, dtype=np.float64), np.asarray(seq, dtype=np.int64),
                         np.array([0, len(seq)])), shape=(1, item_emb.shape[0]))
    users = np.asarray([-1 if user is None else user], dtype=np.int64)
    return scorer.encoder(users, row, item_emb, extra)[0].float().cpu()


def _sum_at_equal_norm(a: torch.Tensor | None, b: torch.Tensor) -> torch.Tensor:
    if a is None or float(a.norm()) == 0.0:
        return b
    return a + b * (a.norm() / b.norm().clamp_min(1e-12))


def user_vector(
    run: Run,
    items: np.ndarray | Sequence[int] = (),
    text: str | torch.Tensor | None = None,
    user: int | None = None,
    profile: Mapping[str, str] | None = None,
) -> torch.Tensor | None:
    """A query vector ``(d,)`` in the run's item-embedding space, or ``None`` for models
    without one (popularity, ItemKNN, graph filter, semantic: use :func:`anonymous_scores`).

    Args:
        items: internal item indices the user interacted with (for a known ``user``:
            their history plus any new events; items already in the history are fine).
        text: a sentence describing what the user wants (semgraph also takes its vector
            ``(1, t)`` from :func:`encode_query`).
        user: internal index of a known user whose trained vector is the starting point.
        profile: profile fields rendered by the dataset's user template.
    """
    scorer = run.scorer
    if not isinstance(scorer, EmbeddingScorer):
        return None
    if isinstance(scorer, HistoryScorer):
        return history_vector(run, items, text, user, profile)
    if profile:
        _profile_text(run, profile)  # says why this run cannot read a profile
    if isinstance(text, str):
        encode_query(run, text)  # says why this run cannot read text
        raise SemrecError(f"model '{run.model_name}' cannot map text to users; use semgraph or semantic")
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
    items = np.asarray(items, dtype=np.int64)
    if text is not None and not text.strip():
        raise SemrecError("the text is empty: describe what the user likes")
    if not len(items) and text is None and not profile and user is None:
        return popularity(run)
    if text is not None and isinstance(run.scorer, HistoryScorer):  # encoded once, used twice
        query = encode_query(run, text)
        scores = user_vector(run, items, query, user, profile) @ run.scorer.item_emb.float().cpu().T
        return scores + sentence_match(query[0], F.normalize(run.model.item_text.float().cpu(), dim=1))
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
    if not isinstance(model, SemGraph) or not isinstance(run.scorer, HistoryScorer):
        raise SemrecError(f"model '{run.model_name}' cannot embed a new item from text; "
                          "use semgraph or semantic")
    return semgraph_text_vectors(run, encode_query(run, text))[0]


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
