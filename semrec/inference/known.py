"""Recommendations for known users of a run, in external ids."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from semrec.artifacts.run import Run
from semrec.errors import SemrecError
from semrec.models.topk import topk


def recommend(
    run: Run,
    user: str | int,
    k: int = 10,
    *,
    exclude_seen: bool = True,
    candidates: Sequence[str] | None = None,
) -> list[dict]:
    """Top-``k`` items for a known ``user``: ``[{"item", "score", "title"}, ...]``
    (:func:`recommend_users` for one user)."""
    return recommend_users(run, [user], k, exclude_seen=exclude_seen, candidates=candidates)[0]


def recommend_users(
    run: Run,
    users: Sequence[str | int],
    k: int = 10,
    *,
    exclude_seen: bool = True,
    candidates: Sequence[str] | None = None,
    batch_size: int = 1024,
) -> list[list[dict]]:
    """Top-``k`` items for each known user of ``users``, in the order given:
    ``[[{"item", "score", "title"}, ...], ...]``.

    Each user is scored from everything the run knows they did (train, validation, test
    and any events added since: the history rows, with times for a model that reads
    them in order). Those items are left out unless ``exclude_seen`` is false;
    ``candidates`` restricts the answer to those item ids. Fewer than ``k`` items come
    back where fewer remain.
    """
    if k < 1:
        raise SemrecError(f"k must be at least 1, got {k}")
    idx = np.asarray([-1 if run.users.get(u) is None else run.users.get(u) for u in users], dtype=np.int64)
    if (idx < 0).any():
        missing = [str(u) for u, i in zip(users, idx) if i < 0]
        sample = ", ".join(run.users.ids[:5])
        raise SemrecError(f"unknown user{'s' * (len(missing) > 1)} '{', '.join(missing[:5])}' (this run knows "
                          f"{len(run.users)} users, e.g. {sample})")
    cand = None
    if candidates is not None:
        cand = run.items.indices([str(c) for c in candidates])
        if (cand < 0).any():
            missing = [str(c) for c, i in zip(candidates, cand) if i < 0][:5]
            raise SemrecError(f"unknown candidate item(s): {', '.join(missing)}")
    history_of = run.seen_times() if run.scorer.ordered else run.seen()
    out: list[list[dict]] = []
    for start in range(0, len(idx), batch_size):
        batch = idx[start : start + batch_size]
        history = history_of[batch]
        with torch.no_grad():
            scores = run.scorer.score(batch, history).float().cpu()  # (B, n_items)
            values, indices = topk(scores, k, seen=history if exclude_seen else None, candidates=cand)
        out += [format_items(run, values[b], indices[b]) for b in range(len(batch))]
    return out


def format_items(run: Run, values: torch.Tensor, indices: torch.Tensor) -> list[dict]:
    """``[{"item", "score", "title"}]`` for finite scores, in the order given."""
    keep = torch.isfinite(values)
    ids = run.items.to_external(indices[keep].tolist())
    return [
        {"item": i, "score": float(s), "title": run.titles.get(i)}
        for i, s in zip(ids, values[keep].tolist())
    ]


def user_history(run: Run, user: str | int, limit: int = 10) -> list[dict]:
    """The user's known items, highest rated (then most recent) first."""
    u = run.users.get(user)
    if u is None:
        return []
    rows = []
    for part in ("train", "valid", "test"):
        inter = getattr(run.split, part)
        mask = inter.users == u
        for j, item in enumerate(inter.items[mask]):
            rating = None if inter.ratings is None else float(inter.ratings[mask][j])
            ts = None if inter.timestamps is None else int(inter.timestamps[mask][j])
            rows.append((rating, ts, int(item)))
    rows.sort(key=lambda r: (-(r[0] or 0), -(r[1] or 0)))
    out = []
    for rating, _, item in rows[:limit]:
        ext = run.items.to_external([item])[0]
        out.append({"item": ext, "rating": rating, "title": run.titles.get(ext)})
    return out
