"""Real-browser fixtures: the app served by ``streamlit run`` on loopback, driven by Debian's Chromium.

The model side (embeddings, out-of-sample probabilities, the map, the scan when installed) is computed
once through the library before the server starts; the app then finds the shared caches, as it does for a
user who ran the CLI first. Without ``/usr/bin/chromium`` the tests are skipped, or fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 90) -> float:
    """Seconds until ``/_stcore/health`` answers 200. Raises RuntimeError if the server dies or hangs."""
    t0 = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            if proc.poll() is not None or time.monotonic() - t0 > timeout:
                err = proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr else ""
                raise RuntimeError(f"streamlit did not start: {err}") from None
            time.sleep(0.2)


def start_server(root: Path, state_dir: Path, log: Path, extra_env: dict[str, str] | None = None,
                 app: Path = REPO) -> tuple[subprocess.Popen, str]:
    """``streamlit run dashboard.py -- ROOT`` on a free loopback port with its own state folder (``app``: the
    checkout whose dashboard runs; the benchmarks trace older commits too)."""
    port = free_port()
    env = {**os.environ, "CLEANING_STATE_DIR": str(state_dir), "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    env.pop("CLEANING_ROOT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app / "dashboard.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", "--", str(root)],
        cwd=app, env=env, stdout=log.open("wb"), stderr=subprocess.PIPE)
    return proc, f"http://127.0.0.1:{port}"


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def precompute(root: Path, state_dir: Path) -> None:
    """What ``python -m cleaning scan ROOT`` leaves in the state folder, through the library."""
    from cleaning.data.workspace import Workspace
    from cleaning.model.oos import load_or_compute_oos
    from cleaning.model.projection import load_or_compute_projection

    ws = Workspace.open(root, state_dir=state_dir / (root.name + ".cleaning"))
    load_or_compute_oos(ws)
    load_or_compute_projection(ws, "umap")
    try:
        from cleaning.review.analysis import load_or_find_issues
    except ImportError:
        pass
    else:
        load_or_find_issues(ws)
    ws.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ws.store.close()


#: Streamlit 1.67 has no ``stStatusWidget`` while a script runs (waiting for it to vanish never waits); the
#: app root carries the script-run state instead, and the tests also wait for the content they expect.
IDLE_JS = """() => {
  const app = document.querySelector('[data-testid=stApp]');
  if (!app) return false;
  const s = app.getAttribute('data-test-script-state');
  return s === 'notRunning' || s === 'compilationError';
}"""


def wait_idle(page, expect_text: str | None = None, timeout: float = 90) -> None:  # noqa: ANN001 — a Page
    """Until the script run triggered by the last action has finished (the app root says ``notRunning``
    twice in a row, 150 ms apart, so a rerun that had not started yet is not missed), and, when given,
    until ``expect_text`` is on the page."""
    deadline = time.monotonic() + timeout
    time.sleep(0.15)
    calm = 0
    while calm < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the app was still running after {timeout} s")
        calm = calm + 1 if page.evaluate(IDLE_JS) else 0
        time.sleep(0.15)
    if expect_text is not None:
        page.get_by_text(expect_text).first.wait_for(state="visible", timeout=timeout * 1000)


@dataclass
class App:
    base: str
    root: Path
    state_dir: Path

    def workspace(self):  # noqa: ANN201 — cleaning.data.workspace.Workspace
        from cleaning.data.workspace import Workspace

        return Workspace.open(self.root, state_dir=self.state_dir / (self.root.name + ".cleaning"))


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[App]:
    """A fresh server on a writable copy of the demo (with its provenance), caches precomputed."""
    yield from serve_demo(tmp_path_factory)


def serve_demo(tmp_path_factory: pytest.TempPathFactory, extra_env: dict[str, str] | None = None) -> Iterator[App]:
    """The body of the ``app`` fixture; ``extra_env`` is added to the server's environment."""
    from cleaning.data.demo import prepare_demo

    home = tmp_path_factory.mktemp("browser_app")
    root = prepare_demo(home / "demo")
    state_dir = home / "state"
    # prepare_demo recorded provenance in the default state folder: move it to the server's own one
    state_dir.mkdir()
    (root.parent / (root.name + ".cleaning")).rename(state_dir / (root.name + ".cleaning"))
    precompute(root, state_dir)
    proc, base = start_server(root, state_dir, home / "server.log", extra_env)
    try:
        wait_healthy(base, proc)
        yield App(base, root, state_dir)
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()
