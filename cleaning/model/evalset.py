"""A fixed evaluation set per data set, and honest before/after scores on it.

Chosen once (stratified by label, duplicate groups kept together) and stored in the store, the
evaluation set is the validation set of every training run: no run trains on it, and every run's
predictions for it are stored. A run is then scored with the **current** labels (relabels applied,
deleted images left out), so two runs are compared on the same images with the same labels, and an
old run can be re-scored on today's labels at any time. Whether one run is really better than another
on those images is McNemar's exact test on the paired right/wrong outcomes.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import CleaningError
from ..groups import make_groups
from .oos import encode_labels

if TYPE_CHECKING:
    from ..data.workspace import Workspace

#: Share of the images in the evaluation set.
EVAL_FRACTION = 0.2


@dataclass
class EvalSet:
    eval_id: str
    item_ids: list[str]


def choose_eval_items(labels: list[str], groups: np.ndarray, fraction: float = EVAL_FRACTION,
                      seed: int = 0) -> np.ndarray:
    """Boolean mask: ≈ ``fraction`` of the rows, stratified by label, whole ``groups`` only."""
    from .train import split_valid

    vocab = sorted(set(labels))
    return split_valid(encode_labels(labels, vocab), groups, fraction, seed)


def load_or_choose_eval_set(ws: Workspace, fraction: float = EVAL_FRACTION, seed: int = 0) -> EvalSet:
    """The data set's evaluation set, chosen (from the images not deleted now) and stored on first use.

    Raises:
        CleaningError: fewer than 4 images or 2 classes to choose from.
    """
    have = ws.store.eval_set()
    if have is not None:
        return EvalSet(*have)
    df = ws.items_frame()
    df = df[~df["deleted"]]
    labels = [str(v) for v in df["label"]]
    if len(df) < 4 or len(set(labels)) < 2:
        raise CleaningError(f"too little to evaluate on: {len(df)} image(s) in {len(set(labels))} class(es)",
                            hint="training needs at least 4 images in at least 2 classes")
    groups = make_groups(list(df["sha256"]), list(df["phash"]))
    mask = choose_eval_items(labels, groups, fraction, seed)
    ids = list(df["item_id"][mask])
    eid = "eval-" + uuid.uuid4().hex[:8]
    ws.store.create_eval_set(eid, ids, fraction, seed)
    return EvalSet(eid, sorted(ids))


def training_split(frame: pd.DataFrame, eval_ids: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """(valid, keep) masks over ``frame``'s rows (the live images): valid = in the evaluation set;
    keep = valid or not a duplicate of an evaluation image (a copy in training would leak it)."""
    valid = frame["item_id"].isin(eval_ids).to_numpy()
    groups = make_groups(list(frame["sha256"]), list(frame["phash"]))
    leaked = np.isin(groups, np.unique(groups[valid])) & ~valid
    return valid, ~leaked


@dataclass
class EvalScore:
    """A run scored on the evaluation set with today's labels."""

    run_id: str
    eval_id: str | None
    item_ids: list[str]  # live evaluation images the run has a prediction for, sorted
    labels: list[str]  # their current labels
    predicted: list[str]
    probs: np.ndarray  # N×K over ``vocab`` (the run's classes)
    vocab: list[str]
    correct: np.ndarray  # N booleans
    left_out: int = 0  # live evaluation images without a prediction of this run
    deleted: int = 0  # evaluation images deleted now (not scored)

    @property
    def n(self) -> int:
        return len(self.item_ids)

    @property
    def accuracy(self) -> float | None:
        return float(self.correct.mean()) if len(self.correct) else None

    def losses(self) -> np.ndarray:
        """Per-image loss −log p(current label) (a label the run does not know: loss of p = 1e-6)."""
        idx = {v: i for i, v in enumerate(self.vocab)}
        p = np.array([self.probs[r, idx[lab]] if lab in idx else 0.0 for r, lab in enumerate(self.labels)])
        return -np.log(np.maximum(p, 1e-6))

    def confusion(self) -> tuple[list[str], np.ndarray, dict[tuple[str, str], list[str]]]:
        """(labels, K×K counts with rows = current label and columns = prediction, item ids per cell)."""
        names = sorted(set(self.vocab) | set(self.labels))
        cm = np.zeros((len(names), len(names)), np.int64)
        cells: dict[tuple[str, str], list[str]] = {}
        for iid, t, p in zip(self.item_ids, self.labels, self.predicted):
            cm[names.index(t), names.index(p)] += 1
            cells.setdefault((t, p), []).append(iid)
        return names, cm, cells


