"""On-disk caches of arrays (``.npz``, no pickle) keyed by a fingerprint of what they were computed from.

Two shapes of cache:

* :func:`load_arrays` / :func:`save_arrays` — one file per fingerprint, e.g. out-of-sample
  probabilities keyed by (embedding model, items, labels, folds). Anything that changes the inputs
  changes the key, so a stale file is simply never read again; old files are pruned.
* :class:`EmbeddingTable` — embeddings per image *content* (sha256) for one model: adding an image
  computes one row, relabelling or deleting computes nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

#: How many files of one kind are kept (newest first) when a new one is saved.
KEEP_PER_KIND = 6


def fingerprint(*parts: Any) -> str:
    """A 16-hex-digit sha256 of JSON-serialisable ``parts`` (order matters; dict keys sorted)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_path(cache_dir: Path, kind: str, key: str) -> Path:
    """Where the arrays of ``kind`` (e.g. ``"oos"``) with fingerprint ``key`` live."""
    return Path(cache_dir) / f"{kind}-{key}.npz"


def load_arrays(cache_dir: Path, kind: str, key: str) -> dict[str, np.ndarray] | None:
    """The arrays saved under (kind, key), or None when absent or unreadable (then recompute)."""
    path = cache_path(cache_dir, kind, key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):  # torn or foreign file: a miss
        return None
    try:
        os.utime(path)  # mark as recently used for pruning
    except OSError:
        pass
    return arrays


