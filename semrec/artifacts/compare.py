"""Run folders side by side: the rows ``semrec runs list`` and ``semrec runs plot`` show.

Reads only ``run.json`` and ``metrics.json`` (and ``config.toml`` for the epoch budget),
never the weights, so listing hundreds of runs is quick."""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from semrec.config import read_toml
from semrec.errors import RunError

#: Columns of the table, in order (metrics come from ``metrics.json``'s ``test``).
METRICS = ("recall@20", "ndcg@20")


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders (holding ``run.json``) at or under each path, sorted, staging and
    hidden folders left out. A path that does not exist raises :class:`RunError`."""
    found: set[Path] = set()
    for p in map(Path, paths):
        if not p.exists():
            raise RunError(f"{p} does not exist")
        if (p / "run.json").is_file():
            found.add(p)
            continue
        for marker in p.rglob("run.json"):
            folder = marker.parent
            rel = folder.relative_to(p).parts
            if any(part.startswith(".") for part in rel):
                continue  # .NAME.partial-*, .NAME.old-*: unfinished or replaced runs
            found.add(folder)
    return sorted(found)


def run_row(folder: Path) -> dict[str, Any]:
    """One run's summary: ``run``, ``model``, ``dataset``, ``split``, ``task``, the test
    metrics (all of them, under their keys), ``fit_s``, ``eval_s``, ``epochs`` (run),
    ``best_epoch``, ``max_epochs`` and ``created``."""
    folder = Path(folder)
    try:
        info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RunError(f"{folder}/run.json cannot be read: {e}") from None
    metrics: dict[str, Any] = {}
    mpath = folder / "metrics.json"
    if mpath.is_file():
        try:
            metrics = json.loads(mpath.read_text(encoding="utf-8"))
        except ValueError as e:
            raise RunError(f"{mpath} is not valid JSON: {e}") from None
    max_epochs = None
    if info.get("kind") == "trainable" and (folder / "config.toml").is_file():
        max_epochs = read_toml(folder / "config.toml").get("train", {}).get("epochs")
    dataset = info.get("dataset") or {}
    return {
        "run": str(folder),
        "model": info.get("model"),
        "dataset": dataset.get("name") if isinstance(dataset, dict) else dataset,
        "split": info.get("split"),
        "task": info.get("task"),
        **{k: v for k, v in (metrics.get("test") or {}).items()},
        "fit_s": metrics.get("fit_s"),
        "eval_s": metrics.get("eval_s"),
        "epochs": metrics.get("epochs_run"),
        "best_epoch": metrics.get("best_epoch"),
        "max_epochs": max_epochs,
        "created": info.get("created"),
    }


def table(rows: list[dict[str, Any]], metrics: Iterable[str] = METRICS) -> str:
    """A plain-text table, one line per run, the best value of each metric starred."""
    metrics = list(metrics)
    best = {}
    for m in metrics:
        values = [r[m] for r in rows if isinstance(r.get(m), (int, float))]
        if values:
            best[m] = min(values) if m in ("rmse", "mae") else max(values)
    header = ["run", "model", "dataset", "split", *metrics, "fit s", "epochs"]
    lines = []
    for r in rows:
        cells = [r["run"], r["model"] or "-", r["dataset"] or "-", r["split"] or "-"]
        for m in metrics:
            v = r.get(m)
            cells.append("-" if not isinstance(v, (int, float)) else f"{v:.4f}" + ("*" if v == best.get(m) else " "))
        cells.append("-" if r.get("fit_s") is None else f"{r['fit_s']:.1f}")
        if r.get("epochs") is None:
            cells.append("-")
        else:
            cells.append(f"{r['epochs']}" + (f" (best {r['best_epoch']})" if r.get("best_epoch") else ""))
        lines.append(cells)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    numeric = set(range(4, len(header)))
    def fmt(cells):
        return "  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(c) for c in lines])
