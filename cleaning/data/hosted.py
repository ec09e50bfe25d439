"""Hosted mode: many visitors on one server, each browser session with its own workspace.

* :func:`detect_mode` — ``CLEANING_MODE=hosted|local`` decides; otherwise Streamlit Community Cloud is
  recognised by where it runs apps (the repository is cloned to ``/mount/src/<repo>``; the container's
  ``HOSTNAME`` is ``streamlit`` and its user ``appuser``).
* :class:`SessionWorkspaces` — a scratch root on the server with one folder per session token:
  ``SCRATCH/<token>/data`` (the data set) and ``SCRATCH/<token>/data.cleaning`` (its store, caches,
  runs). Folders idle longer than ``idle_seconds`` are removed; the scratch root as a whole is capped at
  ``max_total_bytes`` and each session at ``max_session_bytes`` (:class:`QuotaError` when full).
* :func:`copy_workspace` — a data set with its state folder, e.g. a visitor's copy of the demo prepared
  once per server (:func:`cleaning.review.prepare.demo_template`).

Nothing here imports streamlit: the pages map a browser session to a token and call this module.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..errors import CleaningError

MODE_ENV = "CLEANING_MODE"
SCRATCH_ENV = "CLEANING_SCRATCH"
#: Where Streamlit Community Cloud clones the app's repository.
CLOUD_MOUNT = Path("/mount/src")
#: A visitor's workspace is removed after this long without a page view (2 hours).
IDLE_SECONDS = 2 * 3600
#: All hosted workspaces together (uploads, exports, runs): ``CLEANING_SCRATCH_MAX_MB`` overrides.
MAX_TOTAL_BYTES = 4 * 2**30
#: One visitor's workspace: ``CLEANING_SESSION_MAX_MB`` overrides.
MAX_SESSION_BYTES = 1 * 2**30
DATA_DIR = "data"
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_SEEN = ".last-seen"
T = TypeVar("T")


class QuotaError(CleaningError):
    """The server's scratch space (or a visitor's share of it) is full."""


class WorkspaceGone(CleaningError):
    """A session's workspace was removed (idle too long, or never existed)."""


def is_community_cloud(environ: Mapping[str, str] | None = None, app_dir: str | Path | None = None) -> bool:
    """True when the process looks like a Streamlit Community Cloud container.

    Signals (any one): the app's folder is below ``/mount/src``; ``HOSTNAME`` is ``streamlit``; the user is
    ``appuser`` with its home ``/home/appuser``. None of them is an official API, hence ``CLEANING_MODE``.
    """
    env = os.environ if environ is None else environ
    here = Path(app_dir) if app_dir is not None else Path(__file__).resolve().parent.parent
    if here == CLOUD_MOUNT or CLOUD_MOUNT in here.parents:
        return True
    if env.get("HOSTNAME", "") == "streamlit":
        return True
    return env.get("USER", "") == "appuser" and env.get("HOME", "") == "/home/appuser"


def detect_mode(environ: Mapping[str, str] | None = None, app_dir: str | Path | None = None) -> str:
    """``"hosted"`` or ``"local"``: ``CLEANING_MODE`` if set, else hosted on Community Cloud.

    Raises:
        CleaningError: ``CLEANING_MODE`` is set to something else.
    """
    env = os.environ if environ is None else environ
    forced = env.get(MODE_ENV, "").strip().lower()
    if forced in ("hosted", "local"):
        return forced
    if forced:
        raise CleaningError(f"{MODE_ENV}={forced!r} is not a mode", f"set {MODE_ENV} to 'hosted' or 'local'")
    return "hosted" if is_community_cloud(env, app_dir) else "local"


def default_scratch_root() -> Path:
    """``$CLEANING_SCRATCH`` or ``<tmp>/cleaning-hosted``."""
    env = os.environ.get(SCRATCH_ENV)
    return Path(env).expanduser() if env else Path(tempfile.gettempdir()) / "cleaning-hosted"


def _env_mb(name: str, default: int) -> int:
    try:
        return int(float(os.environ[name]) * 2**20)
    except (KeyError, ValueError):
        return default