def save_arrays(cache_dir: Path, kind: str, key: str, keep: int = KEEP_PER_KIND,
                **arrays: np.ndarray) -> Path:
    """Atomically write ``arrays`` under (kind, key); keep only the ``keep`` newest files of ``kind``."""
    path = cache_path(cache_dir, kind, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    prune(cache_dir, kind, keep)
    return path


@contextmanager
def cache_lock(cache_dir: Path, name: str) -> Iterator[None]:
    """Hold an OS file lock (``flock``, exclusive, blocking) on ``CACHE/name.lock`` for one computation.

    For a cache whose entry is read, extended and written back (the kept fold heads): a second process waits
    for the first one's result instead of computing the same thing beside it. The kernel releases the lock
    when its process dies. Writes stay atomic (:func:`save_arrays`), so readers need no lock.
    """
    path = Path(cache_dir) / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def prune(cache_dir: Path, kind: str, keep: int = KEEP_PER_KIND) -> None:
    """Delete all but the ``keep`` most recently used cache files of ``kind``."""
    files = sorted(Path(cache_dir).glob(f"{kind}-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        try:
            old.unlink()
        except OSError:
            pass


class EmbeddingTable:
    """Embeddings of one model, one row per distinct image content (sha256), saved as one ``.npz``.

    Files that could not be decoded are remembered too (``failed``: sha256 → reason) so they are not
    retried on every call. While a long embedding runs, :meth:`save_part` writes the rows added since
    the last write as a small part file (``emb-KEY.parts/``): an interrupted run keeps its work, and
    no step holds more than one chunk of new rows twice. :meth:`save` folds the parts into the one file.

    Rows live in one buffer that grows by half its size when full (or once to the size :meth:`reserve`
    announces), and :meth:`get` of every row in table order returns a view of it: at 100,000 images a
    list of 2,048-row blocks joined at the end, and a gathered copy on top of that, held the 0.5 GB
    matrix three times at once (the embedding step's 3.08 GB peak).
    """

    def __init__(self, cache_dir: Path, model_key: str, dim: int) -> None:
        self.path = cache_path(cache_dir, "emb", model_key)
        self.parts_dir = self.path.with_name(f"emb-{model_key}.parts")
        self.cache_dir, self.model_key, self.dim = Path(cache_dir), model_key, dim
        self.rows: dict[str, int] = {}
        self._buf = np.zeros((0, dim), np.float32)
        self._n = 0
        self._saved_rows = 0
        self._saved_failed: set[str] = set()
        self.failed: dict[str, str] = {}
        arrays = load_arrays(self.cache_dir, "emb", model_key)
        if arrays is not None and self._usable(arrays):
            self._load(arrays)
        for part in sorted(self.parts_dir.glob("part-*.npz")) if self.parts_dir.is_dir() else []:
            try:
                with np.load(part, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
                continue  # a torn part: its rows are simply computed again
            if self._usable(arrays):
                self._load(arrays)
        self._saved_rows = self._n
        self._saved_failed = set(self.failed)

    def _usable(self, arrays: dict[str, np.ndarray]) -> bool:
        return {"emb", "sha256", "failed_sha", "failed_reason"} <= set(arrays) and arrays["emb"].shape[1:] == (self.dim,)

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        self.add(list(map(str, arrays["sha256"])), arrays["emb"],
                 dict(zip(map(str, arrays["failed_sha"]), map(str, arrays["failed_reason"]))), owned=True)

    @property
    def matrix(self) -> np.ndarray:
        """All rows, N×dim float32 (a view of the buffer, no copy)."""
        return self._buf[:self._n]

    def reserve(self, n_rows: int) -> None:
        """Make room for ``n_rows`` rows in all, so adding up to that many copies the buffer at most once."""
        if n_rows > len(self._buf):
            buf = np.empty((n_rows, self.dim), np.float32)
            buf[:self._n] = self._buf[:self._n]
            self._buf = buf

    def missing(self, shas: Iterable[str]) -> list[str]:
        """Distinct shas with neither an embedding nor a recorded failure, in first-seen order."""
        return [s for s in dict.fromkeys(shas) if s not in self.rows and s not in self.failed]

    def add(self, shas: Sequence[str], embeddings: np.ndarray, failed: dict[str, str] | None = None,
            owned: bool = False) -> None:
        """Add rows (``embeddings`` is len(shas)×dim) and failures; call :meth:`save` to persist.

        ``owned``: the table may keep ``embeddings`` itself as its buffer (nobody else holds it).
        """
        seen: set[str] = set()
        new = [i for i, s in enumerate(shas) if s not in self.rows and not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]
        if new:
            rows = np.asarray(embeddings, dtype=np.float32)
            if self._n == 0 and owned and len(new) == len(rows) and rows.flags.c_contiguous:
                self._buf = rows  # the saved file's matrix, read by this table: taken as it is
            else:
                if self._n + len(new) > len(self._buf):
                    self.reserve(max(self._n + len(new), len(self._buf) * 3 // 2))
                self._buf[self._n:self._n + len(new)] = rows[new]
            for j, i in enumerate(new):
                self.rows[shas[i]] = self._n + j
            self._n += len(new)
        self.failed.update(failed or {})

    def get(self, shas: Sequence[str]) -> np.ndarray:
        """len(shas)×dim rows (a view when ``shas`` are all rows in table order). Raises KeyError for a sha without an embedding."""
        if not shas:
            return np.zeros((0, self.dim), np.float32)
        idx = np.fromiter((self.rows[s] for s in shas), np.int64, len(shas))
        if len(idx) == self._n and (idx == np.arange(self._n)).all():
            return self.matrix
        return self.matrix[idx]

    def _order(self) -> list[str]:
        return sorted(self.rows, key=self.rows.__getitem__)

    def save_part(self) -> None:
        """Write the rows and failures added since the last write as one part file (cheap, atomic)."""
        new_failed = {s: r for s, r in self.failed.items() if s not in self._saved_failed}
        if self._n == self._saved_rows and not new_failed:
            return
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        order = self._order()[self._saved_rows:]
        rows = self.matrix[self._saved_rows:]
        path = self.parts_dir / f"part-{self._n:09d}-{len(new_failed):06d}.npz"
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, emb=rows, sha256=np.array(order, dtype="U64"),
                 failed_sha=np.array(list(new_failed), dtype="U64"),
                 failed_reason=np.array(list(new_failed.values()), dtype=str))
        os.replace(tmp, path)
        self._saved_rows = self._n
        self._saved_failed.update(new_failed)

    def save(self) -> None:
        """Write everything as the one file and remove the parts it now holds."""
        save_arrays(self.cache_dir, "emb", self.model_key,
                    emb=self.matrix, sha256=np.array(self._order(), dtype="U64"),
                    failed_sha=np.array(list(self.failed), dtype="U64"),
                    failed_reason=np.array(list(self.failed.values()), dtype=str))
        self._saved_rows = self._n
        self._saved_failed = set(self.failed)
        if self.parts_dir.is_dir():
            for part in self.parts_dir.glob("*.npz"):
                try:
                    part.unlink()
                except OSError:
                    pass
            try:
                self.parts_dir.rmdir()
            except OSError:
                pass
