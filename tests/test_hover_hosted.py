"""Hover thumbnails of large maps come from static files only in local mode: in hosted mode a visitor's
images must not be readable by anyone holding a URL, nor outlive the visitor's private workspace. And what
the preview sends with a script run stays small: each point's text and thumbnail name are one static JSON
file per map, and inline data (small maps; text of large maps in hosted mode) goes to a browser session once
per map version, not with every rerun. Lists follow the map's rows (a point's ``customdata``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image


def three_images(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    files = []
    for i in range(3):
        f = tmp_path / f"{i}.png"
        Image.new("RGB", (20, 20), (40 * i, 0, 0)).save(f)
        files.append(f)
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "abs_path": [str(f) for f in files],
                          "sha256": [f"{i}" * 64 for i in range(3)]})
    pts = pd.DataFrame({"item_id": ["a", "b", "c"], "path": ["x/0.png", "x/1.png", "x/2.png"],
                        "label": ["x"] * 3, "pred": ["x"] * 3, "confidence": [0.9] * 3})
    return items, pts


@pytest.mark.parametrize("mode", ["local", "hosted"])
def test_large_map_thumbnails_are_static_urls_only_locally(mode: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import pages._hover as hover

    monkeypatch.setenv("CLEANING_MODE", mode)
    monkeypatch.setattr(hover, "INLINE_UP_TO", 0)  # every map counts as large
    monkeypatch.setattr(hover, "static_serving", lambda: True)
    monkeypatch.setattr(hover, "MAPS", tmp_path / "maps")
    started: list[int] = []
    monkeypatch.setattr(hover, "_start_writer", lambda key, jobs: started.append(len(jobs)))
    items, pts = three_images(tmp_path)
    hover.hover_items.clear()
    out = hover.hover_items(str(tmp_path), mode, "t", "umap", pts, items)
    assert "thumbs" not in out  # never the images themselves above INLINE_UP_TO
    text = {"names": ["x"], "path": ["x/0.png", "x/1.png", "x/2.png"], "label": [0] * 3, "pred": [0] * 3,
            "issue": [], "conf": [90] * 3}
    if mode == "local":
        assert out["map"].startswith(hover.URL_PREFIX + "maps/") and out["prefix"] == hover.URL_PREFIX
        doc = json.loads((tmp_path / "maps" / out["map"].rsplit("/", 1)[1]).read_text())
        assert doc["thumbs"] == [hover.thumb_name(f"{n}" * 64) for n in range(3)] and started == [3]
        assert doc["rows"] == text and set(out) == {"version", "map", "prefix"}
    else:
        assert out == {"version": out["version"], "rows": text} and started == []  # text only, nothing written
        assert not (tmp_path / "maps").exists()
        monkeypatch.setattr(hover.st, "session_state", {})  # the text goes to a session once, like inline data
        assert hover.preview_args(out) is out and hover.preview_args(out) == {"version": out["version"], "inline": True}


def test_inline_thumbnails_go_to_a_session_once_per_map_version(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import pages._hover as hover

    monkeypatch.setattr(hover, "INLINE_UP_TO", 10)
    items, pts = three_images(tmp_path)
    hover.hover_items.clear()
    data = hover.hover_items(str(tmp_path), "v1", "t", "umap", pts, items)
    assert len(data["thumbs"]) == 3 and data["rows"]["path"] == ["x/0.png", "x/1.png", "x/2.png"]
    assert all(s.startswith("data:image/jpeg;base64,") for s in data["thumbs"])
    state: dict = {}
    monkeypatch.setattr(hover.st, "session_state", state)
    assert hover.preview_args(data) is data  # the first run of a session sends them
    again = hover.preview_args(data)
    assert again == {"version": data["version"], "inline": True}  # later runs only name the version
    hover._resend()  # the browser asked again (it lacks them)
    assert hover.preview_args(data) is data
    other = hover.hover_items(str(tmp_path), "v2", "t", "umap", pts, items)  # a new map version
    assert other["version"] != data["version"] and hover.preview_args(other) is other
