"""The steps of a training run (:mod:`cleaning.model.train`): probe features, the learning rate, the
training size, and the callback that reports progress, honours Stop and keeps the best epoch."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import CleaningError


class TrainingStopped(CleaningError):
    """The run was stopped before any model existed (nothing is exported)."""


#: The fine-tuning learning rate of the head when none is given (see :class:`TrainSettings`).
DEFAULT_LR = 1e-3
#: lr_find's suggestion is kept inside this range (a noisy sweep on a small data set can suggest nonsense).
LR_RANGE = (1e-4, 3e-3)


@dataclass
class TrainEvent:
    """One progress report: ``kind`` is "batch" (training batch done), "epoch" (epoch validated),
    "features" (a batch of probe features computed) or "probe" (the probe is fitted and scored)."""

    kind: str
    epoch: int  # 0-based over all stages
    n_epochs: int
    stage: str  # "probe", "head" (frozen body) or "all"
    batch: int = 0
    n_batches: int = 0
    loss: float = float("nan")  # last training batch loss, or the epoch's smoothed training loss
    valid_loss: float = float("nan")
    accuracy: float = float("nan")
    seconds: float = 0.0


def progress_callback(report: Callable[[TrainEvent], None] | None, n_epochs: int,
                       should_stop: Callable[[], bool] | None, stage_of: Callable[[], str],
                       losses: list[float], history: list[dict[str, Any]], patience: int,
                       best: dict[str, Any]) -> Any:
    """Reports batches and epochs, honours stop requests, and keeps the weights of the epoch with the
    lowest validation loss in ``best`` (``{"loss", "state", "epoch"}``), stopping after ``patience``
    epochs without improvement."""
    import copy

    from fastai.callback.core import Callback, CancelFitException


    class Progress(Callback):
        order = 90  # after the Recorder has the epoch's values

        def __init__(self) -> None:
            self.epoch_no, self.t0, self.waited = 0, time.time(), 0

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
                best["stopped"] = True
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
            if np.isfinite(ev.valid_loss) and ev.valid_loss < best["loss"]:
                best.update(loss=ev.valid_loss, state=copy.deepcopy(self.learn.model.state_dict()),
                            epoch=ev.epoch)
                self.waited = 0
            else:
                self.waited += 1
                if self.waited >= patience:
                    raise CancelFitException()

    return Progress()


def probe_features(learn: Any, dl: Any, arch: str, size: int, should_stop: Callable[[], bool] | None,
              report: Callable[[TrainEvent], None] | None, done: list[int], total: int) -> np.ndarray:
    """Pooled, L2-normalised features of every image of ``dl`` (no augmentation), in order.

    The batches are fastai's own (same resize, crop and normalisation as training); the backbone runs
    in OpenVINO or ONNX Runtime when it can (≈ 4–12× faster than eager torch on 2 cores, same numbers to 1e-5),
    else in torch. These are exactly the features :class:`cleaning.heads.ProbeHead` computes.
    """
    import torch

    from .backbone import arch_spec
    from .embed import get_engine, l2_normalise

    dim = arch_spec(arch).dim
    try:
        engine = get_engine(arch, size)  # the scan's engine: its first columns are the embedding
    except CleaningError:
        engine = None
    body, head = learn.model[0], learn.model[1]
    out = []
    learn.model.eval()
    with torch.inference_mode():
        for b in dl:
            if should_stop and should_stop():
                raise TrainingStopped("training stopped before the probe was fitted")
            x = b[0].as_subclass(torch.Tensor).float()
            if engine is not None:
                out.append(l2_normalise(engine(np.ascontiguousarray(x.numpy()))[:, :dim]))
            else:
                out.append(head.features(body(x.contiguous(memory_format=torch.channels_last))).float().numpy())
            done[0] += len(x)
            if report:
                report(TrainEvent("features", 0, 0, "probe", done[0], total))
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def scores(learn: Any, dl: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """(probabilities V×K, targets V, validation loss) of the learner's model on ``dl``."""
    import torch

    probs, targets = learn.get_preds(dl=dl)
    loss = float(torch.nn.functional.nll_loss(torch.log(probs.clamp_min(1e-12)), targets.long()))
    return probs.numpy().astype(np.float32), targets.numpy().astype(np.int64), loss


def pick_lr(learn: Any, s: Any) -> float:
    """The fine-tuning learning rate (see :class:`TrainSettings`)."""

    if s.lr:
        return float(s.lr)
    if not s.lr_find:
        return DEFAULT_LR
    from fastai.callback.schedule import valley

    try:
        with learn.no_bar(), learn.no_logging():
            res = learn.lr_find(start_lr=1e-6, end_lr=1e-1, num_it=max(12, min(30, 2 * len(learn.dls.train))),
                                show_plot=False, suggest_funcs=(valley,))
        lr = float(res.valley)
    except Exception:  # noqa: BLE001 — a failed sweep (too few batches, NaN loss) falls back to the rule
        lr = float("nan")
    return float(np.clip(lr, *LR_RANGE)) if np.isfinite(lr) else DEFAULT_LR


def image_sizes(paths: Sequence[str]) -> tuple[list[int | None], list[int | None]]:
    """Widths and heights from the files' headers (None where a header does not open)."""
    from PIL import Image

    ws: list[int | None] = []
    hs: list[int | None] = []
    for p in paths[:: max(1, len(paths) // 200)]:  # a sample of ≤ ~200 files is plenty for a median
        try:
            with Image.open(p) as im:
                w, h = im.size
        except OSError:
            w = h = None
        ws.append(w)
        hs.append(h)
    return ws, hs


def auto_size(widths: Sequence[int | None], heights: Sequence[int | None]) -> int:
    """Training size for images of these sizes: the median shorter side rounded up to 32, in [64, 128]."""
    sides = [min(w, h) for w, h in zip(widths, heights) if w and h]
    if not sides:
        return 128
    return int(min(128, max(64, 32 * math.ceil(float(np.median(sides)) / 32))))
