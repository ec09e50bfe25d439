"""Training-run history in the workspace's SQLite file, and before/after comparison of two runs.

The runs live in the ``runs`` table of the workspace's store (its SQL is in
:mod:`cleaning.data.store_runs`). A run records when it happened, the data-set version (``decision_count()``) and the
last decision sequence number at that moment, its settings, validation accuracy, per-class metrics,
confusion matrix (JSON) and the exported model file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.store_runs import RUN_COLUMNS
from ..errors import CleaningError

if TYPE_CHECKING:
    from ..data.workspace import Workspace

_COLUMNS = RUN_COLUMNS



class RunNotFound(CleaningError):
    """A run id that the workspace has no record of."""


@dataclass
class RunRecord:
    run_id: str
    created_at: str  # ISO-8601 UTC
    dataset_version: int  # ws.store.decision_count() when the run started
    last_seq: int  # highest decision seq when the run started
    arch: str
    settings: dict[str, Any]
    accuracy: float | None
    valid_loss: float | None
    n_train: int
    n_valid: int
    vocab: list[str]
    per_class: dict[str, dict[str, Any]]
    confusion: list[list[int]]  # K×K, rows = true label, columns = predicted, in ``vocab`` order
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per epoch (cleaning.model.train.TrainEvent)
    batch_losses: list[float] = field(default_factory=list)  # training loss of every batch
    model_path: str = ""  # empty for a run stopped before any model existed
    seconds: float | None = None
    status: str = "done"  # "done" or "stopped" (stopped early: the best model so far, if any, is kept)
    mode: str = "full"  # "quick" (linear probe) or "full" (fine-tuned from the probe)
    probe_accuracy: float | None = None  # the linear probe's accuracy on the same validation images
    chosen: str | None = None  # which model the run kept: "probe" or "finetune"
    eval_id: str | None = None  # the fixed evaluation set the run was validated on
    active_seqs: list[int] | None = None  # decisions active when the run started (None: not recorded)


@dataclass
class RunComparison:
    """Run ``after`` against run ``before``: what changed and which decisions happened in between."""

    before: RunRecord
    after: RunRecord
    accuracy_delta: float | None
    vocab: list[str]  # union of both vocabularies
    confusion_before: np.ndarray  # K×K over ``vocab``
    confusion_after: np.ndarray
    confusion_diff: np.ndarray  # after − before (counts; validation sets may differ in size)
    recall_delta: dict[str, float | None]
    decisions: list[Any]  # store Decisions active at exactly one of the two runs (what changed), oldest first
    undone: list[Any] = field(default_factory=list)  # those of them active at ``before`` only (taken back)

    @property
    def active_decisions(self) -> list[Any]:
        """The decisions in between that are in effect now (not undone, not discarded after an undo)."""
        return [d for d in self.decisions if getattr(d, "state", "active") == "active"]


def ensure_table(ws: Workspace) -> None:
    """Kept for callers of older versions: the ``runs`` table is part of the store's schema (version 3)."""
    return None


