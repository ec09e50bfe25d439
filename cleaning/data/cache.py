"""On-disk caches of arrays (``.npz``, no pickle) keyed by a fingerprint of what they were computed from.

Two shapes of cache:

* :func:`load_arrays` / :func:`save_arrays` — one file per fingerprint, e.g. out-of-sample
  probabilities keyed by (embedding model, items, labels, folds). Anything that changes the inputs
  changes the key, so a stale file is simply never read again; old files are pruned.
* :class:`EmbeddingTable` — embeddings per image *content* (sha256) for one model: adding an image
  computes one row, relabelling or deleting computes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterable, Sequence
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
    retried on every call.
    """

    def __init__(self, cache_dir: Path, model_key: str, dim: int) -> None:
        self.path = cache_path(cache_dir, "emb", model_key)
        self.cache_dir, self.model_key, self.dim = Path(cache_dir), model_key, dim
        self.rows: dict[str, int] = {}
        self.matrix = np.zeros((0, dim), dtype=np.float32)
        self.failed: dict[str, str] = {}
        arrays = load_arrays(self.cache_dir, "emb", model_key)
        if arrays is not None and {"emb", "sha256", "failed_sha", "failed_reason"} <= set(arrays) \
                and arrays["emb"].shape[1:] == (dim,):
            self.matrix = arrays["emb"].astype(np.float32, copy=False)
            self.rows = {str(s): i for i, s in enumerate(arrays["sha256"])}
            self.failed = dict(zip(map(str, arrays["failed_sha"]), map(str, arrays["failed_reason"])))

    def missing(self, shas: Iterable[str]) -> list[str]:
        """Distinct shas with neither an embedding nor a recorded failure, in first-seen order."""
        return [s for s in dict.fromkeys(shas) if s not in self.rows and s not in self.failed]

    def add(self, shas: Sequence[str], embeddings: np.ndarray, failed: dict[str, str] | None = None) -> None:
        """Add rows (``embeddings`` is len(shas)×dim) and failures; call :meth:`save` to persist."""
        new = [i for i, s in enumerate(shas) if s not in self.rows]
        if new:
            base = len(self.matrix)
            self.matrix = np.concatenate([self.matrix, embeddings[new].astype(np.float32)])
            for j, i in enumerate(new):
                self.rows[shas[i]] = base + j
        self.failed.update(failed or {})

    def get(self, shas: Sequence[str]) -> np.ndarray:
        """len(shas)×dim rows. Raises KeyError for a sha without an embedding."""
        return self.matrix[[self.rows[s] for s in shas]] if shas else np.zeros((0, self.dim), np.float32)

    def save(self) -> None:
        order = sorted(self.rows, key=self.rows.__getitem__)
        save_arrays(self.cache_dir, "emb", self.model_key,
                    emb=self.matrix, sha256=np.array(order, dtype="U64"),
                    failed_sha=np.array(list(self.failed), dtype="U64"),
                    failed_reason=np.array(list(self.failed.values()), dtype=str))
