"""Click latency of the Embedding page at 20,000 points in headless Chromium (Debian's), on the real app.

    python bench/bench_clicks.py [--n 20000] [--clicks 15] [--loads 5]
    python bench/bench_clicks.py --app CHECKOUT --label NAME ...   # another commit's app, same data and browser
    python bench/bench_clicks.py --pair A,B,A,B                     # the runs above, side by side, into clicks.*

Data: N real images — fashion-MNIST product photos (28×28 grey, Debian ``dataset-fashion-mnist``) written
as PNG files into 10 class folders under ``bench/out/clicks/`` (once), scanned by the product. The
embeddings are **not** the CNN's (20k images at 10–40 img/s would take 10–30 minutes here): each image's
784 pixels are randomly projected to the backbone's 1280 dimensions and L2-normalised, then stored in the
product's embedding cache. Everything after that is the product's own pipeline: out-of-sample
probabilities, the UMAP map, the page, the figure (Scattergl), the dialog.

Measured:
* server start → healthy;
* page load: navigation to ``/embedding`` → the scatter holds all N points (fresh browser context each);
* click → dialog: a real mouse click on a point at the pixel position Plotly computes → the review dialog
  is visible, and → its image has loaded. After each click Esc closes the dialog (the chart is re-keyed,
  so it is sent again; that time is not in the measurement).
* hover → thumbnail: the pointer moves onto a point → the preview shows that image's thumbnail, loaded
  (above 2,000 points fetched from ``static/thumbs/`` by URL; see ``pages/_hover.py``): wall time from the
  move in Playwright, and the page's own time from Plotly's hover event to the image's ``load``. Whether a
  hover started a script run is checked each time. Before hovering, the time the server's background
  thread takes to write the map's missing thumbnails (first view only) is measured.

Writes ``bench/results/clicks.md`` (and ``clicks.json``); with ``--label`` only ``bench/out/clicks/<label>.json``
(for before/after pairs run alternately at the same load; ``--pair`` then adds their medians to clicks.*).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the browser tests' helpers (tests/ is not an installed package)

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy  # noqa: E402
from tests.browser.test_clicks import POINTS_JS  # noqa: E402

OUT = REPO / "bench" / "out" / "clicks"
RESULTS = REPO / "bench" / "results"
FASHION = Path("/usr/share/datasets/fashion-mnist")
NAMES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def fashion(n: int) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(FASHION / "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION / "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x[:n], y[:n]


def build(n: int) -> tuple[Path, Path]:
    """ROOT with n images, scanned, with pixel-projection embeddings, OOS and the UMAP map cached."""
    from PIL import Image

    from cleaning.data.cache import EmbeddingTable
    from cleaning.data.workspace import Workspace
    from cleaning.model.backbone import DEFAULT_ARCH, arch_spec
    from cleaning.model.embed import embedding_model_key
    from cleaning.model.oos import load_or_compute_oos
    from cleaning.model.projection import load_or_compute_projection

    root, state = OUT / f"data{n}", OUT / "state"
    x, y = fashion(n)
    if not root.exists():
        tmp = root.with_suffix(".partial")
        for i, (img, lab) in enumerate(zip(x, y)):
            d = tmp / NAMES[lab]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / f"{NAMES[lab]}_{i:05d}.png")
        tmp.rename(root)
    t = time.perf_counter()
    ws = Workspace.open(root, state_dir=state / (root.name + ".cleaning"))
    print(f"open + scan: {time.perf_counter() - t:.1f}s", flush=True)
    items = ws.items_frame()
    dim = arch_spec(DEFAULT_ARCH).dim
    table = EmbeddingTable(ws.cache_dir, embedding_model_key(), dim)
    todo = table.missing(items["sha256"])
    if todo:
        idx = {f"{NAMES[lab]}/{NAMES[lab]}_{i:05d}.png": i for i, lab in enumerate(y)}
        first = dict(zip(items["sha256"][::-1], items["path"][::-1]))
        proj = np.random.default_rng(0).normal(size=(784, dim)).astype(np.float32)
        pix = np.stack([x[idx[first[s]]].reshape(-1) for s in todo]).astype(np.float32) / 255
        emb = (pix - pix.mean(axis=0)) @ proj
        emb /= np.linalg.norm(emb, axis=1, keepdims=True) + 1e-8
        table.add(todo, emb)
        table.save()
    if ws.store.decision_count():
        raise SystemExit(f"{root} has decisions recorded: delete {OUT} to start from a clean copy")
    for what, fn in (("out-of-sample probabilities", lambda: load_or_compute_oos(ws)),
                     ("UMAP map", lambda: load_or_compute_projection(ws, "umap"))):
        t = time.perf_counter()
        fn()
        print(f"{what}: {time.perf_counter() - t:.1f}s", flush=True)
    ws.store.close()
    return root, state


def get_points(page) -> list[dict]:  # noqa: ANN001
    """The chart's points, waiting while it is being replaced (a re-keyed chart is briefly absent)."""
    for _ in range(20):  # it can vanish again between the wait and the read (seen once per ~30 clicks)
        page.wait_for_function(f"() => ({POINTS_JS})() !== null", timeout=120_000)
        pts = page.evaluate(POINTS_JS)
        if pts is not None:
            return pts
        time.sleep(0.2)
    raise RuntimeError("the chart never settled")


