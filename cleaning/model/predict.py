"""Predictions from exported fastai learners: a run's model, or one the user trained elsewhere.

``load_model`` opens any ``learn.export()`` file (a pickle: load only files you trust — it runs code);
``predict_image`` gives the top classes of one image; ``foreign_predictions`` predicts every live image
of a data set with a user's own learner, mapping its classes onto the data set's (equal names, or names
equal up to case, spaces, ``-`` and ``_``); a class that cannot be mapped is a clear error. A model
trained on these very images has seen them: its agreement with the labels is not out-of-sample.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CleaningError

if TYPE_CHECKING:
    from ..data.workspace import Workspace


class ClassMismatch(CleaningError):
    """The model's classes cannot be matched with the data set's."""


def load_model(path: str | Path) -> Any:
    """Load an exported fastai learner on the CPU.

    Raises:
        CleaningError: the file is missing, is not an exported fastai learner, or needs code this process
        does not have (a function the exporting notebook defined, e.g. its ``get_y``).
    """
    import warnings

    from fastai.learner import load_learner

    p = Path(path)
    if not p.is_file():
        raise CleaningError(f"no model file at {str(p)!r}", hint="give the path of a file written by learn.export()")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            learn = load_learner(p, cpu=True)
    except AttributeError as e:  # pickle could not find a function/class the exporter defined
        raise CleaningError(f"{p.name} needs code that is not loaded here: {e}",
                            hint="define the functions the exporting notebook used (e.g. its labelling function) "
                                 "in an importable module, or export a learner that uses only fastai's own") from e
    except Exception as e:  # noqa: BLE001 — unpickling fails in many ways; all mean "not a usable learner"
        raise CleaningError(f"{p.name} is not a loadable fastai learner ({type(e).__name__}: {e})",
                            hint="export it with learn.export('export.pkl') in fastai 2") from e
    if not hasattr(learn, "dls") or not hasattr(learn.dls, "vocab"):
        raise CleaningError(f"{p.name} is not an image classifier (it has no class vocabulary)")
    return learn


def model_vocab(learn: Any) -> list[str]:
    """The learner's class names in its output order."""
    return [str(v) for v in learn.dls.vocab]


def predict_paths(learn: Any, paths: Sequence[str | Path], batch_size: int = 32) -> tuple[list[str], np.ndarray]:
    """(model vocab, N×K probabilities) for image files, through the learner's own transforms."""
    import torch

    vocab = model_vocab(learn)
    if not len(paths):
        return vocab, np.zeros((0, len(vocab)), np.float32)
    dl = learn.dls.test_dl([Path(p) if not isinstance(p, Path) else p for p in paths], bs=batch_size,
                           num_workers=0, device=torch.device("cpu"))
    with learn.no_bar(), learn.no_logging():
        probs, _ = learn.get_preds(dl=dl)
    return vocab, probs.numpy().astype(np.float32)


def top_k(vocab: Sequence[str], probs: np.ndarray, k: int = 3) -> list[dict[str, Any]]:
    """``[{"label", "probability"}, ...]`` best first."""
    order = np.argsort(-probs)[:k]
    return [{"label": str(vocab[i]), "probability": round(float(probs[i]), 4)} for i in order]


def predict_image(learn: Any, path: str | Path, k: int = 3) -> list[dict[str, Any]]:
    """The ``k`` most probable classes of one image file, best first.

    Raises:
        CleaningError: the file is not a usable image.
    """
    from ..data.images import load_image

    load_image(path)  # a clear error for a file that is not an image
    vocab, probs = predict_paths(learn, [path])
    return top_k(vocab, probs[0], k)


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name).strip().lower()


def map_classes(model_classes: Sequence[str], data_classes: Sequence[str],
                explicit: dict[str, str] | None = None) -> dict[str, str]:
    """``{model class: data-set class}``: ``explicit`` pairs first, then equal names, then names equal
    up to case, spaces, ``-`` and ``_``.

    Raises:
        ClassMismatch: a model class or a data-set class is left without a partner (both lists named).
    """
    explicit = dict(explicit or {})
    bad = {k: v for k, v in explicit.items() if k not in model_classes or v not in data_classes}
    if bad:
        raise ClassMismatch(f"mapping names unknown classes: {bad}",
                            hint=f"model classes: {list(model_classes)}; data-set classes: {list(data_classes)}")
    out = dict(explicit)
    free = [c for c in data_classes if c not in out.values()]
    by_norm = {_norm(c): c for c in free}
    for m in model_classes:
        if m in out:
            continue
        if m in free:
            out[m] = m
        elif _norm(m) in by_norm and by_norm[_norm(m)] not in out.values():
            out[m] = by_norm[_norm(m)]
    lost_model = [m for m in model_classes if m not in out]
    lost_data = [c for c in data_classes if c not in out.values()]
    if lost_model or lost_data:
        raise ClassMismatch(
            "the model's classes do not match the data set's: "
            + (f"the model knows {lost_model} which the data set lacks" if lost_model else "")
            + ("; " if lost_model and lost_data else "")
            + (f"the data set has {lost_data} which the model does not know" if lost_data else ""),
            hint="map them explicitly (CLI: --map MODEL_CLASS=DATASET_CLASS), or use a model trained on these classes")
    return out


