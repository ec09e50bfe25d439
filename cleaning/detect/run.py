"""Every detector over arrays, merged into one issue table: what the scan runs, without any disk or model.

:func:`run_detectors` takes what the scan has computed (embeddings, out-of-sample ``pred_probs``,
hashes, thumbnails, pixel statistics) and returns the issue rows (:data:`cleaning.detect.ISSUE_COLUMNS`)
plus per-image scores. The benchmark (``bench/bench_photos.py``) calls the same function, so what is
measured is what ships.

Order: duplicate groups → neighbours (copies excluded) → label errors (pruned, re-learnt once)
→ off-topic images and junk groups (:mod:`.outlier`, :mod:`.junk`; each class is referenced by its core,
the members its own neighbourhood agrees with (:func:`.junk.compute_class_core`), so what the label check
flags does not move the off-topic measures; the re-learnt classifier's out-of-sample probabilities give the
off-topic score its ``unclaimed`` term, and junk groups must reach the data set's natural break in
``unfit`` when it has one) → low quality.

Off-topic is not a label error: an image that fits no class (an ``outlier`` row, alone or as a member of
a junk group) gets **no** ``label`` row and no suggested label, even when the label detector would
have moved it (it then says so in the reason: split evidence, the person chooses). An image whose label
is wrong but which fits another class well is a label error and not an outlier. An image the label check
flags without a clear suggestion (below ``SUGGEST_SURE`` in the blend) that scores as off-topic (``z ≥
Z_FLAG``) is off-topic even when it is not lonely (:func:`.outlier.split_offtopic`); so is one the label check leaves
alone that no class claims (:func:`.outlier.unclaimed_offtopic`: under ``CLAIM`` for every class in the blend) when the
head knows its class and sees none of it (:func:`.semantic.misses_own_class`); so is one whose suggested
class the backbone's own ImageNet head knows in this data set but does not see in the image
(:func:`.semantic.contradicted`: the demo's Moon, *fruit* to the embedding and the classifier, a gong to the head).
That head is also a third opinion on the label check's flags (:func:`.semantic.label_opinion`): a flag is dropped
when it clearly sees the given class, and added when it clearly sees the suggested class and none of the given;
and the same opinions hold for off-topic images, alone or in a junk group: one in which it clearly sees the given
class — or any class of yours it knows (:func:`.semantic.sees_a_class`) — is not off-topic, one in which it clearly
sees the suggested class and none of the given is a label error (:func:`join_checks`).

Which features the label check runs on: the embedding, or the backbone's tapped earlier block
(:func:`cleaning.model.backbone.tapped_backbone`) when the scan gives it (:class:`MidLayer`, up to
:data:`MID_MAX` images) and its out-of-sample classifier explains the *given* labels clearly better than the
embedding's (:func:`prefers_mid`: a paired test on the log-probabilities) — a choice made per data set from its own
labels, no ground truth. Photos are
told apart better by the final embedding, handwritten digits by block 5 (``bench/results/photos.md``, twelfth
session). The off-topic and junk checks always use the embedding's: its label scores, joined with them by
:func:`join_checks`, decide what is off-topic; the block's, joined the same way, only which of the rest are label
errors (on 30 real-photo sets, joining the block's made 1–3 more false off-topic flags on 6 of the 7 sets it was
chosen for).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from . import Neighbours, compute_neighbours, issues_frame
from .duplicates import DuplicateGroups, compute_duplicate_groups, find_duplicates
from .junk import K_WIDE, JunkGroups, compute_junk_groups, find_junk
from .label import K_NEIGHBOURS, SUGGEST_SURE, LabelScores, Relearn, compute_label_scores, find_label_issues
from .memo import ScanMemo, table_neighbours
from .outlier import OutlierScores, compute_outlier_scores, find_outliers, split_offtopic, unclaimed_offtopic
from .quality import find_low_quality
from .semantic import MASS_MIN, class_cover, contradicted, label_opinion, misses_own_class, prefers_given, sees_a_class


@dataclass(frozen=True)
class DetectorInputs:
    """One row per readable image (N), labels as ints into ``vocab``."""

    item_ids: Sequence[str]
    paths: Sequence[str]
    labels: np.ndarray  # N ints
    vocab: Sequence[str]
    embeddings: np.ndarray  # N×D, L2-normalised
    pred_probs: np.ndarray  # N×K out-of-sample
    sha256: Sequence[str]
    phash: Sequence[str]
    thumbs: np.ndarray | None  # N×32×32×3 uint8
    stats: pd.DataFrame  # quality statistics, N rows
    width: Sequence[int]
    height: Sequence[int]
    memo: ScanMemo | None = None  # what an earlier scan kept (:mod:`.memo`); None: nothing
    semantic: np.ndarray | None = None  # N×K the backbone head's mass per class name (:mod:`.semantic`); None: off
    mid: MidLayer | None = None  # the tapped block, for the label check (see the module doc); None: embeddings only


@dataclass(frozen=True)
class MidLayer:
    """The backbone's tapped block as the label check's features: rows as :class:`DetectorInputs`."""

    embeddings: np.ndarray  # N×d, L2-normalised
    pred_probs: np.ndarray  # N×K out-of-sample, from heads on ``embeddings``
    relearn: Relearn | None = None  # the re-learning pass on ``embeddings``


#: Up to this many images the label check may run on the tapped block (its neighbour search is exact there);
#: above it, on the embedding alone (the tapped block was not measured at that scale).
MID_MAX = 10_000


#: How many standard errors better the block's fit of the given labels must be (:func:`prefers_mid`).
Z_MID = 2.0


def prefers_mid(labels: np.ndarray, final: np.ndarray, mid: np.ndarray) -> bool:
    """Whether the tapped block's out-of-sample classifier explains the given labels clearly better than the
    embedding's: the mean per-image gain in log-probability of the given label is positive and more than
    :data:`Z_MID` standard errors of that paired difference (a one-sided test at ≈ 2 %).

    Why this test and not accuracy: both layers' heads are fitted on the same noisy labels, so the one whose held-out
    predictions agree with them more is the one that separates the classes better; but a higher accuracy alone is
    noise on small sets (on 400 real digits the two layers tied on one draw of five), and on real photos it picked
    the block on 7 of 30 sets, worse there on average. Measured (``bench/bench_layers.py``): the paired z is
    2.1–4.0 on every 650-digit set and 10–13 at 4,000 digits, at most 2.6 on 30 real-photo sets (above 2 on one).
    """
    return mid_gain_z(labels, final, mid) > Z_MID


def reads_mid(labels: np.ndarray, final: np.ndarray, mid: np.ndarray) -> bool:
    """Whether the label check reads the tapped block: at most :data:`MID_MAX` images and :func:`prefers_mid`. The
    one choice the scan (:func:`run_detectors`) and the review pages' predictions
    (:func:`cleaning.review.analysis.load_or_compute_predictions`) both make."""
    return len(labels) <= MID_MAX and prefers_mid(labels, final, mid)


def mid_gain_z(labels: np.ndarray, final: np.ndarray, mid: np.ndarray) -> float:
    """The mean per-image gain in log-probability of the given label from ``final`` to ``mid`` probabilities, in
    standard errors of that paired difference (+inf for a steady gain, 0 when it cannot be told: fewer than two
    images or probabilities over other classes)."""
    y = np.asarray(labels, np.int64)
    if len(y) < 2 or final.shape != mid.shape:
        return 0.0
    rows = np.arange(len(y))
    gain = np.log(np.maximum(mid[rows, y], 1e-6)) - np.log(np.maximum(final[rows, y], 1e-6))
    se = gain.std(ddof=1) / np.sqrt(len(y))
    if se == 0:
        return float("inf") if gain.mean() > 0 else 0.0
    return float(gain.mean() / se)


@dataclass(frozen=True)
class DetectorResult:
    issues: pd.DataFrame  # ISSUE_COLUMNS
    labels: LabelScores
    outliers: OutlierScores
    junk: JunkGroups
    duplicates: DuplicateGroups
    memo: ScanMemo | None = None  # what the next scan may reuse (tables, kept index above EXACT_MAX, pairs)
    label_layer: str = "embedding"  # what the label check ran on: "embedding" or "tapped block" (:func:`prefers_mid`)


#: Where each step starts in the detectors' time, for the progress callback's fraction (measured at 100,000
#: images on a quiet machine, ``bench/results/scale.md`` §15: near duplicates ≈ 172 of ≈ 203 CPU-s, the label
#: check with its re-learning pass ≈ 16, off-topic and junk ≈ 11).
STEPS = (("near duplicates", 0.0), ("label errors (re-learning without the likely errors)", 0.85),
         ("off-topic images and junk groups", 0.93), ("low quality", 0.98))


def run_detectors(inp: DetectorInputs, relearn: Relearn | None = None,
                  progress: Callable[[str, float], None] | None = None,
                  keep: Callable[[ScanMemo], None] | None = None) -> DetectorResult:
    """All detectors over one data set (see the module doc for the rules that join them).

    ``progress(step, fraction of the detectors' work)`` is called as each step starts (:data:`STEPS`).
    ``keep(memo)``: called with what the next scan may reuse as soon as the duplicate step has it; the result's
    ``memo`` then holds only the neighbour tables (the kept indexes and pair similarities — ≈ 0.25 GB at 100,000
    images — are not carried through the label check's peak).
    """
    def say(i: int) -> None:
        if progress:
            progress(*STEPS[i])

    ids, y, vocab, x = list(inp.item_ids), np.asarray(inp.labels, np.int64), list(inp.vocab), inp.embeddings
    say(0)
    dups = compute_duplicate_groups(x, list(inp.sha256), list(inp.phash), inp.thumbs,
                                    sizes=np.column_stack([inp.width, inp.height]) if len(ids) else None,
                                    memo=inp.memo)
    memo = dups.memo
    if keep is not None and memo is not None:
        keep(memo)
        memo = replace(memo, pairs=None, ann_emb=None, ann_coarse=None)
        dups = replace(dups, memo=memo)

    def neighbours(k: int) -> Neighbours:  # read off the duplicate step's table (exact, or .ann's above EXACT_MAX)
        if memo is not None and memo.emb is not None and memo.row_content is not None:
            return table_neighbours(x, memo.emb, memo.row_content, k, dups.group)
        return compute_neighbours(x, k, dups.group)

    say(1)
    nb = neighbours(K_NEIGHBOURS)
    ls = compute_label_scores(y, inp.pred_probs, nb, relearn=relearn if len(vocab) > 1 else None)
    mid, lsm, layer = inp.mid, None, "embedding"
    say(2)
    wide = neighbours(K_WIDE)
    out = compute_outlier_scores(x, y, groups=dups.group, pred_probs=ls.model_probs, neighbours=wide)
    junk = compute_junk_groups(x, y, out.own, dups.group, neighbours=wide, outlier_z=out.unfit, break_z=out.break_z,
                               lonely=out.lonely)
    if mid is not None and reads_mid(y, inp.pred_probs, mid.pred_probs):
        lsm = compute_label_scores(y, mid.pred_probs, compute_neighbours(mid.embeddings, K_NEIGHBOURS, dups.group),
                                   relearn=mid.relearn if len(vocab) > 1 else None)
        layer = "tapped block"
    say(3)
    low = find_low_quality(ids, inp.stats, list(inp.width), list(inp.height))
    blank = set(low.loc[low["severity"] >= 0.9, "item_id"])
    j = join_checks(ls, out, junk, y, inp.semantic, dups.group)  # the off-topic side: always the embedding's
    jl = join_checks(lsm, out, junk, y, inp.semantic, dups.group) if lsm is not None else j  # the label rows'
    ls, junk, unseen = jl.labels, j.junk, j.unseen
    out = replace(out, flagged=j.offtopic | (out.flagged & (junk.group >= 0)))
    off = j.offtopic | (junk.group >= 0)
    label_ok = ls.flagged & ~off
    lab = find_label_issues(ids, y, vocab, _only(ls, label_ok))
    lab = _add_to_reasons(lab, {ids[i]: f"; the backbone's own ImageNet head sees a *{vocab[ls.suggested[i]]}* in it "
                                        f"({inp.semantic[i, ls.suggested[i]]:.2f}) and no *{vocab[y[i]]}* "
                                        f"({inp.semantic[i, y[i]]:.2f})" for i in np.flatnonzero(jl.claimed & label_ok)})
    junk_rows = find_junk(ids, y, vocab, junk)
    outl = find_outliers(ids, y, vocab, out, j.labels, only=j.offtopic)
    if unseen.any():
        outl = _add_to_reasons(outl, {ids[i]: f" — but the backbone's own ImageNet head does not see a *{vocab[s]}* "
                                              f"in it (mass {inp.semantic[i, s]:.2f}, where {j.cover[s]:.0%} of your "
                                              f"*{vocab[s]}* images reach {MASS_MIN})"
                                      for i, s in zip(np.flatnonzero(unseen), j.labels.suggested[unseen])})
    doubt = j.unclaimed
    if doubt.any():
        outl = _add_to_reasons(outl, {ids[i]: f"; no class claims it (classifier and neighbours give at most "
                                              f"{j.labels.pred_probs[i].max():.2f} to any), and the backbone's own "
                                              f"ImageNet head sees no *{vocab[y[i]]}* in it ({inp.semantic[i, y[i]]:.2f})"
                                      for i in np.flatnonzero(doubt)})
    lab = lab[~lab["item_id"].isin(blank)]
    outl = pd.concat([t for t in (outl, junk_rows) if len(t)], ignore_index=True) if len(outl) or len(junk_rows) \
        else issues_frame()
    outl = outl[~outl["item_id"].isin(blank)]
    labels_ = [vocab[i] for i in y]
    own_support = ls.pred_probs[np.arange(len(y)), y] if len(y) else np.zeros(0)
    dup = find_duplicates(ids, list(inp.paths), labels_, dups, list(inp.sha256), list(inp.width),
                          list(inp.height), support=own_support)
    tables = [t for t in (lab, outl, dup, low) if len(t)]
    issues = pd.concat(tables, ignore_index=True) if tables else issues_frame()
    return DetectorResult(issues, ls, out, junk, dups, memo, layer)


class Joined(NamedTuple):
    """What :func:`join_checks` decides."""

    labels: LabelScores  # the label scores with the head's opinion on the flags
    junk: JunkGroups  # the junk groups without the members the head clearly sees a class of yours in
    offtopic: np.ndarray  # N bool: single off-topic images (outside the junk groups)
    claimed: np.ndarray  # N bool: the head clearly sees the suggested class and none of the given (a label error)
    unseen: np.ndarray  # N bool: off-topic because the head does not see the suggested class (its reason says so)
    cover: np.ndarray | None  # K: per class, the share of its unflagged members the head sees it in
    unclaimed: np.ndarray  # N bool: off-topic only as claimed by no class (:func:`.outlier.unclaimed_offtopic`)


def join_checks(ls: LabelScores, out: OutlierScores, junk: JunkGroups, labels: np.ndarray,
                semantic: np.ndarray | None, copies: np.ndarray | None = None) -> Joined:
    """The rules that join the label check with the off-topic checks (see the module doc), on their results:
    the backbone head's opinion on the flags and on the off-topic images, then the images off-topic though not
    lonely — split evidence, and a suggestion the head does not see."""
    y = np.asarray(labels, dtype=np.int64)
    # who is not a class member when the head's known classes are counted: the label check's flags and the junk
    # groups as found (junk filed into a class would lower its cover), before and after the head's opinion
    aside = junk.group >= 0
    not_members = ls.flagged | aside
    seen, claimed = label_opinion(semantic, y, not_members, ls.suggested)
    prefers = prefers_given(semantic, y, not_members, ls.suggested)  # the label flags only
    ls = replace(ls, flagged=(ls.flagged & ~seen & ~prefers) | claimed)
    not_members = ls.flagged | aside
    a_class = sees_a_class(semantic, y, not_members)  # one of yours, whichever it is filed under: not off-topic
    junk = junk.without(seen | claimed | a_class, y, copies)
    alone = junk.group < 0
    unclear = split_offtopic(out, ls.flagged, ls.pred_probs[np.arange(len(y)), ls.suggested], SUGGEST_SURE)
    unclaimed = (unclaimed_offtopic(out, ls.flagged, ls.pred_probs.max(axis=1))
                 & misses_own_class(semantic, y, not_members))
    cover = class_cover(semantic, y, not_members) if semantic is not None else None
    unseen = contradicted(semantic, ls.flagged, ls.suggested, cover) & alone
    offtopic = (out.flagged | unclear | unclaimed | unseen) & alone & ~seen & ~claimed & ~a_class
    return Joined(ls, junk, offtopic, claimed, unseen, cover, unclaimed & offtopic & ~out.flagged & ~unseen)


def _add_to_reasons(rows: pd.DataFrame, extra: dict[str, str]) -> pd.DataFrame:
    """``rows`` with ``extra[item_id]`` appended to the reason of the rows it names."""
    if extra and len(rows):
        rows = rows.assign(reason=[r + extra.get(iid, "") for iid, r in zip(rows["item_id"], rows["reason"])])
    return rows


def _only(ls: LabelScores, keep: np.ndarray) -> LabelScores:
    """The label scores with only ``keep`` flagged."""
    return replace(ls, flagged=ls.flagged & keep)
