"""The Issues, Sources and Export pages through AppTest on a copy of the demo, plus deep links in a browser.

The slow part (embeddings, out-of-sample probabilities, the scan) runs once per module through the library;
its caches live in the workspace's state folder, which every test copies along with the data set.
"""

from __future__ import annotations

import csv
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from cleaning.data.workspace import Workspace
from cleaning.review import analysis
from cleaning.review.queue import build_queue
from tests.apptest import REPO, demo_copy, open_page, scanned_demo


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo copy with provenance, scanned once: returns the folder holding ``data`` and its state."""
    return scanned_demo(tmp_path_factory.mktemp("issues_app"))


@pytest.fixture
def root(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the scanned demo for one test; the app opens it."""
    return demo_copy(prepared, tmp_path, monkeypatch)


def queue_of(ws: Workspace) -> pd.DataFrame:
    return build_queue(analysis.load_or_find_issues(ws), ws.items_frame())


def n_open(at: AppTest) -> int:
    cap = next(c.value for c in at.caption if "still to review" in c.value)
    return int(cap.split("**")[1])


def keys(at: AppTest, suffix: str) -> list[str]:
    return [b.key for b in at.button if b.key and b.key.endswith(suffix)]


def show_all(at: AppTest) -> AppTest:
    at.selectbox(key="iss_size").set_value(100).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ---- Issues ---------------------------------------------------------------------------------------
