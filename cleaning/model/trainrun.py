"""One training run of a workspace, in the foreground (CLI) or in a background thread (the app).

:func:`train_workspace` trains on the current labels with the data set's fixed evaluation set as the
validation set (nothing in it, nor any duplicate of it, is trained on), stores the chosen model's
predictions for every evaluation image (deleted ones too, so a restore can be scored later) and records
the run with the decisions active when it started. A stopped run is recorded as ``stopped``: with the
best model so far, or without a model (and without a run folder) when stopped before the probe existed.

:func:`start_training` runs it in a daemon thread and returns a :class:`TrainJob` that any page can poll
(progress, loss curve) and stop. One run trains at a time per process (a server shared by many
visitors must not hold two networks at once); a second waits its turn.
"""

from __future__ import annotations

import gc
import json
import logging
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CleaningError
from .train import TrainEvent, TrainingStopped, TrainResult, TrainSettings, train_classifier

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..data.workspace import Workspace
    from .runs import RunRecord

logger = logging.getLogger(__name__)

#: One training at a time in this process.
_SLOT = threading.Lock()


def new_run_id() -> str:
    """A sortable unique run id: UTC time + 6 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def _predict_extra(model_path: Path, paths: list[str]) -> tuple[list[str], np.ndarray]:
    from .predict import load_model, predict_paths

    learn = load_model(model_path)
    try:
        return predict_paths(learn, paths)
    finally:
        del learn
        gc.collect()


def train_workspace(ws: Workspace, settings: TrainSettings | None = None,
                    on_progress: Callable[[TrainEvent], None] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> tuple[RunRecord, TrainResult]:
    """Train on the workspace's current labels (deleted images out), validate on the evaluation set,
    export and record the run.

    Returns:
        (the recorded :class:`cleaning.runs.RunRecord`, the :class:`TrainResult`).
    Raises:
        CleaningError: too few images/classes; BackboneUnavailable: weights not available.
    """
    from .evalset import load_or_choose_eval_set, training_split
    from .runs import record_run

    s = settings or TrainSettings()
    ev = load_or_choose_eval_set(ws, fraction=s.valid_pct, seed=s.seed)
    frame = ws.items_frame()
    version, active = ws.store.decision_count(), ws.store.active_seqs()
    df = frame[~frame["deleted"]].reset_index(drop=True)
    valid, keep = training_split(df, set(ev.item_ids))
    df, valid = df[keep].reset_index(drop=True), valid[keep]
    if not valid.any() or valid.all():
        raise CleaningError("the evaluation set leaves nothing to train or nothing to validate on",
                            hint="add images (the evaluation set is a fixed fifth of the data set)")
    run_id = new_run_id()
    out_dir = Path(ws.state_dir) / "runs" / run_id
    try:
        result = train_classifier(list(df["abs_path"]), list(df["label"]), out_dir, s, None, on_progress,
                                  should_stop, valid=valid)
    except TrainingStopped:
        shutil.rmtree(out_dir, ignore_errors=True)  # never leave an empty run folder
        record = record_run(ws, run_id, {"arch": s.arch, "settings": asdict(s), "mode": s.mode,
                                         "vocab": sorted(set(df["label"]))}, "", dataset_version=version,
                            status="stopped", eval_id=ev.eval_id, active_seqs=active)
        return record, TrainResult({"run_id": run_id, "stopped": True}, None, stopped=True)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    m = result.metrics
    m["run_id"], m["eval_set"] = run_id, ev.eval_id
    probs = {str(df["item_id"][i]): list(p) for i, p in zip(result.valid_index, result.valid_probs)}
    gone = frame[frame["deleted"] & frame["item_id"].isin(ev.item_ids)]  # deleted evaluation images
    if len(gone) and result.model_path is not None:
        try:
            vocab, extra = _predict_extra(result.model_path, list(gone["abs_path"]))
            probs.update({str(i): list(p) for i, p in zip(gone["item_id"], extra) if vocab == m["vocab"]})
        except CleaningError as e:  # unreadable now: they are simply not scored if restored
            logger.warning("could not predict deleted evaluation images: %s", e)
    (out_dir / "metrics.json").write_text(json.dumps({**m, "history": result.history}, indent=2), encoding="utf-8")
    ws.store.save_run_predictions(run_id, probs)
    record = record_run(ws, run_id, m, result.model_path, history=result.history, dataset_version=version,
                        batch_losses=result.batch_losses, status="stopped" if result.stopped else "done",
                        eval_id=ev.eval_id, active_seqs=active)
    return record, result


@dataclass
class TrainJob:
    """A training run in a background thread, for pages to poll (thread-safe) and stop."""

    root: str
    settings: TrainSettings
    stop: threading.Event = field(default_factory=threading.Event)
    state: str = "waiting"  # waiting | running | done | stopped | failed
    stage: str = ""
    fraction: float = 0.0
    text: str = "Waiting for another training run to finish…"
    losses: list[float] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None
    accuracy: float | None = None
    probe_accuracy: float | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def active(self) -> bool:
        return self.state in ("waiting", "running")

    def on_progress(self, ev: TrainEvent) -> None:
        with self._lock:
            self.stage = ev.stage
            if ev.kind == "features":
                self.fraction = 0.15 * ev.batch / max(1, ev.n_batches) if self.settings.mode == "full" else \
                    0.9 * ev.batch / max(1, ev.n_batches)
                self.text = f"Probe: features of {ev.batch}/{ev.n_batches} images"
            elif ev.kind == "probe":
                self.probe_accuracy = ev.accuracy
                self.history.append({"epoch": -1, "valid_loss": ev.valid_loss, "accuracy": ev.accuracy})
                self.text = f"Probe fitted: validation accuracy {ev.accuracy:.1%}"
            elif ev.kind == "batch":
                self.losses.append(ev.loss)
                self.fraction = 0.15 + 0.85 * (ev.epoch + ev.batch / max(1, ev.n_batches)) / max(1, ev.n_epochs)
                self.text = (f"Fine-tuning: epoch {ev.epoch + 1}/{ev.n_epochs} · batch {ev.batch}/{ev.n_batches}"
                             f" · loss {ev.loss:.3f}")
            else:
                self.history.append({"epoch": ev.epoch, "valid_loss": ev.valid_loss, "accuracy": ev.accuracy})

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy for a page to draw."""
        with self._lock:
            return {"state": self.state, "stage": self.stage, "fraction": min(1.0, self.fraction), "text": self.text,
                    "losses": list(self.losses), "history": list(self.history), "run_id": self.run_id,
                    "accuracy": self.accuracy, "probe_accuracy": self.probe_accuracy, "error": self.error,
                    "seconds": time.time() - self.started, "mode": self.settings.mode}

    def _set(self, **kw: Any) -> None:  # noqa: ANN401
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, v)


