"""The autofix box of the Issues page: a cautious → bold dial, what each fix would touch (count, examples,
expected precision) before anything is recorded, then one click records it all as one undoable batch."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError
from cleaning.review.autofix import (
    KIND_NAMES,
    LEVELS,
    expected_precision,
    plan_autofix,
    precision_text,
    record_autofix,
)
from cleaning.review.state import analysis_of
from pages import _review as review
from pages._common import show_error, thumb

K = "autofix"


@st.cache_resource(show_spinner=False, max_entries=8)
def _plan_at(root: str, version: str, token: str, level: str, _table: pd.DataFrame, _items: pd.DataFrame):  # noqa: ANN202
    """:func:`plan_autofix` once per (data-set version, issue table, level) for the whole server: the box is
    drawn on every rerun of the Issues page (1.4 CPU-s at 100,000 images). Shared: do not modify it."""
    return plan_autofix(_table, _items, level)


def autofix_box(ws: Workspace, table: pd.DataFrame, items: pd.DataFrame) -> None:
    """An expander with the dial, the plan and the one button."""
    done = st.session_state.pop(f"{K}_done", None)
    if done:
        st.success(done, icon=":material/auto_fix_high:")
        st.page_link("pages/train.py", label="Retrain now to see before / after", icon=":material/model_training:")
    # lazy (Streamlit's tracked expander): the plan is computed only while the box is open — closed, a
    # new data-set version at 100,000 images would cost 1.4 CPU-s for a plan nobody looks at
    with st.expander("Clean the obvious in one step (autofix)", icon=":material/auto_fix_high:", key=f"{K}_box",
                     on_change="rerun") as box:
        if not box.open:
            return
        level = st.select_slider("How sure must a fix be?", LEVELS, value="cautious", key=f"{K}_level",
                                 help="cautious: only the most severe flags; bold: every flag the scan made")
        plan = _plan_at(str(ws.root), review.data_version(ws), analysis_of(ws).issues_token(), str(level), table,
                        items)
        paths = items.set_index("item_id")
        for step in plan.steps:
            _, src = expected_precision(plan.level, step.kind)
            st.markdown(f"**{KIND_NAMES[step.kind].capitalize()}: {step.n} image(s)** · expected precision at "
                        f"{plan.level}: {precision_text(plan.level, step.kind)}")
            st.caption(f"Committed benchmark (`bench/results/autofix.md`), {src}.")
            if step.sample:
                cols = st.columns(8)
                for col, iid in zip(cols, step.sample):
                    r = paths.loc[iid]
                    label = next((lab for i, _, lab in step.decisions if i == iid), None)
                    col.image(thumb(str(r["abs_path"]), 128), width="stretch",
                              caption=f"{r['label']} → {label}" if label else str(r["path"]).rsplit("/", 1)[-1])
        st.caption("Nothing is recorded until you click. It is one decision batch: **↶ Undo** takes it all back; "
                   "files only move on the Export page.")
        if st.button(f"Apply these {plan.n_images} fixes as one batch", key=f"{K}_apply", type="primary",
                     disabled=plan.n_images == 0):
            try:
                batch = record_autofix(ws.store, plan)
            except CleaningError as e:
                show_error(e)
                return
            st.session_state[f"{K}_done"] = (f"Autofix ({plan.level}) recorded {plan.n_images} decision(s) as batch "
                                             f"{batch}. Undo in the sidebar takes them all back.")
            review.bump(None)
            st.rerun()
