"""Sources: which search query, query template or website brought in the bad images."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cleaning.sources import BY, BY_NAMES, UNKNOWN, item_outcomes, item_sources, sources_figure, summarize_sources
from cleaning.workspace import Workspace
from pages import _review as review
from pages._common import get_workspace, run_page, thumb

K = "src"
MIN_FOR_CALLOUT = 3  # a source needs this many images before the page points at it
MAX_THUMBS = 48


def render() -> None:
    ws = get_workspace()
    st.title("Sources")
    st.caption("Per search query and per website: how many images came in, and what share of them the scan "
               "flagged or you deleted or relabelled. A query that brings in junk stands out at the top; "
               "leave it out of the next scrape.")
    review.flash()
    items = ws.items_frame()
    if items.empty:
        st.warning("No images in this data set.")
        return
    if items["source_query"].isna().all() and items["source_url"].isna().all():
        st.info("No image here has a recorded source, so everything is grouped as “(unknown source)”. Images "
                "added with the Scrape page or `python -m cleaning scrape` remember their query and URL.")
    table = review.issues(ws, compute=review.model_gate(ws, f"{K}_gate"))
    if table is None:
        st.warning("No issue scan yet, so only deletions and relabels count; nothing is “flagged”.")
    by = st.segmented_control("Group by", BY, default="query", key=f"{K}_by", format_func=BY_NAMES.get) or "query"
    summary = summarize_sources(items, table, by=by)
    _callout(summary, by)
    st.plotly_chart(sources_figure(summary, by=by), key=f"{K}_fig_{by}", width="stretch")
    table_view = summary.drop(columns=[c for c in summary.columns if c.startswith("share_") and c != "share_bad"])
    st.dataframe(
        table_view.assign(share_bad=100 * table_view["share_bad"]),
        hide_index=True, width="stretch", height=min(420, 38 + 35 * len(summary)),
        column_config={
            "source": st.column_config.TextColumn(BY_NAMES[by]),
            "n_images": st.column_config.NumberColumn("images"),
            "n_flagged": st.column_config.NumberColumn("flagged", help="in the issue queue, not marked fine"),
            "n_deleted": st.column_config.NumberColumn("deleted"),
            "n_relabelled": st.column_config.NumberColumn("relabelled"),
            "n_bad": st.column_config.NumberColumn("any of these"),
            "share_bad": st.column_config.ProgressColumn("share with a problem", format="%.0f%%",
                                                         min_value=0.0, max_value=100.0),
            "labels": st.column_config.TextColumn("came in as"),
        })
    _drill_down(ws, items, table, summary, by)


def _callout(summary: pd.DataFrame, by: str) -> None:
    n, bad = int(summary["n_images"].sum()), int(summary["n_bad"].sum())
    overall = bad / n if n else 0.0
    known = summary[(summary["source"] != UNKNOWN) & (summary["n_images"] >= MIN_FOR_CALLOUT)]
    if known.empty or known.iloc[0]["n_bad"] == 0:
        st.success(f"No {BY_NAMES[by]} stands out: {bad} of {n} images ({overall:.0%}) have a problem.")
        return
    w = known.iloc[0]
    msg = (f"**“{w['source']}”** stands out: {w['n_bad']} of its {w['n_images']} images "
           f"({w['share_bad']:.0%}) were flagged, deleted or relabelled, against {overall:.0%} over all "
           f"{n} images.")
    (st.warning if w["share_bad"] >= 1.5 * overall else st.info)(msg, icon=":material/travel_explore:")


def _drill_down(ws: Workspace, items: pd.DataFrame, table: pd.DataFrame | None, summary: pd.DataFrame,
                by: str) -> None:
    st.subheader("Look at one source")
    options = list(summary["source"])
    key = f"{K}_pick_{by}"
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]
    src = st.selectbox(BY_NAMES[by].capitalize(), options, key=key)
    mine = items[item_sources(items, by).values == src]
    out = item_outcomes(mine, table)
    if by == "query" and out["flagged"].any():
        if st.button(f"Review its {int(out['flagged'].sum())} flagged image(s) on the Issues page",
                     key=f"{K}_to_issues", icon=":material/report:"):
            st.session_state["iss_queries"] = [src]
            st.session_state["iss_page"] = 1
            st.switch_page("pages/issues.py")
    order = (out["deleted"] * 4 + out["relabelled"] * 2 + out["flagged"]).sort_values(ascending=False, kind="stable")
    shown = mine.loc[order.index].head(MAX_THUMBS)
    if len(mine) > MAX_THUMBS:
        st.caption(f"The {MAX_THUMBS} worst of its {len(mine)} images.")
    cols = st.columns(8)
    for n, r in enumerate(shown.itertuples()):
        o = out.loc[r.Index]
        state = ("deleted" if o["deleted"] else f"→ {r.label}" if o["relabelled"] else
                 "flagged" if o["flagged"] else "ok")
        cols[n % 8].image(thumb(r.abs_path, 160), width="stretch",
                          caption=f"{r.orig_label} · {state}")


if __name__ == "__main__":
    run_page(render)