@dataclass
class ForeignPredictions:
    """A user's own model's predictions for the data set's live images, in the data set's classes."""

    item_ids: list[str]
    vocab: list[str]  # data-set classes
    pred_probs: np.ndarray  # N×K over ``vocab``
    mapping: dict[str, str]  # model class -> data-set class
    model_name: str
    model_sha: str

    def agreement(self, labels: Sequence[str]) -> float:
        """Share of images whose predicted class equals ``labels`` (aligned with ``item_ids``)."""
        pred = [self.vocab[i] for i in self.pred_probs.argmax(1)]
        return float(np.mean([p == t for p, t in zip(pred, labels)])) if len(pred) else float("nan")


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def foreign_predictions(ws: Workspace, model_path: str | Path, mapping: dict[str, str] | None = None,
                        model_name: str | None = None) -> ForeignPredictions:
    """Predict every live image with a user's exported learner and save the result in the workspace
    (``cache/foreign_model.npz`` + ``.json``) for the Train page and the scan.

    Raises:
        CleaningError: the model does not load; ClassMismatch: its classes do not map onto the data set's.
    """
    p = Path(model_path)
    learn = load_model(p)
    df = ws.items_frame()
    df = df[~df["deleted"]]
    data_vocab = sorted(set(df["label"]))
    m_vocab = model_vocab(learn)
    cmap = map_classes(m_vocab, data_vocab, mapping)
    try:
        _, probs = predict_paths(learn, list(df["abs_path"]))
    finally:
        del learn
    out = np.zeros((len(df), len(data_vocab)), np.float32)
    for j, m in enumerate(m_vocab):
        out[:, data_vocab.index(cmap[m])] += probs[:, j]
    fp = ForeignPredictions(list(df["item_id"]), data_vocab, out, cmap, model_name or p.name, _file_sha(p))
    save_foreign(ws, fp)
    return fp


def _foreign_paths(ws: Workspace) -> tuple[Path, Path]:
    return Path(ws.cache_dir) / "foreign_model.npz", Path(ws.cache_dir) / "foreign_model.json"


def save_foreign(ws: Workspace, fp: ForeignPredictions) -> None:
    npz, meta = _foreign_paths(ws)
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz, item_ids=np.array(fp.item_ids, dtype=str), pred_probs=fp.pred_probs)
    meta.write_text(json.dumps({"vocab": fp.vocab, "mapping": fp.mapping, "model_name": fp.model_name,
                                "model_sha": fp.model_sha}), encoding="utf-8")


def load_foreign(ws: Workspace) -> ForeignPredictions | None:
    """The last saved predictions of the user's own model, or None."""
    npz, meta = _foreign_paths(ws)
    if not (npz.exists() and meta.exists()):
        return None
    m = json.loads(meta.read_text(encoding="utf-8"))
    with np.load(npz) as z:
        return ForeignPredictions([str(i) for i in z["item_ids"]], m["vocab"], z["pred_probs"], m["mapping"],
                                  m["model_name"], m["model_sha"])


def clear_foreign(ws: Workspace) -> None:
    for p in _foreign_paths(ws):
        p.unlink(missing_ok=True)


#: The user's model counts as an extra opinion in the scan when it is at least this confident.
OPINION_MIN_CONFIDENCE = 0.8


def model_opinion_rows(ws: Workspace, live_labels: dict[str, str]) -> list[dict[str, Any]]:
    """Issue rows (kind ``label``) where the user's own model confidently disagrees with the current
    label; empty when no such model was loaded. Reasons say plainly that the model may have seen it."""
    fp = load_foreign(ws)
    if fp is None:
        return []
    rows = []
    for iid, pr in zip(fp.item_ids, fp.pred_probs):
        lab = live_labels.get(iid)
        j = int(pr.argmax())
        if lab is None or fp.vocab[j] == lab or pr[j] < OPINION_MIN_CONFIDENCE:
            continue
        rows.append({"item_id": iid, "issue": "label", "severity": round(float(pr[j]) * 0.5, 4),
                     "suggested_label": fp.vocab[j], "related_item_id": "",
                     "reason": f"your model {fp.model_name} predicts {fp.vocab[j]} ({pr[j]:.0%}); it may have "
                               "been trained on this very image, so this is not an out-of-sample opinion"})
    return rows
