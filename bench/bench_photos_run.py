"""Scoring for ``bench_photos.py``: the product's pipeline and the peers on one planted set, and the report."""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


def _prf(flag: np.ndarray, truth: np.ndarray) -> dict:
    tp = int((flag & truth).sum())
    p, r = tp / max(int(flag.sum()), 1), tp / max(int(truth.sum()), 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12), "flagged": int(flag.sum()),
            "planted": int(truth.sum())}


def _pairs(groups: np.ndarray) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for gid in np.unique(groups):
        m = np.flatnonzero(groups == gid)
        out |= set(itertools.combinations(m.tolist(), 2))
    return out


def _pair_score(found: set, truth: set) -> dict:
    tp = len(found & truth)
    return {"precision": tp / max(len(found), 1), "recall": tp / max(len(truth), 1), "found": len(found)}


@dataclass
class Detected:
    """The product's pipeline on one planted set (item ids are row numbers as strings)."""

    res: object  # cleaning.detect.run.DetectorResult
    x: np.ndarray
    y: np.ndarray
    vocab: list[str]
    ids: list[str]
    probs: np.ndarray  # the first out-of-sample probabilities (what the peers get)
    cpu_s: float  # heads + detectors


_LAST: dict[tuple, Detected] = {}


def set_inputs(s: pd.DataFrame, embed: Callable, pixels: Callable) -> tuple:
    """What the scan's detectors start from for set ``s``: (paths, embeddings, sha256s, (quality stats, thumbnails,
    pHashes, widths, heights), vocab, given labels as ints, copy groups for the folds)."""
    from cleaning.model.oos import make_groups

    paths = list(s["path"])
    x, sha = embed(paths)
    px = pixels(paths)
    vocab = sorted(set(s["given"]))
    y = np.array([vocab.index(v) for v in s["given"]])
    return paths, x, sha, px, vocab, y, make_groups(sha, px[2])


def detect_set(s: pd.DataFrame, embed: Callable, pixels: Callable, mid: Callable | None = None) -> Detected:
    """Embeddings, pixel statistics, out-of-sample heads and every detector on ``s``, as the scan runs them.
    ``mid(paths)``: the backbone's tapped-block rows, which the scan gives the label check (its own heads and
    re-learning pass: :class:`cleaning.detect.run.MidLayer`); None: the embedding alone.
    The last set's result is kept, so scoring a set and retraining on it run the detectors once."""
    from cleaning.detect.run import DetectorInputs, MidLayer, run_detectors
    from cleaning.model.backbone import DEFAULT_ARCH
    from cleaning.model.oos import compute_oos_pred_probs
    from cleaning.model.semantic import class_mass

    key = (s["set"].iloc[0], int(s["seed"].iloc[0]), len(s), tuple(s["path"]), mid is not None)
    if key in _LAST:
        return _LAST[key]
    paths, x, sha, (stats, thumbs, phash, w, h), vocab, y, groups = set_inputs(s, embed, pixels)
    t0 = time.process_time()
    probs = compute_oos_pred_probs(x, y, vocab, groups=groups)
    ids = [str(i) for i in range(len(y))]
    layer = None
    if mid is not None:
        xm = mid(paths)
        layer = MidLayer(xm, compute_oos_pred_probs(xm, y, vocab, groups=groups),
                         relearn=lambda lab: compute_oos_pred_probs(xm, lab, vocab, groups=groups))
    res = run_detectors(DetectorInputs(ids, paths, y, vocab, x, probs, sha, phash, thumbs, stats, w, h,
                                       semantic=class_mass(x, vocab, DEFAULT_ARCH), mid=layer),
                        relearn=lambda lab: compute_oos_pred_probs(x, lab, vocab, groups=groups))
    _LAST.clear()
    _LAST[key] = Detected(res, x, y, vocab, ids, probs, time.process_time() - t0)
    return _LAST[key]


