"""Hosted mode's data in: upload a zip, drop images onto a class, or open the demo — into this session's
own workspace. Everything goes through :mod:`cleaning.data.upload` (the hostile-file checks) and
:class:`cleaning.data.hosted.SessionWorkspaces` (per-session folders and disk caps)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cleaning.data.hosted import copy_workspace, mb
from cleaning.data.upload import IMAGE_SUFFIXES, UploadLimits, add_images, extract_zip
from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError
from cleaning.review.prepare import demo_template
from pages._common import ROOT_KEY, hosted, session_token, session_workspaces, show_error

K = "datain"
_DONE = f"{K}_done"
#: What one upload may expand to (the session's and server's free space lower it further).
UPLOAD_BYTES = 400 * 2**20


def _limits(tok: str) -> UploadLimits:
    mgr = session_workspaces()
    u = mgr.usage(tok)
    room = min(UPLOAD_BYTES, u.max_session_bytes - u.session_bytes, u.max_total_bytes - u.total_bytes)
    if room <= 2**20:
        mgr.check_space(tok, 2**20)  # raises QuotaError with the clear message
    return UploadLimits(max_total_bytes=room)


def _bump() -> None:
    st.session_state[f"{K}_gen"] = int(st.session_state.get(f"{K}_gen", 0)) + 1
    for k in ("_review_compute",):
        st.session_state.pop(k, None)


def _switched(message: str) -> None:
    st.session_state.pop(ROOT_KEY, None)
    st.session_state[_DONE] = message
    _bump()
    st.rerun()


def load_zip(name: str, data: object) -> None:
    """Replace the session's data set by the uploaded zip (nothing changes if it is refused)."""
    tok = session_token()
    mgr = session_workspaces()
    limits = _limits(tok)

    def build(root: Path) -> object:
        rep = extract_zip(data, root, limits)  # type: ignore[arg-type]
        (root.parent / "NAME").write_text(Path(name).stem[:80] or "upload", encoding="utf-8")
        with st.spinner(f"Reading {rep.n_images} images…"):
            Workspace.open(root).store.close()
        return rep

    rep = mgr.install(tok, build)
    left = f"; {len(rep.left_out)} file(s) left out" if rep.left_out else ""
    st.session_state[f"{K}_left_out"] = rep.left_out
    _switched(f"Loaded **{name}**: {rep.n_images} image files in {len(rep.per_label)} classes{left}.")


def load_demo() -> None:
    """Replace the session's data set by a copy of the demo (prepared once per server, with progress)."""
    tok = session_token()
    mgr = session_workspaces()
    mgr.check_space(tok, 20 * 2**20)
    with st.status("Preparing the demo…", expanded=True) as status:
        if not (mgr.root / "_demo" / "ready").exists():
            status.write("The first demo on this server embeds its images, finds the issues and draws the map "
                         "(about a minute on a small server); every later visitor gets a copy at once.")
        template = demo_template(mgr.root, steps=status.write)
        status.write("Copying it into your workspace…")

        def build(root: Path) -> None:
            copy_workspace(template, root)
            (root.parent / "DEMO").write_text("demo", encoding="utf-8")

        mgr.install(tok, build)
        status.update(label="Demo ready", state="complete")
    _switched("Opened a copy of the **bundled demo** in your workspace.")


def _zip_tab() -> None:
    gen = st.session_state.get(f"{K}_gen", 0)
    up = st.file_uploader("A .zip of your data set, laid out as `<label>/<image>` (one folder per class)",
                          type=["zip"], key=f"{K}_zip_{gen}",
                          help="Zip the data-set folder itself, e.g. `zip -r pets.zip pets` where pets/cat/1.jpg.")
    if up is None:
        return
    seen = st.session_state.get(f"{K}_seen")
    if seen and seen[0] == up.file_id:  # refused before: say so again without re-reading it
        show_error(seen[1])
        return
    try:
        load_zip(up.name, up)
    except CleaningError as e:
        st.session_state[f"{K}_seen"] = (up.file_id, e)
        show_error(e)


def _images_tab(ws: Workspace | None) -> None:
    if ws is None:
        st.info("Upload a zip or open the demo first; then you can add images to any class here.")
        return
    gen = st.session_state.get(f"{K}_gen", 0)
    from pages._writes import live_labels  # cached per data-set version (ws.vocab reads every item)

    classes = list(live_labels(ws))
    c1, c2 = st.columns(2)
    pick = c1.selectbox("Class", classes + ["(a new class)"], key=f"{K}_cls")
    label = c2.text_input("New class name", key=f"{K}_new") if pick == "(a new class)" else pick
    files = st.file_uploader("Drop images here", type=sorted(s.lstrip(".") for s in IMAGE_SUFFIXES),
                             accept_multiple_files=True, key=f"{K}_imgs_{gen}")
    if files and st.button(f"Add {len(files)} image(s) to {label or '…'}", key=f"{K}_add", type="primary",
                           disabled=not label):
        try:
            rep = add_images(ws.root, str(label).strip(), [(f.name, f) for f in files], _limits(session_token()))
        except CleaningError as e:
            show_error(e)
            return
        with st.spinner("Reading the new images…"):
            ws.refresh()
        left = f"; left out: {', '.join(n for n, _ in rep.left_out)}" if rep.left_out else ""
        st.session_state[_DONE] = f"Added {rep.n_images} image(s) to **{label}**{left}."
        _bump()
        st.rerun()


def data_in_panel(ws: Workspace | None) -> None:
    """The Overview's "bring your data" box (hosted mode only)."""
    if not hosted():
        return
    done = st.session_state.pop(_DONE, None)
    if done:
        st.success(done, icon=":material/check_circle:")
        left = st.session_state.pop(f"{K}_left_out", None)
        if left:
            with st.expander(f"Left out ({len(left)})"):
                st.dataframe([{"file": n, "reason": r} for n, r in left], hide_index=True)
    mgr = session_workspaces()
    u = mgr.usage(session_token())
    with st.container(border=True):
        st.markdown("**Bring your data** — it stays in your own workspace on this server "
                    f"({mb(u.session_bytes)} of {mb(u.max_session_bytes)} used), removed after "
                    f"{mgr.idle_seconds / 3600:g} h without a visit.")
        t_zip, t_img, t_demo = st.tabs(["Upload a zip", "Add images to a class", "Demo"])
        with t_zip:
            _zip_tab()
        with t_img:
            _images_tab(ws)
        with t_demo:
            st.caption("4 classes of real photos with planted problems (wrong folders, off-topic photos, "
                       "duplicates, a broken file). Replaces your current data set in this workspace.")
            if st.button("Open the demo", key=f"{K}_demo", icon=":material/play_arrow:"):
                try:
                    load_demo()
                except CleaningError as e:
                    show_error(e)
