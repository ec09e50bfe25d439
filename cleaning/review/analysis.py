"""The scan: every detector over a workspace, merged into one ranked issue queue (cached).

:func:`find_issues` returns one row per (image, issue) with ``item_id, path, label, issue, severity,
suggested_label, related_path, reason`` (plus ``related_item_id, predicted_label, confidence, group``),
sorted by severity, highest first; :func:`compute_scores` one row per readable image with
``item_id, path, label, predicted_label, label_issue_score, outlier_score``. Both come from one
analysis that is saved in the workspace cache under a key made of its inputs (each image's content,
path, current label and deleted flag), the unusable files and the model, so the CLI and the pages share
it; a relabel or delete recomputes it (the embeddings, the pixel statistics and the probabilities have
their own caches), a "looks fine" decision or an undone change finds it again. A rescan after images
were added embeds and decodes only the new contents, and the out-of-sample probabilities of both passes
(the first, and the label check's re-learning) come from the kept fold heads while the change is small
and no label changed (:mod:`cleaning.model.foldheads`). The detectors run over every image again, but
start from what the previous scan kept (:mod:`cleaning.detect.memo`: the neighbour tables — above 10,000 rows
with the HNSW index they came from, :mod:`cleaning.detect.ann` — and the candidate pairs' pixel similarities, by
content; saved as soon as the duplicate step has them): a rescan searches neighbours and compares pixels only
for the new contents, with the same result as a scan from nothing (above 10,000 rows: up to the index's recall).

Pipeline: embeddings (:mod:`cleaning.model.embed`) → out-of-sample probabilities (:mod:`cleaning.model.oos`) →
pixel statistics and thumbnails (once per content, cached; measured from the embedding's decode when that
read the file at full size, :mod:`cleaning.review.pixels`) → every detector over those arrays
(:func:`cleaning.detect.run.run_detectors`: duplicates, label errors, off-topic images and junk groups,
low quality) → corrupt files from the folder scan. Off-topic is not a label error: an ``outlier`` row
(alone or in a junk group, ``group`` set) has no suggested label and the image gets no ``label`` row;
blank images get no label or outlier row.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.cache import fingerprint, load_arrays, save_arrays
from ..data.hosted import trim_memory
from ..detect import ISSUE_COLUMNS, issues_frame
from ..detect.memo import MEMO_VERSION, ScanMemo
from ..detect.run import DetectorInputs, MidLayer, reads_mid, run_detectors
from .pixels import PixelsFromEmbedding, load_or_compute_pixels

if TYPE_CHECKING:
    from ..data.workspace import Workspace
    from ..model.embed import Embedded
    from ..model.oos import OOS

log = logging.getLogger(__name__)

#: Bump when the detectors change so cached scans are recomputed.
SCAN_VERSION = 7  # 3: split-evidence off-topic rule; key by the analysis inputs; 4: junk chance test, zero-shot check;
#               5: what the zero-shot head clearly sees as its own class is not off-topic; a group holding
#               most of a class is not junk; 6: the label check on the backbone's block 5 when its heads fit
#               the labels clearly better (detect.run.prefers_mid); 7: junk groups against the classes' cores,
#               the head's rules of the fourteenth session (semantic.sees_a_class, prefers_given, the unclaimed
#               rule), a near copy may stand out from its other candidates in content as well as in pixels,
#               a far-apart junk group may fit another class (junk.Z_FAR), junk members are not class members
#               when the head's known classes are counted
QUEUE_COLUMNS = ["item_id", "path", "label", "issue", "severity", "suggested_label", "related_path", "reason",
                 "related_item_id", "predicted_label", "confidence", "group"]
SCORE_COLUMNS = ["item_id", "path", "label", "predicted_label", "label_issue_score", "outlier_score"]
ISSUE_ORDER = {k: i for i, k in enumerate(("corrupt", "label", "outlier", "duplicate", "near_duplicate",
                                           "low_quality"))}
#: progress(what is being done, fraction done in [0, 1]).
Progress = Callable[[str, float], None]


def _say(progress: Progress | None, what: str, frac: float) -> None:
    if progress:
        progress(what, float(min(max(frac, 0.0), 1.0)))


def _analyse(ws: Workspace, progress: Progress | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(issues, scores) over the non-deleted images, computed now."""
    from ..model.embed import load_or_compute_embeddings
    from ..model.oos import encode_labels, make_groups, mid_key, relearn_pred_probs

    df = ws.items_frame(include_deleted=False)
    _say(progress, f"embedding {len(df)} images", 0.0)
    measured = PixelsFromEmbedding()  # pixel statistics from the embedding's own decode where it is full-size
    emb = load_or_compute_embeddings(
        ws, progress=lambda d, n: _say(progress, f"embedding {d}/{n} new images", 0.5 * d / max(n, 1)),
        on_decoded=measured)  # with the tapped block up to TAP_MAX images (the label check's other layer)
    _say(progress, "out-of-sample predictions", 0.5)
    oos, oos_mid = _heads(ws, emb)
    _say(progress, f"out-of-sample predictions {oos.how}", 0.54)
    sub = df.set_index("item_id").loc[emb.item_ids].reset_index()
    stats, thumbs, pix_errors = load_or_compute_pixels(ws, sub, progress, measured)
    # the embedding's pixel rows are in those arrays now: held through the detectors, the 100,000 small thumbnails
    # (and the decode's freed heap) lifted a first scan's peak from 2.9 to 3.5 GB (bench/results/scale.md §15)
    measured.rows.clear()
    gc.collect()
    trim_memory(0.0)
    bad_rows = [{"item_id": iid, "issue": "corrupt", "severity": 1.0, "reason": f"cannot be decoded: {why}"}
                for iid, why in {**emb.errors, **pix_errors}.items()]
    ids, paths = list(sub["item_id"]), list(sub["path"])
    vocab = oos.vocab
    y = encode_labels(oos.labels, vocab) if len(ids) else np.zeros(0, np.int64)
    x = emb.embeddings
    tables = [issues_frame(bad_rows)]
    scores = pd.DataFrame(columns=SCORE_COLUMNS)
    if len(ids):
        fold_groups = make_groups(list(sub["sha256"]), list(sub["phash"]))

        def relearn(labels: np.ndarray) -> np.ndarray:  # kept heads when the pruned set changed little
            return relearn_pred_probs(ws.cache_dir, emb.model_key, x, list(sub["sha256"]), labels, vocab, fold_groups)

        mid = None
        if oos_mid is not None and emb.mid is not None:
            xm = emb.mid

            def relearn_mid(labels: np.ndarray) -> np.ndarray:
                return relearn_pred_probs(ws.cache_dir, mid_key(emb.model_key), xm, list(sub["sha256"]), labels,
                                          vocab, fold_groups)
            mid = MidLayer(xm, oos_mid.pred_probs, relearn_mid)
        slot = fingerprint("detect-memo", MEMO_VERSION, "pixels-v2", emb.model_key)
        memo = ScanMemo.from_arrays(load_arrays(ws.cache_dir, "memo", slot))
        inputs = DetectorInputs(ids, paths, y, vocab, x, oos.pred_probs, list(sub["sha256"]), list(sub["phash"]),
                                thumbs, stats, list(sub["width"]), list(sub["height"]), memo=memo,
                                semantic=_semantic(x, vocab), mid=mid)
        def keep(kept: ScanMemo) -> None:  # the tables, kept indexes and pair similarities the next scan starts from
            save_arrays(ws.cache_dir, "memo", slot, **kept.to_arrays())

        res = run_detectors(inputs, relearn=relearn, keep=keep,
                            progress=lambda step, f: _say(progress, f"looking for {step}", 0.72 + 0.27 * f))
        if res.label_layer != "embedding":
            _say(progress, "label errors read on the backbone's earlier block: its classifier fits your labels "
                           "clearly better than the final embedding's", 0.99)
        ls = res.labels
        tables.append(res.issues)
        labels_ = [vocab[i] for i in y]
        pred = ls.pred_probs.argmax(axis=1)
        scores = pd.DataFrame({"item_id": ids, "path": paths, "label": labels_,
                               "predicted_label": [vocab[i] for i in pred],
                               "label_issue_score": np.round(ls.score, 4),
                               "outlier_score": np.round(res.outliers.score, 4)})
    issues = pd.concat([t for t in tables if len(t)], ignore_index=True) if any(len(t) for t in tables) \
        else issues_frame()
    conf = dict(zip(ids, ls.pred_probs.max(axis=1))) if len(ids) else {}
    issues = _decorate(issues, df, scores, conf)
    corrupt = [{"item_id": "", "path": b.path, "label": b.path.split("/", 1)[0] if "/" in b.path else "",
                "issue": "corrupt", "severity": 1.0, "suggested_label": "", "related_path": "",
                "reason": b.reason, "related_item_id": "", "predicted_label": "", "confidence": np.nan, "group": ""}
               for b in ws.bad_files() if b.kind != "skipped"]
    if corrupt:
        issues = pd.concat([issues, pd.DataFrame(corrupt, columns=QUEUE_COLUMNS)], ignore_index=True)
    return rank(issues), scores.reset_index(drop=True)


