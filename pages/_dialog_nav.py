"""Next / previous in the review dialog: the dialog walks the list it was opened from (the Issues queue, a
grid's images — a selection, a confusion cell, a class —, or the images nearest a clicked point on the map).

The walk lives in one session-state entry, ``{prefix, origin, order, pos, gen}``. Moving (a button or ←/→)
changes ``pos`` only: the dialog, a fragment, reruns alone and shows ``order[pos]``. A dialog opened by a
button is opened once, so every opening starts a fresh walk at the clicked image; a dialog held open by a
chart selection (``reset_key`` given) is opened again on every full rerun and keeps its walk while the
chart's counter is unchanged. Recording a decision or dismissing the dialog ends the walk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

NAV = "_review_nav"


def walk_position(order: Sequence[str], origin: str) -> tuple[list[str], int]:
    """The list to walk (duplicates dropped, order kept) and where ``origin`` sits in it; a list that does
    not hold ``origin`` is replaced by ``[origin]`` (nothing to walk)."""
    seq = list(dict.fromkeys(str(i) for i in order))
    return (seq, seq.index(origin)) if origin in seq else ([origin], 0)


def start(key_prefix: str, origin: str, order: Sequence[str] | None, reset_key: str | None) -> None:
    """Begin (or, for a chart-held dialog, keep) the walk of the dialog opened on ``origin``."""
    seq, pos = walk_position(order or [], origin)
    gen = st.session_state.get(reset_key) if reset_key else None
    nav: dict[str, Any] | None = st.session_state.get(NAV)
    if (reset_key and nav and nav["prefix"] == key_prefix and nav["origin"] == origin
            and nav["order"] == seq and nav["gen"] == gen):
        return
    st.session_state[NAV] = {"prefix": key_prefix, "origin": origin, "order": seq, "pos": pos, "gen": gen}


def current(key_prefix: str, origin: str) -> tuple[str, int, list[str]]:
    """(the image shown now, its position, the list) of the dialog opened on ``origin``."""
    nav = st.session_state.get(NAV)
    if not nav or nav["prefix"] != key_prefix or nav["origin"] != origin:
        return origin, 0, [origin]
    pos = min(max(int(nav["pos"]), 0), len(nav["order"]) - 1)
    return nav["order"][pos], pos, nav["order"]


def step(by: int) -> None:
    """Move the walk by ``by`` (clamped to the list). A button callback: runs before the dialog reruns."""
    nav = st.session_state.get(NAV)
    if nav:
        nav["pos"] = min(max(int(nav["pos"]) + by, 0), len(nav["order"]) - 1)


def end() -> None:
    st.session_state.pop(NAV, None)