def _last_seq(ws: Workspace) -> int:
    return ws.store.last_seq()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def record_run(ws: Workspace, run_id: str, metrics: dict[str, Any], model_path: str | Path,
               history: list[dict[str, Any]] | None = None, dataset_version: int | None = None,
               created_at: str | None = None, batch_losses: list[float] | None = None,
               status: str = "done", eval_id: str | None = None,
               active_seqs: list[int] | None = None) -> RunRecord:
    """Store a run (``metrics`` as returned by :func:`cleaning.model.train.train_classifier`).

    ``active_seqs``: the decisions active when the run started (default: those active now).
    """
    rec = RunRecord(
        run_id=run_id, created_at=created_at or _now(),
        dataset_version=ws.store.decision_count() if dataset_version is None else dataset_version,
        last_seq=_last_seq(ws), arch=str(metrics.get("arch", "")), settings=dict(metrics.get("settings", {})),
        accuracy=metrics.get("accuracy"), valid_loss=metrics.get("valid_loss"),
        n_train=int(metrics.get("n_train", 0)), n_valid=int(metrics.get("n_valid", 0)),
        vocab=list(metrics.get("vocab", [])), per_class=dict(metrics.get("per_class", {})),
        confusion=[list(map(int, r)) for r in metrics.get("confusion", [])], history=list(history or []),
        batch_losses=[float(x) for x in batch_losses or []], model_path=str(model_path or ""),
        seconds=metrics.get("seconds"), status=status, mode=str(metrics.get("mode", "full")),
        probe_accuracy=metrics.get("probe_accuracy"), chosen=metrics.get("chosen"), eval_id=eval_id,
        active_seqs=list(ws.store.active_seqs() if active_seqs is None else active_seqs),
    )
    ws.store.save_run({c: getattr(rec, c) for c in _COLUMNS})
    return rec


def _from_row(row: Any) -> RunRecord:
    d = dict(row)
    for k in ("settings", "vocab", "per_class", "confusion", "history", "batch_losses", "active_seqs"):
        d[k] = json.loads(d[k]) if d[k] is not None else None
    return RunRecord(**d)


def list_runs(ws: Workspace) -> list[RunRecord]:
    """Every recorded run, newest first."""
    return [_from_row(r) for r in ws.store.run_rows()]


def get_run(ws: Workspace, run_id: str) -> RunRecord:
    """The run ``run_id``. Raises :class:`RunNotFound`."""
    rows = ws.store.run_rows(run_id)
    row = rows[0] if rows else None
    if row is None:
        raise RunNotFound(f"no training run {run_id!r}", hint="list runs on the Train page or in runs/")
    return _from_row(row)


def _reindex(cm: list[list[int]], vocab: list[str], union: list[str]) -> np.ndarray:
    out = np.zeros((len(union), len(union)), dtype=np.int64)
    if not cm:
        return out
    idx = [union.index(v) for v in vocab]
    out[np.ix_(idx, idx)] = np.asarray(cm, dtype=np.int64)
    return out


def _recall(cm: np.ndarray) -> np.ndarray:
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def _active_at(run: RunRecord, history: list[Any]) -> set[int]:
    if run.active_seqs is not None:
        return set(run.active_seqs)
    return {d.seq for d in history if d.seq <= run.last_seq and d.state == "active"}


def compare_runs(ws: Workspace, a: str, b: str) -> RunComparison:
    """Compare run ``b`` (after) with run ``a`` (before).

    Returns the accuracy delta, both confusion matrices over the union of labels and their difference,
    per-class recall deltas, the decisions active at one run but not the other (``decisions``; the runs
    may be given in either order) and which of them were active at ``a`` only (``undone``). Undone and discarded decisions count only where
    they were active. Runs recorded before active decisions were kept fall back to "active now and at
    most the run's last seq".

    Raises:
        RunNotFound: either run id is unknown.
    """
    before, after = get_run(ws, a), get_run(ws, b)
    union = sorted(set(before.vocab) | set(after.vocab))
    cm_a = _reindex(before.confusion, before.vocab, union)
    cm_b = _reindex(after.confusion, after.vocab, union)
    ra, rb = _recall(cm_a), _recall(cm_b)
    recall_delta = {v: (None if np.isnan(x) or np.isnan(y) else float(y - x)) for v, x, y in zip(union, ra, rb)}
    history = ws.store.history()
    at_a, at_b = _active_at(before, history), _active_at(after, history)
    decisions = [d for d in history if d.seq in at_a ^ at_b]
    undone = [d for d in history if d.seq in at_a - at_b]
    delta = (after.accuracy - before.accuracy
             if after.accuracy is not None and before.accuracy is not None else None)
    return RunComparison(before, after, delta, union, cm_a, cm_b, cm_b - cm_a, recall_delta, decisions, undone)