def score_set(s: pd.DataFrame, embed: Callable, pixels: Callable, peers: bool = True,
              mid: Callable | None = None) -> dict:
    """Run the product's detectors on one planted set and score every issue kind (and the peers)."""
    d = detect_set(s, embed, pixels, mid)
    res, x, y, ids, probs, cpu = d.res, d.x, d.y, d.ids, d.probs, d.cpu_s
    kind = s["kind"].to_numpy()
    iss = res.issues
    pos = {i: int(i) for i in ids}
    def flagged(k: str) -> np.ndarray:
        f = np.zeros(len(y), dtype=bool)
        f[[pos[i] for i in iss.loc[iss["issue"] == k, "item_id"]]] = True
        return f
    f_out, f_lab = flagged("outlier"), flagged("label")
    junk, single = kind == "junk_cluster", kind == "single"
    offt = junk | single
    wrong = kind == "wrong_label"
    sugg = dict(zip(iss.loc[iss["issue"] == "label", "item_id"], iss.loc[iss["issue"] == "label", "suggested_label"]))
    right = [sugg[str(i)] == s["true"].iloc[i] for i in np.flatnonzero(wrong & f_lab)]
    out_sugg = iss.loc[iss["issue"] == "outlier", "suggested_label"].astype(str).str.len().gt(0).sum()
    copy_truth = {tuple(sorted((int(r.copy_of), i))) for i, r in enumerate(s.itertuples()) if r.copy_of >= 0}
    r: dict = {
        "set": s["set"].iloc[0], "seed": int(s["seed"].iloc[0]), "n": len(y), "cpu_s": cpu,
        "label_layer": res.label_layer,
        "offtopic": _prf(f_out, offt),
        "junk": {"planted": int(junk.sum()), "as_outlier": float((f_out[junk]).mean()) if junk.any() else None,
                 "only_label": float((f_lab[junk] & ~f_out[junk]).mean()) if junk.any() else None,
                 "missed": float((~f_lab[junk] & ~f_out[junk]).mean()) if junk.any() else None,
                 "in_group": float((res.junk.group[junk] >= 0).mean()) if junk.any() else None},
        "single": {"planted": int(single.sum()), "found": int(f_out[single].sum())},
        "label": {**_prf(f_lab, wrong), "suggestion_right": float(np.mean(right)) if right else None},
        "label_on_offtopic": int((f_lab & offt).sum()), "outlier_rows_with_suggestion": int(out_sugg),
        "groups": [{"size": g["size"], "junk_members": int(junk[res.junk.group == n].sum())}
                   for n, g in enumerate(res.junk.info)],
        "near_dup": _pair_score(_pairs(res.duplicates.group), copy_truth),
    }
    if peers:
        r["peers"] = _peers(s, x, y, probs, offt, wrong, copy_truth)
    return r


def _peers(s: pd.DataFrame, x: np.ndarray, y: np.ndarray, probs: np.ndarray, offt: np.ndarray, wrong: np.ndarray,
           copy_truth: set) -> dict:
    """cleanlab Datalab / OutOfDistribution on the same embeddings and probabilities; CleanVision on the files."""
    from cleanlab import Datalab
    from cleanlab.outlier import OutOfDistribution
    from sklearn.metrics import roc_auc_score

    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab = Datalab(data={"label": y}, label_name="label", verbosity=0)
        lab.find_issues(features=x, pred_probs=probs, issue_types={"label": {}, "outlier": {}, "near_duplicate": {}})
        di = lab.get_issues()
        out["datalab_label"] = _prf(di["is_label_issue"].to_numpy(), wrong)
        out["datalab_outlier"] = _prf(di["is_outlier_issue"].to_numpy(), offt)
        junk = (s["kind"] == "junk_cluster").to_numpy()
        out["datalab_junk_as_outlier"] = float(di["is_outlier_issue"].to_numpy()[junk].mean()) if junk.any() else None
        out["datalab_junk_as_label"] = float(di["is_label_issue"].to_numpy()[junk].mean()) if junk.any() else None
        nd = lab.get_info("near_duplicate")["near_duplicate_sets"]
        found = {tuple(sorted((i, int(j)))) for i, js in enumerate(nd) for j in js}
        out["datalab_near_dup"] = _pair_score(found, copy_truth)
        ood = OutOfDistribution().fit_score(features=x)
        out["ood_auroc"] = float(roc_auc_score(offt, -ood))
    out["cleanvision_dup"] = _cleanvision(list(s["path"]), copy_truth)
    return out


