"""Our scan against fastdup on the same files, side by side in one run (issue 15, item 2).

    python bench/bench_fastdup.py --fastdup-python /tmp/fdvenv/bin/python [--n 4000] [--rounds 2]
                                  [--tree DIR] [--out fastdup]

fastdup 2.54 pins numpy < 2, Pillow 10.3 and scikit-learn 1.5, so it lives in its own venv
(``python3 -m venv V && V/bin/pip install fastdup``; it runs offline: its model ships in its wheel).
Both tools are run as child processes on the same tree, from nothing (a fresh state folder for ours,
a fresh work folder for fastdup), alternating which goes first in each round, with two threads each
(``fastdup.run(num_threads=2)``; ours uses every CPU, two here). Measured per run: wall seconds, CPU
seconds (user + system of the child, from ``wait4``) and peak RSS (``ru_maxrss``). ``SENTRY_OPT_OUT=1``
keeps fastdup from phoning home.

What each does: ours embeds every image (EfficientNet-Lite0, 224 px), fits the out-of-sample heads twice
(the label check's re-learning pass), decodes every file again for its pixel statistics, and runs the
duplicate, label, off-topic, junk-group and quality checks; fastdup embeds every image with its own CNN,
builds a kNN graph, and writes similarity, outlier, connected-component and image-statistics tables.

The tree is ``bench/scale_tree.py``'s (64-px JPEGs, 10 drawn classes with planted noise and copies),
made once under ``--tree`` (default ``bench/out/fastdup-tree``). Writes ``bench/results/<out>.md|json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"

FASTDUP_CHILD = """
import sys, fastdup
fd = fastdup.create(work_dir=sys.argv[2], input_dir=sys.argv[1])
fd.run(overwrite=True, num_threads=2, verbose=False)
"""


def _run(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{err[-2000:]}")
    return {"wall_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
            "peak_rss_mb": round(ru.ru_maxrss / 1024), "load_after": round(os.getloadavg()[0], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fastdup-python", required=True, help="the python of a venv with fastdup installed")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tree", type=Path, default=REPO / "bench" / "out" / "fastdup-tree")
    ap.add_argument("--out", default="fastdup")
    args = ap.parse_args()

    from bench.scale_tree import make_tree

    root = args.tree / f"t{args.n}"
    if not root.is_dir():
        make_tree(root, args.n, seed=21)
    n_files = sum(1 for p in root.rglob("*") if p.is_file())
    env = {**os.environ, "SENTRY_OPT_OUT": "1", "PYTHONPATH": str(REPO)}
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fastdup-") as tmp:
        for r in range(args.rounds):
            order = ["ours", "fastdup"] if r % 2 == 0 else ["fastdup", "ours"]
            for tool in order:
                work = Path(tmp) / f"{tool}-{r}"
                if tool == "ours":
                    cmd = [sys.executable, "-m", "cleaning", "scan", str(root), "--state-dir", str(work), "--create"]
                else:
                    cmd = [args.fastdup_python, "-c", FASTDUP_CHILD, str(root), str(work)]
                res = {"tool": tool, "round": r, "load_before": round(os.getloadavg()[0], 1), **_run(cmd, env)}
                print(res, flush=True)
                runs.append(res)
                shutil.rmtree(work, ignore_errors=True)

    def med(tool: str, key: str) -> float:
        return statistics.median(float(x[key]) for x in runs if x["tool"] == tool)  # type: ignore[arg-type]

    summary = {t: {k: round(med(t, k), 1) for k in ("wall_s", "cpu_s", "peak_rss_mb")} for t in ("ours", "fastdup")}
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
           "date": time.strftime("%Y-%m-%d %H:%M"), "files": n_files, "runs": runs, "median": summary}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(out, indent=1))
    lines = [f"# Our scan vs fastdup, side by side ({out['date']})", "",
             f"`python bench/bench_fastdup.py --n {args.n} --rounds {args.rounds}`: {n_files} files of "
             f"`bench/scale_tree.py` (64-px JPEGs), {out['machine']}; both from nothing, alternating order.", "",
             "| tool | round | wall s | CPU s | peak RSS MB | load before → after |", "|---|---|---|---|---|---|"]
    lines += [f"| {x['tool']} | {x['round']} | {x['wall_s']} | {x['cpu_s']} | {x['peak_rss_mb']} | "
              f"{x['load_before']} → {x['load_after']} |" for x in runs]
    lines += ["", "| median | wall s | CPU s | peak RSS MB |", "|---|---|---|---|"]
    lines += [f"| {t} | {s['wall_s']} | {s['cpu_s']} | {s['peak_rss_mb']} |" for t, s in summary.items()]
    ratio = summary["ours"]["wall_s"] / max(summary["fastdup"]["wall_s"], 1e-9)
    lines += ["", f"Ours / fastdup, wall: **{ratio:.2f}×** (target ≤ 1)."]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