def start_training(ws: Workspace, settings: TrainSettings) -> TrainJob:
    """Start :func:`train_workspace` in a daemon thread; returns the job to poll or stop."""
    job = TrainJob(str(ws.root), settings)

    def main() -> None:
        with _SLOT:
            if job.stop.is_set():
                job._set(state="stopped", text="Stopped before it started")
                return
            job._set(state="running", text="Preparing the model…", started=time.time())
            try:
                record, _ = train_workspace(ws, settings, job.on_progress, job.stop.is_set)
            except CleaningError as e:
                job._set(state="failed", error=str(e), text="Failed")
            except Exception as e:  # a bug: loud in the log, visible in the UI
                logger.exception("training run crashed")
                job._set(state="failed", error=f"unexpected error (a bug): {type(e).__name__}: {e}", text="Failed")
            else:
                job._set(state=record.status, run_id=record.run_id, accuracy=record.accuracy, fraction=1.0,
                         text=(f"Stopped: run {record.run_id}" if record.status == "stopped" else
                               f"Done: run {record.run_id}")
                         + (f", validation accuracy {record.accuracy:.1%}" if record.accuracy is not None
                            else " (stopped before a model existed)"))
            finally:
                gc.collect()

    threading.Thread(target=main, name="train-run", daemon=True).start()
    return job
