"""Grid review: a page of thumbnails per class or per issue kind (like fastai's cleaner), each with one-click
actions — Open, Delete / Restore, Fine — recorded as decisions and undoable; a bulk bar for the picked ones."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cleaning.review.queue import ISSUE_NAMES, build_queue
from pages import _review as review
from pages._common import get_workspace, run_page

K = "grid"
SIZES = {"normal": (6, 256, 30), "large": (3, 512, 12)}  # columns, thumbnail px, images per page


def class_order(items: pd.DataFrame, table: pd.DataFrame | None, label: str) -> list[str]:
    """The images of class ``label`` (not deleted), the most severe flagged ones first, then by path."""
    mine = items[(items["label"] == label) & ~items["deleted"]]
    sev = (table.groupby("item_id")["severity"].max() if table is not None and not table.empty
           else pd.Series(dtype=float))
    order = mine.assign(sev=mine["item_id"].map(sev).fillna(-1.0)).sort_values(["sev", "path"],
                                                                              ascending=[False, True])
    return list(order["item_id"])


def kind_order(queue: pd.DataFrame, kind: str) -> list[str]:
    """The images still to review with issue ``kind`` (pairs give the copy the scan would drop), worst first."""
    rows = queue[queue["issues"].map(lambda s: kind in str(s).split(", "))]
    return list(dict.fromkeys(str(i) for i in rows["item_id"].dropna()))


def render() -> None:
    ws = get_workspace()
    st.title("Grid review")
    st.caption("A page of images at a glance, like fastai's cleaner — but every click is a recorded decision: "
               "**Delete**, **Fine** (looks fine) or **Open** for the full panel; **↶ Undo** in the sidebar takes "
               "the last one back. Pick several for one bulk action.")
    items = review.items(ws)
    c = st.columns([1, 2, 1], vertical_alignment="bottom")
    by = c[0].segmented_control("Group by", ["class", "issue"], default="class", key=f"{K}_by") or "class"
    size = c[2].segmented_control("Thumbnails", list(SIZES), default="normal", key=f"{K}_size") or "normal"
    table = review.issues(ws, compute=len(items) <= review.ISSUES_EAGER_UP_TO)
    if by == "class":
        labels = sorted(items.loc[~items["deleted"], "label"].unique())
        if not labels:
            st.info("No images.")
            return
        label = c[1].selectbox("Class", labels, key=f"{K}_class")
        ids = class_order(items, table, str(label))
        st.caption(f"{len(ids)} image(s) in **{label}**, flagged ones first.")
    else:
        if table is None:
            st.info("No issue scan yet: open the Issues page (or run `python -m cleaning scan ROOT`).")
            return
        queue = build_queue(table, items)
        kinds = [k for k in ISSUE_NAMES if kind_order(queue, k)]
        if not kinds:
            st.success("Nothing left to review.")
            return
        kind = c[1].selectbox("Issue kind", kinds, key=f"{K}_kind", format_func=lambda k: ISSUE_NAMES.get(k, k))
        ids = kind_order(queue, str(kind))
        st.caption(f"{len(ids)} image(s) still to review for **{ISSUE_NAMES.get(kind, kind)}**, worst first.")
    cols, px, per_page = SIZES[size]
    picked = review.item_grid(ws, ids, f"{K}_{by}_{size}", page_size=per_page, columns=cols, thumb_px=px,
                              compute_predictions=False, order_name="on this grid")
    if picked:
        review.bulk_bar(ws, picked, f"{K}_bulk")


if __name__ == "__main__":
    run_page(render)