def score_run(ws: Workspace, run_id: str) -> EvalScore:
    """Score run ``run_id``'s stored evaluation predictions against today's labels.

    Raises:
        RunNotFound: unknown run.
    """
    from .runs import get_run

    run = get_run(ws, run_id)
    preds = ws.store.run_predictions(run_id)
    ev = ws.store.eval_set()
    eval_ids = set(ev[1]) if ev else set(preds)
    df = ws.items_frame().set_index("item_id")
    live = sorted(i for i in eval_ids if i in df.index and not df.at[i, "deleted"])
    have = [i for i in live if i in preds]
    labels = [str(df.at[i, "label"]) for i in have]
    probs = np.array([preds[i] for i in have], np.float32).reshape(len(have), len(run.vocab))
    predicted = [run.vocab[j] for j in probs.argmax(1)] if len(have) else []
    correct = np.array([p == t for p, t in zip(predicted, labels)], bool)
    return EvalScore(run_id, run.eval_id or (ev[0] if ev else None), have, labels, predicted, probs,
                     list(run.vocab), correct, left_out=len(live) - len(have),
                     deleted=sum(1 for i in eval_ids if i in df.index and df.at[i, "deleted"]))


def rescore_run(ws: Workspace, run_id: str) -> EvalScore:
    """Re-evaluate a run on today's evaluation set and labels: evaluation images the run has no stored
    prediction for (an old run, a restored image) are predicted with its exported model first.

    Raises:
        RunNotFound; CleaningError: the run's model file is gone or does not load.
    """
    from .predict import load_model, predict_paths
    from .runs import get_run

    run = get_run(ws, run_id)
    load_or_choose_eval_set(ws)
    score = score_run(ws, run_id)
    if score.left_out:
        ev = ws.store.eval_set()
        preds = ws.store.run_predictions(run_id)
        df = ws.items_frame()
        todo = df[df["item_id"].isin(ev[1] if ev else []) & ~df["deleted"] & ~df["item_id"].isin(list(preds))]
        if not run.model_path:
            raise CleaningError(f"run {run_id} has no model to predict with", hint="it was stopped before one existed")
        model = load_model(run.model_path)
        try:
            vocab, probs = predict_paths(model, list(todo["abs_path"]))
        finally:
            del model
        idx = [vocab.index(v) if v in vocab else None for v in run.vocab]
        aligned = np.array([[row[j] if j is not None else 0.0 for j in idx] for row in probs])
        ws.store.save_run_predictions(run_id, {i: list(p) for i, p in zip(todo["item_id"], aligned)})
        score = score_run(ws, run_id)
    return score


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (a right/b wrong, a wrong/b right)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return float(min(1.0, 2 * tail))


@dataclass
class EvalComparison:
    """Two runs on the identical evaluation images with today's labels."""

    before: EvalScore
    after: EvalScore
    item_ids: list[str]  # images both runs predicted (the paired set)
    accuracy_before: float | None
    accuracy_after: float | None
    only_before: int  # right before, wrong after
    only_after: int  # wrong before, right after
    p_value: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05

    def verdict(self) -> str:
        """One sentence a person can read."""
        n = len(self.item_ids)
        if not n:
            return "The two runs have no evaluation image in common."
        diff = self.only_after - self.only_before
        word = "better" if diff > 0 else "worse"
        if diff == 0:
            return f"On the same {n} images the two runs are equally accurate."
        chance = ("larger than chance (McNemar p = {:.3f})" if self.significant
                  else "within what chance alone gives (McNemar p = {:.2f})").format(self.p_value)
        return (f"On the same {n} images with today's labels the later run is {word}: it fixes "
                f"{self.only_after} and breaks {self.only_before} — a difference {chance}.")


def compare_on_eval(ws: Workspace, before: str, after: str) -> EvalComparison:
    """Score both runs on today's labels and compare them on the images both predicted.

    Raises:
        RunNotFound: either run id is unknown.
    """
    a, b = score_run(ws, before), score_run(ws, after)
    common = sorted(set(a.item_ids) & set(b.item_ids))
    ra = dict(zip(a.item_ids, a.correct))
    rb = dict(zip(b.item_ids, b.correct))
    ca = np.array([ra[i] for i in common], bool)
    cb = np.array([rb[i] for i in common], bool)
    only_a, only_b = int((ca & ~cb).sum()), int((~ca & cb).sum())
    return EvalComparison(a, b, common, float(ca.mean()) if len(common) else None,
                          float(cb.mean()) if len(common) else None, only_a, only_b, mcnemar_exact(only_a, only_b))
