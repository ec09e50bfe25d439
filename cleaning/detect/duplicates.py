"""Exact and near duplicates, grouped, with a suggestion which copy to keep.

*Measure*: equal content hash (sha256 of the bytes) for exact copies. For near copies, each image's
nearest neighbours in embedding space are the candidates (encode once, query cheaply), and each
candidate pair gets two similarities: the cosine similarity of the embeddings, and a *pixel*
similarity — the best normalised cross-correlation between a 16×16 colour thumbnail of one image and
81 slightly cropped views (0–10 % off each side) of the other, and with its mirror image, so
re-encoding, resizing, brightening, small crops and a horizontal flip all keep it near 1. *Threshold*: a pair is a near duplicate when the pixel
similarity is at least :data:`PIX_NEAR`, or at least :data:`PIX_WITH_EMB` with embedding similarity
at least :data:`SIM_WITH_PIX` (both agree), or the embeddings alone are at least :data:`SIM_NEAR`.
Without thumbnails the perceptual hash (pHash) stands in for the pixel check. Pairs are joined
into groups.

Why not the embedding alone: the pooled features of a classification network are made to ignore
*which* photo it is; on the tuning split a brightened or cropped copy was not even the nearest
image of its original 28 % of the time, while the pixel check found 98.6 % of copies at one false
pair in 1,240 candidates (``bench/results/detect.md``).

In each group one copy is kept — the one whose label the evidence supports (when the copies are
labelled differently: a *conflict*), then the one in the preferred split, then the largest — and
every other copy becomes one row pointing at it (``related_item_id``).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """THUMB_SIDE×THUMB_SIDE×3 uint8 thumbnail of an RGB image (aspect ratio squashed)."""
    return np.asarray(im.convert("RGB").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX), dtype=np.uint8)


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


def compute_pixel_similarity(thumbs: np.ndarray, pairs: Sequence[tuple[int, int]], block: int = 256) -> np.ndarray:
    """For each pair (i, j) the best correlation of one whole thumbnail, as it is or mirrored left to right,
    with a cropped view of the other, either way round; in [−1, 1] (0 for a blank image).

    Memory is bounded by ``block`` (the 81 views of one block of images at a time, ≈ 64 MB) plus
    one 768-float vector per image in a pair; the pairs of a block are scored in one batched product.
    """
    out = np.zeros(len(pairs), dtype=np.float32)
    if not len(pairs):
        return out
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    need = np.unique(p)
    whole = _whole_views(np.asarray(thumbs)[need])
    mirrored = _whole_views(np.asarray(thumbs)[need][:, :, ::-1])  # a horizontally flipped copy
    pos = np.searchsorted(need, p)  # pair members as rows of ``whole``
    # every (pair, side): the image whose crops are tried, and the other image's whole view
    me = np.concatenate([pos[:, 0], pos[:, 1]])
    other = np.concatenate([pos[:, 1], pos[:, 0]])
    pair_of = np.concatenate([np.arange(len(p)), np.arange(len(p))])
    order = np.argsort(me, kind="stable")
    me, other, pair_of = me[order], other[order], pair_of[order]
    for s in range(0, len(need), block):
        lo, hi = np.searchsorted(me, [s, s + block])
        if lo == hi:
            continue
        views = _views(np.asarray(thumbs)[need[s:s + block]])  # b × 81 × F
        for c in range(lo, hi, block):  # ≤ block pair sides at a time: a bounded copy of their views
            e = min(c + block, hi)
            mine = views[me[c:e] - s]
            best = np.maximum(np.einsum("rvf,rf->rv", mine, whole[other[c:e]]).max(axis=1),
                              np.einsum("rvf,rf->rv", mine, mirrored[other[c:e]]).max(axis=1))
            np.maximum.at(out, pair_of[c:e], best)
    return out


def _distinctive(pairs: list[tuple[int, int]], dist: np.ndarray) -> np.ndarray:
    """Per pair: is it much closer than either image is to its other candidates?

    The reference of an image is the median distance to its *other* candidates (the data set's
    median candidate distance when it has none); a pair passes when its distance is at most
    :data:`RATIO_MAX` times the smaller reference. Look-alike classes (plain T-shirts, sneakers)
    have many equally close candidates and fail; a real copy stands out.
    """
    if not pairs:
        return np.zeros(0, dtype=bool)
    fallback = float(np.median(dist))
    per: dict[int, list[float]] = {}
    for (a, b), d in zip(pairs, dist.tolist()):
        per.setdefault(a, []).append(d)
        per.setdefault(b, []).append(d)
    def ref(i: int, d: float) -> float:
        others = list(per[i])
        others.remove(d)
        return float(np.median(others)) if others else fallback
    return np.array([d <= RATIO_MAX * max(min(ref(a, d), ref(b, d)), 1e-6)
                     for (a, b), d in zip(pairs, dist.tolist())], dtype=bool)


def compute_duplicate_groups(embeddings: np.ndarray, sha256: Sequence[str], phash: Sequence[str],
                             thumbs: np.ndarray | None = None, k: int = K_DUP) -> DuplicateGroups:
    """Group exact copies (equal sha256) and near copies (see the module doc).

    Args:
        embeddings: N×D L2-normalised (all-zero rows — images without an embedding — join by sha256 only).
        sha256, phash: N hex strings.
        thumbs: N×32×32×3 uint8 from :func:`compute_thumbnail` (None: use pHash instead).
    """
    x = np.asarray(embeddings, dtype=np.float32)
    n = len(x)
    exact = make_groups(list(sha256))
    cand: dict[tuple[int, int], float] = {}
    if n > 1:
        nb = compute_neighbours(x, k, exact)
        has_emb = np.linalg.norm(x, axis=1) > 0.5
        for i, j in zip(*np.nonzero(nb.valid & (nb.sim >= SIM_CANDIDATE))):
            a, b = sorted((int(i), int(nb.index[i, j])))
            if has_emb[a] and has_emb[b]:
                cand[(a, b)] = float(nb.sim[i, j])
    keys = sorted(cand)
    sims = np.array([cand[c] for c in keys])
    if thumbs is not None:
        pix = compute_pixel_similarity(np.asarray(thumbs), keys)
        near = (pix >= PIX_NEAR) | ((pix >= PIX_WITH_EMB) & (sims >= SIM_WITH_PIX)) | (sims >= SIM_NEAR)
        near &= _distinctive(keys, 1.0 - pix.astype(np.float64)) | (pix >= PIX_SURE)
    else:
        pix = np.full(len(keys), np.nan)
        ph = np.array([phash_distance(phash[a], phash[b]) for a, b in keys])
        near = ((ph <= PHASH_NEAR) & (sims >= SIM_WITH_PIX)) | (sims >= SIM_NEAR)
    pairs = [(a, b, float(s), float(q)) for (a, b), s, q, m in zip(keys, sims, pix, near) if m]
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
