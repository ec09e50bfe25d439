"""Real-photo and handwritten-digit benchmark of the whole detector pipeline, against cleanlab and CleanVision.

    python bench/bench_photos.py             # 3 seeds × (3 photo sets, digits 650 and 4,000); writes
                                             # bench/results/photos.{md,json}
    python bench/bench_photos.py --quick     # 1 seed, photos (space) and digits 650; writes under bench/out

The sets come from :mod:`realsets` (real images only, offline; see its docstring for sources and
licences). Each set is embedded with the product's embedder (content-addressed cache under
``bench/out/real/cache``), given out-of-sample probabilities by the product's heads, and run through
the product's own detector pipeline (:func:`cleaning.detect.run.run_detectors`, exactly what the scan
runs). Peers get the *same* embeddings and probabilities: cleanlab ``Datalab`` (label, outlier,
near-duplicate issues) and ``OutOfDistribution`` (outlier scores); CleanVision (``Imagelab`` on the
files: exact / near duplicates).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import realsets  # noqa: E402

RESULTS = REPO / "bench" / "results"
#: The pixel cache (thumbnails as `compute_thumbnail` makes them: a new name when that changes).
PIXELS_FILE = "pixels-v2.npz"
#: Seeds of the 650-digit sets (the other sets use 1, 2, 3).
SEEDS_650 = list(range(1, 11))


def _tables(paths: list[str]) -> tuple:
    """(embedding table, tapped-block table, sha256s) from the content-addressed cache (:mod:`embedcache`)."""
    from embedcache import tables

    return tables(realsets.OUT / "cache", paths)


def embed(paths: list[str]) -> tuple[np.ndarray, list[str]]:
    """(N×1280 embeddings, sha256s) from the content-addressed cache, embedding what is missing."""
    table, _, shas = _tables(paths)
    return table.get(shas), shas


def embed_mid(paths: list[str]) -> np.ndarray:
    """N×192 rows of the backbone's tapped block 5 (the label check's other layer), as :func:`embed`."""
    _, side, shas = _tables(paths)
    return side.get(shas)


def pixels(paths: list[str]) -> tuple[pd.DataFrame, np.ndarray, list[str], list[int], list[int]]:
    """(quality stats, 32×32 thumbnails, pHashes, widths, heights) as the scan computes them, cached."""
    from cleaning.data.images import inspect_image, load_image
    from cleaning.detect.duplicates import compute_thumbnail
    from cleaning.detect.quality import STATS_COLUMNS, compute_quality_stats

    f = realsets.OUT / PIXELS_FILE
    known: dict[str, tuple] = {}
    if f.exists():
        with np.load(f, allow_pickle=False) as npz:
            z = {k: npz[k] for k in npz.files}  # read each array once
        for i, p in enumerate(z["path"]):
            known[str(p)] = (z["stats"][i], z["thumbs"][i], str(z["phash"][i]), int(z["wh"][i, 0]), int(z["wh"][i, 1]))
    new = [p for p in dict.fromkeys(paths) if p not in known]
    for p in new:
        info = inspect_image(p)
        im = load_image(p, max_side=512)
        st = compute_quality_stats(im)
        known[p] = (np.array([st[c] for c in STATS_COLUMNS], np.float32), compute_thumbnail(im), info.phash,
                    info.width, info.height)
    if new:
        ks = list(known)
        np.savez(f, path=np.array(ks), stats=np.stack([known[k][0] for k in ks]),
                 thumbs=np.stack([known[k][1] for k in ks]), phash=np.array([known[k][2] for k in ks]),
                 wh=np.array([[known[k][3], known[k][4]] for k in ks]))
    rows = [known[p] for p in paths]
    return (pd.DataFrame([r[0] for r in rows], columns=STATS_COLUMNS), np.stack([r[1] for r in rows]),
            [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--embed-only", action="store_true", help="build and embed every set, run nothing")
    ap.add_argument("--report", action="store_true", help="only rebuild photos.md from photos.json")
    args = ap.parse_args(argv)
    from bench_photos_run import report, run_all

    if args.report:
        res = json.loads((RESULTS / "photos.json").read_text())
        (RESULTS / "photos.md").write_text(report(res))
        return 0
    t0, c0, l0 = time.monotonic(), time.process_time(), os.getloadavg()[0]
    base = realsets.base_images()
    seeds = [1] if args.quick else [1, 2, 3]
    clusters = ["space"] if args.quick else list(realsets.CLUSTERS)
    sizes = [650] if args.quick else [650, 4000]
    sets = [realsets.photo_set(base, s, c) for s in seeds for c in clusters]
    animals = [] if args.quick else [realsets.photo_set(base, s, c, "animals") for s in seeds for c in clusters]
    # acting on the flags at 650 loses only ~3 points to the noise: more seeds there, and every digit of the sheet
    # that is not in the set as the held-out set (4,350 at 650, 1,000 at 4,000), so the measure's own noise is
    # below the 80 % target's margin (see the report)
    digit = [realsets.digit_set(base, s, n, held_out=realsets.DIGITS_PER_CLASS - n // 10)
             for n in sizes for s in (seeds if args.quick or n > 1000 else SEEDS_650)]
    every = sorted({p for s in sets + animals for p in s["path"]} | {p for s, h in digit for p in [*s["path"], *h["path"]]})
    embed(every)
    pixels(every)
    if args.embed_only:
        return 0
    res = run_all(sets, digit, embed, pixels, mid=embed_mid, animals=animals)
    res["machine"] = {"when": time.strftime("%Y-%m-%d"), "machine": f"{platform.system()} {platform.machine()}",
                      "cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                      "load_start": l0, "load_end": os.getloadavg()[0],
                      "cpu_minutes": (time.process_time() - c0) / 60, "wall_minutes": (time.monotonic() - t0) / 60}
    where = realsets.OUT if args.quick else RESULTS
    where.mkdir(parents=True, exist_ok=True)
    (where / "photos.json").write_text(json.dumps(res, indent=1, default=float))
    text = report(res)
    (where / "photos.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
