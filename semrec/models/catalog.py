"""Model names -> classes, as a literal mapping (no registry, no import by name)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from semrec.config import to_dict
from semrec.errors import ConfigError
from semrec.models import graphfilter, itemknn, lightgcn, mf, popularity, semantic, semgraph, xsimgcl
from semrec.models.base import FittedModel, TrainableModel
from semrec.models.graphfilter import GraphFilter, GraphFilterConfig, TextGraphFilter, TextGraphFilterConfig
from semrec.models.itemknn import ItemKNN, ItemKNNConfig
from semrec.models.lightgcn import LightGCN, LightGCNConfig
from semrec.models.mf import MF, MFConfig
from semrec.models.popularity import Popularity, PopularityConfig
from semrec.models.semantic import SemanticConfig, SemanticModel
from semrec.models.semgraph import SemGraph, SemGraphConfig
from semrec.models.xsimgcl import XSimGCL, XSimGCLConfig


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model.

    ``inputs`` names constructor tensors beyond the sizes and hyper-parameters (text
    vectors, the rating mean): the pipeline supplies them at training time and the
    model's state carries them, so a run rebuilds the model from its own files.
    ``text`` says the model reads item (and user) text.
    """

    cls: type
    config: type
    kind: Literal["fitted", "trainable"]
    summary: str
    inputs: tuple[str, ...] = ()
    text: bool = False
    space: Mapping[str, Any] = field(default_factory=dict)  # semrec tune's search space
    #: fixes data-dependent settings: (config, split is sequential) -> config
    resolve: Callable[[Any, bool], Any] | None = None


MODELS: dict[str, ModelSpec] = {
    "popularity": ModelSpec(Popularity, PopularityConfig, "fitted", "most-interacted items first",
                            space=popularity.SEARCH_SPACE),
    "itemknn": ModelSpec(ItemKNN, ItemKNNConfig, "fitted", "item-item cosine neighbours",
                         space=itemknn.SEARCH_SPACE),
    "graphfilter": ModelSpec(GraphFilter, GraphFilterConfig, "fitted",
                             "training-free graph filter of the item-item graph (ChebyCF, GF-CF or BSPM "
                             "response, exact on the top eigenvectors)",
                             space=graphfilter.SEARCH_SPACE),
    "graphfilter-text": ModelSpec(TextGraphFilter, TextGraphFilterConfig, "fitted",
                                  "graphfilter whose item-item graph mixes in the items' text neighbours "
                                  "(cold items and sparse catalogues)",
                                  inputs=("item_emb",), text=True, space=graphfilter.TEXT_SEARCH_SPACE),
    "semantic": ModelSpec(SemanticModel, SemanticConfig, "fitted",
                          "text only: users' item-text profiles by cosine", inputs=("item_emb",), text=True,
                          space=semantic.SEARCH_SPACE),
    "mf": ModelSpec(MF, MFConfig, "trainable", "matrix factorisation trained with BPR", space=mf.SEARCH_SPACE),
    "lightgcn": ModelSpec(LightGCN, LightGCNConfig, "trainable", "LightGCN propagation, BPR",
                          space=lightgcn.SEARCH_SPACE),
    "xsimgcl": ModelSpec(XSimGCL, XSimGCLConfig, "trainable", "LightGCN with noise-perturbed contrastive views",
                         space=xsimgcl.SEARCH_SPACE),
    "semgraph": ModelSpec(SemGraph, SemGraphConfig, "trainable",
                          "text-first items refined by a graph, users encoded from their history "
                          "(mean, attention or transformer tower), softmax training",
                          inputs=("item_text", "user_text", "rating_mean"), text=True,
                          space=semgraph.SEARCH_SPACE, resolve=semgraph.resolve_history),
}


def spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}'; available: {', '.join(MODELS)}")
    return MODELS[name]


def build(
    name: str, n_users: int, n_items: int, config: object, inputs: dict | None = None
) -> FittedModel | TrainableModel:
    """A fresh model of ``name`` for these sizes, from its hyper-parameter dataclass and
    the ``inputs`` tensors its spec names (missing optional ones are left out)."""
    s = spec(name)
    given = {k: v for k, v in (inputs or {}).items() if k in s.inputs and v is not None}
    return s.cls(n_users, n_items, **given, **to_dict(config))
