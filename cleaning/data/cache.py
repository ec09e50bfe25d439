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
    """

    def __init__(self, cache_dir: Path, model_key: str, dim: int) -> None:
        self.path = cache_path(cache_dir, "emb", model_key)
        self.parts_dir = self.path.with_name(f"emb-{model_key}.parts")
        self.cache_dir, self.model_key, self.dim = Path(cache_dir), model_key, dim
        self.rows: dict[str, int] = {}
        self._blocks: list[np.ndarray] = []
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
                 dict(zip(map(str, arrays["failed_sha"]), map(str, arrays["failed_reason"]))))

    @property
    def matrix(self) -> np.ndarray:
        """All rows, N×dim float32 (blocks added since the last access are joined once)."""
        if len(self._blocks) != 1:
            self._blocks = [np.concatenate(self._blocks) if self._blocks else np.zeros((0, self.dim), np.float32)]
        return self._blocks[0]

    def missing(self, shas: Iterable[str]) -> list[str]:
        """Distinct shas with neither an embedding nor a recorded failure, in first-seen order."""
        return [s for s in dict.fromkeys(shas) if s not in self.rows and s not in self.failed]

    def add(self, shas: Sequence[str], embeddings: np.ndarray, failed: dict[str, str] | None = None) -> None:
        """Add rows (``embeddings`` is len(shas)×dim) and failures; call :meth:`save` to persist."""
        new = [i for i, s in enumerate(shas) if s not in self.rows]
        if new:
            self._blocks.append(np.asarray(embeddings, dtype=np.float32)[new])
            for j, i in enumerate(new):
                self.rows[shas[i]] = self._n + j
            self._n += len(new)
        self.failed.update(failed or {})

    def get(self, shas: Sequence[str]) -> np.ndarray:
        """len(shas)×dim rows. Raises KeyError for a sha without an embedding."""
        return self.matrix[[self.rows[s] for s in shas]] if shas else np.zeros((0, self.dim), np.float32)

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