#: A large map draws a sample as markers and says how many ("20,000 of 99,899 images are drawn as clickable
#: markers"): then every one of those markers drawn is "every point drawn" (the raster of all is in the layout).
MARKERS_JS = ("(n) => { const m = document.body.innerText.match(/([\\d,]+) of ([\\d,]+) images are drawn as "
              "clickable markers/); return m && +m[2].replace(/,/g, '') === n ? +m[1].replace(/,/g, '') : n; }")


def chart_ready(page, n: int) -> None:  # noqa: ANN001
    page.wait_for_function(
        "(n) => document.querySelector('[data-testid=stException]') || [...document.querySelectorAll("
        "'.js-plotly-plot')].some(g => g._fullLayout && g._fullData && g._fullData.reduce("
        "(s, t) => s + (t.customdata ? t.customdata.length : 0), 0) === (" + MARKERS_JS + ")(n))", arg=n,
        timeout=180_000)
    if page.locator("[data-testid=stException]").count():
        raise RuntimeError(page.locator("[data-testid=stException]").first.inner_text()[:2000])


def idle(page) -> None:  # noqa: ANN001
    time.sleep(0.3)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=120_000)


#: The browser configurations measured. Both render WebGL with SwiftShader (there is no GPU here); with
#: ``--disable-gpu`` Chromium also *composites* in software and so reads every WebGL frame back on the
#: main thread, which blocks it for the whole redraw that a click's selection causes (~0.2 s at 20k points).
#: A desktop browser composites on the GPU, which the second configuration reproduces.
CONFIGS = {
    "software compositing (`--disable-gpu`, the tests' flags)": CHROMIUM_ARGS,
    "GPU compositing on SwiftShader (`--use-angle=swiftshader --enable-unsafe-swiftshader`)":
        [a for a in CHROMIUM_ARGS if a != "--disable-gpu"] + ["--use-gl=angle", "--use-angle=swiftshader",
                                                               "--enable-unsafe-swiftshader"],
}


def thumbs_written(root: Path, state: Path, folder: Path, timeout: float = 900) -> tuple[float, int]:
    """(seconds until every thumbnail of the map exists under ``folder`` (the app's static/thumbs), how many
    there are)."""
    from cleaning.data.workspace import Workspace
    from pages._hover import thumb_name

    ws = Workspace.open(root, state_dir=state / (root.name + ".cleaning"))
    files = {folder / thumb_name(s) for s in ws.items_frame()["sha256"].dropna()}
    ws.store.close()
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        if all(f.exists() for f in files):
            break
        time.sleep(0.5)
    return time.perf_counter() - t, len(files)


