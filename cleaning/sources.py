"""Where the bad images came from: per search query, query template and website.

Pure functions over :meth:`Workspace.items_frame` (``item_id, label, orig_label, deleted, kept,
source_query, source_url``) and the scan's issue table (``item_id, issue``). For every source it counts
the images that came in and how many of them were

* **flagged** — the scan put them in the issue queue and nobody has marked them fine;
* **deleted** — a delete decision is active;
* **relabelled** — their label now differs from the one they came with;

and ``n_bad``, the images with any of the three (each image once). A query such as
``"dog sun photo"`` or the template ``"{label} wallpaper"`` stands out by its ``share_bad``.
Images with no provenance are grouped as :data:`UNKNOWN`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pandas as pd
import plotly.graph_objects as go

UNKNOWN = "(unknown source)"
BY = ("query", "template", "host")
BY_NAMES = {"query": "search query", "template": "query template", "host": "website"}
SOURCE_COLUMNS = ["source", "n_images", "n_flagged", "n_deleted", "n_relabelled", "n_bad", "share_flagged",
                  "share_deleted", "share_relabelled", "share_bad", "labels"]


def source_host(url: object) -> str:
    """The website of a source URL (``images.example.com``; a leading ``www.`` dropped), else UNKNOWN."""
    if not isinstance(url, str) or not url.strip():
        return UNKNOWN
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return UNKNOWN
    host = host.removeprefix("www.")
    return host or UNKNOWN


def normalise_query(query: object) -> str:
    """A query as grouped: lower case, single spaces (``"Dog  Sun photo"`` → ``"dog sun photo"``), else UNKNOWN."""
    if not isinstance(query, str) or not query.strip():
        return UNKNOWN
    return " ".join(query.lower().split())


def query_template(query: object, label: object) -> str:
    """The query with the class name replaced by ``{label}`` (``"dog wallpaper"`` → ``"{label} wallpaper"``).

    ``label`` is the label the image came in with (the class it was searched for). Matching is on whole
    words, case-insensitive, on the normalised query (:func:`normalise_query`); a query without the class name is returned unchanged.
    """
    q = normalise_query(query)
    if q == UNKNOWN:
        return q
    if isinstance(label, str) and label:
        q = re.sub(rf"(?<!\w){re.escape(label)}(?!\w)", "{label}", q, flags=re.IGNORECASE)
    return q


def item_sources(items: pd.DataFrame, by: str = "query") -> pd.Series:
    """One source name per item (index aligned with ``items``) for grouping ``by`` query/template/host."""
    if by == "query":
        return items["source_query"].map(normalise_query)
    if by == "template":
        return pd.Series([query_template(q, lab) for q, lab in zip(items["source_query"], items["orig_label"])],
                         index=items.index, dtype=object)
    if by == "host":
        return items["source_url"].map(source_host)
    raise ValueError(f"by must be one of {BY}, not {by!r}")


def item_outcomes(items: pd.DataFrame, issues: pd.DataFrame | None) -> pd.DataFrame:
    """Per item: booleans ``flagged, deleted, relabelled, bad`` (index aligned with ``items``)."""
    in_queue = set(issues["item_id"].dropna()) if issues is not None and len(issues) else set()
    flagged = items["item_id"].isin(in_queue) & ~items["kept"].astype(bool)
    deleted = items["deleted"].astype(bool)
    relabelled = (items["label"] != items["orig_label"]) & ~deleted
    return pd.DataFrame({"flagged": flagged, "deleted": deleted, "relabelled": relabelled,
                         "bad": flagged | deleted | relabelled}, index=items.index)


def summarize_sources(items: pd.DataFrame, issues: pd.DataFrame | None, by: str = "query",
                      min_images: int = 1) -> pd.DataFrame:
    """One row per source (columns :data:`SOURCE_COLUMNS`), worst first.

    Args:
        items: :meth:`Workspace.items_frame` (deleted items included: a deletion is an outcome).
        issues: the scan's issue table, or None when no scan has run yet (then nothing is flagged).
        by: ``"query"`` (the search query), ``"template"`` (query with the class name as ``{label}``)
            or ``"host"`` (the website of the source URL).
        min_images: leave out sources with fewer images (the unknown source is always kept).
    Sorted by ``share_bad`` then ``n_images``, both descending. ``labels`` lists the classes the
    images came in as.
    """
    if items.empty:
        return pd.DataFrame(columns=SOURCE_COLUMNS)
    out = item_outcomes(items, issues)
    out["source"] = item_sources(items, by).values
    out["label"] = items["orig_label"].values
    g = out.groupby("source", sort=False)
    df = pd.DataFrame({
        "n_images": g.size(),
        "n_flagged": g["flagged"].sum(),
        "n_deleted": g["deleted"].sum(),
        "n_relabelled": g["relabelled"].sum(),
        "n_bad": g["bad"].sum(),
        "labels": g["label"].agg(lambda s: ", ".join(sorted(set(s)))),
    }).reset_index()
    for k in ("flagged", "deleted", "relabelled", "bad"):
        df[f"n_{k}"] = df[f"n_{k}"].astype(int)
        df[f"share_{k}"] = df[f"n_{k}"] / df["n_images"]
    df = df[(df["n_images"] >= min_images) | (df["source"] == UNKNOWN)]
    df = df.sort_values(["share_bad", "n_images", "source"], ascending=[False, False, True], kind="stable")
    return df[SOURCE_COLUMNS].reset_index(drop=True)


def sources_figure(summary: pd.DataFrame, by: str = "query", max_bars: int = 40) -> go.Figure:
    """Horizontal stacked bars, one per source (worst on top): the share of its images that were
    deleted, relabelled, or are still flagged, each image counted once (deleted > relabelled > flagged).

    ``summary`` is :func:`summarize_sources`. Each bar is annotated with ``bad/images``; a dotted line
    marks the share over all images (of the whole summary, not only the bars drawn).
    """
    s = summary.head(max_bars)
    y = [str(v) for v in s["source"]]
    n = s["n_images"].clip(lower=1)
    relabel_only = s["n_relabelled"]  # relabelled excludes deleted by construction
    flagged_only = (s["n_bad"] - s["n_deleted"] - relabel_only).clip(lower=0)
    fig = go.Figure()
    parts = (("deleted", s["n_deleted"], "#dc2626"), ("relabelled", relabel_only, "#f59e0b"),
             ("flagged, not yet reviewed", flagged_only, "#93c5fd"))
    for name, count, colour in parts:
        fig.add_bar(y=y, x=count / n, name=name, orientation="h", marker_color=colour,
                    customdata=list(zip(count, s["n_images"])),
                    hovertemplate="%{y}<br>" + name + ": %{customdata[0]} of %{customdata[1]} images"
                                  "<extra></extra>")
    fig.add_scatter(y=y, x=s["share_bad"], mode="text", showlegend=False, hoverinfo="skip",
                    text=[f"  {b}/{t}" for b, t in zip(s["n_bad"], s["n_images"])], textposition="middle right",
                    textfont=dict(size=12, color="#374151"))
    if len(summary) and summary["n_images"].sum():
        overall = float(summary["n_bad"].sum() / summary["n_images"].sum())
        fig.add_vline(x=overall, line_dash="dot", line_color="#6b7280", annotation_text=f"all images {overall:.0%}",
                      annotation_position="bottom right", annotation_font_color="#6b7280")
    fig.update_layout(
        barmode="stack", height=max(240, 28 * len(y) + 110), margin=dict(l=10, r=30, t=40, b=10),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0), xaxis=dict(
            title=f"share of the images from this {BY_NAMES.get(by, by)} with a problem", tickformat=".0%",
            range=[0, max(0.1, float(s["share_bad"].max() if len(s) else 0)) * 1.25]),
        yaxis=dict(autorange="reversed", automargin=True))
    return fig
