"""Iterating on the label-error rule (issue 9): every benchmark set, the expensive parts cached.

    python bench/label_driver.py [--sets photos,d650,d4000] [--seeds 1,2,3] [--detail] [--retrain]

The out-of-sample heads (first pass and the re-learning pass) and the off-topic / junk / duplicate
detectors do not depend on the *final* flagging rule of :mod:`cleaning.detect.label` (only on its
prune step), so they are computed once per set through :func:`cleaning.detect.run.run_detectors` and cached
under ``/tmp/label_cache`` (``$LABEL_CACHE``; delete it after a change to the heads or the prune step).
Each run then re-applies the current :func:`cleaning.detect.label.compute_label_scores` to the cached
evidence (the re-learnt probabilities replayed: no head is fitted) and the rules of ``run.py`` that join it with the off-topic check (split evidence, junk, blank
images), and prints label precision / recall / F1 / suggestion right per set; ``--detail`` lists the false
flags and misses; ``--retrain`` adds the acting-on-the-flags measure (drop every flagged file, product head).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import realsets  # noqa: E402
from bench_photos import embed, pixels  # noqa: E402
from bench_photos_run import set_inputs  # noqa: E402

CACHE = Path(os.environ.get("LABEL_CACHE", "/tmp/label_cache"))


def evidence(s) -> dict:
    """The cached per-set evidence: first-pass and re-learnt probabilities, neighbours, off-topic results."""
    import cleaning.detect.run as run
    from cleaning.model.backbone import DEFAULT_ARCH
    from cleaning.model.oos import compute_oos_pred_probs
    from cleaning.model.semantic import class_mass

    key = f"{s['set'].iloc[0]}-{int(s['seed'].iloc[0])}"
    CACHE.mkdir(parents=True, exist_ok=True)
    f = CACHE / f"{key}.pkl"
    if f.exists():
        return pickle.loads(f.read_bytes())
    paths, x, sha, (stats, thumbs, phash, w, h), vocab, y, fg = set_inputs(s, embed, pixels)
    probs = compute_oos_pred_probs(x, y, vocab, groups=fg)
    seen: dict = {}

    def relearn(lab: np.ndarray) -> np.ndarray:
        seen["pruned"] = lab.copy()
        seen["model2"] = compute_oos_pred_probs(x, lab, vocab, groups=fg)
        return seen["model2"]
    orig, orig_split = run.compute_label_scores, run.split_offtopic
    nbs: list = []

    def grab(y, probs, nb, *a, **k):  # the label check's neighbours (an exact table or compute_neighbours)
        nbs.append(nb)
        return orig(y, probs, nb, *a, **k)

    def grab_split(out, *a, **k):
        seen["out"] = out  # the off-topic scores before the split-evidence rule
        return orig_split(out, *a, **k)
    orig_junk = run.compute_junk_groups

    def grab_junk(*a, **k):
        seen["junk"] = orig_junk(*a, **k)  # the junk groups before the head's opinion on their members
        return seen["junk"]
    run.compute_label_scores, run.split_offtopic, run.compute_junk_groups = grab, grab_split, grab_junk
    try:
        ids = [str(i) for i in range(len(y))]
        res = run.run_detectors(run.DetectorInputs(ids, paths, y, vocab, x, probs, sha, phash, thumbs, stats, w, h,
                                                   semantic=class_mass(x, vocab, DEFAULT_ARCH)),
                                relearn=relearn)
    finally:
        run.compute_label_scores, run.split_offtopic, run.compute_junk_groups = orig, orig_split, orig_junk
    iss = res.issues
    out0 = seen["out"]
    ev = {"key": key, "x": x, "y": y, "vocab": vocab, "probs": probs, "model2": seen.get("model2", probs),
          "pruned": seen.get("pruned"), "nb": nbs[0], "out": out0, "junk": seen["junk"],
          "copies": res.duplicates.group,
          "old_flagged": res.labels.flagged, "issues": iss, "kind": s["kind"].to_numpy(),
          "true": s["true"].to_numpy(), "paths": paths, "given": s["given"].to_numpy()}
    f.write_bytes(pickle.dumps(ev))
    return ev


def apply_rule(ev: dict, probs: np.ndarray | None = None, nb=None, relearn=None):  # noqa: ANN001
    """Today's label module on the cached evidence, joined with the off-topic results by the scan's own rules
    (:func:`cleaning.detect.run.join_checks`). By default no head is fitted (the re-learnt probabilities are
    replayed); ``probs``, ``nb`` and ``relearn`` run the label check on other evidence (``bench_layers.py``)."""
    from cleaning.detect.label import compute_label_scores
    from cleaning.detect.run import join_checks
    from cleaning.model.backbone import DEFAULT_ARCH
    from cleaning.model.semantic import class_mass

    def replay(lab: np.ndarray) -> np.ndarray:
        if ev["pruned"] is not None and not np.array_equal(lab, ev["pruned"]):
            raise RuntimeError("the prune step changed: delete the cache")
        return ev["model2"]
    if "junk" not in ev:
        raise RuntimeError(f"{CACHE} was written by an older driver: delete it")
    mass = class_mass(ev["x"], ev["vocab"], DEFAULT_ARCH)
    ls = compute_label_scores(ev["y"], ev["probs"], ev["nb"], relearn=replay)
    j = join_checks(ls, ev["out"], ev["junk"], ev["y"], mass, ev.get("copies"))
    if probs is not None:  # as the scan: the embedding's label scores decide what is off-topic, these the label rows
        lo = compute_label_scores(ev["y"], probs, ev["nb"] if nb is None else nb, relearn=relearn or replay)
        jl = join_checks(lo, ev["out"], ev["junk"], ev["y"], mass, ev.get("copies"))
    else:
        jl = j
    iss = ev["issues"]
    blank = np.zeros(len(ev["y"]), bool)
    low = iss[(iss["issue"] == "low_quality") & (iss["severity"] >= 0.9)]
    blank[[int(i) for i in low["item_id"]]] = True
    off = j.offtopic | (j.junk.group >= 0)
    return jl.labels, jl.labels.flagged & ~off & ~blank, off


def score(ev: dict, detail: bool, apply=None) -> dict:  # noqa: ANN001 — apply: another rule, as apply_rule
    ls, label, off = (apply or apply_rule)(ev)
    kind, y, vocab = ev["kind"], ev["y"], ev["vocab"]
    wrong = kind == "wrong_label"
    tp = int((label & wrong).sum())
    p, r = tp / max(int(label.sum()), 1), tp / max(int(wrong.sum()), 1)
    sugg_right = [vocab[ls.suggested[i]] == ev["true"][i] for i in np.flatnonzero(label & wrong)]
    res = {"key": ev["key"], "P": p, "R": r, "F1": 2 * p * r / max(p + r, 1e-12), "flag": int(label.sum()),
           "right": float(np.mean(sugg_right)) if sugg_right else float("nan"), "label": label, "off": off, "ls": ls}
    iss = ev["issues"]
    was = np.zeros(len(y), bool)
    was[[int(i) for i in iss.loc[iss["issue"] == "label", "item_id"]]] = True
    res["moved"] = f"+{int((label & ~was).sum())}/-{int((was & ~label).sum())}"  # against the cached scan's rows
    if detail:
        for tag, m in (("FALSE", label & ~wrong), ("MISS", wrong & ~label & ~off)):
            for i in np.flatnonzero(m):
                sg = ls.suggested[i]
                print(f"   {tag:5s} {kind[i]:11s} {Path(ev['paths'][i]).name[:26]:26s} {vocab[y[i]]:>9s}->{vocab[sg]:9s} "
                      f"true {ev['true'][i] or '-':9s} score {ls.score[i]:.2f} sugg {ls.pred_probs[i, sg]:.2f} "
                      f"model {ls.model_probs[i, sg]:.2f}/{ls.model_probs[i, y[i]]:.2f} knn {ls.knn_probs[i, sg]:.2f}/"
                      f"{ls.knn_probs[i, y[i]]:.2f} flag {int(ls.flagged[i])}")
    return res


def retrain(ev: dict, label: np.ndarray, held) -> dict:
    """Drop every flagged file (label rows from ``label``, every other row as the scan wrote it); product head."""
    from cleaning.model.oos import fit_linear_probe

    iss = ev["issues"]
    other = np.zeros(len(ev["y"]), bool)
    other[[int(i) for i in iss.loc[iss["issue"] != "label", "item_id"]]] = True
    x, y, vocab, kind = ev["x"], ev["y"], ev["vocab"], ev["kind"]
    xe, _ = embed(list(held["path"]))
    ye = np.array([vocab.index(v) for v in held["label"]])

    def acc(m: np.ndarray) -> float:
        return float((fit_linear_probe(x[m], y[m], len(vocab)).logits(xe).argmax(axis=1) == ye).mean())
    noisy, oracle, drop = acc(np.ones(len(y), bool)), acc(kind == "clean"), acc(~(label | other))
    return {"noisy": noisy, "oracle": oracle, "drop": drop, "rec": (drop - noisy) / (oracle - noisy)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="photos,d650,d4000")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--detail", action="store_true")
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--held", type=int, default=100)
    a = ap.parse_args()
    sets = realsets.chosen_sets(realsets.base_images(), a.sets, a.seeds, held_out=a.held)
    rs = []
    for s, held in sets:
        ev = evidence(s)
        r = score(ev, a.detail)
        line = (f"{r['key']:22s} P {r['P']:.2f} R {r['R']:.2f} F1 {r['F1']:.3f} right {r['right']:.2f} "
                f"flag {r['flag']} vs cached {r['moved']}")
        if a.retrain and held is not None:
            r["rt"] = retrain(ev, r["label"], held)
            line += f" | noisy {r['rt']['noisy']:.3f} oracle {r['rt']['oracle']:.3f} drop {r['rt']['drop']:.3f} " \
                    f"rec {r['rt']['rec']:.0%}"
        print(line, flush=True)
        rs.append(r)
    for prefix in ("photos", "animals", "digits-650", "digits-4000"):
        g = [r for r in rs if r["key"].startswith(prefix)]
        if g:
            m = {k: np.mean([r[k] for r in g]) for k in ("P", "R", "F1", "right")}
            extra = ""
            if g[0].get("rt"):
                extra = f" rec {np.mean([r['rt']['rec'] for r in g]):.0%} " \
                        f"(pooled {np.sum([r['rt']['drop'] - r['rt']['noisy'] for r in g]) / np.sum([r['rt']['oracle'] - r['rt']['noisy'] for r in g]):.0%})"
            print(f"== {prefix}: P {m['P']:.3f} R {m['R']:.3f} F1 {m['F1']:.3f} right {m['right']:.3f} "
                  f"(F1 min {min(r['F1'] for r in g):.3f}){extra}")


if __name__ == "__main__":
    main()
