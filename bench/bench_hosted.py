"""Memory of the hosted app through the full demo loop: upload, scan, map, three training runs, export.

    python bench/bench_hosted.py [--runs 3] [--size 64] [--epochs 1] [--sessions 1]

Drives the real app (``dashboard.py``, hosted mode, its own scratch root) with Streamlit's AppTest *in this
process*, so this process is the server: every page's caches, models and the training runs live here.
A sampler thread reads ``VmRSS`` every 0.1 s. Steps, per visitor session:

1. upload the bundled demo as a zip (Overview's uploader → hostile-file checks → scan);
2. Issues page (embeddings via the ONNX backbone, out-of-sample predictions, the issue table);
3. Embedding page (the UMAP map); delete three images;
4. Train page: ``--runs`` "full" training runs (EfficientNet-Lite0 probe, then fine-tune at ``--size`` px
   for at most ``--epochs`` epochs), each in the page's background thread, waited for;
5. Export page and the download zip.

Reports the peak RSS, the RSS after each step and each run's growth; writes ``bench/results/hosted.md``
and ``hosted.json``. Budget (issue 10): peak < 2.0 GB and no growth from one training run to the next.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"
BUDGET_MB = 2000


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.1)


def demo_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted((REPO / "demo" / "data").rglob("*")):
            if p.is_file():
                zf.write(p, "demo/" + p.relative_to(REPO / "demo" / "data").as_posix())
    return buf.getvalue()


def check(at: object) -> None:
    exc = list(at.exception)  # type: ignore[attr-defined]
    if exc:
        raise RuntimeError([e.value for e in exc])


def visitor_loop(args: argparse.Namespace, sampler: Sampler, steps: list[dict], who: str) -> None:
    from streamlit.testing.v1 import AppTest

    from cleaning.data.workspace import Workspace
    from pages._downloads import zip_bytes

    def mark(name: str, t0: float) -> None:
        steps.append({"visitor": who, "step": name, "rss_mb": round(rss_mb(), 1),
                      "peak_so_far_mb": round(sampler.peak, 1), "seconds": round(time.perf_counter() - t0, 1)})
        print(f"[{who}] {name:28s} rss {rss_mb():7.0f} MB  peak {sampler.peak:7.0f} MB  "
              f"{time.perf_counter() - t0:6.1f} s", flush=True)

    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=1800)
    t = time.perf_counter()
    at.run()
    check(at)
    up = [u for u in at.get("file_uploader") if u.proto.label.startswith("A .zip")][0]
    up.set_value(("demo.zip", demo_zip(), "application/zip")).run()
    check(at)
    mark("upload + scan", t)
    t = time.perf_counter()
    at.switch_page("pages/issues.py").run()
    check(at)
    mark("issues (embed, OOS, scan)", t)
    t = time.perf_counter()
    at.switch_page("pages/embedding.py").run()
    check(at)
    mark("embedding map", t)
    ws = Workspace.open(at.session_state["dataset_root"])
    ids = ws.items_frame()["item_id"].tolist()[:3]
    ws.store.record(ids, "delete", note="bench")
    at.switch_page("pages/train.py").run()
    check(at)
    from cleaning.model.runs import list_runs

    for k in range(args.runs):
        t = time.perf_counter()
        at.radio(key="train_mode").set_value("full")
        at.select_slider(key="train_size").set_value(args.size)
        at.number_input(key="train_epochs").set_value(args.epochs)
        [b for b in at.button if b.proto.label == "Train"][0].click().run()
        check(at)
        while len(list_runs(ws)) < k + 1:  # training runs in the background (a thread of this process)
            time.sleep(2)
            if time.perf_counter() - t > 1800:
                raise RuntimeError("training run did not finish in 30 min")
        time.sleep(2)
        at.run()  # the page after the run (and the next script run's memory trim)
        check(at)
        mark(f"training run {k + 1}", t)
    t = time.perf_counter()
    at.switch_page("pages/export.py").run()
    check(at)
    data = zip_bytes(ws)
    mark(f"export + zip ({len(data) / 2**20:.1f} MB)", t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--sessions", type=int, default=1, help="visitors, one after the other")
    ap.add_argument("--out", default="hosted")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-hosted-"))
    os.environ.update(CLEANING_MODE="hosted", CLEANING_SCRATCH=str(scratch), CLEANING_WARM="0",
                      CLEANING_DEMO_DIR=str(scratch / "demo-cache"), HF_HUB_OFFLINE="1")
    sampler = Sampler()
    sampler.start()
    base = rss_mb()
    steps: list[dict] = []
    t0 = time.perf_counter()
    for s in range(args.sessions):
        visitor_loop(args, sampler, steps, f"visitor {s + 1}")
    sampler.stop = True
    sampler.join()
    peak = max(sampler.peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    runs = [s["rss_mb"] for s in steps if s["step"].startswith("training run")]
    growth = [round(b - a, 1) for a, b in zip(runs, runs[1:])]
    res = {"peak_rss_mb": round(peak, 1), "budget_mb": BUDGET_MB, "within_budget": peak < BUDGET_MB,
           "rss_at_start_mb": round(base, 1), "growth_between_runs_mb": growth, "steps": steps,
           "seconds": round(time.perf_counter() - t0, 1), "args": vars(args),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
    lines = [f"# Hosted memory: the full demo loop ({args.sessions} visitor(s), {args.runs} training runs)", "",
             f"`python bench/bench_hosted.py {' '.join(sys.argv[1:])}` — {res['machine']}; AppTest in one "
             "process (that process is the server).", "",
             f"**Peak RSS {peak:.0f} MB** (budget {BUDGET_MB} MB: {'within' if peak < BUDGET_MB else 'OVER'}); "
             f"RSS at start {base:.0f} MB; growth from one training run to the next: {growth} MB.", "",
             "| visitor | step | RSS after (MB) | peak so far (MB) | seconds |", "|---|---|---:|---:|---:|"]
    lines += [f"| {s['visitor']} | {s['step']} | {s['rss_mb']:.0f} | {s['peak_so_far_mb']:.0f} | {s['seconds']} |"
              for s in steps]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
