"""Train: a classifier you can trust — a linear probe in seconds or a fine-tune from it in minutes, in the
background; every run scored on the same fixed evaluation set with today's labels; before/after with a
significance test; try the model on an image; bring your own fastai model."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cleaning.model.backbone import ARCHS, DEFAULT_ARCH
from cleaning.model.evalset import compare_on_eval
from cleaning.model.runs import RunComparison, RunRecord, compare_runs, list_runs
from cleaning.model.train import TrainSettings
from cleaning.review.figures import loss_figure, matrix_figure
from pages._common import get_workspace, run_page
from pages._train_run import show_run, try_box
from pages._training import job_of, start

SIZES = ["auto", 64, 96, 128, 160, 224]
MODES = {"quick": "Quick: linear probe (seconds)", "full": "Full: fine-tune from the probe (minutes)"}


def runs_frame(runs: list[RunRecord]) -> pd.DataFrame:
    return pd.DataFrame([{
        "run": r.run_id, "when": r.created_at.replace("T", " ")[:19], "mode": r.mode, "status": r.status,
        "accuracy": r.accuracy, "probe": r.probe_accuracy, "kept": r.chosen or "", "data-set version": r.dataset_version,
        "arch": r.arch, "size": r.settings.get("size"), "train": r.n_train, "valid": r.n_valid, "seconds": r.seconds}
        for r in runs])


def _settings_form(busy: bool) -> TrainSettings | None:
    with st.form("train_settings"):
        mode = st.radio("Mode", list(MODES), format_func=MODES.get, index=1, horizontal=True, key="train_mode",
                        help="Full starts from the probe and keeps whichever of the two is better on the "
                             "evaluation images, so it is never worse than Quick there")
        c1, c2, c3, c4 = st.columns(4)
        arch = c1.selectbox("Backbone", list(ARCHS), index=list(ARCHS).index(DEFAULT_ARCH), key="train_arch",
                            help="EfficientNet-Lite0 works offline; the ResNets download weights once")
        size = c2.select_slider("Image size (px)", SIZES, value="auto", key="train_size",
                                help="auto: the images' typical size, 64–128 px")
        bs = c3.select_slider("Batch size", [8, 16, 32, 64], value=32, key="train_bs")
        epochs = c4.number_input("Most epochs (full)", 1, 50, 8, key="train_epochs",
                                 help="Stops earlier when the validation loss stops improving")
        if st.form_submit_button("Train", type="primary", icon=":material/play_arrow:", disabled=busy):
            return TrainSettings(arch=arch, mode=mode, epochs=int(epochs), size=None if size == "auto" else int(size),
                                 batch_size=int(bs))
    return None


def _live(root: str, polling: bool) -> None:
    ws = get_workspace()
    job = job_of(ws)
    if job is None:
        return
    snap = job.snapshot()
    if polling and not job.active:
        st.rerun()
    if not job.active:
        return
    st.progress(snap["fraction"], text=snap["text"])
    if snap["probe_accuracy"] is not None:
        st.caption(f"Linear probe: {snap['probe_accuracy']:.1%} on the evaluation images")
    if snap["losses"]:
        st.plotly_chart(loss_figure(snap["losses"], [h for h in snap["history"] if h["epoch"] >= 0]),
                        key=f"live_loss_{len(snap['losses'])}")
    st.button("Stop", key="train_stop", on_click=job.stop.set, icon=":material/stop:", disabled=job.stop.is_set(),
              help="Stops after the current batch; keeps the best model so far and records the run as stopped")


def _show_comparison(ws, cmp: RunComparison) -> None:  # noqa: ANN001
    ev = compare_on_eval(ws, cmp.before.run_id, cmp.after.run_id)
    c1, c2, c3 = st.columns(3)
    c1.metric("Before (today's labels)", f"{ev.accuracy_before:.1%}" if ev.accuracy_before is not None else "–",
              help=cmp.before.run_id)
    delta = (ev.accuracy_after - ev.accuracy_before) if ev.accuracy_after is not None and \
        ev.accuracy_before is not None else None
    c2.metric("After (today's labels)", f"{ev.accuracy_after:.1%}" if ev.accuracy_after is not None else "–",
              delta=f"{delta * 100:+.1f} pts" if delta is not None else None, help=cmp.after.run_id)
    c3.metric("Decisions that differ", len(cmp.decisions),
              help="Active at one run and not at the other (undone or discarded decisions count only where active)")
    (st.success if ev.significant and ev.only_after > ev.only_before else st.info)(ev.verdict())
    left, right = st.columns(2)
    with left:
        st.markdown("**Confusion at training time: after − before** (blue = more, red = fewer)")
        st.plotly_chart(matrix_figure(cmp.confusion_diff, cmp.vocab, diverging=True),
                        key=f"cmp_{cmp.before.run_id}_{cmp.after.run_id}")
    with right:
        if cmp.decisions:
            undone = {d.seq for d in cmp.undone}
            st.markdown("**What changed between the two runs**")
            st.dataframe(pd.DataFrame([{"#": d.seq, "action": d.action, "label": d.label or "",
                                        "image": getattr(d, "path", d.item_id),
                                        "active at": "before only" if d.seq in undone else "after only"}
                                       for d in cmp.decisions]),
                         hide_index=True, width="stretch", height=min(400, 38 + 35 * len(cmp.decisions)))
        else:
            st.caption("The same decisions were active at both runs.")


def render() -> None:
    ws = get_workspace()
    st.title("Train")
    frame = ws.items_frame()
    live = frame[~frame["deleted"]]
    st.caption(f"Trains on the **current** labels: {len(live)} images in {live['label'].nunique()} classes (deleted "
               "images left out; no need to apply first). A fixed fifth of the data set, chosen once, is the "
               "evaluation set: no run trains on it, so runs are compared on the same images. Training runs in "
               "the background: you can keep reviewing, and stop it from the sidebar. Same as "
               "`python -m cleaning train ROOT --mode quick|full`.")
    job = job_of(ws)
    busy = job is not None and job.active
    settings = _settings_form(busy)
    if settings is not None:
        start(ws, settings)
        st.rerun()
    st.fragment(_live, run_every=1.0 if busy else None)(str(ws.root), busy)
    runs = list_runs(ws)
    if not runs:
        st.info("No training runs yet. Train once now, clean on the review pages, then train again to see what "
                "the cleaning changed.")
    else:
        ids = [r.run_id for r in runs]
        chosen = st.selectbox("Run", ids, index=0, key="train_show_run",
                              format_func=lambda i: next(f"{r.run_id} · {r.mode} · {r.status} · "
                                                         f"{(r.accuracy or 0):.1%}" for r in runs if r.run_id == i))
        run = next(r for r in runs if r.run_id == chosen)
        show_run(ws, run)
        if run.model_path:
            st.subheader("Try the model")
            try_box(ws, run)
        st.subheader("Run history")
        st.dataframe(runs_frame(runs), hide_index=True, width="stretch",
                     column_config={"accuracy": st.column_config.NumberColumn(format="%.3f"),
                                    "probe": st.column_config.NumberColumn(format="%.3f")})
        if len(runs) >= 2:
            st.subheader("Before / after")
            c1, c2 = st.columns(2)
            before = c1.selectbox("Before", ids, index=1, key="train_cmp_before")
            after = c2.selectbox("After", ids, index=0, key="train_cmp_after")
            if before == after:
                st.info("Pick two different runs.")
            else:
                _show_comparison(ws, compare_runs(ws, before, after))
    from pages._own_model import own_model_section

    own_model_section(ws)


if __name__ == "__main__":
    run_page(render)
