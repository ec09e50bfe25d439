"""Pixel comparison of two images for the near-duplicate check (:mod:`.duplicates`): 32×32 thumbnails,
their 16×16 views (whole, 81 slight crops, mirrored, turned by a few degrees), the coarse 8×8 descriptor
whose neighbours are candidates, and the comparison at a tiny image's own size. See the module doc of
:mod:`.duplicates` for how these similarities decide a pair. Pure numpy and Pillow, bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image
from scipy import sparse
from threadpoolctl import threadpool_limits

#: Thumbnail side (px) and the side of the compared views; crop fractions tried per side.
THUMB_SIDE = 32
VIEW_SIDE = 16
CROPS = (0.0, 0.05, 0.1)


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
    """M×81×(3·VIEW_SIDE²) unit vectors: every crop (rows × columns) of each thumbnail, per-channel
    mean removed, features channel-major (c, y, x). View 0 is the whole thumbnail (:func:`_whole_views`).
    The comparison uses :func:`_raw_views` (the same up to each view's mean and length)."""
    raw, inv = _raw_views(thumbs)
    m, k = inv.shape
    v = raw.reshape(m, k, 3, -1)
    v = (v - v.mean(axis=3, keepdims=True)).reshape(raw.shape)
    return v * inv[:, :, None]


def _raw_views(thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M×81×(3·VIEW_SIDE²) crop views *before* centring and scaling, M×81 one over each view's length after
    centring): a view's correlation with a centred unit vector w is ``(raw · w) · inv`` (w's channels sum to
    zero, so the view's channel means drop out of the product), which spares two passes over 81 views.

    Two 2-D matrix products (box filter along rows for all crops at once, then along columns) and one
    transpose into channel-major order. Each thumbnail's channel means are removed first (every crop's
    box filter keeps a constant, so the centred views are unchanged): the sums of squares the lengths come
    from then stay small, without cancellation. Memory M×81×768 float32 (≈ 250 KB per thumbnail): call it
    on blocks.
    """
    t = np.asarray(thumbs, dtype=np.float32)
    t = t - t.mean(axis=(1, 2), keepdims=True)
    m, s, v_ = len(t), len(_SPANS), VIEW_SIDE
    spans = _SPANS.reshape(s * v_, THUMB_SIDE).astype(np.float32)  # (crop, out row) × in row
    rows = spans @ t.transpose(1, 0, 2, 3).reshape(THUMB_SIDE, -1)  # (r·y) × (m·w·c)
    rows = rows.reshape(s * v_, m, THUMB_SIDE, 3).transpose(0, 1, 3, 2).reshape(-1, THUMB_SIDE)  # (r·y·m·c) × w
    v = (rows @ spans.T).reshape(s, v_, m, 3, s, v_)  # r y m c s x
    v = v.transpose(2, 0, 4, 3, 1, 5).reshape(m, s * s, 3, v_ * v_)  # m (r·s) c (y·x)
    total = v.sum(axis=3)
    sq = np.einsum("mkcf,mkcf->mkc", v, v)
    var = sq - total * total / (v_ * v_)
    bad = var < 1e-3 * sq  # a flat view far from its image's mean: its sum of squares cancels, centre it first
    if bad.any():
        w = v[bad].astype(np.float64)
        var[bad] = ((w - w.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    length = np.sqrt(np.clip(var.sum(axis=2), 0.0, None))
    return v.reshape(m, s * s, -1), (1.0 / np.maximum(length, 1e-3 * VIEW_SIDE)).astype(np.float32)


def _linear_views(thumbs: np.ndarray, mats: Sequence[sparse.csr_matrix], block: int = 1024,
                  rows: np.ndarray | None = None, mirror: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """A×M×(3·VIEW_SIDE²): per matrix of ``mats`` (A sparse VIEW_SIDE²×THUMB_SIDE² linear maps from a thumbnail's
    channel to a view's) the view of every thumbnail, per-channel mean removed, unit length, channel-major.

    The maps are sparse (the whole view: 4 taps per view pixel; turned: 8–12): as dense products they cost
    ≈ 1.6 MFLOP per image and map, 40 of the pixel comparison's ≈ 100 CPU-s at 100,000 images; as sparse ones
    ≈ 0.2 of that (``bench/results/scale.md`` §14b; the same views up to float rounding, 1e-7).
    ``rows``: the thumbnails ``thumbs[rows]`` (taken a block at a time: no copy of them all); ``mirror``: each
    mirrored left to right; ``out``: an A×M×F float32 array to fill instead of a new one.
    """
    a, f = len(mats), VIEW_SIDE * VIEW_SIDE
    m_all = len(thumbs) if rows is None else len(rows)
    out = np.empty((a, m_all, 3 * f), dtype=np.float32) if out is None else out
    for s in range(0, m_all, block):
        t = thumbs[s:s + block] if rows is None else thumbs[rows[s:s + block]]
        t = np.ascontiguousarray(t[:, :, ::-1] if mirror else t)
        m = len(t)
        # (y·x) × (m·c), in the thumbnails' own type: each pixel's channels moved as one item (2.6× faster)
        px = t.reshape(m, THUMB_SIDE ** 2, 3).view(np.dtype((np.void, 3 * t.itemsize)))[..., 0]
        t = np.ascontiguousarray(px.T).view(t.dtype).reshape(THUMB_SIDE ** 2, m * 3).astype(np.float32)
        for k, mat in enumerate(mats):
            v = (mat @ t).reshape(f, m, 3).transpose(1, 2, 0)  # m c (y·x)
            v = v - v.mean(axis=2, keepdims=True)
            v = v.reshape(m, -1)
            out[k, s:s + m] = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-3 * VIEW_SIDE)
    return out


def _whole_views(thumbs: np.ndarray, block: int = 1024) -> np.ndarray:
    """M×(3·VIEW_SIDE²): view 0 (the whole thumbnail) of :func:`_views`, without the 80 crops."""
    return _linear_views(thumbs, [_WHOLE_SPARSE], block)[0]


#: Rotations (degrees) tried between two whole thumbnails, besides none: a re-upload turned a little.
ROTATIONS = (-9.0, -6.0, -3.0, 3.0, 6.0, 9.0)
#: Pairs compared per step of the whole-against-turned comparison (2 × 768 floats each: ≈ 50 MB a step), and
#: the images whose turned views are made at a time (768 floats each: ≈ 12 MB).
PAIR_BLOCK = 1 << 13
TURN_BLOCK = 1 << 12
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


def _turn_matrix(degrees: float) -> np.ndarray:
    """VIEW_SIDE²×THUMB_SIDE² float32: the whole view (box filter) of a thumbnail channel turned by ``degrees``
    (bilinear, :func:`_rotation_taps`), as one linear map."""
    idx, w = _rotation_taps(THUMB_SIDE, degrees)
    rot = np.zeros((THUMB_SIDE ** 2, THUMB_SIDE ** 2))
    np.add.at(rot, (np.repeat(np.arange(THUMB_SIDE ** 2), 4), idx.ravel()), w.ravel())
    return (_WHOLE.astype(np.float64) @ rot).astype(np.float32)


#: The whole view as one linear map of a thumbnail channel (row y·16+x, column h·32+w), and turned by each angle.
_WHOLE = np.kron(_SPANS[0], _SPANS[0]).astype(np.float32)
_TURNS = np.stack([_turn_matrix(d) for d in ROTATIONS]) if ROTATIONS else np.zeros((0,) + _WHOLE.shape, np.float32)
#: The same maps as sparse matrices (what the comparison multiplies by).
_WHOLE_SPARSE = sparse.csr_matrix(_WHOLE)
_TURNS_SPARSE = [sparse.csr_matrix(t) for t in _TURNS]


def _turned_views(thumbs: np.ndarray, block: int = 1024, rows: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Per angle of :data:`ROTATIONS`: the M×(3·VIEW_SIDE²) whole views of the thumbnails (``thumbs[rows]``)
    turned by it.

    One M×F buffer, refilled per angle from blocks of ``block`` images (turning and box-filtering are one
    matrix per angle): a float copy of *all* turned thumbnails (12 KB per image) is never made.
    """
    m = len(thumbs) if rows is None else len(rows)
    out = np.empty((1, m, 3 * VIEW_SIDE * VIEW_SIDE), dtype=np.float32)
    for turn in _TURNS_SPARSE:
        yield _linear_views(thumbs, [turn], block, rows=rows, out=out)[0]


def coarse_descriptors(thumbs: np.ndarray, block: int = 1024) -> np.ndarray:
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


def compute_pixel_similarity(thumbs: np.ndarray, pairs: Sequence[tuple[int, int]], block: int = 16) -> np.ndarray:
    """For each pair (i, j) the best correlation of one whole thumbnail, as it is or mirrored left to right,
    with a cropped view of the other, either way round, or of the two whole thumbnails with one turned by
    one of :data:`ROTATIONS`; in [−1, 1] (0 for a blank image).

    Memory: one 768-float whole view per image in a pair (3 KB; the mirrored view is the whole view flipped,
    made per partner when needed), the turned views of :data:`TURN_BLOCK` images at a time, the 81 views of
    ``block`` images at a time (≈ 4 MB), and per-pair temporaries for :data:`PAIR_BLOCK` pairs at a time:
    nothing grows with the number of pairs but ``out``. (Keeping the mirrored and every turned view of all
    images held 9 KB per image: ≈ 0.9 GB at 100,000 images, the near-duplicate step's peak.)

    Time: the 81 views of each image (built once per image, ≈ 0.3–0.5 ms), its turned and mirrored whole views;
    the products against its partners are small. BLAS runs on one thread here: one small product per image
    with a second thread spinning cost 3.3× the CPU on a loaded 2-core machine (``bench/results/scale.md``).
    ``block`` is small on purpose: the views of 16 images (4 MB) stay in cache between their two products, their
    transpose into channel-major order and the sums of squares; 256 at a time (64 MB) went out to memory and back
    (≈ 0.52 → 0.39 ms per image measured on 4,096 thumbnails of the 100k tree, same views: §14b).
    """
    with threadpool_limits(1):
        return _pixel_similarity(thumbs, pairs, block)


def _pixel_similarity(thumbs: np.ndarray, pairs: Sequence[tuple[int, int]], block: int) -> np.ndarray:
    out = np.zeros(len(pairs), dtype=np.float32)
    if not len(pairs):
        return out
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    thumbs = np.asarray(thumbs)
    need = np.unique(p)  # the images in a pair, read from ``thumbs`` a block at a time (no copy of them all)
    whole = _linear_views(thumbs, [_WHOLE_SPARSE], rows=need)[0]  # need × F; mirrored: flipped when needed
    pos = np.searchsorted(need, p)  # pair members as rows of ``whole``
    # whole against whole with the second image turned: the pairs by their second image, whose turned views
    # are made TURN_BLOCK images at a time (each image once), the pairs of those images in PAIR_BLOCK steps
    by_second = np.argsort(pos[:, 1], kind="stable")
    second_sorted = pos[by_second, 1]
    second = np.unique(second_sorted)
    for s in range(0, len(second), TURN_BLOCK):
        rows = second[s:s + TURN_BLOCK]
        lo, hi = np.searchsorted(second_sorted, [rows[0], rows[-1] + 1])
        for turned in _turned_views(thumbs, rows=need[rows]):
            for q in range(lo, hi, PAIR_BLOCK):
                sel = by_second[q:min(q + PAIR_BLOCK, hi)]
                a, b = whole[pos[sel, 0]], turned[np.searchsorted(rows, pos[sel, 1])]
                out[sel] = np.maximum(out[sel], np.einsum("rf,rf->r", a, b))
    # every (pair, side): the image whose crops are tried, and the other image's whole view
    me = np.concatenate([pos[:, 0], pos[:, 1]])
    other = np.concatenate([pos[:, 1], pos[:, 0]])
    pair_of = np.concatenate([np.arange(len(p)), np.arange(len(p))])
    order = np.argsort(me, kind="stable")
    me, other, pair_of = me[order], other[order], pair_of[order]
    bounds = np.searchsorted(me, np.arange(len(need) + 1))
    f = whole.shape[1]
    for s in range(0, len(need), block):
        views, inv = _raw_views(thumbs[need[s:s + block]])  # b × 81 × F, b × 81
        for i in range(s, min(s + block, len(need))):  # one image's crops against all its partners at once
            lo, hi = bounds[i], bounds[i + 1]
            if lo == hi:
                continue
            w = whole[other[lo:hi]]
            partners = np.empty((hi - lo, 2, f), dtype=np.float32)  # each partner as it is and mirrored
            partners[:, 0] = w
            partners[:, 1] = w.reshape(-1, 3, VIEW_SIDE, VIEW_SIDE)[..., ::-1].reshape(-1, f)
            prod = views[i - s] @ partners.reshape(-1, f).T
            prod *= inv[i - s][:, None]
            best = prod.max(axis=0).reshape(-1, 2).max(axis=1)
            np.maximum.at(out, pair_of[lo:hi], best)
    return out


def _shrunk(t: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """M×(sh·sw·3) unit vectors: thumbnails box-averaged to sh×sw, per-channel mean removed."""
    rows, cols = _area_matrix(0, THUMB_SIDE, n_out=sh), _area_matrix(0, THUMB_SIDE, n_out=sw)
    v = np.einsum("yY,mYXc,xX->myxc", rows, np.asarray(t, dtype=np.float64), cols).reshape(len(t), -1, 3)
    v = (v - v.mean(axis=1, keepdims=True)).reshape(len(t), -1)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-3 * VIEW_SIDE)


def low_res_similarity(thumbs: np.ndarray, pairs: np.ndarray, sizes: np.ndarray) -> np.ndarray:
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
