"""What a scan keeps for the next one, so a rescan after images were added compares only what is new.

Two results of the detectors depend only on the *contents* of the images they involve, not on the rest of
the data set, and cost most of a scan's detector time (``bench/results/scale.md`` §10):

* **Neighbour table** (:class:`NeighbourTable`): for each distinct content (sha256) its :data:`TABLE_M`
  nearest *other* contents by cosine similarity, exact (blocked matrix products). Every whole-set neighbour
  list the detectors ask for (the near-duplicate candidates, the label votes, the off-topic check's wide
  list: each with its own ``k`` and its own groups of rows that may not vouch for each other) is read off
  this one table (:func:`table_neighbours`) instead of one N×N search each. A row whose list runs short
  after its group is left out (a group of more than ``TABLE_M − k`` contents) is searched exactly on its own.
  A rescan keeps the table of the previous one: a kept content's top-M among the old contents is still its
  top-M among those left when none of its listed contents was removed (else it is searched again), so
  merging it with its similarities to the *new* contents — one new × all product — gives exactly the
  table a search from nothing would give. Ties are broken by row order (the first row of a content), so
  the result does not depend on which rows were searched when.
* **Pixel similarities of candidate pairs** (:class:`PairMemo`): the near-duplicate check's crop search
  (:func:`.pixelmatch.compute_pixel_similarity`) is a function of the two thumbnails and sizes, i.e. of
  the two contents (in the pair's row order); a rescan looks each candidate pair up and compares only
  the pairs not seen before. The decision rule of a pair (its distinctiveness references: the median
  pixel distance of each image to its *other* candidates) is recomputed over all pairs from these values,
  so it stays what a full recomputation would decide.

Contents are identified by the first 128 bits of their sha256 (:func:`content_ids`). The caller (the
scan) keys the kept arrays by the embedding model and :data:`MEMO_VERSION`; nothing here touches disk.
Up to :data:`cleaning.detect.index.EXACT_MAX` rows the tables are exact (:func:`neighbour_table`); above it
they come from a kept HNSW index that a rescan extends with the new contents (:mod:`.ann`), exact only up to
that index's recall.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import Neighbours
from .index import top_k

#: Bump when a kept result would no longer equal a fresh one (thumbnails, crop search, candidate rule).
MEMO_VERSION = 1
#: Contents kept per content in the neighbour table: the widest request (40, the off-topic check's) plus room
#: for the members of an image's own group that are left out.
TABLE_M = 48


def content_ids(sha256: Sequence[str]) -> np.ndarray:
    """N×2 uint64: the first 128 bits of each hex sha256 (of the string itself when it is not one)."""
    out = np.empty((len(sha256), 2), dtype=np.uint64)
    for i, s in enumerate(sha256):
        s = str(s)
        h = s[:32] if len(s) == 64 and all(c in "0123456789abcdefABCDEF" for c in s[:32]) \
            else hashlib.sha256(s.encode()).hexdigest()[:32]
        out[i] = (int(h[:16], 16), int(h[16:], 16))
    return out


def _hash(ids: np.ndarray) -> np.ndarray:
    """One uint64 per row of an R×C uint64 matrix (not unique: every lookup verifies the full ids)."""
    h = np.zeros(len(ids), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in range(ids.shape[1]):
            h = (h ^ ids[:, c]) * np.uint64(0x9E3779B97F4A7C15)
    return h


def lookup(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Position in ``keys`` (R×C uint64, distinct rows) of each row of ``queries`` (Q×C), -1 where absent."""
    out = np.full(len(queries), -1, dtype=np.int64)
    if not len(keys) or not len(queries):
        return out
    hk, hq = _hash(keys), _hash(queries)
    order = np.argsort(hk, kind="stable")
    hs = hk[order]
    at = np.minimum(np.searchsorted(hs, hq), len(hs) - 1)
    pos = order[at]
    ok = (hs[at] == hq) & (keys[pos] == queries).all(axis=1)
    out[ok] = pos[ok]
    return out  # a hash shared by two kept rows may miss the second: then it is computed, never wrong


