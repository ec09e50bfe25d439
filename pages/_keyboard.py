"""Keyboard review: one image at a time, decided with single keys, on the Issues page.

The browser part is a tiny ``st.components.v2`` component in plain JavaScript (``static/review_keys.js``,
committed, no build step). It holds the next images (thumbnails as data URLs) and moves on the moment a key
is pressed; the decisions travel back as a growing log (the component's state value ``log``), which this
module records in the store at the start of the next script run — every decision is an ordinary, undoable
store decision, and a burst of keys faster than the script runs loses nothing.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError
from pages._common import show_error, thumb

#: Images sent ahead of / behind the current one, and how close to the end of that window the browser asks
#: for more (it keeps showing what it has while the next script run brings them).
AHEAD, BEHIND, REFILL_AT = 20, 2, 10
#: Decisions made in quick succession are sent to Python together once the keys rest this long.
DEBOUNCE_MS = 350
THUMB_PX = 420
NOTE = "keyboard review"

_JS = (Path(__file__).resolve().parent / "static" / "review_keys.js").read_text(encoding="utf-8")
_CSS = """
.rk { font-family: var(--st-font, sans-serif); outline: none; }
.rk-top { display: flex; gap: 1rem; font-weight: 600; margin-bottom: .4rem; }
.rk-state { color: #15803d; }
.rk-body { display: flex; gap: 1.5rem; align-items: flex-start; flex-wrap: wrap; }
.rk-fig { margin: 0; }
.rk-img { width: 420px; height: 420px; object-fit: contain; background: #fff; border: 1px solid #aab0ba; }
.rk-path { font-family: monospace; font-size: .85rem; margin-top: .3rem; }
.rk-info { min-width: 240px; line-height: 1.6; }
.rk-classes { padding-left: 0; list-style: none; columns: 2; font-family: monospace; }
.rk-keys { font-size: .85rem; color: #4b5563; }
"""
_COMPONENT = st.components.v2.component("cleaning_review_keys", js=_JS, css=_CSS)


def session_id(ids: Sequence[str], generation: int) -> str:
    """Names one snapshot of the queue (the browser starts over when it changes)."""
    return hashlib.sha1(("|".join(ids) + f"#{generation}").encode()).hexdigest()[:12]


def window(pos: int, total: int) -> tuple[int, int]:
    """``[start, stop)`` of the images sent to the browser around position ``pos``."""
    start = max(0, min(pos, total) - BEHIND)
    return start, min(total, start + BEHIND + AHEAD)


def new_entries(log: Mapping[str, Any] | None, session: str, done: int) -> list[dict[str, Any]]:
    """The log entries of this session not recorded yet (``done`` were)."""
    if not log or log.get("session") != session:
        return []
    return [dict(e) for e in list(log.get("entries") or [])[done:]]


def _state_log(key: str) -> Mapping[str, Any] | None:
    val = st.session_state.get(key)
    if val is None:
        return None
    log = val.get("log") if isinstance(val, Mapping) else getattr(val, "log", None)
    return log if isinstance(log, Mapping) else None


def _record(ws: Workspace, key: str, comp_key: str) -> None:
    """Record what the browser decided since the last run (``comp_key`` holds the component's state)."""
    session = st.session_state.get(f"{key}_session")
    log = _state_log(comp_key)
    done = int(st.session_state.get(f"{key}_done", 0))
    todo = new_entries(log, str(session), done)
    try:
        for e in todo:
            if e["action"] == "undo":
                ws.store.undo()
            else:
                ws.store.record([str(e["id"])], str(e["action"]), label=e.get("label"), source="user", note=NOTE)
            done += 1
    except CleaningError as err:
        st.session_state[f"{key}_error"] = err
    st.session_state[f"{key}_done"] = done
    if log and log.get("session") == session:
        st.session_state[f"{key}_pos"] = int(log.get("pos") or 0)


def _item(r: pd.Series, extra: Mapping[str, Any]) -> dict[str, Any]:
    src = "data:image/jpeg;base64," + base64.b64encode(thumb(str(r["abs_path"]), THUMB_PX)).decode()
    return {"id": r["item_id"], "src": src, "path": r["path"], "label": r["label"],
            "pred": extra.get("pred") or "", "sugg": extra.get("sugg") or "", "reason": extra.get("reason") or ""}


def keyboard_review(ws: Workspace, ids: Sequence[str], details: Mapping[str, Mapping[str, Any]],
                    classes: Sequence[str], key: str) -> None:
    """Review ``ids`` (a snapshot of the queue) one image at a time with the keyboard.

    ``details[item_id]`` may give ``pred`` (text), ``sugg`` (the suggested label) and ``reason``;
    ``classes`` are the labels behind the keys 1–9.
    """
    gen = int(st.session_state.get(f"{key}_gen", 0))
    session = session_id(ids, gen)
    if st.session_state.get(f"{key}_session") != session:
        st.session_state[f"{key}_session"] = session
        st.session_state[f"{key}_done"] = 0
        st.session_state[f"{key}_pos"] = 0
    comp_key = f"{key}_comp_{gen}"
    _record(ws, key, comp_key)
    err = st.session_state.pop(f"{key}_error", None)
    if err is not None:
        show_error(err)
    frame = ws.items_frame().set_index("item_id", drop=False)
    ids = [i for i in ids if i in frame.index]
    pos = int(st.session_state.get(f"{key}_pos", 0))
    start, stop = window(pos, len(ids))
    data = {"session": session, "pos": pos, "offset": start, "total": len(ids), "refill_at": REFILL_AT,
            "debounce_ms": DEBOUNCE_MS,
            "classes": list(classes)[:9],
            "items": [_item(frame.loc[i], details.get(i, {})) for i in ids[start:stop]]}
    _COMPONENT(key=comp_key, data=data, default={"log": None}, on_log_change=lambda: _record(ws, key, comp_key))
    done = int(st.session_state.get(f"{key}_done", 0))
    st.caption(f"{done} key decision(s) recorded in this round · each one is an ordinary decision: "
               "**↶ Undo** in the sidebar or **u** takes the last one back. Keys work anywhere on the page "
               "except while typing in a text box.")
    if st.button("Start a new round with what is left", key=f"{key}_restart",
                 help="Take a fresh snapshot of the queue (reviewed images drop out)"):
        st.session_state[f"{key}_gen"] = gen + 1
        st.session_state.pop(f"{key}_ids", None)  # review_queue keeps its snapshot there
        st.rerun()


def review_queue(ws: Workspace, shown: pd.DataFrame, items: pd.DataFrame, preds: Any, key: str) -> None:
    """Keyboard review of the Issues page's (filtered) queue: its single-image entries, worst first, taken
    as a snapshot when the mode starts so positions stay put while entries are reviewed."""
    ids_key = f"{key}_kbd_ids"
    if ids_key not in st.session_state:
        st.session_state[ids_key] = [str(i) for i in shown.loc[shown["kind"] == "item", "item_id"].dropna()]
    ids: list[str] = st.session_state[ids_key]
    details: dict[str, dict[str, Any]] = {}
    for e in shown.to_dict("records"):
        if e["kind"] != "item" or not isinstance(e.get("item_id"), str):
            continue
        p = preds.for_item(e["item_id"]) if preds is not None else None
        sugg = e.get("suggested_label")
        details[e["item_id"]] = {"pred": f"{p[0]} {p[1]:.0%}" if p else "",
                                 "sugg": sugg if isinstance(sugg, str) and sugg else "",
                                 "reason": str(e.get("reason") or "")}
    classes = sorted(set(items.loc[~items["deleted"], "label"]))
    if not ids:
        st.info("No single-image entries to review here (duplicate pairs are reviewed as cards).")
        return
    keep = st.session_state.setdefault(f"{key}_kbd_details", {})
    keep.update(details)  # a reviewed image leaves the queue but stays in the round: keep what it showed
    keyboard_review(ws, ids, keep, classes, f"{key}_kbd")
