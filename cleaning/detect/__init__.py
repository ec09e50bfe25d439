"""Detectors: pure functions over arrays that each fill the same issue table.

Every detector is three small steps — *measure* (a number per image), *score* (that number mapped
to [0, 1], higher = more suspicious) and *threshold* (which scores become issues) — and returns a
DataFrame with :data:`ISSUE_COLUMNS`:

``item_id, issue, severity, suggested_label, related_item_id, reason, group``

``issue`` is one of :data:`ISSUE_KINDS`; ``severity`` in [0, 1]; ``suggested_label`` is set for
``label`` rows (never on ``outlier`` rows: off-topic is not a label error), ``related_item_id`` for
duplicate rows (the copy to keep), ``group`` for the members of one junk group (:mod:`.junk`, the same
id on every member; empty otherwise); ``reason`` is plain words with numbers. :mod:`cleaning.review.analysis` runs them over a workspace and merges the tables into one queue.

The nearest-neighbour search (:func:`compute_neighbours`) is shared by the label, outlier and
duplicate detectors: encode once, query cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import CleaningError

ISSUE_COLUMNS = ["item_id", "issue", "severity", "suggested_label", "related_item_id", "reason", "group"]
ISSUE_KINDS = ("label", "outlier", "duplicate", "near_duplicate", "corrupt", "low_quality")


def issues_frame(rows: Iterable[Mapping[str, object]] = ()) -> pd.DataFrame:
    """The shared issue table from dict rows (missing keys become empty strings / 0 severity).

    Raises:
        CleaningError: an unknown ``issue`` kind or a severity outside [0, 1].
    """
    recs = [{c: r.get(c, 0.0 if c == "severity" else "") for c in ISSUE_COLUMNS} for r in rows]
    df = pd.DataFrame.from_records(recs, columns=ISSUE_COLUMNS)
    df["severity"] = df["severity"].astype(float)
    bad = set(df["issue"]) - set(ISSUE_KINDS)
    if bad:
        raise CleaningError(f"unknown issue kind(s) {sorted(bad)}", hint=f"use one of {', '.join(ISSUE_KINDS)}")
    if len(df) and not df["severity"].between(0.0, 1.0).all():
        raise CleaningError("issue severity outside [0, 1]")
    for c in ("item_id", "suggested_label", "related_item_id", "reason", "group"):
        df[c] = df[c].fillna("").astype(str)
    return df


@dataclass(frozen=True)
class Neighbours:
    """The ``k`` nearest other images of each image by cosine similarity.

    ``index`` N×k ints (-1 where fewer than k valid neighbours exist), ``sim`` N×k floats (cosine
    similarity, descending; -inf where ``index`` is -1). Members of an image's own group (its exact
    or near copies) are never its neighbours, so copies cannot vouch for each other.
    """

    index: np.ndarray
    sim: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.index >= 0


def compute_neighbours(embeddings: np.ndarray, k: int = 10, groups: np.ndarray | None = None,
                       block: int = 1024) -> Neighbours:
    """k-nearest-neighbour search: exact (blocked matrix products, O(N²·D) time, O(block·N) memory) up
    to :data:`cleaning.detect.index.EXACT_MAX` rows, approximate above (a cached HNSW graph,
    :mod:`cleaning.detect.index`).

    Args:
        embeddings: N×D, rows L2-normalised.
        k: neighbours per image (fewer columns if N−1 < k).
        groups: optional N group ids; images sharing a group are not each other's neighbours.
    Raises:
        CleaningError: embeddings not 2-D.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise CleaningError(f"embeddings must be N×D, got shape {x.shape}")
    n = len(x)
    k = max(0, min(k, n - 1))
    g = np.arange(n) if groups is None else np.asarray(groups)
    if k == 0:
        return Neighbours(np.full((n, 0), -1, np.int64), np.zeros((n, 0), np.float32))
    from . import index as _index

    if n > _index.EXACT_MAX:
        return Neighbours(*_index.approximate_neighbours(x, k, groups))
    index = np.full((n, k), -1, np.int64)
    sim = np.full((n, k), -np.inf, np.float32)
    for s in range(0, n, block):
        rows = np.arange(s, min(s + block, n))
        sims = x[rows] @ x.T
        sims[g[rows][:, None] == g[None, :]] = -np.inf  # self and own copies
        index[rows], sim[rows] = _index.top_k(sims, k)  # ties: the lower row first
    return Neighbours(index, sim)


def robust_z(x: np.ndarray) -> np.ndarray:
    """(x − median) / (1.4826·MAD): how many robust standard deviations above typical."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    spread = max(mad, 1e-3 * max(abs(med), 1e-6), 1e-9)
    return (x - med) / spread


def fmt_pct(x: float) -> str:
    return f"{x:.2f}"