def time_writer(root: Path, state: Path) -> dict:
    """Wall and CPU seconds of :func:`pages._hover.write_static_thumbs` for every image, into an empty folder
    (what the server's background thread does the first time a large map is shown)."""
    import tempfile

    from cleaning.data.workspace import Workspace
    from pages._hover import write_static_thumbs

    ws = Workspace.open(root, state_dir=state / (root.name + ".cleaning"))
    f = ws.items_frame()
    ws.store.close()
    jobs = list(zip(f["abs_path"].astype(str), f["sha256"].astype(str)))
    with tempfile.TemporaryDirectory() as d:
        t, c = time.perf_counter(), time.process_time()
        n = write_static_thumbs(jobs, Path(d))
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"files": n, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "loadavg": round(os.getloadavg()[0], 2)}


IDLE_JS = ("() => { const a = document.querySelector('[data-testid=stApp]'); "
           "return !!a && a.getAttribute('data-test-script-state') !== 'running'; }")


def hovers(page, n: int, rng: np.random.Generator) -> dict:  # noqa: ANN001
    """Hover ``n`` isolated points one after another; wall and in-page times to the thumbnail loaded."""
    out: dict = {"hover_thumb_s": [], "hover_page_ms": [], "hover_reruns": 0, "hover_src": ""}
    pts = get_points(page)
    xs = np.array([[p["x"], p["y"]] for p in pts])
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g.__hoverPreview)",
                           timeout=60_000)
    for _ in range(n):
        while True:
            i = int(rng.integers(len(pts)))
            d = np.abs(xs - xs[i]).sum(axis=1)
            d[i] = 1e9
            if d.min() > 6:
                break
        page.mouse.move(5, 5)
        page.mouse.move(pts[i]["x"] - 8, pts[i]["y"] - 8)
        time.sleep(0.1)
        before = page.evaluate("() => (window.__hoverLatency || []).length")
        t = time.perf_counter()
        page.mouse.move(pts[i]["x"], pts[i]["y"])
        page.wait_for_function("(id) => { const b = document.querySelector('.cleaning-hover-preview');"
                               " return b && b.dataset.loaded === id; }", arg=pts[i]["id"], timeout=30_000)
        out["hover_thumb_s"].append(time.perf_counter() - t)
        lat = page.evaluate("() => window.__hoverLatency || []")
        if len(lat) > before:
            out["hover_page_ms"].append(lat[-1])
        out["hover_reruns"] += 0 if page.evaluate(IDLE_JS) else 1
    out["hover_src"] = page.evaluate("() => document.querySelector('.cleaning-hover-preview img').getAttribute('src')"
                                     ".slice(0, 40)")
    page.mouse.move(5, 5)
    return out


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads), 0 when it is gone."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_process(port: str) -> dict[str, float]:
    """CPU seconds so far of the browser's processes (by Chromium's ``--type``: renderer, gpu-process, ...;
    the browser process as ``browser``) and of the app's server (the ``streamlit run`` on ``port``).
    Differences of two snapshots give what a click cost each side, whatever the machine's load."""
    out: dict[str, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # Chromium rewrites its command line into one string with spaces: split both ways
        args = [a for c in cmd if c for a in c.decode(errors="replace").split()]
        if not args:
            continue
        if "chrom" in args[0]:
            kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "browser")
        elif "streamlit" in " ".join(args[:3]) and port in args:
            kind = "server"
        else:
            continue
        out[kind] = out.get(kind, 0.0) + _cpu_s(int(d.name))
    return out


def _cpu_diff(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: round(b.get(k, 0.0) - a.get(k, 0.0), 3) for k in sorted(set(a) | set(b))}