@dataclass(frozen=True)
class PairMemo:
    """Pixel similarity of content pairs: ``a``, ``b`` P×2 uint64 content ids (the pair's lower row first),
    ``pix`` P float32."""

    a: np.ndarray
    b: np.ndarray
    pix: np.ndarray

    def find(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Position of each (a, b) in the memo, -1 where it was not compared before."""
        return lookup(np.hstack([self.a, self.b]), np.hstack([a, b]))


@dataclass(frozen=True)
class NeighbourTable:
    """``content`` U×2 uint64 ids; ``index`` U×M positions into ``content`` (-1 pad), ``sim`` U×M float32,
    sorted by similarity (descending), ties by position; ``full``: U bools, the list holds the M best of
    more than M others (else it holds every other content)."""

    content: np.ndarray
    index: np.ndarray
    sim: np.ndarray

    def full(self) -> np.ndarray:
        return (self.index >= 0).all(axis=1) & (len(self.content) - 1 > self.index.shape[1])


def distinct_contents(cid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U×2 distinct content ids in first-row order, U first rows, N ints: each row's content position)."""
    _, first, inv = np.unique(cid, axis=0, return_index=True, return_inverse=True)
    inv = np.asarray(inv).reshape(-1)
    rank = np.argsort(np.argsort(first, kind="stable"), kind="stable")  # unique order → first-row order
    first = np.sort(first)
    return cid[first], first, rank[inv]


def reuse_lists(memo: NeighbourTable | None, ucid: np.ndarray, index: np.ndarray, sim: np.ndarray,
                skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Copy into ``index`` / ``sim`` (U×m, current content positions) the kept lists of ``memo`` that are still
    intact: the content is in both, none of its listed contents was removed, and it is not in ``skip`` (U bools).
    Returns (U bools: rows filled, U bools: contents the memo does not hold). A memo narrower than m is not used."""
    u, m = index.shape
    kept, new = np.zeros(u, dtype=bool), np.ones(u, dtype=bool)
    if memo is None or not m or not len(memo.content) or memo.index.shape[1] < m:
        return kept, new
    at = lookup(memo.content, ucid)  # current content → memo row
    now = np.full(len(memo.content), -1, dtype=np.int64)  # memo row → current content
    now[at[at >= 0]] = np.flatnonzero(at >= 0)
    new = at < 0
    old = np.flatnonzero(~new if skip is None else ~new & ~skip)
    li, ls = memo.index[at[old], :m], memo.sim[at[old], :m]
    mapped = np.where(li >= 0, now[np.clip(li, 0, None)], -1)
    intact = ((li < 0) | (mapped >= 0)).all(axis=1)  # none of its listed contents was removed
    keep = old[intact]
    index[keep], sim[keep] = mapped[intact], np.where(mapped[intact] >= 0, ls[intact], -np.inf)
    kept[keep] = True
    return kept, new


def neighbour_table(x: np.ndarray, cid: np.ndarray, m: int = TABLE_M, memo: NeighbourTable | None = None,
                    block: int = 1024) -> tuple[NeighbourTable, np.ndarray]:
    """The exact :class:`NeighbourTable` of the rows of ``x`` (N×D, L2-normalised; rows of one content id
    must be equal), reusing ``memo`` (an earlier table of the same vectors) where it is still exact.

    Returns (table over the distinct contents in first-row order, N ints: each row's content position).
    """
    x = np.asarray(x, dtype=np.float32)
    ucid, first, row_content = distinct_contents(cid)
    ux, u = x[first], len(first)
    m = min(m, max(u - 1, 0))
    index = np.full((u, m), -1, dtype=np.int64)
    sim = np.full((u, m), -np.inf, dtype=np.float32)
    kept_mask, new = reuse_lists(memo, ucid, index, sim)
    # a short (not full) memo list held every other old content: still exact when intact
    todo = ~kept_mask
    rows = np.flatnonzero(todo)
    new_rows = np.flatnonzero(new)
    kept = np.flatnonzero(~todo)
    to_new = np.full((len(kept), len(new_rows)), -np.inf, dtype=np.float32)  # kept contents × new contents
    col = np.full(u, -1, dtype=np.int64)
    col[new_rows] = np.arange(len(new_rows))
    for s in range(0, len(rows), block):
        r = rows[s:s + block]
        prod = ux[r] @ ux.T
        prod[np.arange(len(r)), r] = -np.inf
        index[r], sim[r] = top_k(prod, m)
        nr = col[r] >= 0
        if len(kept) and nr.any():
            to_new[:, col[r[nr]]] = prod[nr][:, kept].T
    if len(kept) and len(new_rows) and m:  # merge each kept list with its similarities to the new contents
        best, best_sim = top_k(to_new, m)  # the m nearest new contents of each kept one (ties: lower first)
        ci = np.hstack([index[kept], np.where(best >= 0, new_rows[np.clip(best, 0, None)], -1)])
        cs = np.hstack([sim[kept], best_sim])
        cs = np.where(ci >= 0, cs, -np.inf)
        order = np.lexsort((np.where(ci >= 0, ci, u), -cs), axis=1)[:, :m]
        index[kept] = np.take_along_axis(ci, order, axis=1)
        sim[kept] = np.take_along_axis(cs, order, axis=1)
        index[kept] = np.where(np.isfinite(sim[kept]), index[kept], -1)
    return NeighbourTable(ucid, index, sim), row_content


def table_neighbours(x: np.ndarray, table: NeighbourTable, row_content: np.ndarray, k: int,
                     groups: np.ndarray | None = None) -> Neighbours:
    """The ``k`` nearest other rows of each row (rows of its own group left out), read off ``table``;
    equal to the exact search (:func:`cleaning.detect.compute_neighbours`) with ties broken by row order when
    the table is exact (:func:`neighbour_table`); up to its recall when it is approximate (:mod:`.ann`).

    Rows of one content are one group at least (``groups`` must join equal contents, as the scan's do)."""
    n = len(row_content)
    k = max(0, min(k, n - 1))
    g = np.arange(n) if groups is None else np.asarray(groups)
    if k == 0:
        return Neighbours(np.full((n, 0), -1, np.int64), np.zeros((n, 0), np.float32))
    u = len(table.content)
    rows_of = np.argsort(row_content, kind="stable")  # rows grouped by content, ascending within
    cnt = np.bincount(row_content, minlength=u)
    start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    li = table.index
    c = np.where(li >= 0, cnt[np.clip(li, 0, None)], 0)  # rows behind each listed content
    tot = c.sum(axis=1)
    width = max(int(tot.max()) if u else 0, 1)
    rep = np.repeat(np.arange(li.size), c.ravel())  # one entry per (content, listed content, row of it)
    first_of = np.repeat(np.cumsum(c.ravel()) - c.ravel(), c.ravel())
    within = np.arange(len(rep)) - first_of
    exp_rows = rows_of[start[li.ravel()[rep]] + within]
    owner = rep // max(li.shape[1], 1)
    pos = np.arange(len(rep)) - np.repeat(np.cumsum(tot) - tot, tot)
    e_idx = np.full((u, width), -1, dtype=np.int64)
    e_sim = np.full((u, width), -np.inf, dtype=np.float32)
    e_idx[owner, pos], e_sim[owner, pos] = exp_rows, table.sim.ravel()[rep]
    ri, rs = e_idx[row_content], e_sim[row_content]  # N × width
    ok = (ri >= 0) & (g[np.clip(ri, 0, None)] != g[:, None])
    take = ok & (np.cumsum(ok, axis=1) <= k)
    order = np.argsort(~take, axis=1, kind="stable")[:, :k]
    index = np.where(np.take_along_axis(take, order, axis=1), np.take_along_axis(ri, order, axis=1), -1)
    sim = np.where(index >= 0, np.take_along_axis(rs, order, axis=1), -np.inf).astype(np.float32)
    short = np.flatnonzero((take.sum(axis=1) < k) & table.full()[row_content])
    if len(short):  # its group hid too many listed contents: search this row exactly
        xs = np.asarray(x, dtype=np.float32)
        step = max(1, min(1024, (1 << 24) // max(n, 1)))  # ≤ 64 MB of products at a time
        for s in range(0, len(short), step):
            r = short[s:s + step]
            prod = xs[r] @ xs.T
            prod[g[r][:, None] == g[None, :]] = -np.inf
            index[r], sim[r] = top_k(prod, k)
    return Neighbours(index, sim)


@dataclass(frozen=True)
class AnnState:
    """A kept HNSW index (:mod:`.ann`): ``mean`` D and ``basis`` D×d float32 (d = 0: no projection), ``labels`` L×2 uint64 content id
    of each graph label, ``alive`` L bools (False: marked deleted), ``blob`` the saved hnswlib index (uint8)."""

    mean: np.ndarray
    basis: np.ndarray
    labels: np.ndarray
    alive: np.ndarray
    blob: np.ndarray

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}_{k}": getattr(self, k) for k in ("mean", "basis", "labels", "alive", "blob")}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> AnnState | None:
        if f"{prefix}_blob" not in arrays:
            return None
        return cls(*(np.asarray(arrays[f"{prefix}_{k}"]) for k in ("mean", "basis", "labels", "alive", "blob")))


@dataclass(frozen=True)
class ScanMemo:
    """What one scan keeps for the next (None: nothing kept): the neighbour tables of the embeddings and of
    the coarse pixel descriptors, and the candidate pairs' pixel similarities. ``row_content``: each row's
    position in the tables (set on a result, not kept)."""

    emb: NeighbourTable | None = None
    coarse: NeighbourTable | None = None
    pairs: PairMemo | None = None
    row_content: np.ndarray | None = None
    ann_emb: AnnState | None = None  # above EXACT_MAX: the kept HNSW indexes (:mod:`.ann`)
    ann_coarse: AnnState | None = None

    def to_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in ("ann_emb", "ann_coarse"):
            st = getattr(self, name)
            if st is not None:
                out.update(st.to_arrays(name))
        for name in ("emb", "coarse"):
            t = getattr(self, name)
            if t is not None:
                out.update({f"{name}_content": t.content, f"{name}_index": t.index.astype(np.int32),
                            f"{name}_sim": t.sim})
        if self.pairs is not None:
            out.update(pairs_a=self.pairs.a, pairs_b=self.pairs.b, pairs_pix=self.pairs.pix)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray] | None) -> ScanMemo:
        if not arrays:
            return cls()
        tables = {name: NeighbourTable(arrays[f"{name}_content"], arrays[f"{name}_index"].astype(np.int64),
                                       arrays[f"{name}_sim"])
                  for name in ("emb", "coarse") if f"{name}_content" in arrays}
        pairs = PairMemo(arrays["pairs_a"], arrays["pairs_b"], arrays["pairs_pix"]) if "pairs_a" in arrays else None
        return cls(tables.get("emb"), tables.get("coarse"), pairs, None,
                   AnnState.from_arrays(arrays, "ann_emb"), AnnState.from_arrays(arrays, "ann_coarse"))
