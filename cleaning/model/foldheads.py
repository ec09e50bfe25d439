"""Kept fold heads: out-of-sample probabilities after a small change to the data set, without refitting.

:mod:`cleaning.model.oos` fits one head per fold on the other folds' rows. Those heads are kept (in the
workspace cache, with the rows they were fitted on: content sha256, training label, fold) so a rescan
can answer from them when the data set changed little.

**Why the kept heads are still out-of-sample.** A row that was in the fit keeps its fold; its head never
saw it (nor its copies: copies share a fold). An image added since the fit was in *no* head's training
set, so any head is out-of-sample for it: it gets the fold its content hashes to (``sha256 mod F``, stable
across rescans), or, when it copies an image of the fit (one copy group, :func:`cleaning.groups.make_groups`),
that image's fold — the other heads trained on its copy. Every row is predicted by exactly one head
fitted on ≈ (F−1)/F of the rows, as in a fresh fit, so old and new rows' probabilities are comparable
(averaging all F heads for the new rows would make theirs smoother than everyone else's).

**When to reuse, when to refit** (:func:`plan_reuse`). Rows are (content, training label) pairs; the
label −1 is the label check's "predicted, never trained on" (its pruned rows).

* A content that trains with a label it did not have in the fit *and* lost one it had (a relabel decision;
  per content, as a multiset of its rows' labels) → **refit**: the heads were taught the old label, and a
  decision must show in the next scan. (A copy added under another class only adds a row; deleting one
  only removes a row.)
* The classes (vocab) differ, the model or the fold settings differ (another cache slot) → **refit**.
* A new image that copies images of two different folds → **refit** (no head is out-of-sample for it).
* Otherwise count the changed rows: added and removed contents (decisions that delete or restore
  images, new files), and rows moved into or out of training (label −1 ↔ a label). **Refit when they
  exceed** :func:`reuse_share` ``= 1 / (2F)`` of the current rows (10 % with 5 folds), else reuse.
  Reason for the share: cross-fitting already leaves 1/F of the rows out of every head; a kept head
  also misses the changed rows, and allowing at most half that again keeps every head's training set
  within ≈ 1/(2F) of what a fresh fit would use (≥ 72 % of the rows against 80 %).

Because the share is counted against the rows the heads were *fitted* on (not the last rescan), repeated
small additions add up and eventually refit. What a reuse gives up, by design: a fresh refit also deals
every row to folds again (another random split), so its probabilities differ from the kept heads' on
*unchanged* rows by about as much as two fits with different fold seeds differ; the kept heads give the
unchanged rows exactly their old probabilities (``tests/test_foldheads.py`` measures both).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def reuse_share(n_folds: int) -> float:
    """Largest share of changed rows (of the current rows) that still reuses the kept heads: 1 / (2F)."""
    return 1.0 / (2 * max(int(n_folds), 2))


@dataclass
class FoldHeads:
    """The F heads of one cross-fitting and the M rows they were fitted on (and predicted)."""

    vocab: list[str]
    sha256: np.ndarray  # M str
    labels: np.ndarray  # M int into vocab; -1 = predicted, never trained on
    folds: np.ndarray  # M int: the fold each row was held out in
    fold_ids: np.ndarray  # F int
    mean: np.ndarray  # F×D float32: each head's standardisation
    scale: np.ndarray  # F×D float32
    coef: np.ndarray  # F×K×D: zeros for classes absent from a fold's training rows
    intercept: np.ndarray  # F×K
    present: np.ndarray  # F×K bool: the classes each head was trained on

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"vocab": np.array(self.vocab, dtype=str), "sha256": np.asarray(self.sha256, dtype="U64"),
                "labels": self.labels, "folds": self.folds, "fold_ids": self.fold_ids, "mean": self.mean,
                "scale": self.scale, "coef": self.coef, "intercept": self.intercept, "present": self.present}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> FoldHeads | None:
        """The heads from :meth:`to_arrays`' arrays, or None when a field is missing (an older file)."""
        try:
            return cls([str(v) for v in a["vocab"]], a["sha256"], a["labels"], a["folds"], a["fold_ids"], a["mean"],
                       a["scale"], a["coef"], a["intercept"], a["present"].astype(bool))
        except KeyError:
            return None

    @classmethod
    def from_fit(cls, vocab: Sequence[str], sha256: Sequence[str], labels: np.ndarray, folds: np.ndarray,
                 heads: dict[int, tuple[np.ndarray, ...]]) -> FoldHeads:
        """Collect ``{fold: (mean, scale, coef K×D, intercept K, present K)}`` as filled by the fit."""
        ids = np.array(sorted(heads), dtype=np.int64)
        parts = [np.stack([heads[int(f)][i] for f in ids]) for i in range(5)]
        return cls(list(vocab), np.asarray(sha256, dtype="U64"), np.asarray(labels, np.int64),
                   np.asarray(folds, np.int64), ids, parts[0].astype(np.float32), parts[1].astype(np.float32),
                   parts[2], parts[3], parts[4].astype(bool))

    def predict(self, x: np.ndarray, folds: np.ndarray, block: int = 8192) -> np.ndarray:
        """N×K probabilities of row i from the head of ``folds[i]`` (softmax over that head's classes)."""
        out = np.zeros((len(x), len(self.vocab)), np.float64)
        for j, f in enumerate(self.fold_ids):
            rows = np.flatnonzero(folds == f)
            cls_ = np.flatnonzero(self.present[j])
            for s in range(0, len(rows), block):
                r = rows[s:s + block]
                xe = (np.asarray(x[r], np.float32) - self.mean[j]) / self.scale[j]
                z = xe @ self.coef[j][cls_].T + self.intercept[j][cls_]
                z = np.exp(z - z.max(axis=1, keepdims=True))
                out[np.ix_(r, cls_)] = z / z.sum(axis=1, keepdims=True)
        return out


