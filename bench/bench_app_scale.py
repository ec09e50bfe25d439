"""The app at 100,000 images (issue 15, item 3), in headless Chromium (Debian's) on the real app.

    python bench/bench_app_scale.py [--root DIR] [--state DIR] [--loads 3] [--app CHECKOUT] [--skip-map]

Data: the 100,000-image tree ``/work/scale-data/t100k`` (64-px JPEGs, ``bench/scale_tree.py``) and its
scanned state (``/work/scale-data/run-100000``: projected-pixel embeddings, out-of-sample heads, the issue
table; ``bench/results/scale.md`` §6). The benchmark never touches that state: it works on a copy
(``--state``, made with ``cp -a`` once; its ``store.sqlite`` is copied afresh from the source at every run
so each run starts with no decisions; the caches — and a UMAP map computed into the copy — are kept).

Measured, with the server's caches cold (first load after the server start) and warm (median of
``--loads`` more loads, each in a fresh browser context):

* page load of Overview, Issues, History and Deleted: navigation → the page's main content is rendered
  (the app root says its script run has finished, twice 150 ms apart, *and* the page's own marker is
  visible: Overview the class-count chart drawn by Plotly and the class samples' heading; Issues the
  "Next page" button under the last card of the first page; History the decisions table (or its
  "No decisions yet"); Deleted the restore button or "Nothing is deleted.");
* decisions for 10,000 images through the CLI (``python -m cleaning delete ROOT PATH…``, one process,
  wall and CPU) and through the library (``Store.record``);
* a bulk action on 10,000 selected images in the browser: on the Deleted page "Restore all 10000" → the
  confirmation → until the store holds the 10,000 restores and the page shows "Nothing is deleted."; on
  the Issues page "Pick all N shown" (one issue type and class filtered) → "Mark N as fine" → until the
  store holds them and the page has rerun;
* History and Deleted again with those 20,000+ decisions recorded;
* the Embedding map at 100,000 points (when the copy has its UMAP map; ``bench_clicks.measure``): load →
  every point drawn, and real clicks → the review dialog.

Writes ``bench/results/app_scale.md`` and ``app_scale.json`` (``--out NAME`` for another name).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, IDLE_JS, start_server, stop_server, wait_healthy  # noqa: E402

RESULTS = REPO / "bench" / "results"
SRC_STATE = Path("/work/scale-data/run-100000")
N_BULK = 10_000

#: The page's own marker of "main content rendered" (JS returning true), after the script run finished.
READY = {
    "overview": "() => !!document.querySelector('[data-testid=stDataFrame] canvas')"
                " && [...document.querySelectorAll('h3')].some(h => h.textContent.includes('A look at each class'))",
    "issues": "() => [...document.querySelectorAll('button')].some(b => b.textContent.includes('Next page ('))"
              " || !!document.querySelector('[data-testid=stAlert]')",
    "history": "() => !!document.querySelector('[data-testid=stDataFrame]')"
               " || document.body.innerText.includes('No decisions yet')",
    "deleted": "() => document.body.innerText.includes('Nothing is deleted.')"
               " || [...document.querySelectorAll('button')].some(b => b.textContent.includes('Restore all'))",
}
EXC_JS = "() => { const e = document.querySelector('[data-testid=stException]'); return e ? e.innerText : null }"


def loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def reset_state(state_dir: Path) -> None:
    """The copy of the scanned state with no decisions: caches kept, the store copied afresh."""
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    if not state_dir.exists():
        subprocess.run(["cp", "-a", str(SRC_STATE), str(state_dir)], check=True)
    for suffix in ("", "-wal", "-shm"):
        (state_dir / f"store.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy2(SRC_STATE / "store.sqlite", state_dir / "store.sqlite")


def wait_ready(page, what: str, timeout: float = 600) -> None:  # noqa: ANN001 — a Playwright Page
    """Until the script run finished (twice, 150 ms apart) and the page's marker shows."""
    deadline = time.monotonic() + timeout
    calm = 0
    while True:
        err = page.evaluate(EXC_JS)
        if err:
            raise RuntimeError(f"{what}: exception on the page: {err[:1500]}")
        ok = page.evaluate(IDLE_JS) and page.evaluate(READY[what])
        calm = calm + 1 if ok else 0
        if calm >= 2:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not rendered after {timeout} s")
        time.sleep(0.15)


