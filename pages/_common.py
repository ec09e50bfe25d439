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

from cleaning.data.hosted import SessionWorkspaces, default_scratch_root, detect_mode, limit_malloc_arenas, trim_memory
from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError

ROOT_KEY = "dataset_root"
limit_malloc_arenas(2)  # once per process: every script run is a new thread (see cleaning.data.hosted)
TOKEN_KEY = "ws_token"  # hosted mode: this browser session's workspace token (also in the URL as ?ws=)


class NoDataset(CleaningError):
    """Hosted mode before the visitor brought a data set."""


def hosted() -> bool:
    """True in hosted mode (Community Cloud, or ``CLEANING_MODE=hosted``): one workspace per session."""
    return detect_mode() == "hosted"


@st.cache_resource(show_spinner=False)
def _workspaces_at(scratch: str) -> SessionWorkspaces:
    return SessionWorkspaces(scratch)


def session_workspaces() -> SessionWorkspaces:
    """The server's scratch root of per-session workspaces (hosted mode; ``CLEANING_SCRATCH``)."""
    return _workspaces_at(str(default_scratch_root()))


def session_token() -> str:
    """This browser session's workspace token: kept in session state and mirrored in the URL (``?ws=``), so
    a reload finds the same workspace while it exists. A token in a URL is a capability: whoever has the
    link sees that workspace; nobody can guess one (128 random bits)."""
    mgr = session_workspaces()
    tok = st.session_state.get(TOKEN_KEY)
    if not tok:
        asked = st.query_params.get("ws", "")
        tok = asked if asked and mgr.exists(asked) else mgr.new_token()
        st.session_state[TOKEN_KEY] = tok
    if st.query_params.get("ws") != tok:
        st.query_params["ws"] = tok
    mgr.create(tok)  # sweeps idle workspaces (at most once a minute) and marks this one as seen
    return str(tok)
#: Every thumbnail gets a thin grey frame: a blank white image is otherwise invisible on a white card.
FRAME_PX, FRAME_COLOUR = 2, (170, 176, 186)
#: The sidebar's rescan button (other pages name it in their hints, so the words must match).
RESCAN_LABEL = "⟳ Rescan folder"


def root_from_argv(argv: list[str] | None = None) -> str | None:
    """``streamlit run dashboard.py -- ROOT`` → ROOT (also ``CLEANING_ROOT`` in the environment)."""
    if argv is None:  # `streamlit run dashboard.py -- ROOT` sets sys.argv = ["dashboard.py", ROOT]
        argv = sys.argv[1:] if Path(sys.argv[0]).name == "dashboard.py" else []
    args = [a for a in argv if not a.startswith("-")]
    return args[0] if args else os.environ.get("CLEANING_ROOT") or None


@st.cache_resource(show_spinner=False, max_entries=64)
def open_workspace(root: str) -> Workspace:
    """One Workspace per data set for the whole server (the store is thread-safe); the 64 most recent."""
    return Workspace.open(root)


@st.cache_resource(show_spinner="Copying the demo data set…")
def demo_root() -> str:
    from cleaning.data.demo import prepare_demo

    return str(prepare_demo())


def current_root() -> str:
    """The ROOT this session looks at. Hosted: only the session's own workspace, never a server path
    (one set in session state is refused with an error); :class:`NoDataset` until one was brought in."""
    if hosted():
        tok = session_token()
        mgr = session_workspaces()
        asked = st.session_state.get(ROOT_KEY)
        if asked and mgr.folder(tok) not in Path(str(asked)).resolve().parents:
            st.session_state.pop(ROOT_KEY, None)
            raise CleaningError("opening folders on the server is not offered in hosted mode",
                                "upload a zip of your data set on the Overview page")
        if os.environ.get("CLEANING_WARM", "1") != "0":
            from cleaning.review.prepare import start_warming

            start_warming(mgr.root)  # the demo's embeddings etc., once per server, in the background
        root = mgr.dataset_root(tok)
        if root is None:
            st.session_state.pop(ROOT_KEY, None)
            gone = f"your data set was removed after {mgr.idle_seconds / 3600:g} h without a visit; " if asked else ""
            raise NoDataset("no data set yet", f"{gone}upload a zip of ROOT/<label>/<image> or open the demo "
                            "on the Overview page")
        st.session_state[ROOT_KEY] = str(root)
        return str(root)
    if ROOT_KEY not in st.session_state:
        st.session_state[ROOT_KEY] = root_from_argv() or demo_root()
    return str(st.session_state[ROOT_KEY])


