"""History: every decision, undo / redo. Nothing here touches image files."""

from __future__ import annotations

import base64

import pandas as pd
import streamlit as st

from cleaning.data.workspace import Workspace
from pages._common import get_workspace, open_workspace, run_page, thumb
from pages._writes import data_version, items

STATE_LABEL = {"active": "✓ active", "undone": "↶ undone", "discarded": "✗ discarded (undone, then replaced)"}


#: Rows (newest first) that get a thumbnail; older ones show the path only (the page stays light).
THUMB_ROWS = 300
COLUMNS = {
    "thumbnail": st.column_config.ImageColumn("", width=56),
    "#": st.column_config.NumberColumn("#", width=50),
    "batch": st.column_config.NumberColumn("batch", width=56),
    "when": st.column_config.TextColumn("when (UTC)", width=150),
    "action": st.column_config.TextColumn("action", width=70),
    "new label": st.column_config.TextColumn("new label", width=110),
    "image": st.column_config.TextColumn("image", width="large"),
    "source": st.column_config.TextColumn("source", width=80),
    "state": st.column_config.TextColumn("state", width=170),
    "note": st.column_config.TextColumn("note", width="medium"),
}


def history_frame(ws: Workspace, hist: list) -> pd.DataFrame:
    """One row per decision, **newest first**, with a small thumbnail (data URL) for the newest rows."""
    frame = items(ws)
    paths = dict(zip(frame["item_id"].tolist(), frame["abs_path"].tolist()))
    rows = []
    for n, d in enumerate(reversed(hist)):
        src = paths.get(d.item_id) if n < THUMB_ROWS else None
        rows.append({
            "thumbnail": "data:image/jpeg;base64," + base64.b64encode(thumb(str(src), 64)).decode() if src else None,
            "#": d.seq, "batch": d.batch, "when": d.created_at.replace("T", " ")[:19], "action": d.action,
            "new label": d.label or "", "image": d.path, "source": d.source, "state": STATE_LABEL[d.state],
            "note": d.note})
    return pd.DataFrame(rows, columns=list(COLUMNS))


@st.cache_resource(show_spinner=False, max_entries=4)
def _history_at(root: str, version: str) -> pd.DataFrame:
    """:func:`history_frame` once per data-set version for the whole server (a rerun of this page with
    20,000 decisions then rebuilds nothing). Shared object: do not modify it."""
    ws = open_workspace(root)
    return history_frame(ws, ws.store.history())


def render() -> None:
    ws = get_workspace()
    st.title("History")
    st.caption("Every relabel, delete, restore and keep, **newest first**. Undo walks back one batch at a time; "
               "files only move when you apply or export (Export page or `python -m cleaning apply ROOT`).")
    c1, c2, _ = st.columns([1, 1, 4])
    if c1.button("↶ Undo last", disabled=not ws.store.can_undo(), key="hist_undo", width="stretch"):
        done = ws.store.undo()
        st.toast(f"Undid {len(done)} decision(s): {', '.join(d.path for d in done[:3])}")
        st.rerun()
    if c2.button("↷ Redo", disabled=not ws.store.can_redo(), key="hist_redo", width="stretch"):
        done = ws.store.redo()
        st.toast(f"Redid {len(done)} decision(s)")
        st.rerun()
    df = _history_at(str(ws.root), data_version(ws))
    if df.empty:
        st.info("No decisions yet. Relabel or delete images on the review pages, or with the CLI.")
        return
    show = st.segmented_control("Show", ["all", "active", "undone"], default="all", key="hist_filter")
    if show == "active":
        df = df[df["state"] == STATE_LABEL["active"]]
    elif show == "undone":
        df = df[df["state"] != STATE_LABEL["active"]]
    st.dataframe(df, hide_index=True, width="stretch", height=min(640, 38 + 52 * len(df)), row_height=50,
                 column_config=COLUMNS)


if __name__ == "__main__":
    run_page(render)
