"""The markdown report of ``bench_photos.py`` (from its JSON)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _m(vals: list) -> str:
    v = [x for x in vals if x is not None and not (isinstance(x, float) and np.isnan(x))]
    if not v:
        return "–"
    return f"{np.mean(v):.2f}" + (f" ± {np.std(v):.2f}" if len(v) > 1 else "")


def _pr(rows: list[dict], key: str) -> str:
    return f"{_m([r[key]['precision'] for r in rows])} / {_m([r[key]['recall'] for r in rows])}"


def report(res: dict) -> str:
    m = res["machine"]
    ph, dg = res["photos"], res["digits"]
    lines = [
        "# Real-photo and handwritten-digit benchmark (issue 9)", "",
        f"`python bench/bench_photos.py` on {m['when']} — {m['machine']}, {m['cpus']} CPUs, Python {m['python']}; "
        f"load average {m['load_start']:.1f} → {m['load_end']:.1f} (machine shared with other workers); "
        f"{m['cpu_minutes']:.1f} CPU-minutes, {m['wall_minutes']:.1f} min wall. Raw numbers: `photos.json`.", "",
        "**Data** (built by `bench/realsets.py`, all real images, offline): 167 Tux Paint photo stamps in 5 classes "
        "(bird, mammal, fruit, vegetable, flower; GPL-2+), 10 % wrong labels, one look-alike junk cluster filed "
        "round-robin under every class (8 %: `space` = sun, planets, moons; `coins` = US and euro coins; "
        "`vehicles` = cars, trucks, planes, boats), 6 single off-topic images (paintings, cartoons, unrelated "
        "photos from Tux Paint, `skimage.data`, opencv-doc samples), 8 exact and 20 near copies (JPEG q30, "
        "resize 50 %, crop 10 %, brighten 30 %, horizontal flip, rotation 7°). Digits: opencv-doc `digits.png` "
        "(20×20 handwritten), 650 and 4,000 per set, 10 % wrong labels, 3 % off-topic photos, 1.5 % exact and "
        "3 % near copies. Seeds 1, 2, 3 for every set (photos: 3 seeds × 3 junk kinds = 9 sets), and 1–10 for the digits at 650. "
        "Everything runs through `cleaning.detect.run.run_detectors` — what the scan runs. Peers get the same "
        "embeddings and out-of-sample probabilities: cleanlab `Datalab` (label, outlier, near_duplicate), "
        "`OutOfDistribution` (AUROC), CleanVision 0.3.7 (`Imagelab`, exact + near duplicates on the files). "
        "Peers on digits at 4,000 were skipped (time).", "",
        "## Photos (9 sets)", "",
        "| measure | ours | cleanlab Datalab | CleanVision |", "|---|---|---|---|",
        f"| off-topic P / R (junk cluster + singles) | {_pr(ph, 'offtopic')} | "
        f"{_m([r['peers']['datalab_outlier']['precision'] for r in ph])} / "
        f"{_m([r['peers']['datalab_outlier']['recall'] for r in ph])} | – |",
        f"| junk cluster flagged as off-topic | {_m([r['junk']['as_outlier'] for r in ph])} | "
        f"{_m([r['peers']['datalab_junk_as_outlier'] for r in ph])} | – |",
        f"| junk cluster flagged only as a label error | {_m([r['junk']['only_label'] for r in ph])} | "
        f"(as label issue: {_m([r['peers']['datalab_junk_as_label'] for r in ph])}) | – |",
        f"| junk cluster missed | {_m([r['junk']['missed'] for r in ph])} | – | – |",
        f"| junk found as one or more groups | {_m([r['junk']['in_group'] for r in ph])} | – | – |",
        f"| single off-topic found (of 6) | {_m([r['single']['found'] for r in ph])} | – | – |",
        f"| label errors P / R | {_pr(ph, 'label')} | {_m([r['peers']['datalab_label']['precision'] for r in ph])} / "
        f"{_m([r['peers']['datalab_label']['recall'] for r in ph])} | – |",
        f"| label F1 | {_m([r['label']['f1'] for r in ph])} | {_m([r['peers']['datalab_label']['f1'] for r in ph])} | – |",
        f"| suggested label right | {_m([r['label']['suggestion_right'] for r in ph])} | – | – |",
        f"| near-duplicate pairs P / R | {_pr(ph, 'near_dup')} | "
        f"{_m([r['peers']['datalab_near_dup']['precision'] for r in ph])} / "
        f"{_m([r['peers']['datalab_near_dup']['recall'] for r in ph])} | "
        f"{_m([r['peers']['cleanvision_dup']['precision'] for r in ph if r['peers']['cleanvision_dup']])} / "
        f"{_m([r['peers']['cleanvision_dup']['recall'] for r in ph if r['peers']['cleanvision_dup']])} |",
        f"| off-topic AUROC (cleanlab OOD score) | – | {_m([r['peers']['ood_auroc'] for r in ph])} | – |",
        f"| outlier rows with a suggested label | {sum(r['outlier_rows_with_suggestion'] for r in ph)} | – | – |",
        "", "Per junk kind (mean over seeds): junk flagged as off-topic / only as label error / missed; singles found:", "",
        "| junk kind | as off-topic | only label | missed | singles | off-topic P |", "|---|---|---|---|---|---|"]
    for kind, g in pd.DataFrame(ph).groupby("set", sort=False):
        rows = g.to_dict("records")
        lines.append(f"| {kind} | {_m([r['junk']['as_outlier'] for r in rows])} | {_m([r['junk']['only_label'] for r in rows])} "
                     f"| {_m([r['junk']['missed'] for r in rows])} | {_m([r['single']['found'] for r in rows])}/6 | "
                     f"{_m([r['offtopic']['precision'] for r in rows])} |")
    an = res.get("animals") or []
    if an:
        lines += ["", f"## Held-out class composition: animals ({len(an)} sets)", "",
                  "The same junk, singles, noise and copies over other classes: bird, mammal (with marsupials), insect "
                  "(9), fish (with shellfish, 13), flower (`realsets.ANIMAL_CLASSES`, 148 photos; no fruit or vegetables, "
                  "whose round members look like the planets). Built in the thirteenth session to check the rule on "
                  "classes it was not tuned on; its first run then set `junk.Z_LOOSE` (see `junk.py`), so it is no "
                  "longer untouched. Ours only.", "",
                  "| junk kind | off-topic P / R | as off-topic | only label | missed | singles | label P / R | label F1 "
                  "| suggestion right | near-dup P / R |", "|---|---|---|---|---|---|---|---|---|---|"]
        for kind, g in [*pd.DataFrame(an).groupby("set", sort=False), ("all", pd.DataFrame(an))]:
            rows = g.to_dict("records")
            lines.append(f"| {kind} | {_pr(rows, 'offtopic')} | {_m([r['junk']['as_outlier'] for r in rows])} | "
                         f"{_m([r['junk']['only_label'] for r in rows])} | {_m([r['junk']['missed'] for r in rows])} | "
                         f"{_m([r['single']['found'] for r in rows])}/6 | {_pr(rows, 'label')} | "
                         f"{_m([r['label']['f1'] for r in rows])} | {_m([r['label']['suggestion_right'] for r in rows])} | "
                         f"{_pr(rows, 'near_dup')} |")
    lines += ["", "## Handwritten digits", "",
              "| set | off-topic P / R | label P / R | label F1 | suggestion right | near-dup P / R | Datalab outlier P / R "
              "| Datalab label F1 | Datalab near-dup P / R | CleanVision dup P / R |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, g in pd.DataFrame(dg).groupby("set", sort=False):
        rows = g.to_dict("records")
        peers = [r["peers"] for r in rows if isinstance(r.get("peers"), dict)]
        def pp(key: str, peers: list = peers) -> str:
            p = [x[key] for x in peers if x.get(key)]
            return f"{_m([x['precision'] for x in p])} / {_m([x['recall'] for x in p])}" if p else "–"
        lines.append(f"| {name} | {_pr(rows, 'offtopic')} | {_pr(rows, 'label')} | {_m([r['label']['f1'] for r in rows])} | "
                     f"{_m([r['label']['suggestion_right'] for r in rows])} | {_pr(rows, 'near_dup')} | {pp('datalab_outlier')} | "
                     f"{_m([x['datalab_label']['f1'] for x in peers]) if peers else '–'} | {pp('datalab_near_dup')} | "
                     f"{pp('cleanvision_dup')} |")
    rt = res["retrain"]
    lines += ["", "## Acting on the flags (noisy digits)", "",
              "A logistic head on the embeddings trained on the noisy set, on the set without any planted noise "
              "(oracle: no wrong labels, off-topic images or copies; the old oracle kept the copies, see the last "
              "column), "
              "after dropping every flagged file (*drop*), and after relabelling every label error to its suggestion "
              "and dropping the other flagged files (*relabel*); accuracy on held-out clean digits: every digit of the "
              "sheet that is not in the set (4,350 at 650, 1,000 at 4,000). Copies: "
              "the scan flags only the extra copies of a group, so one copy stays (as autofix does). Recovered = "
              "(after − noisy) / (oracle − noisy): the mean over seeds ± its standard error, the *pooled* share "
              "(Σ gained / Σ lost over seeds, which does not let a seed with little lost swing the mean), per seed in "
              "brackets. Heads: *probe* is the product's classifier "
              "head (`fit_linear_probe`, feature spread floored); *plain* is StandardScaler + the same logistic "
              "regression, whose scaler makes the planted off-topic photos act as a regulariser (dropping them "
              "alone costs it 1–3 points at 650), so it understates what removing junk is worth.", "",
              "| set | head | noisy | oracle | drop | relabel | dropped (one side of a copy pair; clean files "
              "flagged otherwise) | relabelled (right) | recovered, drop | recovered, relabel | recovered vs the "
              "oracle with copies (drop; relabel) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["set"] for r in rt):
        g = [r for r in rt if r["set"] == name]
        for head in g[0].get("heads", {}):
            hs = [r["heads"][head] for r in g]
            def pc(key: str, hs: list = hs) -> str:
                v = [h[key] for h in hs]
                gain = [h[key.replace("recovered_", "")] - h["noisy"] for h in hs]
                lost = [h["oracle"] - h["noisy"] for h in hs]
                se = np.std(v, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
                return (f"{np.mean(v):.0%} ± {se:.0%}, pooled {np.sum(gain) / np.sum(lost):.0%} "
                        f"({', '.join(f'{x:.0%}' for x in v)})")
            lines.append(f"| {name} | {head} | {np.mean([h['noisy'] for h in hs]):.3f} | "
                         f"{np.mean([h['oracle'] for h in hs]):.3f} | {np.mean([h['drop'] for h in hs]):.3f} | "
                         f"{np.mean([h['relabel'] for h in hs]):.3f} | {np.mean([r['dropped'] for r in g]):.0f} "
                         f"({np.mean([r['dropped_as_copy'] for r in g]):.0f}; {np.mean([r['clean_false_flags'] for r in g]):.0f}) | "
                         f"{np.mean([r['relabelled'] for r in g]):.0f} ({np.mean([r['relabelled_right'] for r in g]):.0f}) | "
                         f"{pc('recovered_drop')} | {pc('recovered_relabel')} | "
                         f"{np.mean([h['recovered_drop_vs_copies'] for h in hs]):.0%}; "
                         f"{np.mean([h['recovered_relabel_vs_copies'] for h in hs]):.0%} |")
    def rec(head: str, v: str, name: str | None = None) -> str:
        vals = [r["heads"][head][f"recovered_{v}"] for r in rt if head in r.get("heads", {})
                and name in (None, r["set"])]
        hs = [r["heads"][head] for r in rt if head in r.get("heads", {}) and name in (None, r["set"])]
        pooled = sum(h[v] - h["noisy"] for h in hs) / sum(h["oracle"] - h["noisy"] for h in hs) if hs else 0.0
        return f"{np.mean(vals):.0%} (pooled {pooled:.0%})" if vals else "–"
    lines += ["", "## Against the issue's targets", "",
              "| target | result |", "|---|---|",
              f"| junk cluster as off-topic ≥ 90 % | {_m([r['junk']['as_outlier'] for r in ph])} |",
              f"| junk only as label error ≤ 5 % | {_m([r['junk']['only_label'] for r in ph])} |",
              f"| single off-topic ≥ 4/5 | {_m([r['single']['found'] / max(r['single']['planted'], 1) for r in ph])} of planted |",
              f"| off-topic precision ≥ 0.8 (photos; digits 650; digits 4,000) | {_m([r['offtopic']['precision'] for r in ph])}; "
              + "; ".join(_m([r['offtopic']['precision'] for r in g.to_dict('records')]) for _, g in pd.DataFrame(dg).groupby('set', sort=False)) + " |",
              f"| label F1 ≥ 0.9, recall ≥ 0.9, suggestion ≥ 0.9 (photos) | F1 {_m([r['label']['f1'] for r in ph])}, "
              f"R {_m([r['label']['recall'] for r in ph])}, right {_m([r['label']['suggestion_right'] for r in ph])} |",
              f"| near-dup R ≥ 0.95 at P ≥ 0.95 (photos; digits) | {_pr(ph, 'near_dup')}; "
              + "; ".join(_pr(g.to_dict('records'), 'near_dup') for _, g in pd.DataFrame(dg).groupby('set', sort=False)) + " |",
              "| acting on flags recovers ≥ 80 % (probe head; drop / relabel) | "
              + "; ".join(f"{n}: {rec('probe', 'drop', n)} / {rec('probe', 'relabel', n)}"
                          for n in dict.fromkeys(r["set"] for r in rt))
              + f" (plain head, all sets: {rec('plain', 'drop')} / {rec('plain', 'relabel')}) |", ""]
    return "\n".join(lines) + "\n"
