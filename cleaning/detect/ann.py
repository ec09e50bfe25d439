"""The approximate neighbour table above :data:`cleaning.detect.index.EXACT_MAX` rows, kept between scans.

Above ``EXACT_MAX`` the whole-set neighbour lists (near-duplicate candidates, label votes, the off-topic check's wide
list) are read off a :class:`.memo.NeighbourTable` as below it, but its lists come from an HNSW index (``hnswlib``)
instead of an exact search:

* **Projected index, exact similarities.** Vectors wider than 2·:data:`PROJ_DIM` are indexed by their first
  :data:`PROJ_DIM` principal components (fitted on ≤ :data:`PCA_SAMPLE` contents, centred, then L2-normalised);
  each content's :data:`CANDIDATES` nearest contents in that space are re-ranked by their *exact* cosine
  similarity in full dimension, and the best :data:`.memo.TABLE_M` kept (unprojected: the TABLE_M nearest). Measured on the 99,893 real embeddings
  (1,280-d EfficientNet-Lite0) of the 100k benchmark tree, 1,000 random queries against the exact search, one
  thread, load ≈ 9 on 2 cores: the full-dimension HNSW graph (M 16, ef 100 / 64) 125 CPU-s, recall@10 0.9964,
  recall@48 0.9884; 128 components (85 % of the variance), 144 candidates re-ranked: 71 CPU-s (projection 3,
  index 30, re-ranking 38), recall@10 0.9983, recall@48 0.9870 (``bench/results/scale.md`` §12). The re-ranking
  gathers each content's candidates into one reused buffer (0.7 MB, stays in cache) for one matrix–vector
  product: 35 → 22 CPU-s at 100,000 contents for bitwise the same similarities, so the same table and recall
  (64 contents at a time gathered 47 MB blocks through memory, §14b; 96 candidates instead of 144: recall@48 0.956, §12). Vectors of at
  most 2·PROJ_DIM dimensions (the 192-d coarse pixel descriptors) are indexed as they are.
* **Kept and extended.** The index (its bytes), the projection and each graph label's content are kept
  (:class:`.memo.AnnState`, saved with the scan's memo). A rescan adds only the new contents to the kept index
  (``add_items``) and marks removed ones deleted (``mark_deleted``); it queries only the new contents and the kept
  contents whose kept list named a removed content; every other kept list is merged with the new contents that
  found it among their candidates (a new content enters the lists of the contents it is near). A rescan thus
  equals a scan from nothing up to the approximate index's recall, not bit for bit (the graph differs).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from ..cpus import n_cpus
from .index import EF_CONSTRUCTION, EF_SEARCH, HNSW_M
from .memo import TABLE_M, AnnState, NeighbourTable, distinct_contents, lookup, reuse_lists

#: Principal components the index is built on, and candidates per content re-ranked in full dimension.
PROJ_DIM = 128
CANDIDATES = 3 * TABLE_M
#: Contents the projection is fitted on (a fixed-seed sample).
PCA_SAMPLE = 10_000


def _fit_projection(x: np.ndarray, first: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    d = x.shape[1]
    if d <= 2 * PROJ_DIM:
        return np.zeros(d, np.float32), np.zeros((d, 0), np.float32)
    rng = np.random.default_rng(seed)
    s = x[first[np.sort(rng.choice(len(first), min(PCA_SAMPLE, len(first)), replace=False))]].astype(np.float64)
    mean = s.mean(axis=0)
    _, vec = np.linalg.eigh((s - mean).T @ (s - mean))
    return mean.astype(np.float32), np.ascontiguousarray(vec[:, ::-1][:, :PROJ_DIM], dtype=np.float32)


def _project(x: np.ndarray, rows: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """The index's unit vectors of ``x[rows]``, 8,192 rows at a time (no full-width copy of ``x``)."""
    out = np.empty((len(rows), basis.shape[1] or x.shape[1]), np.float32)
    for s in range(0, len(rows), 8192):
        z = np.asarray(x[rows[s:s + 8192]], np.float32)
        z = z if basis.shape[1] == 0 else (z - mean) @ basis
        out[s:s + len(z)] = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-6)
    return out


