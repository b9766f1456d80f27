"""Why the service recommends an item to a user: the past items behind the score and the
share of the item's representation carried by its text versus behaviour (``GET
/explain``, ``semrec explain``)."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from semrec.models.base import HistoryScorer
from semrec.models.itemknn import ItemKNN
from semrec.models.semantic import SemanticModel
from semrec.models.semgraph import SemGraph
from semrec.serve.state import Catalogue, LiveState, LiveUser, NotFound, coldstart_module

EXPLAIN_TOP = 3


def explain(state: LiveState, user: str, item: str) -> dict[str, Any]:
    """Why ``item`` suits ``user``: the past items that contributed most and the share
    of the item's representation carried by text versus behaviour.

    Contributions: for ``semgraph`` (users encoded from their history), what the
    served score loses without item ``j``: ``s(u, i) − s(u without j, i)``, both
    computed by the run's own user tower; for other embedding models, item ``j`` of
    the user's history ``N_u`` contributes ``<V_j, V_i> / sqrt(|N_u| · d_j)`` — the
    one-step propagation that folds a user in from their items
    (:meth:`EmbeddingScorer.fold_in`), split per item; for ItemKNN the learned
    similarity ``sim[j, i]``; for ``semantic`` the cosine of the two texts. Shares
    are over the positive contributions.
    """
    cat = state.cat
    i = cat.items.get(item)
    if i is None:
        raise NotFound(f"item: unknown item '{item}'")
    entry = state.user_entry(user)
    history = state.seen(entry)
    history = history[history != i]
    contrib = _contributions(state, cat, history, i, entry)
    order = np.argsort(-contrib, kind="stable")
    positive = contrib[contrib > 0]
    total = float(positive.sum()) if len(positive) else 0.0
    because = []
    for j in order[:EXPLAIN_TOP]:
        if contrib[j] <= 0:
            break
        ext = cat.items.to_external([int(history[j])])[0]
        because.append({"item": ext, "title": cat.titles.get(ext), "contribution": float(contrib[j]),
                        "share": float(contrib[j] / total)})
    text_share = _text_share(state, cat, i)
    score = _score(state, cat, entry, i)
    out = {
        "user": user,
        "item": item,
        "title": cat.titles.get(item),
        "score": score,
        "known_user": entry.index is not None or bool(len(entry.items)),
        "because": because,
        "text_share": text_share,
        "behaviour_share": None if text_share is None else 1.0 - text_share,
    }
    out["sentence"] = explanation_sentence(out)
    return out


def ordered_history(state: LiveState, entry: LiveUser) -> np.ndarray:
    """The user's items, oldest first: the run's by time, then the live ones in event order."""
    known = state.run.history_of(entry.index) if entry.index is not None else np.zeros(0, dtype=np.int64)
    return coldstart_module().last_occurrences(np.concatenate([known, entry.items]))


def _contributions(state: LiveState, cat: Catalogue, history: np.ndarray, i: int, entry: LiveUser) -> np.ndarray:
    if not len(history):
        return np.zeros(0, dtype=np.float32)
    model = state.run.model
    scorer = cat.view.scorer
    if isinstance(scorer, HistoryScorer):
        return _leave_one_out(state, cat, scorer, history, i, entry)
    if state.vector_model:
        vectors = cat.index.vectors
        degree = np.ones(len(vectors), dtype=np.float32)
        if cat.view.scorer.item_degree is not None:
            degree = np.maximum(cat.view.scorer.item_degree.cpu().numpy().astype(np.float32), 1.0)
        dots = vectors[history] @ vectors[i]  # (|N_u|,)
        return dots / np.sqrt(len(history) * degree[history])
    if isinstance(model, ItemKNN):
        return np.asarray(model.sim[history][:, [i]].toarray()).ravel().astype(np.float32)
    if isinstance(model, SemanticModel):
        emb = model.item_emb.float().cpu()
        return (emb[torch.as_tensor(history)] @ emb[i]).numpy()
    return np.zeros(len(history), dtype=np.float32)  # popularity, graph filter: no per-item story


def _leave_one_out(state: LiveState, cat: Catalogue, scorer: HistoryScorer, history: np.ndarray, i: int,
                   entry: LiveUser) -> np.ndarray:
    """``s(u, i) − s(u without j, i)`` for every ``j`` of ``history``, through the tower."""
    seq = ordered_history(state, entry)
    seq = seq[seq != i]
    n = len(seq)
    # row 0: the whole history; row r: without its item r − 1; values give the order
    rows = [np.arange(n)] + [np.delete(np.arange(n), r) for r in range(n)]
    indptr = np.cumsum([0] + [len(r) for r in rows])
    cols = np.concatenate([seq[r] for r in rows])
    order = np.concatenate([r.astype(np.float64) + 1 for r in rows])
    m = sp.csr_matrix((order, cols, indptr), shape=(len(rows), scorer.n_items))
    users = np.full(len(rows), -1 if entry.index is None else entry.index, dtype=np.int64)
    vectors = scorer.user_vectors(users, m).float().cpu().numpy()  # (n + 1, d)
    scores = vectors @ cat.index.vectors[i]  # (n + 1,)
    by_item = dict(zip(seq.tolist(), (scores[0] - scores[1:]).tolist()))
    return np.asarray([by_item.get(int(j), 0.0) for j in history], dtype=np.float32)


def _text_share(state: LiveState, cat: Catalogue, i: int) -> float | None:
    model = state.run.model
    if isinstance(model, SemanticModel):
        return 1.0
    if not isinstance(model, SemGraph):
        return 0.0  # behaviour alone (MF, LightGCN, ItemKNN, ...): no text in the model
    if cat.text_share is None:  # a state built without warm_up(): computed, not kept
        share = model.text_share(state.run.graph()).float().cpu().numpy()  # (n_run_items,)
        return float(share[i]) if i < len(share) else 1.0
    return float(cat.text_share[i])


def _score(state: LiveState, cat: Catalogue, entry: LiveUser, i: int) -> float | None:
    if state.vector_model:
        vec = state.query(entry)
        return None if vec is None else float(cat.index.vectors[i] @ vec)
    if i >= len(state.run.items):
        return None
    scores = coldstart_module().anonymous_scores(state.run, entry.items, None, entry.index)
    return float(scores[i])


def explanation_sentence(e: dict[str, Any]) -> str:
    """A readable sentence for an :meth:`LiveState.explain` answer."""
    def name(it: dict[str, Any]) -> str:
        return f"'{it['title']}'" if it.get("title") else f"item {it['item']}"

    target = name(e)
    if e["because"]:
        parts = [f"{name(b)} ({b['share']:.0%})" for b in e["because"]]
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        head = f"{target} is recommended to user {e['user']} mainly because of {listed}."
    elif e["known_user"]:
        head = f"None of user {e['user']}'s past items points towards {target}."
    else:
        head = f"User {e['user']} has no history here; {target} comes from what is popular or described."
    share = e["text_share"]
    if share is None:
        return head
    if share >= 0.995:
        tail = "It is represented by its text alone."
    elif share <= 0.005:
        tail = "It is represented by who interacted with it (behaviour) alone."
    else:
        tail = (f"Its representation is {share:.0%} from its text and {1 - share:.0%} from "
                f"who interacted with it.")
    return f"{head} {tail}"

