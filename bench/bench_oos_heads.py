"""The out-of-sample heads at scale: CPU seconds of the first pass and of the label check's re-learning pass,
full-dimension heads against the heads on principal components (:mod:`cleaning.model.headpca`), on one data
set's cached embeddings (the 100k scale tree's state dir: ``bench/results/scale.md`` §14a).

    python bench/bench_oos_heads.py ROOT --state-dir DIR [--settings full pca128 pca256] [--planted JSON]
        [--inputs bench/out/oosheads-100k.npz]   # the inputs (embeddings, labels, groups, neighbours) kept there

Per setting: CPU-s (``time.process_time``, all threads) of the first pass (5 fold heads) and of the
re-learning pass; agreement with the first setting's heads (``full``) of the out-of-sample argmax and of the
label check's flags and suggestions; accuracy of the argmax against the given labels; with ``--planted``
(a JSON ``{"label_noise": [paths], "truth": {file name: drawn class}}``, what ``bench/scale_tree.py`` planted)
the flags' precision and recall and how often a found error's suggestion is the drawn class.
The label check's neighbours are read off the approximate neighbour table (copy groups excluded), once.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _inputs(root: str, state_dir: str, keep: Path | None) -> dict:
    from cleaning.detect import Neighbours

    if keep is not None and keep.exists():
        z = np.load(keep)
        return {"x": z["x"], "y": z["y"], "vocab": [str(v) for v in z["vocab"]], "groups": z["groups"],
                "nb": Neighbours(z["nb_index"], z["nb_sim"]), "path": [str(p) for p in z["path"]]}
    from cleaning.data.workspace import Workspace
    from cleaning.detect.ann import approximate_table
    from cleaning.detect.memo import content_ids, table_neighbours
    from cleaning.model.embed import load_or_compute_embeddings
    from cleaning.model.oos import encode_labels, make_groups

    ws = Workspace.open(root, state_dir=state_dir)
    emb = load_or_compute_embeddings(ws)
    df = ws.items_frame(include_deleted=False).set_index("item_id").loc[emb.item_ids].reset_index()
    labels = [str(v) for v in df["label"]]
    vocab = sorted(set(labels))
    groups = make_groups(list(df["sha256"]), list(df["phash"]))
    t = time.process_time()
    table, row_content, _ = approximate_table(emb.embeddings, content_ids(list(df["sha256"])))
    nb = table_neighbours(emb.embeddings, table, row_content, 10, groups)
    print(f"neighbours: {time.process_time() - t:.0f} CPU-s", flush=True)
    y = encode_labels(labels, vocab)
    if keep is not None:
        np.savez(keep, x=emb.embeddings, y=y, vocab=np.array(vocab), groups=groups, nb_index=nb.index,
                 nb_sim=nb.sim, path=np.array(df["path"], dtype=str))
    return {"x": emb.embeddings, "y": y, "vocab": vocab, "groups": groups, "nb": nb, "path": list(df["path"])}


def _run(d: dict, setting: str) -> dict:
    from cleaning.detect.label import compute_label_scores
    from cleaning.model.oos import assign_folds, cross_val_pred_probs

    x, y, groups, k = d["x"], d["y"], d["groups"], len(d["vocab"])
    spent = {"relearn": 0.0}

    def heads(lab: np.ndarray) -> np.ndarray:
        folds = assign_folds(np.where(lab < 0, 0, lab), 5, groups, 0)
        if setting == "full":  # every dimension at any size (the heads before the rule)
            return cross_val_pred_probs(x, lab, k, folds, pca_above=len(lab))
        return cross_val_pred_probs(x, lab, k, folds)  # the library's rule (pca128: HEAD_DIMS = 128, ...)

    def relearn(lab: np.ndarray) -> np.ndarray:
        t = time.process_time()
        p = heads(lab)
        spent["relearn"] += time.process_time() - t
        return p

    t = time.process_time()
    p = heads(y)
    first = time.process_time() - t
    ls = compute_label_scores(y, p, d["nb"], relearn=relearn)
    return {"first_cpu": first, "relearn_cpu": spent["relearn"], "argmax": p.argmax(1),
            "model2_argmax": ls.model_probs.argmax(1), "flagged": ls.flagged, "suggested": ls.suggested}


def _planted(path: Path | None, d: dict) -> np.ndarray | None:
    """N bools: planted label noise (and ``d["truth"]``, the drawn class, when the file has it)."""
    if path is None:
        return None
    got = json.loads(path.read_text())
    planted = set(got["label_noise"])
    if "truth" in got:  # {file name: drawn class} of the planted rows
        truth = got["truth"]
        d["truth"] = np.array([d["vocab"].index(truth[p.split("/")[-1]]) if p.split("/")[-1] in truth else -1
                               for p in d["path"]])
    return np.array([p in planted for p in d["path"]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--settings", nargs="+", default=["full", "pca128"],
                    help="full (all dimensions) or pcaP (the rule with HEAD_DIMS = P); the first is the base")
    ap.add_argument("--planted", type=Path, default=None)
    ap.add_argument("--inputs", type=Path, default=None, help="keep / read the inputs here (an .npz)")
    ap.add_argument("--base", type=Path, default=None, help="the first setting's arrays from an earlier --save")
    ap.add_argument("--save", type=Path, default=None, help="keep each setting's argmax / flags / suggestions here")
    a = ap.parse_args()
    d = _inputs(a.root, a.state_dir, a.inputs)
    saved = {}
    base = None
    if a.base is not None:  # {setting}_{argmax, model2_argmax, flagged, suggested} of an earlier run
        z = np.load(a.base)
        name = z.files[0].split("_")[0]
        base = {k[len(name) + 1:]: z[k] for k in z.files if k.startswith(name + "_")}
        noisy = _planted(a.planted, d)
    from cleaning.model import headpca

    for c in a.settings:
        if c.startswith("pca"):
            headpca.HEAD_DIMS = int(c[3:])
        r = _run(d, c)
        base = base or r
        if c == a.settings[0] and a.base is None:  # (read after the first setting: a planted list may still be in the making)
            noisy = _planted(a.planted, d)
        f, f0 = r["flagged"], base["flagged"]
        row = {"setting": c, "first_cpu": round(r["first_cpu"], 1), "relearn_cpu": round(r["relearn_cpu"], 1),
               "acc_given": round(float((r["argmax"] == d["y"]).mean()), 4),
               "argmax_agree": round(float((r["argmax"] == base["argmax"]).mean()), 4),
               "relearn_argmax_agree": round(float((r["model2_argmax"] == base["model2_argmax"]).mean()), 4),
               "flagged": int(f.sum()), "flag_jaccard": round(float((f & f0).sum() / max((f | f0).sum(), 1)), 4),
               "suggest_agree_on_both": round(float((r["suggested"] == base["suggested"])[f & f0].mean()), 4)}
        if noisy is not None:
            right = f & noisy & (r["suggested"] == d["truth"]) if "truth" in d else f & noisy
            row |= {"precision": round(float((f & noisy).sum() / max(f.sum(), 1)), 4),
                    "recall": round(float((f & noisy).sum() / max(noisy.sum(), 1)), 4),
                    "suggestion_right": round(float(right.sum() / max((f & noisy).sum(), 1)), 4)}
        print(json.dumps(row), flush=True)
        saved |= {f"{c}_{k}": r[k] for k in ("argmax", "model2_argmax", "flagged", "suggested")}
        if a.save is not None:
            np.savez(a.save, **saved)


if __name__ == "__main__":
    main()
