""""Retrain is one click away": a link to the Train page and, once two runs exist, the before/after.

Shared by the Issues and Export pages. Reads the run history through :mod:`cleaning.model.runs`; shows a
plain hint instead when that module or the Train page is not there.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cleaning.data.workspace import Workspace
from cleaning.errors import CleaningError

TRAIN_PAGE = "pages/train.py"
_HERE = Path(__file__).resolve().parent.parent


def _runs(ws: Workspace) -> list | None:
    from cleaning.model.runs import list_runs

    try:
        return list_runs(ws)
    except CleaningError:
        return None


def decisions_since(ws: Workspace, last_seq: int) -> int:
    """Active decisions recorded after decision ``last_seq`` (0 = since the start)."""
    return ws.store.active_decisions_since(last_seq)


def retrain_box(ws: Workspace, key: str) -> None:
    """A small bordered box: decisions since the last run, the link to Train, and the last two runs'
    accuracy with its change (``key`` keeps widget ids apart between pages)."""
    runs = _runs(ws)
    with st.container(border=True, key=f"{key}_retrain"):
        if runs:
            n = decisions_since(ws, runs[0].last_seq)
            st.markdown(f"**Retrain** · {n} decision(s) since the last run" if n else
                        "**Retrain** · the last run already saw every decision")
        else:
            st.markdown(f"**Train a model** · {ws.store.decision_count()} decision(s) so far")
        if (_HERE / TRAIN_PAGE).exists():
            st.page_link(TRAIN_PAGE, label="Retrain with the current labels" if runs else "Train a model",
                         icon=":material/model_training:")
        else:
            st.caption("Train with `python -m cleaning train ROOT`.")
        if runs and len(runs) >= 2:
            _before_after(ws, runs[1].run_id, runs[0].run_id)


def _before_after(ws: Workspace, before: str, after: str) -> None:
    from cleaning.model.runs import compare_runs

    try:
        cmp = compare_runs(ws, before, after)
    except CleaningError:
        return
    acc = cmp.after.accuracy
    if acc is None:
        return
    delta = f"{cmp.accuracy_delta * 100:+.1f} pts" if cmp.accuracy_delta is not None else None
    st.metric("Accuracy, last run", f"{acc:.1%}", delta=delta,
              help=f"Validation accuracy of the last run against the run before it "
                   f"({cmp.before.accuracy:.1%}); {len(cmp.decisions)} decision(s) happened in between."
              if cmp.before.accuracy is not None else None)
