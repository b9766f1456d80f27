"""Hyper-parameter search with Optuna (``semrec tune``)."""
