"""Dedupe on the way in and resume: which images we already have, which URLs we already tried.

:class:`KnownImages` answers "is this a duplicate of something we have?" (exact sha256, near pHash),
across classes and including deleted images; :class:`FetchLog` is the append-only JSON-lines record of
URLs already fetched or rejected, so a rerun does not fetch them again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# --- dedupe on the way in ------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """An image already known: ``kind`` is "exact" (same sha256) or "near" (pHash within threshold)."""

    kind: str
    ref: str  # path relative to ROOT (or the URL of an image kept earlier in this run)
    label: str | None
    distance: int = 0
    deleted: bool = False


class KnownImages:
    """Thread-safe index of images already in the data set plus those kept by this run.

    Exact duplicates by sha256 (of the source bytes or the saved JPEG), near duplicates by 64-bit
    pHash with Hamming distance ``<= max_distance``. Across classes too: a match in another class is
    reported with that class, so the caller records the conflict instead of keeping both.
    """

    def __init__(self, max_distance: int = 6) -> None:
        self.max_distance = max_distance
        self._lock = threading.Lock()
        self._by_sha: dict[str, Match] = {}
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._refs: list[Match] = []

    def __len__(self) -> int:
        return len(self._refs)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, max_distance: int = 6) -> KnownImages:
        """Index a ``Workspace.items_frame()`` (columns path, label, sha256, phash hex, deleted).

        Deleted items stay in the index: what the user threw out must not come back.
        """
        known = cls(max_distance)
        for row in frame.itertuples(index=False):
            ph = getattr(row, "phash", None)
            known.add([str(row.sha256)] if isinstance(row.sha256, str) else [],
                      int(ph, 16) if isinstance(ph, str) and ph else None,
                      ref=str(row.path), label=str(row.label),
                      deleted=bool(getattr(row, "deleted", False)))
        return known

    def add(self, shas: Sequence[str], phash: int | None, *, ref: str, label: str | None,
            deleted: bool = False) -> None:
        with self._lock:
            self._add(shas, phash, Match("exact", ref, label, 0, deleted))

    def _add(self, shas: Sequence[str], phash: int | None, m: Match) -> None:
        for s in shas:
            self._by_sha.setdefault(s, m)
        if phash is not None:
            n = len(self._refs)
            if n == len(self._hashes):
                self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
            self._hashes[n] = np.uint64(phash)
            self._refs.append(m)

    def _match(self, shas: Sequence[str], phash: int | None) -> Match | None:
        for s in shas:
            if s in self._by_sha:
                m = self._by_sha[s]
                return Match("exact", m.ref, m.label, 0, m.deleted)
        if phash is None or not self._refs or self.max_distance < 0:
            return None
        dist = np.bitwise_count(self._hashes[: len(self._refs)] ^ np.uint64(phash))
        i = int(np.argmin(dist))
        if dist[i] > self.max_distance:
            return None
        m = self._refs[i]
        return Match("near", m.ref, m.label, int(dist[i]), m.deleted)

    def match(self, shas: Sequence[str], phash: int | None) -> Match | None:
        """The known image this one duplicates, or None."""
        with self._lock:
            return self._match(shas, phash)

    def claim(self, shas: Sequence[str], phash: int | None, *, ref: str, label: str,
              allow: Callable[[], bool] = lambda: True) -> Match | None:
        """Atomically: return the match if a duplicate, else (if ``allow()``) add it and return None.

        Raises :class:`LookupError` when ``allow()`` says no (e.g. the class is already full).
        """
        with self._lock:
            m = self._match(shas, phash)
            if m is not None:
                return m
            if not allow():
                raise LookupError("not needed")
            self._add(shas, phash, Match("exact", ref, label))
            return None


# --- resume -------------------------------------------------------------------------------------


class FetchLog:
    """URLs already fetched or rejected, kept as JSON lines in ``path`` (None: in memory only).

    A rerun skips every URL in the log except, with ``retry_transient``, those that failed for a
    reason worth retrying (timeout, 5xx, connection error). A torn last line is ignored.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, object]] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self._entries[str(entry["url"])] = entry
                except (ValueError, KeyError, TypeError):
                    continue

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, url: str, *, retry_transient: bool = False) -> dict[str, object] | None:
        """The earlier outcome for ``url`` if the run should skip it, else None."""
        with self._lock:
            e = self._entries.get(url)
        if e is None or (retry_transient and e.get("transient")):
            return None
        return e

    def entries(self) -> list[dict[str, object]]:
        """A copy of every logged outcome (one per URL, the newest)."""
        with self._lock:
            return [dict(e) for e in self._entries.values()]

    def count(self, label: str) -> int:
        """How many URLs of class ``label`` the log holds."""
        with self._lock:
            return sum(e.get("label") == label for e in self._entries.values())

    def record(self, url: str, status: str, **fields: object) -> None:
        entry = {"url": url, "status": status, "at": time.time(), **fields}
        with self._lock:
            self._entries[url] = entry
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry, ensure_ascii=False) + "\n")