def load_or_compute_predictions(ws: Workspace) -> OOS:
    """The out-of-sample predictions of the layer the scan's label check reads (:func:`cleaning.detect.run.reads_mid`):
    the embedding's heads, or the tapped block's when they explain the current labels clearly better — what the
    confusion matrix and the map's prediction colour show, so they agree with the Issues page's label rows."""
    from ..model.embed import load_or_compute_embeddings
    from ..model.oos import encode_labels

    oos, mid = _heads(ws, load_or_compute_embeddings(ws))
    if mid is None:
        return oos
    return mid if reads_mid(encode_labels(oos.labels, oos.vocab), oos.pred_probs, mid.pred_probs) else oos


def _heads(ws: Workspace, emb: Embedded) -> tuple[OOS, OOS | None]:
    """Out-of-sample predictions on the embeddings and, when ``emb`` has the tapped block's rows and there is
    more than one class, on the block (both cached)."""
    from ..model.oos import load_or_compute_oos

    oos = load_or_compute_oos(ws, emb=emb)
    return oos, load_or_compute_oos(ws, emb=emb, mid=True) if emb.mid is not None and len(oos.vocab) > 1 else None


def _semantic(x: np.ndarray, vocab: list[str]) -> np.ndarray | None:
    """The backbone head's mass per class name (:mod:`cleaning.model.semantic`), or None when it cannot be had."""
    from ..model.backbone import DEFAULT_ARCH, BackboneUnavailable
    from ..model.semantic import class_mass

    try:
        return class_mass(x, vocab, DEFAULT_ARCH)
    except (BackboneUnavailable, OSError, KeyError) as e:
        log.warning("zero-shot check off: %s", e)
        return None


