"""Hover preview on the Embedding map: a tiny components-v2 component (``static/hover_preview.js``) hooks
Plotly's hover event in the browser and shows the image beside the pointer with its path, label →
prediction and issue — no Streamlit rerun, so the click → dialog path is untouched. The figure carries no
per-point text (at 20,000 points hover texts were ≈2 MB of the 2.6 MB chart every page load waited for): a
point's ``customdata`` is its row in the map's points, and the preview reads the row's text and thumbnail
from its own data (:func:`hover_rows`, columns per row, labels as codes into one list of names).

Where the thumbnail comes from depends on the map's size. Up to :data:`INLINE_UP_TO` points every thumbnail
travels inside the page as a small data URL (≈1.5 KB each: nothing is fetched on hover). Above that, shipping
them all would mean tens of MB per page and a minute of thumbnailing before the map shows, so the browser
fetches the one thumbnail hovered from Streamlit's static file serving (``server.enableStaticServing``,
``.streamlit/config.toml``): ``static/thumbs/`` beside ``dashboard.py``, named by the image's content hash, so
every data set and visitor shares them and a changed file gets a new name. They are written by a background
thread the first time a large map is shown (missing ones only); until an image's thumbnail exists its
preview shows the text alone. Each row's text and thumbnail name are one JSON file per map
(``static/thumbs/maps/``, named by its content), fetched by the browser once after the chart is drawn.
Without static serving a large map's preview shows the text only, sent inline like a small map's data;
so does hosted mode, where static files would be readable by anyone holding their URL and would outlive
the visitor's private workspace.

What travels with every script run is small: the component's arguments are a map version and, for a large
map, the JSON file's URL. Inline data (thumbnails, text) is sent once per browser session and map version
(the browser keeps it; if it lacks it it asks again with a trigger), not on every rerun: re-sending
megabytes of equal arguments still costs the server their serialising and hashing on every click.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from pages._common import hosted, thumb

INLINE_UP_TO = int(os.environ.get("CLEANING_HOVER_INLINE_UP_TO", "2000"))
THUMB_PX = 72
STATIC_THUMBS = Path(__file__).resolve().parent.parent / "static" / "thumbs"
MAPS = STATIC_THUMBS / "maps"  # one JSON file per large map: its rows' text and thumbnail names
URL_PREFIX = "app/static/thumbs/"  # relative to the page, as Streamlit's docs give static URLs
_JS = (Path(__file__).resolve().parent / "static" / "hover_preview.js").read_text(encoding="utf-8")
_COMPONENT = st.components.v2.component("cleaning_hover_preview", js=_JS)
_WRITERS: dict[str, threading.Thread] = {}
_LOCK = threading.Lock()


def thumb_name(sha256: str) -> str:
    """``ab/abcdef….jpg``: the static thumbnail's path under ``static/thumbs`` (80 bits of the content hash)."""
    return f"{sha256[:2]}/{sha256[:20]}.jpg"


