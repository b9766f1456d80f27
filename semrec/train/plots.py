"""Learning curves as PNG (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def learning_curve(history: list[dict], path: Path, metric: str | None = None) -> Path | None:
    """Training loss per epoch and, where validated, the validation ``metric``."""
    if not history:
        return None
    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, [r["loss"] for r in history], color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    if metric:
        pts = [(r["epoch"], r[metric]) for r in history if metric in r]
        if pts:
            ax2 = ax.twinx()
            ax2.plot(*zip(*pts), color="tab:orange", marker="o", markersize=3, label=f"valid {metric}")
            ax2.set_ylabel(f"validation {metric}", color="tab:orange")
    ax.set_title("learning curve")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
