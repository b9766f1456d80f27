"""Evaluation: metric formulas (:mod:`.metrics`) and the evaluators (:mod:`.ranking`)."""
from semrec.evaluate.metrics import (
    hit_rate_at_k,
    item_coverage,
    mae,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    rmse,
)
from semrec.evaluate.ranking import default_batch_size, evaluate_ranking, evaluate_rating

__all__ = [
    "default_batch_size",
    "evaluate_ranking",
    "evaluate_rating",
    "hit_rate_at_k",
    "item_coverage",
    "mae",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "rmse",
]
