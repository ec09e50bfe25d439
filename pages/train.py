"""Train: fine-tune a classifier on the current labels, watch it learn, compare runs before/after cleaning."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from cleaning.model.backbone import ARCHS, DEFAULT_ARCH
from cleaning.model.runs import RunComparison, RunRecord, compare_runs, list_runs
from cleaning.model.train import TrainEvent, TrainSettings, train_workspace
from cleaning.review.figures import loss_figure, matrix_figure
from pages._common import get_workspace, run_page

SIZES = [64, 96, 128, 160, 224]


def per_class_frame(run: RunRecord) -> pd.DataFrame:
    return pd.DataFrame([{"label": k, "precision": v["precision"], "recall": v["recall"], "images": v["support"]}
                         for k, v in run.per_class.items()])


def runs_frame(runs: list[RunRecord]) -> pd.DataFrame:
    return pd.DataFrame([{
        "run": r.run_id, "when": r.created_at.replace("T", " ")[:19], "accuracy": r.accuracy,
        "data-set version": r.dataset_version, "arch": r.arch, "size": r.settings.get("size"),
        "epochs": f"{r.settings.get('freeze_epochs', 0)}+{r.settings.get('epochs', 0)}",
        "train": r.n_train, "valid": r.n_valid, "seconds": r.seconds} for r in runs])


# ---- sections ---------------------------------------------------------------------------------------
def _settings_form() -> TrainSettings | None:
    with st.form("train_settings"):
        c1, c2, c3 = st.columns(3)
        arch = c1.selectbox("Backbone", list(ARCHS), index=list(ARCHS).index(DEFAULT_ARCH), key="train_arch",
                            help="EfficientNet-Lite0 works offline; the ResNets download weights once")
        size = c2.select_slider("Image size (px)", SIZES, value=128, key="train_size",
                                help="Smaller trains faster on a CPU; 128 is a fair compromise")
        bs = c3.select_slider("Batch size", [8, 16, 32, 64], value=32, key="train_bs")
        c4, c5, c6 = st.columns(3)
        freeze = c4.number_input("Head-only epochs", 0, 10, 1, key="train_freeze")
        epochs = c5.number_input("Full epochs", 0, 50, 2, key="train_epochs")
        valid = c6.slider("Validation share", 0.1, 0.5, 0.2, 0.05, key="train_valid")
        if st.form_submit_button("Train", type="primary", icon=":material/play_arrow:"):
            return TrainSettings(arch=arch, epochs=int(epochs), freeze_epochs=int(freeze), size=int(size),
                                 batch_size=int(bs), valid_pct=float(valid))
    return None


def _train_live(settings: TrainSettings) -> None:
    """Run training in this script run, updating a progress bar and the loss curve as batches finish."""
    ws = get_workspace()
    bar = st.progress(0.0, text="Preparing the model…")
    chart = st.empty()
    losses: list[float] = []
    history: list[dict[str, Any]] = []
    last, draws = [0.0], [0]

    def on_progress(ev: TrainEvent) -> None:
        if ev.kind == "epoch":
            history.append({"epoch": ev.epoch, "valid_loss": ev.valid_loss})
        else:
            losses.append(ev.loss)
        if ev.n_batches:
            done = (ev.epoch + ev.batch / ev.n_batches) / max(1, ev.n_epochs)
            bar.progress(min(1.0, done), text=f"Epoch {ev.epoch + 1}/{ev.n_epochs} ({ev.stage}) · batch "
                                              f"{ev.batch}/{ev.n_batches} · loss {ev.loss:.3f}")
        if ev.kind == "epoch" or time.time() - last[0] > 1.0:
            last[0], draws[0] = time.time(), draws[0] + 1
            chart.plotly_chart(loss_figure(losses, history, ev.n_batches), key=f"live_loss_{draws[0]}")

    record, _ = train_workspace(ws, settings, on_progress=on_progress)
    bar.progress(1.0, text=f"Done: run {record.run_id}, validation accuracy {record.accuracy:.1%}")
    st.session_state["train_last_run"] = record.run_id


def _show_run(run: RunRecord) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Validation accuracy", f"{run.accuracy:.1%}" if run.accuracy is not None else "–")
    c2.metric("Training images", run.n_train)
    c3.metric("Validation images", run.n_valid)
    c4.metric("Data-set version", run.dataset_version, help="Decisions active when the run started")
    left, right = st.columns(2)
    with left:
        st.markdown("**Loss**")
        st.plotly_chart(loss_figure(run.batch_losses, run.history), key=f"loss_{run.run_id}")
        st.dataframe(per_class_frame(run), hide_index=True, width="stretch",
                     column_config={"precision": st.column_config.NumberColumn(format="%.2f"),
                                    "recall": st.column_config.NumberColumn(format="%.2f")})
    with right:
        st.markdown("**Confusion matrix** (validation images, current labels)")
        st.plotly_chart(matrix_figure(np.asarray(run.confusion), run.vocab), key=f"cm_{run.run_id}")
    st.caption(f"Model: `{run.model_path}` · load it with `fastai.learner.load_learner(path)`")


def _pct(a: float | None) -> str:
    return f"{a:.1%}" if a is not None else "–"


def _show_comparison(cmp: RunComparison) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric("Before", _pct(cmp.before.accuracy), help=cmp.before.run_id)
    c2.metric("After", _pct(cmp.after.accuracy), help=cmp.after.run_id,
              delta=f"{cmp.accuracy_delta * 100:+.1f} pts" if cmp.accuracy_delta is not None else None)
    c3.metric("Decisions in between", len(cmp.decisions))
    left, right = st.columns(2)
    with left:
        st.markdown("**Confusion matrix: after − before** (blue = more, red = fewer)")
        st.plotly_chart(matrix_figure(cmp.confusion_diff, cmp.vocab, diverging=True),
                        key=f"cmp_{cmp.before.run_id}_{cmp.after.run_id}")
    with right:
        st.markdown("**Recall per class**")
        st.dataframe(pd.DataFrame([{"label": k, "change": v} for k, v in cmp.recall_delta.items()]),
                     hide_index=True, width="stretch",
                     column_config={"change": st.column_config.NumberColumn(format="%+.2f")})
    if cmp.decisions:
        st.markdown("**Decisions made between the two runs**")
        st.dataframe(pd.DataFrame([{"#": d.seq, "when": d.created_at.replace("T", " ")[:19], "action": d.action,
                                    "label": d.label or "", "image": getattr(d, "path", d.item_id),
                                    "state": d.state} for d in cmp.decisions]),
                     hide_index=True, width="stretch", height=min(400, 38 + 35 * len(cmp.decisions)))


def render() -> None:
    ws = get_workspace()
    st.title("Train")
    frame = ws.items_frame()
    live = frame[~frame["deleted"]]
    st.caption(f"Fine-tunes a pretrained network with fastai on the **current** labels: {len(live)} images in "
               f"{live['label'].nunique()} classes (deleted images are left out; no need to apply first). "
               "Duplicates stay on one side of the validation split. On a CPU expect roughly a minute per "
               "epoch per 1,000 images at 128 px. Same as `python -m cleaning train ROOT`.")
    settings = _settings_form()
    if settings is not None:
        _train_live(settings)
    runs = list_runs(ws)
    if not runs:
        st.info("No training runs yet. Train once now, clean on the review pages, then train again to see "
                "what the cleaning changed.")
        return
    st.subheader("Latest run" if len(runs) == 1 else "Run")
    ids = [r.run_id for r in runs]
    chosen = ids[0] if len(runs) == 1 else st.selectbox("Run", ids, index=0, key="train_show_run")
    _show_run(next(r for r in runs if r.run_id == chosen))
    st.subheader("Run history")
    st.dataframe(runs_frame(runs), hide_index=True, width="stretch",
                 column_config={"accuracy": st.column_config.NumberColumn(format="%.3f")})
    if len(runs) >= 2:
        st.subheader("Before / after")
        c1, c2 = st.columns(2)
        before = c1.selectbox("Before", ids, index=1, key="train_cmp_before")
        after = c2.selectbox("After", ids, index=0, key="train_cmp_after")
        if before == after:
            st.info("Pick two different runs.")
        else:
            _show_comparison(compare_runs(ws, before, after))


if __name__ == "__main__":
    run_page(render)
