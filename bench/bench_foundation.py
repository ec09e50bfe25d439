"""Benchmark of the foundation: scanning, the decision store, apply and export.

    python bench/bench_foundation.py [--n 2000]

Builds N real-photo crops (skimage.data, 256 px JPEG) in a temp folder, then times a first scan
(full decode + sha256 + pHash), a rescan (nothing changed), recording decisions, computing current
labels, apply (quarantine + moves) and export. Writes bench/results/foundation.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from cleaning.data.files import apply_decisions, export_dataset  # noqa: E402
from cleaning.data.workspace import Workspace  # noqa: E402
from tests.hostile import make_image_tree  # noqa: E402


def timed(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "foundation.md"))
    a = ap.parse_args()
    k = 8
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "ds"
        make_image_tree(root, {f"class{i}": a.n // k for i in range(k)}, size=256)
        n = sum(1 for _ in root.rglob("*.jpg"))
        ws, t_open = timed(lambda: Workspace.open(root))  # first open scans
        _, t_rescan = timed(ws.scan)
        ids = ws.items_frame()["item_id"].tolist()
        rng = np.random.default_rng(0)
        pick = rng.choice(ids, size=min(500, len(ids)), replace=False).tolist()

        def record() -> None:
            for i, iid in enumerate(pick):
                ws.store.record([iid], "relabel" if i % 2 else "delete", label="class0" if i % 2 else None)

        _, t_record = timed(record)
        _, t_current = timed(ws.store.current)
        _, t_frame = timed(ws.items_frame)
        _, t_undo = timed(lambda: [ws.store.undo() for _ in range(50)])
        plan, t_apply = timed(lambda: apply_decisions(ws))
        _, t_export = timed(lambda: export_dataset(ws, Path(d) / "out"))
    rows = [
        ("first scan (decode + sha256 + pHash)", t_open, f"{n / t_open:.0f} img/s"),
        ("rescan, nothing changed", t_rescan, f"{n / t_rescan:.0f} img/s"),
        (f"record {len(pick)} single decisions (each a durable transaction)", t_record,
         f"{1000 * t_record / len(pick):.1f} ms each"),
        (f"current labels of {n} items after {len(pick)} decisions", t_current, ""),
        ("items_frame()", t_frame, ""),
        ("50 undos", t_undo, f"{1000 * t_undo / 50:.1f} ms each"),
        (f"apply ({plan.n_changes} file moves)", t_apply, f"{plan.n_changes / max(t_apply, 1e-9):.0f} moves/s"),
        (f"export {n - len(plan.quarantine)} images", t_export, ""),
    ]
    lines = [f"# Foundation benchmark ({n} images, 256 px JPEG)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"load average {os.getloadavg()[0]:.1f} at start of run (other jobs may share the cores).", "",
             "| step | seconds | rate |", "|---|---:|---:|"]
    lines += [f"| {name} | {t:.2f} | {rate} |" for name, t, rate in rows]
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
