"""What things mean: item and user texts -> unit vectors from a local language model.

* :mod:`semrec.text.build` — texts from a dataset's tables and templates
  (:func:`item_texts`, :func:`user_texts`);
* :mod:`semrec.text.encoder` — :class:`TextEncoder` (packaged all-MiniLM-L6-v2 by
  default, any local sentence-transformers or Hugging Face folder; never a download);
* :mod:`semrec.text.cache` — :func:`encode_texts`, which encodes only what the on-disk
  :class:`EmbeddingCache` (keyed by model fingerprint and text) lacks.

Typical use::

    enc = TextEncoder()                                   # packaged MiniLM
    texts = item_texts(dataset, split.items.ids)          # one per internal item index
    item_emb, report = encode_texts(enc, texts)           # (n_items, 384), cached on disk
"""
from semrec.text.build import item_texts, user_texts
from semrec.text.cache import EmbeddingCache, EncodeReport, default_cache_root, encode_texts
from semrec.text.encoder import EncoderError, TextEncoder

__all__ = [
    "EmbeddingCache",
    "EncodeReport",
    "EncoderError",
    "TextEncoder",
    "default_cache_root",
    "encode_texts",
    "item_texts",
    "user_texts",
]
