"""Text vectors for a split's items and users: build texts, encode through the cache,
and the semantic item–item graph. The one place the pipeline and the CLI get them."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec.config import TextConfig
from semrec.data.dataset import Dataset
from semrec.data.idmap import IdMap
from semrec.graph.semantic import semantic_knn
from semrec.text.build import item_texts, user_texts
from semrec.text.cache import encode_texts
from semrec.text.encoder import TextEncoder


@dataclass
class TextFeatures:
    """Frozen language-model vectors in internal index order."""

    items: np.ndarray  # (n_items, t) float32, zero rows for items without text
    users: np.ndarray | None  # (n_users, t) or None without user text
    encoder: dict[str, Any]  # name, fingerprint, dim, max_seq_length
    report: dict[str, Any] = field(default_factory=dict)  # encoded, cached, texts_per_s
    knn: sp.csr_matrix | None = None  # (n_items, n_items) cosine of top-k neighbours


@functools.lru_cache(maxsize=4)
def load_encoder(config: TextConfig, progress: bool = True) -> TextEncoder:
    """The encoder ``config`` names, loaded once per process (loading takes seconds;
    a query is milliseconds). ``load_encoder.cache_clear()`` forgets loaded models."""
    return TextEncoder(
        config.encoder,
        batch_size=config.encode_batch_size,
        max_seq_length=config.max_seq_length,
        progress=progress,
    )


def encoder_info(encoder: TextEncoder) -> dict[str, Any]:
    return {
        "name": encoder.name,
        "fingerprint": encoder.fingerprint,
        "dim": encoder.dim,
        "max_seq_length": encoder.max_seq_length,
        "default": encoder.is_default,
        "path": str(encoder.path),
    }


def text_features(
    dataset: Dataset,
    items: IdMap,
    users: IdMap | None,
    config: TextConfig,
    *,
    progress: bool = True,
    encoder: TextEncoder | None = None,
) -> TextFeatures:
    """Encode every item (and user, where the dataset has user text) of the id maps."""
    encoder = encoder or load_encoder(config, progress)
    item_vecs, item_report = encode_texts(encoder, item_texts(dataset, items.ids), cache=config.cache)
    report = item_report.to_dict()
    user_vecs = None
    if users is not None:
        texts = user_texts(dataset, users.ids)
        if texts is not None and any(t.strip() for t in texts):
            user_vecs, user_report = encode_texts(encoder, texts, cache=config.cache)
            for key in ("encoded", "cached"):
                report[key] += user_report.to_dict()[key]
    knn = semantic_knn(item_vecs, config.knn) if config.knn > 0 and len(items) > 1 else None
    return TextFeatures(item_vecs, user_vecs, encoder_info(encoder), report, knn)