def _cleanvision(paths: list[str], truth: set) -> dict | None:
    try:
        from cleanvision import Imagelab
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab = Imagelab(filepaths=paths)
        lab.find_issues({"exact_duplicates": {}, "near_duplicates": {}}, verbose=False)
    where = {p: i for i, p in enumerate(paths)}
    found: set = set()
    for kind in ("exact_duplicates", "near_duplicates"):
        for grp in lab.info[kind]["sets"]:
            found |= set(itertools.combinations(sorted(where[p] for p in grp), 2))
    return _pair_score(found, truth)


def run_all(sets: list[pd.DataFrame], digit: list, embed: Callable, pixels: Callable,
            mid: Callable | None = None, animals: list[pd.DataFrame] | None = None) -> dict:
    res: dict = {"photos": [], "animals": [], "digits": [], "retrain": []}
    for s in sets:
        res["photos"].append(score_set(s, embed, pixels, mid=mid))
        _say(res["photos"][-1])
    for s in animals or []:  # the held-out class composition: ours only
        res["animals"].append(score_set(s, embed, pixels, peers=False, mid=mid))
        _say(res["animals"][-1])
    for s, held in digit:
        res["digits"].append(score_set(s, embed, pixels, peers=len(s) < 1000, mid=mid))
        _say(res["digits"][-1])
        res["retrain"].append(retrain(s, held, embed, pixels, mid))
        print("retrain", res["retrain"][-1], flush=True)
    return res


def _say(r: dict) -> None:
    print(f"{r['set']} seed {r['seed']}: off-topic P {r['offtopic']['precision']:.2f} R {r['offtopic']['recall']:.2f}; "
          f"junk as outlier {r['junk']['as_outlier']}; singles {r['single']['found']}/{r['single']['planted']}; "
          f"label P {r['label']['precision']:.2f} R {r['label']['recall']:.2f}; near-dup P "
          f"{r['near_dup']['precision']:.2f} R {r['near_dup']['recall']:.2f}; label check on the "
          f"{r.get('label_layer', 'embedding')}; {r['cpu_s']:.0f} s", flush=True)


#: The heads the retraining test fits: "probe" is the product's classifier head
#: (:func:`cleaning.model.oos.fit_linear_probe`: standardise with each feature's spread floored at a tenth
#: of the median spread, then logistic regression); "plain" is scikit-learn's StandardScaler + the same
#: logistic regression (the first sessions' head). The plain head has a flaw that distorts the test:
#: embedding features on which digits barely vary are blown up by the scaler unless off-topic photos in
#: the training set widen them, so *removing the planted off-topic photos alone* costs it 1–3 points on
#: 650 digits (its "oracle" is then below "drop the wrong labels only"). The probe's floor is there for
#: exactly this; the plain head's numbers stay in the report for comparison.
HEADS = ("probe", "plain")


def _head_accuracy(head: str, x: np.ndarray, y: np.ndarray, xe: np.ndarray, ye: np.ndarray, k: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from cleaning.model.oos import DEFAULT_C, fit_linear_probe

    if head == "probe":
        return float((fit_linear_probe(x, y, k).logits(xe).argmax(axis=1) == ye).mean())
    with threadpool_limits(1):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=DEFAULT_C, max_iter=300))
        return float(clf.fit(x, y).score(xe, ye))


