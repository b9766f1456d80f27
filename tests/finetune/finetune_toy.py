"""Shared settings of the fine-tuning tests (imported by name: pytest puts this folder on
``sys.path``)."""

#: Small, fast settings every fine-tuning test starts from.
FAST = ["max_seq_length=32", "batch_size=16", "eval_every=5", "max_steps=10", "progress=false"]

#: The split the rating tests fine-tune on (and the graph rating run is trained on).
RATING_SPLIT = "random:0.7/0.15/0.15"
