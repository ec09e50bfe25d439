"""Plotly figure builders (compute elsewhere; these only draw): the embedding scatter and the clickable
confusion matrix of the review pages, the class counts of the Overview page, the loss curve and run
confusion matrices of the Train page.

Builders only draw what :mod:`cleaning.review.selection` computed. Every clickable point carries what names it in
``customdata`` (a selection names images or cells, never positions in a trace): a confusion cell its
``[given, predicted, count]``; an embedding point its row in the points frame (one small integer, see
:func:`embedding_figure`), which the page turns back into an item id.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .selection import NEUTRAL, Confusion, category_colours, colour_codes
from .sources import BY_NAMES, PROBLEMS

#: Above this many points the scatter is drawn with WebGL (``Scattergl``).
WEBGL_ABOVE = 2000

#: Above this many points the markers are drawn smaller (3 px instead of 5): with software WebGL the GPU
#: process's redraw of every marker on a click (the selection) is most of a click's CPU at 100,000 points,
#: and a map that dense is a solid cloud at 5 px anyway (≈6 px² of plot per point at 100k).
SMALL_MARKERS_ABOVE = 50_000

#: Top margin (px) of the map: room for plotly's toolbar above the plot and its legend.
MODEBAR_MARGIN = 44

COLOUR_COLUMNS = {"label": "given label", "pred": "prediction", "issue": "issue", "group": "junk group"}


def embedding_figure(points: pd.DataFrame, colour_by: str = "label", height: int = 640,
                     dragmode: str = "zoom", markers: np.ndarray | None = None) -> go.Figure:
    """The 2-D map of the images, one marker per image, one trace (and legend entry) per colour.

    One trace per category with a single colour each: cheap to build (no per-point colour strings) and,
    unlike per-point colours, cheap for the browser to redraw when a click selects a point (with software
    WebGL that redraw is most of a click's latency at 20k points).

    The figure holds only what the browser needs to draw and to name a point: x and y as float32 and, as
    ``customdata``, each point's row in ``points`` as the smallest unsigned integer type that fits; plotly
    (≥ 6) sends all three as base64 typed arrays (``{"dtype", "bdata"}``), 10 bytes a point in all. No
    per-point text: paths, labels, predictions and issues are shown by the page's hover preview from its own
    data (a static file per map, fetched after the chart is drawn), so plotly draws no hover label of its
    own (``hoverinfo="none"`` still emits the hover events the preview listens to). At 20,000 points that
    is ≈0.27 MB of figure instead of 2.6 MB with hover texts and item ids in it.

    Args:
        points: :func:`cleaning.review.selection.embedding_points` (item_id, x, y, path, label, deleted, pred,
            confidence, issue); a point's ``customdata`` is its row here (``points["item_id"].iloc[row]``).
        colour_by: ``"label"``, ``"pred"``, ``"issue"`` or ``"group"`` (junk groups; needs the ``group``
            column); deleted images are drawn as "deleted".
        dragmode: plotly drag mode, ``"zoom"``, ``"pan"``, ``"select"`` (box) or ``"lasso"``.
        markers: a large map's rows to draw as markers (:func:`cleaning.review.mapdensity.marker_rows`); all
            points are then drawn underneath as a density raster (a layout image, see that module) and the
            axes span all points. None (default): every point is a marker.
    Raises:
        ValueError: unknown ``colour_by``.
    """
    if colour_by not in COLOUR_COLUMNS:
        raise ValueError(f"colour_by must be one of {list(COLOUR_COLUMNS)}, not {colour_by!r}")
    col = points[colour_by] if colour_by in points.columns else pd.Series("no group", index=points.index)
    values = col.astype(str).where(~points["deleted"].astype(bool), "deleted")
    codes, _, cats = colour_codes(list(values))
    colours = category_colours(cats)
    x, y = points["x"].to_numpy(dtype=np.float32), points["y"].to_numpy(dtype=np.float32)
    rows = np.arange(len(points), dtype=np.min_scalar_type(max(len(points) - 1, 0)))
    drawn = np.ones(len(points), dtype=bool)
    if markers is not None:
        drawn = np.zeros(len(points), dtype=bool)
        drawn[np.asarray(markers, dtype=np.int64)] = True
    n_drawn = int(drawn.sum())
    big = n_drawn > WEBGL_ABOVE
    trace = go.Scattergl if big else go.Scatter
    fig = go.Figure()
    # neutral categories ("no issue", ...) are drawn first, underneath, but keep their place in the legend
    order = sorted(range(len(cats)), key=lambda k: (cats[k] not in NEUTRAL, k))
    for k in order:
        cat, colour, m = cats[k], colours[k], codes == k
        d = m & drawn
        fig.add_trace(trace(
            x=x[d], y=y[d], mode="markers", customdata=rows[d], hoverinfo="none", legendrank=1000 + k,
            name=f"{cat} ({int(m.sum())})",
            marker=dict(color=colour, size=(3 if n_drawn > SMALL_MARKERS_ABOVE else 5) if big else 9, line=dict(width=0 if big else 0.5, color="white")),
            selected=dict(marker=dict(size=8 if big else 13)),
            unselected=dict(marker=dict(opacity=1 if big else 0.35))))
    # the top margin holds plotly's toolbar (mode bar), so it never covers the legend title below it
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=MODEBAR_MARGIN, b=10), dragmode=dragmode,
                      hovermode="closest", clickmode="event+select", plot_bgcolor="#fafafa",
                      xaxis=dict(visible=False), yaxis=dict(visible=False), uirevision="embedding",
                      legend=dict(title=dict(text=COLOUR_COLUMNS[colour_by]), itemsizing="constant",
                                  y=1, yanchor="top"))
    if markers is not None and len(points):
        from .mapdensity import density_image

        ext = [float(x.min()), float(x.max()), float(y.min()), float(y.max())]
        pad = [0.04 * max(ext[1] - ext[0], 1e-6), 0.04 * max(ext[3] - ext[2], 1e-6)]
        ext = [ext[0] - pad[0], ext[1] + pad[0], ext[2] - pad[1], ext[3] + pad[1]]
        fig.update_layout(images=[density_image(x, y, codes, colours, tuple(ext))],
                          xaxis_range=ext[:2], yaxis_range=ext[2:])
    return fig


def confusion_figure(conf: Confusion, cell_px: int = 90, selected: tuple[str, str] | None = None) -> go.Figure:
    """The confusion matrix as a heatmap (rows: given label, columns: predicted label) with a square,
    transparent marker over each cell so that a click on a cell reaches Python (heatmap clicks do not).

    Colour is the share of the row (so mistakes show even in a big class); the text is the count. The
    markers' ``customdata`` is ``[given, predicted, count]``; ``selected`` outlines one cell.
    """
    k = len(conf.vocab)
    counts = conf.counts
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    labels = conf.vocab
    fig = go.Figure(go.Heatmap(
        z=share, x=labels, y=labels, text=counts, texttemplate="%{text}", textfont=dict(size=16),
        colorscale="Blues", zmin=0, zmax=1, showscale=False, hoverinfo="skip", xgap=2, ygap=2))
    gx, gy = np.meshgrid(np.arange(k), np.arange(k))
    given = [labels[i] for i in gy.ravel()]
    pred = [labels[j] for j in gx.ravel()]
    cnt = counts[gy.ravel(), gx.ravel()]
    fig.add_trace(go.Scatter(
        x=pred, y=given, mode="markers", customdata=np.column_stack([given, pred, cnt]).tolist(),
        marker=dict(symbol="square", size=8, color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1)),
        hovertemplate="given <b>%{customdata[0]}</b>, predicted <b>%{customdata[1]}</b>: "
                      "%{customdata[2]} image(s)<br>click to see them<extra></extra>",
        showlegend=False, name="cells"))
    if selected and selected[0] in labels and selected[1] in labels:
        fig.add_shape(type="rect", x0=labels.index(selected[1]) - 0.5, x1=labels.index(selected[1]) + 0.5,
                      y0=labels.index(selected[0]) - 0.5, y1=labels.index(selected[0]) + 0.5,
                      line=dict(color="#ff4b4b", width=3))
    side = cell_px * k
    # Small markers + a hover distance of a cell: the nearest cell centre always wins, so a click anywhere
    # in a cell picks that cell even if the figure is drawn smaller than asked (big overlapping markers
    # would tie, and plotly would then pick the last one).
    fig.update_layout(
        height=side + 70, width=side + 110, margin=dict(l=10, r=10, t=10, b=10), dragmode=False,
        hovermode="closest", hoverdistance=cell_px, clickmode="event+select", plot_bgcolor="white",
        xaxis=dict(title=dict(text="predicted (out-of-sample)", standoff=4), side="top", type="category",
                   showgrid=False, range=[-0.5, k - 0.5], fixedrange=True, automargin=True),
        yaxis=dict(title=dict(text="given label", standoff=4), type="category", range=[k - 0.5, -0.5],
                   showgrid=False, fixedrange=True, automargin=True))
    return fig


def class_counts_frame(items: pd.DataFrame) -> pd.DataFrame:
    """One row per current label: ``class``, ``images`` (not deleted: kept and relabelled into it), ``relabelled
    into`` (of those, the ones whose original label differs) and ``deleted``, in label order.

    ``items`` is :meth:`Workspace.items_frame` (columns label, orig_label, deleted)."""
    deleted = items["deleted"].to_numpy(bool)
    moved = ~deleted & (items["label"] != items["orig_label"]).to_numpy(bool)
    df = pd.DataFrame({"class": items["label"].astype(str).to_numpy(), "images": ~deleted, "relabelled into": moved,
                       "deleted": deleted})
    out = df.groupby("class", sort=True).sum().astype(int).reset_index()
    return out[["class", "images", "relabelled into", "deleted"]]


def loss_figure(batch_losses: list[float], history: list[dict[str, Any]], n_batches: int = 0) -> go.Figure:
    """Training loss per batch (raw and smoothed) and validation loss at each epoch's end."""
    fig = go.Figure()
    if batch_losses:
        x = np.arange(1, len(batch_losses) + 1)
        fig.add_scatter(x=x, y=batch_losses, mode="lines", name="train loss (batch)",
                        line=dict(color="#93c5fd", width=1))
        w = max(1, min(10, len(batch_losses) // 5))
        smooth = pd.Series(batch_losses).ewm(span=w).mean()
        fig.add_scatter(x=x, y=smooth, mode="lines", name="train loss (smoothed)", line=dict(color="#2563eb"))
    per_epoch = n_batches or (len(batch_losses) / len(history) if history else 0)
    ep = [h for h in history if h.get("valid_loss") == h.get("valid_loss")]  # drop NaN
    if ep and per_epoch:
        fig.add_scatter(x=[(h["epoch"] + 1) * per_epoch for h in ep], y=[h["valid_loss"] for h in ep],
                        mode="lines+markers", name="validation loss", line=dict(color="#f59e0b"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="batch", yaxis_title="loss",
                      legend=dict(orientation="h", y=1.15))
    return fig


def matrix_figure(matrix: np.ndarray, vocab: list[str], diverging: bool = False) -> go.Figure:
    """A K×K heatmap (rows = true label, columns = predicted) with the counts written in the cells."""
    m = np.asarray(matrix)
    lim = max(1, int(np.abs(m).max())) if m.size else 1
    fig = go.Figure(go.Heatmap(
        z=m, x=vocab, y=vocab, text=[[f"{v:+d}" if diverging else str(v) for v in row] for row in m.tolist()],
        texttemplate="%{text}", colorscale="RdBu" if diverging else "Blues", zmid=0 if diverging else None,
        zmin=-lim if diverging else 0, zmax=lim, showscale=False,
        hovertemplate="true %{y} → predicted %{x}: %{text}<extra></extra>"))
    fig.update_layout(height=max(260, 50 * len(vocab) + 120), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title="predicted", side="bottom"), yaxis=dict(title="true label", autorange="reversed"))
    return fig


def sources_figure(summary: pd.DataFrame, by: str = "query", rank_by: str = "bad", max_bars: int = 40) -> go.Figure:
    """Horizontal bars, one per source in the order of ``summary`` (worst on top).

    For ``rank_by="bad"`` the bar is stacked: the share of the source's images that were deleted,
    relabelled, or are still flagged (each image once: deleted > relabelled > flagged); otherwise one
    bar of the share with that problem. Each bar is annotated with ``count/images``; a dotted line marks
    the share over all images (of the whole summary, not only the bars drawn).
    """
    s = summary.head(max_bars)
    y = [str(v) for v in s["source"]]
    n = s["n_images"].clip(lower=1)
    fig = go.Figure()
    if rank_by == "bad":
        flagged_only = (s["n_bad"] - s["n_deleted"] - s["n_relabelled"]).clip(lower=0)
        parts = [("deleted", s["n_deleted"], "#dc2626"), ("relabelled", s["n_relabelled"], "#f59e0b"),
                 ("flagged, not yet reviewed", flagged_only, "#93c5fd")]
    else:
        parts = [(PROBLEMS[rank_by], s[f"n_{rank_by}"], "#2563eb")]
    for name, count, colour in parts:
        fig.add_bar(y=y, x=count / n, name=name, orientation="h", marker_color=colour,
                    customdata=list(zip(count, s["n_images"])),
                    hovertemplate="%{y}<br>" + name + ": %{customdata[0]} of %{customdata[1]} images"
                                  "<extra></extra>")
    share = s[f"share_{rank_by}"]
    fig.add_scatter(y=y, x=share, mode="text", showlegend=False, hoverinfo="skip",
                    text=[f"  {b}/{t}" for b, t in zip(s[f"n_{rank_by}"], s["n_images"])],
                    textposition="middle right", textfont=dict(size=12, color="#374151"))
    if len(summary) and summary["n_images"].sum():
        overall = float(summary[f"n_{rank_by}"].sum() / summary["n_images"].sum())
        fig.add_vline(x=overall, line_dash="dot", line_color="#6b7280", annotation_text=f"all images {overall:.0%}",
                      annotation_position="bottom right", annotation_font_color="#6b7280")
    fig.update_layout(
        barmode="stack", height=max(240, 28 * len(y) + 110), margin=dict(l=10, r=30, t=40, b=10),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0), showlegend=True, xaxis=dict(
            title=f"share of the images from this {BY_NAMES.get(by, by)}: {PROBLEMS.get(rank_by, rank_by)}",
            tickformat=".0%", range=[0, max(0.1, float(share.max() if len(s) else 0)) * 1.25]),
        yaxis=dict(autorange="reversed", automargin=True))
    return fig
