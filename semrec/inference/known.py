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
    """Top-``k`` items for a known ``user``: ``[{"item", "score", "title"}, ...]``.

    Items the user already interacted with (anywhere in the run) are left out unless
    ``exclude_seen`` is false; ``candidates`` restricts the answer to those item ids.
    """
    if k < 1:
        raise SemrecError(f"k must be at least 1, got {k}")
    u = run.users.get(user)
    if u is None:
        sample = ", ".join(run.users.ids[:5])
        raise SemrecError(f"unknown user '{user}' (this run knows {len(run.users)} users, e.g. {sample})")
    users = np.asarray([u], dtype=np.int64)
    history = run.seen()[users]
    cand = None
    if candidates is not None:
        idx = run.items.indices(candidates)
        if (idx < 0).any():
            missing = [c for c, i in zip(candidates, idx) if i < 0][:5]
            raise SemrecError(f"unknown candidate item(s): {', '.join(map(str, missing))}")
        cand = idx
    with torch.no_grad():
        scores = run.scorer.score(users, history).float().cpu()  # (1, n_items)
        values, indices = topk(scores, k, seen=history if exclude_seen else None, candidates=cand)
    return format_items(run, values[0], indices[0])


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