def open_root(path: str) -> None:
    """Switch this session to the data set at server path ``path`` (local mode only).

    Raises:
        CleaningError: in hosted mode, or the folder is not a data set.
    """
    if hosted():
        raise CleaningError("opening folders on the server is not offered in hosted mode",
                            "upload a zip of your data set on the Overview page")
    new = str(Path(path).expanduser())
    open_workspace(new)
    st.session_state[ROOT_KEY] = new


def get_workspace() -> Workspace:
    """The workspace of the data set this session is looking at."""
    return open_workspace(current_root())


def is_demo(ws: Workspace) -> bool:
    from cleaning.data.demo import demo_parent

    return demo_parent().resolve() in ws.root.parents or (ws.root.parent / "DEMO").exists()


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
    from PIL import ImageOps

    from cleaning.data.images import make_thumbnail

    buf = io.BytesIO()
    framed = ImageOps.expand(make_thumbnail(abs_path, size).convert("RGB"), border=FRAME_PX, fill=FRAME_COLOUR)
    framed.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def thumb(abs_path: str, size: int = 256) -> bytes:
    try:
        mtime = Path(abs_path).stat().st_mtime_ns
    except OSError:
        mtime = 0
    return thumbnail(abs_path, mtime, size)


def dataset_name(ws: Workspace) -> str:
    """What to call the data set: the uploaded zip's name in hosted mode, else ROOT's folder name."""
    name = ws.root.parent / "NAME"
    return name.read_text(encoding="utf-8").strip() if name.exists() else ws.root.name


def _open_other(ws: Workspace) -> None:
    with st.popover("Open another data set", width="stretch"):
        with st.form("open_root", border=False):
            new = st.text_input("Folder laid out as ROOT/<label>/<image>", value=str(ws.root))
            if st.form_submit_button("Open"):
                try:
                    open_root(new)
                except CleaningError as e:
                    show_error(e)
                else:
                    st.rerun()
        if st.button("Use the bundled demo", key="use_demo"):
            st.session_state[ROOT_KEY] = demo_root()
            st.rerun()


def sidebar_frame() -> None:
    """The shared frame: which data set is open, a way to open another, rescan, undo/redo."""
    trim_memory()  # hand back what earlier runs (training, embedding) freed
    with st.sidebar:
        try:
            ws = get_workspace()
        except NoDataset as e:
            st.caption(f"**Data set:** none yet — {e.hint}")
            return
        except CleaningError as e:
            show_error(e)
            st.session_state.pop(ROOT_KEY, None)
            return
        label = "demo data set (a writable copy)" if is_demo(ws) else dataset_name(ws)
        st.caption(f"**Data set:** {label}")
        if hosted():
            st.caption("Your own workspace: other visitors do not see it. It is removed after "
                       f"{session_workspaces().idle_seconds / 3600:g} h without a visit; download your "
                       "results on the Export page.")
        else:
            st.caption(f"`{ws.root}`")
            _open_other(ws)
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
        if st.button(RESCAN_LABEL, key="frame_rescan", width="stretch",
                     help="Look at the folder again for new, moved or removed files"):
            with st.spinner("Scanning…"):
                rep = ws.refresh()
            st.toast(f"{rep.n_images} images, {len(rep.new)} new, {len(rep.missing)} missing")
            st.rerun()
        st.caption(f"{ws.store.decision_count()} decisions recorded · nothing is deleted for good")
        from pages._training import sidebar_status

        sidebar_status(ws)