def test_the_whole_queue_is_paged(root: Path) -> None:
    ws = Workspace.open(root)
    q = queue_of(ws)
    assert len(q) > 10, "the demo has 22 planted problems"
    at = open_page("pages/issues.py")
    assert n_open(at) == len(q)
    at.selectbox(key="iss_size").set_value(10).run()
    pages = -(-len(q) // 10)
    assert any(f"Page 1 of {pages}" in c.value for c in at.caption)
    seen = 0
    for p in range(1, pages + 1):
        assert any(f"Page {p} of {pages}" in c.value for c in at.caption)
        seen += len([m for m in at.markdown if "· severity" in m.value])
        if p < pages:
            at.button(key="iss_next").click().run()
    assert seen == len(q)  # every entry, not a top-N slice


def test_accept_suggestion_then_undo(root: Path) -> None:
    at = show_all(open_page("pages/issues.py"))
    ws = Workspace.open(root)
    n = n_open(at)
    key = keys(at, "_accept")[0]
    iid = key.removeprefix("iss_item:").removesuffix("_accept")
    sugg = at.button(key=key).label.split("→ ")[1]
    at.button(key=key).click().run()
    assert ws.store.current()[iid].label == sugg
    assert ws.store.history()[-1].source == "suggestion"
    assert n_open(at) == n - 1 and key not in keys(at, "_accept")
    at.button(key="frame_undo").click().run()
    assert n_open(at) == n and key in keys(at, "_accept")


def test_delete_and_mark_fine_leave_the_queue(root: Path) -> None:
    at = show_all(open_page("pages/issues.py"))
    ws = Workspace.open(root)
    n = n_open(at)
    d, f = keys(at, "_delete")[:2]
    at.button(key=d).click().run()
    at.button(key=f.replace("_delete", "_keep")).click().run()
    gone = d.removeprefix("iss_item:").removesuffix("_delete")
    fine = f.removeprefix("iss_item:").removesuffix("_delete")
    state = ws.store.current()
    assert state[gone].deleted and state[fine].kept and not state[fine].deleted
    assert n_open(at) == n - 2
    assert d not in keys(at, "_delete") and f not in keys(at, "_delete")


def test_relabel_from_the_card(root: Path) -> None:
    at = show_all(open_page("pages/issues.py"))
    ws = Workspace.open(root)
    sel = next(s for s in at.selectbox if s.key and s.key.endswith("_new"))
    iid = sel.key.removeprefix("iss_item:").removesuffix("_new")
    target = sel.options[-1]
    sel.set_value(target).run()
    at.button(key=sel.key.replace("_new", "_relabel")).click().run()
    assert ws.store.current()[iid].label == target
    assert ws.store.history()[-1].source == "user"


def test_duplicate_pair_keep_this_one_deletes_the_other(root: Path) -> None:
    ws = Workspace.open(root)
    pairs = queue_of(ws).query("kind == 'pair'")
    assert len(pairs), "the demo has duplicate pairs"
    at = show_all(open_page("pages/issues.py"))
    e = pairs.iloc[0]
    a, b = e["item_id"], e["related_item_id"]
    key = f"iss_{e['key']}_keep_{a}"
    at.button(key=key).click().run()
    state = ws.store.current()
    assert state[b].deleted and not state[a].deleted
    assert key not in keys(at, f"_keep_{a}")


def test_bulk_mark_fine_is_one_batch(root: Path) -> None:
    at = show_all(open_page("pages/issues.py"))
    ws = Workspace.open(root)
    n = n_open(at)
    boxes = [c for c in at.checkbox if c.key and c.key.startswith("iss_pick_item:")][:3]
    for c in boxes:
        c.check()
    at.run()
    assert any("3 image(s) selected" in m.value for m in at.markdown)
    at.button(key="iss_bulk_keep").click().run()
    hist = ws.store.history()
    assert len({d.batch for d in hist}) == 1 and len(hist) == 3 and {d.source for d in hist} == {"bulk"}
    assert n_open(at) == n - 3


def test_filters_by_issue_type_class_and_query(root: Path) -> None:
    at = open_page("pages/issues.py")
    types = at.multiselect(key="iss_types")
    assert any(o.startswith("wrong label?") for o in types.options)
    types.select("label").run()
    heads = [m.value for m in at.markdown if "· severity" in m.value]
    assert heads and all("wrong label" in h for h in heads)
    at.multiselect(key="iss_types").unselect("label").run()
    at.multiselect(key="iss_queries").select("mammal wallpaper").run()
    assert not at.exception
    cards = [c.value for c in at.caption if "query “" in c.value]
    assert cards and all("mammal wallpaper" in c for c in cards)


# ---- Sources --------------------------------------------------------------------------------------
def test_sources_page_points_at_the_wallpaper_query(root: Path) -> None:
    """The demo's "{label} wallpaper" queries brought in most of the off-topic images."""
    at = open_page("pages/sources.py")
    assert at.title[0].value == "Sources"
    callout = [w.value for w in at.warning] + [i.value for i in at.info]
    assert any("stands out" in c for c in callout), callout  # "stands out" or "no ... stands out clearly"
    at.selectbox(key="src_rank").set_value("outlier").run()
    top = at.dataframe[0].value.iloc[0]
    assert "wallpaper" in top["source"] and top["n_outlier"] >= 1
    at.segmented_control(key="src_by").set_value("template").run()
    table = at.dataframe[0].value.set_index("source")
    assert table.index[0] == "{label} wallpaper"
    assert table["share_outlier"].idxmax() == "{label} wallpaper"
    at.segmented_control(key="src_by").set_value("host").run()
    assert "wallpapers.example.com" in set(at.dataframe[0].value["source"])
    assert not at.exception


def test_sources_sends_a_query_to_the_issues_page(root: Path) -> None:
    at = open_page("pages/sources.py")
    src = at.selectbox(key="src_pick_query").value
    at.button(key="src_to_issues").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Issues"
    assert at.multiselect(key="iss_queries").value == [src]


def test_retrain_box_links_to_train_and_shows_before_after(root: Path) -> None:
    from cleaning.model.runs import record_run

    ws = Workspace.open(root)
    run = {"arch": "tf_efficientnet_lite0", "n_train": 100, "n_valid": 29, "vocab": ["bird", "flower"],
           "confusion": [[10, 4], [3, 12]]}
    record_run(ws, "r1", {**run, "accuracy": 0.80}, root / "m1.pkl", created_at="2026-01-01T00:00:00.000+00:00")
    ws.store.record(ws.items_frame()["item_id"][:2], "delete")
    record_run(ws, "r2", {**run, "accuracy": 0.86}, root / "m2.pkl", created_at="2026-01-02T00:00:00.000+00:00")
    ws.store.record(ws.items_frame()["item_id"][2:3], "delete")
    for page in ("pages/issues.py", "pages/export.py"):
        at = open_page(page)
        assert any("1 decision(s) since the last run" in m.value for m in at.markdown)
        m = next(m for m in at.metric if m.label == "Accuracy, last run")
        assert m.value == "86.0%" and m.delta == "+6.0 pts"
        assert any(p.proto.page.endswith("train.py") or "train" in p.proto.page for p in at.get("page_link"))


# ---- Export ---------------------------------------------------------------------------------------
def test_export_writes_items_minus_deletions(root: Path, tmp_path: Path) -> None:
    ws = Workspace.open(root)
    items = ws.items_frame()
    ws.store.record(items["item_id"][:3], "delete")
    ws.store.record(items["item_id"][5:6], "relabel", label="fruit")
    at = open_page("pages/export.py")
    out = tmp_path / "clean"
    at.text_input(key="exp_out").input(str(out)).run()
    assert not at.error, [e.value for e in at.error]
    at.checkbox(key="exp_export_ok").check().run()
    at.button(key="exp_export").click().run()
    assert not at.exception, [e.value for e in at.exception]
    with open(out / "labels.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(items) - 3
    assert any(f"Exported {len(items) - 3} image(s)" in s.value for s in at.success)
    assert not list(ws.quarantine_dir.glob("*/*"))  # exporting does not touch the data set


def test_export_refuses_unsafe_targets_nicely(root: Path) -> None:
    at = open_page("pages/export.py")
    at.text_input(key="exp_out").input(str(root / "bird")).run()
    assert any("inside the data set" in e.value for e in at.error)
    assert at.checkbox(key="exp_export_ok").disabled and at.button(key="exp_export").disabled


def test_apply_shows_the_plan_then_quarantines(root: Path) -> None:
    ws = Workspace.open(root)
    items = ws.items_frame()
    gone, moved = items.iloc[0], items[items["label"] == "bird"].iloc[1]
    ws.store.record([gone["item_id"]], "delete")
    ws.store.record([moved["item_id"]], "relabel", label="mammal")
    at = open_page("pages/export.py")
    plan = at.dataframe[0].value
    assert set(plan["file"]) == {gone["path"], moved["path"]}
    assert at.button(key="exp_apply").disabled  # not before the confirmation
    at.checkbox(key="exp_apply_ok").check().run()
    at.button(key="exp_apply").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Applied 2 change(s)" in s.value for s in at.success)
    assert not (root / gone["path"]).exists() and list(ws.quarantine_dir.glob(f"{gone['item_id']}/*"))
    assert (root / "mammal" / Path(moved["path"]).name).exists()
    assert any("nothing to move" in i.value for i in at.info)


# ---- deep links on a fresh server (real browser) ---------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def streamlit_server(root: Path) -> Iterator[str]:
    """``streamlit run dashboard.py -- ROOT`` on a free loopback port; yields the base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--", str(root)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start: {proc.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.browser
@pytest.mark.parametrize("url,title", [("issues", "Issues"), ("sources", "Sources"), ("export", "Export")])
def test_deep_link_on_a_fresh_server_renders_the_full_app(url: str, title: str, root: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with streamlit_server(root) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/{url}")  # the first request after the server started
        page.get_by_role("heading", name=title).first.wait_for(timeout=90_000)
        page.get_by_text("Data set:").first.wait_for(timeout=30_000)  # the shared frame is there
        assert page.get_by_role("link", name="Overview").count() >= 1  # and so is the navigation
        browser.close()


def test_pick_all_shown_then_mark_fine_is_one_batch(root: Path) -> None:
    """"Pick all N shown" picks every image entry the filters leave, on every page (a bulk action on
    10,000 images at 100k); one click then records them as one batch and they leave the queue."""
    ws = Workspace.open(root)
    q = queue_of(ws)
    want = [k.split(":", 1)[1] for k in q["key"] if k.startswith("item:")]
    at = open_page("pages/issues.py")
    at.selectbox(key="iss_size").set_value(10).run()
    at.button(key="iss_pick_every").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"{len(want)} image(s) selected" in m.value for m in at.markdown)
    at.button(key="iss_bulk_keep").click().run()
    hist = ws.store.history()
    assert {d.item_id for d in hist} == set(want) and len({d.batch for d in hist}) == 1
    assert n_open(at) == len(q) - len(want)
    assert not [k for k in at.session_state if str(k).startswith("iss_pick_item:")]  # gone entries' picks forgotten


def test_a_rerun_reuses_the_queue(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page turn or a pick reruns the page: the queue is built once per data-set version (at 100,000
    images a build cost seconds of every rerun), and again after a decision."""
    from cleaning.review import queue as queue_mod

    built = []
    real = queue_mod.build_queue
    monkeypatch.setattr(queue_mod, "build_queue", lambda *a, **k: built.append(1) or real(*a, **k))
    at = open_page("pages/issues.py")
    at.selectbox(key="iss_size").set_value(10).run()
    at.button(key="iss_next").click().run()
    assert not at.exception and len(built) == 1
    fine = keys(at, "_keep")[0]
    at.button(key=fine).click().run()
    assert len(built) == 2  # the decision made a new version


def test_mark_fine_in_bulk_splices_the_queue_and_undo_brings_it_back(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """"Mark N as fine" changes no label, no deleted flag, no finding: the queue is brought up to date by
    rebuilding the marked images' entries alone (at 100,000 images a full rebuild was 1.6 CPU-s of every
    bulk action), never the whole issue table; Undo brings every one of them back, and History shows the batch."""
    from cleaning.review import queue as queue_mod

    ws = Workspace.open(root)
    q = queue_of(ws)
    n_rows = len(analysis.load_or_find_issues(ws))
    built: list[int] = []
    real = queue_mod.build_queue
    monkeypatch.setattr(queue_mod, "build_queue", lambda t, i: built.append(len(t)) or real(t, i))
    at = open_page("pages/issues.py")
    at.selectbox(key="iss_size").set_value(10).run()
    assert built == [n_rows]  # the first build
    at.button(key="iss_pick_every").click().run()
    want = [k.split(":", 1)[1] for k in q["key"] if k.startswith("item:")]
    at.button(key="iss_bulk_keep").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert n_open(at) == len(q) - len(want)
    assert len(built) == 2 and built[1] < n_rows  # the kept images' rows only
    batch = {d.batch for d in ws.store.history()}
    assert len(batch) == 1
    at.switch_page("pages/history.py").run()
    assert not at.exception and at.dataframe  # the batch is listed
    at.switch_page("pages/issues.py").run()
    at.button(key="frame_undo").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert n_open(at) == len(q)  # all back
    assert all(d.state == "undone" for d in ws.store.history())
    assert built.count(n_rows) == 1  # neither the decision nor its undo rebuilt the whole queue
