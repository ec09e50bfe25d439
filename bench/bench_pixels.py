"""CPU per image of the scan's pixel pass (decode, quality statistics, 32×32 thumbnail), issue 15.

    nice -n 10 python bench/bench_pixels.py parts --set t100k --n 2000
    nice -n 10 python bench/bench_pixels.py parts --set photos --n 200
    nice -n 10 python bench/bench_pixels.py full  --set t100k          # every file of the 100k tree
    nice -n 10 python bench/bench_pixels.py once  --set t100k --n 2000  # one decode vs two (no model)
    nice -n 10 python bench/bench_pixels.py phases --root TREE [--profile OUT.prof]  # a scan, CPU per step

``parts`` times each step over the same files (``time.process_time``, this process only, after one warm-up
pass so the page cache holds the files): decode as the pixel pass does it (``load_image(max_side=512)``),
:func:`cleaning.detect.quality.compute_quality_stats`, :func:`compute_thumbnail`, and the whole row
(statistics and thumbnail of a decoded image). ``full`` runs the pixel pass's loop (decode, statistics, thumbnail)
over every file of the set. ``parts`` and ``full`` call only what main has too: run them with
``PYTHONPATH=/work/main`` for the numbers before this branch.

``once`` measures what decoding each file once saves: the embedding's decode and preprocessing (with the
backbone replaced by a no-op, so its CPU does not drown the difference) followed by the pixel pass, against
the same with the pixel rows measured from the embedding's decode (``PixelsFromEmbedding``) and the pixel
pass decoding only the rest; median of 4 alternating rounds. ``phases`` runs a whole scan from nothing (a
fresh state folder) and prints the process's CPU seconds (all threads) per step, split where the progress
message changes step; ``--profile`` also writes a cProfile of the main thread.

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
sys.path.append(str(REPO))  # after PYTHONPATH: PYTHONPATH=/work/main times main's code ("before")

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

    ims = [load_image(p, max_side=512) for p in files]  # warm-up: files in the page cache
    out: dict = {"files": len(files), "median_side": sorted(max(im.size) for im in ims)[len(ims) // 2]}
    for name, fn in [("decode", lambda: [load_image(p, max_side=512) for p in files]),
                     ("stats", lambda: [compute_quality_stats(im) for im in ims]),
                     ("thumbnail", lambda: [compute_thumbnail(im) for im in ims]),
                     ("stats_and_thumbnail", lambda: [(compute_quality_stats(im), compute_thumbnail(im))
                                                      for im in ims])]:
        best = float("inf")
        for _ in range(3):
            t = time.process_time()
            fn()
            best = min(best, time.process_time() - t)
        out[f"{name}_ms"] = round(1000 * best / len(files), 3)
    return out


def full(files: list[Path]) -> dict:
    from cleaning.data.images import UnreadableImage, load_image
    from cleaning.detect.duplicates import compute_thumbnail
    from cleaning.detect.quality import compute_quality_stats

    t, failed = time.process_time(), 0
    for p in files:  # the pixel pass's loop for contents not cached (same calls on main and on this branch)
        try:
            im = load_image(p, max_side=512)
        except UnreadableImage:
            failed += 1
            continue
        compute_quality_stats(im)
        compute_thumbnail(im)
    cpu = time.process_time() - t
    return {"files": len(files), "cpu_s": round(cpu, 1), "ms_per_image": round(1000 * cpu / len(files), 3),
            "failed": failed}


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def once(files: list[Path]) -> dict:
    import statistics

    import numpy as np

    import cleaning.model.engines as eng
    from cleaning.review.pixels import PixelsFromEmbedding, compute_pixels

    paths = [str(p) for p in files]
    eng.get_engine = lambda *a, **k: (lambda batch: np.ones((len(batch), 1280), np.float32))  # no model
    compute_pixels(paths)
    two, one, n_measured = [], [], 0
    for _ in range(4):
        t = _cpu()
        eng.embed_images(paths)
        compute_pixels(paths)
        two.append(_cpu() - t)
        t, seen = _cpu(), PixelsFromEmbedding()
        eng.embed_images(paths, on_decoded=lambda i, im, seen=seen: seen(paths[i], im))
        compute_pixels([p for p in paths if p not in seen.rows])
        one.append(_cpu() - t)
        n_measured = len(seen.rows)
    ms = lambda v: round(1000 * statistics.median(v) / len(paths), 3)  # noqa: E731
    return {"files": len(paths), "measured_in_embedding": n_measured, "two_decodes_ms": ms(two),
            "one_decode_ms": ms(one), "saved_ms": round(ms(two) - ms(one), 3)}


def phases(root: Path, profile: str | None) -> dict:
    import cProfile
    import tempfile

    t0 = _cpu()
    from cleaning.data.workspace import Workspace
    from cleaning.review.analysis import compute_scores, find_issues

    steps: dict[str, float] = {"imports": _cpu() - t0}
    mark = [_cpu(), "open+ingest"]

    def progress(what: str, frac: float) -> None:
        step = " ".join(w for w in what.split()[:2] if not w[0].isdigit())
        if step != mark[1]:
            now = _cpu()
            steps[mark[1]] = steps.get(mark[1], 0.0) + now - mark[0]
            mark[:] = [now, step]

    prof = cProfile.Profile() if profile else None
    with tempfile.TemporaryDirectory() as state:
        if prof:
            prof.enable()
        ws = Workspace.open(root, state_dir=state, refresh=True)
        progress("start", 0.0)
        find_issues(ws, progress=progress, include_reviewed=True)
        progress("compute_scores", 1.0)
        compute_scores(ws)
        progress("end", 1.0)
        if prof:
            prof.disable()
            prof.dump_stats(profile)
    return {"steps_cpu_s": {k: round(v, 1) for k, v in steps.items()}, "total_cpu_s": round(_cpu(), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["parts", "full", "once", "phases"])
    ap.add_argument("--root", type=Path, default=None, help="with phases: the tree to scan")
    ap.add_argument("--profile", default=None, help="with phases: write a cProfile of the main thread here")
    ap.add_argument("--set", choices=["t100k", "photos"], default="t100k")
    ap.add_argument("--n", type=int, default=None)
    a = ap.parse_args()
    if a.what == "phases":
        res = phases(a.root, a.profile)
    else:
        files = t100k_files(a.n) if a.set == "t100k" else photo_files(a.n or 200)
        res = {"parts": parts, "full": full, "once": once}[a.what](files)
    res.update({"set": a.set, "load": "/".join(f"{v:.1f}" for v in os.getloadavg())})
    print(json.dumps(res))


if __name__ == "__main__":
    main()
