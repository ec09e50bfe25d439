"""The out-of-sample heads' features at large N: the embeddings' first principal components.

*Rule*: a cross-fitting over more than :data:`PCA_ABOVE` rows fits its fold heads (:mod:`cleaning.model.oos`) on
the embeddings projected onto their first :data:`HEAD_DIMS` principal components (fitted on a random
:data:`PCA_SAMPLE` rows, seed 0), not on all D dimensions; at or below it (every benchmark set: ≤ 4,000 images)
the heads are fitted exactly as before. The projection uses no labels, so a head still never sees the label of
a row it predicts. Each head is mapped back to the embedding space (:func:`to_embedding_space`), so the kept
heads (:mod:`cleaning.model.foldheads`) keep one format.

*Why* (``bench/results/scale.md`` §14a, 100,000 real-backbone embeddings of the scale tree, 10 classes, 2,980
planted label errors, loaded machine): the two 5-fold passes (first pass, the label check's re-learning pass) took
119.5 + 89.4 CPU-s on all 1,280 dimensions and 9.4 + 9.5 on 128 components (lbfgs converges in far fewer steps on
the smaller, better-conditioned problem, and each step is 10× cheaper). Quality held: the out-of-sample argmax's
accuracy against the given labels 0.930 → 0.931 (it agrees with the full heads' on 96.7 % of rows); the label
check's flags against the planted errors precision 0.661 → 0.669, recall 0.971 → 0.958, right suggestion 0.992 →
0.995 (F1 0.787 → 0.788; Jaccard of the two flag sets 0.93). 256 components: 12.3 + 16.4 CPU-s, precision 0.670,
recall 0.960 — no better for the cost. Capping each head's rows instead (a stratified, weighted sample of 20,000
or 10,000 rows on all dimensions) was measured and rejected: 42 + 31 CPU-s at 20,000, but argmax accuracy 0.872
and flag precision 0.633 (a 1,280-d head wants all its rows).

*Threshold*: below :data:`PCA_ABOVE` rows the full-dimension heads cost ≤ ≈ 25 CPU-s per pass (linear in N);
the projection was measured at 100,000 only, so it is used only where the full heads are expensive.
"""

from __future__ import annotations

import numpy as np

#: Rows above which the heads are fitted on principal components.
PCA_ABOVE = 20_000
#: Principal components the heads see above :data:`PCA_ABOVE` (the near-duplicate index uses 128 too).
HEAD_DIMS = 128
#: Rows the components are fitted on (a random sample; the covariance of 10,000 rows is 1,280 × 1,280).
PCA_SAMPLE = 10_000


def principal_basis(x: np.ndarray, dims: int = HEAD_DIMS, seed: int = 0,
                    sample: int = PCA_SAMPLE) -> tuple[np.ndarray, np.ndarray]:
    """(mean D, basis D×dims float32): the first ``dims`` principal directions of ``sample`` random rows of ``x``."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x), min(sample, len(x)), replace=False))
    s = np.asarray(x[rows], np.float64)
    mean = s.mean(axis=0)
    _, vec = np.linalg.eigh((s - mean).T @ (s - mean))
    return mean.astype(np.float32), np.ascontiguousarray(vec[:, ::-1][:, :dims], dtype=np.float32)


def project(x: np.ndarray, mean: np.ndarray, basis: np.ndarray, block: int = 8192) -> np.ndarray:
    """N×dims float32 ``(x − mean) @ basis``, a block of rows at a time (no full-width temporary)."""
    out = np.empty((len(x), basis.shape[1]), np.float32)
    for s in range(0, len(x), block):
        out[s:s + block] = (np.asarray(x[s:s + block], np.float32) - mean) @ basis
    return out


def to_embedding_space(head: tuple[np.ndarray, ...], mean: np.ndarray,
                       basis: np.ndarray) -> tuple[np.ndarray, ...]:
    """A fold head ``(m, s, W K×P, b, present)`` on projected features as the same head on the embeddings.

    ``W·((B'(x − μ) − m) / s) + b = (W / s)·B'·(x − μ) + (b − (W / s)·m)``: mean μ, scale 1, coef (W / s)·B'.
    """
    m, s, w, b, present = head
    ws = np.asarray(w, np.float64) / np.asarray(s, np.float64)
    return (mean.astype(np.float32), np.ones(len(mean), np.float32), ws @ basis.T.astype(np.float64),
            np.asarray(b, np.float64) - ws @ np.asarray(m, np.float64), present)
