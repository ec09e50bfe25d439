"""Low-quality images: blank / low-information, very dark or bright, blurry, tiny, extreme aspect ratio.

*Measure*: :func:`compute_quality_stats` on the decoded pixels (grey levels in [0, 1] of the image
shrunk to at most 256 px): brightness percentiles, contrast (standard deviation), entropy of the grey
histogram, sharpness (variance of the Laplacian relative to the contrast), size and aspect ratio.
*Score*: each check maps its number to a severity in [0, 1]. *Threshold*: a fixed limit per check;
blur and smallness are judged against the data set itself too (a data set of 28-px thumbnails is
not "tiny" everywhere), so only images much blurrier or smaller than their peers are flagged.
Unreadable files are not here: they are ``corrupt`` rows made from the scan's bad-file list.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from . import issues_frame, robust_z

STATS_COLUMNS = ["brightness", "p01", "p99", "contrast", "entropy", "sharpness"]
STATS_MAX_SIDE = 256
#: Contrast (grey standard deviation) below which an image is blank / one colour.
BLANK_CONTRAST = 0.01
#: Grey-histogram entropy (bits, of 8) below which an image carries almost no information.
LOW_ENTROPY = 1.0
#: 99th brightness percentile below which an image is too dark; 1st percentile above which too bright.
DARK_P99 = 0.15
BRIGHT_P01 = 0.90
#: Shorter side (px) below which an image is tiny — when also under half of the data set's median.
TINY_SIDE = 32
#: Longer / shorter side above which the aspect ratio is extreme.
MAX_ASPECT = 4.0
#: Robust z-score of log-sharpness below which an image is blurry compared with its peers ...
BLUR_Z = -3.5
#: ... and the relative sharpness below which it is blurry in absolute terms.
BLUR_SHARPNESS = 0.05


def compute_quality_stats(im: Image.Image) -> dict[str, float]:
    """Pixel statistics of an RGB image (see :data:`STATS_COLUMNS`); all in [0, 8].

    Everything but the sharpness comes from the 256-bin grey histogram (grey level ``k`` is ``k / 255``):
    the mean, standard deviation and percentiles (numpy's linear rule) of the pixels are those of the
    histogram's levels weighted by their counts, in float64; the Laplacian is summed in integers. Same
    numbers as measuring the float32 pixel array (to float32 rounding: ≤ 2e-7 absolute, 2e-6 relative on the
    sharpness; ``tests/test_quality_stats.py``), at 0.10–0.16 ms instead of 0.40 for a 64-px image and 1.1–1.8
    instead of 2.6–3.1 for the photo benchmark's 512-px sources (``bench/bench_pixels.py parts``, 2 cores, load 7).
    """
    g = im.convert("L")
    if max(g.size) > STATS_MAX_SIDE:
        g.thumbnail((STATS_MAX_SIDE, STATS_MAX_SIDE), Image.Resampling.BILINEAR)
    u = np.asarray(g)
    n = u.size
    counts = np.bincount(u.ravel(), minlength=256)
    w = counts / n
    mean = float(w @ _LEVELS)
    contrast = float(np.sqrt(w @ (_LEVELS - mean) ** 2))
    p = w[counts > 0]
    cum = np.cumsum(counts)
    if min(u.shape) >= 3:
        i = u.astype(np.int16)
        lap = i[1:-1, :-2] + i[1:-1, 2:] + i[:-2, 1:-1] + i[2:, 1:-1] - 4 * i[1:-1, 1:-1]
        sharp = float(lap.std() / 255.0 / max(contrast, 1e-3))
    else:
        sharp = 0.0
    return {"brightness": mean, "p01": _percentile(cum, 1), "p99": _percentile(cum, 99),
            "contrast": contrast, "entropy": max(0.0, float(-(p * np.log2(p)).sum())), "sharpness": min(sharp, 8.0)}


#: Grey level k as the float32 k / 255 the statistics were first defined on, widened to float64.
_LEVELS = (np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float64)


def _percentile(cum: np.ndarray, q: float) -> float:
    """numpy's default ("linear") ``q``-th percentile of the pixels whose grey histogram has cumulative counts
    ``cum``: the k-th smallest pixel is the level whose cumulative count first exceeds k."""
    n = int(cum[-1])
    h = q / 100.0 * (n - 1)
    lo = int(np.floor(h))
    v = _LEVELS[np.searchsorted(cum, [lo, min(lo + 1, n - 1)], side="right")]
    return float(v[0] + (v[1] - v[0]) * (h - lo))


def compute_quality_scores(stats: pd.DataFrame, width: Sequence[int], height: Sequence[int]) -> pd.DataFrame:
    """Per image and check a severity in [0, 1] (0 = fine): columns blank, dark, bright, blurry, tiny, aspect.

    ``stats`` has :data:`STATS_COLUMNS` (NaN rows = not measured, scored 0).
    """
    s = stats.reset_index(drop=True)
    w = np.asarray(width, dtype=np.float64)
    h = np.asarray(height, dtype=np.float64)
    short, long_ = np.minimum(w, h), np.maximum(w, h)
    out = pd.DataFrame(index=s.index)
    blank = (s["contrast"] < BLANK_CONTRAST) | (s["entropy"] < LOW_ENTROPY)
    out["blank"] = np.where(blank, 0.95, 0.0)
    out["dark"] = np.where(~blank & (s["p99"] < DARK_P99), 0.7, 0.0)
    out["bright"] = np.where(~blank & (s["p01"] > BRIGHT_P01), 0.6, 0.0)
    log_sharp = np.log(np.clip(s["sharpness"].to_numpy(dtype=np.float64), 1e-4, None))
    measured = np.isfinite(log_sharp) & ~blank.to_numpy()
    z = np.zeros(len(s))
    if measured.sum() >= 10:
        z[measured] = robust_z(log_sharp[measured])
    blurry = measured & (z < BLUR_Z) & (s["sharpness"].to_numpy() < BLUR_SHARPNESS)
    out["blurry"] = np.where(blurry, np.clip(0.5 + 0.05 * (BLUR_Z - z), 0.5, 0.8), 0.0)
    med_short = float(np.median(short)) if len(short) else 0.0
    tiny = (short < TINY_SIDE) & (short < 0.5 * med_short)
    out["tiny"] = np.where(tiny, 0.6, 0.0)
    aspect = long_ / np.maximum(short, 1)
    out["aspect"] = np.where(aspect > MAX_ASPECT, np.clip(0.4 + 0.02 * aspect, 0.5, 0.7), 0.0)
    out[~np.isfinite(s["contrast"].to_numpy())] = 0.0
    return out


def _words(check: str, st: pd.Series, w: int, h: int) -> str:
    return {
        "blank": f"blank or almost one colour (contrast {st['contrast']:.3f}, {st['entropy']:.1f} bits of grey levels)",
        "dark": f"very dark (99% of pixels below brightness {st['p99']:.2f})",
        "bright": f"washed out (99% of pixels above brightness {st['p01']:.2f})",
        "blurry": f"blurry compared with the rest (sharpness {st['sharpness']:.3f})",
        "tiny": f"tiny ({w}×{h} px)",
        "aspect": f"extreme aspect ratio ({w}×{h} px)",
    }[check]


def find_low_quality(item_ids: Sequence[str], stats: pd.DataFrame, width: Sequence[int],
                     height: Sequence[int]) -> pd.DataFrame:
    """One ``low_quality`` row per image with any failed check; severity = the worst check."""
    scores = compute_quality_scores(stats, width, height)
    s = stats.reset_index(drop=True)
    rows = []
    for i in np.flatnonzero(scores.to_numpy().max(axis=1) > 0) if len(scores) else []:
        failed = [c for c in scores.columns if scores.at[i, c] > 0]
        failed.sort(key=lambda c: -scores.at[i, c])
        rows.append({"item_id": item_ids[i], "issue": "low_quality", "severity": float(scores.iloc[i].max()),
                     "reason": "; ".join(_words(c, s.iloc[i], int(width[i]), int(height[i])) for c in failed)})
    return issues_frame(rows)
