"""Out-of-sample predicted probabilities for every image.

Each row of ``pred_probs`` comes from a model that never saw that image (nor its exact or
perceptual duplicates): the images are split into ``n_folds`` folds, keeping duplicate groups in one
fold, and a logistic-regression head is fitted on the cached pretrained embeddings of the other folds.
This is the signal the detectors rank by; in-sample (training) losses are not.

Why heads on embeddings rather than k fine-tuned networks: on 2 CPU cores five fine-tunes of even a
small CNN take tens of minutes for 1,000 images, while five logistic regressions on 1,280-d
embeddings take seconds; the embeddings are computed once and shared with the duplicate/outlier
detectors and the map. The fine-tuned network (:mod:`cleaning.model.train`) stays the user's classifier.

At large N (over :data:`cleaning.model.headpca.PCA_ABOVE` = 20,000 rows) the heads are fitted on the embeddings'
first 128 principal components (no labels involved): at 100,000 images the two 5-fold passes fell from 120 + 89
to 9 + 10 CPU-s with the label check's flags as good against planted noise (:mod:`cleaning.model.headpca`).

Incremental: the scan keeps each fit's fold heads with the rows they were fitted on
(:func:`load_or_fit_pred_probs`, :mod:`cleaning.model.foldheads`). A rescan after images were added or
removed answers from them — new images were in no head's training set — while at most 1/(2F) of the rows
(10 %) changed and no label did; a relabel decision, a new class or a larger change fits the folds again.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cpus import n_cpus
from ..errors import CleaningError
from ..groups import join_groups, make_groups  # noqa: F401  (make_groups: re-exported)

if TYPE_CHECKING:
    from ..data.workspace import Workspace
    from .embed import Embedded

#: Inverse regularisation strength of the heads (features are standardised first).
DEFAULT_C = 0.05
#: lbfgs steps per head. On large sets (the 100k scale tree) a fold's head can stop here before sklearn's
#: tolerance; that is the scan's time budget, so the warning it prints per fold is silenced in the folds.
MAX_ITER = 300
#: Folds fitted at once (threads; numpy and scipy release the GIL in the heavy steps). Each holds its own
#: standardised float32 copy of its training rows (553 MB at 100,000 × 1,280), so at most two.
FOLD_THREADS = 2
#: ... and only as many as keep those copies under this many bytes together: at 100,000 images two folds'
#: copies (2 × 410 MB plus the solver's temporaries) lifted the scan's peak to 3.09 GB, over its 3 GB bound
#: (the embeddings, the neighbour graph and the thumbnails are resident then). Up to ~65,000 rows two fit; since
#: the heads see 128 principal components above 20,000 rows (:mod:`.headpca`), up to ~650,000.
FOLD_COPY_BUDGET = 512 * 2**20
#: Probabilities are floored at this and renormalised so a loss never sees log(0).
PROB_FLOOR = 1e-6


def encode_labels(labels: Sequence[str] | Sequence[int] | np.ndarray, vocab: Sequence[str]) -> np.ndarray:
    """Labels as ints 0..K-1 in ``vocab`` order (accepts label strings or ints).

    Raises:
        CleaningError: a label that is not in ``vocab`` / an int out of range.
    """
    arr = np.asarray(labels)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() >= len(vocab)):
            raise CleaningError("label index out of range of the vocab")
        return arr.astype(np.int64)
    index = {v: i for i, v in enumerate(vocab)}
    try:
        return np.array([index[str(v)] for v in arr], dtype=np.int64)
    except KeyError as e:
        raise CleaningError(f"label {e.args[0]!r} is not in the vocab") from None


def assign_folds(labels: np.ndarray, n_folds: int = 5, groups: np.ndarray | None = None,
                 seed: int = 0) -> np.ndarray:
    """Fold index (0..F-1) per row, stratified by label, whole groups in one fold.

    The groups (copies of one picture) are dealt to folds by scikit-learn's ``StratifiedKFold`` over
    one label per group (its first row's): linear time. ``StratifiedGroupKFold``, which weighs every
    group against every fold in a Python loop, took 0.4 ms per group (40 s per call at 100,000 images,
    and the label check calls it once per re-learning pass). F = min(n_folds, number of groups,
    groups in the largest class), at least 2.

    Raises:
        CleaningError: fewer than two groups (nothing to hold out).
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    if len(first) < 2:
        raise CleaningError("need at least two distinct images for out-of-sample probabilities",
                            hint="add images")
    group_label = y[first]
    largest_class = int(np.bincount(group_label).max())
    k = max(2, min(n_folds, len(first), largest_class))
    splitter = StratifiedKFold(k, shuffle=True, random_state=seed) if largest_class >= k else \
        KFold(k, shuffle=True, random_state=seed)  # every class has one group: nothing to stratify
    group_fold = np.full(len(first), -1, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "least populated class has only m members" is expected
        for f, (_, test) in enumerate(splitter.split(np.zeros(len(first)), group_label)):
            group_fold[test] = f
    return group_fold[inverse.ravel()]


def _standardise(x: np.ndarray, block: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Standardise float32 ``x`` in place (what scikit-learn's ``StandardScaler`` does) and return (mean, scale).

    Moments are accumulated in float64 one block of rows at a time: scikit-learn's ``StandardScaler.fit``
    makes whole-matrix float64 temporaries, 2 × the rows' own size (0.8 GB per fold at 100,000 images).
    """
    n = len(x)
    total = np.zeros(x.shape[1], np.float64)
    for s in range(0, n, block):
        total += x[s:s + block].sum(axis=0, dtype=np.float64)
    mean = total / max(n, 1)
    sq = np.zeros_like(mean)
    for s in range(0, n, block):
        sq += np.square(x[s:s + block] - mean).sum(axis=0)
    scale = np.sqrt(sq / max(n, 1))
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0  # a constant feature: left as it is (as sklearn does)
    mean32, scale32 = mean.astype(np.float32), scale.astype(np.float32)
    for s in range(0, n, block):
        x[s:s + block] -= mean32
        x[s:s + block] /= scale32
    return mean32, scale32


@dataclass
class LinearProbe:
    """A linear head on raw features: ``softmax(((x - mean) / scale) @ weight.T + bias)``."""

    mean: np.ndarray  # D
    scale: np.ndarray  # D, floored (see :func:`fit_linear_probe`)
    weight: np.ndarray  # K×D
    bias: np.ndarray  # K

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weight.T + self.bias


def fit_linear_probe(features: np.ndarray, y: np.ndarray, n_classes: int, c: float = DEFAULT_C,
                     seed: int = 0) -> LinearProbe:
    """Fit this module's head (standardise + logistic regression, ``C=c``) on ``features`` (N×D).

    The standard deviations are floored at a tenth of their median: a feature that barely varies in the
    training images would otherwise be multiplied by a huge factor, harmless for a fixed network but
    explosive once fine-tuning shifts it. Classes absent from ``y`` get a very low bias.
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    floor = 0.1 * float(np.median(scale)) if np.median(scale) > 0 else 1e-6
    scale = np.maximum(scale, max(floor, 1e-8))
    weight = np.zeros((n_classes, x.shape[1]), np.float64)
    bias = np.full(n_classes, -30.0)
    present = np.unique(y)
    if len(present) == 1:
        bias[present[0]] = 0.0
    else:
        with threadpool_limits(1):
            clf = LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed).fit((x - mean) / scale, y)
        coef, intercept = clf.coef_, clf.intercept_
        if len(clf.classes_) == 2:  # sklearn's binary form: one row for the positive class
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        weight[clf.classes_], bias[clf.classes_] = coef, intercept
    f32 = np.float32
    return LinearProbe(mean.astype(f32), scale.astype(f32), weight.astype(f32), bias.astype(f32))


def cross_val_pred_probs(embeddings: np.ndarray, labels: np.ndarray, n_classes: int, folds: np.ndarray,
                         c: float = DEFAULT_C, seed: int = 0,
                         progress: Callable[[int, int], None] | None = None,
                         heads: dict[int, tuple[np.ndarray, ...]] | None = None,
                         pca_above: int | None = None) -> np.ndarray:
    """N×K probabilities where row i comes from a head fitted on the rows with ``folds != folds[i]``.

    A class absent from a training fold gets probability ~0 in that fold's rows. ``heads``: filled with
    ``{fold: (mean, scale, coef K×D, intercept K, present K)}`` (:class:`cleaning.model.foldheads.FoldHeads`).
    Over ``pca_above`` rows (default :data:`cleaning.model.headpca.PCA_ABOVE`; 0 = always) the heads see the
    embeddings' first principal components (:mod:`cleaning.model.headpca`); ``heads`` are then mapped back.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from threadpoolctl import threadpool_limits

    from . import headpca

    n = len(labels)
    limit = headpca.PCA_ABOVE if pca_above is None else pca_above
    if n > limit and embeddings.shape[1] > headpca.HEAD_DIMS:
        mean, basis = headpca.principal_basis(embeddings, headpca.HEAD_DIMS, seed)
        kept: dict[int, tuple[np.ndarray, ...]] | None = {} if heads is not None else None
        probs = cross_val_pred_probs(headpca.project(embeddings, mean, basis), labels, n_classes, folds, c, seed,
                                     progress, kept, pca_above=n)
        if heads is not None and kept is not None:
            heads.update({f: headpca.to_embedding_space(h, mean, basis) for f, h in kept.items()})
        return probs
    out = np.zeros((n, n_classes), dtype=np.float64)
    fold_ids = np.unique(folds)
    fold_copy = 4 * embeddings.shape[1] * n * (len(fold_ids) - 1) / max(len(fold_ids), 1)  # one fold's float32 rows
    workers = max(1, min(FOLD_THREADS, n_cpus(), len(fold_ids), int(FOLD_COPY_BUDGET // max(fold_copy, 1))))
    # multithreaded BLAS is ~30x slower here on a busy 2-core machine: one BLAS thread per fold, folds in
    # parallel instead (each fills only its own rows of ``out``; the result does not depend on the order)
    with threadpool_limits(1), ThreadPoolExecutor(workers) as pool:
        jobs = [pool.submit(_fit_fold, embeddings, labels, folds, f, out, c, seed, heads) for f in fold_ids]
        for step, job in enumerate(as_completed(jobs)):
            job.result()
            if progress:
                progress(step + 1, len(fold_ids))
    out = np.maximum(out, PROB_FLOOR)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def _fit_fold(embeddings: np.ndarray, labels: np.ndarray, folds: np.ndarray, f: int, out: np.ndarray,
              c: float, seed: int, heads: dict[int, tuple[np.ndarray, ...]] | None = None) -> None:
    """Fill ``out``'s rows of fold ``f`` from a head fitted on the other folds (and its parameters into ``heads``)."""
    test, train = folds == f, (folds != f) & (labels >= 0)  # label -1: predicted, never trained on
    present = np.unique(labels[train])
    k, d = out.shape[1], embeddings.shape[1]
    if len(present) == 1:
        out[np.ix_(test, present)] = 1.0
        if heads is not None:  # a head that says its one class whatever it sees
            heads[int(f)] = (np.zeros(d, np.float32), np.ones(d, np.float32), np.zeros((k, d)), np.zeros(k),
                             np.isin(np.arange(k), present))
    else:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        # StandardScaler + LogisticRegression, in bounded memory: the fold's rows are a fresh float32 copy (boolean indexing),
        # standardised in place; the held-out rows likewise with the same mean and scale
        xt = np.asarray(embeddings[train], dtype=np.float32)
        mean, scale = _standardise(xt)
        with warnings.catch_warnings():  # 300 lbfgs steps is the budget, not a failure: no stderr noise per fold
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed).fit(xt, labels[train])
        del xt
        xe = np.asarray(embeddings[test], dtype=np.float32)
        xe -= mean
        xe /= scale
        out[np.ix_(test, clf.classes_)] = clf.predict_proba(xe)
        if heads is not None:
            coef, intercept = clf.coef_, clf.intercept_
            if len(clf.classes_) == 2:  # sklearn's binary form (one row); softmax(-z/2, z/2) = sigmoid(z)
                coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
            full_coef, full_b = np.zeros((k, d)), np.zeros(k)
            full_coef[clf.classes_], full_b[clf.classes_] = coef, intercept
            heads[int(f)] = (mean, scale, full_coef, full_b, np.isin(np.arange(k), clf.classes_))


def compute_oos_pred_probs(embeddings: np.ndarray, labels: Sequence[str] | Sequence[int] | np.ndarray,
                           vocab: Sequence[str], n_folds: int = 5, groups: np.ndarray | None = None,
                           seed: int = 0, c: float = DEFAULT_C,
                           progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Out-of-sample ``pred_probs`` (N×K float32, rows sum to 1, columns in ``vocab`` order).

    Args:
        embeddings: N×D features (L2-normalised embeddings).
        labels: N labels, strings in ``vocab`` or ints; the int -1 leaves a row out of every training set
            (it is still predicted): the label check's prune-and-retrain.
        groups: N group ids; rows of a group share a fold (duplicates never teach each other).
    Raises:
        CleaningError: fewer than two groups, labels not in ``vocab``, shapes that do not match.
    """
    arr = np.asarray(labels)
    held = (arr == -1) if arr.dtype.kind in "iu" else np.zeros(len(arr), bool)
    y = encode_labels(np.where(held, 0, arr) if held.any() else arr, vocab)
    if len(y) != len(embeddings):
        raise CleaningError(f"{len(embeddings)} embeddings but {len(y)} labels")
    if len(vocab) == 1:
        return np.ones((len(y), 1), dtype=np.float32)
    folds = assign_folds(y, n_folds, groups, seed)  # (held-out rows stratified as class 0: any class would do)
    y = np.where(held, -1, y)
    return cross_val_pred_probs(np.asarray(embeddings, dtype=np.float32), y, len(vocab), folds, c, seed,
                                progress)


def load_or_fit_pred_probs(cache_dir: Path, slot: str, embeddings: np.ndarray, sha256: Sequence[str],
                           labels: np.ndarray, vocab: Sequence[str], groups: np.ndarray, n_folds: int = 5,
                           seed: int = 0, c: float = DEFAULT_C,
                           progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Out-of-sample probabilities for ``labels`` (N ints into ``vocab``, -1 = never trained on), reusing kept heads.

    The heads of the last fit in ``slot`` (a cache file per pass, model and fold settings) answer when
    :func:`cleaning.model.foldheads.plan_reuse` allows (the rule is in that module's doc); otherwise the folds
    are fitted afresh exactly as :func:`compute_oos_pred_probs` does and their heads are kept for the next
    call. One process at a time per slot (an OS file lock in the cache folder): a second scan waits for the
    first one's fit and then reuses it. Returns (N×K float32 ``pred_probs``, N folds, how: ``"reused: …"`` or
    ``"fitted: <why not reused>"``).
    """
    from ..data.cache import cache_lock, load_arrays, save_arrays
    from .foldheads import FoldHeads, plan_reuse

    y = np.asarray(labels, np.int64)
    x = np.asarray(embeddings, dtype=np.float32)
    with cache_lock(cache_dir, f"heads-{slot}"):
        kept = load_arrays(cache_dir, "heads", slot)
        heads = FoldHeads.from_arrays(kept) if kept is not None else None
        why = "no heads kept"
        if heads is not None and heads.mean.shape[1:] == x.shape[1:]:
            plan = plan_reuse(heads, sha256, y, vocab, groups, n_folds)
            if plan.folds is not None:
                out = np.maximum(heads.predict(x, plan.folds), PROB_FLOOR)
                return (out / out.sum(axis=1, keepdims=True)).astype(np.float32), plan.folds, plan.reason
            why = plan.reason
        folds = assign_folds(np.where(y < 0, 0, y), n_folds, groups, seed)  # held-out rows stratified as class 0
        fitted: dict[int, tuple[np.ndarray, ...]] = {}
        probs = cross_val_pred_probs(x, y, len(vocab), folds, c, seed, progress, heads=fitted)
        save_arrays(cache_dir, "heads", slot, **FoldHeads.from_fit(vocab, sha256, y, folds, fitted).to_arrays())
    return probs, folds, f"fitted: {why}"


def relearn_pred_probs(cache_dir: Path, model_key: str, embeddings: np.ndarray, sha256: Sequence[str],
                       labels: np.ndarray, vocab: Sequence[str], groups: np.ndarray, n_folds: int = 5, seed: int = 0,
                       c: float = DEFAULT_C) -> np.ndarray:
    """The label check's re-learning pass (labels -1 = pruned) with kept heads: :func:`load_or_fit_pred_probs`.

    Equal to ``compute_oos_pred_probs(embeddings, labels, vocab, groups=groups)`` when it fits afresh.
    """
    from ..data.cache import fingerprint

    if len(vocab) == 1:
        return np.ones((len(labels), 1), dtype=np.float32)
    slot = fingerprint("relearn", model_key, n_folds, seed, c)
    return load_or_fit_pred_probs(cache_dir, slot, embeddings, sha256, labels, vocab, groups, n_folds, seed, c)[0]


def mid_key(model_key: str) -> str:
    """The cache key part of out-of-sample heads on the tapped block of the embedding model ``model_key``."""
    return f"{model_key}-mid"


@dataclass
class OOS:
    """Out-of-sample probabilities aligned to ``item_ids`` (non-deleted, embeddable items)."""

    item_ids: list[str]
    labels: list[str]
    vocab: list[str]
    pred_probs: np.ndarray  # N×K float32
    folds: np.ndarray  # N ints: which held-out fold each row was predicted in
    key: str
    how: str = "cached"  # "cached", "reused: …" (kept fold heads) or "fitted: <why>"


def load_or_compute_oos(ws: Workspace, n_folds: int = 5, seed: int = 0, c: float = DEFAULT_C,
                        progress: Callable[[int, int], None] | None = None, emb: Embedded | None = None,
                        mid: bool = False) -> OOS:
    """Out-of-sample probabilities for the workspace's current labels, cached.

    The key covers the embedding model, every (item, content, current label) and the fold settings; a
    result for exactly these is read back. Otherwise the kept fold heads answer when the rows changed little
    and no label changed (:mod:`cleaning.model.foldheads`), else the folds are fitted again. ``emb``: the workspace's embeddings when the caller has them loaded already
    (one matrix in memory instead of two: 0.5 GB at 100,000 images). ``mid``: on the backbone's tapped block
    (``emb.mid``, which the caller loaded with ``tap=True``) instead of the embeddings.
    """
    from ..data.cache import fingerprint, load_arrays, save_arrays
    from .embed import load_or_compute_embeddings

    emb = emb if emb is not None else load_or_compute_embeddings(ws)
    feats, model_key = (emb.mid, mid_key(emb.model_key)) if mid else (emb.embeddings, emb.model_key)
    if feats is None:
        raise CleaningError("no tapped-block features for these embeddings", hint="embed with tap=True")
    df = ws.items_frame().set_index("item_id").loc[emb.item_ids]
    labels = [str(v) for v in df["label"]]
    vocab = sorted(set(labels))
    key = fingerprint("oos", model_key, list(zip(emb.item_ids, df["sha256"], labels)), n_folds, seed, c)
    cached = load_arrays(ws.cache_dir, "oos", key)
    if cached is not None:
        return OOS(emb.item_ids, labels, vocab, cached["pred_probs"], cached["folds"], key)
    if not vocab:
        return OOS([], [], [], np.zeros((0, 0), np.float32), np.zeros(0, np.int64), key)
    groups = make_groups(list(df["sha256"]), list(df["phash"]))
    y = encode_labels(labels, vocab)
    if len(vocab) == 1:
        probs, folds = np.ones((len(y), 1), np.float32), np.zeros(len(y), np.int64)
        how = "fitted: one class"
    else:
        slot = fingerprint("oos", model_key, n_folds, seed, c)
        probs, folds, how = load_or_fit_pred_probs(ws.cache_dir, slot, feats, list(df["sha256"]), y, vocab,
                                                   groups, n_folds, seed, c, progress)
    save_arrays(ws.cache_dir, "oos", key, pred_probs=probs, folds=folds)
    return OOS(emb.item_ids, labels, vocab, probs, folds, key, how)
