"""Data out through the browser (the Export page's Download tab): the cleaned data set as a zip, the
issue table and the decisions log as CSV, a training run's model (``export.pkl``).

Files are built only when their button is clicked (``st.download_button`` with a callable, on its own
thread): the zip is written to a temporary file on disk first, so building it never holds the data set
in memory; the finished zip is handed to Streamlit once and the file removed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from cleaning.data.bundle import csv_bytes, decisions_frame, export_zip
from cleaning.data.workspace import Workspace
from cleaning.model.runs import list_runs
from pages import _review as review
from pages._common import dataset_name, hosted


def zip_bytes(ws: Workspace) -> bytes:
    """The cleaned data set as zip bytes (``<label>/<file>`` + ``labels.csv``), built via a temp file.

    Hosted mode builds it inside the session's own folder (so it counts against the visitor's disk cap);
    local mode in the system's temporary folder."""
    scratch = ws.root.parent if hosted() else Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix=".download-", dir=scratch) as tmp:
        out = Path(tmp) / "clean.zip"
        export_zip(ws, out, scratch=tmp)
        return out.read_bytes()


def downloads_section(ws: Workspace, n_live: int) -> None:
    """Download buttons for everything a visitor takes home."""
    name = dataset_name(ws)
    st.markdown(f"**The cleaned data set** — {n_live} image(s) as `<label>/<file>` with their current labels "
                "plus `labels.csv` (`path,label,…`); deleted images are left out. Built when you click.")
    st.download_button("Download the cleaned data set (.zip)", data=lambda: zip_bytes(ws),
                       file_name=f"{name}-clean.zip", mime="application/zip", key="dl_zip", type="primary",
                       icon=":material/folder_zip:", on_click="ignore")
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Decisions log** — every relabel, delete, restore and keep, with when and why.")
        st.download_button("Download the decisions (.csv)", data=lambda: csv_bytes(decisions_frame(ws)),
                           file_name=f"{name}-decisions.csv", mime="text/csv", key="dl_decisions",
                           on_click="ignore")
    with c2:
        st.markdown("**Issue table** — every image the scan flagged, with its issue and score.")
        table = review.issues(ws, compute=False)
        if table is None:
            st.caption("Not computed in this session yet: open the **Issues** page once.")
        else:
            st.download_button("Download the issue table (.csv)", data=csv_bytes(table),
                               file_name=f"{name}-issues.csv", mime="text/csv", key="dl_issues",
                               on_click="ignore")
    runs = [r for r in list_runs(ws) if r.model_path and Path(r.model_path).is_file()]
    st.markdown("**Trained model** — fastai's `export.pkl`; load it with `fastai.learner.load_learner`.")
    if not runs:
        st.caption("No trained model yet: train one on the **Train** page.")
        return
    ids = [r.run_id for r in runs]
    chosen = st.selectbox("Run", ids, index=0, key="dl_run") if len(runs) > 1 else ids[0]
    path = Path(next(r for r in runs if r.run_id == chosen).model_path)
    st.download_button(f"Download the model of run {chosen} (export.pkl, {path.stat().st_size / 2**20:.0f} MB)",
                       data=path.read_bytes, file_name="export.pkl",
                       mime="application/octet-stream", key="dl_model", on_click="ignore")
