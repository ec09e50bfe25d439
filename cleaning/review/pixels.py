"""The scan's pixel pass: quality statistics and 32×32 thumbnails per image content, cached.

:func:`load_or_compute_pixels` returns, for the rows of an items frame, the statistics
:func:`cleaning.detect.quality.compute_quality_stats` measures and the thumbnails
:func:`cleaning.detect.pixelmatch.compute_thumbnail` makes, from the file decoded as
``load_image(max_side=512)``; kept in the workspace cache (``pixels-v2``) by content (sha256), so a rescan
decodes only new contents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image

from ..data.cache import load_arrays, save_arrays
from ..data.images import load_image
from ..detect.duplicates import compute_thumbnail
from ..detect.quality import STATS_COLUMNS, compute_quality_stats
from ..errors import CleaningError

if TYPE_CHECKING:
    from ..data.workspace import Workspace

#: progress(what is being done, fraction done in [0, 1]).
Progress = Callable[[str, float], None]
#: Longer side the pixel pass decodes at (JPEGs drafted no smaller, then shrunk bilinear).
DECODE_SIDE = 512


def pixel_row(im: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(statistics as float32 in :data:`STATS_COLUMNS` order, 32×32×3 uint8 thumbnail) of a decoded image."""
    st = compute_quality_stats(im)
    return np.array([st[c] for c in STATS_COLUMNS], dtype=np.float32), compute_thumbnail(im)


def compute_pixels(paths: Sequence[str], progress: Callable[[int], None] | None = None
                   ) -> tuple[list[np.ndarray], list[np.ndarray], dict[int, str]]:
    """Decode each path and measure it: (stats rows, thumbnails, {index: reason} of files that failed).

    The lists hold one entry per readable path, in order.
    """
    stats_rows: list[np.ndarray] = []
    thumbs_rows: list[np.ndarray] = []
    failed: dict[int, str] = {}
    for n, path in enumerate(paths):
        try:
            im = load_image(path, max_side=DECODE_SIDE)
        except CleaningError as e:
            failed[n] = e.message
            continue
        except OSError as e:  # vanished since the folder scan
            failed[n] = f"cannot read file: {e.strerror or e}"
            continue
        st, th = pixel_row(im)
        stats_rows.append(st)
        thumbs_rows.append(th)
        if progress and n % 50 == 0:
            progress(n)
    return stats_rows, thumbs_rows, failed


def load_or_compute_pixels(ws: Workspace, df: pd.DataFrame,
                           progress: Progress | None = None) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    """Quality statistics (:data:`STATS_COLUMNS`) and 32×32 thumbnails for the rows of ``df``.

    Decoded once per content (sha256) and kept in the workspace cache. Returns (stats frame aligned
    to ``df``, N×32×32×3 uint8 thumbnails, {item_id: reason} for files that failed to decode).
    """
    cached = load_arrays(ws.cache_dir, "pixels", "v2")  # v2: tiny images thumbnailed bilinear
    known: dict[str, int] = {}
    stats_rows: list[np.ndarray] = []
    thumbs_rows: list[np.ndarray] = []
    if cached is not None and cached["stats"].shape[1:] == (len(STATS_COLUMNS),):
        known = {str(s): i for i, s in enumerate(cached["sha256"])}
        stats_rows, thumbs_rows = list(cached["stats"]), list(cached["thumbs"])
    todo = [(s, p) for s, p in dict(zip(df["sha256"], df["abs_path"])).items() if s not in known]

    def say(n: int) -> None:
        if progress:
            progress(f"checking pixels {n}/{len(todo)}", min(0.55 + 0.15 * n / max(len(todo), 1), 1.0))

    new_stats, new_thumbs, bad = compute_pixels([p for _, p in todo], say)
    failed = {todo[i][0]: why for i, why in bad.items()}
    for r, sha in enumerate((s for s, _ in todo if s not in failed), start=len(stats_rows)):
        known[sha] = r
    stats_rows += new_stats
    thumbs_rows += new_thumbs
    if todo and len(failed) < len(todo):
        order = sorted(known, key=known.__getitem__)
        save_arrays(ws.cache_dir, "pixels", "v2", sha256=np.array(order, dtype="U64"),
                    stats=np.stack(stats_rows), thumbs=np.stack(thumbs_rows))
    nan = np.full(len(STATS_COLUMNS), np.nan, dtype=np.float32)
    blank = np.zeros((32, 32, 3), dtype=np.uint8)
    rows = [known.get(s) for s in df["sha256"]]
    stats = pd.DataFrame([stats_rows[r] if r is not None else nan for r in rows], columns=STATS_COLUMNS)
    thumbs = np.stack([thumbs_rows[r] if r is not None else blank for r in rows]) if rows else \
        np.zeros((0, 32, 32, 3), np.uint8)
    errors = {iid: failed[s] for iid, s in zip(df["item_id"], df["sha256"]) if s in failed}
    return stats, thumbs, errors
