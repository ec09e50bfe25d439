"""Fine-tune a pretrained classifier with fastai on the store's *current* labels.

Decisions count without applying them: deleted images are left out and relabelled images train
under their new label. The validation split keeps duplicate groups (equal sha256 or equal
perceptual hash) on one side, so a copy in the training set cannot inflate validation accuracy.
Progress is reported per batch and per epoch through a callback usable by the CLI and the UI.
The exported learner goes to ``ROOT.cleaning/runs/<run_id>/model.pkl``; :mod:`cleaning.model.runs`
records the run.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CleaningError
from .backbone import DEFAULT_ARCH, fastai_arch
from .embed import open_for_model
from .oos import assign_folds, encode_labels, make_groups

if TYPE_CHECKING:
    from ..data.workspace import Workspace
    from .runs import RunRecord


@dataclass
class TrainSettings:
    """What a training run does; defaults keep CPU training bearable (≈ 20–60 img/s at 128 px)."""

    arch: str = DEFAULT_ARCH
    epochs: int = 2  # epochs with the whole network unfrozen
    freeze_epochs: int = 1  # epochs training the new head only, before that
    size: int = 128  # square input side in pixels
    batch_size: int = 32
    valid_pct: float = 0.2
    lr: float = 2e-3
    seed: int = 0
    channels_last: bool = True  # faster convolutions on the CPU
    train_bn: bool = False  # False: the head-only epochs back-propagate through the head alone (fast)


@dataclass
class TrainEvent:
    """One progress report: ``kind`` is "batch" (training batch done) or "epoch" (epoch validated)."""

    kind: str
    epoch: int  # 0-based over all stages
    n_epochs: int
    stage: str  # "head" (frozen body) or "all"
    batch: int = 0
    n_batches: int = 0
    loss: float = float("nan")  # last training batch loss, or the epoch's smoothed training loss
    valid_loss: float = float("nan")
    accuracy: float = float("nan")
    seconds: float = 0.0


@dataclass
class TrainResult:
    """Validation metrics and where the model went; ``history`` has one dict per epoch."""

    metrics: dict[str, Any]
    model_path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    batch_losses: list[float] = field(default_factory=list)


def load_training_image(path: str | Path, min_side: int = 128) -> Any:
    """fastai ``get_x``: an RGB image (EXIF-rotated, alpha on white), JPEG-decoded at reduced scale.

    Raises:
        CleaningError: the file is not a usable image (the message names it).
    """
    try:
        return open_for_model(path, min_side)
    except CleaningError as e:
        raise CleaningError(f"{path}: {e.message}", hint="delete the file or fix it, then rescan") from e


class _Labels:
    """fastai ``get_y``: path → current label. Emptied before export (inference never calls it)."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def __call__(self, path: str) -> str:
        return self.mapping[path]