@dataclass(frozen=True)
class ReusePlan:
    """:func:`plan_reuse`'s answer: ``folds`` (N) when the kept heads serve the current rows, else None."""

    folds: np.ndarray | None
    reason: str
    changed: int = 0  # rows added, removed or moved into / out of training since the fit


def content_fold(sha: str, fold_ids: np.ndarray) -> int:
    """The fold a content that no head saw is predicted in: its sha256 modulo F (stable across rescans)."""
    return int(fold_ids[int(sha[:15], 16) % len(fold_ids)])


def plan_reuse(heads: FoldHeads, sha256: Sequence[str], labels: np.ndarray, vocab: Sequence[str],
               groups: np.ndarray, n_folds: int) -> ReusePlan:
    """Whether the kept ``heads`` give out-of-sample probabilities for the current rows (the module doc's rule).

    Args:
        sha256, labels, groups: the current N rows (labels ints into ``vocab``, -1 = not trained on;
            groups: copy-group ids, :func:`cleaning.groups.make_groups`).
    """
    if list(vocab) != heads.vocab:
        return ReusePlan(None, "the classes changed")
    shas = [str(s) for s in sha256]
    y = np.asarray(labels, np.int64)
    old: dict[str, tuple[Counter[int], int, int]] = {}  # sha -> (trained labels, rows, fold)
    for s, lab, f in zip(map(str, heads.sha256), heads.labels.tolist(), heads.folds.tolist()):
        trained, n, _ = old.get(s, (Counter(), 0, f))
        old[s] = (trained + Counter([lab] if lab >= 0 else []), n + 1, f)
    new: dict[str, tuple[Counter[int], int]] = {}
    for s, lab in zip(shas, y.tolist()):
        trained, n = new.get(s, (Counter(), 0))
        new[s] = (trained + Counter([lab] if lab >= 0 else []), n + 1)
    changed = 0
    for s, (trained, n) in new.items():
        was, m, _ = old.get(s, (Counter(), 0, 0))
        gained, lost = trained - was, was - trained
        if gained and lost:  # a row of this content now trains with another label
            return ReusePlan(None, "a label changed since the heads were fitted")
        changed += max(sum(gained.values()) + sum(lost.values()), abs(n - m))
    changed += sum(m for s, (_, m, _) in old.items() if s not in new)
    limit = reuse_share(n_folds) * len(shas)
    if changed > limit:
        return ReusePlan(None, f"{changed} rows changed since the heads were fitted (over {limit:.0f})", changed)
    group_fold: dict[int, set[int]] = {}
    for s, g in zip(shas, np.asarray(groups).tolist()):
        if s in old:
            group_fold.setdefault(g, set()).add(old[s][2])
    folds = np.empty(len(shas), np.int64)
    for i, (s, g) in enumerate(zip(shas, np.asarray(groups).tolist())):
        if s in old:
            folds[i] = old[s][2]
            continue
        seen = group_fold.get(g, set())
        if len(seen) > 1:
            return ReusePlan(None, "a new image copies images held out in different folds", changed)
        folds[i] = next(iter(seen)) if seen else content_fold(s, heads.fold_ids)
    return ReusePlan(folds, f"reused: {changed} rows changed since the heads were fitted", changed)