def _save(index: object) -> np.ndarray:
    """The index's bytes as a read-only map of an unlinked temporary file, not a copy in memory: the two kept
    indexes are ≈ 240 MB at 100,000 images, and the scan holds them from the duplicate step until the memo is
    saved, through the pixel comparison's peak (with the bytes read in, the 100k scan peaked at 3.04 GB)."""
    fd, path = tempfile.mkstemp(suffix=".hnsw")
    os.close(fd)
    try:
        index.save_index(path)  # type: ignore[attr-defined]
        return np.memmap(path, dtype=np.uint8, mode="r")
    finally:
        try:
            os.unlink(path)  # the map keeps the data; the name goes now (POSIX)
        except OSError:  # Windows: an open map cannot be unlinked; the temp folder's cleanup takes it
            pass


def _load(blob: np.ndarray, dim: int, max_elements: int) -> object:
    import hnswlib

    index = hnswlib.Index(space="ip", dim=dim)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hnsw.bin")
        np.asarray(blob, np.uint8).tofile(path)
        index.load_index(path, max_elements=max_elements)
    return index


def build_index(z: np.ndarray, seed: int = 0) -> object:
    """An hnswlib inner-product index of the rows of ``z`` (labels 0..N−1)."""
    import hnswlib

    index = hnswlib.Index(space="ip", dim=z.shape[1])
    index.init_index(max_elements=max(len(z), 1), ef_construction=EF_CONSTRUCTION, M=HNSW_M, random_seed=seed)
    index.set_num_threads(n_cpus())
    for s in range(0, len(z), 8192):
        index.add_items(z[s:s + 8192], np.arange(s, min(s + 8192, len(z))))
    return index


