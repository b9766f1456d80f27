"""Answers from a run: known users, cold start (items, a sentence, profile fields, new
items) and similar items, in external ids. Used by :class:`semrec.Recommender`, the
CLI and the service alike; it reads a loaded :class:`~semrec.artifacts.run.Run` and
imports nothing above :mod:`semrec.artifacts`."""
