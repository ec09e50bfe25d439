"""History: every decision, undo / redo. Nothing here touches image files."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages._common import get_workspace, run_page

STATE_LABEL = {"active": "✓ active", "undone": "↶ undone", "discarded": "✗ discarded (undone, then replaced)"}


def render() -> None:
    ws = get_workspace()
    st.title("History")
    st.caption("Every relabel, delete, restore and keep, oldest first. Undo walks back one batch at a time; "
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
    hist = ws.store.history()
    if not hist:
        st.info("No decisions yet. Relabel or delete images on the review pages, or with the CLI.")
        return
    df = pd.DataFrame([{
        "#": d.seq, "batch": d.batch, "when": d.created_at.replace("T", " ")[:19], "action": d.action,
        "new label": d.label or "", "image": d.path, "source": d.source, "state": STATE_LABEL[d.state],
        "note": d.note} for d in reversed(hist)])
    show = st.segmented_control("Show", ["all", "active", "undone"], default="all", key="hist_filter")
    if show == "active":
        df = df[df["state"] == STATE_LABEL["active"]]
    elif show == "undone":
        df = df[df["state"] != STATE_LABEL["active"]]
    st.dataframe(df, hide_index=True, width="stretch", height=min(600, 38 + 35 * len(df)))


if __name__ == "__main__":
    run_page(render)
