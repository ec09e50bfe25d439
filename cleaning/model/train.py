"""Fine-tune a pretrained classifier with fastai on the store's *current* labels.

Decisions count without applying them: deleted images are left out and relabelled images train
under their new label. The validation split keeps duplicate groups (equal sha256 or equal
perceptual hash) on one side, so a copy in the training set cannot inflate validation accuracy.
Progress is reported per batch and per epoch through a callback usable by the CLI and the UI.
The exported learner goes to ``ROOT.cleaning/runs/<run_id>/model.pkl``; :mod:`cleaning.model.runs`
records the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CleaningError
from .backbone import DEFAULT_ARCH, fastai_arch
from .embed import engines_in_use, open_for_model
from .oos import DEFAULT_C, assign_folds, encode_labels, fit_linear_probe
from .steps import (  # noqa: F401 — TrainEvent, TrainingStopped, DEFAULT_LR, LR_RANGE: re-exported
    DEFAULT_LR,
    LR_RANGE,
    TrainEvent,
    TrainingStopped,
    auto_size,
    image_sizes,
    pick_lr,
    probe_features,
    progress_callback,
    scores,
    softmax,
)

#: Training modes: "quick" fits the linear probe only (seconds); "full" fine-tunes from it (minutes).
MODES = ("quick", "full")


@dataclass
class TrainSettings:
    """What a training run does.

    ``mode="quick"``: the pretrained body stays as it is and a linear probe (the out-of-sample step's
    head: standardised L2-normalised pooled features + logistic regression, ``C=probe_c``) is fitted on
    the training images and copied into the network's final linear layer. ``mode="full"``: the same
    probe is the warm start, then the whole network is fine-tuned for at most ``epochs`` epochs, stopping
    when the validation loss has not improved for ``patience`` epochs; the epoch with the lowest
    validation loss is kept, and the run's model is whichever of probe and fine-tune scores the higher
    validation accuracy (ties: lower validation loss).

    Learning rate: ``lr`` if given; else with ``lr_find=True`` a short fastai ``lr_find`` sweep (its
    "valley", clamped to :data:`LR_RANGE`); else the rule :data:`DEFAULT_LR` for the head and a tenth
    of it for the body. Why a rule by default: the head starts at the probe's optimum, so the step
    size only has to move a pretrained network a little; 1e-3 with Adam is fastai's own fine-tuning
    rate after its head-only epoch (``fine_tune``: base 2e-3, halved), and a sweep costs about as
    much as two epochs on a CPU. The body gets a tenth (fastai uses a hundredth) so that classes far
    from ImageNet (digits, sketches) can still reshape its features.
    ``size=None`` trains at the images' typical size, between 64 and 128 px (cheaper for small images, but
    on 64-px digits the probe lost 1–4 points against 128 px: the pretrained features like larger inputs).
    """

    arch: str = DEFAULT_ARCH
    mode: str = "full"
    epochs: int = 8  # most fine-tuning epochs (full mode); early stopping usually ends sooner
    freeze_epochs: int = 0  # extra epochs training the warm-started head alone before unfreezing
    patience: int = 2  # epochs without a better validation loss before stopping
    size: int | None = 128  # square input side in pixels; None: the images' typical size (64–128)
    batch_size: int = 32
    valid_pct: float = 0.2  # only used without a fixed evaluation set
    lr: float | None = None  # None: DEFAULT_LR, or lr_find when ``lr_find``
    lr_find: bool = False
    probe_c: float = DEFAULT_C
    seed: int = 0
    channels_last: bool = True  # faster convolutions on the CPU
    train_bn: bool = False  # False: head-only epochs back-propagate through the head alone (fast)


@dataclass
class TrainResult:
    """Validation metrics and where the model went; ``history`` has one dict per epoch.

    ``valid_probs`` (V×K, ``metrics["vocab"]`` order) are the chosen model's probabilities for the
    validation images ``valid_index`` (positions in the ``paths`` given to :func:`train_classifier`).
    """

    metrics: dict[str, Any]
    model_path: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)
    batch_losses: list[float] = field(default_factory=list)
    valid_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    valid_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    stopped: bool = False


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


def train_classifier(paths: Sequence[str], labels: Sequence[str], out_dir: Path,
                     settings: TrainSettings | None = None, groups: np.ndarray | None = None,
                     on_progress: Callable[[TrainEvent], None] | None = None,
                     should_stop: Callable[[], bool] | None = None,
                     valid: np.ndarray | None = None) -> TrainResult:
    """Warm-start from a linear probe, optionally fine-tune, keep the better; export ``out_dir/model.pkl``.

    Args:
        groups: N group ids kept on one side of the validation split (default: every image alone).
        on_progress: called with a :class:`TrainEvent` after every probe-feature batch, training batch
            and epoch.
        should_stop: polled after every batch; True ends training early (the best model so far is kept).
        valid: N booleans, the validation images (e.g. the data set's fixed evaluation set); default a
            stratified ``settings.valid_pct`` split keeping ``groups`` together.
    Returns:
        :class:`TrainResult`; ``metrics`` holds accuracy (validation, current labels), probe_accuracy,
        finetune_accuracy, chosen ("probe" or "finetune"), n_train, n_valid, arch, mode, per_class,
        confusion, vocab, valid_loss, lr, seconds, settings.
    Raises:
        CleaningError: fewer than 4 images or 2 classes, bad mode; TrainingStopped: stopped before the
        probe existed (nothing exported, ``out_dir`` not created); BackboneUnavailable.
    """
    import gc

    import torch

    s = settings or TrainSettings()
    if s.mode not in MODES:
        raise CleaningError(f"unknown training mode {s.mode!r}", hint=f"use one of {', '.join(MODES)}")
    arch, arch_kwargs = fastai_arch(s.arch)  # fail fast when the weights cannot be had
    paths, labels = [str(p) for p in paths], [str(v) for v in labels]
    vocab = sorted(set(labels))
    if len(paths) < 4 or len(vocab) < 2:
        raise CleaningError(f"too little to train on: {len(paths)} image(s) in {len(vocab)} class(es)",
                            hint="training needs at least 4 images in at least 2 classes")
    y = encode_labels(labels, vocab)
    groups = np.arange(len(paths)) if groups is None else np.asarray(groups)
    valid = split_valid(y, groups, s.valid_pct, s.seed) if valid is None else np.asarray(valid, bool)
    if valid.all() or not valid.any():
        raise CleaningError("cannot split the images into training and validation sets",
                            hint="add more distinct images")
    if s.size is None:
        s = replace(s, size=auto_size(*image_sizes(paths)))
    torch.manual_seed(s.seed)
    t0 = time.time()
    learn = _learner(paths, labels, vocab, valid, s, arch, arch_kwargs, out_dir)
    try:
        return _run(learn, y, valid, vocab, s, out_dir, on_progress, should_stop, t0)
    finally:
        learn.dls, learn.model, learn.opt = None, None, None  # break cycles so memory is freed now
        del learn
        gc.collect()


def _learner(paths: list[str], labels: list[str], vocab: list[str], valid: np.ndarray, s: TrainSettings,
             arch: Any, arch_kwargs: dict[str, Any], out_dir: Path) -> Any:
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

    from .backbone import arch_spec

    lookup = _Labels(dict(zip(paths, labels)))
    block = DataBlock(blocks=(ImageBlock, CategoryBlock(vocab=vocab)),
                      get_x=partial(load_training_image, min_side=s.size), get_y=lookup,
                      splitter=IndexSplitter(np.flatnonzero(valid).tolist()),
                      item_tfms=Resize(s.size), batch_tfms=aug_transforms(size=s.size, min_scale=0.75))
    dls = block.dataloaders(paths, bs=s.batch_size, num_workers=0, device=torch.device("cpu"))
    from .heads import ProbeHead

    head = ProbeHead(arch_spec(s.arch).dim, len(vocab))
    learn = vision_learner(dls, arch, metrics=accuracy, path=out_dir, train_bn=s.train_bn, custom_head=head,
                           **arch_kwargs)
    learn.model = learn.model.to(memory_format=torch.channels_last)
    if s.channels_last:
        learn.add_cb(ChannelsLast())
    learn._lookup, learn._all_paths = lookup, paths
    return learn


def _run(learn: Any, y: np.ndarray, valid: np.ndarray, vocab: list[str], s: TrainSettings, out_dir: Path,
         on_progress: Callable[[TrainEvent], None] | None, should_stop: Callable[[], bool] | None,
         t0: float) -> TrainResult:
    import copy


    train_idx, valid_idx = np.flatnonzero(~valid), np.flatnonzero(valid)
    done = [0]
    with engines_in_use():  # the compiled backbone is dropped once the features are made, before fine-tuning
        feats = [probe_features(learn, learn.dls.test_dl([learn._all_paths[i] for i in idx]), s.arch, s.size,
                                should_stop, on_progress, done, len(y)) for idx in (train_idx, valid_idx)]
    probe = fit_linear_probe(feats[0], y[train_idx], len(vocab), s.probe_c, s.seed)
    learn.model[1].load_probe(probe)
    targets = y[valid_idx]
    probe_probs = softmax(probe.logits(feats[1]))
    probe_loss = float(-np.log(np.maximum(probe_probs[np.arange(len(targets)), targets], 1e-12)).mean())
    del feats
    probe_acc = float((probe_probs.argmax(1) == targets).mean())
    if on_progress:
        on_progress(TrainEvent("probe", 0, 0, "probe", loss=probe_loss, valid_loss=probe_loss,
                               accuracy=probe_acc, seconds=time.time() - t0))
    losses: list[float] = []
    history: list[dict[str, Any]] = [{"kind": "probe", "epoch": -1, "stage": "probe", "valid_loss": probe_loss,
                                      "accuracy": probe_acc, "seconds": round(time.time() - t0, 2)}]
    chosen, probs, loss, ft_acc, lr = "probe", probe_probs, probe_loss, None, None
    stopped = bool(should_stop and should_stop())
    if s.mode == "full" and not stopped and (s.epochs > 0 or s.freeze_epochs > 0):
        probe_state = copy.deepcopy(learn.model.state_dict())
        best: dict[str, Any] = {"loss": float("inf"), "state": None, "epoch": None, "stopped": False}
        stage = ["head"]
        cb = progress_callback(on_progress, s.freeze_epochs + s.epochs, should_stop, lambda: stage[0], losses,
                                history, s.patience, best)
        with learn.no_bar(), learn.no_logging():
            if s.freeze_epochs > 0:
                learn.freeze()
                learn.fit_one_cycle(s.freeze_epochs, 1e-3, pct_start=0.3, cbs=[cb])
            if s.epochs > 0 and not best["stopped"]:
                stage[0] = "all"
                learn.unfreeze()
                lr = pick_lr(learn, s)
                learn.fit_one_cycle(s.epochs, slice(lr / 10, lr), pct_start=0.25, cbs=[cb])
            stopped = bool(best["stopped"])
            if best["state"] is not None:
                learn.model.load_state_dict(best["state"])
                ft_probs, _, ft_loss = scores(learn, learn.dls.valid)
                ft_acc = float((ft_probs.argmax(1) == targets).mean())
                if ft_acc > probe_acc or (ft_acc == probe_acc and ft_loss < probe_loss):
                    chosen, probs, loss = "finetune", ft_probs, ft_loss
            if chosen == "probe":
                learn.model.load_state_dict(probe_state)
        best.clear()
        del probe_state
    seconds = time.time() - t0
    metrics = classification_metrics(targets, probs.argmax(1), vocab)
    metrics.update(n_train=len(train_idx), n_valid=len(valid_idx), arch=s.arch, mode=s.mode, valid_loss=loss,
                   probe_accuracy=probe_acc, finetune_accuracy=ft_acc, chosen=chosen, lr=lr,
                   seconds=round(seconds, 2), settings=asdict(s))
    learn._lookup.mapping = {}  # the exported model should not carry the data set's file list
    del learn._lookup, learn._all_paths
    out_dir.mkdir(parents=True, exist_ok=True)
    learn.export("model.pkl")
    return TrainResult(metrics, out_dir / "model.pkl", history, losses, valid_idx, probs, stopped)
