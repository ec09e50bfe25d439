"""Hover preview on the Embedding map: a tiny components-v2 component (``static/hover_preview.js``) hooks
Plotly's hover event in the browser and shows the image beside the pointer — no Streamlit rerun, so the
click → dialog path is untouched. Thumbnails travel as small data URLs up to :data:`THUMBS_UP_TO` points
(≈1.5 KB each); above that the preview shows path, label and prediction only (a click opens the image)."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
import streamlit as st

from pages._common import thumb

THUMBS_UP_TO = 2000
THUMB_PX = 72
_JS = (Path(__file__).resolve().parent / "static" / "hover_preview.js").read_text(encoding="utf-8")
_COMPONENT = st.components.v2.component("cleaning_hover_preview", js=_JS)


@st.cache_resource(show_spinner=False, max_entries=8)
def hover_items(root: str, version: str, token: str, method: str, _pts: pd.DataFrame,
                _items: pd.DataFrame) -> dict[str, list[str]]:
    """``{item_id: [path, label, prediction, thumbnail data URL or ""]}``, once per map and data-set version
    (shared by every session; ``_pts``/``_items`` are not hashed: the other arguments identify them)."""
    pts = _pts
    abs_paths = _items.set_index("item_id").loc[pts["item_id"], "abs_path"]
    with_thumbs = len(pts) <= THUMBS_UP_TO
    out: dict[str, list[str]] = {}
    for r, ap in zip(pts.itertuples(index=False), abs_paths):
        conf = getattr(r, "confidence", float("nan"))
        pred = f"{r.pred} {conf:.0%}" if conf == conf else str(r.pred)
        src = ("data:image/jpeg;base64," + base64.b64encode(thumb(ap, THUMB_PX)).decode()) if with_thumbs else ""
        out[str(r.item_id)] = [str(r.path), str(r.label), pred, src]
    return out


def hover_preview(items: dict[str, list[str]]) -> None:
    """Mount the preview (it renders nothing of its own until a point is hovered)."""
    _COMPONENT(key="emb_hover_preview", data={"items": items}, height=0)
