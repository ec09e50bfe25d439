"""Plotly figure builders for the foundation pages (compute elsewhere; these only draw)."""

from __future__ import annotations

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
