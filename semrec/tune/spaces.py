"""The search space of every model in the catalogue, by name (see :mod:`semrec.models.space`)."""
from __future__ import annotations

from semrec.models.catalog import MODELS
from semrec.models.space import Choice, Float, Int, Param

__all__ = ["SPACES", "Choice", "Float", "Int", "Param"]

SPACES: dict[str, dict[str, Param]] = {name: dict(spec.space) for name, spec in MODELS.items()}
