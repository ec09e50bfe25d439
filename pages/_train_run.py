"""The Train page's view of one run: its score on the fixed evaluation set with today's labels, a clickable
confusion matrix, the top losses, the loss curve, and the Try-the-model box."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError
from cleaning.model.evalset import EvalScore, rescore_run, score_run
from cleaning.model.runs import RunRecord
from cleaning.review.figures import confusion_figure, loss_figure
from cleaning.review.selection import compute_confusion, selected_points
from pages._common import show_error
from pages._review import flash, item_grid, items

CELL = "train_cell"


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def cached_model(path: str, mtime_ns: int) -> Any:
    """A loaded learner (at most two kept: each is tens of MB)."""
    from cleaning.model.predict import load_model

    return load_model(path)


def model_for(run: RunRecord) -> Any:
    p = Path(run.model_path)
    if not run.model_path or not p.exists():
        raise CleaningError(f"run {run.run_id} has no model file", hint="it was stopped before one existed, "
                                                                          "or the runs folder was cleaned")
    return cached_model(str(p), p.stat().st_mtime_ns)


def _pct(a: float | None) -> str:
    return f"{a:.1%}" if a is not None else "–"


def per_class_frame(run: RunRecord) -> pd.DataFrame:
    return pd.DataFrame([{"label": k, "precision": v["precision"], "recall": v["recall"], "images": v["support"]}
                         for k, v in run.per_class.items()])


def show_run(ws: Workspace, run: RunRecord) -> None:
    """Metrics, today's score, interpretation and the loss curve of one run."""
    flash()
    score = score_run(ws, run.run_id)
    c = st.columns(5)
    c[0].metric("Accuracy (at training)", _pct(run.accuracy),
                help="On the evaluation images with the labels they had when the run trained")
    c[1].metric("Linear probe", _pct(run.probe_accuracy), help="The probe on the same validation images; the run "
                "kept " + (run.chosen or "–"))
    c[2].metric("Accuracy today", _pct(score.accuracy),
                help=f"The same run's predictions scored with today's labels on {score.n} evaluation images "
                     f"(deleted images left out: {score.deleted})")
    c[3].metric("Mode", f"{run.mode}" + (" · stopped" if run.status == "stopped" else ""))
    c[4].metric("Data-set version", run.dataset_version, help="Decisions active when the run started")
    if score.left_out:
        st.caption(f"{score.left_out} evaluation image(s) have no prediction of this run yet (restored, or an "
                   "older run).")
    if st.button("Re-evaluate on today's labels", key=f"train_rescore_{run.run_id}",
                 help="Predict any evaluation image this run has not seen yet with its model, then score it on "
                      "the current labels"):
        try:
            with st.spinner("Predicting…"):
                score = rescore_run(ws, run.run_id)
        except CleaningError as e:
            show_error(e)
        else:
            st.success(f"Run {run.run_id}: {_pct(score.accuracy)} on {score.n} evaluation images with today's labels")
    if not score.n:
        st.info("No evaluation image to show for this run.")
        return
    tabs = st.tabs(["Confusion matrix", "Top losses", "Loss curve and classes"])
    with tabs[0]:
        _confusion(ws, run, score)
    with tabs[1]:
        _top_losses(ws, run, score)
    with tabs[2]:
        left, right = st.columns(2)
        left.plotly_chart(loss_figure(run.batch_losses, [h for h in run.history if h.get("epoch", -1) >= 0]),
                          key=f"loss_{run.run_id}")
        right.dataframe(per_class_frame(run), hide_index=True, width="stretch",
                        column_config={"precision": st.column_config.NumberColumn(format="%.2f"),
                                       "recall": st.column_config.NumberColumn(format="%.2f")})


def chart_key(run_id: str) -> str:
    return f"train_cm_{run_id}_{st.session_state.setdefault('train_cm_gen', 0)}"


