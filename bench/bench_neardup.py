"""Near duplicates alone on the real-photo and handwritten-digit sets of ``bench_photos.py``: pair
precision / recall per set kind, recall per planted transform, and CPU seconds of the duplicate step.

    python bench/bench_neardup.py      # writes bench/results/neardup.md

Same sets, embeddings and pixels (cached) as ``bench_photos.py``; the detector is called as the scan
calls it (:func:`cleaning.detect.duplicates.compute_duplicate_groups` with thumbnails and image sizes).
Faster to iterate on than the whole pipeline; the scored pairs are the same.
"""

from __future__ import annotations

import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import bench_photos as bp  # noqa: E402
import realsets  # noqa: E402


def _pairs(groups: np.ndarray) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for g in np.unique(groups):
        out |= set(itertools.combinations(np.flatnonzero(groups == g).tolist(), 2))
    return out


def main() -> int:
    from cleaning.detect.duplicates import compute_duplicate_groups

    load0, t0 = os.getloadavg()[0], time.monotonic()
    base = realsets.base_images()
    seeds = [1, 2, 3]
    sets = [realsets.photo_set(base, s, c) for s in seeds for c in realsets.CLUSTERS]
    sets += [realsets.digit_set(base, s, n)[0] for n in (650, 4000) for s in seeds]
    agg: dict[str, dict] = {}
    for s in sets:
        paths = list(s["path"])
        x, sha = bp.embed(paths)
        _, thumbs, phash, w, h = bp.pixels(paths)
        c0 = time.process_time()
        g = compute_duplicate_groups(x, sha, phash, thumbs, sizes=np.column_stack([w, h]))
        cpu = time.process_time() - c0
        found = _pairs(g.group)
        truth = {tuple(sorted((int(r.copy_of), i))): r.transform for i, r in enumerate(s.itertuples()) if r.copy_of >= 0}
        kind = "photos" if s["set"].iloc[0].startswith("photos") else s["set"].iloc[0]
        a = agg.setdefault(kind, {"tp": 0, "found": 0, "truth": 0, "cpu": [], "miss": {}, "tot": {}})
        a["tp"] += len(found & set(truth))
        a["found"] += len(found)
        a["truth"] += len(truth)
        a["cpu"].append(cpu)
        for p, t in truth.items():
            a["tot"][t] = a["tot"].get(t, 0) + 1
            a["miss"][t] = a["miss"].get(t, 0) + int(p not in found)
        print(s["set"].iloc[0], int(s["seed"].iloc[0]), len(found & set(truth)), len(found), len(truth), f"{cpu:.1f} s",
              flush=True)
    ts = sorted({t for a in agg.values() for t in a["tot"]})
    lines = ["# Near duplicates alone (issue 9, item 5)", "",
             f"`python bench/bench_neardup.py` on {time.strftime('%Y-%m-%d')} — {platform.system()} {platform.machine()}, "
             f"{len(os.sched_getaffinity(0))} CPUs (shared; load {load0:.1f} → {os.getloadavg()[0]:.1f}), "
             f"{(time.monotonic() - t0) / 60:.1f} min wall. Sets of `bench_photos.py` (photos: 3 seeds × 3 junk kinds; "
             "digits: 3 seeds each), pairs pooled over seeds.", "",
             "| sets | pairs P | pairs R | CPU s per set (duplicate step) | " + " | ".join(f"R {t}" for t in ts) + " |",
             "|---|---|---|---|" + "---|" * len(ts)]
    for k, a in agg.items():
        rec = [f"{1 - a['miss'].get(t, 0) / a['tot'][t]:.2f}" if t in a["tot"] else "–" for t in ts]
        lines.append(f"| {k} | {a['tp'] / max(a['found'], 1):.3f} | {a['tp'] / a['truth']:.3f} | "
                     f"{np.mean(a['cpu']):.1f} | " + " | ".join(rec) + " |")
    text = "\n".join(lines) + "\n"
    (REPO / "bench" / "results" / "neardup.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
