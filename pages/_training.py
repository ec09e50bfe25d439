"""Training in the background, visible on every page: the server's job registry, the sidebar status with a
Stop button, and the Start call the Train page uses.

A run lives in a :class:`cleaning.model.trainrun.TrainJob` (a thread) held by ``st.cache_resource``, not in
the script run that started it: switching page, closing the tab or another visitor's click do not stop it.
The sidebar shows it through a fragment that reruns itself once a second while the run is active.
"""

from __future__ import annotations

import streamlit as st

from cleaning.data.workspace import Workspace
from cleaning.model.train import TrainSettings
from cleaning.model.trainrun import TrainJob, start_training


@st.cache_resource(show_spinner=False)
def train_jobs() -> dict[str, TrainJob]:
    """``{data-set root: its latest training job}`` for the whole server."""
    return {}


def job_of(ws: Workspace) -> TrainJob | None:
    return train_jobs().get(str(ws.root))


def start(ws: Workspace, settings: TrainSettings) -> TrainJob:
    """Start a run for this data set unless one is active; returns the active or new job."""
    job = job_of(ws)
    if job is not None and job.active:
        return job
    job = train_jobs()[str(ws.root)] = start_training(ws, settings)
    return job


def _status(root: str, polling: bool) -> None:
    job = train_jobs().get(root)
    if job is None:
        return
    snap = job.snapshot()
    if polling and not job.active:
        st.rerun()  # finished: redraw the whole page once (the new run shows), without the timer
    if snap["state"] in ("waiting", "running"):
        st.caption(f"**Training** ({snap['mode']}) · {snap['seconds']:.0f}s")
        st.progress(snap["fraction"], text=snap["text"])
        st.button("Stop training", key="train_stop_sidebar", on_click=job.stop.set, width="stretch",
                  icon=":material/stop:", disabled=job.stop.is_set(),
                  help="Stops after the current batch; the best model so far is kept and the run is recorded "
                       "as stopped")
    elif not st.session_state.get(f"_train_seen_{snap['run_id'] or id(job)}"):
        if snap["state"] == "failed":
            st.error(f"Training failed: {snap['error']}", icon="⚠️")
        else:
            st.caption(f"**Training** {snap['text']}")
        if st.button("Dismiss", key="train_dismiss"):
            st.session_state[f"_train_seen_{snap['run_id'] or id(job)}"] = True
            st.rerun()


def sidebar_status(ws: Workspace) -> None:
    """The training status in the sidebar of every page (refreshes itself while a run is active)."""
    job = job_of(ws)
    if job is None:
        return
    active = job.active
    st.fragment(_status, run_every=1.0 if active else None)(str(ws.root), active)
