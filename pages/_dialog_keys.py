"""Single keys in the review dialog: a components-v2 listener (``static/dialog_keys.js``, plain JS, committed)
sends the key pressed; :func:`_dialog_key` turns it into the same decision as the button."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cleaning.data.workspace import Workspace
from pages import _dialog_nav, _writes

_DIALOG_KEYS = st.components.v2.component(
    "cleaning_dialog_keys", js=(Path(__file__).resolve().parent / "static" / "dialog_keys.js").read_text("utf-8"))


def dialog_keys(key: str) -> str:
    """Mount the dialog's key listener; the key pressed in this run ('' when none; ← / → give "prev" /
    "next")."""
    res = _DIALOG_KEYS(key=key, height=0, on_key_change=lambda: None)
    val = getattr(res, "key", None)
    return str(val.get("key", "")) if isinstance(val, dict) else ""


def _dialog_key(ws: Workspace, item_id: str, path: str, label: str, pressed: str, sugg: str | None,
                classes: list[str], reset_key: str | None) -> None:
    """Do what a key pressed in the review dialog means (see ``static/dialog_keys.js``)."""
    if pressed == "f":
        _writes.write(ws, [item_id], "keep", reset_key=reset_key, done=f"Marked {path} as fine")
    elif pressed == "d":
        _writes.write(ws, [item_id], "delete", reset_key=reset_key, done=f"Deleted {path}")
    elif pressed == "a" and sugg:
        _writes.write(ws, [item_id], "relabel", label=sugg, source="suggestion", reset_key=reset_key,
              done=f"Relabelled {path} → {sugg}")
    elif pressed.isdigit() and 0 < int(pressed) <= len(classes) and classes[int(pressed) - 1] != label:
        _writes.write(ws, [item_id], "relabel", label=classes[int(pressed) - 1], reset_key=reset_key,
              done=f"Relabelled {path} → {classes[int(pressed) - 1]}")
    elif pressed == "u" and ws.store.can_undo():
        done = ws.store.undo()
        _writes.bump(reset_key)
        st.session_state.pop(_dialog_nav.NAV, None)
        st.session_state[_writes._FLASH] = f"Undid {len(done)} decision(s)"
        st.rerun()
