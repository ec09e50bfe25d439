"""Overview: the data set in use, images per class, unusable files, decisions so far."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cleaning.review.figures import class_counts_figure
from pages._common import get_workspace, is_demo, run_page, thumb


def render() -> None:
    ws = get_workspace()
    st.title("Overview")
    st.caption(f"`{ws.root}` — state (store, quarantine, caches) in `{ws.state_dir}`")
    if is_demo(ws):
        st.info("This is a writable copy of the **bundled demo**: 4 classes of real photos with planted problems "
                "(wrong folders, off-topic photos, duplicates, a broken file, a blank one). "
                "Open your own data set from the sidebar, or run `streamlit run dashboard.py -- ROOT`.")
    items = ws.items_frame()
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
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Images per class")
        st.plotly_chart(class_counts_figure(items), key="class_counts")
    with right:
        st.subheader("Files that are not usable images")
        if bad:
            st.dataframe(pd.DataFrame([{"file": b.path, "reason": b.reason, "kind": b.kind} for b in bad]),
                         hide_index=True, height=min(400, 38 + 35 * len(bad)))
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