def _exact_sims(x: np.ndarray, first: np.ndarray, rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Cosine similarity in full dimension of each content of ``rows`` to its candidates (R×C contents, -1: none →
    -inf). One content at a time: its candidates' rows gathered into one reused buffer (C×D, ≈ 0.7 MB: stays in
    cache) and one matrix–vector product. The earlier 64 contents at a time gathered a 47 MB block that went out
    to memory and back: 35 → 22 CPU-s at 100,000 contents, bitwise the same similarities (§14b)."""
    sims = np.empty(cand.shape, np.float32)
    buf = np.empty((cand.shape[1], x.shape[1]), np.float32)
    pos = first[np.clip(cand, 0, None)]
    for i, r in enumerate(rows):
        np.take(x, pos[i], axis=0, out=buf)
        np.matmul(buf, x[first[r]], out=sims[i])
    sims[cand < 0] = -np.inf
    return sims


def _query(index: object, z: np.ndarray, rows: np.ndarray, x: np.ndarray, first: np.ndarray, label_pos: np.ndarray,
           m: int, alive: int, projected: bool) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` nearest other contents of the contents ``rows``: CANDIDATES from a projected index (``m`` + 1
    from an unprojected one), re-ranked exactly (content c's vector is ``x[first[c]]``)."""
    k = min((CANDIDATES if projected else m) + 1, alive)
    index.set_ef(max(EF_SEARCH, k))  # type: ignore[attr-defined]
    out_i = np.full((len(rows), m), -1, np.int64)
    out_s = np.full((len(rows), m), -np.inf, np.float32)
    for s in range(0, len(rows), 4096):
        r = rows[s:s + 4096]
        while True:
            try:
                lab, _ = index.knn_query(z[r], k=k)  # type: ignore[attr-defined]
                break
            except RuntimeError:  # too few reachable live elements for k (after deletions): ask fewer
                if k <= 1:
                    raise
                k = max(1, k // 2)
        c = label_pos[lab.astype(np.int64)]
        c[c == r[:, None]] = -1
        sims = _exact_sims(x, first, r, c)
        order = np.lexsort((np.where(c >= 0, c, len(first)), -sims), axis=1)[:, :m]
        top_i, top_s = np.take_along_axis(c, order, axis=1), np.take_along_axis(sims, order, axis=1)
        out_i[s:s + len(c), :top_i.shape[1]] = np.where(np.isfinite(top_s), top_i, -1)
        out_s[s:s + len(c), :top_s.shape[1]] = top_s
    return out_i, out_s


def _merge(index: np.ndarray, sim: np.ndarray, owner: np.ndarray, nb: np.ndarray, s: np.ndarray) -> None:
    """Merge the entries (owner, neighbour nb, similarity s) into the owners' lists in place (best m kept)."""
    if not len(owner):
        return
    m = index.shape[1]
    own = np.unique(owner)
    o = np.concatenate([np.repeat(own, m), owner])
    n_ = np.concatenate([index[own].ravel(), nb])
    v = np.concatenate([sim[own].ravel(), s])
    ok = n_ >= 0
    o, n_, v = o[ok], n_[ok], v[ok]
    order = np.lexsort((n_, -v, o))
    o, n_, v = o[order], n_[order], v[order]
    rank = np.arange(len(o)) - np.searchsorted(o, o)
    take = rank < m
    index[own], sim[own] = -1, -np.inf
    index[o[take], rank[take]], sim[o[take], rank[take]] = n_[take], v[take]


def approximate_table(x: np.ndarray, cid: np.ndarray, m: int = TABLE_M, memo: NeighbourTable | None = None,
                      state: AnnState | None = None, seed: int = 0) -> tuple[NeighbourTable, np.ndarray, AnnState]:
    """The approximate :class:`NeighbourTable` of the rows of ``x`` (N×D, L2-normalised; rows of one content id
    equal), extending ``state`` / ``memo`` (what the previous scan kept, see the module doc) when given.

    Returns (table over the distinct contents in first-row order, N ints: each row's content, the state to keep).
    """
    x = np.asarray(x, dtype=np.float32)
    ucid, first, row_content = distinct_contents(cid)
    u = len(first)
    m = min(m, max(u - 1, 0))
    fresh = state is None or state.mean.shape[0] != x.shape[1] or not len(state.blob)
    if fresh:
        mean, basis = _fit_projection(x, first, seed)
        z = _project(x, first, mean, basis)
        index = build_index(z, seed)
        labels, label_pos, new = ucid, np.arange(u), np.ones(u, bool)
        memo = None
    else:
        assert state is not None
        mean, basis = state.mean, state.basis
        at = lookup(state.labels, ucid)  # graph label of each current content (-1: new)
        new = at < 0
        n_old = len(state.labels)
        index = _load(state.blob, basis.shape[1] or x.shape[1], n_old + int(new.sum()))
        index.set_num_threads(n_cpus())
        gone = np.asarray(state.alive, bool).copy()
        gone[at[~new]] = False
        for lab in np.flatnonzero(gone):
            index.mark_deleted(int(lab))
        z = _project(x, first, mean, basis)
        if new.any():
            index.add_items(z[new], n_old + np.arange(int(new.sum())))
        labels = np.vstack([state.labels, ucid[new]])
        label_pos = np.full(len(labels), -1, np.int64)
        label_pos[at[~new]] = np.flatnonzero(~new)
        label_pos[n_old:] = np.flatnonzero(new)
    table_i = np.full((u, m), -1, np.int64)
    table_s = np.full((u, m), -np.inf, np.float32)
    kept, _ = reuse_lists(memo, ucid, table_i, table_s, skip=new)  # new to the graph: searched below
    todo = np.flatnonzero(~kept)
    if m and len(todo):
        table_i[todo], table_s[todo] = _query(index, z, todo, x, first, label_pos, m, u, basis.shape[1] > 0)
    if kept.any() and new.any() and m:  # each new content enters the kept lists of the contents it found
        nr = np.flatnonzero(new)
        li, ls = table_i[nr], table_s[nr]
        ok = (li >= 0) & kept[np.clip(li, 0, None)]
        _merge(table_i, table_s, li[ok], np.broadcast_to(nr[:, None], li.shape)[ok], ls[ok])
    alive = label_pos >= 0
    return NeighbourTable(ucid, table_i, table_s), row_content, AnnState(mean, basis, labels, alive, _save(index))
