"""The fine-tuned text model and a graph run's rating head, blended.

The two predictors see different evidence (what the pair's texts say; who rated what),
so their errors are only partly correlated and a weighted sum beats either. The blend is
a linear stack fitted on the validation pairs, never on test::

    r̂ = clip(b + w_text · r̂_text + w_graph · r̂_graph, scale)

with ``(b, w_text, w_graph)`` the least-squares solution over the validation pairs. Three
numbers fitted on thousands of pairs do not over-fit; both inputs are themselves
early-stopped on the same validation part, which makes the blend slightly optimistic on
validation, so only the test figure is reported as the result.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semrec.data.split import Split
from semrec.errors import ConfigError
from semrec.evaluate.metrics import mae, rmse
from semrec.finetune.data import Pairs


def graph_ratings(run_dir: str | Path, split: Split, *parts: Pairs) -> list[np.ndarray]:
    """The graph run's predicted ratings for each of ``parts`` (pairs in ``split``'s index
    space), one ``(len(part),)`` array each.

    Raises:
        ConfigError: the run has no rating head (train it with ``--set task=rating``), or
            it does not know a user or item of the pairs (a different dataset or split).
    """
    import torch

    from semrec.artifacts.run import load_run

    run = load_run(run_dir)
    if run.train_config.task != "rating" or not hasattr(run.model, "predict_ratings"):
        raise ConfigError(
            f"--graph {run_dir}: a {run.model_name} run trained for {run.train_config.task}; the ensemble "
            "needs a rating head (semrec train --model semgraph --set task=rating ...)"
        )
    users = run.users.indices(split.users.ids)  # finetune user index -> run user index (-1: unknown)
    items = run.items.indices(split.items.ids)
    graph = run.graph()
    out = []
    run.model.eval()
    with torch.no_grad():
        for part in parts:
            u, i = users[part.users], items[part.items]
            if (u < 0).any() or (i < 0).any():
                raise ConfigError(
                    f"--graph {run_dir}: the run does not know {int((u < 0).sum())} users and "
                    f"{int((i < 0).sum())} items of the evaluation pairs; train it on the same dataset "
                    f"and split ({split.spec})"
                )
            out.append(np.asarray(run.model.predict_ratings(u, i, graph), dtype=np.float64))
    return out


def fit_blend(preds: list[np.ndarray], target: np.ndarray) -> np.ndarray:
    """Least-squares ``[b, w_1, ..., w_m]`` of ``target ≈ b + Σ_k w_k · preds[k]``."""
    x = np.column_stack([np.ones(len(target))] + [np.asarray(p, dtype=np.float64) for p in preds])
    coef, *_ = np.linalg.lstsq(x, np.asarray(target, dtype=np.float64), rcond=None)
    return coef


def apply_blend(coef: np.ndarray, preds: list[np.ndarray], scale: tuple[float, float]) -> np.ndarray:
    """``clip(b + Σ_k w_k · preds[k], scale)`` ``(N,)``."""
    out = coef[0] + sum(w * np.asarray(p, dtype=np.float64) for w, p in zip(coef[1:], preds))
    return np.clip(out, scale[0], scale[1])


def blend_report(
    text: tuple[np.ndarray, np.ndarray],
    graph: tuple[np.ndarray, np.ndarray],
    valid: Pairs,
    test: Pairs,
    scale: tuple[float, float],
) -> dict[str, Any]:
    """Fit the blend of ``text`` and ``graph`` predictions (each ``(valid, test)``) on
    ``valid`` and report it: the weights, and RMSE/MAE of the graph alone and of the
    blend on both parts."""
    # clipped like the text model's: then the blend contains each model alone as a special
    # case, and least squares on validation can only match or beat both there
    graph = (np.clip(graph[0], *scale), np.clip(graph[1], *scale))
    coef = fit_blend([text[0], graph[0]], valid.ratings)

    def metrics(pred: np.ndarray, pairs: Pairs) -> dict[str, float]:
        return {"rmse": rmse(pred, pairs.ratings), "mae": mae(pred, pairs.ratings), "n": len(pairs)}

    return {
        "weights": {"bias": float(coef[0]), "text": float(coef[1]), "graph": float(coef[2])},
        "graph": {"valid": metrics(graph[0], valid), "test": metrics(graph[1], test)},
        "valid": metrics(apply_blend(coef, [text[0], graph[0]], scale), valid),
        "test": metrics(apply_blend(coef, [text[1], graph[1]], scale), test),
    }
