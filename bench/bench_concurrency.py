"""Stress benchmark: several processes at once on one data set (issue 14).

    python bench/bench_concurrency.py [--n 4000] [--seconds 60]

Runs :func:`tests.stress.run_stress` with more images, more processes and more time than the CI test:
deciders (relabel / delete / restore / keep, undo, redo), appliers, exporters (each export checked
against its labels.csv), rescanners (also reopening the workspace, which runs recover) and a snapshot
scan. Then checks every file exactly once (sha256 multiset of ROOT + quarantine unchanged), the store
(no duplicate rows, nothing falsely missing, every item where the store says, decisions applied) and
the history. Writes bench/results/concurrency.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from tests.stress import run_stress

RESULTS = Path(__file__).resolve().parent / "results" / "concurrency.md"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="images")
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds of concurrent work")
    args = ap.parse_args()
    workers = {"decide": 3, "apply": 2, "export": 2, "rescan": 2, "scan": 1}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        res = run_stress(Path(d), n_images=args.n, seconds=args.seconds, workers=workers)
    wall = time.monotonic() - t0
    print(res.summary())
    lines = [
        "# Concurrency stress (issue 14)",
        "",
        f"`python bench/bench_concurrency.py --n {args.n} --seconds {args.seconds:g}` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average at the end {os.getloadavg()[0]:.1f} (other jobs shared the machine).",
        "",
        "| what | value |",
        "| --- | --- |",
        f"| images | {res.n_images} (32 px JPEG photo crops) |",
        f"| processes at once | {res.processes} ({', '.join(f'{v} {k}' for k, v in workers.items())}) |",
        f"| seconds of concurrent work | {res.seconds:.0f} (whole run incl. set-up and checks {wall:.0f}) |",
        *[f"| {k} operations | {v} |" for k, v in sorted(res.operations.items())],
        f"| decision rows in the history | {res.decisions} |",
        f"| files checked (sha256, ROOT + quarantine) | {res.files_checked} |",
        f"| exports checked against labels.csv | {res.exports_checked} |",
        f"| problems found | {len(res.problems)} |",
        "",
        *(f"- {p}" for p in res.problems),
        "",
        "Operations: decide = one recorded batch, undo or redo; apply = one `apply_decisions` run; export = one",
        "full export checked file by file; rescan = one `Workspace.refresh` (every third also reopens the",
        "workspace, which runs `recover`); scan = one pinned-snapshot pass reading every file under the shared",
        "lock. The CI version (`tests/test_stress.py`, marked `stress`) runs 1,200 images for 12 s.",
    ]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