def _decorate(issues: pd.DataFrame, items: pd.DataFrame, scores: pd.DataFrame,
              conf: dict[str, float]) -> pd.DataFrame:
    """Add path, label, related_path, predicted_label and its probability (confidence) to detector rows."""
    path = dict(zip(items["item_id"], items["path"]))
    label = dict(zip(items["item_id"], items["label"]))
    pred = dict(zip(scores["item_id"], scores["predicted_label"]))
    out = issues.copy()
    out["path"] = out["item_id"].map(path).fillna("")
    out["label"] = out["item_id"].map(label).fillna("")
    out["related_path"] = out["related_item_id"].map(path).fillna("")
    out["predicted_label"] = out["item_id"].map(pred).fillna("")
    out["confidence"] = out["item_id"].map(conf)
    return out[QUEUE_COLUMNS]


def rank(issues: pd.DataFrame) -> pd.DataFrame:
    """Sort by severity (highest first), then issue kind, then path; fresh index."""
    if not len(issues):
        return pd.DataFrame(columns=QUEUE_COLUMNS)
    key = issues.assign(_k=issues["issue"].map(ISSUE_ORDER))
    return key.sort_values(["severity", "_k", "path"], ascending=[False, True, True],
                           kind="stable").drop(columns="_k").reset_index(drop=True)


def scan_key(ws: Workspace) -> str:
    """What the analysis depends on: each image's content, path, current label and whether it is deleted,
    the unusable files, the model and the detector version.

    Not the decision history itself: a "looks fine" decision, or a relabel undone again, leaves the
    analysis' inputs as they were and finds the cached analysis (at 100,000 images a recomputation of
    every detector costs minutes, and a restarted app would otherwise redo it after any decision)."""
    from ..model.embed import embedding_model_key

    df = ws.items_frame()
    return fingerprint("scan", SCAN_VERSION, embedding_model_key(),
                       list(zip(df["item_id"], df["sha256"], df["path"], df["label"], df["deleted"])),
                       [(b.path, b.reason, b.kind) for b in ws.bad_files()])