def split_valid(labels: np.ndarray, groups: np.ndarray, valid_pct: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: ≈ ``valid_pct`` of rows, stratified, whole groups only."""
    n_folds = max(2, round(1 / max(min(valid_pct, 0.5), 0.01)))
    return assign_folds(labels, n_folds, groups, seed) == 0


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, vocab: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/support and the K×K confusion matrix (rows = true label)."""
    k = len(vocab)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(vocab):
        tp, pred, true = int(cm[i, i]), int(cm[:, i].sum()), int(cm[i].sum())
        per_class[name] = {"precision": tp / pred if pred else None, "recall": tp / true if true else None,
                           "support": true}
    acc = float(np.trace(cm) / cm.sum()) if cm.sum() else float("nan")
    return {"accuracy": acc, "per_class": per_class, "confusion": cm.tolist(), "vocab": list(vocab)}


def _progress_callback(report: Callable[[TrainEvent], None] | None, n_epochs: int,
                       should_stop: Callable[[], bool] | None, stage_of: Callable[[], str],
                       losses: list[float], history: list[dict[str, Any]]) -> Any:
    from fastai.callback.core import Callback, CancelFitException

    class Progress(Callback):
        order = 90  # after the Recorder has the epoch's values

        def __init__(self) -> None:
            self.epoch_no, self.t0 = 0, time.time()

        def before_epoch(self) -> None:
            self.t0 = time.time()

        def after_batch(self) -> None:
            if not self.training:
                return
            loss = float(self.loss.detach())
            losses.append(loss)
            if report:
                report(TrainEvent("batch", self.epoch_no, n_epochs, stage_of(), self.iter + 1, self.n_iter, loss))
            if should_stop and should_stop():
                raise CancelFitException()

        def after_epoch(self) -> None:
            vals = self.recorder.values[-1] if self.recorder.values else []
            ev = TrainEvent("epoch", self.epoch_no, n_epochs, stage_of(),
                            loss=float(vals[0]) if len(vals) > 0 else float("nan"),
                            valid_loss=float(vals[1]) if len(vals) > 1 else float("nan"),
                            accuracy=float(vals[2]) if len(vals) > 2 else float("nan"),
                            seconds=time.time() - self.t0)
            history.append(asdict(ev))
            self.epoch_no += 1
            if report:
                report(ev)

    return Progress()


def train_classifier(paths: Sequence[str], labels: Sequence[str], out_dir: Path,
                     settings: TrainSettings | None = None, groups: np.ndarray | None = None,
                     on_progress: Callable[[TrainEvent], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Fine-tune ``settings.arch`` on (path, label) pairs; export to ``out_dir/model.pkl``.

    Args:
        groups: N group ids kept on one side of the validation split (default: every image alone).
        on_progress: called with a :class:`TrainEvent` after every training batch and every epoch.
        should_stop: polled after every batch; returning True ends training early (metrics still computed).
    Returns:
        :class:`TrainResult`; ``metrics`` holds accuracy (validation, current labels), n_train, n_valid,
        arch, per_class, confusion, vocab, valid_loss, seconds.
    Raises:
        CleaningError: fewer than 4 images or 2 classes; BackboneUnavailable: weights not available.
    """
    import torch
    from fastai.callback.channelslast import ChannelsLast
    from fastai.vision.all import (
        CategoryBlock,
        DataBlock,
        ImageBlock,
        IndexSplitter,
        Resize,
        accuracy,
        aug_transforms,
        vision_learner,
    )

    s = settings or TrainSettings()
    arch, arch_kwargs = fastai_arch(s.arch)  # fail fast when the weights cannot be had
    paths, labels = [str(p) for p in paths], [str(v) for v in labels]
    vocab = sorted(set(labels))
    if len(paths) < 4 or len(vocab) < 2:
        raise CleaningError(f"too little to train on: {len(paths)} image(s) in {len(vocab)} class(es)",
                            hint="training needs at least 4 images in at least 2 classes")
    y = encode_labels(labels, vocab)
    groups = np.arange(len(paths)) if groups is None else np.asarray(groups)
    valid = split_valid(y, groups, s.valid_pct, s.seed)
    if valid.all() or not valid.any():
        raise CleaningError("cannot split the images into training and validation sets",
                            hint="add more distinct images")
    torch.manual_seed(s.seed)
    lookup = _Labels(dict(zip(paths, labels)))
    block = DataBlock(blocks=(ImageBlock, CategoryBlock(vocab=vocab)),
                      get_x=partial(load_training_image, min_side=s.size), get_y=lookup,
                      splitter=IndexSplitter(np.flatnonzero(valid).tolist()),
                      item_tfms=Resize(s.size), batch_tfms=aug_transforms(size=s.size, min_scale=0.75))
    dls = block.dataloaders(paths, bs=s.batch_size, num_workers=0, device=torch.device("cpu"))
    out_dir.mkdir(parents=True, exist_ok=True)
    learn = vision_learner(dls, arch, metrics=accuracy, path=out_dir, train_bn=s.train_bn, **arch_kwargs)
    if s.channels_last:
        learn.add_cb(ChannelsLast())
    losses: list[float] = []
    history: list[dict[str, Any]] = []
    stage = ["head"]
    n_epochs = s.freeze_epochs + s.epochs
    cb = _progress_callback(on_progress, n_epochs, should_stop, lambda: stage[0], losses, history)
    t0 = time.time()
    with learn.no_bar(), learn.no_logging():
        if s.freeze_epochs > 0:
            learn.freeze()
            learn.fit_one_cycle(s.freeze_epochs, slice(s.lr), pct_start=0.99, cbs=[cb])
        if s.epochs > 0 and not (should_stop and should_stop()):
            stage[0] = "all"
            learn.unfreeze()
            lr = s.lr / 2 if s.freeze_epochs > 0 else s.lr
            learn.fit_one_cycle(s.epochs, slice(lr / 100, lr), pct_start=0.3, div=5.0, cbs=[cb])
        probs, targets = learn.get_preds(dl=dls.valid)
    seconds = time.time() - t0
    metrics = classification_metrics(targets.numpy().astype(np.int64), probs.argmax(1).numpy(), vocab)
    valid_loss = float(torch.nn.functional.nll_loss(torch.log(probs.clamp_min(1e-12)), targets.long()))
    metrics.update(n_train=int((~valid).sum()), n_valid=int(valid.sum()), arch=s.arch, valid_loss=valid_loss,
                   seconds=round(seconds, 2), settings=asdict(s))
    lookup.mapping = {}  # the exported model should not carry the data set's file list
    learn.export("model.pkl")
    return TrainResult(metrics, out_dir / "model.pkl", history, losses)


def new_run_id() -> str:
    """A sortable unique run id: UTC time + 6 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def train_workspace(ws: Workspace, settings: TrainSettings | None = None,
                    on_progress: Callable[[TrainEvent], None] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> tuple[RunRecord, TrainResult]:
    """Train on the workspace's current labels (deleted images out), export and record the run.

    Returns:
        (the recorded :class:`cleaning.model.runs.RunRecord`, the :class:`TrainResult`).
    Raises:
        CleaningError: too few images/classes; BackboneUnavailable: weights not available.
    """
    from .runs import record_run

    s = settings or TrainSettings()
    df = ws.items_frame()
    df = df[~df["deleted"]]
    version = ws.store.decision_count()
    run_id = new_run_id()
    out_dir = Path(ws.state_dir) / "runs" / run_id
    groups = make_groups(list(df["sha256"]), list(df["phash"]))
    result = train_classifier(list(df["abs_path"]), list(df["label"]), out_dir, s, groups, on_progress,
                              should_stop)
    result.metrics["run_id"] = run_id
    (out_dir / "metrics.json").write_text(json.dumps(
        {**result.metrics, "history": result.history}, indent=2), encoding="utf-8")
    record = record_run(ws, run_id, result.metrics, result.model_path, history=result.history,
                        dataset_version=version, batch_losses=result.batch_losses)
    return record, result
