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
ones, plain T-shirts) are not paired — unless the pixel similarity is at least :data:`PIX_SURE`.
Without thumbnails the perceptual hash (pHash) stands in for the pixel check. Pairs are joined
into groups. Measured on the real-photo and handwritten-digit sets of ``bench/bench_photos.py``.

Why not the embedding alone: a classification network's pooled features are made to ignore *which*
photo it is (a brightened or cropped copy was not the nearest image of its original 28 % of the time).

In each group one copy is kept — the one whose label the evidence supports (when the copies are
labelled differently: a *conflict*), then the one in the preferred split, then the largest — and
every other copy becomes one row pointing at it (``related_item_id``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from ..groups import join_groups, make_groups
from . import compute_neighbours, issues_frame

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
#: Nearest neighbours per image in coarse pixels (:func:`_coarse`), also candidates.
K_PIX = 4
#: Thumbnail side (px) and the side of the compared views; crop fractions tried per side.
THUMB_SIDE = 32
VIEW_SIDE = 16
CROPS = (0.0, 0.05, 0.1)

SEVERITY = {("duplicate", False): 0.7, ("near_duplicate", False): 0.55,
            ("duplicate", True): 0.95, ("near_duplicate", True): 0.9}


@dataclass(frozen=True)
class DuplicateGroups:
    """``group`` N ints (equal = copies of each other; singletons have their own id), ``pairs`` the
    near-duplicate pairs found (i, j, embedding similarity, pixel similarity or NaN; i < j)."""

    group: np.ndarray
    pairs: list[tuple[int, int, float, float]]

    def members(self) -> list[np.ndarray]:
        """Index arrays of the groups with at least two members."""
        ids, counts = np.unique(self.group, return_counts=True)
        return [np.flatnonzero(self.group == g) for g in ids[counts > 1]]


def phash_distance(a: str, b: str) -> int:
    """Hamming distance of two hex pHash strings (64 when either is missing)."""
    if not a or not b or len(a) != len(b):
        return 64
    return int(bin(int(a, 16) ^ int(b, 16)).count("1"))


def compute_thumbnail(im: Image.Image) -> np.ndarray:
    """THUMB_SIDE×THUMB_SIDE×3 uint8 thumbnail of an RGB image (aspect ratio squashed).

    Shrinking averages boxes of pixels; an image smaller than the thumbnail on a side is interpolated
    (bilinear) instead, because a box filter enlarges each pixel into a block whose edges depend on the
    size: a 10-pixel and a 20-pixel version of one picture would then differ in invented edges.
    """
    rgb = im.convert("RGB")
    small = min(rgb.size) < THUMB_SIDE
    how = Image.Resampling.BILINEAR if small else Image.Resampling.BOX
    return np.asarray(rgb.resize((THUMB_SIDE, THUMB_SIDE), how), dtype=np.uint8)


def _area_matrix(lo: float, hi: float, n_in: int = THUMB_SIDE, n_out: int = VIEW_SIDE) -> np.ndarray:
    """n_out×n_in weights averaging the pixel span [lo, hi) into n_out equal cells (box filter)."""
    edges = lo + (hi - lo) * np.arange(n_out + 1) / n_out
    left, right = edges[:-1, None], edges[1:, None]
    px = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(right, px + 1) - np.maximum(left, px), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


_SPANS = np.stack([_area_matrix(a * THUMB_SIDE, THUMB_SIDE * (1 - b)) for a in CROPS for b in CROPS])


def _views(thumbs: np.ndarray) -> np.ndarray:
    """M×81×(VIEW_SIDE²·3) unit vectors: every crop (rows × columns) of each thumbnail, per-channel
    mean removed. View 0 is the whole thumbnail.

    Two matrix products (box filter along rows, then along columns), so BLAS does the work; memory
    is M×81×768 float32 (≈ 250 KB per thumbnail): call it on blocks.
    """
    t = np.asarray(thumbs, dtype=np.float32)
    m, s, v_ = len(t), len(_SPANS), VIEW_SIDE
    spans = _SPANS.reshape(s * v_, THUMB_SIDE).astype(np.float32)  # (crop, out row) × in row
    rows = np.matmul(spans, t.reshape(m, THUMB_SIDE, THUMB_SIDE * 3))  # m × (r·y) × (w·c)
    rows = rows.reshape(m, s, v_, THUMB_SIDE, 3).transpose(0, 1, 2, 4, 3)  # m r y c w
    v = np.matmul(rows, spans.T)  # m r y c (s·x)
    v = v.reshape(m, s, v_, 3, s, v_).transpose(0, 1, 4, 2, 5, 3)  # m r s y x c
    v = v.reshape(m, s * s, v_ * v_, 3)
    v -= v.mean(axis=2, keepdims=True)
    v = v.reshape(m, s * s, -1)
    v /= np.maximum(np.linalg.norm(v, axis=2, keepdims=True), 1e-3 * VIEW_SIDE)
    return v


def _whole_views(thumbs: np.ndarray, block: int = 1024) -> np.ndarray:
    """M×(VIEW_SIDE²·3): view 0 (the whole thumbnail) of :func:`_views`, without the 80 crops."""
    out = np.zeros((len(thumbs), VIEW_SIDE * VIEW_SIDE * 3), dtype=np.float32)
    whole = _SPANS[0].astype(np.float32)  # VIEW_SIDE × THUMB_SIDE
    for s in range(0, len(thumbs), block):
        t = np.asarray(thumbs[s:s + block], dtype=np.float32)
        r = np.matmul(whole, t.reshape(len(t), THUMB_SIDE, THUMB_SIDE * 3))  # m y (w·c)
        r = r.reshape(len(t), VIEW_SIDE, THUMB_SIDE, 3).transpose(0, 1, 3, 2)  # m y c w
        v = np.matmul(r, whole.T).transpose(0, 1, 3, 2)  # m y x c
        v = v.reshape(len(t), VIEW_SIDE * VIEW_SIDE, 3)
        v -= v.mean(axis=1, keepdims=True)
        v = v.reshape(len(t), -1)
        out[s:s + len(t)] = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-3 * VIEW_SIDE)
    return out