def _load_or_analyse(ws: Workspace, progress: Progress | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The analysis of one snapshot of the data set (one store version), from the cache or computed.

    Runs under the shared workspace lock (no apply moves a file while it is read) and pinned to one
    snapshot: decisions recorded meanwhile are kept and make the result stale (see :func:`is_stale`),
    never inconsistent. Both frames carry ``attrs["data_version"]``.
    """
    with ws.lock.hold("scan", exclusive=False), ws.pinned() as snap:
        key = scan_key(ws)
        cached = load_arrays(ws.cache_dir, "scan", key)
        if cached is not None:
            issues = pd.DataFrame({c: cached[f"i_{c}"] for c in QUEUE_COLUMNS})
            scores = pd.DataFrame({c: cached[f"s_{c}"] for c in SCORE_COLUMNS})
            return _label(_types(issues, scores), snap.version)
        issues, scores = _analyse(ws, progress)
        arrays = {f"i_{c}": _array(issues[c]) for c in QUEUE_COLUMNS}
        arrays.update({f"s_{c}": _array(scores[c]) for c in SCORE_COLUMNS})
        save_arrays(ws.cache_dir, "scan", key, **arrays)
    _say(progress, "done", 1.0)
    return _label(_types(issues, scores), snap.version)


def _label(frames: tuple[pd.DataFrame, pd.DataFrame], version: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    for f in frames:
        f.attrs["data_version"] = version
    return frames


def is_stale(ws: Workspace, result: pd.DataFrame) -> bool:
    """True when decisions were recorded (or undone) since the snapshot ``result`` was computed on."""
    return str(result.attrs.get("data_version", "")) != ws.store.version_key()


def _array(col: pd.Series) -> np.ndarray:
    if col.name in ("severity", "confidence", "label_issue_score", "outlier_score"):
        return col.astype(float).to_numpy()
    return np.array([str(v) for v in col], dtype=str)


def _types(issues: pd.DataFrame, scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    for c in ("severity", "confidence"):
        issues[c] = issues[c].astype(float)
    for c in ("label_issue_score", "outlier_score"):
        scores[c] = scores[c].astype(float)
    for c in set(QUEUE_COLUMNS) - {"severity", "confidence"}:
        issues[c] = issues[c].astype(str)
    return issues, scores


def _with_model_opinion(ws: Workspace, issues: pd.DataFrame) -> pd.DataFrame:
    """Add the user's own model's confident disagreements (``predict --model``) as ``label`` rows for images
    the scan did not already flag as label errors (not cached: loading or dropping the model shows at once)."""
    from ..model.predict import model_opinion_rows

    items = ws.items_frame()
    live = items[~items["deleted"]]
    label = dict(zip(live["item_id"], live["label"]))
    rows = model_opinion_rows(ws, label)
    flagged = set(issues[issues["issue"] == "label"]["item_id"]) if len(issues) else set()
    rows = [r for r in rows if r["item_id"] not in flagged]
    if not rows:
        return issues
    path = dict(zip(live["item_id"], live["path"]))
    extra = pd.DataFrame([{**r, "path": path[r["item_id"]], "label": label[r["item_id"]],
                           "related_path": "", "predicted_label": r["suggested_label"],
                           "confidence": 2 * r["severity"]} for r in rows], columns=QUEUE_COLUMNS)
    return rank(pd.concat([issues, extra], ignore_index=True))


def find_issues(ws: Workspace, progress: Progress | None = None, include_reviewed: bool = True) -> pd.DataFrame:
    """The ranked issue queue of the workspace's non-deleted images (computed, or from the cache).

    Args:
        progress: called with (what, fraction) while computing.
        include_reviewed: False leaves out images marked fine (``kept``).
    Raises:
        CleaningError: from the model side (backbone unavailable, ...).
    """
    issues, _ = _load_or_analyse(ws, progress)
    issues = _with_model_opinion(ws, issues)
    if not include_reviewed and len(issues):
        kept = set(ws.items_frame().query("kept")["item_id"])
        issues = issues[~issues["item_id"].isin(kept)].reset_index(drop=True)
    return issues


def load_or_find_issues(ws: Workspace, progress: Progress | None = None) -> pd.DataFrame:
    """What the pages show: :func:`find_issues` without deleted images and images marked fine."""
    return find_issues(ws, progress, include_reviewed=False)


def compute_scores(ws: Workspace, progress: Progress | None = None) -> pd.DataFrame:
    """Per readable, non-deleted image: :data:`SCORE_COLUMNS` (scores in [0, 1], higher = more suspicious)."""
    return _load_or_analyse(ws, progress)[1]


__all__ = ["ISSUE_COLUMNS", "QUEUE_COLUMNS", "SCORE_COLUMNS", "compute_scores", "find_issues", "is_stale",
           "load_or_find_issues", "load_or_compute_pixels", "rank", "scan_key"]
