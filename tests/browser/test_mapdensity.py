"""The large-map path of the Embedding page in a real browser, on the demo with the threshold lowered
(``CLEANING_MAP_DENSITY_ABOVE=50``, ``CLEANING_MAP_MARKERS=60`` of its 129 images): the density raster
is drawn under a sample of markers holding every flagged image, a click on a marker opens the review
dialog, and a lasso selects every image inside it — the undrawn ones too — for the bulk actions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from .conftest import App, serve_demo, wait_idle
from .test_clicks import _cos, _in_polygon, _sin, dialog, draw_lasso, isolated, open_page, points

MARKERS = 60


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[App]:
    yield from serve_demo(tmp_path_factory, {"CLEANING_MAP_DENSITY_ABOVE": "50", "CLEANING_MAP_MARKERS": str(MARKERS)})


def map_points(app: App):  # noqa: ANN201 — the map's points frame (rows = the figure's customdata)
    from cleaning.model.projection import load_or_compute_projection
    from cleaning.review.analysis import load_or_find_issues
    from cleaning.review.selection import embedding_points

    ws = app.workspace()
    proj = load_or_compute_projection(ws, "umap")
    return embedding_points(ws.items_frame(), proj.item_ids, proj.xy, None, load_or_find_issues(ws), live_only=True)


#: Pixel positions of data points (x, y arrays) on the page's map, by Plotly's own axes.
PIXELS_JS = """([xs, ys]) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g._fullLayout && g._fullLayout.images);
  const fl = gd._fullLayout, r = gd.getBoundingClientRect();
  return xs.map((x, i) => [r.left + fl.xaxis._offset + fl.xaxis.l2p(fl.xaxis.d2c(x)),
                           r.top + fl.yaxis._offset + fl.yaxis.l2p(fl.yaxis.d2c(ys[i]))]);
}"""


def test_a_sample_with_every_flagged_image_is_clickable_over_the_raster(app: App, page: Page) -> None:
    pts = map_points(app)
    open_page(page, app, "embedding", "Embedding")
    expect(page.get_by_text(f"{MARKERS} of {len(pts)} images are drawn as clickable markers")).to_be_visible()
    drawn = points(page)  # every marker, id = its row in the map's points
    rows = {int(p["id"]) for p in drawn}
    assert len(rows) == MARKERS < len(pts)
    flagged = {r for r, issue in enumerate(pts["issue"]) if issue != "no issue"}
    assert flagged and flagged <= rows
    assert page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot image')]"
                         ".some(i => (i.getAttribute('href') || '').startsWith('data:image/png'))")
    target = isolated(drawn, [str(r) for r in sorted(flagged)])
    page.mouse.click(target["x"], target["y"])
    expect(dialog(page)).to_be_visible()
    expect(dialog(page)).to_contain_text(str(pts["path"].iloc[int(target["id"])]))


def test_a_lasso_selects_every_image_inside_drawn_or_not(app: App, page: Page) -> None:
    pts = map_points(app)
    open_page(page, app, "embedding", "Embedding")
    page.get_by_text("lasso", exact=True).click()
    wait_idle(page)
    drawn = {int(p["id"]) for p in points(page)}
    px = page.evaluate(PIXELS_JS, [pts["x"].tolist(), pts["y"].tolist()])
    def crowd(i: int) -> int:
        return sum((x - px[i][0]) ** 2 + (y - px[i][1]) ** 2 < 60 ** 2 for x, y in px)

    centre = px[max(range(len(px)), key=crowd)]  # the busiest spot: it holds undrawn images
    ring = [(centre[0] + 60 * _cos(k), centre[1] + 60 * _sin(k)) for k in range(25)]
    inside = {i for i, (x, y) in enumerate(px) if _in_polygon(x, y, ring)}
    assert len(inside - drawn) >= 2 and len(inside) < len(pts)
    draw_lasso(page, ring)
    expect(page.get_by_role("heading", name=f"Selection: {len(inside)} image(s)")).to_be_visible()
    expect(page.get_by_role("button", name=f"Delete {len(inside)}", exact=True)).to_be_visible()
