"""semrec: recommendations from what things mean and who did what.

In Python, :class:`semrec.Recommender` (``fit``, ``recommend``, ``recommend_for_history``,
``similar_items``, ``partial_fit``, ``evaluate``, ``save``/``load``); on the command line,
``semrec --help``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from semrec.version import __version__

__all__ = ["Recommender", "load_dataset", "__version__"]

if TYPE_CHECKING:
    from semrec.api import Recommender
    from semrec.data.load import load_dataset


def __getattr__(name: str) -> Any:
    # on first use: `import semrec` (and the CLI's start) stays free of torch
    if name == "Recommender":
        from semrec.api import Recommender

        return Recommender
    if name == "load_dataset":
        from semrec.data.load import load_dataset

        return load_dataset
    raise AttributeError(f"module 'semrec' has no attribute {name!r}")