def time_loads(browser, base: str, what: str, loads: int, timeout: float) -> dict:  # noqa: ANN001
    """The first load (cold for this page) and ``loads`` more, each in a fresh context."""
    out: dict = {"load_s": []}
    for k in range(loads + 1):
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        t = time.perf_counter()
        page.goto(f"{base}/{what}")
        try:
            wait_ready(page, what, timeout)
        except TimeoutError:
            out["timed_out_after_s"] = timeout
            ctx.close()
            return out
        dt = time.perf_counter() - t
        if k == 0:
            out["first_s"] = dt
        else:
            out["load_s"].append(dt)
        ctx.close()
    out["median_s"] = statistics.median(out["load_s"]) if out["load_s"] else None
    print(f"  {what}: first {out['first_s']:.2f} s, then {[round(v, 2) for v in out['load_s']]}", flush=True)
    return out


def workspace(root: Path, state_dir: Path):  # noqa: ANN201
    from cleaning.data.workspace import Workspace

    return Workspace.open(root, state_dir=state_dir)


def active_count(state_dir: Path) -> int:
    import sqlite3

    con = sqlite3.connect(f"file:{state_dir / 'store.sqlite'}?mode=ro", uri=True, timeout=30)
    try:
        return int(con.execute("SELECT COUNT(*) FROM decisions WHERE state='active'").fetchone()[0])
    finally:
        con.close()


def cli_delete(root: Path, state_dir: Path, paths: list[str], app: Path) -> dict:
    """``python -m cleaning delete ROOT PATH…`` for every path in one process: wall and CPU seconds."""
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", sys.executable, "-m", "cleaning", "delete", str(root),
                        *paths, "--state-dir", str(state_dir), "--note", "bench"],
                       cwd=app, env={**os.environ, "PYTHONPATH": str(app)}, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    user, sys_, rss = r.stderr.strip().splitlines()[-1].split()
    return {"n": len(paths), "wall_s": round(wall, 2), "cpu_s": round(float(user) + float(sys_), 2),
            "peak_rss_mb": round(int(rss) / 1024), "loadavg": loadavg()}


def library_record(root: Path, state_dir: Path, ids: list[str]) -> dict:
    """``Store.record`` of 10,000 keeps (one batch), then its undo: wall seconds each."""
    ws = workspace(root, state_dir)
    t = time.perf_counter()
    batch = ws.store.record(ids, "keep", source="bulk", note="bench")
    rec = time.perf_counter() - t
    t = time.perf_counter()
    undone = ws.store.undo()
    und = time.perf_counter() - t
    ws.store.close()
    return {"n": len(ids), "batch": batch, "record_s": round(rec, 3), "undo_s": round(und, 3),
            "undone": len(undone), "loadavg": loadavg()}


def click_text(page, text: str, timeout: float = 300) -> None:  # noqa: ANN001
    page.get_by_role("button", name=text).first.click(timeout=timeout * 1000)


def restore_all(browser, base: str, state_dir: Path, n: int) -> dict:  # noqa: ANN001
    """Deleted page: "Restore all N" → "Yes, restore N image(s)" → decisions recorded, page updated."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{base}/deleted")
    wait_ready(page, "deleted")
    before = active_count(state_dir)
    click_text(page, f"Restore all {n}")
    page.get_by_role("button", name=f"Yes, restore {n} image(s)").wait_for(timeout=300_000)
    time.sleep(0.3)
    t = time.perf_counter()
    click_text(page, f"Yes, restore {n} image(s)")
    while active_count(state_dir) < before + n:
        time.sleep(0.05)
    recorded = time.perf_counter() - t
    page.get_by_text("Nothing is deleted.").wait_for(timeout=600_000)
    wait_ready(page, "deleted")
    updated = time.perf_counter() - t
    ctx.close()
    return {"n": n, "recorded_s": round(recorded, 2), "page_updated_s": round(updated, 2), "loadavg": loadavg()}


def cpu_seconds(pid: int | None) -> float | None:
    """user + system CPU seconds of a process so far (Linux ``/proc``), None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


