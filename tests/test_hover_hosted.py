"""Hover thumbnails of large maps come from static files only in local mode: in hosted mode a visitor's
images must not be readable by anyone holding a URL, nor outlive the visitor's private workspace."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image


@pytest.mark.parametrize("mode", ["local", "hosted"])
def test_large_map_thumbnails_are_static_urls_only_locally(mode: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import pages._hover as hover

    monkeypatch.setenv("CLEANING_MODE", mode)
    monkeypatch.setattr(hover, "INLINE_UP_TO", 0)  # every map counts as large
    monkeypatch.setattr(hover, "static_serving", lambda: True)
    started: list[int] = []
    monkeypatch.setattr(hover, "_start_writer", lambda key, jobs: started.append(len(jobs)))
    files = []
    for i in range(3):
        f = tmp_path / f"{i}.png"
        Image.new("RGB", (20, 20), (40 * i, 0, 0)).save(f)
        files.append(f)
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "abs_path": [str(f) for f in files],
                          "sha256": [f"{i}" * 64 for i in range(3)]})
    pts = pd.DataFrame({"item_id": ["a", "b", "c"], "path": ["x/0.png", "x/1.png", "x/2.png"],
                        "label": ["x"] * 3, "pred": ["x"] * 3, "confidence": [0.9] * 3})
    hover.hover_items.clear()
    out = hover.hover_items(str(tmp_path), mode, "t", "umap", pts, items)
    srcs = [v[3] for v in out.values()]
    if mode == "local":
        assert all(s.startswith(hover.URL_PREFIX) for s in srcs) and started == [3]
    else:
        assert srcs == ["", "", ""] and started == []  # text-only preview, nothing written
    assert [v[0] for v in out.values()] == ["x/0.png", "x/1.png", "x/2.png"]
