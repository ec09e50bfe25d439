"""What every page shares: which data set is open, the sidebar frame, errors, thumbnails.

Pages are thin: widgets in, one call into ``cleaning``, render out. This module is the only place that
turns the library's :class:`~cleaning.errors.CleaningError` into a message on screen.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError

ROOT_KEY = "dataset_root"


def root_from_argv(argv: list[str] | None = None) -> str | None:
    """``streamlit run dashboard.py -- ROOT`` → ROOT (also ``CLEANING_ROOT`` in the environment)."""
    if argv is None:  # `streamlit run dashboard.py -- ROOT` sets sys.argv = ["dashboard.py", ROOT]
        argv = sys.argv[1:] if Path(sys.argv[0]).name == "dashboard.py" else []
    args = [a for a in argv if not a.startswith("-")]
    return args[0] if args else os.environ.get("CLEANING_ROOT") or None


@st.cache_resource(show_spinner=False)
def open_workspace(root: str) -> Workspace:
    """One Workspace per data set for the whole server (the store is thread-safe)."""
    return Workspace.open(root)


@st.cache_resource(show_spinner="Copying the demo data set…")
def demo_root() -> str:
    from cleaning.data.demo import prepare_demo

    return str(prepare_demo())


def current_root() -> str:
    if ROOT_KEY not in st.session_state:
        st.session_state[ROOT_KEY] = root_from_argv() or demo_root()
    return str(st.session_state[ROOT_KEY])


def get_workspace() -> Workspace:
    """The workspace of the data set this session is looking at."""
    return open_workspace(current_root())


def is_demo(ws: Workspace) -> bool:
    from cleaning.data.demo import demo_parent

    return demo_parent().resolve() in ws.root.parents


def show_error(e: CleaningError) -> None:
    st.error(f"**{e.message}**" + (f"\n\n{e.hint}" if e.hint else ""), icon="⚠️")


def run_page(render: Callable[[], None]) -> None:
    """Run a page's ``render()``; the project's own errors are shown nicely, bugs stay loud.

    A ``pages/`` folder next to ``dashboard.py`` makes Streamlit serve the *first* request after a server
    start to a deep link (``/history``) in its legacy multipage mode: the page script runs alone, without
    ``dashboard.py``. We detect that, switch the legacy mode off and run ``dashboard.py`` right here: its
    navigation replaces the legacy one and runs this same page inside the full frame.
    """
    import runpy

    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(Path(__file__).resolve().parent.parent / "dashboard.py"), run_name="__main__")
        return
    try:
        render()
    except CleaningError as e:
        show_error(e)


@st.cache_data(show_spinner=False, max_entries=5000)
def thumbnail(abs_path: str, mtime_ns: int, size: int = 256) -> bytes:
    """JPEG bytes of a small copy of an image (grey placeholder if unreadable); keyed by mtime."""
    from cleaning.data.images import make_thumbnail

    buf = io.BytesIO()
    make_thumbnail(abs_path, size).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def thumb(abs_path: str, size: int = 256) -> bytes:
    try:
        mtime = Path(abs_path).stat().st_mtime_ns
    except OSError:
        mtime = 0
    return thumbnail(abs_path, mtime, size)


def sidebar_frame() -> None:
    """The shared frame: which data set is open, a way to open another, rescan, undo/redo."""
    with st.sidebar:
        try:
            ws = get_workspace()
        except CleaningError as e:
            show_error(e)
            st.session_state.pop(ROOT_KEY, None)
            return
        label = "demo data set (a writable copy)" if is_demo(ws) else ws.root.name
        st.caption(f"**Data set:** {label}")
        st.caption(f"`{ws.root}`")
        with st.popover("Open another data set", width="stretch"):
            with st.form("open_root", border=False):
                new = st.text_input("Folder laid out as ROOT/<label>/<image>", value=str(ws.root))
                if st.form_submit_button("Open"):
                    try:
                        open_workspace(str(Path(new).expanduser()))
                    except CleaningError as e:
                        show_error(e)
                    else:
                        st.session_state[ROOT_KEY] = str(Path(new).expanduser())
                        st.rerun()
            if st.button("Use the bundled demo", key="use_demo"):
                st.session_state[ROOT_KEY] = demo_root()
                st.rerun()
        c1, c2 = st.columns(2)
        if c1.button("↶ Undo", key="frame_undo", disabled=not ws.store.can_undo(), width="stretch",
                     help="Undo the last decision (or bulk batch)"):
            done = ws.store.undo()
            st.toast(f"Undid {len(done)} decision(s)")
            st.rerun()
        if c2.button("↷ Redo", key="frame_redo", disabled=not ws.store.can_redo(), width="stretch"):
            done = ws.store.redo()
            st.toast(f"Redid {len(done)} decision(s)")
            st.rerun()
        if st.button("⟳ Rescan folder", key="frame_rescan", width="stretch",
                     help="Look at the folder again for new, moved or removed files"):
            with st.spinner("Scanning…"):
                rep = ws.refresh()
            st.toast(f"{rep.n_images} images, {len(rep.new)} new, {len(rep.missing)} missing")
            st.rerun()
        st.caption(f"{ws.store.decision_count()} decisions recorded · nothing is deleted for good")
