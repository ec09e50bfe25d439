"""Hosted mode in a real browser: upload the demo as a zip, delete one image, download the cleaned zip and
check its contents (``<label>/<file>`` + ``labels.csv``), on a server started with ``CLEANING_MODE=hosted``."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import REPO, free_port, stop_server, wait_healthy
from .test_clicks import wait_idle


@pytest.fixture(scope="module")
def hosted_app(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("hosted_app")
    scratch = home / "scratch"
    port = free_port()
    env = {**os.environ, "CLEANING_MODE": "hosted", "CLEANING_SCRATCH": str(scratch), "CLEANING_WARM": "0",
           "HF_HUB_OFFLINE": "1"}
    env.pop("CLEANING_ROOT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=(home / "server.log").open("wb"), stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc)
        yield base, scratch
    finally:
        stop_server(proc)


def demo_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for p in sorted((REPO / "demo" / "data").rglob("*")):
            if p.is_file():
                zf.write(p, "demo/" + p.relative_to(REPO / "demo" / "data").as_posix())
    return path


def precompute(root: Path) -> None:
    """What the Issues page would compute on first use, done here so the server finds it cached."""
    from cleaning.data.workspace import Workspace
    from cleaning.model.oos import load_or_compute_oos
    from cleaning.review.analysis import load_or_find_issues

    ws = Workspace.open(root)
    load_or_compute_oos(ws)
    load_or_find_issues(ws)
    ws.store.checkpoint()
    ws.store.close()


@pytest.mark.timeout(900)
def test_upload_delete_download(hosted_app: tuple[str, Path], page: Page, tmp_path: Path) -> None:
    base, scratch = hosted_app
    page.goto(base)
    expect(page.get_by_role("heading", name="Overview").first).to_be_visible(timeout=120_000)
    page.locator("[data-testid=stFileUploader] input[type=file]").first.set_input_files(
        str(demo_zip(tmp_path / "demo.zip")))
    expect(page.get_by_text(re.compile(r"Loaded demo\.zip: 130 image files in 4 classes"))).to_be_visible(timeout=120_000)
    expect(page.get_by_text("bird · 37 images")).to_be_visible()
    assert re.search(r"[?&]ws=[0-9a-f]{32}", page.url), page.url  # the workspace token is in the URL

    roots = list(scratch.glob("*/*/data"))
    assert len(roots) == 1, roots  # one session, one workspace, under the scratch root
    precompute(roots[0])

    page.get_by_role("link", name="Issues").click()
    expect(page.get_by_role("heading", name="Issues").first).to_be_visible(timeout=120_000)
    delete = page.get_by_role("button", name="Delete", exact=True).first
    expect(delete).to_be_visible(timeout=180_000)
    delete.click()
    flash = page.get_by_text(re.compile(r"Deleted \S+/\S+"))
    expect(flash.first).to_be_visible(timeout=60_000)
    deleted = re.search(r"Deleted (\S+/\S+)", flash.first.inner_text()).group(1)

    page.get_by_role("link", name="Export").click()
    expect(page.get_by_role("heading", name="Export").first).to_be_visible(timeout=120_000)
    wait_idle(page)
    button = page.get_by_role("button", name=re.compile(r"Download the cleaned data set \(\.zip\)"))
    expect(button).to_be_visible(timeout=60_000)
    with page.expect_download(timeout=120_000) as dl:
        button.click()
    out = tmp_path / "clean.zip"
    dl.value.save_as(out)
    assert dl.value.suggested_filename == "demo-clean.zip"

    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        rows = list(csv.reader(io.StringIO(zf.read("labels.csv").decode())))
    images = names - {"labels.csv"}
    assert len(images) == 128 and deleted not in images
    assert all(re.fullmatch(r"(bird|flower|fruit|mammal)/[^/]+", n) for n in images)
    assert rows[0][:2] == ["path", "label"]
    assert {(r[0], r[1]) for r in rows[1:]} == {(n, n.split("/")[0]) for n in images}
