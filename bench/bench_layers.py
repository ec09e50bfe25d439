"""The label check on another layer of the backbone (issue 9, eleventh session; ``bench/results/photos.md``).

    python bench/bench_layers.py [--sets photos,d650] [--seeds 1,…,10] [--mode block|blendnb|concat|final|choose] [--held 435]

The final 1,280-d embedding is what the product's label check uses by default. Block 5's output, average-pooled
(192-d for block 5 of EfficientNet-Lite0), holds more of the shape: on 650 handwritten digits a linear probe
reaches 0.937 on it against 0.912 on the final embedding, while photos prefer the final layer. Here the label check
(out-of-sample heads, the re-learning pass, the neighbour votes) runs on that layer instead — ``block`` — or on
the average of both layers' classifier probabilities with the neighbours searched in the block's space —
``blendnb`` — and is joined with the cached off-topic results by the scan's own rules (``run.join_checks``, the
zero-shot check on). Per set it prints label P / R / F1 (as ``bench/label_driver.py``), the out-of-sample accuracy
on the given labels of both layers, and for digit sets acting on the flags (drop every flagged file, the product
head on the *final* embedding, ``--held`` clean digits per class held out; 435 = every digit not in a 650 set).

The block features are the product's own (the tapped backbone's rows, ``bench_photos.embed_mid``); ``final`` is the
embedding alone, ``concat`` both layers side by side, ``choose`` the scan's rule (:func:`cleaning.detect.run.prefers_mid`).
The per-set evidence is ``bench/label_driver.py``'s cache.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import label_driver as ld  # noqa: E402
import realsets  # noqa: E402
from bench_photos import embed_mid  # noqa: E402


def rule_on(xb: np.ndarray, ev: dict, mode: str, fg: np.ndarray):  # noqa: ANN201 — returns an apply_rule for label_driver.score
    """``label_driver.apply_rule`` with the label check on the block's features (see the module doc), and the
    block's out-of-sample accuracy on the given labels."""
    from cleaning.detect import compute_neighbours
    from cleaning.detect.label import K_NEIGHBOURS
    from cleaning.detect.run import mid_gain_z
    from cleaning.model.oos import compute_oos_pred_probs

    cp, vocab = ev.get("copies"), ev["vocab"]  # the scan's copy groups (neighbours) and the folds' groups (fg)
    if mode == "final":
        xb, mode = ev["x"], "block"
    if mode == "choose":  # the product's rule: the block when its heads explain the given labels clearly better
        from cleaning.detect.run import prefers_mid

        probs_b = compute_oos_pred_probs(xb, ev["y"], vocab, groups=fg)
        if not prefers_mid(ev["y"], ev["probs"], probs_b):
            xb = ev["x"]
        mode = "block"
    if mode == "concat":
        xb = np.hstack([ev["x"], xb]) / np.sqrt(2)
        mode = "block"

    def heads(lab: np.ndarray) -> np.ndarray:
        q = compute_oos_pred_probs(xb, lab, vocab, groups=fg)
        return q if mode == "block" else (q + compute_oos_pred_probs(ev["x"], lab, vocab, groups=fg)) / 2

    probs_b = compute_oos_pred_probs(xb, ev["y"], vocab, groups=fg)
    probs = probs_b if mode == "block" else (probs_b + ev["probs"]) / 2
    nb = compute_neighbours(xb, K_NEIGHBOURS, cp)
    lp = [np.log(np.maximum(q[np.arange(len(q)), ev["y"]], 1e-6)) for q in (ev["probs"], probs_b)]
    ll = [float(lp[0].mean()), float(lp[1].mean()), mid_gain_z(ev["y"], ev["probs"], probs_b)]
    return (lambda e: ld.apply_rule(e, probs, nb, heads)), float((probs_b.argmax(1) == ev["y"]).mean()), ll


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="photos,d650")
    ap.add_argument("--seeds", default="1,2,3,4,5,6,7,8,9,10")
    ap.add_argument("--mode", choices=["block", "blendnb", "concat", "final", "choose"], default="block")
    ap.add_argument("--held", type=int, default=435)
    a = ap.parse_args()
    rs = []
    for s, held in realsets.chosen_sets(realsets.base_images(), a.sets, a.seeds, held_out=a.held):
        ev = ld.evidence(s)
        fg = ld.set_inputs(s, ld.embed, ld.pixels)[-1]
        apply, acc_b, ll = rule_on(embed_mid(list(ev["paths"])), ev, a.mode, fg)
        r = ld.score(ev, False, apply)
        r["acc"] = (float((ev["probs"].argmax(1) == ev["y"]).mean()), acc_b)
        line = (f"{r['key']:22s} P {r['P']:.2f} R {r['R']:.2f} F1 {r['F1']:.3f} | out-of-sample accuracy on the "
                f"given labels: final {r['acc'][0]:.3f}, block {r['acc'][1]:.3f} (log-lik {ll[0]:.4f} / {ll[1]:.4f}, paired z {ll[2]:.2f})")
        if held is not None:
            r["rt"] = ld.retrain(ev, r["label"], held)
            line += f" | acting on the flags {r['rt']['rec']:.0%}"
        print(line, flush=True)
        rs.append(r)
    for prefix in ("photos", "animals", "digits-650", "digits-4000"):
        g = [r for r in rs if r["key"].startswith(prefix)]
        if not g:
            continue
        m = {k: np.mean([r[k] for r in g]) for k in ("P", "R", "F1", "right")}
        picks = sum(r["acc"][1] > r["acc"][0] for r in g)
        extra = ""
        if g[0].get("rt"):
            gained = np.sum([r["rt"]["drop"] - r["rt"]["noisy"] for r in g])
            lost = np.sum([r["rt"]["oracle"] - r["rt"]["noisy"] for r in g])
            extra = f"; acting on the flags {np.mean([r['rt']['rec'] for r in g]):.0%} (pooled {gained / lost:.0%})"
        print(f"== {prefix} ({a.mode}): P {m['P']:.3f} R {m['R']:.3f} F1 {m['F1']:.3f} "
              f"right {m['right']:.3f}; the block's accuracy is higher on {picks} of {len(g)} sets{extra}")


if __name__ == "__main__":
    main()
