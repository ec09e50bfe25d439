"""Export: make the folders match the decisions (quarantine), or write a clean copy elsewhere.

Both show exactly what will happen before it happens, ask for a confirmation, report progress and the
result. Only :mod:`cleaning.data.files` moves or copies files; nothing is ever erased.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from cleaning.data.files import ApplyPlan, apply_decisions, check_export_target, export_dataset, plan_apply
from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError, ExportError
from pages import _review as review
from pages._common import get_workspace, hosted, run_page, show_error
from pages._downloads import downloads_section
from pages._retrain import retrain_box

K = "exp"


def default_export_dir(ws: Workspace) -> Path:
    """``ROOT-clean`` next to ROOT, or ``ROOT-clean-2``, ``-3`` … if that one is taken and not empty."""
    base = ws.root.parent / f"{ws.root.name}-clean"
    cand, n = base, 2
    while cand.exists() and (not cand.is_dir() or any(cand.iterdir())):
        cand, n = base.with_name(f"{base.name}-{n}"), n + 1
    return cand


def resolve_export_path(ws: Workspace, text: str) -> Path:
    """The folder the user means: ``~`` expanded; a relative path is taken next to the data set (beside
    ROOT), never inside the app's own folder (the server's working directory)."""
    p = Path(text.strip()).expanduser()
    return p if p.is_absolute() else (ws.root.parent / p).resolve()


def render() -> None:
    ws = get_workspace()
    head, side = st.columns([3, 1])
    head.title("Export")
    head.caption("Your decisions so far live in the store only. Here they reach the files: **apply** them to "
                 "the data-set folders (deleted images go to the quarantine, where they can be restored), or "
                 "**export** a clean copy to a new folder and leave the data set as it is.")
    with side:
        retrain_box(ws, K)
    review.flash()
    items = ws.items_frame()
    live = items[~items["deleted"]]
    relabelled = live[live["label"] != live["orig_label"]]
    c = st.columns(4)
    c[0].metric("Images kept", len(live))
    c[1].metric("Deleted", int(items["deleted"].sum()))
    c[2].metric("Relabelled", len(relabelled))
    c[3].metric("Classes", live["label"].nunique())
    if hosted():  # no server folders: the cleaned set leaves as a download
        download_tab, apply_tab = st.tabs(["Download", "Apply to the folders"])
    else:
        apply_tab, export_tab, download_tab = st.tabs(["Apply to the folders", "Export a clean copy", "Download"])
        with export_tab:
            _export_section(ws, items)
    with apply_tab:
        _apply_section(ws)
    with download_tab:
        downloads_section(ws, len(live))


def plan_frame(plan: ApplyPlan) -> pd.DataFrame:
    """One row per file the plan moves: action, file (ROOT-relative), to."""
    rows = ([("to quarantine", p, "quarantine") for _, p, _ in plan.quarantine]
            + [("restore", p, t) for _, p, t in plan.restore]
            + [("move to its new class", p, t) for _, p, t in plan.move])
    return pd.DataFrame(rows, columns=["action", "file", "to"])


def _apply_section(ws: Workspace) -> None:
    done = st.session_state.get(f"{K}_applied")
    if done:
        st.success(done, icon=":material/check_circle:")
    plan = plan_apply(ws)
    if not plan.n_changes:
        st.info("The folders already match every decision: nothing to move.")
        return
    c = st.columns(3)
    c[0].metric("To the quarantine", len(plan.quarantine))
    c[1].metric("Back from the quarantine", len(plan.restore))
    c[2].metric("Into another class folder", len(plan.move))
    st.dataframe(plan_frame(plan), hide_index=True, width="stretch", height=min(360, 38 + 35 * plan.n_changes))
    st.caption(f"Quarantined images are kept in `{ws.quarantine_dir}` and come back byte-identical when you "
               "restore them and apply again. Every move is journalled and survives a crash.")
    ok = st.checkbox(f"Yes, move these {plan.n_changes} file(s)", key=f"{K}_apply_ok")
    if st.button(f"Apply {plan.n_changes} change(s)", key=f"{K}_apply", type="primary", disabled=not ok,
                 icon=":material/drive_file_move:"):
        bar = st.progress(0.0, text="Moving files…")
        try:
            res = apply_decisions(ws, progress=lambda i, n: bar.progress(i / max(n, 1), text=f"{i} of {n}"))
        except CleaningError as e:
            show_error(e)
            return
        except OSError as e:  # disk full, permissions: the journal keeps the store consistent
            show_error(CleaningError(f"moving files stopped: {e}", "fix the cause and apply again; "
                                     "finished moves are kept, the rest is retried"))
            return
        st.session_state[f"{K}_applied"] = (
            f"Applied {res.n_changes} change(s): {len(res.quarantine)} to the quarantine, "
            f"{len(res.restore)} restored, {len(res.move)} moved to their new class folder.")
        st.session_state.pop(f"{K}_apply_ok", None)
        st.rerun()


def _export_section(ws: Workspace, items: pd.DataFrame) -> None:
    res = st.session_state.get(f"{K}_exported")
    if res:
        st.success(res, icon=":material/check_circle:")
    if f"{K}_out" not in st.session_state:
        st.session_state[f"{K}_out"] = str(default_export_dir(ws))
    out = st.text_input("Export to this folder (new or empty, outside the data set; a relative path is "
                        f"taken next to the data set, in `{ws.root.parent}`)", key=f"{K}_out")
    try:
        target = check_export_target(ws, str(resolve_export_path(ws, out))) if out.strip() else None
    except ExportError as e:
        show_error(e)
        target = None
    if target is not None and str(target) != out.strip():
        st.caption(f"Will write to `{target}`")
    live = items[~items["deleted"]]
    dead = items[items["deleted"]]
    per = (live.assign(moved=live["label"] != live["orig_label"]).groupby("label")
           .agg(images=("item_id", "size"), relabelled_in=("moved", "sum")).reset_index()
           .rename(columns={"label": "class", "relabelled_in": "relabelled into it"}))
    st.markdown(f"**{len(live)} image(s)** in {len(per)} class folder(s) will be copied with their current "
                f"labels, plus `labels.csv` (path, label, item id, original path and label, sha256, source). "
                f"**{len(dead)} deleted image(s)** are left out. The data set itself is not touched.")
    bad = [b for b in ws.bad_files() if b.kind != "skipped"]
    if bad:
        st.warning(f"**{len(bad)} unusable file(s)** are not images the app can read and are left out of the "
                   "export too: " + ", ".join(f"`{b.path}` ({b.reason})" for b in bad[:10])
                   + (" …" if len(bad) > 10 else "") + ". Fix or remove them in the folder, then rescan.",
                   icon=":material/broken_image:")
    left, right = st.columns([1, 2])
    left.dataframe(per, hide_index=True, width="stretch")
    with right:
        with st.expander(f"Every file that will be copied ({len(live)})"):
            st.dataframe(live[["path", "label", "orig_label"]].rename(columns={"orig_label": "came in as"}),
                         hide_index=True, width="stretch", height=300)
        with st.expander(f"Left out: deleted ({len(dead)})"):
            st.dataframe(dead[["path", "label"]], hide_index=True, width="stretch")
    ok = st.checkbox(f"Yes, write {len(live)} image(s) to `{target}`" if target else "Choose a folder first",
                     key=f"{K}_export_ok", disabled=target is None)
    if st.button(f"Export {len(live)} image(s)", key=f"{K}_export", type="primary",
                 disabled=not (ok and target), icon=":material/output:"):
        bar = st.progress(0.0, text="Copying…")
        try:
            rep = export_dataset(ws, target, progress=lambda i, n: bar.progress(i / max(n, 1), text=f"{i} of {n}"))
        except CleaningError as e:
            show_error(e)
            return
        counts = ", ".join(f"{lab} {n}" for lab, n in rep.per_label.items())
        st.session_state[f"{K}_exported"] = (f"Exported {rep.n_images} image(s) to `{rep.out}` ({counts}); "
                                             f"{rep.n_deleted} deleted left out. Labels in "
                                             f"`{rep.out / 'labels.csv'}`.")
        st.session_state.pop(f"{K}_export_ok", None)
        st.session_state.pop(f"{K}_out", None)  # the next suggestion: a fresh folder
        st.rerun()


if __name__ == "__main__":
    run_page(render)
