"""A large Embedding map: a density raster of every point, a bounded clickable sample (every flagged image
in it), and box/lasso selections resolved against all points (``cleaning.review.mapdensity``).

The page's threshold and budget are lowered through ``CLEANING_MAP_DENSITY_ABOVE`` / ``CLEANING_MAP_MARKERS``
so the real demo (130 photos, scanned, with its UMAP map) takes the large-map path through AppTest.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest

from cleaning.data.workspace import Workspace
from cleaning.review.figures import embedding_figure
from cleaning.review.mapdensity import FLAGGED_SHARE, marker_rows, water_fill
from cleaning.review.selection import rows_in_area


def _cloud(n: int, seed: int = 0, flagged: int = 0) -> pd.DataFrame:
    """A dense core, a sparse ring and a few lone points; ``flagged`` of the core images carry an issue."""
    rng = np.random.default_rng(seed)
    core = rng.normal(0, 0.3, size=(n - 60, 2))
    ring = np.c_[np.cos(np.linspace(0, 6.2, 50)), np.sin(np.linspace(0, 6.2, 50))] * 5
    lone = rng.uniform(8, 12, size=(10, 2))
    xy = np.r_[core, ring, lone]
    issue = np.array(["no issue"] * n, dtype=object)
    issue[rng.choice(n - 60, size=flagged, replace=False)] = "label"
    return pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "x": xy[:, 0], "y": xy[:, 1],
                         "label": rng.choice(["a", "b", "c"], size=n), "deleted": False, "pred": "a",
                         "issue": issue, "path": [f"p{k}" for k in range(n)], "confidence": 0.5})


def test_the_sample_keeps_every_flagged_image_and_every_sparse_point_and_is_exactly_the_budget() -> None:
    pts = _cloud(5000, flagged=300)
    rows = marker_rows(pts, 1000)
    assert len(rows) == 1000 and len(set(rows.tolist())) == 1000 and (np.diff(rows) > 0).all()
    flagged = np.flatnonzero(pts["issue"] != "no issue")
    assert set(flagged) <= set(rows.tolist())
    assert set(range(5000 - 60, 5000)) <= set(rows.tolist())  # the ring and the lone points: sparse, all kept
    assert (marker_rows(pts, 1000) == rows).all()  # deterministic: the same markers on every rerun
    assert (marker_rows(pts, 6000) == np.arange(5000)).all()


def test_too_many_flagged_images_are_thinned_and_leave_room_for_the_rest() -> None:
    pts = _cloud(5000, flagged=4000)
    rows = marker_rows(pts, 1000)
    flagged = (pts["issue"] != "no issue").to_numpy()
    assert len(rows) == 1000 and flagged[rows].sum() == int(FLAGGED_SHARE * 1000)
    assert (~flagged[rows]).sum() == 250


def test_water_fill_caps_every_stratum_alike() -> None:
    strata = np.repeat([0, 1, 2, 3], [5, 100, 300, 1000])
    keep = water_fill(strata, 200, np.random.default_rng(0))
    counts = np.bincount(strata[keep], minlength=4)
    assert len(keep) == 200 and counts[0] == 5 and counts[1:].max() - counts[1:].min() <= 1


def test_box_and_lasso_select_every_point_inside_drawn_or_not() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 10, 20000), rng.uniform(0, 10, 20000)
    box = {"selection": {"points": [], "box": [{"xref": "x", "yref": "y", "x": [6, 2], "y": [1, 4]}], "lasso": []}}
    assert set(rows_in_area(box, x, y)) == set(np.flatnonzero((x >= 2) & (x <= 6) & (y >= 1) & (y <= 4)))
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    lasso = {"box": [], "lasso": [{"x": (5 + 3 * np.cos(t)).tolist(), "y": (5 + 3 * np.sin(t)).tolist()}]}
    inside = set(rows_in_area(lasso, x, y))
    r = np.hypot(x - 5, y - 5)
    assert set(np.flatnonzero(r < 2.99)) <= inside <= set(np.flatnonzero(r < 3.0))
    both = {**box["selection"], "lasso": lasso["lasso"]}
    assert set(rows_in_area(both, x, y)) == set(rows_in_area(box, x, y)) | inside
    assert rows_in_area({"selection": {"points": [{"customdata": 1}], "box": [], "lasso": []}}, x, y) is None


def test_the_figure_draws_only_the_sample_over_a_raster_of_all_points() -> None:
    from PIL import Image

    pts = _cloud(5000, flagged=100)
    rows = marker_rows(pts, 800)
    fig = embedding_figure(pts, "label", markers=rows)
    drawn = sorted(int(c) for t in fig.data for c in t.customdata)
    assert drawn == rows.tolist()
    assert sum(int(t.name.rsplit("(", 1)[1].rstrip(")")) for t in fig.data) == 5000  # the legend counts all
    (img,) = fig.layout.images
    png = Image.open(io.BytesIO(base64.b64decode(img.source.split(",", 1)[1])))
    alpha = np.asarray(png)[:, :, 3]
    assert png.size == (256, 256) and 0 < (alpha > 0).mean() < 0.5  # the cloud is shaded, empty space is not
    assert fig.layout.xaxis.range[0] <= pts["x"].min() and fig.layout.xaxis.range[1] >= pts["x"].max()
    assert not embedding_figure(pts, "label").layout.images  # without a sample: markers only, as before


# ---- the page, through AppTest --------------------------------------------------------------------------
@pytest.fixture
def dense(mapped_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> tuple[Workspace, pd.DataFrame, int]:
    """The scanned demo whose map takes the large-map path: (workspace, map points, marker budget)."""
    from cleaning.model.projection import load_or_compute_projection
    from cleaning.review.analysis import load_or_find_issues
    from cleaning.review.selection import embedding_points

    ws = mapped_ws
    proj = load_or_compute_projection(ws, "umap")
    pts = embedding_points(ws.items_frame(), proj.item_ids, proj.xy, None, load_or_find_issues(ws), live_only=True)
    n_flagged = int((pts["issue"] != "no issue").sum())
    budget = min(len(pts) - 20, int(np.ceil(n_flagged / FLAGGED_SHARE)) + 10)
    assert n_flagged < budget < len(pts) - 10, (n_flagged, budget, len(pts))
    monkeypatch.setenv("CLEANING_MAP_DENSITY_ABOVE", "50")
    monkeypatch.setenv("CLEANING_MAP_MARKERS", str(budget))
    return ws, pts, budget


def _chart(at) -> dict:  # noqa: ANN001
    (el,) = [e for e in at.get("plotly_chart")]
    return json.loads(el.proto.spec)


def _key(ws: Workspace, gen: int = 0) -> str:
    from pages._writes import data_version
    from pages.embedding import chart_key

    return chart_key(data_version(ws), "umap", gen)


def test_the_page_draws_every_flagged_image_as_a_marker_and_says_how_many(dense) -> None:  # noqa: ANN001
    from tests.apptest import open_page

    ws, pts, budget = dense
    at = open_page("pages/embedding.py")
    spec = _chart(at)
    drawn = {int(c) for t in spec["data"] for c in _customdata(t)}
    assert len(drawn) == budget and spec["layout"]["images"][0]["source"].startswith("data:image/png")
    assert set(np.flatnonzero(pts["issue"] != "no issue")) <= drawn
    assert any(f"{budget} of {len(pts)} images are drawn as clickable markers (every flagged image" in c.value
               for c in at.caption)


def _customdata(trace: dict) -> list[int]:
    cd = trace.get("customdata")
    if isinstance(cd, dict):  # plotly's base64 typed array
        return np.frombuffer(base64.b64decode(cd["bdata"]), dtype=np.dtype(cd["dtype"])).tolist()
    return list(cd or [])


def test_a_box_selects_the_undrawn_points_inside_and_a_click_on_a_marker_opens_the_dialog(dense) -> None:  # noqa: ANN001
    from tests.apptest import open_page

    ws, pts, budget = dense
    at = open_page("pages/embedding.py")
    drawn = {int(c) for t in _chart(at)["data"] for c in _customdata(t)}
    x, y = pts["x"].to_numpy(), pts["y"].to_numpy()
    x0, x1 = np.quantile(x, [0.2, 0.8])
    y0, y1 = np.quantile(y, [0.2, 0.8])
    inside = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    shown = [r for r in inside if r in drawn]
    assert len(shown) < len(inside), "the box must hold undrawn points for this test to mean anything"
    at.session_state[_key(ws)] = {"selection": {
        "points": [{"curve_number": 0, "point_index": k, "customdata": int(r)} for k, r in enumerate(shown)],
        "point_indices": list(range(len(shown))), "lasso": [],
        "box": [{"xref": "x", "yref": "y", "x": [float(x0), float(x1)], "y": [float(y0), float(y1)]}]}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Selection: {len(inside)} image(s)" in [h.value for h in at.subheader]
    assert any(b.label == f"Delete {len(inside)}" for b in at.button)  # the bulk action covers all of them
    iid = str(pts["item_id"].iloc[min(drawn)])
    at.session_state[_key(ws)] = {"selection": {"points": [{"curve_number": 0, "point_index": 0,
                                                            "customdata": min(drawn)}],
                                                "point_indices": [0], "box": [], "lasso": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"dlg_{iid}_relabel" in {b.key for b in at.button if b.key}
