"""Real clicks in headless Chromium on the running app: a scatter point opens the review dialog, a relabel
shows in the History and is undone, Esc closes the dialog for good, a confusion-matrix cell shows its
images, a lasso selects a group that is deleted in one confirmed batch, and a deep link on a fresh server
renders the full app.

Points are clicked at the pixel position Plotly itself computes (``_fullLayout`` axes ``l2p``).
"""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from .conftest import App, wait_idle

# the plot that carries item ids (the map) or cells (the confusion matrix), and pixel positions of its points
POINTS_JS = """() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
      g => g._fullData && g._fullData.some(t => t.customdata && t.customdata.length));
  if (!gd) return null;
  const fl = gd._fullLayout, r = gd.getBoundingClientRect(), out = [];
  for (const fd of gd._fullData) {
    if (!fd.customdata || !fd.visible || fd.visible === 'legendonly') continue;
    for (let i = 0; i < fd.customdata.length; i++) {
      const cd = fd.customdata[i];
      out.push({id: Array.isArray(cd) ? cd.join('|') : String(cd),
                x: r.left + fl.xaxis._offset + fl.xaxis.l2p(fl.xaxis.d2c(fd.x[i])),
                y: r.top + fl.yaxis._offset + fl.yaxis.l2p(fl.yaxis.d2c(fd.y[i]))});
    }
  }
  return out;
}"""


def points(page: Page, app: App | None = None) -> list[dict]:
    """Every clickable point of the page's chart with its ``customdata`` (a confusion cell) and pixel
    position. With ``app`` (the Embedding map, whose ``customdata`` is a point's row in the map's points):
    ``row`` and ``id``, the item id of that row."""
    page.wait_for_function(f"() => ({POINTS_JS})() !== null", timeout=120_000)
    pts = page.evaluate(POINTS_JS)
    if app is not None:
        ids = map_ids(app)
        assert len(pts) == len(ids), (len(pts), len(ids))
        pts = [{**p, "row": p["id"], "id": ids[int(p["id"])]} for p in pts]
    return pts


def map_ids(app: App) -> list[str]:
    """The item id of each row of the Embedding map's points (live images in the projection's order)."""
    from cleaning.model.projection import load_or_compute_projection
    from cleaning.review.selection import embedding_points

    ws = app.workspace()
    proj = load_or_compute_projection(ws, "umap")
    return list(embedding_points(ws.items_frame(), proj.item_ids, proj.xy, live_only=True)["item_id"])


def open_page(page: Page, app: App, path: str, heading: str) -> None:
    page.goto(f"{app.base}/{path}")
    expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=120_000)
    wait_idle(page)


def isolated(pts: list[dict], want: list[str], min_px: float = 12) -> dict:
    """The first wanted point with no neighbour closer than ``min_px`` (so the click is unambiguous)."""
    for p in pts:
        if p["id"] in want and all(q is p or abs(q["x"] - p["x"]) + abs(q["y"] - p["y"]) > min_px for q in pts):
            return p
    raise AssertionError("no isolated point among the candidates")


def hover_target(app: App, page: Page) -> tuple[object, dict[str, str], dict]:
    """Open the Embedding map and pick a point with room around it, once the hover preview is hooked to the
    chart: (the items frame, {item_id: path}, the point {id, row, x, y})."""
    frame = app.workspace().items_frame()
    paths = dict(zip(frame["item_id"], frame["path"]))
    page.goto(f"{app.base}/embedding")
    expect(page.get_by_role("heading", name="Embedding").first).to_be_visible(timeout=120_000)
    wait_idle(page)
    target = isolated(points(page, app), list(paths))
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g.__hoverPreview)",
                           timeout=30_000)
    return frame, paths, target


def choose_label(page: Page, scope, label: str) -> None:  # noqa: ANN001 — a dialog or page locator
    box = scope.locator("[data-testid=stSelectbox]").filter(has_text="New label").first
    box.click()
    page.keyboard.type(label)
    page.keyboard.press("Enter")
    expect(box.get_by_role("combobox")).to_have_value(label)


def dialog(page: Page):  # noqa: ANN201
    return page.locator("[data-testid=stDialog]")


def test_deep_link_on_a_fresh_server_renders_the_full_app(app: App, page: Page) -> None:
    page.goto(f"{app.base}/history")  # the first page request this server sees
    expect(page.get_by_role("heading", name="History").first).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Data set:").first).to_be_visible()  # the shared frame
    expect(page.get_by_role("link", name="Embedding")).to_be_visible()  # and the navigation


def test_click_a_point_relabel_see_history_and_undo(app: App, page: Page) -> None:
    ws = app.workspace()
    wrong = {"bird/bird_0004.jpg": "flower", "bird/bird_0030.jpg": "mammal", "flower/flower_0012.jpg": "fruit",
             "fruit/fruit_0004.jpg": "flower", "mammal/mammal_0013.jpg": "fruit"}
    ids = {ws.item_id_for_path(p): p for p in wrong}
    open_page(page, app, "embedding", "Embedding")
    target = isolated(points(page, app), list(ids))
    path = ids[target["id"]]
    page.mouse.click(target["x"], target["y"])
    dlg = dialog(page)
    expect(dlg).to_be_visible()
    expect(dlg).to_contain_text(path)
    choose_label(page, dlg, wrong[path])
    dlg.get_by_role("button", name="Relabel", exact=True).click()
    expect(dlg).to_be_hidden()
    assert ws.store.current()[target["id"]].label == wrong[path]

    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History").first).to_be_visible()
    wait_idle(page)
    grid = page.locator("[data-testid=stDataFrame]").first
    expect(grid).to_be_visible()
    cells = grid.locator("[role=gridcell]")  # the grid's accessible cells (it draws on a canvas)
    expect(cells.filter(has_text=path).first).to_be_attached()
    expect(cells.filter(has_text="relabel").first).to_be_attached()
    page.get_by_role("button", name="Undo last").click()
    expect(page.get_by_text(re.compile(r"Undid 1 decision\(s\): " + re.escape(path)))).to_be_visible()
    assert ws.store.current()[target["id"]].label == path.split("/")[0]
    assert [(d.item_id, d.action, d.label, d.state) for d in ws.store.history()][-1] == \
        (target["id"], "relabel", wrong[path], "undone")


