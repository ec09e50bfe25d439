"""Typed errors with a message and a hint; the CLI and the pages turn them into one line."""

from __future__ import annotations


class CleaningError(Exception):
    """An error the user can fix: ``message`` says what was wrong, ``hint`` how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class DatasetError(CleaningError):
    """The data-set folder is missing, unreadable or not folder-per-class."""


class LabelError(CleaningError):
    """A label that cannot be a class folder name (empty, hidden, a path)."""


class ItemNotFound(CleaningError):
    """A path or item id that the store does not know."""


class ExportError(CleaningError):
    """An export target that is unsafe (inside ROOT, not empty)."""
