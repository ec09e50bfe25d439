"""The Embedding page's hover preview through AppTest: what its component is sent with each script run.

The preview's data must not travel with every rerun (a click reruns the page; at 20,000 points the old
per-point arguments were ≈2.4 MB, serialised and hashed on every click). Large maps (above
``INLINE_UP_TO``; forced here with ``INLINE_UP_TO = 0`` so the demo's 129 images take the 20,000-image path)
send a version and a URL only; small maps send their inline thumbnails once per session, then only the
version.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cleaning.data.workspace import Workspace
from tests.apptest import open_page
from tests.test_pages_review import chart, click


@pytest.fixture
def ws(mapped_ws: Workspace) -> Workspace:  # the session's scanned demo with its map, a private copy
    return mapped_ws


def preview_args(at: AppTest) -> str:
    """The JSON the hover preview component was sent in the last run."""
    found = [e.proto for e in at.get("bidi_component") if e.proto.component_name.endswith("cleaning_hover_preview")]
    assert len(found) == 1, [e.proto.component_name for e in at.get("bidi_component")]
    p = found[0]
    return p.json or p.mixed.json


@pytest.mark.parametrize("large", [True, False], ids=["large map", "small map"])
def test_a_click_rerun_does_not_resend_the_hover_data(large: bool, ws: Workspace, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import pages._hover as hover

    if large:
        monkeypatch.setattr(hover, "INLINE_UP_TO", 0)
        monkeypatch.setattr(hover, "static_serving", lambda: True)
        monkeypatch.setattr(hover, "MAPS", tmp_path / "maps")
        monkeypatch.setattr(hover, "_start_writer", lambda key, jobs: None)  # no thumbnails written here
    hover.hover_items.clear()
    paths = set(ws.items_frame()["path"])
    at = open_page("pages/embedding.py")
    first = json.loads(preview_args(at))
    iid = ws.item_id_for_path("bird/bird_0004.jpg")
    at.session_state[chart(ws, 0)] = click(ws, iid)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(k.startswith(f"dlg_{iid}_") for k in (b.key or "" for b in at.button))  # the dialog is open
    after_click = preview_args(at)
    at.run()
    assert preview_args(at) == after_click  # and unchanged on later reruns
    assert len(after_click) < 200, after_click  # a version (and for a large map a URL), never per-point data
    if large:
        assert json.loads(after_click) == first  # the same small arguments from the first run on
        doc = json.loads((tmp_path / "maps" / first["map"].rsplit("/", 1)[1]).read_text())
        rows = doc["rows"]["path"]  # per-point data: a static file, fetched once, by the map's rows
        assert len(doc["thumbs"]) == len(rows) > 100 and set(rows) <= paths
    else:
        assert len(first["thumbs"]) == len(first["rows"]["path"]) > 100  # the session's first run had them
        assert set(first["rows"]["path"]) <= paths
        assert json.loads(after_click) == {"version": first["version"], "inline": True}


def test_the_map_is_sent_without_text_per_point_and_drawn_at_one_pixel_per_css_pixel(ws: Workspace) -> None:
    """What the browser gets for the chart: per point only x, y and the row (typed arrays; the preview has the
    text), and ``plotGlPixelRatio`` 1 (plotly's default 2 makes every WebGL redraw, a click's included,
    draw, multisample and read back 4× the pixels)."""
    at = open_page("pages/embedding.py")
    charts = [e.proto for e in at.get("plotly_chart")]
    assert len(charts) == 1
    spec, config = json.loads(charts[0].spec), json.loads(charts[0].config)
    assert config["plotGlPixelRatio"] == 1
    paths = list(ws.items_frame()["path"])
    for trace in spec["data"]:
        assert {trace[k]["dtype"] for k in ("x", "y", "customdata")} <= {"f4", "u1", "u2", "u4"}
        assert trace["hoverinfo"] == "none" and not {"text", "hovertext", "hovertemplate"} & set(trace)
    assert not any(p in charts[0].spec for p in paths)