def _publish(dest: Path, write: Callable[[Path], object]) -> None:
    """Make ``dest`` appear whole: ``write`` fills a file beside it (named by process and thread, so two
    app processes serving one folder never share one), which is then renamed over it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
    write(tmp)
    os.replace(tmp, dest)


def write_static_thumbs(jobs: list[tuple[str, str]], folder: Path = STATIC_THUMBS) -> int:
    """Write the missing thumbnails of ``jobs`` = [(abs_path, sha256)]; returns how many were written.
    Each file appears whole (written beside, then renamed), so a browser never fetches half a JPEG."""
    from cleaning.data.images import make_thumbnail

    written = 0
    for abs_path, sha in jobs:
        dest = folder / thumb_name(sha)
        if dest.exists():
            continue
        _publish(dest, lambda tmp, p=abs_path: make_thumbnail(p, THUMB_PX).convert("RGB").save(tmp, "JPEG", quality=80))
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


def hover_rows(pts: pd.DataFrame) -> dict:
    """The preview's text of every map point, by row of ``pts`` (the figure's ``customdata``), as columns:
    ``path``; ``label``, ``pred`` and ``issue`` as codes into ``names``; ``conf`` the prediction's
    confidence in whole percent (-1: none). Codes keep it small: a label is written once, not per point."""
    names: dict[str, int] = {}

    def codes(col: str) -> list[int]:
        return [names.setdefault(str(v), len(names)) for v in pts[col]]

    conf = pd.to_numeric(pts["confidence"], errors="coerce") if "confidence" in pts else pd.Series(float("nan"), index=pts.index)
    rows = {"path": [str(p) for p in pts["path"]], "label": codes("label"),
            "pred": codes("pred") if "pred" in pts else [], "issue": codes("issue") if "issue" in pts else [],
            "conf": [int(round(c * 100)) if c == c else -1 for c in conf.to_numpy(dtype=float)]}
    return {"names": list(names), **rows}


@st.cache_resource(show_spinner=False, max_entries=8)
def hover_items(root: str, version: str, token: str, method: str, _pts: pd.DataFrame,
                _items: pd.DataFrame) -> dict:
    """The preview's data for one map, once per map and data-set version (shared by every session;
    ``_pts``/``_items`` are not hashed: the other arguments identify them). Lists follow the rows of ``_pts``:

    * ``{"version", "rows": hover_rows, "thumbs": [data URL]}`` — small maps;
    * ``{"version", "map": URL of {"rows": hover_rows, "thumbs": [thumbnail name or ""]}, "prefix": URL_PREFIX}``
      — large maps with static serving (local mode); the JSON file is written here, its missing thumbnails
      by a background thread;
    * ``{"version", "rows": hover_rows}`` — large maps otherwise (text-only preview).
    """
    pts = _pts
    rows = _items.set_index("item_id").loc[pts["item_id"], ["abs_path", "sha256"]]
    text = hover_rows(pts)
    inline = len(pts) <= INLINE_UP_TO
    # hosted: a visitor's images must not be served to anyone holding a URL, nor outlive their workspace
    served = not inline and static_serving() and not hosted()
    key = hashlib.sha256(f"{root}\0{version}\0{token}\0{method}\0{len(pts)}".encode()).hexdigest()[:16]
    if inline:
        return {"version": key, "rows": text, "thumbs": [
            "data:image/jpeg;base64," + base64.b64encode(thumb(ap, THUMB_PX)).decode() for ap in rows["abs_path"]]}
    if not served:
        return {"version": key, "rows": text}
    shas = [sha if isinstance(sha, str) and sha else "" for sha in rows["sha256"]]
    names = [thumb_name(sha) if sha else "" for sha in shas]
    _start_writer(f"{root}#{version}", [(str(ap), sha) for ap, sha in zip(rows["abs_path"], shas) if sha])
    return {"version": key, "map": URL_PREFIX + "maps/" + write_map({"rows": text, "thumbs": names}),
            "prefix": URL_PREFIX}


def write_map(data: dict, folder: Path | None = None) -> str:
    """Write a map's preview data (``{"rows", "thumbs"}``) as a JSON file named by its content into
    ``folder`` (default :data:`MAPS`; once); returns its name."""
    folder = folder or MAPS
    body = json.dumps(data, separators=(",", ":")).encode()
    name = hashlib.sha256(body).hexdigest()[:20] + ".json"
    dest = folder / name
    if not dest.exists():
        _publish(dest, lambda tmp: tmp.write_bytes(body))
    return name


SENT = "_hover_sent"  # session state: the map version whose inline data this session's browser has


def preview_args(data: dict) -> dict:
    """The component's arguments for this run: ``data`` without its inline data (rows, thumbnails) when this
    session's browser already got it for this map version."""
    if "rows" not in data and "thumbs" not in data:
        return data
    if st.session_state.get(SENT) == data["version"]:
        return {"version": data["version"], "inline": True}
    st.session_state[SENT] = data["version"]
    return data


def _resend() -> None:  # the browser asked again: it lacks the thumbnails (a reload, a lost message)
    st.session_state.pop(SENT, None)


def hover_preview(data: dict) -> None:
    """Mount the preview (it renders nothing of its own until a point is hovered)."""
    _COMPONENT(key="emb_hover_preview", data=preview_args(data), height=0, on_need_change=_resend)