def _confusion(ws: Workspace, run: RunRecord, score: EvalScore) -> None:
    conf = compute_confusion(score.item_ids, score.labels, score.predicted)
    key = chart_key(run.run_id)
    pts = [p for p in selected_points(st.session_state.get(key)) if isinstance(p.get("customdata"), list)]
    if pts:
        st.session_state[CELL] = tuple(map(str, pts[-1]["customdata"][:2]))
    cell = st.session_state.get(CELL)
    if cell and (cell[0] not in conf.vocab or cell[1] not in conf.vocab):
        cell = None
    left, right = st.columns([5, 6], gap="large")
    with left:
        st.caption("Rows: today's label · columns: this run's prediction · evaluation images only. "
                   "**Click a cell** to see its images.")
        k = len(conf.vocab)
        st.plotly_chart(confusion_figure(conf, cell_px=max(30, min(80, 380 // max(k, 1))), selected=cell),
                        key=key, on_select="rerun", selection_mode="points", width="content",
                        config={"displayModeBar": False})
    with right:
        if not cell:
            st.info("Click a cell of the matrix to see its images.")
            return
        ids = conf.ids(*cell)
        st.markdown(f"**Labelled {cell[0]}, predicted {cell[1]}** · {len(ids)} image(s)")
        item_grid(ws, ids, f"train_grid_{cell[0]}_{cell[1]}", page_size=9, columns=3, selectable=False)


def top_losses(score: EvalScore, k: int = 12) -> pd.DataFrame:
    """The ``k`` evaluation images with the highest loss under today's labels (fastai's top_losses)."""
    loss = score.losses()
    order = np.argsort(-loss, kind="stable")[:k]
    idx = {v: i for i, v in enumerate(score.vocab)}
    return pd.DataFrame([{"item_id": score.item_ids[i], "label": score.labels[i], "predicted": score.predicted[i],
                          "loss": float(loss[i]),
                          "p_label": float(score.probs[i, idx[score.labels[i]]]) if score.labels[i] in idx else 0.0,
                          "p_pred": float(score.probs[i].max())} for i in order])


def _top_losses(ws: Workspace, run: RunRecord, score: EvalScore) -> None:
    top = top_losses(score, 12)
    st.caption("The evaluation images this run got most wrong under today's labels: predicted / label / loss / "
               "probability of the label (as fastai's plot_top_losses). Open one to relabel or delete it.")
    info = {r.item_id: r for r in top.itertuples()}

    def extra(iid: str) -> None:
        r = info[iid]
        st.caption(f"{r.predicted} / {r.label} / {r.loss:.2f} / {r.p_label:.2f}")

    item_grid(ws, list(top["item_id"]), f"train_top_{run.run_id}", page_size=12, columns=4, selectable=False,
              card_extra=extra)


def try_box(ws: Workspace, run: RunRecord) -> None:
    """Drop an image or pick one of the data set; show the run's top-3 classes."""
    st.caption(f"Run {run.run_id}. An image from the data set may have been trained on (unless it is in the "
               "evaluation set): the model has seen it.")
    up = st.file_uploader("Drop an image", type=["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"],
                          key="try_upload")
    frame = items(ws)
    live = frame[~frame["deleted"]]
    pick = st.selectbox("…or pick one from the data set", list(live["path"]), index=None, key="try_pick",
                        placeholder="choose an image")
    path: str | None = None
    if up is not None:
        tmp = Path(tempfile.gettempdir()) / f"cleaning-try-{abs(hash(up.file_id))}{Path(up.name).suffix}"
        tmp.write_bytes(up.getvalue())
        path = str(tmp)
    elif pick:
        path = str(live[live["path"] == pick]["abs_path"].iloc[0])
    if not path:
        return
    from cleaning.model.predict import predict_image

    try:
        preds = predict_image(model_for(run), path, k=3)
    except CleaningError as e:
        show_error(e)
        return
    left, right = st.columns([1, 2])
    left.image(path, width=200)
    right.dataframe(pd.DataFrame(preds), hide_index=True, key="try_result",
                    column_config={"probability": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                                   max_value=1)})
    right.markdown(f"**{preds[0]['label']}** · {preds[0]['probability']:.1%}")
