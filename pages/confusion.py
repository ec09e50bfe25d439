"""Confusion matrix: given label × out-of-sample prediction. Click a cell to see exactly those images and
fix them; the counts follow every decision at once."""

from __future__ import annotations

import streamlit as st

from cleaning.review.figures import confusion_figure
from cleaning.review.selection import confusion_from_items, selected_points
from pages._common import get_workspace, run_page, show_error
from pages._review import bulk_bar, flash, item_grid, items, model_error, model_gate, predictions, predictions_stale

CELL = "conf_cell"  # (given, predicted) shown below the matrix
LAST = "conf_last"


def chart_key() -> str:
    return f"conf_chart_{st.session_state.setdefault('conf_gen', 0)}"


def _pick_cell(given: str, predicted: str) -> None:
    st.session_state[CELL] = (given, predicted)


def render() -> None:
    ws = get_workspace()
    flash()
    st.title("Confusion matrix")
    st.caption("Rows: the label each image has now. Columns: what a model that never saw the image predicts "
               "(out-of-sample). Off-diagonal cells are where labels and pictures disagree. "
               "**Click a cell** to see its images.")
    if not model_gate(ws, "conf_compute"):
        return
    preds = predictions(ws)
    if preds is None:
        show_error(model_error(ws))  # type: ignore[arg-type]
        return
    if predictions_stale(ws):
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.caption("Rows already follow your decisions; the predictions are from before them.")
        if c2.button("Refresh predictions", key="conf_refresh", width="stretch"):
            predictions(ws, refresh=True)
            st.rerun()
    conf = confusion_from_items(items(ws), preds)
    if conf.n == 0:
        st.info("No predicted images yet.")
        return

    key = chart_key()
    pts = [p for p in selected_points(st.session_state.get(key)) if isinstance(p.get("customdata"), list)]
    sig = tuple(tuple(p["customdata"][:2]) for p in pts)
    if st.session_state.get(LAST) != (key, sig):
        st.session_state[LAST] = (key, sig)
        if pts:  # clicking the chosen cell again deselects it: keep showing that cell
            _pick_cell(*map(str, pts[-1]["customdata"][:2]))
    cell = st.session_state.get(CELL)
    if cell and (cell[0] not in conf.vocab or cell[1] not in conf.vocab):
        cell = None

    left, right = st.columns([5, 6], gap="large")
    with left:
        m = st.columns(3)
        m[0].metric("Images", conf.n)
        m[1].metric("Agree", f"{conf.accuracy():.0%}")
        m[2].metric("Disagree", conf.n - int(conf.counts.trace()))
        k = len(conf.vocab)
        st.plotly_chart(confusion_figure(conf, cell_px=max(30, min(80, 380 // max(k, 1))), selected=cell),
                        key=key, on_select="rerun", selection_mode="points", width="content",
                        config={"displayModeBar": False})
        worst = conf.most_confused()[:8]
        if worst:
            st.markdown("**Most confused** (given → predicted)")
            row = st.container(horizontal=True)
            for g, p, n in worst:
                row.button(f"{g} → {p}: {n}", key=f"conf_go_{g}_{p}", on_click=_pick_cell, args=(g, p))
    with right:
        if not cell:
            st.info("Click a cell of the matrix (or a line under it) to see its images.")
            return
        ids = conf.ids(*cell)
        what = "labelled and predicted" if cell[0] == cell[1] else "predicted"
        st.subheader(f"Labelled {cell[0]}, {what} {cell[1]}" if cell[0] != cell[1]
                     else f"Labelled and predicted {cell[0]}")
        st.caption(f"{len(ids)} image(s) · an image leaves this cell as soon as you relabel or delete it")
        picked = item_grid(ws, ids, f"conf_grid_{cell[0]}_{cell[1]}", page_size=12, columns=3,
                           order_name="in this cell")
        if ids:
            st.markdown("**Act on " + (f"the {len(picked)} picked image(s)**" if picked
                                       else f"all {len(ids)} image(s) of this cell**"))
            bulk_bar(ws, picked or ids, f"conf_bulk_{cell[0]}_{cell[1]}")


if __name__ == "__main__":
    run_page(render)
