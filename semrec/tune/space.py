"""The search-space types, for ``semrec tune`` and code written against this name.

They are declared in the leaf module :mod:`semrec.models.space` (models import them from
there, never from the tuner); this module names them for the tuner's side.
"""
from semrec.models.space import EMBEDDING, GRAPH, Choice, Float, Int, Param

__all__ = ["EMBEDDING", "GRAPH", "Choice", "Float", "Int", "Param"]