#: Rotations (degrees) tried between two whole thumbnails, besides none: a re-upload turned a little.
ROTATIONS = (-9.0, -6.0, -3.0, 3.0, 6.0, 9.0)
#: Pairs compared per step of the whole-against-turned comparison (2 × 768 floats each: ≈ 200 MB a step).
PAIR_BLOCK = 1 << 15
#: Side of the coarse pixel descriptor whose nearest neighbours are candidates too.
COARSE_SIDE = 8


def _rotation_taps(side: int, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear taps turning a side×side image by ``degrees`` about its centre: (side²×4 source pixel
    indices, side²×4 weights); pixels from outside the image take the nearest border pixel."""
    c = (side - 1) / 2.0
    a = np.deg2rad(degrees)
    yy, xx = (np.mgrid[0:side, 0:side].astype(np.float64) - c).reshape(2, -1)
    sy = np.clip(np.cos(a) * yy - np.sin(a) * xx + c, 0, side - 1)  # where each output pixel comes from
    sx = np.clip(np.sin(a) * yy + np.cos(a) * xx + c, 0, side - 1)
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, side - 1), np.minimum(x0 + 1, side - 1)
    wy, wx = sy - y0, sx - x0
    idx = np.stack([y0 * side + x0, y0 * side + x1, y1 * side + x0, y1 * side + x1], axis=1)
    w = np.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx], axis=1)
    return idx, w.astype(np.float32)


_TAPS = {d: _rotation_taps(THUMB_SIDE, d) for d in ROTATIONS}


def _rotate(thumbs: np.ndarray, deg: float) -> np.ndarray:
    """The M×THUMB_SIDE×THUMB_SIDE×3 thumbnails turned by ``deg`` (one of :data:`ROTATIONS`), float32."""
    m = len(thumbs)
    t = np.asarray(thumbs, dtype=np.float32).reshape(m, -1, 3).transpose(1, 0, 2).reshape(THUMB_SIDE ** 2, -1)
    idx, w = _TAPS[deg]
    out = sum(w[:, k, None] * t[idx[:, k]] for k in range(4))  # pixel rows × (image, channel): row copies
    return out.reshape(THUMB_SIDE, THUMB_SIDE, m, 3).transpose(2, 0, 1, 3)


def _turned_views(thumbs: np.ndarray, block: int = 2048) -> Iterator[np.ndarray]:
    """Per angle of :data:`ROTATIONS`: the M×(VIEW_SIDE²·3) whole views of the thumbnails turned by it.

    One M×F buffer, refilled per angle from blocks of ``block`` images: a float copy of *all* turned
    thumbnails (12 KB per image) is never made.
    """
    out = np.empty((len(thumbs), VIEW_SIDE * VIEW_SIDE * 3), dtype=np.float32)
    for deg in ROTATIONS:
        for s in range(0, len(thumbs), block):
            out[s:s + block] = _whole_views(_rotate(thumbs[s:s + block], deg))
        yield out


def _coarse(thumbs: np.ndarray, block: int = 1024) -> np.ndarray:
    """M×(COARSE_SIDE²·3) unit vectors: each thumbnail box-averaged to COARSE_SIDE², per-channel mean removed.

    Its nearest neighbours are near-copy candidates the embedding misses: on a tiny image (a 20×20
    digit) a JPEG re-encode or a 50 % resize moves the embedding more than the gap to other images of
    the same digit, but barely changes the coarse pixels.
    """
    f = THUMB_SIDE // COARSE_SIDE
    out = np.zeros((len(thumbs), COARSE_SIDE * COARSE_SIDE * 3), dtype=np.float32)
    for s in range(0, len(thumbs), block):
        t = np.asarray(thumbs[s:s + block], dtype=np.float32)
        v = t.reshape(len(t), COARSE_SIDE, f, COARSE_SIDE, f, 3).mean(axis=(2, 4)).reshape(len(t), -1, 3)
        v -= v.mean(axis=1, keepdims=True)
        v = v.reshape(len(t), -1)
        out[s:s + len(t)] = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-3 * COARSE_SIDE)
    return out


def compute_pixel_similarity(thumbs: np.ndarray, pairs: Sequence[tuple[int, int]], block: int = 256) -> np.ndarray:
    """For each pair (i, j) the best correlation of one whole thumbnail, as it is or mirrored left to right,
    with a cropped view of the other, either way round, or of the two whole thumbnails with one turned by
    one of :data:`ROTATIONS`; in [−1, 1] (0 for a blank image).

    Memory: three 768-float vectors per image in a pair (as it is, mirrored, turned by the current
    angle), the 81 views of ``block`` images at a time (≈ 64 MB), and per-pair temporaries for
    :data:`PAIR_BLOCK` pairs at a time: nothing grows with the number of pairs but ``out``.
    """
    out = np.zeros(len(pairs), dtype=np.float32)
    if not len(pairs):
        return out
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    need = np.unique(p)
    t_need = np.asarray(thumbs)[need]
    both = np.stack([_whole_views(t_need), _whole_views(t_need[:, :, ::-1])], axis=1)  # as it is, and mirrored
    whole = both[:, 0]
    pos = np.searchsorted(need, p)  # pair members as rows of ``whole``
    for turned in _turned_views(t_need):  # whole against whole, one turned; pairs in bounded blocks
        for s in range(0, len(p), PAIR_BLOCK):
            a, b = whole[pos[s:s + PAIR_BLOCK, 0]], turned[pos[s:s + PAIR_BLOCK, 1]]
            np.maximum(out[s:s + PAIR_BLOCK], np.einsum("rf,rf->r", a, b), out=out[s:s + PAIR_BLOCK])
    # every (pair, side): the image whose crops are tried, and the other image's whole view
    me = np.concatenate([pos[:, 0], pos[:, 1]])
    other = np.concatenate([pos[:, 1], pos[:, 0]])
    pair_of = np.concatenate([np.arange(len(p)), np.arange(len(p))])
    order = np.argsort(me, kind="stable")
    me, other, pair_of = me[order], other[order], pair_of[order]
    bounds = np.searchsorted(me, np.arange(len(need) + 1))
    for s in range(0, len(need), block):
        views = _views(t_need[s:s + block])  # b × 81 × F
        for i in range(s, min(s + block, len(need))):  # one image's crops against all its partners at once
            lo, hi = bounds[i], bounds[i + 1]
            if lo == hi:
                continue
            partners = both[other[lo:hi]].reshape(-1, both.shape[2])  # 2·partners × F
            best = (views[i - s] @ partners.T).max(axis=0).reshape(-1, 2).max(axis=1)
            np.maximum.at(out, pair_of[lo:hi], best)
    return out


def _shrunk(t: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """M×(sh·sw·3) unit vectors: thumbnails box-averaged to sh×sw, per-channel mean removed."""
    rows, cols = _area_matrix(0, THUMB_SIDE, n_out=sh), _area_matrix(0, THUMB_SIDE, n_out=sw)
    v = np.einsum("yY,mYXc,xX->myxc", rows, np.asarray(t, dtype=np.float64), cols).reshape(len(t), -1, 3)
    v = (v - v.mean(axis=1, keepdims=True)).reshape(len(t), -1)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-3 * VIEW_SIDE)


def _low_res_similarity(thumbs: np.ndarray, pairs: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per pair: correlation of the two thumbnails (one as it is or mirrored) averaged down to the
    smaller image's own size when that is below VIEW_SIDE on a side (NaN for the other pairs).

    A 10-pixel copy of a 20-pixel digit holds no detail finer than 10 pixels: compared at 16 the
    detail only the original has counts as a difference; compared at 10 it does not.
    """
    out = np.full(len(pairs), np.nan, dtype=np.float32)
    h = np.minimum(sizes[pairs[:, 0], 1], sizes[pairs[:, 1], 1])
    w = np.minimum(sizes[pairs[:, 0], 0], sizes[pairs[:, 1], 0])
    small = (np.minimum(h, w) < VIEW_SIDE) & (np.minimum(h, w) >= 2)
    hs, ws = np.minimum(h, VIEW_SIDE), np.minimum(w, VIEW_SIDE)
    for sh, sw in set(zip(hs[small].tolist(), ws[small].tolist())):
        sel = np.flatnonzero(small & (hs == sh) & (ws == sw))
        a, b = thumbs[pairs[sel, 0]], thumbs[pairs[sel, 1]]
        ua = _shrunk(a, sh, sw)
        out[sel] = np.maximum((ua * _shrunk(b, sh, sw)).sum(axis=1), (ua * _shrunk(b[:, :, ::-1], sh, sw)).sum(axis=1))
    return out


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
                             sizes: np.ndarray | None = None) -> DuplicateGroups:
    """Group exact copies (equal sha256) and near copies (see the module doc).

    Args:
        embeddings: N×D L2-normalised (all-zero rows — images without an embedding — join by sha256 only).
        sha256, phash: N hex strings.
        thumbs: N×32×32×3 uint8 from :func:`compute_thumbnail` (None: use pHash instead).
        sizes: N×2 (width, height) of the images: pairs with an image smaller than VIEW_SIDE are also
            compared at its size (:func:`_low_res_similarity`); None: every image counts as large.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    n = len(x)
    exact = make_groups(list(sha256))
    keys = np.zeros((0, 2), dtype=np.int64)
    sims = np.zeros(0, dtype=np.float32)
    if n > 1:
        has_emb = np.linalg.norm(x, axis=1) > 0.5
        found = [compute_neighbours(x, k, exact)]
        if thumbs is not None:
            found.append(compute_neighbours(_coarse(np.asarray(thumbs)), K_PIX, exact))
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
    if thumbs is not None:
        pix = compute_pixel_similarity(np.asarray(thumbs), keys)
        if sizes is not None and len(keys):
            low = _low_res_similarity(np.asarray(thumbs), keys, np.asarray(sizes, dtype=np.int64))
            pix = np.where(np.isnan(low), pix, np.fmax(pix, low))
        near = (pix >= PIX_NEAR) | ((pix >= PIX_WITH_EMB) & (sims >= SIM_WITH_PIX)) | (sims >= SIM_NEAR)
        near &= _distinctive(keys, 1.0 - pix.astype(np.float64), n) | (pix >= PIX_SURE)
    else:
        pix = np.full(len(keys), np.nan)
        ph = np.array([phash_distance(phash[a], phash[b]) for a, b in keys])
        near = ((ph <= PHASH_NEAR) & (sims >= SIM_WITH_PIX)) | (sims >= SIM_NEAR)
    pairs = [(int(a), int(b), float(s), float(q)) for (a, b), s, q in zip(keys[near], sims[near], pix[near])]
    return DuplicateGroups(_union(n, exact, [(a, b) for a, b, _, _ in pairs]), pairs)


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