def folder_bytes(path: Path) -> int:
    """Bytes of the regular files below ``path`` (symlinks not followed; vanished files ignored)."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


@dataclass
class Usage:
    """Disk used by one session and by all of them, and the caps."""

    session_bytes: int
    total_bytes: int
    max_session_bytes: int
    max_total_bytes: int


class SessionWorkspaces:
    """One workspace folder per browser session under a scratch root (thread-safe, process-wide)."""

    def __init__(self, scratch_root: str | Path | None = None, idle_seconds: float = IDLE_SECONDS,
                 max_total_bytes: int | None = None, max_session_bytes: int | None = None) -> None:
        self.root = Path(scratch_root) if scratch_root else default_scratch_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.idle_seconds = idle_seconds
        self.max_total_bytes = max_total_bytes or _env_mb("CLEANING_SCRATCH_MAX_MB", MAX_TOTAL_BYTES)
        self.max_session_bytes = max_session_bytes or _env_mb("CLEANING_SESSION_MAX_MB", MAX_SESSION_BYTES)
        self._lock = threading.Lock()
        self._last_sweep = 0.0

    # ---- tokens and folders ------------------------------------------------------------------------
    @staticmethod
    def new_token() -> str:
        """A fresh unguessable session token (32 hex digits)."""
        return secrets.token_hex(16)

    def folder(self, token: str) -> Path:
        """The session's folder. Raises :class:`WorkspaceGone` for a malformed token."""
        if not _TOKEN.match(token or ""):
            raise WorkspaceGone("this link does not name a workspace", "open the app's address without ?ws=")
        return self.root / token

    def exists(self, token: str) -> bool:
        try:
            return self.folder(token).is_dir()
        except WorkspaceGone:
            return False

    def create(self, token: str) -> Path:
        """Create (or keep) the session's folder; sweeps idle folders first."""
        self.sweep()
        f = self.folder(token)
        f.mkdir(parents=True, exist_ok=True)
        self.touch(token)
        return f

    def dataset_root(self, token: str) -> Path | None:
        """The session's current data-set ROOT (``SCRATCH/<token>/<hex>/data``), or None if it has none.

        Every new data set gets a fresh ``<hex>`` folder, so nothing cached for an earlier one (keyed by
        its ROOT) is ever mistaken for the new one."""
        if not self.exists(token):
            return None
        roots = sorted(self.folder(token).glob(f"*/{DATA_DIR}"), key=lambda p: p.stat().st_mtime)
        return roots[-1] if roots else None

    def install(self, token: str, build: Callable[[Path], T]) -> T:
        """Build a new data set for the session with ``build(root)`` (``root`` does not exist yet; build
        creates it) and make it the session's data set, dropping the previous one. If ``build`` raises,
        everything it wrote is removed and the previous data set stays."""
        home = self.create(token) / secrets.token_hex(4)
        home.mkdir()
        try:
            result = build(home / DATA_DIR)
            if not (home / DATA_DIR).is_dir():
                raise CleaningError("nothing was written")
        except BaseException:
            shutil.rmtree(home, ignore_errors=True)  # our own half-built folder
            raise
        for d in self.folder(token).iterdir():
            if d.is_dir() and d != home:
                shutil.rmtree(d, ignore_errors=True)  # the visitor's previous data set, replaced
        return result

    def clear_dataset(self, token: str) -> None:
        """Remove the session's data set and its state (before a new upload or demo replaces them)."""
        if not self.exists(token):
            return
        for d in self.folder(token).iterdir():
            if d.is_dir():
                shutil.rmtree(d, ignore_errors=True)  # the visitor's own scratch copy

    def touch(self, token: str, min_interval: float = 30.0) -> None:
        """Record that the session was seen now (at most one disk write per ``min_interval`` seconds)."""
        p = self.folder(token) / _SEEN
        try:
            if time.time() - p.stat().st_mtime < min_interval:
                return
        except OSError:
            pass
        try:
            p.touch()
        except OSError:
            pass  # the folder was just swept: the next page view recreates it

    def last_seen(self, token: str) -> float:
        f = self.folder(token)
        try:
            return (f / _SEEN).stat().st_mtime
        except OSError:
            try:
                return f.stat().st_mtime
            except OSError:
                return 0.0

    # ---- limits ------------------------------------------------------------------------------------
    def sweep(self, now: float | None = None, every: float = 60.0) -> list[Path]:
        """Remove session folders idle longer than ``idle_seconds`` (at most once per ``every`` seconds).

        Returns the removed folders.
        """
        now = time.time() if now is None else now
        with self._lock:
            if every and now - self._last_sweep < every:
                return []
            self._last_sweep = now
        removed = []
        for f in self.root.iterdir() if self.root.is_dir() else []:
            if f.is_dir() and _TOKEN.match(f.name) and now - self.last_seen(f.name) > self.idle_seconds:
                shutil.rmtree(f, ignore_errors=True)  # a visitor's scratch copy, idle past the stated time
                removed.append(f)
        return removed

    def usage(self, token: str | None = None) -> Usage:
        return Usage(folder_bytes(self.folder(token)) if token and self.exists(token) else 0,
                     folder_bytes(self.root), self.max_session_bytes, self.max_total_bytes)

    def check_space(self, token: str, incoming: int) -> None:
        """Raise :class:`QuotaError` if ``incoming`` more bytes would pass a cap."""
        u = self.usage(token)
        if u.session_bytes + incoming > self.max_session_bytes:
            raise QuotaError(f"this would use {mb(u.session_bytes + incoming)} of your workspace's "
                             f"{mb(self.max_session_bytes)}",
                             "upload a smaller data set, or run the app on your own machine for large ones")
        if u.total_bytes + incoming > self.max_total_bytes:
            raise QuotaError(f"the server's scratch space is full ({mb(u.total_bytes)} of "
                             f"{mb(self.max_total_bytes)} used by all visitors)",
                             f"try again later (idle workspaces are removed after "
                             f"{self.idle_seconds / 3600:g} h), or run the app on your own machine")


