"""Hover preview on the Embedding map: a tiny components-v2 component (``static/hover_preview.js``) hooks
Plotly's hover event in the browser and shows the image beside the pointer — no Streamlit rerun, so the
click → dialog path is untouched.

Where the thumbnail comes from depends on the map's size. Up to :data:`INLINE_UP_TO` points every thumbnail
travels inside the page as a small data URL (≈1.5 KB each: nothing is fetched on hover). Above that, shipping
them all would mean tens of MB per page and a minute of thumbnailing before the map shows, so the page
carries only a short file name per point and the browser fetches the one thumbnail hovered from Streamlit's
static file serving (``server.enableStaticServing``, ``.streamlit/config.toml``): ``static/thumbs/`` beside
``dashboard.py``, named by the image's content hash, so every data set and visitor shares them and a changed
file gets a new name. They are written by a background thread the first time a large map is shown (missing
ones only); until an image's thumbnail exists its preview shows the text alone. Without static serving a
large map's preview shows path, label and prediction only; so does hosted mode, where static files would
be readable by anyone holding their URL and would outlive the visitor's private workspace.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import pandas as pd
import streamlit as st

from pages._common import hosted, thumb

INLINE_UP_TO = int(os.environ.get("CLEANING_HOVER_INLINE_UP_TO", "2000"))
THUMB_PX = 72
STATIC_THUMBS = Path(__file__).resolve().parent.parent / "static" / "thumbs"
URL_PREFIX = "app/static/thumbs/"  # relative to the page, as Streamlit's docs give static URLs
_JS = (Path(__file__).resolve().parent / "static" / "hover_preview.js").read_text(encoding="utf-8")
_COMPONENT = st.components.v2.component("cleaning_hover_preview", js=_JS)
_WRITERS: dict[str, threading.Thread] = {}
_LOCK = threading.Lock()


def thumb_name(sha256: str) -> str:
    """``ab/abcdef….jpg``: the static thumbnail's path under ``static/thumbs`` (80 bits of the content hash)."""
    return f"{sha256[:2]}/{sha256[:20]}.jpg"


def write_static_thumbs(jobs: list[tuple[str, str]], folder: Path = STATIC_THUMBS) -> int:
    """Write the missing thumbnails of ``jobs`` = [(abs_path, sha256)]; returns how many were written.
    Each file appears whole (written beside, then renamed), so a browser never fetches half a JPEG."""
    from cleaning.data.images import make_thumbnail

    written = 0
    for abs_path, sha in jobs:
        dest = folder / thumb_name(sha)
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(f".{threading.get_ident()}.part")
        make_thumbnail(abs_path, THUMB_PX).convert("RGB").save(tmp, "JPEG", quality=80)
        os.replace(tmp, dest)
        written += 1
    return written


def _start_writer(key: str, jobs: list[tuple[str, str]]) -> None:
    with _LOCK:
        running = _WRITERS.get(key)
        if running is not None and running.is_alive():
            return
        t = threading.Thread(target=write_static_thumbs, args=(jobs,), name=f"hover-thumbs-{key[:12]}", daemon=True)
        _WRITERS[key] = t
        t.start()


def static_serving() -> bool:
    return bool(st.get_option("server.enableStaticServing"))


@st.cache_resource(show_spinner=False, max_entries=8)
def hover_items(root: str, version: str, token: str, method: str, _pts: pd.DataFrame,
                _items: pd.DataFrame) -> dict[str, list[str]]:
    """``{item_id: [path, label, prediction, thumbnail]}`` once per map and data-set version (shared by every
    session; ``_pts``/``_items`` are not hashed: the other arguments identify them). The thumbnail is a data
    URL, a static-file URL (large maps), or "" (large map, no static serving)."""
    pts = _pts
    rows = _items.set_index("item_id").loc[pts["item_id"], ["abs_path", "sha256"]]
    inline = len(pts) <= INLINE_UP_TO
    # hosted: a visitor's images must not be served to anyone holding a URL, nor outlive their workspace
    served = not inline and static_serving() and not hosted()
    out: dict[str, list[str]] = {}
    for r, ap, sha in zip(pts.itertuples(index=False), rows["abs_path"], rows["sha256"]):
        conf = getattr(r, "confidence", float("nan"))
        pred = f"{r.pred} {conf:.0%}" if conf == conf else str(r.pred)
        if inline:
            src = "data:image/jpeg;base64," + base64.b64encode(thumb(ap, THUMB_PX)).decode()
        else:
            src = URL_PREFIX + thumb_name(str(sha)) if served and isinstance(sha, str) and sha else ""
        out[str(r.item_id)] = [str(r.path), str(r.label), pred, src]
    if served:
        jobs = [(str(ap), str(sha)) for ap, sha in zip(rows["abs_path"], rows["sha256"])
                if isinstance(sha, str) and sha]
        _start_writer(f"{root}#{version}", jobs)
    return out


def hover_preview(items: dict[str, list[str]]) -> None:
    """Mount the preview (it renders nothing of its own until a point is hovered)."""
    _COMPONENT(key="emb_hover_preview", data={"items": items}, height=0)
