"""What every review surface shares: the items frame cached per data-set version, and recording a decision
(then rerunning, with a one-line toast of what happened). Below the review component, the look-alike question
and the dialog's keys, so none of them imports another."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError
from pages import _dialog_nav
from pages._common import open_workspace, show_error

_FLASH = "_review_flash"


# ---- shared data (read-only; one copy per data-set version for the whole server) ---------------------
def data_version(ws: Workspace) -> str:
    """Changes whenever a decision is recorded, undone or redone, or the folder is rescanned."""
    return ws.store.files_key()


@st.cache_resource(show_spinner=False, max_entries=16)
def _items_at(root: str, version: str) -> pd.DataFrame:
    return open_workspace(root).items_frame()  # after a decision: refolded, not re-read (Workspace.items_frame)


def items(ws: Workspace) -> pd.DataFrame:
    """``ws.items_frame()`` cached per data-set version (shared object: do not modify it)."""
    return _items_at(str(ws.root), data_version(ws))


@st.cache_resource(show_spinner=False, max_entries=16)
def _labels_at(root: str, version: str) -> tuple[str, ...]:
    frame = _items_at(root, version)
    return tuple(sorted(set(frame.loc[~frame["deleted"].to_numpy(dtype=bool), "label"])))


def live_labels(ws: Workspace) -> tuple[str, ...]:
    """The sorted labels of the images not deleted, once per data-set version (the dialog asks on every
    click: at 20,000 images a fresh set costs more than the rest of the dialog)."""
    return _labels_at(str(ws.root), data_version(ws))


# ---- writing ----------------------------------------------------------------------------------------
def bump(reset_key: str | None) -> None:
    """Advance the counter ``reset_key`` (part of a chart's key): the chart comes back unselected."""
    if reset_key:
        st.session_state[reset_key] = int(st.session_state.get(reset_key, 0)) + 1


def write(ws: Workspace, item_ids: Sequence[str], action: str, label: str | None = None,
          source: str = "user", note: str = "", reset_key: str | None = None, done: str = "") -> None:
    """Record one decision batch, then rerun the whole app (closing any dialog). Errors are shown."""
    try:
        batch = ws.store.record(list(item_ids), action, label=label, source=source, note=note)
    except CleaningError as e:
        show_error(e)
        return
    bump(reset_key)
    st.session_state.pop(_dialog_nav.NAV, None)  # the rerun closes the dialog: its next/previous walk ends
    st.session_state[_FLASH] = (done or f"{action}: {len(item_ids)} image(s)") if batch else "Nothing changed."
    st.rerun()


def flash() -> None:
    """Show (once) what the last write did, with the way back. Called by the component on every page."""
    msg = st.session_state.pop(_FLASH, None)
    if msg:
        st.toast(f"{msg} · undo in the sidebar", icon="✅")
