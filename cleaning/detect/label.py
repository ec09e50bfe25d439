"""Label errors: out-of-sample model probabilities blended with nearest-neighbour label votes.

*Measure*: two independent opinions of each image's class — the out-of-sample ``pred_probs`` of a
classifier that never saw the image (:mod:`cleaning.model.oos`), and the labels of its ``k`` nearest
neighbours in embedding space (copies excluded). *Score*: the blend of both, ``w·model +
(1−w)·neighbours``; ``label_issue_score = 1 − blend[given label]``. *Threshold*: the ``m`` highest
scores, where ``m`` is confident learning's estimate (cleanlab, off-diagonal of the confident joint) of
the number of label errors in the blend — and also every clear error beyond the estimate: label-issue
score at least :data:`SCORE_SURE` with the suggested class at least :data:`SUGGEST_SURE` in the blend.
Before scoring, confident learning on the first blend picks the likely errors, they are *left out*
(cleanlab's prune-and-retrain: label -1, never trained on, casting no neighbour vote) and both opinions
are re-derived once from the rest (``PASSES = 2``): a classifier and neighbours that learnt from cleaner
labels see the remaining errors and the right class better. Pruning rather than relabelling to the
suggestion keeps a wrong first guess from teaching the next pass (photos: label F1 0.84 → 0.86, junk
flagged as off-topic 0.86 → 0.88; 650 digits F1 0.89 → 0.91). Scores are always measured against the given labels. The suggested label is the final
blend's best class other than the given one.

Why blend: with the same out-of-sample probabilities cleanlab's ranking equals plain loss ranking;
neighbour votes are a second, differently-erring opinion (a linear head mistakes look-alike classes;
neighbours see local structure), so their blend ranks label errors better (``bench/results/detect.md``).

Why one re-learning pass and not more (measured when passes relabelled to the suggestion): each pass
re-derives both opinions from labels corrected by the previous one, so it also confirms its own mistakes. On real photos an ambiguous image moved in one pass (a
tomato filed under *vegetable*, suggested *fruit*) teaches the next classifier and its neighbours that
its look-alikes are fruit too, and pepper, pumpkin and potato follow: on the photo benchmark label
precision is 0.78 after one re-learning pass and was 0.71 after two (F1 0.84 / 0.80), with digits level
(``bench/results/photos.md``). Without any re-learning a small set loses both errors and right
suggestions (the bundled demo: 7 of 8 wrong labels found, suggestions 0.86 right, against 8 of 8 and 1.0).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import CleaningError
from . import Neighbours, issues_frame

#: Weight of the model's probabilities in the blend (the rest goes to neighbour votes).
MODEL_WEIGHT = 0.5
#: Neighbours consulted per image.
K_NEIGHBOURS = 10
#: Passes of clean-and-re-learn (1 = no re-learning; see the module doc for why one re-learning pass).
PASSES = 2
#: Also flagged, whatever the estimate says: label-issue score at least SCORE_SURE with the suggested
#: class at least SUGGEST_SURE in the blend (a clear error with a confident right prediction).
SCORE_SURE = 0.85
SUGGEST_SURE = 0.6
#: Pseudo-count of the class prior added to the neighbour votes (keeps small-k votes from being 0/1).
PRIOR_COUNT = 1.0


#: relearn(int labels, -1 = leave this image out of training) -> N×K out-of-sample probabilities, every row.
Relearn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LabelScores:
    """Per-image label evidence; N rows, K columns in ``vocab`` order."""

    model_probs: np.ndarray  # N×K out-of-sample probabilities
    knn_probs: np.ndarray  # N×K neighbour label votes (smoothed, rows sum to 1)
    pred_probs: np.ndarray  # N×K blend
    score: np.ndarray  # N: 1 − blend[given label], in [0, 1]
    flagged: np.ndarray  # N bool: confident learning on the blend says the label is wrong
    suggested: np.ndarray  # N int: the blend's best class other than the given one
    n_agree: np.ndarray  # N int: neighbours whose label is the suggested class
    n_same: np.ndarray  # N int: neighbours with the given label
    n_neighbours: np.ndarray  # N int: valid neighbours


def compute_neighbour_label_probs(labels: np.ndarray, n_classes: int, neighbours: Neighbours,
                                  prior_count: float = PRIOR_COUNT) -> np.ndarray:
    """N×K label votes of each image's neighbours, similarity-weighted, smoothed toward the class prior.

    ``labels`` are ints 0..K−1. A neighbour with similarity s votes with weight max(s, 0).
    """
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    prior = np.bincount(y[y >= 0], minlength=n_classes).astype(np.float64) + 1e-3
    prior /= prior.sum()
    votes = np.zeros((n, n_classes), dtype=np.float64)
    valid = neighbours.valid
    valid = valid & (y[np.clip(neighbours.index, 0, None)] >= 0)  # a label -1 (left out) does not vote
    w = np.where(valid, np.clip(neighbours.sim, 0.0, None), 0.0)
    nb_labels = np.where(valid, y[np.clip(neighbours.index, 0, None)], 0)
    rows = np.repeat(np.arange(n), neighbours.index.shape[1])
    np.add.at(votes, (rows, nb_labels.ravel()), w.ravel())
    total = votes.sum(axis=1, keepdims=True)
    return (votes + prior_count * prior) / (total + prior_count)


def compute_label_scores(labels: Sequence[int] | np.ndarray, pred_probs: np.ndarray, neighbours: Neighbours,
                         relearn: Relearn | None = None, passes: int = PASSES,
                         model_weight: float = MODEL_WEIGHT, prior_count: float = PRIOR_COUNT) -> LabelScores:
    """Blend model and neighbour opinions, prune and re-learn, and flag likely label errors.

    Pass 1 blends ``pred_probs`` with the neighbours' given labels; each further pass (only when
    ``relearn`` is given) re-derives both opinions without the images the previous pass flagged:
    ``relearn(labels)``, those images labelled -1, must return new out-of-sample probabilities for every
    row, and they cast no neighbour vote. Scores are always
    measured against the *given* labels. The number flagged is confident learning's estimate of the
    number of label errors (:func:`cleanlab.count.num_label_issues`, off-diagonal of the confident
    joint); the highest scores are flagged, and with them every image with score ≥ ``SCORE_SURE`` whose
    suggested class has at least ``SUGGEST_SURE`` in the blend.

    Args:
        labels: N ints 0..K−1 (given labels).
        pred_probs: N×K out-of-sample probabilities (rows sum to 1).
        neighbours: from :func:`cleaning.detect.compute_neighbours` on the same rows.
    Raises:
        CleaningError: shapes that do not match.
    """
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(pred_probs, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(y) or len(neighbours.index) != len(y):
        raise CleaningError(f"labels ({len(y)}), pred_probs {p.shape} and neighbours "
                            f"({len(neighbours.index)}) must have one row per image")
    n, k = p.shape
    rows = np.arange(n)
    current, model = y, p
    n_passes = max(1, passes if relearn is not None else 1)
    for step in range(n_passes):
        if step:
            model = np.asarray(relearn(current), dtype=np.float64)  # type: ignore[misc]
        knn = compute_neighbour_label_probs(current, k, neighbours, prior_count)
        blend = model_weight * model + (1.0 - model_weight) * knn
        blend /= blend.sum(axis=1, keepdims=True)
        others = blend.copy()
        others[rows, y] = -1.0
        suggested = others.argmax(axis=1) if k > 1 else y.copy()
        if step + 1 < n_passes:
            current = np.where(_confident_learning(y, blend), -1, y)  # prune, re-learn without them
    score = np.clip(1.0 - blend[rows, y], 0.0, 1.0)
    flagged = np.zeros(n, dtype=bool)
    flagged[np.argsort(-score, kind="stable")[:_estimated_count(y, blend)]] = True
    # clear errors beyond the estimate: the given label is very unlikely and one other class is confident
    flagged |= (score >= SCORE_SURE) & (blend[rows, suggested] >= SUGGEST_SURE)
    flagged &= score > 0.0
    valid = neighbours.valid
    nb = np.where(valid, y[np.clip(neighbours.index, 0, None)], -1)
    n_same, n_valid = (nb == y[:, None]).sum(axis=1), valid.sum(axis=1)
    return LabelScores(model, knn, blend, score, flagged, suggested,
                       (nb == suggested[:, None]).sum(axis=1), n_same, n_valid)


def _estimated_count(y: np.ndarray, probs: np.ndarray) -> int:
    """Confident learning's estimate of how many labels are wrong (0 when it cannot run)."""
    present = np.unique(y)
    if probs.shape[1] < 2 or len(present) < 2 or len(y) < 2 * probs.shape[1]:
        return 0
    from cleanlab.count import num_label_issues

    remap, sub = _present_only(y, probs, present)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return int(num_label_issues(remap[y], sub, estimation_method="off_diagonal"))
        except (ValueError, IndexError, ZeroDivisionError):
            return 0


