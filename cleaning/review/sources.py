"""Where the bad images came from: per search query, query template and website.

Pure functions over :meth:`Workspace.items_frame` (``item_id, label, orig_label, deleted, kept,
source_query, source_url``) and the scan's issue table (``item_id, issue``). For every source it counts
the images that came in and how many of them had each *problem*:

* ``flagged`` — the scan put them in the issue queue and nobody has marked them fine; by kind also
  ``outlier`` (off-topic), ``label`` (wrong label), ``duplicate`` (exact or near) and ``low_quality``
  (unreadable or low quality);
* ``deleted`` — a delete decision is active; ``relabelled`` — the label differs from the one it came with;
* ``bad`` — any of the above (each image once).

A query such as ``"dog sun photo"`` or the template ``"{label} wallpaper"`` stands out by its share.
Small sources have noisy shares, so each row also carries ``p_chance``: the probability that a source
of that size gets at least that many problem images if problems fell on every image alike (a binomial
tail at the overall rate). Images with no provenance are grouped as :data:`UNKNOWN`.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

UNKNOWN = "(unknown source)"
BY = ("query", "template", "host")
BY_NAMES = {"query": "search query", "template": "query template", "host": "website"}
#: What can be counted per source, and how the pages name it.
PROBLEMS = {"bad": "any problem", "flagged": "flagged by the scan", "outlier": "off-topic (outlier)",
            "label": "wrong label", "duplicate": "duplicate", "low_quality": "unreadable or low quality",
            "deleted": "deleted", "relabelled": "relabelled"}
#: Issue kinds of the scan counted under each per-kind problem.
KIND_ISSUES = {"outlier": ("outlier",), "label": ("label",), "duplicate": ("duplicate", "near_duplicate"),
               "low_quality": ("low_quality", "corrupt")}
SOURCE_COLUMNS = (["source", "n_images"] + [f"n_{p}" for p in PROBLEMS] + [f"share_{p}" for p in PROBLEMS]
                  + ["p_chance", "labels"])


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
    words, case-insensitive, on the normalised query (:func:`normalise_query`); a query without the
    class name is returned unchanged.
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
    """Per item, one boolean column per problem in :data:`PROBLEMS` (index aligned with ``items``)."""
    has = issues is not None and len(issues) > 0
    open_ = ~items["kept"].astype(bool)
    cols: dict[str, pd.Series] = {}
    for kind, kinds in KIND_ISSUES.items():
        ids = set(issues.loc[issues["issue"].isin(kinds), "item_id"]) if has else set()
        cols[kind] = items["item_id"].isin(ids) & open_
    cols["flagged"] = items["item_id"].isin(set(issues["item_id"]) if has else set()) & open_
    cols["deleted"] = items["deleted"].astype(bool)
    cols["relabelled"] = (items["label"] != items["orig_label"]) & ~cols["deleted"]
    cols["bad"] = cols["flagged"] | cols["deleted"] | cols["relabelled"]
    return pd.DataFrame({p: cols[p] for p in PROBLEMS}, index=items.index)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p), computed in log space (exact, fine for n in the millions)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    i = np.arange(k, n + 1)
    lg = np.vectorize(math.lgamma)
    logs = lg(n + 1) - lg(i + 1) - lg(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p)
    top = logs.max()
    return float(min(1.0, math.exp(top) * np.exp(logs - top).sum()))


def summarize_sources(items: pd.DataFrame, issues: pd.DataFrame | None, by: str = "query",
                      rank_by: str = "bad", min_images: int = 1) -> pd.DataFrame:
    """One row per source (columns :data:`SOURCE_COLUMNS`), worst first.

    Args:
        items: :meth:`Workspace.items_frame` (deleted items included: a deletion is an outcome).
        issues: the scan's issue table, or None when no scan has run yet (then nothing is flagged).
        by: ``"query"`` (the search query), ``"template"`` (query with the class name as ``{label}``)
            or ``"host"`` (the website of the source URL).
        rank_by: the problem (a key of :data:`PROBLEMS`) to sort by and to compute ``p_chance`` for.
        min_images: leave out sources with fewer images (the unknown source is always kept).
    Sorted by ``share_<rank_by>``, then ``p_chance`` (lower first), then ``n_images``. ``labels``
    lists the classes the images came in as.
    """
    if rank_by not in PROBLEMS:
        raise ValueError(f"rank_by must be one of {tuple(PROBLEMS)}, not {rank_by!r}")
    if items.empty:
        return pd.DataFrame(columns=SOURCE_COLUMNS)
    out = item_outcomes(items, issues)
    out["source"] = item_sources(items, by).values
    out["_came_as"] = items["orig_label"].values
    g = out.groupby("source", sort=False)
    df = pd.DataFrame({"n_images": g.size(), **{f"n_{p}": g[p].sum() for p in PROBLEMS},
                       "labels": g["_came_as"].agg(lambda s: ", ".join(sorted(set(s))))}).reset_index()
    for p in PROBLEMS:
        df[f"n_{p}"] = df[f"n_{p}"].astype(int)
        df[f"share_{p}"] = df[f"n_{p}"] / df["n_images"]
    rate = float(out[rank_by].mean())
    df["p_chance"] = [binomial_tail(int(k), int(n), rate) for k, n in zip(df[f"n_{rank_by}"], df["n_images"])]
    df = df[(df["n_images"] >= min_images) | (df["source"] == UNKNOWN)]
    df = df.sort_values([f"share_{rank_by}", "p_chance", "n_images", "source"],
                        ascending=[False, True, False, True], kind="stable")
    return df[SOURCE_COLUMNS].reset_index(drop=True)
