"""Approximate nearest neighbours for large data sets (the plumbing under :func:`compute_neighbours`).

Exact search costs O(N²·D): about 1 CPU-s at 5,000 images, 20 at 20,000, ≈ 8 min at 100,000.
Above :data:`EXACT_MAX` rows :func:`cleaning.detect.compute_neighbours` calls
:func:`approximate_neighbours` instead: a k-NN graph from an HNSW index (``hnswlib``; NN-descent from
``pynndescent`` if hnswlib is missing) on the L2-normalised embeddings, whose memory is O(N·(D + M))
and whose time grows about as N·log N. On 5,000 clustered 1280-d vectors hnswlib took 4.8 CPU-s at
recall 1.0, faiss' HNSW 4.5 s (0.9999), pynndescent 34 s (numba compilation included) and the exact
search 1.2 s; on the 19,876 real embeddings of the 20k benchmark tree the exact search took 19.7 CPU-s,
HNSW 9.6 at recall@10 0.9995: the two cost the same near 10,000 rows. The scan's whole-set lists do not come from
here but from :mod:`.ann` (a kept, projected HNSW index, extended on a rescan), and the off-topic check reads its
same-label neighbours off those lists too; this graph serves other callers (:func:`cleaning.detect.compute_neighbours`
without a table). It is built once per
embedding matrix and reused by every detector that asks (duplicates, label votes): rows of a group (copies) are removed afterwards, as the exact search
does. Recall against the exact search is measured in ``bench/bench_scale.py``
(``bench/results/scale.md``).
"""

from __future__ import annotations

import hashlib
import threading
import warnings

import numpy as np

from ..cpus import n_cpus

#: Above this many rows the neighbours come from the approximate graph.
EXACT_MAX = 10_000
#: Graph width: the widest request (junk groups ask 40, :data:`cleaning.detect.junk.K_WIDE`) plus 8 copies to
#: drop, so every detector is served by ONE graph per matrix (a second, wider one cost a second build:
#: minutes at 100,000 rows).
GRAPH_K = 48
#: HNSW settings (hnswlib): links per node, build and search beam widths.
HNSW_M = 16
EF_CONSTRUCTION = 100
EF_SEARCH = 64
#: Built graphs kept in memory (one per matrix),
#: oldest dropped first while they hold more rows than this in all (≈ 145 MB at width 48).
KEEP_ROWS = 250_000

_GRAPHS: dict[str, tuple[np.ndarray, np.ndarray]] = {}
_LOCK = threading.Lock()


def top_k(s: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``s`` (B×U, -inf = not a candidate) the ``m`` largest: (B×m positions, B×m values),
    by value descending, ties by position ascending (deterministic, unlike a bare argpartition)."""
    m = min(m, s.shape[1])
    if m == 0:
        return np.zeros((len(s), 0), np.int64), np.zeros((len(s), 0), np.float32)
    top = np.argpartition(-s, m - 1, axis=1)[:, :m]
    val = np.take_along_axis(s, top, axis=1)
    t = val.min(axis=1)
    for r in np.flatnonzero((s >= t[:, None]).sum(axis=1) > m):  # ties at the cut: lowest positions win
        cand = np.flatnonzero(s[r] >= t[r])
        cand = cand[np.lexsort((cand, -s[r, cand]))][:m]
        top[r], val[r] = cand, s[r, cand]
    order = np.lexsort((top, -val), axis=1)
    top, val = np.take_along_axis(top, order, axis=1), np.take_along_axis(val, order, axis=1)
    top[~np.isfinite(val)] = -1
    return top, val.astype(np.float32)


def _key(x: np.ndarray) -> str:
    """A cheap fingerprint of a matrix: shape plus a hash of every 97th row."""
    h = hashlib.sha1(str(x.shape).encode())
    h.update(np.ascontiguousarray(x[::97]).tobytes())
    h.update(np.ascontiguousarray(x[-1:]).tobytes())
    return h.hexdigest()


def _hnsw(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """k nearest rows (self included) by inner product: hnswlib's HNSW graph, pynndescent without it."""
    try:
        import hnswlib
    except ImportError:  # pragma: no cover - hnswlib is in requirements.txt
        from pynndescent import NNDescent

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba / pynndescent chatter
            i, d = NNDescent(x, metric="dot", n_neighbors=k, random_state=seed, low_memory=True).neighbor_graph
        return np.asarray(i, np.int64), (1.0 - np.asarray(d, np.float32))
    n, d = x.shape
    index = hnswlib.Index(space="ip", dim=d)
    index.init_index(max_elements=n, ef_construction=EF_CONSTRUCTION, M=HNSW_M, random_seed=seed)
    index.set_num_threads(n_cpus())
    for s in range(0, n, 8192):  # float32 blocks: no float64 copy of the whole matrix
        index.add_items(np.ascontiguousarray(x[s:s + 8192], dtype=np.float32), np.arange(s, min(s + 8192, n)))
    index.set_ef(max(EF_SEARCH, k + 1))
    idx = np.empty((n, k), np.int64)
    sim = np.empty((n, k), np.float32)
    for s in range(0, n, 8192):
        i, dist = index.knn_query(np.ascontiguousarray(x[s:s + 8192], dtype=np.float32), k=min(k, n))
        idx[s:s + len(i), : i.shape[1]], sim[s:s + len(i), : i.shape[1]] = i, 1.0 - dist
    return idx, sim


def knn_graph(x: np.ndarray, k: int = GRAPH_K, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(index N×k int64, similarity N×k float32) of each row's approximate nearest *other* rows.

    Rows must be L2-normalised (similarity = dot product). Cached per matrix content.
    """
    key = f"{_key(x)}-{k}-{seed}"
    with _LOCK:
        if key in _GRAPHS:
            return _GRAPHS[key]
    idx, sim = _hnsw(np.asarray(x, dtype=np.float32), k + 1, seed)
    rows = np.arange(len(x))[:, None]
    sim = np.where((idx == rows) | (idx < 0), -np.inf, sim)  # self and unfilled slots
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    idx, sim = np.take_along_axis(idx, order, axis=1), np.take_along_axis(sim, order, axis=1)
    idx[~np.isfinite(sim)] = -1
    with _LOCK:
        _GRAPHS[key] = (idx, sim)
        while len(_GRAPHS) > 1 and sum(len(g[0]) for g in _GRAPHS.values()) > KEEP_ROWS:
            _GRAPHS.pop(next(iter(_GRAPHS)))
    return idx, sim


def approximate_neighbours(x: np.ndarray, k: int, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows (N×k index, -1 where missing; N×k similarity, -inf there), rows of
    the same group left out, from the cached approximate graph."""
    n = len(x)
    g = np.arange(n) if groups is None else np.asarray(groups)
    idx, sim = knn_graph(x, max(GRAPH_K, k + 8))
    bad = (idx < 0) | (g[np.clip(idx, 0, None)] == g[:, None])
    sim = np.where(bad, -np.inf, sim)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    out_idx = np.take_along_axis(idx, order, axis=1)
    out_sim = np.take_along_axis(sim, order, axis=1).astype(np.float32)
    out_idx[~np.isfinite(out_sim)] = -1
    return out_idx, out_sim


def recall_at_k(exact: np.ndarray, approx: np.ndarray) -> float:
    """Share of the exact neighbours (valid entries of N×k ``exact``) found in ``approx`` (N×k)."""
    hit = total = 0
    for e, a in zip(exact, approx):
        e = set(int(v) for v in e if v >= 0)
        total += len(e)
        hit += len(e & set(int(v) for v in a if v >= 0))
    return hit / max(total, 1)
