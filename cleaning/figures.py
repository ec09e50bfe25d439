"""Plotly figure builders for the Overview and Train pages (compute elsewhere; these only draw)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go


def class_counts_figure(items: pd.DataFrame) -> go.Figure:
    """Horizontal bars: images per current label, split into kept / relabelled in / deleted.

    ``items`` is :meth:`Workspace.items_frame` (columns label, orig_label, deleted).
    """
    df = items.assign(
        state=lambda d: d["deleted"].map({True: "deleted", False: "kept"}).where(
            d["deleted"] | (d["label"] == d["orig_label"]), "relabelled into"))
    labels = sorted(df["label"].unique())
    fig = go.Figure()
    colours = {"kept": "#2563eb", "relabelled into": "#f59e0b", "deleted": "#d1d5db"}
    for state in ("kept", "relabelled into", "deleted"):
        counts = df[df["state"] == state]["label"].value_counts().reindex(labels, fill_value=0)
        fig.add_bar(y=labels, x=counts.values, name=state, orientation="h", marker_color=colours[state],
                    hovertemplate="%{y}: %{x} " + state + "<extra></extra>")
    fig.update_layout(barmode="stack", height=max(220, 40 * len(labels) + 80), margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), xaxis_title="images", yaxis=dict(autorange="reversed"))
    return fig


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
