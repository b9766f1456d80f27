"""Model names -> classes, as a literal mapping (no registry, no import by name)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from semrec.config import to_dict
from semrec.errors import ConfigError
from semrec.models.base import FittedModel, TrainableModel
from semrec.models.itemknn import ItemKNN, ItemKNNConfig
from semrec.models.mf import MF, MFConfig
from semrec.models.popularity import Popularity, PopularityConfig


@dataclass(frozen=True)
class ModelSpec:
    cls: type
    config: type
    kind: Literal["fitted", "trainable"]
    summary: str


MODELS: dict[str, ModelSpec] = {
    "popularity": ModelSpec(Popularity, PopularityConfig, "fitted", "most-interacted items first"),
    "itemknn": ModelSpec(ItemKNN, ItemKNNConfig, "fitted", "item-item cosine neighbours"),
    "mf": ModelSpec(MF, MFConfig, "trainable", "matrix factorisation trained with BPR"),
}


def spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}'; available: {', '.join(MODELS)}")
    return MODELS[name]


def build(name: str, n_users: int, n_items: int, config: object) -> FittedModel | TrainableModel:
    """A fresh model of ``name`` for these sizes, from its hyper-parameter dataclass."""
    return spec(name).cls(n_users, n_items, **to_dict(config))
