"""The workspace lock: which processes may touch a data set's files at the same time.

One OS file lock (``fcntl.flock``) on ``STATE/workspace.lock``, released by the kernel when its
process dies (kill -9 included), so a lock is never left stale. Writers go first: a process waiting for
the exclusive lock holds ``workspace.lock.intent``, which new shared holders must pass. Two modes:

* **exclusive** — :func:`cleaning.files.apply_decisions` (moves files) and :func:`cleaning.files.recover`
  (settles what a dead process left half done). Nothing else that reads or reconciles files runs meanwhile.
* **shared** — ``Workspace.refresh`` (the folder rescan), ``export_dataset`` and the analysis of a scan:
  they read files and may run together, never during an apply.

Recording decisions (relabel, delete, undo, ...) takes no file lock: each is one SQLite transaction.

Who holds the lock is written into the lock file itself, one JSON line per holder (pid, operation,
mode, command, since), so a process that has to wait can say whom it waits for, and
:class:`WorkspaceBusy` names them. Lines of dead processes are ignored. The lock is re-entrant per
thread for one :class:`WorkspaceLock` object (an apply that rescans does not deadlock on itself).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import CleaningError

LOCK_NAME = "workspace.lock"
#: How long a library call waits for the lock by default before it refuses (seconds).
DEFAULT_WAIT = 30.0


class WorkspaceBusy(CleaningError):
    """Another process holds the workspace lock; the message names it."""


@dataclass(frozen=True)
class Holder:
    """One process (thread) holding the lock."""

    pid: int
    mode: str  # "exclusive" | "shared"
    operation: str
    command: str
    since: str
    token: str = ""

    def describe(self) -> str:
        return f"{self.operation} (pid {self.pid}, `{self.command}`, since {self.since})"


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (signal 0 probe)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command() -> str:
    cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)) or "python"
    return cmd[:160]


@dataclass
class _Held:
    fd: int
    exclusive: bool
    depth: int
    token: str


class WorkspaceLock:
    """The lock of one state folder. Use :meth:`hold` as a context manager."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self._meta = Path(state_dir) / (LOCK_NAME + ".meta")
        self._intent = Path(state_dir) / (LOCK_NAME + ".intent")
        self._local = threading.local()

    # ---- who holds it ------------------------------------------------------------------------
    def holders(self) -> list[Holder]:
        """The live holders written into the lock file (dead processes' lines are left out)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            try:
                d = json.loads(line)
                h = Holder(int(d["pid"]), str(d["mode"]), str(d["operation"]), str(d["command"]),
                           str(d["since"]), str(d.get("token", "")))
            except (ValueError, KeyError, TypeError):
                continue
            if pid_alive(h.pid):
                out.append(h)
        return out

    def describe_holders(self) -> str:
        hs = self.holders()
        return "; ".join(h.describe() for h in hs) if hs else "another process (details not written yet)"

    @contextmanager
    def _meta_lock(self) -> Iterator[None]:
        fd = os.open(self._meta, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write_info(self, fd: int, add: Holder | None, drop: str | None) -> None:
        """Rewrite the holder lines in the lock file: keep live ones, drop ``drop``, append ``add``."""
        try:
            with self._meta_lock():
                os.lseek(fd, 0, os.SEEK_SET)
                old = b""
                while chunk := os.read(fd, 65536):
                    old += chunk
                keep = []
                for line in old.decode("utf-8", "replace").splitlines():
                    try:
                        d = json.loads(line)
                    except ValueError:
                        continue
                    if d.get("token") == drop or not pid_alive(int(d.get("pid", 0))):
                        continue
                    keep.append(line)
                if add is not None:
                    keep.append(json.dumps(add.__dict__, ensure_ascii=False))
                data = ("\n".join(keep) + "\n" if keep else "").encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
        except OSError:
            pass  # holder info is a courtesy; the flock itself is what protects

    # ---- taking it ---------------------------------------------------------------------------
    @contextmanager
    def hold(self, operation: str, *, exclusive: bool = True, wait: float | None = DEFAULT_WAIT,
             on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the lock for ``operation`` (e.g. ``"apply"``).

        Args:
            exclusive: True for moving files, False for reading / reconciling them.
            wait: seconds to wait for a busy lock (None: forever, 0: refuse at once).
            on_wait: called once with a message naming the holder(s) when the call has to wait.
        Raises:
            WorkspaceBusy: still held by another process after ``wait`` seconds.
            CleaningError: the lock file cannot be created (read-only state folder) for an exclusive hold.
        """
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None:
            if exclusive and not held.exclusive:
                raise RuntimeError(f"{operation}: cannot take the workspace lock exclusively while holding it shared")
            held.depth += 1
            try:
                yield
            finally:
                held.depth -= 1
            return
        fd = self._open(exclusive)
        if fd is None:  # read-only state folder without a lock file: nobody can write, nothing to guard
            yield
            return
        try:
            self._acquire(fd, operation, exclusive, wait, on_wait)
        except BaseException:
            os.close(fd)
            raise
        token = f"{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:6]}"
        from .store import now_iso

        self._write_info(fd, Holder(os.getpid(), "exclusive" if exclusive else "shared", operation,
                                    _command(), now_iso(), token), None)
        self._local.held = _Held(fd, exclusive, 1, token)
        try:
            yield
        finally:
            self._local.held = None
            self._write_info(fd, None, token)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _open(self, exclusive: bool) -> int | None:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
                raise
            try:
                return os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                if exclusive:
                    raise CleaningError(f"the state folder {str(self.path.parent)!r} is read-only",
                                        "make it writable or pass --state-dir to a writable folder") from e
                return None

    def _acquire(self, fd: int, operation: str, exclusive: bool, wait: float | None,
                 on_wait: Callable[[str], None] | None) -> None:
        """Take the lock on ``fd``, writers first: an exclusive waiter holds the intent lock while it
        waits, and a new shared holder passes through the intent lock, so a stream of overlapping
        rescans and exports cannot starve an apply."""
        deadline = None if wait is None else time.monotonic() + wait
        told = [False]
        try:
            intent = os.open(self._intent, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            intent = None  # read-only state folder: no writer can be waiting
        try:
            if intent is not None:
                self._wait(intent, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, operation, deadline, on_wait, told)
            self._wait(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, operation, deadline, on_wait, told)
        finally:
            if intent is not None:
                os.close(intent)  # closing drops the intent lock

    def _wait(self, fd: int, flag: int, operation: str, deadline: float | None,
              on_wait: Callable[[str], None] | None, told: list[bool]) -> None:
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, flag | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if deadline is not None and time.monotonic() >= deadline:
                raise WorkspaceBusy(f"cannot {operation}: the data set is busy with {self.describe_holders()}",
                                    "try again when it has finished")
            if not told[0] and on_wait is not None:
                on_wait(f"waiting for {self.describe_holders()} to finish before {operation} ...")
                told[0] = True
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)

    def try_exclusive(self) -> _TryHold:
        """A context manager that takes the lock exclusively only if it is free now; ``as`` gives a bool."""
        return _TryHold(self)

    @property
    def held_here(self) -> bool:
        """True if this thread holds the lock through this object."""
        return getattr(self._local, "held", None) is not None


class _TryHold:
    def __init__(self, lock: WorkspaceLock) -> None:
        self.lock = lock
        self._cm: object | None = None

    def __enter__(self) -> bool:
        cm = self.lock.hold("recover", exclusive=True, wait=0)
        try:
            cm.__enter__()
        except WorkspaceBusy:
            return False
        except RuntimeError:  # held shared by this very thread: not free
            return False
        except CleaningError:  # read-only state folder
            return False
        self._cm = cm
        return True

    def __exit__(self, *exc: object) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)  # type: ignore[attr-defined]
