"""TensorBoard logs in a run folder: scalars per epoch, hyper-parameters, final metrics.

    tracker = TensorBoardTracker(folder / "tensorboard", enabled=config.train.tensorboard)
    tracker.log_epoch(epoch, record)            # every numeric entry of the epoch's record
    tracker.log_hparams(config_dict, metrics)   # once, at the end
    tracker.close()

Disabled (or without the ``tensorboard`` package, with a note) every call does nothing,
so the loop never branches on it. View with ``tensorboard --logdir RUN_DIR``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}/"))
        else:
            out[name] = value
    return out


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class TensorBoardTracker:
    """Writes TensorBoard event files under ``folder``.

    Args:
        folder: where the event files go (created on first write), e.g. ``RUN_DIR/tensorboard``.
        enabled: false makes every method a no-op (``--set tensorboard=false``).
        on_note: called once with a message when TensorBoard is wanted but not installed.
    """

    def __init__(self, folder: str | Path, enabled: bool = True,
                 on_note: Callable[[str], None] = lambda s: None) -> None:
        self.folder = Path(folder)
        self._writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch raises ImportError naming tensorboard when it is absent
            on_note("tensorboard is not installed: no TensorBoard logs (pip install 'semrec[track]')")
            return
        self._writer = SummaryWriter(log_dir=str(self.folder))

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def log_epoch(self, epoch: int, record: Mapping[str, Any]) -> None:
        """Every finite number in ``record`` as a scalar at step ``epoch``: ``loss`` and the
        other loss terms under ``train/``, metrics (``ndcg@20``, ``rmse``) under ``valid/``,
        timings under ``time/``."""
        if self._writer is None:
            return
        for key, value in _flatten(record).items():
            v = _scalar(value)
            if key == "epoch" or v is None:
                continue
            if key.endswith("_s"):
                tag = f"time/{key}"
            elif "@" in key or key in ("rmse", "mae"):
                tag = f"valid/{key}"
            else:
                tag = f"train/{key}"
            self._writer.add_scalar(tag, v, global_step=int(epoch))
        self._writer.flush()

    def log_hparams(self, config: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        """The run's hyper-parameters (nested sections flattened to ``model/dim``) beside its
        final metrics (``test/ndcg@20``, ...), for TensorBoard's HPARAMS tab."""
        if self._writer is None:
            return
        hparams: dict[str, Any] = {}
        for key, value in _flatten(config).items():
            if isinstance(value, (bool, int, float, str)):
                hparams[key] = value
            elif value is None:
                hparams[key] = "none"
            elif isinstance(value, (list, tuple)):
                hparams[key] = ",".join(map(str, value))
        final = {f"final/{k}": v for k, v in _flatten(metrics).items() if _scalar(v) is not None}
        if not final:
            final = {"final/none": 0.0}
        self._writer.add_hparams(hparams, {k: float(v) for k, v in final.items()}, run_name=".")
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TensorBoardTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
