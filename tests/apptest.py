"""Shared AppTest plumbing: a demo copy scanned once per test module, a fresh copy of it per test, and
opening one page of the real app (``dashboard.py``) on it.

The slow part (embeddings, out-of-sample probabilities, the scan, optionally the map) runs once per module
through the library; its caches live in the workspace's state folder, which every test copies along with
the data set, so each test starts from the same scanned demo and writes only to its own copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from streamlit.testing.v1 import AppTest

from cleaning.data.demo import prepare_demo
from cleaning.data.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent


def scanned_demo(where: Path, issues: bool = True, projection: str | None = None) -> Path:
    """Prepare the demo under ``where`` and compute its caches; returns the folder holding ``data`` and its
    state (copy it with :func:`demo_copy`)."""
    from cleaning.model.oos import load_or_compute_oos

    root = prepare_demo(where)
    ws = Workspace.open(root)
    if issues:
        from cleaning.review.analysis import load_or_find_issues

        load_or_find_issues(ws)
    load_or_compute_oos(ws)
    if projection:
        from cleaning.model.projection import load_or_compute_projection

        load_or_compute_projection(ws, projection)
    ws.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ws.store.close()
    return root.parent


def demo_copy(prepared: Path, tmp_path: Path, monkeypatch) -> Path:  # noqa: ANN001 — pytest's MonkeyPatch
    """A fresh copy of a :func:`scanned_demo` folder for one test, opened by the app (``CLEANING_ROOT``);
    returns its data root."""
    shutil.copytree(prepared, tmp_path / "w", ignore=shutil.ignore_patterns("*.partial"))
    root = tmp_path / "w" / "data"
    monkeypatch.setenv("CLEANING_ROOT", str(root))
    return root


def open_page(page: str) -> AppTest:
    """Run the app and switch to ``page`` (e.g. ``"pages/issues.py"``); fails on any exception shown."""
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=240).run()
    if page != "pages/overview.py":
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at
