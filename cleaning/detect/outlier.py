"""Off-topic images: alone in the data set, unlike their own class, unlike *every* class, claimed by no class.

*Measure* (embeddings, copies excluded from every neighbour list; each term a robust z, median / 1.4826·MAD).
Each class is referenced by its **core** (:func:`.junk.compute_class_core`): the members whose own label
holds at least half of them and their 10 nearest neighbours. The core comes from the embeddings and the
given labels alone, so a junk group spread over the classes (its neighbours are each other, their labels
mixed) and wrongly labelled images (their neighbours are of another class) neither pull a class's centre
nor count as its members — whatever the label check flags (before, its flags were left out instead, and
every change in the label check moved the off-topic results).

* ``lonely`` — the mean cosine similarity to the :data:`M_LONELY` nearest images of the whole data
  set, as a z over the data set: how much farther from *everything* the image is than images usually are
  from their nearest ones. Look-alike digits have close neighbours everywhere and a small spread; varied
  photo classes have farther neighbours and a wider spread — the z adapts to both.
* ``own`` — unlike its own class: the mean distance to its :data:`K_OUTLIER` nearest images with the
  same label and the distance to the centre of the class core, each as a z against *that class's* core
  (a varied class such as *animal* tolerates more than a tight one), averaged. The same-label neighbours are
  read off the whole-set neighbour list the other checks share, with an exact search inside the class only
  for the images whose list holds too few of their own class (:func:`same_label_mean_sim`).
* ``unfit`` — unlike the *nearest* class, whichever it is: for every class ``c`` the mean similarity to
  its 5 nearest members of ``c`` as a z against how close ``c``'s own members are to each other
  (:func:`.junk.compute_fit_to_classes`; only core members count as members), minimum over the
  classes. A wrongly labelled image fits its true class (low ``unfit``); an off-topic image fits none.
* ``unclaimed`` — the out-of-sample classifier's doubt, ``−logit`` of its highest probability over all
  classes, as a z over the data set (:func:`unclaimed_z`): no class claims the image more than usual.
  Used when ``pred_probs`` are given.

*Score*: ``z`` = the mean of the terms, each floored at 0, mapped to [0, 1] by ``z² / (z² + Z_FLAG²)``
(0.5 exactly at the threshold).
*Threshold*: flagged when ``z ≥ Z_FLAG`` and ``lonely ≥ Z_LONELY`` — and, when the flagged images' ``unfit``
shows a natural break (:func:`natural_break`: the largest relative drop that is wide — a fall of a fifth,
or an empty stretch far wider than the spacing of the dense tail below it — with a few per cent of the data
set above it), only the images above the break. A large set of look-alike images (4,000
handwritten digits) has a long tail of merely unusual members below the off-topic photos, which sit far
beyond every class; a varied photo set has no such break and keeps every flag. ``unfit`` is the
measure for the break because it separates the two best (a digit, however odd, is near *some* digit
class). ``lonely`` is required because a wrongly labelled image is unlike its class but has close
neighbours (its true class), so it stays a label error; ``unclaimed`` tells an odd but recognisable member
(a gorilla among animals: the classifier is sure) from an image that no class explains. Members of a
look-alike junk group are not lonely (they have each other): :mod:`.junk` finds them.

*Split evidence* (:func:`split_offtopic`, applied by :func:`cleaning.detect.run.run_detectors`): the
``lonely`` gate stands for "its close neighbours are its true class". It does not hold when the label
check flags the image but cannot name that class clearly — the suggested class holds less than
:data:`cleaning.detect.label.SUGGEST_SURE` of the blend of classifier and neighbours, the same bar the label
check sets for a clear error. Such an image, if ``z ≥ Z_FLAG`` (and above the natural break when there is
one), is off-topic though not lonely: an ``outlier`` row whose reason gives the label check's guess, and
the person chooses (photo benchmark, 9 sets: a basketball filed under *bird*, *fruit* 0.57, and a cymbal
under *vegetable*, *mammal* 0.39, move; so do a clean pineapple on three sets, a label false flag before,
and one real wrong label; 650 and 4,000 digits: no image moves).

*Claimed by no class* (:func:`unclaimed_offtopic`): nor does it hold when neither the classifier nor the
neighbours put even :data:`CLAIM` of the blend on *any* class, the given one included, and the label check leaves
the image alone: its neighbours are no class's. Such an image, as far from its class as off-topic images are (the
same bars), is off-topic though not lonely when a second, independent witness agrees: the backbone's own ImageNet
head knows its class and sees none of it (:func:`cleaning.detect.semantic.misses_own_class`). Saturn, whose rings set
it apart from the round planets of a space junk cluster, was missed on 9 of 10 photo seeds (``lonely`` 1.4–2.0,
``z`` 1.9–3.0, best class 0.30–0.48). Without the head's word the rule also took odd members of small varied classes
(a hornet among 9 insects, a mussel among 13 fish and shellfish) and, on fashion-MNIST end to end, 10 ambiguous
shirts and pullovers (outlier precision 0.20 → 0.18); with it, where the head knows no class (digits, fashion, a class
named ``sun photo``) the rule stays silent. Photo benchmark, 30 sets: junk as off-topic 0.938 → 0.954 (the space
cluster 0.862 → 0.892), off-topic recall 0.907 → 0.918 at precision 0.891 → 0.896; the four animal compositions:
recall +0.017 … +0.025 at precision level (−0.001 … +0.003); digits unchanged.

An off-topic image gets an ``outlier`` row and never a suggested label; when the label detector would
have moved it to another class (split evidence) the reason says so, and the person chooses.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import Neighbours, compute_neighbours, issues_frame
from .junk import K_WIDE, compute_class_core, compute_fit_to_classes

#: Neighbours (with the same label) averaged over for ``own``.
K_OUTLIER = 20
#: Neighbours (any label) averaged over for ``lonely``.
M_LONELY = 5
#: Combined z from which an image is flagged ...
Z_FLAG = 2.0
#: ... when it is also at least this lonely.
Z_LONELY = 2.0
#: An image whose blend of classifier and neighbours gives no class this much is claimed by no class
#: (:func:`unclaimed_offtopic`).
CLAIM = 0.5
#: The natural break (:func:`natural_break`): a drop of at least GAP_Z and at least 20 % between two
#: consecutive flagged ``unfit`` values, with at least MIN_ABOVE images above it.
GAP_Z = 1.5
GAP_RATIO = 0.8
MIN_ABOVE = 3
#: ... or a drop at least TAIL_FACTOR times the median spacing of the TAIL_W flagged values below it (a dense
#: tail of merely unusual members, then an empty stretch, then the off-topic images).
TAIL_W = 10
TAIL_FACTOR = 5.0
#: Classes smaller than this are measured against the whole data set's spread.
MIN_CLASS = 8


@dataclass(frozen=True)
class OutlierScores:
    score: np.ndarray  # N in [0, 1]
    z: np.ndarray  # N combined z
    lonely: np.ndarray  # N robust z of the distance to the nearest images overall
    own: np.ndarray  # N robust z of being unlike the own class
    dist_class: np.ndarray  # N mean cosine distance to the k nearest with the same label
    dist_centre: np.ndarray  # N cosine distance to the centre of its class
    flagged: np.ndarray  # N bool
    break_z: float | None = None  # the data set's natural break in ``unfit`` (None: no break)
    unfit: np.ndarray | None = None  # N robust z of being unlike the nearest class (any class)
    unclaimed: np.ndarray | None = None  # N robust z of the classifier's doubt (−logit of its best probability)


def _robust_by_class(v: np.ndarray, y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Robust z of ``v`` within each class, against the class members in ``ref`` (whole data set for
    small classes)."""
    def stats(w: np.ndarray) -> tuple[float, float]:
        med = float(np.median(w))
        return med, max(1.4826 * float(np.median(np.abs(w - med))), 1e-3 * max(abs(med), 1e-6), 1e-9)
    out = np.zeros(len(v))
    g_med, g_spr = stats(v[ref] if ref.any() else v)
    for c in np.unique(y):
        m = y == c
        r = m & ref
        med, spr = stats(v[r]) if r.sum() >= MIN_CLASS else (g_med, g_spr)
        out[m] = (v[m] - med) / spr
    return out


