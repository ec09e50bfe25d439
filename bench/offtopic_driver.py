"""Iterating on the off-topic rule (issue 9): every benchmark set through the pipeline, label scores cached.

    python bench/offtopic_driver.py [--sets photos,animals,d650,d4000 | --classes bird,mammal,flower] [--seeds 1,2,3] [--detail]

The label detector (the slow part: three re-learning passes) does not depend on the off-topic rule, so
its scores are cached per set under ``/tmp/offtopic_cache`` (or ``$OFFTOPIC_CACHE``; delete the folder after a
label-detector change). The label check runs as the scan runs it: on the embedding, then on the tapped block when
its heads predict the given labels more often (``--no-mid``: the embedding alone; its own cache folder). Prints off-topic precision / recall, junk shares, singles found; ``--detail`` prints the scores
of missed planted images and of false flags.
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
from bench_photos import embed, embed_mid, pixels  # noqa: E402

CACHE = Path(os.environ.get("OFFTOPIC_CACHE", "/tmp/offtopic_cache"))


def run_set(s, detail: bool, groups: bool = False, mid: bool = True) -> dict:
    import cleaning.detect.run as run
    from cleaning.detect.label import compute_label_scores
    from cleaning.model.backbone import DEFAULT_ARCH
    from cleaning.model.oos import compute_oos_pred_probs, make_groups
    from cleaning.model.semantic import class_mass

    paths = list(s["path"])
    x, sha = embed(paths)
    stats, thumbs, phash, w, h = pixels(paths)
    vocab = sorted(set(s["given"]))
    y = np.array([vocab.index(v) for v in s["given"]])
    key = f"{s['set'].iloc[0]}-{int(s['seed'].iloc[0])}"
    CACHE.mkdir(parents=True, exist_ok=True)
    f = CACHE / ("" if mid else "no-mid") / f"{key}.pkl"
    f.parent.mkdir(parents=True, exist_ok=True)
    fg = make_groups(sha, phash)
    xm = embed_mid(paths) if mid else None
    if f.exists():
        cached_ = pickle.loads(f.read_bytes())
        if len(cached_) != 3:
            raise RuntimeError(f"{CACHE} was written by an older driver: delete it")
        probs, probs_m, lss = cached_
    else:
        probs = compute_oos_pred_probs(x, y, vocab, groups=fg)
        probs_m = compute_oos_pred_probs(xm, y, vocab, groups=fg) if xm is not None else None
        lss = None
    orig = run.compute_label_scores
    made: list = []

    def cached(*a, **k):  # the label check's scores, in the order run_detectors asks (embedding, then block)
        if lss is not None:
            made.append(None)
            return lss[len(made) - 1]
        made.append(compute_label_scores(*a, **k))
        return made[-1]
    run.compute_label_scores = cached
    try:
        ids = [str(i) for i in range(len(y))]
        layer = run.MidLayer(xm, probs_m, relearn=lambda lab: compute_oos_pred_probs(xm, lab, vocab, groups=fg)) \
            if xm is not None else None
        inp = run.DetectorInputs(ids, paths, y, vocab, x, probs, sha, phash, thumbs, stats, w, h,
                                 semantic=class_mass(x, vocab, DEFAULT_ARCH), mid=layer)
        res = run.run_detectors(inp, relearn=lambda lab: compute_oos_pred_probs(x, lab, vocab, groups=fg))
    finally:
        run.compute_label_scores = orig
    if lss is None:
        f.write_bytes(pickle.dumps((probs, probs_m, made)))
    iss = res.issues
    fo = np.zeros(len(y), bool)
    fo[[int(i) for i in iss.loc[iss["issue"] == "outlier", "item_id"]]] = True
    fl = np.zeros(len(y), bool)
    fl[[int(i) for i in iss.loc[iss["issue"] == "label", "item_id"]]] = True
    kind = s["kind"].to_numpy()
    junk, single = kind == "junk_cluster", kind == "single"
    off = junk | single
    tp = int((fo & off).sum())
    r = {"key": key, "P": tp / max(fo.sum(), 1), "R": tp / max(off.sum(), 1), "flag": int(fo.sum()),
         "junk_out": float(fo[junk].mean()) if junk.any() else None,
         "junk_lab": float((fl[junk] & ~fo[junk]).mean()) if junk.any() else None,
         "single": f"{int(fo[single].sum())}/{int(single.sum())}",
         "wrong_lab_R": float(fl[kind == "wrong_label"].mean()),
         "lab_P": float((fl & (kind == "wrong_label")).sum() / max(fl.sum(), 1))}
    print(f"{key:22s} P {r['P']:.2f} R {r['R']:.2f} flag {r['flag']:4d} junk_out {r['junk_out']} "
          f"junk_lab {r['junk_lab']} singles {r['single']} labP {r['lab_P']:.2f} labR {r['wrong_lab_R']:.2f}",
          flush=True)
    if groups:
        o, pp = res.outliers, res.labels.model_probs
        for gi, info in enumerate(res.junk.info):
            m = np.flatnonzero(res.junk.group == gi)
            print(f"   group {gi}: {len(m)} ({int(off[m].sum())} planted off-topic) classes {info['classes']} "
                  f"z {info['z']:.2f} fit {info['fit']:.2f} tight {info['tight']:.3f} chance {info['chance']:.3f} "
                  f"own {np.median(o.own[m]):.2f} unfit {np.median(o.unfit[m]):.2f} "
                  f"lonely {np.median(o.lonely[m]):.2f} p_own {np.median(pp[m, y[m]]):.2f}")
    if detail:
        o = res.outliers
        ls_ = res.labels
        sem = inp.semantic if inp.semantic is not None else np.full((len(y), len(vocab)), np.nan)
        conf = ls_.model_probs.max(axis=1)
        print(f"   break_z {o.break_z}")
        def show(i: int, tag: str) -> None:
            print(f"   {tag:8s} {kind[i]:12s} {Path(paths[i]).name[:28]:28s} z {o.z[i]:5.2f} lonely {o.lonely[i]:5.2f} "
                  f"own {o.own[i]:5.2f} unfit {o.unfit[i]:5.2f} uncl {o.unclaimed[i]:5.2f} conf {conf[i]:.2f} blend {ls_.pred_probs[i].max():.2f} "
                  f"mass {sem[i, y[i]]:.2f} pown {ls_.model_probs[i, y[i]]:.2f} lab {int(ls_.flagged[i])} grp {int(res.junk.group[i])} out {int(fo[i])} labrow {int(fl[i])}")
        for i in np.flatnonzero(single & ~fo):
            show(i, "MISS1")
        for i in np.flatnonzero(junk & ~fo):
            show(i, "MISSJ")
        for i in np.flatnonzero(fo & ~off):
            show(i, "FALSE")
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="photos,d650,d4000")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--detail", action="store_true")
    ap.add_argument("--groups", action="store_true", help="print every junk group's evidence")
    ap.add_argument("--no-mid", action="store_true", help="the label check on the embedding alone")
    ap.add_argument("--classes", help="a photo composition of one's own instead of --sets: class names from "
                    "realsets.CLASSES and ANIMAL_CLASSES, e.g. bird,mammal,flower")
    a = ap.parse_args()
    base = realsets.base_images()
    if a.classes:
        sets = [realsets.photo_set(base, int(sd), c, a.classes.split(",")) for sd in a.seeds.split(",")
                for c in realsets.CLUSTERS]
    else:
        sets = [s for s, _ in realsets.chosen_sets(base, a.sets, a.seeds)]
    rs = [run_set(s, a.detail, a.groups, not a.no_mid) for s in sets]
    for prefix in ("photos", "animals", "digits-650", "digits-4000", *(["+".join(sorted(a.classes.split(",")))] if a.classes else [])):
        g = [r for r in rs if r["key"].startswith(prefix)]
        if g:
            P = np.array([r["P"] for r in g])
            R = np.array([r["R"] for r in g])
            extra = ""
            if not prefix.startswith("digits"):
                jo = np.mean([r["junk_out"] for r in g])
                jl = np.mean([r["junk_lab"] for r in g])
                sg = np.mean([int(r["single"].split("/")[0]) / int(r["single"].split("/")[1]) for r in g])
                extra = f" junk_out {jo:.2f} junk_lab {jl:.2f} singles {sg:.2f}"
            print(f"== {prefix}: P {P.mean():.2f} (min {P.min():.2f}) R {R.mean():.2f}{extra} "
                  f"labP {np.mean([r['lab_P'] for r in g]):.2f} labR {np.mean([r['wrong_lab_R'] for r in g]):.2f}")


if __name__ == "__main__":
    main()
