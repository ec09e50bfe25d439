"""Embedding: a 2-D map of the images (UMAP or t-SNE of the embeddings). Click a point to review that
image in a dialog; draw a box or a lasso to relabel or delete a group at once. A map of more than
:data:`DENSITY_ABOVE` images draws all of them as a density raster and a bounded sample as markers
(:mod:`cleaning.review.mapdensity`); a box or lasso there selects every image in the region (resolved here
from its geometry), drawn or not."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cleaning.review.figures import COLOUR_COLUMNS, embedding_figure
from cleaning.review.mapdensity import marker_rows, marker_summary
from cleaning.review.selection import area_event, drop_stale, embedding_points, nearest_on_map, read_selection
from pages._common import get_workspace, open_workspace, run_page, show_error
from pages._hover import hover_items, hover_preview
from pages._review import (
    ISSUES_EAGER_UP_TO,
    bulk_bar,
    data_version,
    flash,
    issues,
    item_grid,
    items,
    model_error,
    model_gate,
    model_token,
    predictions,
    predictions_stale,
    review_dialog,
)

GEN = "emb_gen"  # counter in the chart key: bumped to clear the chart's selection
METHODS = {"umap": "UMAP", "tsne": "t-SNE"}
DRAG = {"zoom": "zoom", "select": "box select", "lasso": "lasso"}  # no "pan": a click there selects nothing
#: plotly's config. ``plotGlPixelRatio`` (plotly's default 2) sizes the WebGL canvases of a large map at that
#: many device pixels per CSS pixel whatever the screen: 2 draws, multisamples and (with software compositing)
#: reads back 4× the pixels of 1 on every redraw, the selection's redraw on a click included.
CONFIG = {"displaylogo": False, "scrollZoom": True, "plotGlPixelRatio": 1}
#: Above this many points the map draws all of them as a density raster and only :data:`MARKERS` as clickable
#: markers (:mod:`cleaning.review.mapdensity`). Measured with software WebGL (``bench/results/clicks.md``,
#: ``app_scale_mapdensity.md``): click → dialog 0.35 s with 20,000 markers, 0.75 s with 100,000; between
#: 20,000 and 40,000 every point stays a marker (≈0.35–0.45 s by that slope), above 40,000 at least half
#: of them would be thinned. Environment variables override both (tests use a small map).
DENSITY_ABOVE = int(os.environ.get("CLEANING_MAP_DENSITY_ABOVE", "40000"))
MARKERS = int(os.environ.get("CLEANING_MAP_MARKERS", "20000"))


@st.cache_resource(show_spinner=False, max_entries=8)
def projection(root: str, method: str, version: str):  # noqa: ANN201 — cleaning.model.projection.Projection
    """The map, loaded once per data-set version and shared by every session (no copy per rerun)."""
    from cleaning.model.projection import load_or_compute_projection

    return load_or_compute_projection(open_workspace(root), method)


@st.cache_resource(show_spinner=False, max_entries=12)
def points_and_figure(root: str, version: str, token: str, method: str, colour: str,
                      drag: str, density_above: int, max_markers: int) -> tuple[pd.DataFrame, go.Figure, np.ndarray, dict | None]:
    """The points, the figure, the points' item ids as a NumPy array and how many are drawn as markers
    (``{"markers", "flagged", "flagged_drawn"}``; None: all, no density layer: the map has at most
    ``density_above`` points), built once per (data-set version,
    model token, view) and shared: a click rerun then costs no rebuild and sends the very same chart again
    (and does not turn 100,000 string ids into an array again). Do not modify them."""
    ws = open_workspace(root)
    proj = projection(root, method, version)
    pts = embedding_points(items(ws), proj.item_ids, proj.xy, predictions(ws), issues(ws, compute=False),
                           live_only=True)
    markers = marker_rows(pts, max_markers) if len(pts) > density_above else None
    fig = embedding_figure(pts, colour, dragmode=drag, markers=markers)
    drawn = None if markers is None else marker_summary(pts, markers)
    return pts, fig, pts["item_id"].to_numpy(dtype=object), drawn


def chart_key(version: str, method: str, gen: int) -> str:
    """The chart's widget key. A point's ``customdata`` is its row in the map's points, so a selection means
    something only on the map it was made on: the key names that map (data-set version and method), and
    any other map starts with an empty selection. ``gen`` is bumped to clear the selection on the same map."""
    digest = hashlib.sha256(f"{version}\0{method}".encode()).hexdigest()[:10]
    return f"emb_chart_{gen}_{digest}"


def render() -> None:
    ws = get_workspace()
    flash()
    st.title("Embedding")
    st.caption("Each point is an image, placed by what the model sees in it: similar images sit together. "
               "**Click a point** to review that image; choose box select or lasso and draw around a group "
               "to relabel or delete it at once. Everything is undoable.")
    bar = st.container(horizontal=True, vertical_alignment="bottom", gap="medium")
    method = bar.segmented_control("Map", list(METHODS), format_func=METHODS.get, default="umap",
                                   key="emb_method") or "umap"
    colour = bar.segmented_control("Colour by", list(COLOUR_COLUMNS), format_func=COLOUR_COLUMNS.get,
                                   default="label", key="emb_colour") or "label"
    drag = bar.segmented_control("Drag to", list(DRAG), format_func=DRAG.get, default="zoom",
                                 key="emb_drag") or "zoom"
    if not model_gate(ws, "emb_compute"):
        return
    preds = predictions(ws)
    if preds is None:
        show_error(model_error(ws))  # type: ignore[arg-type]
        return
    if predictions_stale(ws) and bar.button("Refresh predictions", key="emb_refresh",
                                             help="Predictions are from before your latest decisions"):
        predictions(ws, refresh=True)
    small = len(items(ws)) <= ISSUES_EAGER_UP_TO  # else the scan runs only when asked for (colour by issue)
    table = issues(ws, compute=small or colour in ("issue", "group"))
    if table is None and colour in ("issue", "group"):
        st.caption("No issue table yet: the scan has not run (Issues page, or `python -m cleaning scan ROOT`).")
    with st.spinner(f"Computing the {METHODS[method]} map (once per data set)…"):
        pts, fig, ids, drawn = points_and_figure(str(ws.root), data_version(ws), model_token(ws), method, colour, drag,
                                                     DENSITY_ABOVE, MARKERS)
    if pts.empty:
        st.info("No images to show.")
        return
    frame = items(ws)

    key = chart_key(data_version(ws), method, st.session_state.setdefault(GEN, 0))
    ev = read_selection(st.session_state.get(key), ids=ids)
    if drawn is not None:  # a box or lasso selects every image in the region, drawn as a marker or not
        ev = area_event(ev, st.session_state.get(key), pts["x"].to_numpy(), pts["y"].to_numpy(), ids)
    # The dialog is open exactly while the chart holds a one-point selection of a live image: closing it
    # (a write, Esc, ×) bumps GEN, which gives the chart a new key and so an empty selection.
    one = drop_stale([ev.single], frame, keep_deleted=False) if ev.single else []
    if one:  # before the chart is sent, so the dialog shows as soon as possible
        review_dialog(ws, one[0], reset_key=GEN, order=nearest_on_map(pts, one[0], ids=ids), what="nearest on the map")

    st.plotly_chart(fig, key=key, on_select="rerun", selection_mode=("points", "box", "lasso"), config=CONFIG)
    # after the chart, so a first load sends the chart first (in hosted mode the preview's text data is inline)
    hover_preview(hover_items(str(ws.root), data_version(ws), model_token(ws), method, pts, frame))
    st.caption(f"{len(pts)} images · {METHODS[method]} of the embeddings · "
               f"prediction = out-of-sample ({len(preds.item_ids)} images)")
    if drawn is not None:
        flagged = ("every flagged image" if drawn["flagged_drawn"] == drawn["flagged"] else
                   f"{drawn['flagged_drawn']:,} of the {drawn['flagged']:,} flagged images, spread over the map")
        st.caption(f"{drawn['markers']:,} of {len(pts):,} images are drawn as clickable markers ({flagged} and a "
                   "sample of the rest that keeps every sparse spot); the shading shows all of them, coloured by what "
                   "most images in each spot are. **Box and lasso select all images in the region**, drawn or not.")

    group = list(ev.item_ids) if ev.kind == "area" or len(ev.item_ids) > 1 else []
    group = drop_stale(group, frame)
    if group:
        st.subheader(f"Selection: {len(group)} image(s)")
        bulk_bar(ws, group, "emb_bulk", reset_key=GEN)
        with st.expander("See the selected images", expanded=len(group) <= 12):
            item_grid(ws, group, "emb_sel", page_size=12, selectable=False, order_name="in the selection")
        if st.button("Clear the selection", key="emb_clear"):
            st.session_state[GEN] = st.session_state.get(GEN, 0) + 1
            st.rerun()


if __name__ == "__main__":
    run_page(render)