def issues_bulk(browser, base: str, state_dir: Path, issue: str, label: str,  # noqa: ANN001
                server_pid: int | None = None) -> dict:
    """Issues page filtered to one issue type and class: "Pick all N shown" → "Mark N as fine" (with the
    server's CPU seconds from the click to the page updated when ``server_pid`` is given)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{base}/issues?")
    wait_ready(page, "issues")
    out: dict = {"issue": issue, "class": label}
    for name, value in (("Issue type", issue), ("Class", label)):
        box = page.get_by_label(name).first  # multiselect: type and pick the option
        box.click()
        page.keyboard.type(value)
        page.get_by_role("option").filter(has_text=value).first.click()
        page.keyboard.press("Escape")
        wait_ready(page, "issues")
    pick = page.get_by_role("button", name=re.compile(r"^Pick all \d+ shown$"))
    if not pick.count():
        out["error"] = "no 'Pick all … shown' button on the Issues page"
        ctx.close()
        return out
    n = int(re.search(r"\d+", pick.first.inner_text()).group())
    t = time.perf_counter()
    pick.first.click()
    page.get_by_role("button", name=f"Mark {n} as fine").wait_for(timeout=600_000)
    wait_ready(page, "issues")
    out["pick_s"] = round(time.perf_counter() - t, 2)
    before = active_count(state_dir)
    time.sleep(0.3)
    t, cpu0 = time.perf_counter(), cpu_seconds(server_pid)
    click_text(page, f"Mark {n} as fine")
    while active_count(state_dir) < before + n:
        time.sleep(0.05)
    out["recorded_s"] = round(time.perf_counter() - t, 2)
    page.get_by_role("button", name=f"Mark {n} as fine").wait_for(state="detached", timeout=600_000)
    wait_ready(page, "issues")
    out["page_updated_s"] = round(time.perf_counter() - t, 2)
    cpu1 = cpu_seconds(server_pid)
    if cpu0 is not None and cpu1 is not None:
        out["server_cpu_s"] = round(cpu1 - cpu0, 2)
    out["n"] = n
    out["loadavg"] = loadavg()
    ctx.close()
    return out


def embedding_map(base: str, n: int, clicks: int, loads: int) -> dict:
    """``bench_clicks.measure`` on the 100k map (software compositing, the tests' flags)."""
    from bench.bench_clicks import measure

    r = measure(base, n, clicks, loads, CHROMIUM_ARGS)
    med = statistics.median
    return {"n_points": n, "trace": r["types"], "first_load_s": round(r["first_load_s"], 2),
            "load_s": [round(v, 2) for v in r["load_s"]],
            "load_median_s": round(med(r["load_s"]), 2) if r["load_s"] else None,
            "click_dialog_s": [round(v, 3) for v in r["click_dialog_s"]],
            "click_dialog_median_s": round(med(r["click_dialog_s"]), 3) if r["click_dialog_s"] else None,
            "click_image_median_s": round(med(r["click_image_s"]), 3) if r["click_image_s"] else None,
            "clicks_without_dialog": r.get("click_failed", 0), "click_cpu": r.get("click_cpu", []),
            "click_cpu_median": cpu_medians(r.get("click_cpu", [])), "loadavg": loadavg()}


def cpu_medians(clicks: list[dict]) -> dict:
    """Median CPU seconds per process kind over the clicks, for each window (``to_dialog``, ``to_idle``)."""
    out: dict = {}
    for window in ("to_dialog", "to_idle"):
        kinds = sorted({k for c in clicks for k in c.get(window, {})})
        out[window] = {k: round(statistics.median(c[window].get(k, 0.0) for c in clicks), 3) for k in kinds}
    return out


def map_part(root: Path, state_dir: Path, app: Path, label: str, out: str, clicks: int, loads: int) -> None:
    """``--map-only LABEL``: a fresh server from ``app`` on the state with no decisions, then only the
    Embedding map (load, clicks with CPU per process); added to ``{out}.json`` under ``map_runs[LABEL]``
    (run main and a branch alternately under the same load, each with its own label)."""
    reset_state(state_dir)
    n = has_map(root, state_dir)
    log = REPO / "bench" / "out" / f"app_scale_map_{label}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=app, capture_output=True, text=True).stdout.strip()
    before = loadavg()
    proc, base = start_server(root, state_dir.parent, log, {"PYTHONPATH": str(app)}, app=app)
    try:
        wait_healthy(base, proc, timeout=300)
        r = embedding_map(base, n, clicks, loads)
    finally:
        stop_server(proc)
    r.update(date=time.strftime("%Y-%m-%d %H:%M"), app=str(app), commit=commit, loadavg_before=before)
    print(json.dumps({k: v for k, v in r.items() if k != "click_cpu"}, indent=1), flush=True)
    path = RESULTS / f"{out}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("map_runs", {})[label] = r
    path.write_text(json.dumps(data, indent=2) + "\n")


APPTEST_PAGES = {"overview": "pages/overview.py", "issues": "pages/issues.py", "history": "pages/history.py",
                 "deleted": "pages/deleted.py"}


def apptest_pages(root: Path, state_dir: Path, runs: int = 3) -> dict:
    """The server's side of a page load without a browser: Streamlit's AppTest runs ``dashboard.py`` and
    switches to each page, in this process (CPU seconds of the script run; the first run of a page
    includes loading the caches). Each run is a new session, as a new browser tab is."""
    from streamlit.testing.v1 import AppTest

    os.environ["CLEANING_ROOT"], os.environ["CLEANING_STATE_DIR"] = str(root), str(state_dir.parent)
    out: dict = {}
    for what, file in APPTEST_PAGES.items():
        r: dict = {"wall_s": [], "cpu_s": []}
        for _ in range(runs):
            at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=900)
            t, c = time.perf_counter(), time.process_time()
            at.run()
            if file != "pages/overview.py":
                at.switch_page(file).run()
            r["wall_s"].append(round(time.perf_counter() - t, 2))
            r["cpu_s"].append(round(time.process_time() - c, 2))
            if at.exception:
                r["error"] = str(at.exception[0].value)[:300]
        r["loadavg"] = loadavg()
        out[what] = r
        print(f"  apptest {what}: {r}", flush=True)
    return out


