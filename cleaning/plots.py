"""Plotly figures of the review pages: the embedding scatter and the clickable confusion matrix.

Builders only draw what :mod:`cleaning.review` computed. Every clickable point carries its item id (or its
cell) in ``customdata``, so a selection names images, never positions in a trace.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .review import NEUTRAL, Confusion, category_colours, colour_codes

#: Above this many points the scatter is drawn with WebGL (``Scattergl``).
WEBGL_ABOVE = 2000

#: Top margin (px) of the map: room for plotly's toolbar above the plot and its legend.
MODEBAR_MARGIN = 44

COLOUR_COLUMNS = {"label": "given label", "pred": "prediction", "issue": "issue"}


def hover_texts(points: pd.DataFrame) -> list[str]:
    """One short hover text per point: path, given label → prediction and confidence, top issue.

    Kept short on purpose: at 20k points the hover texts are most of what the browser downloads."""
    conf = points["confidence"].to_numpy(dtype=float)
    esc = html.escape
    out = []
    for path, label, pred, c, issue in zip(points["path"], points["label"], points["pred"], conf,
                                           points["issue"]):
        pred_s = f"{esc(str(pred))} {c:.0%}" if c == c else esc(str(pred))
        issue_s = "" if issue == "no issue" else f"<br>{esc(str(issue))}"
        out.append(f"<b>{esc(str(path))}</b><br>{esc(str(label))} → {pred_s}{issue_s}")
    return out


def embedding_figure(points: pd.DataFrame, colour_by: str = "label", height: int = 640,
                     dragmode: str = "zoom") -> go.Figure:
    """The 2-D map of the images, one marker per image, one trace (and legend entry) per colour.

    One trace per category with a single colour each: cheap to build (no per-point colour strings) and,
    unlike per-point colours, cheap for the browser to redraw when a click selects a point (with software
    WebGL that redraw is most of a click's latency at 20k points).

    Args:
        points: :func:`cleaning.review.embedding_points` (item_id, x, y, path, label, deleted, pred,
            confidence, issue).
        colour_by: ``"label"``, ``"pred"`` or ``"issue"``; deleted images are drawn as "deleted".
        dragmode: plotly drag mode, ``"zoom"``, ``"pan"``, ``"select"`` (box) or ``"lasso"``.
    Raises:
        ValueError: unknown ``colour_by``.
    """
    if colour_by not in COLOUR_COLUMNS:
        raise ValueError(f"colour_by must be one of {list(COLOUR_COLUMNS)}, not {colour_by!r}")
    values = points[colour_by].astype(str).where(~points["deleted"].astype(bool), "deleted")
    codes, _, cats = colour_codes(list(values))
    colours = category_colours(cats)
    big = len(points) > WEBGL_ABOVE
    trace = go.Scattergl if big else go.Scatter
    x, y = points["x"].to_numpy(dtype=np.float32), points["y"].to_numpy(dtype=np.float32)
    ids, hover = points["item_id"].to_numpy(dtype=object), np.asarray(hover_texts(points), dtype=object)
    fig = go.Figure()
    # neutral categories ("no issue", ...) are drawn first, underneath, but keep their place in the legend
    order = sorted(range(len(cats)), key=lambda k: (cats[k] not in NEUTRAL, k))
    for k in order:
        cat, colour, m = cats[k], colours[k], codes == k
        fig.add_trace(trace(
            x=x[m], y=y[m], mode="markers", customdata=ids[m], hovertext=hover[m], legendrank=1000 + k,
            hovertemplate="%{hovertext}<extra></extra>", name=f"{cat} ({int(m.sum())})",
            marker=dict(color=colour, size=5 if big else 9, line=dict(width=0 if big else 0.5, color="white")),
            selected=dict(marker=dict(size=8 if big else 13)),
            unselected=dict(marker=dict(opacity=1 if big else 0.35))))
    # the top margin holds plotly's toolbar (mode bar), so it never covers the legend title below it
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=MODEBAR_MARGIN, b=10), dragmode=dragmode,
                      hovermode="closest", clickmode="event+select", plot_bgcolor="#fafafa",
                      xaxis=dict(visible=False), yaxis=dict(visible=False), uirevision="embedding",
                      legend=dict(title=dict(text=COLOUR_COLUMNS[colour_by]), itemsizing="constant",
                                  y=1, yanchor="top"))
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
