"""Off-topic images and outliers: unlike the rest of their class in embedding space.

*Measure*: for each image, the mean cosine distance to its ``k`` nearest neighbours among the images
with the same label (copies excluded), and the cosine distance to the class centre (the normalised
mean embedding of the class). *Score*: the two distances as robust z-scores over the data set
(median / MAD), averaged, mapped to [0, 1] by ``z² / (z² + Z_FLAG²)`` (0.5 exactly at the
threshold). *Threshold*: ``z ≥ Z_FLAG``.

Why per class and not the distance to the nearest images overall: off-topic images that came from
one source (a batch of screenshots, logos, another data set) sit close to *each other*, so their
nearest neighbours overall are near; within a class they are still a minority far from the rest.
On the tuning split the overall distance ranked planted off-topic images at AUROC 0.53–0.93, the
per-class blend at 0.99 (``bench/results/detect.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import compute_neighbours, issues_frame, robust_z

#: Neighbours (with the same label) averaged over.
K_OUTLIER = 20
#: Combined robust z-score from which an image is flagged as an outlier (tuned on the tuning split).
Z_FLAG = 2.5


@dataclass(frozen=True)
class OutlierScores:
    score: np.ndarray  # N in [0, 1]
    z: np.ndarray  # N combined robust z
    dist_class: np.ndarray  # N mean cosine distance to the k nearest with the same label
    dist_centre: np.ndarray  # N cosine distance to the centre of its class
    flagged: np.ndarray  # N bool


def compute_outlier_scores(embeddings: np.ndarray, labels: Sequence[int] | np.ndarray,
                           groups: np.ndarray | None = None, k: int = K_OUTLIER,
                           z_flag: float = Z_FLAG) -> OutlierScores:
    """Score every image for being unlike its class (N×D L2-normalised embeddings, N int labels).

    ``groups`` (N ints, equal = copies) keeps copies from counting as each other's neighbours.
    A class of one image gets distance 1 (nothing to compare with) before scoring.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    n = len(x)
    if n < 3:
        zeros = np.zeros(n)
        return OutlierScores(zeros, zeros, zeros, zeros, np.zeros(n, dtype=bool))
    g = np.arange(n) if groups is None else np.asarray(groups)
    d_knn = np.ones(n)
    d_centre = np.ones(n)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        centre = x[idx].mean(axis=0)
        norm = float(np.linalg.norm(centre))
        if len(idx) > 1 and norm > 0:
            d_centre[idx] = 1.0 - x[idx] @ (centre / norm)
            nb = compute_neighbours(x[idx], k, g[idx])
            sim = np.where(nb.valid, nb.sim, np.nan)
            with np.errstate(invalid="ignore"):
                mean_sim = np.nanmean(sim, axis=1) if sim.shape[1] else np.full(len(idx), np.nan)
            d_knn[idx] = np.where(np.isfinite(mean_sim), 1.0 - mean_sim, 1.0)
    z = 0.5 * (robust_z(d_knn) + robust_z(d_centre))
    zp = np.clip(z, 0.0, None)
    score = zp**2 / (zp**2 + z_flag**2)
    return OutlierScores(score, z, d_knn, d_centre, z >= z_flag)


def find_outliers(item_ids: Sequence[str], labels: Sequence[int] | np.ndarray, vocab: Sequence[str],
                  scores: OutlierScores, given: Sequence[int] | np.ndarray | None = None) -> pd.DataFrame:
    """Flagged images as ``outlier`` rows, with the similarities in the reason.

    ``labels`` are the classes the scores were measured against; ``given`` the labels the images
    have, when those differ (a likely label error is compared with the class it resembles).
    """
    y = np.asarray(labels, dtype=np.int64)
    g = y if given is None else np.asarray(given, dtype=np.int64)
    rows = []
    for i in np.flatnonzero(scores.flagged):
        same = y == y[i]
        typical_knn = float(np.median(1 - scores.dist_class[same]))
        typical_centre = float(np.median(1 - scores.dist_centre[same]))
        rows.append({
            "item_id": item_ids[i], "issue": "outlier", "severity": float(scores.score[i]),
            "reason": (f"unlike the other *{vocab[y[i]]}* images"
                       + (f" (the class it is closest to; labelled *{vocab[g[i]]}*)" if g[i] != y[i] else "")
                       + f": similarity {1 - scores.dist_class[i]:.2f} to "
                       f"its nearest ones (typical {typical_knn:.2f}) and {1 - scores.dist_centre[i]:.2f} to the "
                       f"class as a whole (typical {typical_centre:.2f}); off-topic or unusual — "
                       "delete it if it does not belong"),
        })
    return issues_frame(rows)
