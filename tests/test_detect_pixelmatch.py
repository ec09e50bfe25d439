"""The pixel comparison's views, built the fast way (2-D products, one linear map per angle), equal the
views by their definition (box-filter each crop, turn by bilinear taps) on real photos, and the comparison
runs BLAS on one thread."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from cleaning.detect import pixelmatch as pm
from tests.hostile import photo_crop


def _thumbs() -> np.ndarray:
    return np.stack([pm.compute_thumbnail(photo_crop(name, (120, 90))) for name in ("chelsea", "coffee", "astronaut")])


def _unit_channel_major(v: np.ndarray) -> np.ndarray:
    """c×y×x view → mean per channel removed, flattened, unit length (as the module defines a view)."""
    v = v - v.mean(axis=(1, 2), keepdims=True)
    v = v.ravel()
    return v / max(float(np.linalg.norm(v)), 1e-3 * pm.VIEW_SIDE)


def test_crop_views_are_the_box_filtered_crops() -> None:
    thumbs = _thumbs()
    views = pm._views(thumbs)
    spans = [(a, b) for a in pm.CROPS for b in pm.CROPS]
    assert views.shape == (3, len(spans) ** 2, 3 * pm.VIEW_SIDE ** 2)
    for i, t in enumerate(thumbs.astype(np.float64)):
        for r, (top, bottom) in enumerate(spans):
            rows = pm._area_matrix(top * pm.THUMB_SIDE, pm.THUMB_SIDE * (1 - bottom))
            for s, (left, right) in enumerate(spans):
                cols = pm._area_matrix(left * pm.THUMB_SIDE, pm.THUMB_SIDE * (1 - right))
                want = _unit_channel_major(np.einsum("yh,hwc,xw->cyx", rows, t, cols))
                np.testing.assert_allclose(views[i, r * len(spans) + s], want, atol=2e-5)
    np.testing.assert_allclose(views[:, 0], pm._whole_views(thumbs), atol=2e-6)  # view 0: the whole


def test_turned_views_are_the_whole_views_of_the_turned_thumbnails() -> None:
    thumbs = _thumbs()
    t = thumbs.astype(np.float64).reshape(len(thumbs), -1, 3)
    whole = pm._area_matrix(0, pm.THUMB_SIDE)
    for deg, got in zip(pm.ROTATIONS, pm._turned_views(thumbs)):
        idx, w = pm._rotation_taps(pm.THUMB_SIDE, deg)
        turned = sum(w[None, :, k, None] * t[:, idx[:, k]] for k in range(4))  # bilinear taps, pixel by pixel
        turned = turned.reshape(len(thumbs), pm.THUMB_SIDE, pm.THUMB_SIDE, 3)
        for i in range(len(thumbs)):
            want = _unit_channel_major(np.einsum("yh,hwc,xw->cyx", whole, turned[i], whole))
            np.testing.assert_allclose(got[i], want, atol=2e-5)


def test_the_comparison_runs_blas_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """One small product per image: a second BLAS thread only spins (3.3× the CPU on a loaded machine)."""
    seen: list[int] = []
    views = pm._raw_views

    def spy(thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen.extend(d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas")
        return views(thumbs)

    monkeypatch.setattr(pm, "_raw_views", spy)
    thumbs = _thumbs()
    sim = pm.compute_pixel_similarity(thumbs, [(0, 1), (0, 2), (1, 2)])
    assert seen and set(seen) == {1}
    assert (sim < 0.8).all()  # three different photos


def _many_thumbs() -> np.ndarray:
    """40 thumbnails of real photos: crops of three photos at shifting offsets, some mirrored."""
    out = []
    for k in range(40):
        im = photo_crop(("chelsea", "coffee", "astronaut")[k % 3], (120 + 3 * k, 90 + 2 * k))
        t = pm.compute_thumbnail(im)
        out.append(t[:, ::-1] if k % 4 == 0 else t)
    return np.stack(out)


def test_views_do_not_depend_on_the_block_or_the_thumbnails_type() -> None:
    """The whole / turned views are one sparse map per angle applied to blocks of thumbnails transposed a pixel
    at a time: blocks that split the set anywhere, and float thumbnails instead of uint8, give the same views."""
    thumbs = _many_thumbs()
    rows = np.array([5, 0, 39, 17, 17, 2, 33])
    dense = np.stack([pm._WHOLE, *pm._TURNS]).astype(np.float64)
    t = thumbs[rows].astype(np.float64).reshape(len(rows), -1, 3)
    for k, mat in enumerate([pm._WHOLE_SPARSE, *pm._TURNS_SPARSE]):
        whole = pm._linear_views(thumbs, [mat], block=1024, rows=rows)[0]
        for block, th in ((3, thumbs), (1, thumbs.astype(np.float32)), (1024, thumbs.astype(np.float64))):
            np.testing.assert_allclose(pm._linear_views(th, [mat], block=block, rows=rows)[0], whole, atol=1e-6)
        want = np.stack([_unit_channel_major((dense[k] @ ti).T.reshape(3, pm.VIEW_SIDE, pm.VIEW_SIDE)) for ti in t])
        np.testing.assert_allclose(whole, want, atol=2e-5)  # the sparse map is the dense one


def test_the_comparison_does_not_depend_on_the_block_of_crop_views() -> None:
    thumbs = _many_thumbs()
    rng = np.random.default_rng(0)
    pairs = np.unique(np.sort(rng.integers(0, len(thumbs), (120, 2)), axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    got = {b: pm.compute_pixel_similarity(thumbs, pairs, block=b) for b in (1, 7, 16, 256)}
    for b in (1, 7, 256):
        np.testing.assert_allclose(got[b], got[16], atol=1e-6)
    same_photo = pairs[:, 0] % 3 == pairs[:, 1] % 3  # crops of one photo (some mirrored): alike; of two: not
    assert got[16][same_photo].min() > got[16][~same_photo].max()


def test_the_comparison_does_not_depend_on_how_pairs_and_turned_views_are_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The turned views are made a few images at a time and the pairs compared a few at a time: blocks that
    split the images and the pairs anywhere (an image second in pairs on both sides of a block's edge) give
    the same similarities as one block of everything."""
    thumbs = _many_thumbs()
    rng = np.random.default_rng(1)
    pairs = np.unique(np.sort(rng.integers(0, len(thumbs), (200, 2)), axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    want = pm.compute_pixel_similarity(thumbs, pairs)
    assert len(np.unique(pairs[:, 1])) > 8
    for turn_block, pair_block in ((1, 1), (3, 2), (5, 7)):
        monkeypatch.setattr(pm, "TURN_BLOCK", turn_block)
        monkeypatch.setattr(pm, "PAIR_BLOCK", pair_block)
        np.testing.assert_allclose(pm.compute_pixel_similarity(thumbs, pairs), want, atol=1e-6)
