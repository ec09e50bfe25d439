"""Deleted: every deleted and quarantined image, searchable; restore one by one or all at once.

A restore is a recorded decision (undoable, one batch for a bulk restore); a file in the quarantine comes
back byte-identical on the next apply (Export page or ``python -m cleaning apply ROOT``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cleaning.review.trash import STATES, deleted_frame
from pages import _review as review
from pages._common import get_workspace, open_workspace, run_page

K = "del"


@st.cache_resource(show_spinner=False, max_entries=4)
def _deleted_at(root: str, version: str) -> pd.DataFrame:
    """Every deleted image (:func:`deleted_frame`, no search), once per data-set version for the whole
    server. Shared object: do not modify it."""
    ws = open_workspace(root)
    return deleted_frame(review.items(ws), ws.store.history())


def render() -> None:
    ws = get_workspace()
    st.title("Deleted")
    st.caption("Every image you (or a bulk action, the autofix or the CLI) deleted, newest first — also those "
               "already moved to the quarantine. **Restore** brings one back; nothing here is ever erased. "
               "A quarantined file returns byte-identical on the next apply (Export page).")
    review.flash()
    search = st.text_input("Search", key=f"{K}_search", placeholder="file name, class, note or source query",
                           help="All words must match (case-insensitive)")
    everything = _deleted_at(str(ws.root), review.data_version(ws))
    frame = deleted_frame(review.items(ws), ws.store.history(), search) if search.strip() else everything
    c = st.columns(4)
    c[0].metric("Deleted", int((everything["state"] != "restoring").sum()))
    c[1].metric("In the quarantine", int((everything["state"] == "quarantined").sum()))
    c[2].metric("Restored, back on apply", int((everything["state"] == "restoring").sum()))
    c[3].metric("Shown", len(frame))
    if everything.empty:
        st.success("Nothing is deleted.")
        return
    if frame.empty:
        st.info("No deleted image matches this search.")
        return
    dead = list(frame.loc[frame["state"] != "restoring", "item_id"])
    if dead:
        _restore_all(ws, dead, bool(search.strip()))
    with st.expander(f"As a table ({len(frame)})"):
        st.dataframe(frame.assign(state=frame["state"].map(STATES))
                     [["path", "label", "orig_label", "state", "deleted_at", "source", "note"]],
                     hide_index=True, width="stretch",
                     column_config={"path": st.column_config.TextColumn("image", width="large"),
                                    "orig_label": "came in as", "deleted_at": "deleted (UTC)"})
    picked = review.item_grid(ws, list(frame["item_id"]), f"{K}_grid", page_size=24, columns=6,
                              compute_predictions=False)
    if picked:
        review.bulk_bar(ws, picked, f"{K}_bulk")


def _restore_all(ws, ids: list[str], filtered: bool) -> None:  # noqa: ANN001 — a Workspace
    """One button for every deleted image shown, after a confirmation; one batch (one undo)."""
    what = f"Restore all {len(ids)} shown" if filtered else f"Restore all {len(ids)}"
    if st.button(what, key=f"{K}_all", icon=":material/restore_from_trash:",
                 help="Recorded as one decision: one undo takes it back"):
        st.session_state[f"{K}_all_pending"] = tuple(sorted(ids))
    if st.session_state.get(f"{K}_all_pending") != tuple(sorted(ids)):
        return
    st.warning(f"Restore {len(ids)} image(s)? This is one decision: one undo takes it all back. Files in the "
               "quarantine come back on the next apply.")
    y, n, _ = st.columns([1, 1, 3])
    if y.button(f"Yes, restore {len(ids)} image(s)", key=f"{K}_all_yes", type="primary"):
        st.session_state.pop(f"{K}_all_pending", None)
        review.write(ws, ids, "restore", source="bulk", done=f"Restored {len(ids)} image(s)")
    if n.button("Cancel", key=f"{K}_all_no"):
        st.session_state.pop(f"{K}_all_pending", None)
        st.rerun()


if __name__ == "__main__":
    run_page(render)