def _present_only(y: np.ndarray, probs: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab wants every class to occur: keep the columns of present classes, renormalised."""
    remap = -np.ones(probs.shape[1], dtype=np.int64)
    remap[present] = np.arange(len(present))
    sub = probs[:, present]
    return remap, sub / sub.sum(axis=1, keepdims=True)


def _confident_learning(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab's ``find_label_issues`` on ``probs``; all False when it cannot run (one class, tiny data)."""
    n, k = probs.shape
    present = np.unique(y)
    if k < 2 or len(present) < 2 or n < 2 * k:
        return np.zeros(n, dtype=bool)
    from cleanlab.filter import find_label_issues as cl_find

    remap, sub = _present_only(y, probs, present)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return np.asarray(cl_find(remap[y], sub, filter_by="prune_by_noise_rate", n_jobs=1), dtype=bool)
        except (ValueError, IndexError, ZeroDivisionError):  # degenerate class counts
            return np.zeros(n, dtype=bool)


def label_reason(given: str, suggested: str, model_p: float, knn_share: int, n_nb: int, same: int) -> str:
    """Plain words: "labelled *dog*; predicted *cat* with 0.97; 7 of 10 nearest neighbours are *cat*"."""
    words = f"labelled *{given}*; predicted *{suggested}* with {model_p:.2f}"
    if n_nb:
        words += f"; {knn_share} of {n_nb} nearest neighbours are *{suggested}*"
        if same:
            words += f", {same} *{given}*"
    return words


def find_label_issues(item_ids: Sequence[str], labels: Sequence[int] | np.ndarray, vocab: Sequence[str],
                      scores: LabelScores) -> pd.DataFrame:
    """The flagged images as issue rows (severity = label_issue_score), suggested label included."""
    y = np.asarray(labels, dtype=np.int64)
    rows = []
    for i in np.flatnonzero(scores.flagged):
        s = int(scores.suggested[i])
        rows.append({
            "item_id": item_ids[i], "issue": "label", "severity": float(scores.score[i]),
            "suggested_label": vocab[s],
            "reason": label_reason(vocab[y[i]], vocab[s], float(scores.model_probs[i, s]), int(scores.n_agree[i]),
                                   int(scores.n_neighbours[i]), int(scores.n_same[i])),
        })
    return issues_frame(rows)
