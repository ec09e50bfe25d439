"""The scan's pixel pass: quality statistics and 32×32 thumbnails per image content, cached.

:func:`load_or_compute_pixels` returns, for the rows of an items frame, the statistics
:func:`cleaning.detect.quality.compute_quality_stats` measures and the thumbnails
:func:`cleaning.detect.pixelmatch.compute_thumbnail` makes, from the file decoded as
``load_image(max_side=512)``; kept in the workspace cache (``pixels-v2``) by content (sha256), so a rescan
decodes only new contents.

A scan measures most contents from the embedding step's own decode (:class:`PixelsFromEmbedding`, passed as
``on_decoded``): when that decode read the file at full size — any non-JPEG, and JPEGs whose shorter side is
under twice the model's input (448 px), too small for a draft reduction — its pixels are exactly those this
pass would decode, so each file is decoded once. Larger JPEGs (drafted to 1/2–1/8 for the model), the Ray
engine and contents whose embeddings were cached are decoded here as before. Measured (``bench/bench_pixels.py
once``, backbone left out, 2 cores, load 7–9): 0.32 ms saved per 64-px JPEG (of 2.0 for decoding twice), 3.5 ms
per photo-benchmark source (149 of 200 measured in the embedding). The whole pass over the 99,899 files of the
100k tree (decode + statistics + thumbnail) took 52.8 CPU-s against 106.0 before the statistics were computed
from the histogram; in a first scan of that tree it decodes nothing.
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


def shrunk_for_pixels(im: Image.Image) -> Image.Image:
    """A full-size decode shrunk as ``load_image(max_side=DECODE_SIDE)`` shrinks it (``im`` itself if small)."""
    if max(im.size) <= DECODE_SIDE:
        return im
    im = im.copy()
    im.thumbnail((DECODE_SIDE, DECODE_SIDE), Image.Resampling.BILINEAR)
    return im


class PixelsFromEmbedding:
    """``on_decoded`` for the embedding step: the pixel rows of each content it decoded at full size.

    That decode equals the pixel pass's own (a JPEG drafted to 1/1 either way, any other format read
    whole; then shrunk the same way), so :func:`load_or_compute_pixels` takes these rows as computed.
    """

    def __init__(self) -> None:
        self.rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, sha: str, im: Image.Image) -> None:
        self.rows[sha] = pixel_row(shrunk_for_pixels(im))


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


def load_or_compute_pixels(ws: Workspace, df: pd.DataFrame, progress: Progress | None = None,
                           measured: PixelsFromEmbedding | None = None
                           ) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    """Quality statistics (:data:`STATS_COLUMNS`) and 32×32 thumbnails for the rows of ``df``.

    Once per content (sha256), kept in the workspace cache: contents neither cached nor ``measured`` by the
    embedding step are decoded here. Returns (stats frame aligned to ``df``, N×32×32×3 uint8 thumbnails,
    {item_id: reason} for files that failed to decode).
    """
    cached = load_arrays(ws.cache_dir, "pixels", "v2")  # v2: tiny images thumbnailed bilinear
    if cached is None or cached["stats"].shape[1:] != (len(STATS_COLUMNS),):
        cached = {"sha256": np.zeros(0, "U64"), "stats": np.zeros((0, len(STATS_COLUMNS)), np.float32),
                  "thumbs": np.zeros((0, 32, 32, 3), np.uint8)}
    known = {str(s): i for i, s in enumerate(cached["sha256"])}
    new_shas: list[str] = []
    new_stats: list[np.ndarray] = []
    new_thumbs: list[np.ndarray] = []
    for sha, (st, th) in (measured.rows if measured else {}).items():
        if sha not in known:
            known[sha] = len(known)
            new_shas.append(sha)
            new_stats.append(st)
            new_thumbs.append(th)
    todo = [(s, p) for s, p in dict(zip(df["sha256"], df["abs_path"])).items() if s not in known]

    def say(n: int) -> None:
        if progress:
            progress(f"checking pixels {n}/{len(todo)}", min(0.55 + 0.15 * n / max(len(todo), 1), 1.0))

    stats_rows, thumbs_rows, bad = compute_pixels([p for _, p in todo], say)
    failed = {todo[i][0]: why for i, why in bad.items()}
    for sha in (s for s, _ in todo if s not in failed):
        known[sha] = len(known)
        new_shas.append(sha)
    new_stats += stats_rows
    new_thumbs += thumbs_rows
    all_stats, all_thumbs = cached["stats"], cached["thumbs"]
    if new_shas:
        all_stats = np.concatenate([all_stats, np.stack(new_stats)])
        all_thumbs = np.concatenate([all_thumbs, np.stack(new_thumbs)])
        save_arrays(ws.cache_dir, "pixels", "v2", sha256=np.concatenate([cached["sha256"], np.array(new_shas, "U64")]),
                    stats=all_stats, thumbs=all_thumbs)
    rows = np.array([known.get(s, -1) for s in df["sha256"]], dtype=np.int64)
    stats = pd.DataFrame(all_stats[np.maximum(rows, 0)] if len(all_stats) else
                         np.zeros((len(rows), len(STATS_COLUMNS)), np.float32), columns=STATS_COLUMNS)
    thumbs = all_thumbs[np.maximum(rows, 0)] if len(all_thumbs) else np.zeros((len(rows), 32, 32, 3), np.uint8)
    stats.loc[rows < 0, :] = np.nan
    thumbs[rows < 0] = 0
    errors = {iid: failed[s] for iid, s in zip(df["item_id"], df["sha256"]) if s in failed}
    return stats, thumbs, errors
