"""Metric plots as PNG (matplotlib, no display): metric-at-K curves of one run and
quality versus training time across runs."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def at_k(metrics: Mapping[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """``{"recall": [(10, 0.2), (20, 0.3)], ...}`` from keys like ``recall@10``, K ascending."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for key, value in metrics.items():
        name, at, k = key.partition("@")
        if not at or not k.isdigit() or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        curves.setdefault(name, []).append((int(k), float(value)))
    return {name: sorted(pts) for name, pts in sorted(curves.items())}


def metric_at_k_curve(metrics: Mapping[str, Any], path: str | Path, names: Sequence[str] = ("recall", "ndcg"),
                      title: str = "metrics at K") -> Path | None:
    """Recall and NDCG (or ``names``) against K from a flat metrics dict such as
    ``metrics.json``'s ``test`` section; ``None`` (no file) when no such keys exist."""
    curves = {n: pts for n, pts in at_k(metrics).items() if n in names}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in curves.items():
        ks, vs = zip(*pts)
        ax.plot(ks, vs, marker="o", label=name)
    ks = sorted({k for pts in curves.values() for k, _ in pts})
    ax.set_xticks(ks)
    ax.set_xlabel("K")
    ax.set_ylabel("value")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def quality_vs_time(rows: Sequence[Mapping[str, Any]], path: str | Path, metric: str = "ndcg@20",
                    title: str | None = None) -> Path:
    """One point per run: training seconds (log scale) against ``metric``, labelled by
    ``label`` (or ``model``). ``rows`` need ``fit_s`` and ``metric``; rows missing either
    are left out, and a chart without any point says so."""
    pts = [(float(r["fit_s"]), float(r[metric]), str(r.get("label") or r.get("model") or "?"))
           for r in rows if _finite(r.get("fit_s")) and _finite(r.get(metric))]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if pts:
        models = sorted({r.get("model") or "?" for r in rows})
        colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(models)}
        for r in rows:
            if not (_finite(r.get("fit_s")) and _finite(r.get(metric))):
                continue
            x, y = max(float(r["fit_s"]), 1e-3), float(r[metric])
            ax.scatter([x], [y], color=colours[r.get("model") or "?"], s=40, zorder=3)
            ax.annotate(str(r.get("label") or r.get("model")), (x, y), textcoords="offset points",
                        xytext=(5, 4), fontsize=8)
        ax.set_xscale("log")
    else:
        ax.text(0.5, 0.5, f"no run has both fit_s and {metric}", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("training time (s, log scale)")
    ax.set_ylabel(f"test {metric}")
    ax.set_title(title or f"quality versus time ({len(pts)} runs)")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
