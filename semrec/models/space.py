"""Search-space types (``semrec tune`` samples them), and the ranges many models share.

A leaf module: models declare their space beside their config without importing the
tuner (which lives above the pipeline and imports these types from here).

Each model declares its space next to its config (``SEARCH_SPACE`` in its module, listed
in the catalogue); keys name a field of that config (``model.*``) or of
:class:`~semrec.train.loop.TrainConfig` (``train.*``), exactly as ``--set`` writes them.
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

#: Embedding models: size, L2 weight, learning rate.
EMBEDDING = {
    "model.dim": Choice((32, 64, 128)),
    "model.reg": Float(1e-6, 1e-2, log=True),
    "train.lr": Float(1e-4, 3e-2, log=True),
}
#: Graph models add the number of propagation layers.
GRAPH = {**EMBEDDING, "model.layers": Int(1, 4)}

