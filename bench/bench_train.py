"""Benchmark of training (issue 11): accuracy of the default ``train`` on real handwritten digits and on
real photos, probe vs fine-tune, time, and memory over repeated runs in one process.

    python bench/bench_train.py [--part digits|photos|memory|all] [--out bench/results/train.md]

Digits: OpenCV's ``digits.png`` (Debian ``opencv-doc``), 600 images (60 per class) upscaled to 64 px, or
scikit-learn's digits when it is missing. Photos: Tux Paint stamps (Debian ``tuxpaint-stamps-default``), 6
classes. Memory: 1,000 digits, three default runs one after the other in this process; peak RSS
(``ru_maxrss``) and RSS after each run. Each part appends its table to the results file's sections.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from digits import make_digits_tree  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load() -> str:
    return "load " + "/".join(f"{x:.1f}" for x in os.getloadavg())


def _train(root: Path, **kw: object) -> dict:
    from cleaning.data.workspace import Workspace
    from cleaning.model.train import TrainSettings
    from cleaning.model.trainrun import train_workspace

    ws = Workspace.open(root)
    t = time.time()
    rec, res = train_workspace(ws, TrainSettings(**kw))  # type: ignore[arg-type]
    m = res.metrics
    return {"images": m["n_train"] + m["n_valid"], "valid": m["n_valid"], "size": m["settings"]["size"],
            "probe": m["probe_accuracy"], "finetune": m["finetune_accuracy"], "accuracy": m["accuracy"],
            "kept": m["chosen"], "epochs": sum(1 for h in res.history if h.get("kind") == "epoch"),
            "seconds": round(time.time() - t, 1), "load": _load(), "mode": m["mode"], "status": rec.status}


def _row(r: dict) -> str:
    ft = "–" if r["finetune"] is None else f"{r['finetune']:.3f}"
    return (f"| {r['name']} | {r['images']} ({r['valid']} eval) | {r['mode']} | {r['size']} | {r['probe']:.3f} | {ft} | "
            f"**{r['accuracy']:.3f}** ({r['kept']}) | {r['epochs']} | {r['seconds']} | {r['load']} |")


HEADER = ("| data set | images | mode | px | probe | fine-tuned | kept | epochs | seconds | load |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def part_digits(tmp: Path) -> list[str]:
    root, source = make_digits_tree(tmp / "digits", per_class=60, side=64)
    rows = []
    for mode in ("quick", "full"):
        r = _train(root, mode=mode)
        r["name"] = f"digits ({source})"
        rows.append(_row(r))
        print(rows[-1], flush=True)
    return rows


def part_photos(tmp: Path) -> list[str]:
    from bench_model import make_tux_tree

    root = make_tux_tree(tmp / "tux", side=400)
    rows = []
    for mode in ("quick", "full"):
        r = _train(root, mode=mode)
        r["name"] = "Tux Paint photos (6 classes)"
        rows.append(_row(r))
        print(rows[-1], flush=True)
    return rows


def part_memory(tmp: Path, runs: int = 3) -> list[str]:
    root, _ = make_digits_tree(tmp / "digits1k", per_class=100, side=64)
    out = ["| run | mode | seconds | RSS after (MB) | peak RSS so far (MB) | load |", "|---|---|---|---|---|---|"]
    base = _rss_mb()
    out.append(f"| before | – | – | {base:.0f} | {_peak_mb():.0f} | {_load()} |")
    for i in range(runs):
        r = _train(root, mode="full")
        gc.collect()
        out.append(f"| {i + 1} | full ({r['epochs']} epochs, acc {r['accuracy']:.3f}) | {r['seconds']} | "
                   f"{_rss_mb():.0f} | {_peak_mb():.0f} | {r['load']} |")
        print(out[-1], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--part", default="all", choices=["digits", "photos", "memory", "all"])
    ap.add_argument("--out", default=str(HERE / "results" / "train.json"))
    args = ap.parse_args()
    os.environ.setdefault("CLEANING_CACHE", str(Path.home() / ".cache" / "cleaning"))
    parts = ["digits", "photos", "memory"] if args.part == "all" else [args.part]
    results = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    with tempfile.TemporaryDirectory() as d:
        for p in parts:
            results[p] = {"rows": globals()[f"part_{p}"](Path(d) / p), "when": time.strftime("%Y-%m-%d %H:%M")}
            Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
