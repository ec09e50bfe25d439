"""Sources: which search query, query template or website brought in the bad images."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cleaning.data.workspace import Workspace
from cleaning.review.figures import sources_figure
from cleaning.review.sources import (
    BY,
    BY_NAMES,
    PROBLEMS,
    UNKNOWN,
    item_outcomes,
    item_sources,
    summarize_sources,
)
from pages import _review as review
from pages._common import get_workspace, run_page, thumb

K = "src"
MIN_FOR_CALLOUT = 3  # a source needs this many images before the page points at it
CHANCE = 0.05  # ... and a share this unlikely to be chance
MAX_THUMBS = 48
CHANCE_TEXT = ("**by chance**: if problems fell on every image alike, how often a source of this size would "
               "get at least this many of them anyway — near 0 means the source itself is the cause, near 1 "
               "means it is just bad luck.")


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
    c = st.columns([2, 1], vertical_alignment="bottom")
    with c[0]:
        by = st.segmented_control("Group by", BY, default="query", key=f"{K}_by", format_func=BY_NAMES.get) or "query"
    rank = c[1].selectbox("Count", list(PROBLEMS), key=f"{K}_rank", format_func=PROBLEMS.get,
                          help="Which problem to rank the sources by: off-topic finds the queries that bring in "
                               "junk, wrong label the ones that bring in another class")
    summary = summarize_sources(items, table, by=by, rank_by=rank)
    _callout(summary, by, rank)
    st.plotly_chart(sources_figure(summary, by=by, rank_by=rank), key=f"{K}_fig_{by}_{rank}", width="stretch")
    cols = list(dict.fromkeys(["source", "n_images", f"n_{rank}", f"share_{rank}", "p_chance", "n_flagged",
                               "n_deleted", "n_relabelled", "labels"]))
    names = {f"n_{p}": PROBLEMS[p] for p in PROBLEMS}
    st.dataframe(
        summary[cols].assign(**{f"share_{rank}": 100 * summary[f"share_{rank}"]}),
        hide_index=True, width="stretch", height=min(420, 38 + 35 * len(summary)),
        column_config={
            "source": st.column_config.TextColumn(BY_NAMES[by]),
            "n_images": st.column_config.NumberColumn("images"),
            **{c: st.column_config.NumberColumn(names[c]) for c in cols if c in names},
            f"share_{rank}": st.column_config.ProgressColumn(f"share: {PROBLEMS[rank]}", format="%.0f%%",
                                                             min_value=0.0, max_value=100.0),
            "p_chance": st.column_config.NumberColumn(
                "by chance", format="%.2g", help="How often a source this size would get at least this many "
                "by chance, if problems fell on every image alike (small = a real pattern)"),
            "labels": st.column_config.TextColumn("came in as"),
        })
    st.caption(CHANCE_TEXT)
    _drill_down(ws, items, table, summary, by)


def _callout(summary: pd.DataFrame, by: str, rank: str) -> None:
    n, bad = int(summary["n_images"].sum()), int(summary[f"n_{rank}"].sum())
    overall = bad / n if n else 0.0
    what = PROBLEMS[rank]
    known = summary[(summary["source"] != UNKNOWN) & (summary["n_images"] >= MIN_FOR_CALLOUT)]
    if known.empty or known.iloc[0][f"n_{rank}"] == 0:
        st.success(f"No {BY_NAMES[by]} stands out: {bad} of {n} images ({overall:.0%}) — {what}.")
        return
    w = known.iloc[0]
    k, m, share, p = int(w[f"n_{rank}"]), int(w["n_images"]), float(w[f"share_{rank}"]), float(w["p_chance"])
    if p < CHANCE and share >= 1.5 * overall:
        st.warning(f"**“{w['source']}”** stands out: {k} of its {m} images ({share:.0%}) — {what} — against "
                   f"{overall:.0%} over all {n} images. By chance a source this size would get that many only "
                   f"{p:.1%} of the time: consider leaving it out of the next scrape.",
                   icon=":material/travel_explore:")
    else:
        st.info(f"No {BY_NAMES[by]} stands out clearly. The highest share is **“{w['source']}”**: {k} of {m} "
                f"images ({share:.0%}) — {what} — against {overall:.0%} overall; a source that size gets that "
                f"many by chance {p:.0%} of the time.", icon=":material/travel_explore:")


def _drill_down(ws: Workspace, items: pd.DataFrame, table: pd.DataFrame | None, summary: pd.DataFrame, by: str) -> None:
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
    opened = None
    for n, r in enumerate(shown.itertuples()):
        o = out.loc[r.Index]
        state = ("deleted" if o["deleted"] else f"→ {r.label}" if o["relabelled"] else
                 "flagged" if o["flagged"] else "ok")
        cols[n % 8].image(thumb(r.abs_path, 160), width="stretch",
                          caption=f"{r.orig_label} · {state}")
        if cols[n % 8].button("Open", key=f"{K}_open_{r.item_id}", width="stretch",
                              help=f"Review {r.path}: relabel, delete, restore or mark as fine"):
            opened = str(r.item_id)
    if opened:
        review.review_dialog(ws, opened, key_prefix=f"{K}_dlg", order=[str(i) for i in shown["item_id"]],
                             what="of this source")


if __name__ == "__main__":
    run_page(render)