def measure(base: str, n: int, clicks: int, loads: int, args: list[str], n_hovers: int = 0) -> dict:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    res: dict = {"load_s": [], "click_dialog_s": [], "click_image_s": [], "types": set(), "click_cpu": []}
    port = base.rsplit(":", 1)[1]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        for k in range(loads + 1):  # the first load warms the server's caches: reported apart
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            t = time.perf_counter()
            page.goto(f"{base}/embedding")
            chart_ready(page, n)
            dt = time.perf_counter() - t
            if k == 0:
                res["first_load_s"] = dt
            else:
                res["load_s"].append(dt)
            if k < loads:
                ctx.close()
        idle(page)
        rng = np.random.default_rng(1)
        if n_hovers:
            res.update(hovers(page, n_hovers, rng))
        for _ in range(clicks):
            chart_ready(page, n)
            idle(page)
            pts = get_points(page)  # waits while a re-keyed chart is being replaced
            kind = page.evaluate("() => document.querySelector('.js-plotly-plot')?._fullData?.[0]?.type")
            if kind:
                res["types"].add(kind)
            xs = np.array([[p["x"], p["y"]] for p in pts])
            while True:  # a point with no neighbour within 6 px, so the click names one image
                i = int(rng.integers(len(pts)))
                d = np.abs(xs - xs[i]).sum(axis=1)
                d[i] = 1e9
                if d.min() > 6:
                    break
            page.mouse.move(pts[i]["x"], pts[i]["y"])
            time.sleep(0.2)
            cpu0 = cpu_by_process(port)
            t = time.perf_counter()
            page.mouse.click(pts[i]["x"], pts[i]["y"])
            dlg = page.locator("[data-testid=stDialog]")
            try:
                dlg.wait_for(state="visible", timeout=30_000)
            except PlaywrightTimeout:  # counted and reported, not hidden: the click opened nothing
                res["click_failed"] = res.get("click_failed", 0) + 1
                print(f"click on {pts[i]['id']} opened no dialog in 30 s", flush=True)
                page.screenshot(path=str(OUT / f"click_failed_{res['click_failed']}.png"))
                page.keyboard.press("Escape")
                continue
            res["click_dialog_s"].append(time.perf_counter() - t)
            cpu1 = cpu_by_process(port)
            page.wait_for_function("() => { const i = document.querySelector('[data-testid=stDialog] img');"
                                   " return i && i.complete && i.naturalWidth > 0 }", timeout=60_000)
            res["click_image_s"].append(time.perf_counter() - t)
            idle(page)
            # CPU seconds per process kind: click → dialog visible, and click → the run done (page idle)
            res["click_cpu"].append({"to_dialog": _cpu_diff(cpu0, cpu1), "to_idle": _cpu_diff(cpu0, cpu_by_process(port))})
            page.keyboard.press("Escape")
            dlg.wait_for(state="hidden", timeout=60_000)
        browser.close()
    res["types"] = sorted(res["types"])
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--clicks", type=int, default=15)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--hovers", type=int, default=15)
    ap.add_argument("--app", type=Path, default=REPO, help="the checkout whose app is served (default: this one)")
    ap.add_argument("--label", default="", help="write bench/out/clicks/<label>.json only, not the results")
    ap.add_argument("--software-only", action="store_true", help="measure the first browser configuration only")
    ap.add_argument("--pair", default="", help="comma-separated labels of earlier --label runs, alternating before/"
                    "after: clicks.* become the last run, with the medians of all side by side")
    ap.add_argument("--time-writer", action="store_true",
                    help="only time writing the map's hover thumbnails into an empty folder; add it to clicks.*")
    a = ap.parse_args()
    if a.pair:  # the results become the last run named (an "after" run), with the pairs beside it
        runs = [json.loads((OUT / f"{lab}.json").read_text()) for lab in a.pair.split(",")]
        old = json.loads((RESULTS / "clicks.json").read_text()) if (RESULTS / "clicks.json").exists() else {}
        summary = {**runs[-1], **{k: old[k] for k in ("trace_ab", "thumb_writer", "notes") if k in old}}
        summary["paired"] = pair(runs)
        (RESULTS / "clicks.json").write_text(json.dumps(summary, indent=2) + "\n")
        (RESULTS / "clicks.md").write_text(report(summary))
        return
    root, state = build(a.n)
    if a.time_writer:
        summary = json.loads((RESULTS / "clicks.json").read_text())
        summary["thumb_writer"] = time_writer(root, state)
        (RESULTS / "clicks.json").write_text(json.dumps(summary, indent=2) + "\n")
        (RESULTS / "clicks.md").write_text(report(summary))
        print(summary["thumb_writer"])
        return
    n_live = n_points(root, state)
    app = a.app.resolve()
    log = OUT / f"server{'_' + a.label if a.label else ''}.log"
    load_before = [round(v, 2) for v in os.getloadavg()]
    proc, base = start_server(root, state, log, extra_env={"PYTHONPATH": str(app)}, app=app)
    runs = {}
    written = (0.0, 0)
    try:
        health = wait_healthy(base, proc)
        for k, (name, args) in enumerate(list(CONFIGS.items())[:1] if a.software_only else CONFIGS.items()):
            print(f"measuring: {name}", flush=True)
            first = None
            if k == 0:  # the first page load starts the thumbnail writer: wait for it before hovering
                first = measure(base, n_live, 0, 0, args)["first_load_s"]
                written = thumbs_written(root, state, app / "static" / "thumbs")
            runs[name] = measure(base, n_live, a.clicks, a.loads, args, a.hovers)
            if first is not None:
                runs[name]["first_load_s"] = first
    finally:
        stop_server(proc)
    med = statistics.median
    summary = {
        "n_points": n_live, "server_healthy_s": round(health, 2), "loadavg_before": load_before,
        "loadavg_after": [round(v, 2) for v in os.getloadavg()], "app": str(app), "label": a.label,
        "commit": commit_of(app),
        "cpus": os.cpu_count(), "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "configs": {name: {
            "trace": r["types"], "first_load_s": round(r["first_load_s"], 2),
            "load_median_s": round(med(r["load_s"]), 2), "load_s": [round(v, 2) for v in r["load_s"]],
            "click_dialog_median_s": round(med(r["click_dialog_s"]), 3),
            "click_dialog_s": [round(v, 3) for v in r["click_dialog_s"]],
            "click_image_median_s": round(med(r["click_image_s"]), 3),
            "clicks_without_dialog": r.get("click_failed", 0),
            "hover_thumb_median_s": round(med(r["hover_thumb_s"]), 3) if r.get("hover_thumb_s") else None,
            "hover_thumb_s": [round(v, 3) for v in r.get("hover_thumb_s", [])],
            "hover_page_median_ms": round(med(r["hover_page_ms"]), 1) if r.get("hover_page_ms") else None,
            "hover_reruns": r.get("hover_reruns"), "hover_src": r.get("hover_src")} for name, r in runs.items()},
        "thumbs_written_s": round(written[0], 1), "thumbs": written[1],
    }
    if a.label:
        (OUT / f"{a.label}.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary, indent=2))
        return
    old = json.loads((RESULTS / "clicks.json").read_text()) if (RESULTS / "clicks.json").exists() else {}
    for keep in ("paired", "trace_ab", "thumb_writer", "notes"):  # sections added by other runs
        if keep in old:
            summary[keep] = old[keep]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "clicks.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / "clicks.md").write_text(report(summary))
    print(json.dumps(summary, indent=2))


def commit_of(app: Path) -> str:
    import subprocess

    r = subprocess.run(["git", "-C", str(app), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(app), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + ("+changes" if dirty else "")


#: What a pair table shows per run: (row label, config key, field).
PAIR_ROWS = [("page load → all points drawn, median (s)", "load_median_s"),
             ("click → dialog visible, median (s)", "click_dialog_median_s"),
             ("click → dialog image loaded, median (s)", "click_image_median_s"),
             ("hover → thumbnail loaded, median (s)", "hover_thumb_median_s")]


def pair(runs: list[dict]) -> dict:
    """Medians of ``--label`` runs side by side (runs alternate before/after, so each pair shares a load)."""
    cols = [f"{r['label']} ({r['commit']}, {r['date'][11:]})" for r in runs]
    rows = [("load average (1 min) before → after", [f"{r['loadavg_before'][0]} → {r['loadavg_after'][0]}"
                                                      for r in runs])]
    for name in dict.fromkeys(n for r in runs for n in r["configs"]):  # a --software-only run lacks the second
        short = name.split(" (")[0]
        for label, key in PAIR_ROWS:
            rows.append((f"{short}: {label}", [r["configs"].get(name, {}).get(key) for r in runs]))
        rows.append((f"{short}: page loads (s)", [", ".join(map(str, r["configs"].get(name, {}).get("load_s", [])))
                                                   for r in runs]))
    return {"columns": cols, "rows": rows}


def pair_section(s: dict) -> str:
    p = s.get("paired")
    if not p:
        return ""
    body = "\n".join(f"| {label} | " + " | ".join("" if v is None else str(v) for v in vals) + " |"
                     for label, vals in p["rows"])
    return ("\nBefore / after, run alternately on the same data, server and browser flags (`--app`, `--label`, "
            "`--pair`):\n\n| | " + " | ".join(p["columns"]) + " |\n|---|" + "---|" * len(p["columns"]) + "\n"
            + body + "\n" + (f"\n{s['notes']}\n" if s.get("notes") else ""))


def n_points(root: Path, state: Path) -> int:
    """How many points the map shows (live images with a projection)."""
    from cleaning.data.workspace import Workspace
    from cleaning.model.projection import load_or_compute_projection

    ws = Workspace.open(root, state_dir=state / (root.name + ".cleaning"))
    n = len(load_or_compute_projection(ws, "umap").item_ids)
    ws.store.close()
    return n


def trace_section(s: dict) -> str:
    """The paired trace comparison stored under ``trace_ab`` (see the notes there), as a table; '' if none."""
    ab = s.get("trace_ab")
    if not ab:
        return ""
    arms = list(ab["arms"])
    rows = [f"| {label} | " + " | ".join(str(ab["arms"][a].get(key, "")) for a in arms) + " |"
            for label, key in ab["metrics"]]
    return (f"\n{ab['title']}\n\n| | " + " | ".join(arms) + " |\n|---|" + "---|" * len(arms) + "\n"
            + "\n".join(rows) + f"\n\n{ab['notes']}\n")


def report(s: dict) -> str:
    rows = []
    for name, c in s["configs"].items():
        ok = "✓" if c["click_dialog_median_s"] < 0.5 else "✗"
        ok_load = "✓" if c["load_median_s"] < 3 else "✗"
        rows.append(f"| {name} | **{c['click_dialog_median_s']:.3f} s** {ok} | {c['click_image_median_s']:.3f} s | "
                    f"**{c['load_median_s']:.2f} s** {ok_load} | {c['first_load_s']:.2f} s |")
        fail = f" ({c['clicks_without_dialog']} click(s) opened no dialog in 30 s)" if c.get("clicks_without_dialog") else ""
        rows.append(f"| ↳ all runs (s){fail} | {', '.join(map(str, c['click_dialog_s']))} | | "
                    f"{', '.join(map(str, c['load_s']))} | |")
    hrows = []
    for name, c in s["configs"].items():
        if c.get("hover_thumb_median_s") is None:
            continue
        hrows.append(f"| {name} | **{c['hover_thumb_median_s']:.3f} s** | {c['hover_page_median_ms']:.0f} ms | "
                     f"{c['hover_reruns']} | `{c['hover_src']}…` |")
        hrows.append(f"| ↳ all hovers (s) | {', '.join(map(str, c['hover_thumb_s']))} | | | |")
    trace = ", ".join(sorted({t for c in s["configs"].values() for t in c["trace"]}))
    w = s.get("thumb_writer")
    writer = (f": {w['files']:,} files in {w['wall_s']:.0f} s wall, {w['cpu_s']:.0f} s CPU (`--time-writer`, "
              f"into an empty folder, load average {w['loadavg']})" if w else "")
    return f"""# Click latency of the Embedding page ({s['n_points']:,} points)

`python bench/bench_clicks.py` — {s['date']}, {s['cpus']} CPU cores shared with other work (load average
after the run: {', '.join(map(str, s['loadavg_after']))}), Python {s['python']}, headless Debian Chromium
driven by Playwright, `streamlit run` on loopback. Targets: click → dialog median < 0.5 s, page load < 3 s.

Data: {s['n_points']:,} real fashion-MNIST photos (28×28 PNG files in 10 class folders) scanned by the
product. Embeddings are a random projection of the pixels to 1280-d (the CNN would take 10–30 min for 20k
images here); the out-of-sample probabilities, the UMAP map, the page, the figure ({trace}, one trace per
class) and the dialog are the product's own.

| browser | click → dialog visible (median) | click → dialog image loaded | page load → all points drawn (median) | first load after server start |
|---|---|---|---|---|
{chr(10).join(rows)}

Hover → thumbnail (the preview shows the hovered image's thumbnail, loaded; no script run):

| browser | pointer moved → thumbnail loaded (median, Playwright wall) | Plotly hover event → image loaded (median, in page) | hovers that started a script run | thumbnail source |
|---|---|---|---|---|
{chr(10).join(hrows)}

Thumbnails: {s['thumbs']:,} files (72 px JPEG, content-addressed under `static/thumbs/`) written by the server's
background thread after the first view of the map{writer}; until an image's file exists its preview shows
text only (this run waited {s['thumbs_written_s']:.0f} s for them before hovering). Each point's text (path,
label → prediction, issue) and thumbnail name are one JSON file per map (`static/thumbs/maps/`, by the map's
rows: 1.3 MB at 20k, 0.37 MB as sent), fetched by the browser once the chart is drawn; the component's
arguments are a version and that URL (the images inline would be ≈30 MB).

Server start → healthy: {s['server_healthy_s']:.2f} s. A click is a real mouse click at the pixel position of
a point that Plotly computes (`_fullLayout` axes, `l2p`); Esc closes the dialog between clicks.

What the chart carries (since 2026-12-01 05:30): per point only x, y (float32) and its row in the map's
points (uint16), as base64 typed arrays: 0.31 MB at 20k points instead of 2.61 MB (the hover texts were
≈2 MB of it once JSON-escaped, the 16-character item ids 0.4 MB). The page turns a selected row back into
the item id; the chart's key names the map (data-set version, method), so a selection is never read
against another map. Plotly draws the WebGL canvases at `plotGlPixelRatio` device pixels per CSS pixel,
2 by default whatever the screen; the page sets 1 (940×640 canvases instead of 1880×1280).

Where the time goes (`bench/trace_clicks.py`: a Chrome trace and the decoded websocket messages of one
load and one click). A click: Plotly redraws the WebGL scatter to show the selection; with software
compositing the next frame's commit reads both WebGL canvases back on the main thread (`GLES2::ReadPixels`,
waiting for SwiftShader to finish the draw), and Streamlit's frontend sends the selection only after that
frame (its widget update runs in a later task): that is the browser's WebGL and compositor, not
reachable from Python beyond the canvas size. The server's rerun then sends the dialog first (the page
reads the chart's selection before it builds the chart); the identical chart is re-serialised and hashed
on every rerun by Streamlit (now 0.3 MB instead of 2.6 MB) but not transferred again. A page load is
Streamlit's own start-up (first websocket message ≈1–2 s after navigation under load), the script run up
to the chart, then the lazily loaded Plotly chunk (`PlotlyChart.*.js`, 4.7 MB, requested only when the
chart element arrives: fetching it takes 0.4–1.5 s on loopback, evaluating it (`v8.evaluateModule`)
1.2–1.5 s of main-thread CPU, 2–4 s wall under load), then the figure and the first 20k-point draw.
{pair_section(s)}{trace_section(s)}"""


if __name__ == "__main__":
    main()