def acting_on_flags(issues: pd.DataFrame, y: np.ndarray, vocab: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{variant: (rows kept, their labels)} for the two ways of acting on the scan's issue table:

    * ``drop`` — drop every file that has an issue row;
    * ``relabel`` — relabel every ``label`` row to its suggested class, drop every file with another row.

    Copies act as the product's autofix does: the scan writes a row only for the copies that should go
    (``related_item_id`` is the one kept), so one copy of each group stays in both variants.
    """
    n = len(y)
    flagged = np.zeros(n, dtype=bool)
    flagged[[int(i) for i in issues["item_id"]]] = True
    lab = issues[(issues["issue"] == "label") & (issues["suggested_label"].astype(str) != "")]
    other = np.zeros(n, dtype=bool)
    other[[int(i) for i in issues.loc[issues["issue"] != "label", "item_id"]]] = True
    y2 = y.copy()
    y2[[int(i) for i in lab["item_id"]]] = [vocab.index(v) for v in lab["suggested_label"]]
    return {"drop": (~flagged, y), "relabel": (~other, y2)}


def retrain(s: pd.DataFrame, held: pd.DataFrame, embed: Callable, pixels: Callable,
            mid: Callable | None = None) -> dict:
    """Acting on the flags: a logistic head trained on the noisy set, on the oracle set, after dropping
    every flagged file, and after relabelling label errors to the suggestion and dropping the rest
    (:func:`acting_on_flags`); scored on held-out clean digits, for each of :data:`HEADS`.

    The oracle is the set without any of the planted noise: no wrong labels, no off-topic images and no
    planted copies (the issue names all three as the noise; the product removes the extra copies, so an
    oracle that kept them would count a correct fix as a loss: near copies are augmented images worth
    ~0.3 points to a head at 650). The older oracle with the copies is kept as ``oracle_with_copies``."""
    d = detect_set(s, embed, pixels, mid)
    res, x, y, vocab = d.res, d.x, d.y, d.vocab
    xe, _ = embed(list(held["path"]))
    ye = np.array([vocab.index(v) for v in held["label"]])
    kind = s["kind"].to_numpy()
    clean = np.isin(kind, ["clean", "exact_copy", "near_copy"])
    variants = acting_on_flags(res.issues, y, vocab)
    dup_row = np.zeros(len(y), dtype=bool)
    dup_row[[int(i) for i in res.issues.loc[res.issues["issue"].isin(["duplicate", "near_duplicate"]), "item_id"]]] = True
    keep_drop = variants["drop"][0]
    relabelled = variants["relabel"][1] != y
    true = np.array([vocab.index(t) if t in vocab else -1 for t in s["true"]])
    out: dict = {"set": s["set"].iloc[0], "seed": int(s["seed"].iloc[0]), "dropped": int((~keep_drop).sum()),
                 "dropped_clean": int((~keep_drop & clean).sum()),
                 "dropped_as_copy": int(dup_row.sum()),  # one side of a copy pair (the scan keeps the other)
                 "clean_false_flags": int((~keep_drop & clean & ~dup_row).sum()),  # clean files with another row
                 "relabelled": int(relabelled.sum()), "relabelled_right": int((relabelled & (variants["relabel"][1] == true)).sum()),
                 "heads": {}}
    for head in HEADS:
        def acc(mask: np.ndarray, lab: np.ndarray = y, head: str = head) -> float:
            return _head_accuracy(head, x[mask], lab[mask], xe, ye, len(vocab))
        noisy, oracle, with_copies = acc(np.ones(len(y), bool)), acc(kind == "clean"), acc(clean)
        h = {"noisy": noisy, "oracle": oracle, "oracle_with_copies": with_copies,
             **{v: acc(m, lab) for v, (m, lab) in variants.items()}}
        for v in variants:
            h[f"recovered_{v}"] = (h[v] - noisy) / (oracle - noisy) if oracle > noisy else float("nan")
            h[f"recovered_{v}_vs_copies"] = (h[v] - noisy) / (with_copies - noisy) if with_copies > noisy else float("nan")
        out["heads"][head] = h
    return out


def report(res: dict) -> str:  # filled in below
    from bench_photos_report import report as rep

    return rep(res)
