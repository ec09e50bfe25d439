"""Screenshots of the real app on the bundled demo for the README (headless Debian Chromium).

    python -m scripts.screenshots [--out docs/screenshots] [--pages grid deleted issues train]   (from the repo)

Prepares a fresh demo copy (embeddings, predictions, issue table and map computed through the library
first, as `python -m cleaning scan` would), serves it with `streamlit run` on loopback, and saves one PNG per
page. Needs `/usr/bin/chromium` and the `playwright` package.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cleaning.data.demo import prepare_demo
from cleaning.data.workspace import Workspace, default_state_dir
from cleaning.model.oos import load_or_compute_oos
from cleaning.model.projection import load_or_compute_projection
from cleaning.review.analysis import load_or_find_issues
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy

#: page url path → text that shows the page has rendered
PAGES = {"issues": "Issues", "grid": "Grid review", "deleted": "Deleted", "train": "Train",
         "embedding": "Embedding", "overview": "Overview"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    ap.add_argument("--pages", nargs="+", default=["grid", "deleted"], choices=sorted(PAGES))
    ap.add_argument("--wait", type=float, default=12.0, help="seconds to let a page settle")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="shots-"))
    root = prepare_demo(tmp / "demo")
    ws = Workspace.open(root)
    load_or_compute_oos(ws)
    load_or_compute_projection(ws, "umap")
    issues = load_or_find_issues(ws)
    off = issues[issues["issue"] == "outlier"]["item_id"].head(2).tolist()
    if off:  # something to show on the Deleted page
        ws.store.record(off, "delete", note="off-topic")
    ws.store.close()
    proc, base = start_server(root, default_state_dir(root), tmp / "server.log")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        wait_healthy(base, proc)  # the server takes seconds to listen: going to a page before that is refused
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            for name in args.pages:
                page.goto(f"{base}/{name}")
                page.get_by_text(PAGES[name]).first.wait_for(timeout=120_000)
                time.sleep(args.wait)
                path = args.out / f"{name}.png"
                page.screenshot(path=str(path), full_page=False)
                print(f"saved {path}")
            browser.close()
    finally:
        stop_server(proc)


if __name__ == "__main__":
    main()