# ---- process memory --------------------------------------------------------------------------------------
_M_ARENA_MAX = -8  # glibc mallopt parameter
_last_trim = [0.0]


def _libc() -> object | None:
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def limit_malloc_arenas(n: int = 2) -> bool:
    """Cap glibc's malloc arenas for threads created from now on (like ``MALLOC_ARENA_MAX=n``).

    Streamlit runs every script run on a new thread; glibc gives threads their own arenas (up to 8 per
    core) and freed memory stays in them, so a long-lived server's RSS creeps up with every heavy run
    (training). Returns False where this is not glibc."""
    libc = _libc()
    try:
        return bool(libc and libc.mallopt(_M_ARENA_MAX, n))  # type: ignore[attr-defined]
    except AttributeError:
        return False


def trim_memory(min_interval: float = 10.0) -> bool:
    """Give memory freed by earlier script runs back to the system (glibc ``malloc_trim``), at most once
    per ``min_interval`` seconds. Returns True when it trimmed."""
    now = time.monotonic()
    if now - _last_trim[0] < min_interval:
        return False
    _last_trim[0] = now
    libc = _libc()
    try:
        return bool(libc and libc.malloc_trim(0))  # type: ignore[attr-defined]
    except AttributeError:
        return False


# ---- copying a prepared workspace -----------------------------------------------------------------
def copy_workspace(src_root: Path, dst_root: Path) -> Path:
    """Copy a data set and its state folder (``ROOT`` and ``ROOT.cleaning``) to ``dst_root``."""
    from .workspace import STATE_SUFFIX

    src_state = src_root.parent / (src_root.name + STATE_SUFFIX)
    dst_state = dst_root.parent / (dst_root.name + STATE_SUFFIX)
    tmp = dst_root.parent / (dst_root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src_root, tmp)
    if src_state.is_dir():
        shutil.rmtree(dst_state, ignore_errors=True)
        shutil.copytree(src_state, dst_state, ignore=shutil.ignore_patterns("*-wal", "*-shm", "runs"))
        _backup_sqlite(src_state / "store.sqlite", dst_state / "store.sqlite")
    os.rename(tmp, dst_root)
    return dst_root


def _backup_sqlite(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite file even while another connection has it open."""
    if not src.exists():
        return
    dst.unlink(missing_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
