"""Hover preview on a map too large to carry its thumbnails in the page: each one is fetched on hover from
Streamlit's static file serving (``static/thumbs/``, written in the background), with no script run.

The server is told to treat every map as large (``CLEANING_HOVER_INLINE_UP_TO=0``), so the demo's 129 images
take the path a 20,000-image map takes (``bench/bench_clicks.py`` measures that one).
"""

from __future__ import annotations

import io
import time
import urllib.request
from collections.abc import Iterator

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from .conftest import IDLE_JS, App, serve_demo
from .test_clicks import hover_target


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[App]:
    yield from serve_demo(tmp_path_factory, {"CLEANING_HOVER_INLINE_UP_TO": "0"})


def test_hover_on_a_large_map_fetches_the_thumbnail_by_url_without_a_rerun(app: App, page: Page) -> None:
    frame, paths, target = hover_target(app, page)
    from pages._hover import STATIC_THUMBS, thumb_name

    sha = dict(zip(frame["item_id"], frame["sha256"]))[target["id"]]
    file = STATIC_THUMBS / thumb_name(sha)
    for _ in range(600):  # written in the background once the large map is first shown
        if file.exists():
            break
        time.sleep(0.1)
    assert file.exists(), file
    box = page.locator(".cleaning-hover-preview")
    page.mouse.move(target["x"] - 30, target["y"] - 30)
    page.mouse.move(target["x"], target["y"], steps=4)
    expect(box).to_be_visible(timeout=5_000)
    expect(box).to_have_attribute("data-item", target["row"])  # the row the preview shows
    expect(box).to_have_attribute("data-loaded", target["row"], timeout=5_000)  # the fetched image has loaded
    expect(box).to_contain_text(paths[target["id"]])
    src = box.locator("img").get_attribute("src") or ""
    assert src.startswith("app/static/thumbs/") and src.endswith(".jpg"), src  # a URL, not the image itself
    assert page.evaluate(IDLE_JS)  # hovering started no script run
    with urllib.request.urlopen(f"{app.base}/{src}", timeout=10) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("image/jpeg")
        im = Image.open(io.BytesIO(r.read()))
    assert max(im.size) <= 72 and im.format == "JPEG"
    assert page.evaluate("window.__hoverLatency.length") >= 1
    page.mouse.move(5, 5)
    expect(box).to_be_hidden()
