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


class EnvironmentProblem(CleaningError):
    """The machine, not the input: a read-only or full disk, a corrupt store file, a name too long."""


_ERRNO_HINTS = {
    "EROFS": ("is on a read-only file system", "make it writable or pass --state-dir to a writable folder"),
    "EACCES": ("is not writable (permission denied)", "make it writable or pass --state-dir to a writable folder"),
    "EPERM": ("is not writable (operation not permitted)", "make it writable or pass --state-dir to a writable folder"),
    "ENOSPC": ("cannot be written: the disk is full", "free some disk space, then run the command again"),
    "EDQUOT": ("cannot be written: disk quota exceeded", "free some disk space, then run the command again"),
    "ENAMETOOLONG": ("has a name too long for the file system", "use a shorter label or folder name"),
    "EIO": ("cannot be read or written (input/output error)", "check the disk"),
}


def environment_error(e: BaseException) -> CleaningError | None:
    """The one-line error for an environmental failure (an ``OSError`` of a known kind or an SQLite
    error), or None when ``e`` is something else (a bug: let it stay loud)."""
    import errno
    import sqlite3

    if isinstance(e, sqlite3.Error):
        return store_error(e, None)
    if isinstance(e, OSError) and e.errno is not None:
        name = errno.errorcode.get(e.errno, "")
        if name in _ERRNO_HINTS:
            what, hint = _ERRNO_HINTS[name]
            where = e.filename if e.filename is not None else "a file"
            return EnvironmentProblem(f"{str(where)!r} {what}", hint)
    return None


def store_error(e: BaseException, path: object | None) -> CleaningError:
    """A :class:`CleaningError` for a failure of the store file ``path`` (SQLite or OS error)."""
    where = f"the store {str(path)!r}" if path is not None else "the store"
    msg = str(e).lower()
    if isinstance(e, OSError) and not hasattr(e, "sqlite_errorcode"):
        env = environment_error(e)
        return env if env is not None else EnvironmentProblem(f"{where} cannot be opened: {e}")
    if "malformed" in msg or "not a database" in msg or "file is encrypted" in msg:
        return EnvironmentProblem(f"{where} is corrupt ({e})",
                                  "move it aside (your images are untouched) and reopen to rebuild it, "
                                  "or restore it from a backup")
    if "readonly" in msg or "read-only" in msg:
        return EnvironmentProblem(f"{where} is read-only ({e})",
                                  "make the state folder writable or pass --state-dir to a writable folder")
    if "full" in msg:
        return EnvironmentProblem(f"{where} cannot be written: the disk is full",
                                  "free some disk space, then run the command again")
    if "unable to open" in msg or "disk i/o" in msg:
        return EnvironmentProblem(f"{where} cannot be opened ({e})",
                                  "check that the state folder exists and is writable")
    if "locked" in msg or "busy" in msg:
        return EnvironmentProblem(f"{where} is busy ({e})", "another process holds it too long; try again")
    return EnvironmentProblem(f"{where} failed: {e}")
