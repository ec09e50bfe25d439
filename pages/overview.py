"""Overview: the data set in use, images per class, unusable files, decisions so far."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cleaning.review.figures import class_counts_frame
from pages._common import NoDataset, get_workspace, hosted, is_demo, run_page, thumb
from pages._data_in import data_in_panel
from pages._writes import items as cached_items


def bad_files_frame(bad: list) -> pd.DataFrame:
    """kind, file, reason: one row per file the scan could not use."""
    return pd.DataFrame([{"kind": b.kind, "file": b.path, "reason": b.reason} for b in bad],
                        columns=["kind", "file", "reason"])


def render() -> None:
    st.title("Overview")
    try:
        ws = get_workspace()
    except NoDataset:
        ws = None
    data_in_panel(ws)
    if ws is None:
        return
    if not hosted():
        st.caption(f"`{ws.root}` — state (store, quarantine, caches) in `{ws.state_dir}`")
    if is_demo(ws) and not hosted():
        st.info("This is a writable copy of the **bundled demo**: 4 classes of real photos with planted problems "
                "(wrong folders, off-topic photos, duplicates, a broken file, a blank one). "
                "Open your own data set from the sidebar, or run `streamlit run dashboard.py -- ROOT`.")
    items = cached_items(ws)  # once per data-set version for the whole server (do not modify)
    bad = ws.bad_files()
    live = items[~items["deleted"]]
    c = st.columns(5)
    c[0].metric("Images", len(live))
    c[1].metric("Classes", live["label"].nunique())
    c[2].metric("Unusable files", len([b for b in bad if b.kind != "skipped"]))
    c[3].metric("Deleted", int(items["deleted"].sum()))
    c[4].metric("Decisions", ws.store.decision_count())
    if items.empty:
        st.warning("No images found. The folder must be laid out as ROOT/<label>/<image>.")
        return
    st.subheader("Images per class")
    counts = class_counts_frame(items)  # a table with in-cell bars: no chart library for the landing page
    st.dataframe(counts, hide_index=True, width="stretch", height=min(600, 38 + 35 * len(counts)),
                 column_config={"images": st.column_config.ProgressColumn(
                     "images", format="%d", min_value=0, max_value=int(max(1, counts["images"].max())),
                     help="images in the class now (kept, and relabelled into it)"),
                     "relabelled into": st.column_config.NumberColumn("relabelled into", format="%d"),
                     "deleted": st.column_config.NumberColumn("deleted", format="%d")})
    st.subheader("Files that are not usable images")
    if bad:  # full width, the kind first: a narrow column cut the reason off and hid the kind
        st.dataframe(bad_files_frame(bad), hide_index=True, width="stretch", height=min(400, 38 + 35 * len(bad)),
                     column_config={"kind": st.column_config.TextColumn("kind", width="small"),
                                    "file": st.column_config.TextColumn("file", width="medium"),
                                    "reason": st.column_config.TextColumn("reason", width="large")})
    else:
        st.success("Every file is a readable image.")
    st.subheader("A look at each class")
    for label in sorted(live["label"].unique()):
        sample = live[live["label"] == label].head(8)
        st.markdown(f"**{label}** · {int((live['label'] == label).sum())} images")
        cols = st.columns(8)
        for col, r in zip(cols, sample.itertuples(index=False)):
            col.image(thumb(r.abs_path, 160), caption=r.path.split("/", 1)[-1], width="stretch")


if __name__ == "__main__":
    run_page(render)
