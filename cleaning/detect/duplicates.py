"""Exact and near duplicates, grouped, with a suggestion which copy to keep.

*Measure*: equal content hash (sha256 of the bytes) for exact copies. For near copies, the candidates
are each image's nearest neighbours in embedding space *and* in coarse pixels (an 8×8 colour
thumbnail: on a 20×20 digit a JPEG re-encode or a 50 % resize moves the embedding past other images of
the same digit, but not the coarse pixels); both come from the neighbour index, never all N×N pairs.
Each candidate pair gets two similarities: the cosine similarity of the embeddings, and a *pixel*
similarity — the best normalised cross-correlation between a 16×16 colour view of one image's 32×32
thumbnail and 81 slightly cropped views (0–10 % off each side) of the other, as it is and mirrored;
or between the two whole views with one turned by ±3, 6 or 9° (:data:`ROTATIONS`); and, when one
image is smaller than 16 px on a side, between both thumbnails averaged down to that size (a 10-px copy
of a 20-px digit holds no finer detail, so the original's finer detail must not count as a difference).
Re-encoding, resizing, brightening, small crops, a horizontal flip and small rotations thus keep it
near 1 (thumbnails of images under 32 px are interpolated, not box-filtered: no invented block edges).
*Threshold*: a pair is a near duplicate when the pixel similarity is at least :data:`PIX_NEAR`, or
at least :data:`PIX_WITH_EMB` with embedding similarity at least :data:`SIM_WITH_PIX` (both agree), or
the embeddings alone are at least :data:`SIM_NEAR`; and it must be *distinctive* — much closer than either image is to its other candidates (ratio
:data:`RATIO_MAX`, see ``_distinctive``), so distinct images of one look-alike class (handwritten
ones, plain T-shirts) are not paired — unless the pixel similarity is at least :data:`PIX_SURE`. A pair whose
pixels are at least :data:`PIX_NEAR` alike may stand out in either space, the pixels or the embeddings: a
brightened copy (its highlights clip, so pixels 0.978 alike) of an apricot among round fruit on white, whose other
candidates are 0.86–0.90 alike in pixels, fails the pixel ratio by a hair but is far closer to its original in
content than to them (the bundled demo's one missed near copy). On the benchmark sets (``bench_neardup.py``,
the detector benchmark's photos) the same pairs; end to end on fashion-MNIST one more true pair (seed 2).
Without thumbnails the perceptual hash (pHash) stands in for the pixel check. Pairs are joined
into groups. Measured on the real-photo and handwritten-digit sets of ``bench/bench_photos.py``.

Cost (``bench/results/scale.md`` §7): the crop search runs on *every* candidate pair, not only on pairs the
whole comparison leaves *undecided* (those whose decision, own similarity or the references it feeds, could
change between the whole views' similarity and the most the crops could add). Cropping ≤ 10 % off a side can
lift two whole views from near 0 to 0.97 on textured images, so no cheap bound marks a pair decided; the
strict bound (the triangle inequality with each image's largest whole-to-crop angle) needs every image's 81
views, which are the cost itself (≈ 0.7 ms per image; the products against partners are small), and still
left the median candidate pair at 0.92 on the 100k benchmark tree. The search is made cheap instead (a view's
correlation is taken before centring and scaling, :func:`.pixelmatch._raw_views`; the mirrored whole view is the
whole view flipped), and it runs once per pair of *contents*: the candidates come from one neighbour table per
space — exact up to :data:`cleaning.detect.index.EXACT_MAX` rows (:mod:`.memo`), from a kept HNSW index on the
embeddings' principal components re-ranked exactly above it (:mod:`.ann`) — and a pair's pixel similarity is looked
up in what the previous scan kept (``memo``), so a rescan after images were added searches and compares only what
involves a new image; the decision (thresholds and distinctiveness references) is then made over all pairs as before.
At 100,000 images the step's own arithmetic was cut without changing a pair (§14b: the same 3,034 pairs and groups on
the same candidate tables, pixel similarities within 2.4e-7 above 0.5): the whole and turned views as sparse maps
(4–12 taps per view pixel, not dense 256×1024 products), the crop views 16 images at a time (in cache), and the
re-ranking's exact similarities one content at a time (bitwise the same).

Why not the embedding alone: a classification network's pooled features are made to ignore *which*
photo it is (a brightened or cropped copy was not the nearest image of its original 28 % of the time).

In each group one copy is kept — the one whose label the evidence supports (when the copies are
labelled differently: a *conflict*), then the one in the preferred split, then the largest — and
every other copy becomes one row pointing at it (``related_item_id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..groups import join_groups, make_groups
from . import index as _index
from . import issues_frame
from .ann import approximate_table
from .memo import AnnState, NeighbourTable, PairMemo, ScanMemo, content_ids, neighbour_table, table_neighbours
from .pixelmatch import (  # noqa: F401  (THUMB_SIDE, VIEW_SIDE, compute_thumbnail: re-exported for callers)
    PAIR_BLOCK,
    THUMB_SIDE,
    VIEW_SIDE,
    coarse_descriptors,
    compute_pixel_similarity,
    compute_thumbnail,
    low_res_similarity,
)

#: Pixel similarity from which two images are near duplicates on the pixels alone ...
PIX_NEAR = 0.97
#: ... or this pixel similarity together with embedding similarity SIM_WITH_PIX.
PIX_WITH_EMB = 0.85
SIM_WITH_PIX = 0.8
#: Embedding similarity from which two images are near duplicates on the embedding alone.
SIM_NEAR = 0.97
#: A pair's pixel distance (1 − similarity) must be at most this share of either image's typical
#: distance to its other candidates (distinctiveness, see ``_distinctive``). 0.15 (was 0.25): on
#: handwritten digits 0.25 paired distinct images of the same digit (pair precision 0.63 → 0.96), on
#: photos both give the same pairs (``bench/results/photos.md``).
RATIO_MAX = 0.15
#: Pixel similarity so high that the pair needs no distinctiveness test (keeps groups of many copies,
#: whose members are each other's close candidates, together).
PIX_SURE = 0.995
#: Without thumbnails: pHash Hamming distance (of 64 bits) that, with SIM_WITH_PIX, makes a pair.
PHASH_NEAR = 8
#: Neighbours examined per image, and the least embedding similarity of a candidate pair.
K_DUP = 8
SIM_CANDIDATE = 0.5
#: Nearest neighbours per image in coarse pixels (:func:`coarse_descriptors`), also candidates.
K_PIX = 4

SEVERITY = {("duplicate", False): 0.7, ("near_duplicate", False): 0.55,
            ("duplicate", True): 0.95, ("near_duplicate", True): 0.9}


@dataclass(frozen=True)
class DuplicateGroups:
    """``group`` N ints (equal = copies of each other; singletons have their own id), ``pairs`` the
    near-duplicate pairs found (i, j, embedding similarity, pixel similarity or NaN; i < j)."""

    group: np.ndarray
    pairs: list[tuple[int, int, float, float]]
    memo: ScanMemo | None = None  # what the next scan may reuse (:mod:`.memo`)

    def members(self) -> list[np.ndarray]:
        """Index arrays of the groups with at least two members."""
        ids, counts = np.unique(self.group, return_counts=True)
        return [np.flatnonzero(self.group == g) for g in ids[counts > 1]]


def phash_distance(a: str, b: str) -> int:
    """Hamming distance of two hex pHash strings (64 when either is missing)."""
    if not a or not b or len(a) != len(b):
        return 64
    return int(bin(int(a, 16) ^ int(b, 16)).count("1"))


def _distinctive(pairs: list[tuple[int, int]], dist: np.ndarray, n: int) -> np.ndarray:
    """Per pair: is it much closer than either image is to its other candidates?

    The reference of an image is the median distance to its *other* candidates (the data set's
    median candidate distance when it has none); a pair passes when its distance is at most
    :data:`RATIO_MAX` times the smaller reference. Look-alike classes (plain T-shirts, sneakers)
    have many equally close candidates and fail; a real copy stands out.
    """
    if not len(pairs):
        return np.zeros(0, dtype=bool)
    p = np.asarray(pairs, dtype=np.int64)
    fallback = float(np.median(dist))
    side = np.concatenate([p[:, 0], p[:, 1]])
    d2 = np.concatenate([dist, dist])
    pair_of = np.concatenate([np.arange(len(p)), np.arange(len(p))])
    order = np.lexsort((d2, side))  # by image, then by distance
    side, d2, pair_of = side[order], d2[order], pair_of[order]
    start = np.searchsorted(side, side)  # where each image's sorted distances begin
    m = np.bincount(side, minlength=n)[side]  # how many candidates that image has
    k = np.arange(len(side)) - start  # this pair's rank among them
    # median of the other m − 1 distances: the sorted list without entry k
    def other(j: np.ndarray) -> np.ndarray:
        return d2[np.minimum(start + j + (j >= k), len(d2) - 1)]
    med = np.where(m > 1, 0.5 * (other((m - 2) // 2) + other((m - 1) // 2)), fallback)
    ref = np.full(len(p), np.inf)
    np.minimum.at(ref, pair_of, med)
    return dist <= RATIO_MAX * np.maximum(ref, 1e-6)


def compute_duplicate_groups(embeddings: np.ndarray, sha256: Sequence[str], phash: Sequence[str],
                             thumbs: np.ndarray | None = None, k: int = K_DUP,
                             sizes: np.ndarray | None = None, memo: ScanMemo | None = None) -> DuplicateGroups:
    """Group exact copies (equal sha256) and near copies (see the module doc).

    Args:
        embeddings: N×D L2-normalised (all-zero rows — images without an embedding — join by sha256 only).
        sha256, phash: N hex strings.
        thumbs: N×32×32×3 uint8 from :func:`compute_thumbnail` (None: use pHash instead).
        sizes: N×2 (width, height) of the images: pairs with an image smaller than VIEW_SIDE are also
            compared at its size (:func:`low_res_similarity`); None: every image counts as large.
        memo: what an earlier scan of (mostly) the same contents kept (:mod:`.memo`): its neighbour tables
            and its candidate pairs' pixel similarities are reused where they are still exact; the result's
            ``memo`` is what this call's would be for the next (above ``EXACT_MAX`` rows the tables come from a
            kept HNSW index that the next call extends, :mod:`.ann`).
    """
    x = np.asarray(embeddings, dtype=np.float32)
    n = len(x)
    exact = make_groups(list(sha256))
    keys = np.zeros((0, 2), dtype=np.int64)
    sims = np.zeros(0, dtype=np.float32)
    memo = memo or ScanMemo()
    cid = content_ids(sha256)
    emb_t = coarse_t = rc = ann_e = ann_c = None
    if n > 1:
        has_emb = np.linalg.norm(x, axis=1) > 0.5
        coarse = coarse_descriptors(np.asarray(thumbs)) if thumbs is not None else None
        # one table per space, kept for the label and off-topic checks and the next scan
        emb_t, rc, ann_e = _table(x, cid, memo.emb, memo.ann_emb)
        found = [table_neighbours(x, emb_t, rc, k, exact)]
        if coarse is not None:
            coarse_t, _, ann_c = _table(coarse, cid, memo.coarse, memo.ann_coarse)
            found.append(table_neighbours(coarse, coarse_t, rc, K_PIX, exact))
        code = []  # each candidate pair once, as a·n + b with a < b (arrays: no Python tuple per pair)
        for nb in found:
            i, j = np.nonzero(nb.valid)
            o = nb.index[i, j].astype(np.int64)
            code.append(np.minimum(i, o) * n + np.maximum(i, o))
        code = np.unique(np.concatenate(code))
        keys = np.column_stack([code // n, code % n])
        keys = keys[has_emb[keys[:, 0]] & has_emb[keys[:, 1]] & (keys[:, 0] != keys[:, 1])]
        sims = np.concatenate([np.einsum("rf,rf->r", x[keys[s:s + PAIR_BLOCK, 0]], x[keys[s:s + PAIR_BLOCK, 1]])
                               for s in range(0, len(keys), PAIR_BLOCK)] or [sims])
        keep = sims >= SIM_CANDIDATE
        keys, sims = keys[keep], sims[keep]
    pair_memo = None
    if thumbs is not None:
        pa, pb = cid[keys[:, 0]], cid[keys[:, 1]]
        at = memo.pairs.find(pa, pb) if memo.pairs is not None else np.full(len(keys), -1, np.int64)
        pix = np.where(at >= 0, memo.pairs.pix[np.clip(at, 0, None)] if memo.pairs is not None else 0, 0)
        pix = pix.astype(np.float32)
        miss = np.flatnonzero(at < 0)  # pairs not compared before: the crop search runs on these only
        got = compute_pixel_similarity(np.asarray(thumbs), keys[miss])
        if sizes is not None and len(miss):
            low = low_res_similarity(np.asarray(thumbs), keys[miss], np.asarray(sizes, dtype=np.int64))
            got = np.where(np.isnan(low), got, np.fmax(got, low))
        pix[miss] = got
        pair_memo = PairMemo(pa, pb, pix)
        near = (pix >= PIX_NEAR) | ((pix >= PIX_WITH_EMB) & (sims >= SIM_WITH_PIX)) | (sims >= SIM_NEAR)
        stands_out = _distinctive(keys, 1.0 - pix.astype(np.float64), n)  # in pixels ...
        stands_out |= (pix >= PIX_NEAR) & _distinctive(keys, 1.0 - sims.astype(np.float64), n)  # ... or content
        near &= stands_out | (pix >= PIX_SURE)
    else:
        pix = np.full(len(keys), np.nan)
        ph = np.array([phash_distance(phash[a], phash[b]) for a, b in keys])
        near = ((ph <= PHASH_NEAR) & (sims >= SIM_WITH_PIX)) | (sims >= SIM_NEAR)
    pairs = [(int(a), int(b), float(s), float(q)) for (a, b), s, q in zip(keys[near], sims[near], pix[near])]
    kept = ScanMemo(emb_t, coarse_t, pair_memo, rc, ann_e, ann_c)
    return DuplicateGroups(_union(n, exact, [(a, b) for a, b, _, _ in pairs]), pairs, kept)


def _table(x: np.ndarray, cid: np.ndarray, kept: NeighbourTable | None,
           state: AnnState | None) -> tuple[NeighbourTable, np.ndarray, AnnState | None]:
    """The neighbour table of ``x``: exact up to EXACT_MAX rows, from the kept HNSW index above (:mod:`.ann`).
    A kept table is reused only by the search that made it (an approximate one is not exact)."""
    if len(x) <= _index.EXACT_MAX:
        t, rc = neighbour_table(x, cid, memo=kept if state is None else None)
        return t, rc, None
    return approximate_table(x, cid, memo=kept if state is not None else None, state=state)


def _union(n: int, base: np.ndarray, edges: list[tuple[int, int]]) -> np.ndarray:
    return join_groups(n, [[int(g) for g in base]], edges)


def choose_keeper(idx: np.ndarray, paths: Sequence[str], labels: Sequence[str], pixels: np.ndarray,
                  support: np.ndarray | None, splits: Sequence[str] | None,
                  prefer_split: str | None) -> tuple[int, str]:
    """The member of ``idx`` to keep and why (in words).

    Order: the label best supported by the evidence (``support``: per image the probability of its
    own label), then ``prefer_split``, then most pixels, then the shortest path (``x.jpg`` over
    ``x (1).jpg``), then the first in sort order.
    """
    labs = {labels[i] for i in idx}
    conflict = len(labs) > 1
    def rank(i: int) -> tuple[float, int, int, int]:
        sup = float(support[i]) if (support is not None and conflict) else 0.0
        split_ok = int(splits is not None and prefer_split is not None and splits[i] == prefer_split)
        return (-sup, -split_ok, -int(pixels[i]), len(paths[i]))
    best = min((int(i) for i in idx), key=lambda i: (rank(i), paths[i]))
    if conflict and support is not None:
        why = f"its label *{labels[best]}* is the best supported ({float(support[best]):.2f})"
    elif splits is not None and prefer_split is not None and splits[best] == prefer_split:
        why = f"it is in *{prefer_split}*"
    elif len({int(pixels[i]) for i in idx}) > 1:
        why = "it has the most pixels"
    else:
        why = "the simplest name"
    return best, why


def find_duplicates(item_ids: Sequence[str], paths: Sequence[str], labels: Sequence[str],
                    groups: DuplicateGroups, sha256: Sequence[str], width: Sequence[int],
                    height: Sequence[int], support: np.ndarray | None = None,
                    splits: Sequence[str] | None = None, prefer_split: str | None = "train") -> pd.DataFrame:
    """One row per copy that should go (``duplicate`` = same bytes, ``near_duplicate`` otherwise).

    Copies labelled differently, or spread over different ``splits`` (e.g. train/valid), are
    *conflict groups*: higher severity, and the reason says which label / split the keeper has.
    ``related_item_id`` is the copy to keep.
    """
    pixels = np.asarray(width, dtype=np.int64) * np.asarray(height, dtype=np.int64)
    pair_info = {(a, b): (s, d) for a, b, s, d in groups.pairs}
    rows = []
    for idx in groups.members():
        keep, why = choose_keeper(idx, paths, labels, pixels, support, splits, prefer_split)
        labs = sorted({labels[i] for i in idx})
        spl = sorted({splits[i] for i in idx}) if splits is not None else []
        conflict = len(labs) > 1 or len(spl) > 1
        for i in (int(j) for j in idx if j != keep):
            exact = sha256[i] == sha256[keep]
            kind = "duplicate" if exact else "near_duplicate"
            if exact:
                what = f"byte-identical copy of {paths[keep]}"
            else:
                s, q = pair_info.get((min(i, keep), max(i, keep)), (float("nan"), float("nan")))
                if np.isnan(s):
                    what = f"near copy of {paths[keep]} (one of a group of {len(idx)} copies)"
                else:
                    what = (f"near copy of {paths[keep]} (pixels {q:.2f} alike after cropping, " if not np.isnan(q)
                            else f"near copy of {paths[keep]} (") + f"content similarity {s:.2f})"
            parts = [what]
            if len(labs) > 1:
                parts.append("conflict: the copies are labelled " + ", ".join(f"*{v}*" for v in labs))
            if len(spl) > 1:
                parts.append("conflict: the copies are in " + " and ".join(spl))
            parts.append(f"keep {paths[keep]} ({why}) and delete this one")
            rows.append({"item_id": item_ids[i], "issue": kind, "severity": SEVERITY[(kind, conflict)],
                         "related_item_id": item_ids[keep], "reason": "; ".join(parts)})
    return issues_frame(rows)
