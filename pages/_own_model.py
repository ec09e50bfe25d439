"""Bring your own model: upload a fastai learner exported elsewhere; its predictions become a confusion
matrix here and an extra opinion in the scan. Said plainly: a model trained on these images has seen them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError
from cleaning.model.predict import clear_foreign, foreign_predictions, load_foreign
from cleaning.review.figures import confusion_figure
from cleaning.review.selection import compute_confusion, selected_points
from pages._common import hosted, show_error
from pages._review import item_grid, items

CELL = "own_cell"


def _mapping_text(text: str) -> dict[str, str]:
    out = {}
    for line in text.replace(",", "\n").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def own_model_section(ws: Workspace) -> None:
    st.subheader("Your own model")
    st.caption("Load a fastai learner you exported elsewhere (`learn.export()`), with the same classes as this "
               "data set (or names that differ only in case, spaces, `-`, `_`, or mapped below). Its predictions "
               "give a confusion matrix here and an extra opinion in the scan. **A model trained on these very "
               "images has seen them**: where it agrees with a wrong label it may simply have learnt it, so its "
               "opinion is not out-of-sample like the scan's own.")
    if hosted():
        st.info("Uploading a model is off on this shared server: a fastai export is a Python pickle, and loading "
                "one runs code. Run the app locally, or use `python -m cleaning predict ROOT --model export.pkl`.")
    else:
        with st.form("own_model"):
            up = st.file_uploader("Exported learner (.pkl) — load only files you trust: loading runs code",
                                  type=["pkl", "pth"], key="own_upload")
            mapping = st.text_input("Class mapping (optional): MODEL_CLASS=DATASET_CLASS, comma-separated",
                                    key="own_map")
            if st.form_submit_button("Use this model") and up is not None:
                dest = Path(ws.state_dir) / "own_model" / Path(up.name).name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(up.getvalue())
                try:
                    with st.spinner("Predicting every image with your model…"):
                        foreign_predictions(ws, dest, _mapping_text(mapping), model_name=up.name)
                except CleaningError as e:
                    show_error(e)
                else:
                    _refresh_scan(ws)
                    st.rerun()
    fp = load_foreign(ws)
    if fp is None:
        return
    frame = items(ws)
    live = frame[~frame["deleted"] & frame["item_id"].isin(fp.item_ids)]
    pred = dict(zip(fp.item_ids, (fp.vocab[i] for i in fp.pred_probs.argmax(1))))
    conf = compute_confusion(list(live["item_id"]), list(live["label"]), [pred[i] for i in live["item_id"]])
    shown = {k: v for k, v in fp.mapping.items() if k != v}
    st.markdown(f"**{fp.model_name}** agrees with today's label on {conf.accuracy():.1%} of {conf.n} images"
                + (" · mapping " + ", ".join(f"`{k}` → `{v}`" for k, v in shown.items()) if shown else ""))
    c = st.columns([5, 6], gap="large")
    key = f"own_cm_{fp.model_sha}_{st.session_state.setdefault('own_cm_gen', 0)}"
    pts = [p for p in selected_points(st.session_state.get(key)) if isinstance(p.get("customdata"), list)]
    if pts:
        st.session_state[CELL] = tuple(map(str, pts[-1]["customdata"][:2]))
    cell = st.session_state.get(CELL)
    with c[0]:
        k = len(conf.vocab)
        st.plotly_chart(confusion_figure(conf, cell_px=max(30, min(80, 380 // max(k, 1))), selected=cell), key=key,
                        on_select="rerun", selection_mode="points", width="content", config={"displayModeBar": False})
        if st.button("Stop using this model", key="own_clear"):
            clear_foreign(ws)
            _refresh_scan(ws)
            st.rerun()
    with c[1]:
        if cell and cell[0] in conf.vocab and cell[1] in conf.vocab:
            st.markdown(f"**Labelled {cell[0]}, your model says {cell[1]}**")
            item_grid(ws, conf.ids(*cell), f"own_grid_{cell[0]}_{cell[1]}", page_size=9, columns=3, selectable=False)
        else:
            st.info("Click a cell to see its images.")
            st.dataframe(pd.DataFrame(conf.most_confused()[:8], columns=["label", "your model", "images"]),
                         hide_index=True)


def _refresh_scan(ws: Workspace) -> None:
    """The scan's issue table includes the model's opinion: drop the in-memory copy so pages reload it."""
    from pages._review import issues

    try:
        issues(ws, refresh=True)
    except CleaningError:
        pass
