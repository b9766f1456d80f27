"""Fine-tune the language model itself on the recommendation signal.

Two objectives, one loop (:mod:`semrec.finetune.trainer`):

* ``rating`` (:mod:`semrec.finetune.rating`): a bi-encoder reads the user's profile text
  and the item's text; a small MLP head over the two vectors predicts the rating (MSE).
  Early stopping on validation RMSE; RMSE/MAE on the test part at the end.
* ``align`` (:mod:`semrec.finetune.align`): InfoNCE between the item text embeddings
  (through a small linear projection) and a trained graph run's item embeddings, so the
  encoder's own space moves towards what the graph learned and text-only scoring of
  cold items improves.

By default only LoRA adapters (``peft``) are trained; ``full = true`` trains every weight.
The result is a plain sentence-transformers folder (adapters merged into the weights)
that every ``[text] encoder`` setting accepts; its fingerprint differs from the base's,
so the embedding cache never mixes the two.
"""
from semrec.finetune.trainer import FinetuneConfig, finetune

__all__ = ["FinetuneConfig", "finetune"]
