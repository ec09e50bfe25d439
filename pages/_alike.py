"""A relabel to a class name that only looks new (``Fruit`` beside ``fruit``) asks first: use the existing
class, start the new one anyway, or cancel. Pages call :func:`relabel_or_ask` and then :func:`ask_alike`."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from cleaning.data.labels import similar_label
from cleaning.data.workspace import Workspace
from pages import _writes


def known_labels(ws: Workspace) -> set[str]:
    """Every class name in use now or that an image came in with."""
    frame = _writes.items(ws)
    return set(frame["label"]) | set(frame["orig_label"])


def relabel_or_ask(ws: Workspace, item_ids: Sequence[str], new: str, key: str, **kw: object) -> None:
    """Record a relabel to ``new``, unless ``new`` only looks different from an existing class (``Fruit``
    beside ``fruit``): then :func:`ask_alike` asks first, in this run and the next ones."""
    new = str(new).strip()
    other = similar_label(new, known_labels(ws))
    if other is None:
        _writes.write(ws, item_ids, "relabel", label=new, **kw)  # type: ignore[arg-type]
        return
    st.session_state[f"{key}_alike"] = (new, other, list(item_ids))


def ask_alike(ws: Workspace, key: str, **kw: object) -> None:
    """The pending question of :func:`relabel_or_ask`: use the existing class, start the new one, or cancel."""
    pending = st.session_state.get(f"{key}_alike")
    if not pending:
        return
    new, other, ids = pending
    st.warning(f"A class **“{other}”** already exists; “{new}” differs from it only in case, spacing or accents. "
               "Starting it would split one class in two.", icon=":material/warning:")
    a, b, c = st.columns(3)
    if a.button(f"Use “{other}”", key=f"{key}_alike_use", type="primary", width="stretch"):
        st.session_state.pop(f"{key}_alike", None)
        _writes.write(ws, ids, "relabel", label=other, **kw)  # type: ignore[arg-type]
    if b.button(f"Start “{new}” anyway", key=f"{key}_alike_new", width="stretch"):
        st.session_state.pop(f"{key}_alike", None)
        _writes.write(ws, ids, "relabel", label=new, **kw)  # type: ignore[arg-type]
    if c.button("Cancel", key=f"{key}_alike_cancel", width="stretch"):
        st.session_state.pop(f"{key}_alike", None)
        st.rerun()