def test_esc_closes_the_dialog_for_good_and_a_typed_label_works(app: App, page: Page) -> None:
    ws = app.workspace()
    open_page(page, app, "embedding", "Embedding")
    birds = [i for i, p in zip(ws.items_frame()["item_id"], ws.items_frame()["path"]) if p.startswith("bird/")]
    target = isolated(points(page, app), birds)
    page.mouse.click(target["x"], target["y"])
    expect(dialog(page)).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog(page)).to_be_hidden()
    wait_idle(page)
    time.sleep(1.5)
    expect(dialog(page)).to_be_hidden()  # the old selection did not reopen it
    target = next(p for p in points(page, app) if p["id"] == target["id"])
    page.mouse.click(target["x"], target["y"])  # the same point again: opens again (not a deselect)
    expect(dialog(page)).to_be_visible()
    choose_label(page, dialog(page), "seabird")  # a label that does not exist yet
    dialog(page).get_by_role("button", name="Relabel", exact=True).click()
    expect(dialog(page)).to_be_hidden()
    assert ws.store.current()[target["id"]].label == "seabird"
    page.locator("[data-testid=stSidebar]").get_by_role("button", name="Undo").click()
    wait_idle(page)
    assert ws.store.current()[target["id"]].label == "bird"


def test_click_a_confusion_cell_shows_its_images(app: App, page: Page) -> None:
    from cleaning.model.oos import load_or_compute_oos
    from cleaning.review.selection import Predictions, confusion_from_items

    ws = app.workspace()
    oos = load_or_compute_oos(ws)
    conf = confusion_from_items(ws.items_frame(), Predictions(oos.item_ids, oos.vocab, oos.pred_probs))
    given, pred, n = conf.most_confused()[0]
    open_page(page, app, "confusion", "Confusion matrix")
    cell = next(p for p in points(page) if p["id"].startswith(f"{given}|{pred}|"))
    page.mouse.click(cell["x"], cell["y"])
    expect(page.get_by_role("heading", name=f"Labelled {given}, predicted {pred}")).to_be_visible()
    wait_idle(page)
    expect(page.locator("[data-testid=stMain] [data-testid=stImage]")).to_have_count(min(n, 12))
    expect(page.get_by_text(f"{n} image(s) · an image leaves this cell")).to_be_visible()


def test_lasso_a_group_and_delete_it_in_one_confirmed_batch(app: App, page: Page) -> None:
    ws = app.workspace()
    open_page(page, app, "embedding", "Embedding")
    page.get_by_text("lasso", exact=True).click()
    wait_idle(page)
    pts = points(page, app)
    def near(p: dict) -> int:
        return sum((q["x"] - p["x"]) ** 2 + (q["y"] - p["y"]) ** 2 < 40 ** 2 for q in pts)

    centre = sorted(pts, key=near)[len(pts) * 3 // 4]  # a point in a busy (not the busiest) spot
    # a radius with no point within 3 px of the ring: the mouse moves to whole pixels, so a point on the edge
    # could fall either side of the drawn lasso
    def clearance(r: int) -> float:
        return min(abs(((p["x"] - centre["x"]) ** 2 + (p["y"] - centre["y"]) ** 2) ** 0.5 - r) for p in pts)

    radius = next((r for r in range(45, 71) if clearance(r) >= 3), max(range(45, 71), key=clearance))
    ring = [(centre["x"] + radius * _cos(k), centre["y"] + radius * _sin(k)) for k in range(25)]
    inside = [p["id"] for p in pts if _in_polygon(p["x"], p["y"], ring)]
    assert 2 <= len(inside) < len(pts)
    draw_lasso(page, ring)
    expect(page.get_by_role("heading", name=f"Selection: {len(inside)} image(s)")).to_be_visible()
    page.get_by_role("button", name=f"Delete {len(inside)}", exact=True).click()
    expect(page.get_by_text(f"Delete {len(inside)} image(s)? This is one decision")).to_be_visible()
    assert not any(s.deleted for s in ws.store.current().values())  # nothing before the confirmation
    page.get_by_role("button", name=f"Yes, delete {len(inside)} image(s)").click()
    expect(page.get_by_role("heading", name=re.compile("Selection:"))).to_be_hidden()
    state = ws.store.current()
    assert {i for i, s in state.items() if s.deleted} == set(inside)
    last = [d for d in ws.store.history() if d.state == "active"]
    assert {d.batch for d in last} == {last[-1].batch} and {d.source for d in last} == {"bulk"}
    ws.store.undo()


def draw_lasso(page: Page, ring: list[tuple[float, float]]) -> None:
    """Drag the mouse round ``ring`` (page pixels) with the chart in lasso mode: a real lasso selection."""
    page.mouse.move(*ring[0])
    page.mouse.down()
    for x, y in ring[1:]:
        page.mouse.move(x, y, steps=3)
    page.mouse.up()


def _cos(k: int) -> float:
    import math

    return math.cos(2 * math.pi * k / 24)


def _sin(k: int) -> float:
    import math

    return math.sin(2 * math.pi * k / 24)


def _in_polygon(x: float, y: float, poly: list[tuple[float, float]]) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in zip(poly, poly[1:] + poly[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside
