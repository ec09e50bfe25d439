"""Joining rows into groups (union-find): rows sharing a key, or linked by an edge, end in one group."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np


def join_groups(n: int, key_columns: Iterable[Sequence[Hashable | None]] = (),
                edges: Iterable[tuple[int, int]] = ()) -> np.ndarray:
    """Group ids (N ints, 0..G-1 in order of the smallest root) for ``n`` rows.

    Rows that share a value in any key column are joined (``None``, ``""`` and NaN join nothing), and
    so are the two rows of every edge ``(a, b)``. O(N α(N)).
    """
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    for column in key_columns:
        first: dict[Hashable, int] = {}
        for i, k in enumerate(column):
            if k is None or k == "" or (isinstance(k, float) and np.isnan(k)):
                continue
            union(i, first.setdefault(k, i))
    for a, b in edges:
        union(int(a), int(b))
    _, ids = np.unique([find(i) for i in range(n)], return_inverse=True)
    return ids.astype(np.int64)


def make_groups(*keys: Sequence[Hashable | None]) -> np.ndarray:
    """Group ids (N ints) joining rows that share any key (e.g. equal sha256 *or* equal phash).

    Each argument is one key per row; ``None`` / empty keys join nothing.
    """
    return join_groups(len(keys[0]) if keys else 0, keys)