def apptest_part(root: Path, state_dir: Path, out: str) -> None:
    """``--apptest``: AppTest script runs per page with no decisions, then after 10,000 deletes and 10,000
    keeps (one batch each, library), added to ``{out}.json`` under ``apptest``."""
    reset_state(state_dir)
    res = {"no_decisions": apptest_pages(root, state_dir)}
    ws = workspace(root, state_dir)
    live = ws.items_frame()["item_id"].tolist()
    ws.store.record(live[::10][:N_BULK], "delete", source="cli")
    ws.store.record(live[5::10][:N_BULK], "keep", source="bulk")
    ws.store.close()
    res["after_20000_decisions"] = apptest_pages(root, state_dir)
    res["date"], res["loadavg"] = time.strftime("%Y-%m-%d %H:%M"), loadavg()
    path = RESULTS / f"{out}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["apptest"] = res
    path.write_text(json.dumps(data, indent=2) + "\n")


def issues_bulk_part(root: Path, state_dir: Path, out: str, app: Path = REPO, repeat: int = 1) -> None:
    """``--issues-bulk``: a fresh server (of the checkout ``app``) on the state with no decisions; the Issues
    page filtered to the class whose label issues are nearest 10,000; Pick all N shown → Mark N as fine
    (``repeat`` times, the store reset and a fresh server each time); every run kept under ``runs``."""
    from playwright.sync_api import sync_playwright

    from cleaning.review.analysis import load_or_find_issues

    reset_state(state_dir)
    ws = workspace(root, state_dir)
    lab = load_or_find_issues(ws)
    ws.store.close()
    counts = lab[lab["issue"] == "label"].drop_duplicates("item_id")["label"].value_counts()
    cls = str((counts - N_BULK).abs().sort_values().index[0])
    runs = []
    for _ in range(repeat):
        reset_state(state_dir)
        log = REPO / "bench" / "out" / "app_scale_server2.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        proc, base = start_server(root, state_dir.parent, log, {"PYTHONPATH": str(app)}, app=app)
        try:
            wait_healthy(base, proc, timeout=300)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                time_loads(browser, base, "issues", 0, 900)  # the server loads the issue table once
                r = issues_bulk(browser, base, state_dir, "label", cls, proc.pid)
                browser.close()
        finally:
            stop_server(proc)
        print(r, flush=True)
        runs.append(r)
    ok = [r for r in runs if "page_updated_s" in r]
    res = dict(sorted(ok, key=lambda r: r["page_updated_s"])[(len(ok) - 1) // 2] if ok else runs[-1])  # the median run
    res["runs"] = runs
    res["app"] = str(app)
    res["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=app, capture_output=True,
                                   text=True).stdout.strip()
    if ok:
        res["page_updated_median_s"] = round(statistics.median(r["page_updated_s"] for r in ok), 2)
    print(res, flush=True)
    path = RESULTS / f"{out}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["bulk_issues"] = res
    path.write_text(json.dumps(data, indent=2) + "\n")


def has_map(root: Path, state_dir: Path) -> int:
    """How many points the cached UMAP map shows (0 when the copy has none: computing it is not a page load)."""
    from cleaning.data.cache import fingerprint, load_arrays
    from cleaning.model.embed import load_or_compute_embeddings

    ws = workspace(root, state_dir)
    emb = load_or_compute_embeddings(ws, include_deleted=True)
    frame = ws.items_frame().set_index("item_id").loc[emb.item_ids]
    key = fingerprint("proj", emb.model_key, "umap", 0, sorted(set(frame["sha256"])))
    n = int((~frame["deleted"]).sum()) if load_arrays(ws.cache_dir, "proj", key) is not None else 0
    ws.store.close()
    return n


def _s(v: object, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f} s" if isinstance(v, float | int) else str(v)


def _load_cell(r: dict | None, target: float = 3.0) -> tuple[str, str]:
    if not r:
        return "–", "–"
    if r.get("timed_out_after_s"):
        return f"> {r['timed_out_after_s']:.0f} s (timed out)", "–"
    med = r.get("median_s")
    ok = "✓" if med is not None and med < target else "✗"
    return f"{_s(r.get('first_s'))}", f"**{_s(med)}** {ok} ({', '.join(f'{v:.1f}' for v in r['load_s'])})"


def report(a: dict, b: dict | None) -> str:
    """The markdown of a run ``a`` (this branch) beside a run ``b`` of main (or None)."""
    rows = []
    for part, title in (("pages", "no decisions"), ("pages_after_bulk", "after 20,000+ decisions")):
        for what in ("overview", "issues", "history", "deleted"):
            ra = a.get(part, {}).get(what)
            if ra is None:
                continue
            rb = (b or {}).get(part, {}).get(what)
            fa, wa = _load_cell(ra)
            fb, wb = _load_cell(rb)
            label = "10,000 deleted, before the restore" if part == "pages_after_bulk" and what == "deleted" else title
            rows.append(f"| {what.capitalize()} ({label}) | {fb} | {wb} | {fa} | {wa} | {ra.get('loadavg', ['?'])[0]} |")
    bulk = []
    for key, what in (("library_record", "library: `Store.record` 10,000 keeps (one batch) / its undo"),
                      ("cli_delete", "CLI: `python -m cleaning delete ROOT` 10,000 paths (one process)"),
                      ("bulk_restore", "browser, Deleted page: Restore all 10,000 → confirm"),
                      ("bulk_issues", "browser, Issues page: Pick all N shown → Mark N as fine")):
        ra, rb = a.get(key) or {}, (b or {}).get(key) or {}

        def cell(r: dict, key: str = key) -> str:
            if not r:
                return "–"
            if r.get("error"):
                return f"failed: {r['error'][:80]}"
            if key == "library_record":
                return f"{r['record_s']:.2f} s / {r['undo_s']:.2f} s"
            if key == "cli_delete":
                return f"{r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} CPU-s"
            ok = "✓" if r.get("page_updated_s", 99) < 5 else "✗"
            return (f"{r.get('n', '?')} images: recorded {r['recorded_s']:.1f} s, page updated "
                    f"**{r['page_updated_s']:.1f} s** {ok}")
        bulk.append(f"| {what} | {cell(rb)} | {cell(ra)} | {ra.get('loadavg', ['?'])[0]} |")
    m = a.get("map") or {}
    if m.get("click_dialog_median_s") is not None:
        map_txt = (f"{m['n_points']:,} points drawn ({', '.join(m['trace'])}): first load {m['first_load_s']:.1f} s, "
                   f"then {', '.join(map(str, m['load_s']))} s (median **{m['load_median_s']:.1f} s**); click → "
                   f"dialog visible median **{m['click_dialog_median_s']:.2f} s** "
                   f"({', '.join(map(str, m['click_dialog_s']))}), dialog image loaded "
                   f"{m['click_image_median_s']:.2f} s; clicks that opened nothing: {m['clicks_without_dialog']}; "
                   f"load average {m['loadavg'][0]}.")
    else:
        map_txt = f"not measured: {m.get('error') or m.get('note')}"
    u = a.get("umap_100k") or {}
    umap_txt = (f"computed once into the copy's cache by `load_or_compute_projection(ws, 'umap')`: {u['n']:,} points, "
                f"{u['wall_s'] / 60:.1f} min wall, {u['cpu_s']:.0f} CPU-s, peak RSS {u['peak_rss_mb'] / 1024:.2f} GB "
                f"(load average after: {u['loadavg_after'][0]:.1f})" if u else "not computed")
    return f"""# The app at 100,000 images (issue 15, item 3)

`python bench/bench_app_scale.py` — {a['date']} UTC, {a['cpus']} CPU cores shared with four other sessions'
work (load average {a['loadavg_before'][0]} before, {a['loadavg_after'][0]} after; every number below carries
the load at its time), Python {a['python']}, headless Debian Chromium (software compositing, the tests'
flags) driven by Playwright, `streamlit run` on loopback, the benchmark and server under `nice -n 10`.
Main measured the same way{f" (commit {b['commit']}, {b['date']} UTC, `--loads 1 --timeout 300`)" if b else ""};
this branch at {a['commit']}.

Data: {a['n_images']:,} images (`/work/scale-data/t100k`, 64-px JPEGs in 10 class folders, `bench/scale_tree.py`)
and a copy of their scanned state (projected-pixel embeddings, out-of-sample heads, the issue table of
`bench/results/scale.md` §6): {a.get('issues_filter', {}).get('rows', '?')} label rows in the class used for the
Issues bulk action. Each run starts from the scanned store with no decisions.

A page is *loaded* when the app's script run has finished (the app root's `data-test-script-state`, twice
150 ms apart) and the page's own content shows: Overview the class table drawn and the class samples'
heading; Issues the "Next page" button under the last card of the first page; History the decisions
table; Deleted its restore button or "Nothing is deleted.". *First* is the first load after the server
started (the server reads the caches: the issue table and predictions of 100k images); then `--loads`
more, each in a fresh browser context. Target: < 3 s.

| page | main: first | main: then (median) | this branch: first | this branch: then (median; all) | load avg (this branch) |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Decisions for 10,000 images (target for the bulk action: < 5 s from the click to the page updated):

| path | main | this branch | load avg (this branch) |
|---|---|---|---|
{chr(10).join(bulk)}

Embedding map at 100k: {map_txt}

UMAP of 100,000 points: {umap_txt}. The state made by the scan had no map; the app computes one on the
first visit of the Embedding page (with a spinner) and caches it by the set of image contents, so it is
a one-time cost per data set, not a page load.
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path("/work/scale-data/t100k"))
    ap.add_argument("--state", type=Path, default=Path("/work/scale-data/app100k-state/t100k.cleaning"))
    ap.add_argument("--loads", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--app", type=Path, default=REPO, help="the checkout whose app runs (to measure main)")
    ap.add_argument("--skip-map", action="store_true")
    ap.add_argument("--clicks", type=int, default=8)
    ap.add_argument("--out", default="app_scale")
    ap.add_argument("--report-only", action="store_true", help="rewrite the .md from the .json files")
    ap.add_argument("--issues-bulk", action="store_true", help="only the Issues bulk action (fresh server), "
                    "added to the .json")
    ap.add_argument("--repeat", type=int, default=1, help="--issues-bulk: runs (a fresh server each)")
    ap.add_argument("--apptest", action="store_true", help="only the AppTest part (script CPU per page), "
                    "added to the .json")
    ap.add_argument("--map-only", default="", metavar="LABEL", help="only the Embedding map on a fresh server "
                    "from --app, added to the .json under map_runs[LABEL]")
    a = ap.parse_args()
    if a.map_only:
        map_part(a.root.resolve(), a.state.resolve(), a.app.resolve(), a.map_only, a.out, a.clicks, a.loads)
        return
    if a.report_only:
        write_report(a.out)
        return
    if a.issues_bulk:
        issues_bulk_part(a.root.resolve(), a.state.resolve(), a.out, a.app.resolve(), a.repeat)
        write_report(a.out)
        return
    if a.apptest:
        apptest_part(a.root.resolve(), a.state.resolve(), a.out)
        write_report(a.out)
        return
    from playwright.sync_api import sync_playwright

    reset_state(a.state)
    root, state = a.root.resolve(), a.state.resolve()
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "python": platform.python_version(),
                 "app": str(a.app), "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=a.app,
                                                             capture_output=True, text=True).stdout.strip(),
                 "loadavg_before": loadavg(), "pages": {}, "pages_after_bulk": {}}
    ws = workspace(root, state)
    items = ws.items_frame()
    res["n_images"] = int(len(items))
    issues_table = None
    try:
        from cleaning.review.analysis import load_or_find_issues

        issues_table = load_or_find_issues(ws)
    except Exception as e:  # noqa: BLE001 — reported, not hidden
        res["issues_error"] = repr(e)
    ws.store.close()
    live = items[~items["deleted"]].sort_values("path")
    bulk_paths = list(live["path"].iloc[::max(1, len(live) // N_BULK)][:N_BULK])
    keep_ids = list(live["item_id"].iloc[1::max(1, len(live) // N_BULK)][:N_BULK])
    filt = None
    if issues_table is not None:
        lab = issues_table[issues_table["issue"] == "label"]
        counts = lab.drop_duplicates("item_id")["label"].value_counts()
        near = (counts - N_BULK).abs().sort_values()  # the class whose label issues are closest to 10,000
        filt = ("label", str(near.index[0]), int(counts[near.index[0]]))
        res["issues_filter"] = {"issue": filt[0], "class": filt[1], "rows": filt[2]}

    log = REPO / "bench" / "out" / "app_scale_server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc, base = start_server(root, state.parent, log, {"PYTHONPATH": str(a.app)}, app=a.app)
    try:
        res["server_healthy_s"] = round(wait_healthy(base, proc, timeout=300), 2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            print("page loads, no decisions", flush=True)
            for what in ("overview", "issues", "history", "deleted"):
                res["pages"][what] = {**time_loads(browser, base, what, a.loads, a.timeout), "loadavg": loadavg()}
            print("library: record + undo 10,000", flush=True)
            res["library_record"] = library_record(root, state, keep_ids)
            print("CLI: delete 10,000", flush=True)
            res["cli_delete"] = cli_delete(root, state, bulk_paths, a.app)
            print(res["cli_delete"], flush=True)
            print("browser: restore all 10,000 on the Deleted page", flush=True)
            res["pages_after_bulk"]["deleted"] = {**time_loads(browser, base, "deleted", a.loads, a.timeout),
                                                  "loadavg": loadavg()}
            try:
                res["bulk_restore"] = restore_all(browser, base, state, len(bulk_paths))
            except Exception as e:  # noqa: BLE001
                res["bulk_restore"] = {"error": repr(e)[:500]}
            print(res["bulk_restore"], flush=True)
            if filt is not None:
                print("browser: Issues, pick all shown → mark as fine", flush=True)
                try:
                    res["bulk_issues"] = issues_bulk(browser, base, state, filt[0], filt[1])
                except Exception as e:  # noqa: BLE001
                    res["bulk_issues"] = {"error": repr(e)[:500]}
                print(res["bulk_issues"], flush=True)
            res["decisions_recorded"] = active_count(state)
            (RESULTS / f"{a.out}.partial.json").write_text(json.dumps(res, indent=2) + "\n")  # kept if the map hangs
            print("page loads with the decisions recorded", flush=True)
            for what in ("history", "issues", "overview"):
                res["pages_after_bulk"][what] = {**time_loads(browser, base, what, a.loads, a.timeout),
                                                 "loadavg": loadavg()}
            browser.close()
        n_map = 0 if a.skip_map else has_map(root, state)
        if n_map:
            print(f"embedding map, {n_map} points", flush=True)
            try:
                res["map"] = embedding_map(base, n_map, a.clicks, 2)
            except Exception as e:  # noqa: BLE001
                res["map"] = {"n_points": n_map, "error": repr(e)[:800]}
        else:
            res["map"] = {"n_points": 0, "note": "skipped" if a.skip_map else "no UMAP map in the state copy"}
    finally:
        stop_server(proc)
    res["loadavg_after"] = loadavg()
    umap = Path("/work/scale-data/app100k-logs/umap100k.json")
    if umap.exists():
        res["umap_100k"] = json.loads(umap.read_text())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{a.out}.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    write_report(a.out)


def apptest_table(t: dict) -> str:
    rows = []
    for part, title in (("no_decisions", "no decisions"), ("after_20000_decisions", "20,000 decisions")):
        for what, r in t.get(part, {}).items():
            label = "10,000 deleted, before the restore" if part == "pages_after_bulk" and what == "deleted" else title
            rows.append(f"| {what.capitalize()} ({label}) | {r['cpu_s'][0]:.2f} | "
                        f"{', '.join(f'{v:.2f}' for v in r['cpu_s'][1:])} | "
                        f"{', '.join(f'{v:.1f}' for v in r['wall_s'])} | {r['loadavg'][0]} |")
    return ("| page | CPU-s, first run | CPU-s, then | wall s (all runs) | load avg |\n|---|---|---|---|---|\n"
            + "\n".join(rows))


def write_report(out: str) -> None:
    """``{out}.md`` from ``{out}.json``, with the parts measured apart (``{out}_apptest.json``,
    ``{out}_bulk.json``: ``--apptest`` / ``--issues-bulk`` runs) and main's run beside it."""
    res = json.loads((RESULTS / f"{out}.json").read_text())
    for extra, key in ((f"{out}_apptest", "apptest"), (f"{out}_bulk", "bulk_issues")):
        f = RESULTS / f"{extra}.json"
        if f.exists() and key in json.loads(f.read_text()) and (key not in res or "error" in res[key]):
            res[key] = json.loads(f.read_text())[key]
    if "date" not in res:
        return
    before = RESULTS / "app_scale_before.json"
    b = json.loads(before.read_text()) if before.exists() and out != "app_scale_before" else None
    notes = RESULTS / f"{out}.notes.md"
    text = notes.read_text() if notes.exists() else ""
    text = text.replace("APPTEST_TABLE", apptest_table(res.get("apptest", {})))
    (RESULTS / f"{out}.md").write_text(report(res, b) + text)


if __name__ == "__main__":
    main()
