"""A large embedding map drawn cheaply: every point as a density raster, a bounded sample as clickable markers.

With software WebGL (a browser without a GPU, and the headless Chromium the benchmarks use) a click on a
scattergl map redraws every marker to show the selection: at 100,000 markers that redraw alone is
0.45–0.86 CPU-s per click (``bench/results/app_scale_map.md``), at 20,000 the whole click → dialog takes
0.35 s (``bench/results/clicks.md``). Above a size (the page's threshold) the map therefore draws

* **all** points as one raster image under the plot (:func:`density_image`): each cell of a fixed grid is
  coloured by the majority colour category of the points in it, its opacity grows with the log of their
  count. A plotly layout image: an SVG ``<image>``, not a trace, so a click redraws nothing of it;
* a **bounded sample** as markers (:func:`marker_rows`): every flagged image (any issue) and, for the rest,
  a sample stratified by grid cell × given label with a common cap per stratum ("water filling": the largest
  cap ``c`` with ``Σ min(count, c) ≤ budget``), so sparse places, small classes and lone images are all drawn
  and only dense crowds — which the raster already shows — are thinned. When the flagged images alone
  exceed :data:`FLAGGED_SHARE` of the budget they are thinned the same way (flagged-only strata), so part of
  the budget always remains for the unflagged rest.

Box and lasso selections are then resolved against all points from the selection's geometry
(:func:`cleaning.review.selection.rows_in_area`), not from the markers plotly reports.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

#: The sampling grid (cells per axis) that defines the spatial strata of :func:`marker_rows`.
STRATA_GRID = 64
#: Cells per axis of the density raster (a plot ≈ 700–1400 px wide: 3–6 px per cell).
RASTER_GRID = 256
#: At most this share of the marker budget goes to flagged images (when there are more, they are thinned).
FLAGGED_SHARE = 0.75


def _cells(x: np.ndarray, y: np.ndarray, grid: int) -> np.ndarray:
    """Cell number (row-major, ``grid × grid``) of each point over the points' bounding box."""
    def bins(v: np.ndarray) -> np.ndarray:
        lo, hi = float(v.min()), float(v.max())
        span = hi - lo if hi > lo else 1.0
        return np.minimum(((v - lo) / span * grid).astype(np.int64), grid - 1)
    return bins(y) * grid + bins(x)


def water_fill(strata: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``min(budget, len(strata))`` positions into ``strata`` (one stratum id per point): each stratum
    keeps ``min(its count, c)`` points, ``c`` the largest common cap that fits the budget; what is left of the
    budget goes one point each to randomly chosen strata larger than ``c``. Within a stratum the points
    kept are a uniform random choice."""
    n = len(strata)
    if budget >= n:
        return np.arange(n)
    if budget <= 0:
        return np.zeros(0, dtype=np.int64)
    _, inv, counts = np.unique(strata, return_inverse=True, return_counts=True)
    sizes = np.sort(counts)
    # the largest c with sum(min(counts, c)) <= budget: search over c in [0, max count]
    lo, hi = 0, int(sizes[-1])
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(np.minimum(sizes, mid).sum()) <= budget:
            lo = mid
        else:
            hi = mid - 1
    cap = lo
    take = np.minimum(counts, cap)
    short = budget - int(take.sum())
    if short:
        over = np.flatnonzero(counts > cap)
        take[rng.choice(over, size=short, replace=False)] += 1
    # a random rank of each point within its stratum: keep the points ranked below their stratum's take
    order = rng.permutation(n)
    order = order[np.argsort(inv[order], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    return np.flatnonzero(rank < take[inv])


def _flagged(points: pd.DataFrame) -> np.ndarray:
    """Which points carry an issue (``issue`` other than "no issue"; none without the column)."""
    if "issue" not in points:
        return np.zeros(len(points), bool)
    return (points["issue"].astype(str) != "no issue").to_numpy()


def marker_summary(points: pd.DataFrame, markers: np.ndarray) -> dict[str, int]:
    """What the caption says of a sampled map: ``{"markers", "flagged", "flagged_drawn"}`` (counts)."""
    flagged = _flagged(points)
    return {"markers": len(markers), "flagged": int(flagged.sum()), "flagged_drawn": int(flagged[markers].sum())}


def marker_rows(points: pd.DataFrame, budget: int, seed: int = 0) -> np.ndarray:
    """The rows of ``points`` (:func:`cleaning.review.selection.embedding_points`) to draw as markers: exactly
    ``min(budget, len(points))`` of them, sorted; every flagged image (``issue`` other than "no issue") while
    they fit in :data:`FLAGGED_SHARE` of the budget, the rest stratified by grid cell × label (see the module
    docstring). Deterministic for a given ``seed`` (the same map draws the same markers on every rerun)."""
    n = len(points)
    if budget >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    x, y = points["x"].to_numpy(dtype=float), points["y"].to_numpy(dtype=float)
    _, label = np.unique(points["label"].astype(str).to_numpy(), return_inverse=True)
    strata = _cells(x, y, STRATA_GRID) * (int(label.max()) + 1) + label
    flagged = _flagged(points)
    f_rows, r_rows = np.flatnonzero(flagged), np.flatnonzero(~flagged)
    f_keep = f_rows if len(f_rows) <= FLAGGED_SHARE * budget else \
        f_rows[water_fill(strata[f_rows], int(FLAGGED_SHARE * budget), rng)]
    r_keep = r_rows[water_fill(strata[r_rows], budget - len(f_keep), rng)]
    if len(f_keep) + len(r_keep) < budget:  # too few unflagged images to fill the rest: more flagged ones
        spare = np.setdiff1d(f_rows, f_keep)
        f_keep = np.concatenate([f_keep, spare[water_fill(strata[spare], budget - len(f_keep) - len(r_keep), rng)]])
    return np.sort(np.concatenate([f_keep, r_keep]))


def density_image(x: np.ndarray, y: np.ndarray, codes: np.ndarray, colours: list[str],
                  extent: tuple[float, float, float, float], grid: int = RASTER_GRID) -> dict:
    """A plotly layout image (a dict for ``layout.images``) of all points over ``extent`` = (x0, x1, y0, y1):
    each cell in the colour (``colours[code]``, "#rrggbb") most of its points have, opacity 0.2–0.75 growing
    with log(1 + count) relative to the fullest cell; empty cells transparent. A PNG data URL, a few tens of KB."""
    from PIL import Image

    x0, x1, y0, y1 = extent
    k = max(len(colours), 1)
    cx = np.clip(((x - x0) / (x1 - x0) * grid).astype(np.int64), 0, grid - 1)
    cy = np.clip(((y1 - y) / (y1 - y0) * grid).astype(np.int64), 0, grid - 1)  # row 0 at the top (y1)
    per = np.bincount((cy * grid + cx) * k + codes, minlength=grid * grid * k).reshape(grid * grid, k)
    count = per.sum(axis=1)
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours] or [[0, 0, 0]], dtype=np.uint8)
    img = np.zeros((grid * grid, 4), dtype=np.uint8)
    img[:, :3] = rgb[per.argmax(axis=1)]
    level = np.log1p(count) / np.log1p(max(int(count.max()), 1))
    img[:, 3] = np.where(count > 0, np.round(255 * (0.2 + 0.55 * level)), 0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img.reshape(grid, grid, 4), "RGBA").save(buf, "PNG", optimize=False)
    return dict(source="data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), xref="x", yref="y",
                x=x0, y=y1, sizex=x1 - x0, sizey=y1 - y0, xanchor="left", yanchor="top", sizing="stretch",
                layer="below")
