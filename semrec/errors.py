"""Errors a user can act on.

Every mistake in a user's input (a file, a flag, a config key) raises a
:class:`SemrecError`. The CLI prints its message and exits with status 2; it never
shows a traceback for one. Bugs in semrec itself stay ordinary exceptions.
"""
from __future__ import annotations

from pathlib import Path


class SemrecError(Exception):
    """Base class for mistakes in the user's input or environment."""


class ConfigError(SemrecError):
    """A config file, ``--set`` pair or CLI option is wrong."""


class DataError(SemrecError):
    """A data file is missing, malformed or inconsistent.

    The message names where the problem is: ``file``, 1-based ``row`` (as a text
    editor counts lines, header included), ``column``; then what was expected.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.row = row
        self.column = column
        self.reason = message
        where = []
        if self.file is not None:
            where.append(self.file)
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class RunError(SemrecError):
    """A run folder is missing, incomplete or from an incompatible version."""


class TrainingDiverged(SemrecError, FloatingPointError):
    """Training produced a non-finite loss or weights (too high a learning rate, a huge
    regularisation weight): the user's settings, so no traceback."""
