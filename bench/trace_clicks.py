"""Where the Embedding page's time goes: a Chrome trace and the websocket traffic of one page load and one
click, on any checkout of the app (so two commits can be compared on the same data).

    python bench/trace_clicks.py [--app PATH_TO_CHECKOUT] [--root ROOT --state STATE] [--label NAME]

The data set is ``bench/bench_clicks.py``'s (built by it: run that once first). The server is started from
``--app`` (default: this checkout) with ``PYTHONPATH`` pointing there. Chromium uses the tests' flags
(software compositing). For each of the load and the click it records:

* the renderer main thread's busy time in the window, split by what Chrome says it did (script, compile,
  style/layout, paint, GC, canvas read-back ...), and its longest tasks;
* every websocket message the server sent, decoded (Streamlit's ``ForwardMsg``): which element or component
  it carries and how many bytes, and when; and the time from the browser's rerun request to the server's
  ``script_finished`` (the server's script run plus transfer, measured in the browser).

Writes ``bench/out/trace/<label>_{load,click}.json`` (the raw traces, for chrome://tracing) and prints a
summary (also ``bench/out/trace/<label>.json``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy  # noqa: E402
from tests.browser.test_clicks import POINTS_JS  # noqa: E402

OUT = REPO / "bench" / "out" / "trace"
CATEGORIES = ("devtools.timeline,disabled-by-default-devtools.timeline,v8,v8.execute,blink,gpu,"
              "disabled-by-default-devtools.timeline.frame,toplevel,disabled-by-default-v8.gc")
#: trace event name → what it is, for the busy-time split (self time of the innermost named event wins)
KINDS = {
    "EvaluateScript": "script", "FunctionCall": "script", "v8.callFunction": "script", "TimerFire": "script",
    "EventDispatch": "script", "FireAnimationFrame": "script", "v8.run": "script", "RunMicrotasks": "script",
    "v8.compile": "compile", "v8.compileModule": "compile", "CompileScript": "compile", "v8.parseOnBackground": "compile",
    "ParseHTML": "parse HTML", "ParseAuthorStyleSheet": "style",
    "UpdateLayoutTree": "style", "RecalculateStyles": "style", "Layout": "layout", "UpdateLayerTree": "layout",
    "Paint": "paint", "PaintImage": "paint", "Layerize": "paint", "PrePaint": "paint", "Commit": "paint",
    "MajorGC": "GC", "MinorGC": "GC", "V8.GC_MARK_COMPACTOR": "GC", "V8.GCScavenger": "GC", "BlinkGC.AtomicPhase": "GC",
    "GCEvent": "GC", "ThreadState::performIdleLazySweep": "GC",
    "WebGLRenderingContext::readPixels": "canvas read-back", "Canvas2DLayerBridge::Flush": "canvas",
    "DrawingBuffer::PrepareTransferableResource": "canvas read-back", "ImageDecodeTask": "image decode",
    "Decode Image": "image decode", "ResourceReceivedData": "network",
}


def decode(payload: str) -> tuple[str, int]:
    """(what a server message carries, its size in bytes)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    raw = base64.b64decode(payload)
    m = ForwardMsg()
    try:
        m.ParseFromString(raw)
    except Exception:  # noqa: BLE001 — not a ForwardMsg
        return "?", len(raw)
    kind = m.WhichOneof("type") or "?"
    if kind == "delta":
        d = m.delta
        sub = d.WhichOneof("type") or "?"
        if sub == "new_element":
            el = d.new_element.WhichOneof("type") or "?"
            if el == "bidi_component":
                el = f"component {d.new_element.bidi_component.component_name}"
            kind = f"element {el}"
        else:
            kind = f"delta {sub}"
    elif kind == "script_finished":
        kind = "script_finished"
    return kind, len(raw)


class Recorder:
    """Websocket frames (sent and received) of one page, with monotonic times in seconds."""

    def __init__(self, page) -> None:  # noqa: ANN001
        self.frames: list[tuple[float, str, str, int]] = []  # (t, dir, kind, bytes)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.webSocketFrameReceived", lambda e: self._add(e, "in"))
        cdp.on("Network.webSocketFrameSent", lambda e: self._add(e, "out"))
        self.cdp = cdp

    def _add(self, e: dict, direction: str) -> None:
        r = e["response"]
        kind, n = decode(r["payloadData"]) if r.get("opcode") == 2 else ("text", len(r.get("payloadData", "")))
        self.frames.append((e["timestamp"], direction, kind, n))



