"""Search spaces per model for ``semrec tune``: a literal mapping model name -> space.

These sit beside the model catalogue (:data:`semrec.models.catalog.MODELS`): every name
there has an entry here, and every key names a field of that model's config dataclass
(``model.*``) or of :class:`~semrec.train.loop.TrainConfig` (``train.*``), exactly as
``--set`` writes it. A test checks both, so a renamed field cannot silently drop out.

Ranges are the ones the literature tunes over for each family (LightGCN/SimGCL/XSimGCL
papers; ItemKNN and GF-CF shrinkage and cut-offs), kept moderate so a small budget of
trials lands on sensible values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Float:
    """A real value in ``[low, high]``, sampled on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]``, sampled on a log scale when ``log``."""

    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Choice:
    """One of ``values``."""

    values: tuple[Any, ...]


Param = Float | Int | Choice

_EMB = {
    "model.dim": Choice((32, 64, 128)),
    "model.reg": Float(1e-6, 1e-2, log=True),
    "train.lr": Float(1e-4, 3e-2, log=True),
}
_GRAPH = {**_EMB, "model.layers": Int(1, 4)}

SPACES: dict[str, dict[str, Param]] = {
    "popularity": {},  # nothing to tune
    "itemknn": {"model.k": Int(10, 400, log=True), "model.shrink": Float(0.0, 100.0)},
    "graphfilter": {"model.alpha": Float(0.0, 1.0), "model.k": Int(32, 512, log=True)},
    "semantic": {},  # text only: its one knob (recency) depends on the data's time scale
    "mf": dict(_EMB),
    "lightgcn": dict(_GRAPH),
    "xsimgcl": {
        **_GRAPH,
        "model.eps": Float(0.05, 0.5),
        "model.temperature": Float(0.1, 0.5),
        "model.ssl_weight": Float(0.01, 1.0, log=True),
    },
    "semgraph": {
        **_GRAPH,
        "model.alpha": Float(0.5, 1.0),
        "model.temperature": Float(0.1, 0.5),
        "model.text_weight": Float(0.0, 1.0),
        "model.id_dropout": Float(0.0, 0.5),
        "model.knn_weight": Float(0.0, 0.5),
    },
}
