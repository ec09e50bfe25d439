"""CPU per image of the scan's pixel pass (decode, quality statistics, 32×32 thumbnail), issue 15.

    nice -n 10 python bench/bench_pixels.py parts --set t100k --n 2000
    nice -n 10 python bench/bench_pixels.py parts --set photos --n 200
    nice -n 10 python bench/bench_pixels.py full  --set t100k          # every file of the 100k tree

``parts`` times each step over the same files (``time.process_time``, this process only, after one warm-up
pass so the page cache holds the files): decode as the pixel pass does it (``load_image(max_side=512)``),
:func:`cleaning.detect.quality.compute_quality_stats`, :func:`compute_thumbnail`, and the whole row
(:func:`cleaning.review.pixels.pixel_row`). ``full`` runs :func:`cleaning.review.pixels.compute_pixels` (what
``load_or_compute_pixels`` runs for contents not cached) over every file of the set.

Sets: ``t100k`` — the 64-px JPEGs of ``/work/scale-data/t100k`` (every 50th file in sorted order, so all
classes); ``photos`` — the real photos the photo benchmark is built from (``bench/realsets.py``: Tux Paint
photo stamps, scikit-image and opencv-doc samples), the largest ``--n`` by pixel count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

T100K = Path("/work/scale-data/t100k")


def t100k_files(n: int | None, step: int = 50) -> list[Path]:
    files = sorted(T100K.rglob("*.jpg"))
    return files if n is None else files[::step][:n]


def photo_files(n: int | None = 200) -> list[Path]:
    """The photo benchmark's real sources, largest first (pixel count)."""
    import skimage.data  # type: ignore[import-untyped]
    from PIL import Image

    from bench.realsets import OPENCV, STAMPS

    cands = [p for p in Path(skimage.data.__file__).parent.iterdir() if p.suffix in (".png", ".jpg")]
    cands += [p for p in OPENCV.iterdir() if p.suffix in (".png", ".jpg")]
    cands += [p for p in STAMPS.rglob("*.png") if "_back" not in p.stem and "mirror" not in p.stem]
    sized = []
    for p in cands:
        try:
            with Image.open(p) as im:
                sized.append((im.size[0] * im.size[1], str(p)))
        except OSError:
            continue
    sized.sort(key=lambda t: (-t[0], t[1]))
    return [Path(p) for _, p in sized[:n]]


def parts(files: list[Path]) -> dict:
    from cleaning.data.images import load_image
    from cleaning.detect.duplicates import compute_thumbnail
    from cleaning.detect.quality import compute_quality_stats
    from cleaning.review.pixels import pixel_row

    ims = [load_image(p, max_side=512) for p in files]  # warm-up: files in the page cache
    out: dict = {"files": len(files), "median_side": sorted(max(im.size) for im in ims)[len(ims) // 2]}
    for name, fn in [("decode", lambda: [load_image(p, max_side=512) for p in files]),
                     ("stats", lambda: [compute_quality_stats(im) for im in ims]),
                     ("thumbnail", lambda: [compute_thumbnail(im) for im in ims]),
                     ("row_from_decoded", lambda: [pixel_row(im) for im in ims])]:
        best = float("inf")
        for _ in range(3):
            t = time.process_time()
            fn()
            best = min(best, time.process_time() - t)
        out[f"{name}_ms"] = round(1000 * best / len(files), 3)
    return out


def full(files: list[Path]) -> dict:
    from cleaning.review.pixels import compute_pixels

    t = time.process_time()
    stats, thumbs, failed = compute_pixels([str(p) for p in files])
    cpu = time.process_time() - t
    return {"files": len(files), "cpu_s": round(cpu, 1), "ms_per_image": round(1000 * cpu / len(files), 3),
            "failed": len(failed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["parts", "full"])
    ap.add_argument("--set", choices=["t100k", "photos"], default="t100k")
    ap.add_argument("--n", type=int, default=None)
    a = ap.parse_args()
    files = t100k_files(a.n) if a.set == "t100k" else photo_files(a.n or 200)
    res = parts(files) if a.what == "parts" else full(files)
    res.update({"set": a.set, "load": "/".join(f"{v:.1f}" for v in os.getloadavg())})
    print(json.dumps(res))


if __name__ == "__main__":
    main()