def busy(trace: dict, t0_us: float, t1_us: float) -> dict:
    """Renderer main thread: busy time in [t0, t1] by kind (self time), and the 8 longest tasks."""
    ev = trace["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in ev if e.get("ph") == "M" and e.get("name") == "thread_name"}
    mains = {k for k, v in names.items() if v == "CrRendererMain"}
    by_thread: dict = defaultdict(list)
    for e in ev:
        if e.get("ph") == "X" and (e["pid"], e["tid"]) in mains and t0_us <= e["ts"] <= t1_us:
            by_thread[(e["pid"], e["tid"])].append(e)
    main = max(by_thread, key=lambda k: sum(e.get("dur", 0) for e in by_thread[k] if e["name"] == "RunTask"),
               default=None)
    if main is None:
        return {}
    evs = sorted(by_thread[main], key=lambda e: (e["ts"], -e.get("dur", 0)))
    split: Counter = Counter()
    stack: list[list] = []  # [end, kind, self_us]

    def close(upto: float) -> None:
        while stack and stack[-1][0] <= upto:
            end, kind, self_us = stack.pop()
            split[kind] += self_us

    tasks = []
    for e in evs:
        close(e["ts"])
        dur = e.get("dur", 0)
        kind = e["name"]
        if e["name"] in ("RunTask", "ThreadControllerImpl::RunTask"):
            if not stack:
                tasks.append((dur, e["ts"]))
            kind = "(task, nothing named)"
        elif e["name"] in ("FunctionCall", "v8.callFunction", "EvaluateScript", "v8.run"):
            data = e.get("args", {}).get("data", {})
            where = (data.get("url") or "").rsplit("/", 1)[-1][:40]
            kind = f"{e['name']} {data.get('functionName', '')} {where}".strip()
        if stack:
            stack[-1][2] -= dur
        stack.append([e["ts"] + dur, kind, dur])
    close(float("inf"))
    top = sorted(tasks, reverse=True)[:8]
    return {"busy_ms": round(sum(d for d, _ in tasks) / 1000), "window_ms": round((t1_us - t0_us) / 1000),
            "self_ms_by_event": {k: round(v / 1000) for k, v in split.most_common(25) if v >= 5000},
            "longest_tasks_ms": [(round(d / 1000), round((ts - t0_us) / 1000)) for d, ts in top]}


def trace_window(path: Path) -> dict:
    return json.loads(path.read_text())


def mark(trace: dict, pred) -> float:  # noqa: ANN001
    """The first matching event's time (µs, the trace clock: the same as CDP's network timestamps × 1e6)."""
    ts = [e["ts"] for e in trace["traceEvents"] if e.get("ts") and pred(e)]
    if not ts:
        raise RuntimeError("mark not found in the trace")
    return min(ts)


def messages(frames: list, t0_us: float) -> dict:
    """What the server sent after t0: bytes per kind, and the timeline (ms after t0) of messages."""
    got: Counter = Counter()
    count: Counter = Counter()
    timeline = []
    t0 = t0_us / 1e6
    for t, d, kind, n in frames:
        if t < t0:
            continue
        if d == "in":
            got[kind] += n
            count[kind] += 1
        timeline.append((round((t - t0) * 1000), d, kind, n))
    return {"bytes_in_total": sum(got.values()),
            "bytes_in_by_kind": {k: [v, count[k]] for k, v in got.most_common()},
            "timeline_ms": [x for x in timeline if x[2] != "text"][:80]}


def click_summary(timeline: list) -> dict:
    """From the click's message timeline (ms after mousedown): when the selection went out, when the
    dialog's image element and the run's end arrived, and the server's share in between."""
    out = next((t for t, d, _, _ in timeline if d == "out"), None)
    img = next((t for t, d, k, _ in timeline if d == "in" and k == "element imgs"), None)
    end = next((t for t, d, k, _ in timeline if d == "in" and k == "script_finished"), None)
    return {"selection_sent": out, "dialog_image_element": img, "script_finished": end,
            "server_to_dialog": img - out if img is not None and out is not None else None,
            "server_run": end - out if end is not None and out is not None else None}


def run(app: Path, root: Path, state: Path, label: str) -> dict:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    proc, base = start_server(root, state, OUT / f"{label}_server.log", extra_env={"PYTHONPATH": str(app)}, app=app)
    res: dict = {"label": label, "app": str(app), "loadavg_before": os.getloadavg()[:3]}
    try:
        wait_healthy(base, proc, timeout=180)
        with sync_playwright() as pw:
            br = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ctx = br.new_context(viewport={"width": 1400, "height": 1000})
            pg = ctx.new_page()
            pg.goto(f"{base}/embedding")  # warm the server's caches
            ready(pg)
            time.sleep(3)
            ctx.close()
            ctx = br.new_context(viewport={"width": 1400, "height": 1000})
            pg = ctx.new_page()
            rec = Recorder(pg)
            br.start_tracing(page=pg, path=str(OUT / f"{label}_load.json"), categories=CATEGORIES.split(","))
            w0 = time.perf_counter()
            pg.goto(f"{base}/embedding")
            n = ready(pg)
            res["load_wall_s"] = round(time.perf_counter() - w0, 2)
            res["load_page_ms"] = pg.evaluate(PAGE_TIMES_JS)
            time.sleep(2)
            br.stop_tracing()
            tr = trace_window(OUT / f"{label}_load.json")
            t0 = mark(tr, lambda e: e["name"] == "ResourceSendRequest"
                      and e["args"]["data"].get("resourceType") == "Document")
            res["load_ws"] = messages(rec.frames, t0)
            res["load_main"] = busy(tr, t0, t0 + 60e6)
            res["n_points"] = n
            idle(pg)
            pts = pg.evaluate(POINTS_JS)
            target = isolated(pts)
            pg.mouse.move(target["x"], target["y"])
            time.sleep(0.5)
            rec.frames.clear()
            br.start_tracing(page=pg, path=str(OUT / f"{label}_click.json"), categories=CATEGORIES.split(","))
            time.sleep(0.3)
            w0 = time.perf_counter()
            pg.mouse.click(target["x"], target["y"])
            pg.locator("[data-testid=stDialog]").wait_for(state="visible", timeout=60_000)
            res["click_dialog_wall_s"] = round(time.perf_counter() - w0, 3)
            idle(pg)
            time.sleep(0.5)
            br.stop_tracing()
            tr = trace_window(OUT / f"{label}_click.json")
            t0 = mark(tr, lambda e: e["name"] == "EventDispatch"
                      and e.get("args", {}).get("data", {}).get("type") == "mousedown")
            res["click_ws"] = messages(rec.frames, t0)
            res["click_main"] = busy(tr, t0, t0 + 60e6)
            res["click_summary_ms"] = click_summary(res["click_ws"]["timeline_ms"])
            br.close()
    finally:
        stop_server(proc)
    res["loadavg_after"] = os.getloadavg()[:3]
    return res


#: In-page times of a load (ms after navigation start): the big scripts fetched (start, end, bytes), the
#: first websocket message's arrival is in ``load_ws``; ``drawn`` is when all points were found drawn.
PAGE_TIMES_JS = """() => ({
  drawn: Math.round(performance.now()),
  dom_content_loaded: Math.round(performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd),
  scripts: performance.getEntriesByType('resource').filter(e => e.encodedBodySize > 100000 || /Plotly/.test(e.name))
    .map(e => [e.name.split('/').pop().slice(0, 40), Math.round(e.startTime), Math.round(e.responseEnd),
               e.encodedBodySize, e.decodedBodySize])})"""


def ready(page) -> int:  # noqa: ANN001
    page.wait_for_function(f"() => ({POINTS_JS})() !== null && ({POINTS_JS})().length > 1000", timeout=240_000)
    return len(page.evaluate(POINTS_JS))


def idle(page) -> None:  # noqa: ANN001
    time.sleep(0.3)
    page.wait_for_function("() => { const a = document.querySelector('[data-testid=stApp]');"
                           " return a && a.getAttribute('data-test-script-state') !== 'running'; }", timeout=120_000)


def isolated(pts: list[dict]) -> dict:
    import numpy as np

    xs = np.array([[p["x"], p["y"]] for p in pts])
    rng = np.random.default_rng(3)
    while True:
        i = int(rng.integers(len(pts)))
        d = np.abs(xs - xs[i]).sum(axis=1)
        d[i] = 1e9
        if d.min() > 8:
            return pts[i]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", type=Path, default=REPO)
    ap.add_argument("--root", type=Path, default=REPO / "bench" / "out" / "clicks" / "data20000")
    ap.add_argument("--state", type=Path, default=REPO / "bench" / "out" / "clicks" / "state")
    ap.add_argument("--label", default="main")
    a = ap.parse_args()
    res = run(a.app.resolve(), a.root.resolve(), a.state.resolve(), a.label)
    (OUT / f"{a.label}.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