def unclaimed_z(pred_probs: np.ndarray) -> np.ndarray:
    """Robust z (over the data set) of the classifier's doubt, ``−logit(max_k p_k)``: how much less sure than
    usual the out-of-sample classifier is of *any* class (0 for the typical image; grows as no class claims it)."""
    p = np.clip(np.asarray(pred_probs, dtype=np.float64).max(axis=1), 1e-4, 1 - 1e-4)
    doubt = np.log((1 - p) / p)
    return _robust_by_class(doubt, np.zeros(len(p), np.int64), np.ones(len(p), dtype=bool))


def compute_outlier_scores(embeddings: np.ndarray, labels: Sequence[int] | np.ndarray,
                           groups: np.ndarray | None = None, k: int = K_OUTLIER, z_flag: float = Z_FLAG,
                           pred_probs: np.ndarray | None = None,
                           neighbours: Neighbours | None = None) -> OutlierScores:
    """Score every image for being off-topic (N×D L2-normalised embeddings, N int labels).

    ``groups`` (N ints, equal = copies) keeps copies from counting as each other's neighbours.
    Each class's reference is its core (:func:`.junk.compute_class_core`): the off-topic measures do not
    depend on what the label check flags.
    ``pred_probs`` (N×K out-of-sample probabilities) gives ``unclaimed``; without it the score averages three terms.
    ``neighbours``: a :func:`compute_neighbours` list with at least ``K_WIDE`` columns (computed if None).
    A class of one image gets distance 1.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    n = len(x)
    if n < 3:
        zeros = np.zeros(n)
        return OutlierScores(zeros, zeros, zeros, zeros, zeros, zeros, np.zeros(n, dtype=bool), None, zeros, zeros)
    g = np.arange(n) if groups is None else np.asarray(groups)
    wide = neighbours if neighbours is not None and neighbours.index.shape[1] >= K_WIDE \
        else compute_neighbours(x, K_WIDE, g)
    ref = compute_class_core(y, wide)
    d_knn, d_centre = np.ones(n), np.ones(n)
    mean_sim = same_label_mean_sim(x, y, g, wide, k)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        core = idx[ref[idx]] if ref[idx].sum() >= 2 else idx
        centre = x[core].mean(axis=0)
        norm = float(np.linalg.norm(centre))
        if len(idx) > 1 and norm > 0:
            d_centre[idx] = 1.0 - x[idx] @ (centre / norm)
            d_knn[idx] = np.where(np.isfinite(mean_sim[idx]), 1.0 - mean_sim[idx], 1.0)
    own = 0.5 * (_robust_by_class(d_knn, y, ref) + _robust_by_class(d_centre, y, ref))
    near = np.where(wide.valid[:, :M_LONELY], wide.sim[:, :M_LONELY], np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        b = np.nanmean(near, axis=1) if near.shape[1] else np.zeros(n)
    b = np.where(np.isfinite(b), b, 0.0)
    lonely = -_robust_by_class(b, np.zeros(n, np.int64), np.ones(n, dtype=bool))
    unfit = compute_fit_to_classes(y, wide, exclude=~ref, min_class=MIN_CLASS).min(axis=1)
    unfit = np.where(np.isfinite(unfit), unfit, 0.0)
    terms = [lonely, own, unfit]
    unclaimed = np.zeros(n)
    if pred_probs is not None and len(pred_probs) == n and np.asarray(pred_probs).shape[1] > 1:
        unclaimed = unclaimed_z(pred_probs)
        terms.append(unclaimed)
    z = np.mean([np.clip(t, 0.0, None) for t in terms], axis=0)
    score = z**2 / (z**2 + z_flag**2)
    first = (z >= z_flag) & (lonely >= Z_LONELY)
    cut = natural_break(first, unfit)
    flagged = first & (unfit >= cut) if cut is not None else first
    return OutlierScores(score, z, lonely, own, d_knn, d_centre, flagged, cut, unfit, unclaimed)


def same_label_mean_sim(x: np.ndarray, y: np.ndarray, g: np.ndarray, wide: Neighbours, k: int,
                        block: int = 1024, chunk: int = 8192) -> np.ndarray:
    """Per row, the mean cosine similarity to its ``k`` nearest images with the same label, copies (same ``g``)
    excluded (NaN when it has none): the first same-label entries of the whole-set list ``wide``, which are
    exactly those neighbours whenever the list holds ``k`` of them or holds every other image. Only the rows
    whose full list holds fewer (an image among other classes' images) are searched, exactly, among their
    own class's members. The same as a k-NN search per class, without building one: at 100,000 images
    (10 classes, real embeddings) 11 % of rows needed the search, and the step took ≈ 10 CPU-s where
    per-class HNSW graphs took ≈ 45.
    """
    n = len(y)
    if n == 0:
        return np.zeros(0)
    size = np.bincount(y)
    kc = np.minimum(k, size[y] - 1)
    li = np.clip(wide.index, 0, None)
    same = wide.valid & (y[li] == y[:, None])
    take = same & (np.cumsum(same, axis=1) <= kc[:, None])
    cnt = take.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(take, wide.sim, 0.0).astype(np.float64).sum(axis=1) / cnt
    _, inv, own = np.unique(np.stack([y, np.asarray(g, np.int64)]), axis=1, return_inverse=True, return_counts=True)
    avail = size[y] - own[inv.ravel()]  # same-label images that are not the row's copies
    full = wide.valid.all(axis=1) if wide.index.shape[1] else np.zeros(n, bool)
    short = np.flatnonzero((cnt < np.minimum(kc, avail)) & full)
    for c in np.unique(y[short]):
        rows, mem = short[y[short] == c], np.flatnonzero(y == c)
        kk = int(kc[rows[0]])
        best = np.full((len(rows), kk), -np.inf, np.float32)
        for s in range(0, len(mem), chunk):
            m = mem[s:s + chunk]
            xm = x[m]
            for b in range(0, len(rows), block):
                r = rows[b:b + block]
                prod = x[r] @ xm.T
                prod[g[r][:, None] == g[m][None, :]] = -np.inf
                both = np.concatenate([best[b:b + block], prod], axis=1)
                best[b:b + block] = np.partition(both, both.shape[1] - kk, axis=1)[:, -kk:]
        ok = np.isfinite(best)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[rows] = np.where(ok, best, 0.0).astype(np.float64).sum(axis=1) / ok.sum(axis=1)
    return out


def split_offtopic(scores: OutlierScores, label_flagged: np.ndarray, suggested_p: np.ndarray,
                   sure: float) -> np.ndarray:
    """N bool: images the label check flags *without a clear suggestion* (the suggested class below ``sure`` in
    its blend) that are as unlike their class as off-topic images are (``z ≥ Z_FLAG``, and above the natural
    break in ``unfit`` when the data set has one) — off-topic, not mislabelled, though not lonely.

    ``lonely`` keeps a wrongly labelled image out of the off-topic flags because its close neighbours are
    its true class; when the label check cannot name that class clearly, its neighbours are no one class's
    and the argument does not hold (a basketball filed under *bird*: *fruit* 0.57)."""
    unclear = np.asarray(label_flagged, dtype=bool) & (np.asarray(suggested_p) < sure)
    return unclear & _far(scores)


def unclaimed_offtopic(scores: OutlierScores, label_flagged: np.ndarray, best_p: np.ndarray,
                       claim: float | None = None) -> np.ndarray:
    """N bool: images the label check leaves alone although no class — the given one included — holds ``claim``
    (default :data:`CLAIM`) of its blend (``best_p``: the blend's highest class probability), as unlike their class
    as off-topic images are (``z ≥ Z_FLAG``, above the natural break when there is one): off-topic though not
    lonely (see the module doc)."""
    doubt = ~np.asarray(label_flagged, dtype=bool) & (np.asarray(best_p) < (CLAIM if claim is None else claim))
    return doubt & _far(scores)


def _far(scores: OutlierScores) -> np.ndarray:
    """N bool: ``z ≥ Z_FLAG``, and above the natural break in ``unfit`` when the data set has one."""
    far = scores.z >= Z_FLAG
    if scores.break_z is not None and scores.unfit is not None:
        far &= scores.unfit >= scores.break_z
    return far


def natural_break(flagged: np.ndarray, z: np.ndarray) -> float | None:
    """The data set's own break in the flagged scores (the lowest score kept), or None when there is none.

    The flagged scores, sorted from the highest, are searched for drops from one to the next that are at
    least :data:`GAP_Z` wide *and* either a fall of at least ``1 − GAP_RATIO`` or at least :data:`TAIL_FACTOR`
    times the median spacing of the :data:`TAIL_W` values below (an empty stretch above a dense tail of
    merely unusual members: 12.8 over 10.3, 9.7, 8.7, ... is a break though a fall of only 20 %) — with at least :data:`MIN_ABOVE`
    images (and 1 % of the data set) above. Of these the largest *relative* fall is the break (scale-free: a
    fall from 10 to 5 is a clearer break than one from 24 to 17 among off-topic images that differ among
    themselves). If a break exists, only the images above it stay flagged; otherwise the flags are kept.
    """
    idx = np.flatnonzero(flagged)
    if len(idx) < 2:
        return None
    v = np.sort(z[idx])[::-1]
    first = max(MIN_ABOVE, int(0.01 * len(z))) - 1
    gaps = v[:-1] - v[1:]
    below = np.array([np.median(gaps[i + 1:i + 1 + TAIL_W]) if len(gaps) - i - 1 >= TAIL_W else np.inf
                      for i in range(len(gaps))])  # the spacing of the flagged tail just below each drop
    ok = (np.arange(len(gaps)) >= first) & (gaps >= GAP_Z) & (v[1:] > 0) \
        & ((v[1:] <= GAP_RATIO * v[:-1]) | (gaps >= TAIL_FACTOR * below))
    if not ok.any():
        return None
    fall = v[:-1] / np.maximum(v[1:], 1e-9)
    return float(v[int(np.flatnonzero(ok)[np.argmax(fall[ok])])])


def find_outliers(item_ids: Sequence[str], labels: Sequence[int] | np.ndarray, vocab: Sequence[str],
                  scores: OutlierScores, label_scores: object | None = None,
                  only: np.ndarray | None = None) -> pd.DataFrame:
    """Flagged images (or the ``only`` mask) as ``outlier`` rows with the evidence in words; no suggested label.

    ``label_scores`` (:class:`cleaning.detect.label.LabelScores`) adds split evidence to the reason:
    when the label detector would move the image to another class, the reason names that class and
    leaves the choice to the person.
    """
    y = np.asarray(labels, dtype=np.int64)
    mask = scores.flagged if only is None else np.asarray(only, dtype=bool)
    rows = []
    for i in np.flatnonzero(mask):
        same = y == y[i]
        typical_knn = float(np.median(1 - scores.dist_class[same]))
        alone = "alone in the data set and unlike" if scores.lonely[i] >= Z_LONELY else "unlike"
        reason = (f"{alone} the other *{vocab[y[i]]}* images: similarity "
                  f"{1 - scores.dist_class[i]:.2f} to its nearest *{vocab[y[i]]}* images (typical {typical_knn:.2f})"
                  f"{_doubt(i, vocab, scores, label_scores)}; probably not any of your classes — delete it if it "
                  "does not belong")
        reason += split_evidence(i, y, vocab, label_scores)
        rows.append({"item_id": item_ids[i], "issue": "outlier", "severity": float(max(scores.score[i], 0.5)),
                     "reason": reason})
    return issues_frame(rows)


def _doubt(i: int, vocab: Sequence[str], scores: OutlierScores, label_scores: object | None) -> str:
    """", and no other class fits it either; the classifier is unsure of every class (best *cat* 0.41)" or less."""
    out = ""
    if scores.unfit is not None and scores.unfit[i] >= Z_LONELY:
        out += ", and no other class fits it either"
    probs = getattr(label_scores, "model_probs", None)
    if scores.unclaimed is not None and scores.unclaimed[i] >= 1.0 and probs is not None:
        k = int(np.argmax(probs[i]))
        out += f"; the classifier is unsure of every class (best *{vocab[k]}* {float(probs[i, k]):.2f})"
    return out


def split_evidence(i: int, y: np.ndarray, vocab: Sequence[str], label_scores: object | None) -> str:
    """" (split evidence: the model's best guess is *cat* 0.81 — relabel if it is one)" or ""."""
    if label_scores is None:
        return ""
    ls = label_scores
    s = int(ls.suggested[i])  # type: ignore[attr-defined]
    p = float(ls.pred_probs[i, s])  # type: ignore[attr-defined]
    if not bool(ls.flagged[i]) or s == int(y[i]):  # type: ignore[attr-defined]
        return ""
    return (f" (split evidence: the label check would move it to *{vocab[s]}* ({p:.2f}); relabel it only if it "
            "really is one)")
