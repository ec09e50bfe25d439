"""Autofix precision per kind of fix and per level (cautious / balanced / bold), on the benchmark sets.

    python bench/bench_autofix.py           # 3 seeds × (3 photo sets, digits 650 and 4,000); writes
                                            # bench/results/autofix.{md,json} and the small table the app
                                            # and the CLI read (cleaning/review/autofix_precision.json)
    python bench/bench_autofix.py --quick   # 1 seed, photos (space) and digits 650; writes under bench/out

The sets are the ones of ``bench_photos.py`` (:mod:`realsets`: real photos and handwritten digits with
planted wrong labels, a look-alike junk cluster, single off-topic images, exact and near copies), embedded
with the product's embedder (same content-addressed cache), given the product's out-of-sample
probabilities and run through the product's detectors (:func:`cleaning.detect.run.run_detectors`). The
issue table then goes through :func:`cleaning.review.autofix.plan_autofix` exactly as the app and the CLI
call it, at every level, and each planned decision is scored against what was planted:

* delete off-topic — right when the image is a planted junk-cluster member or single off-topic image;
* relabel — right when the new label is the image's true label;
* drop a copy — right when the dropped image and the one kept are planted copies of one original.

Precision = right / planned, pooled over the seeds of each family (photos, digits). The app shows, per
kind and level, the lower of the two families (a hidden data set may look like either).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import realsets  # noqa: E402
from bench_photos import embed, embed_mid, pixels  # noqa: E402

RESULTS = REPO / "bench" / "results"
TABLE = REPO / "cleaning" / "review" / "autofix_precision.json"


def issue_table(s: pd.DataFrame) -> pd.DataFrame:
    """The scan's ranked issue table of one planted set (item ids are row numbers as strings), decorated
    and ranked as ``cleaning.review.analysis`` does for the app."""
    from bench_photos_run import detect_set

    from cleaning.review.analysis import _decorate, rank

    d = detect_set(s, embed, pixels, embed_mid)
    res, vocab, ids = d.res, d.vocab, d.ids
    pp = res.labels.pred_probs
    scores = pd.DataFrame({"item_id": ids, "predicted_label": [vocab[i] for i in pp.argmax(axis=1)]})
    return rank(_decorate(res.issues, items_of(s), scores, dict(zip(ids, pp.max(axis=1)))))


def items_of(s: pd.DataFrame) -> pd.DataFrame:
    """What ``Workspace.items_frame()`` would hold for the set before any decision."""
    n = len(s)
    return pd.DataFrame({"item_id": [str(i) for i in range(n)], "path": list(s["path"]), "label": list(s["given"]),
                         "orig_label": list(s["given"]), "deleted": [False] * n, "kept": [False] * n,
                         "source_query": [None] * n, "source_url": [None] * n})


def origin(s: pd.DataFrame) -> np.ndarray:
    """The planted original of every row (itself when it is not a copy)."""
    cp = s["copy_of"].to_numpy()
    return np.where(cp >= 0, cp, np.arange(len(s)))


def right(s: pd.DataFrame, kind: str, decisions: list[tuple[str, str, str | None]],
          kept_of: dict[str, str]) -> list[bool]:
    """Whether each planned decision of ``kind`` is right by what was planted (see the module docstring)."""
    planted, true, org = s["kind"].to_numpy(), s["true"].to_numpy(), origin(s)
    out = []
    for iid, _, label in decisions:
        i = int(iid)
        if kind == "offtopic":
            out.append(planted[i] in ("junk_cluster", "single"))
        elif kind == "relabel":
            out.append(bool(true[i]) and label == true[i])
        else:
            j = int(kept_of[iid])
            out.append(org[i] == org[j] and (planted[i] in ("exact_copy", "near_copy")
                                             or planted[j] in ("exact_copy", "near_copy")))
    return out


def score(s: pd.DataFrame, issues: pd.DataFrame) -> dict:
    """{level: {kind: {"planned", "right"}}} for one set."""
    from cleaning.review.autofix import LEVELS, plan_autofix

    items = items_of(s)
    out: dict = {}
    for level in LEVELS:
        plan = plan_autofix(issues, items, level)
        out[level] = {}
        for step in plan.steps:
            ok = right(s, step.kind, step.decisions, step.keeps)
            out[level][step.kind] = {"planned": len(ok), "right": int(sum(ok))}
    return out


def pool(runs: list[dict]) -> dict:
    """{family: {level: {kind: {"planned", "right", "precision", "sets"}}}} over the runs."""
    out: dict = {}
    for r in runs:
        for level, kinds in r["plan"].items():
            for kind, v in kinds.items():
                p = out.setdefault(r["family"], {}).setdefault(level, {}).setdefault(
                    kind, {"planned": 0, "right": 0, "sets": 0})
                p["planned"] += v["planned"]
                p["right"] += v["right"]
                p["sets"] += 1
    for fam in out.values():
        for kinds in fam.values():
            for v in kinds.values():
                v["precision"] = v["right"] / v["planned"] if v["planned"] else None
    return out


def expected(pooled: dict) -> dict:
    """{level: {kind: [precision or None, source text]}}: the lower family's pooled precision."""
    from cleaning.review.autofix import LEVELS

    out: dict = {}
    for level in LEVELS:
        out[level] = {}
        for kind in ("offtopic", "relabel", "copies"):
            fams = {f: pooled[f][level][kind] for f in sorted(pooled) if kind in pooled[f].get(level, {})}
            known = {f: v for f, v in fams.items() if v["precision"] is not None}
            low = min((v["precision"] for v in known.values()), default=None)
            src = ", ".join(f"{f} {v['right']}/{v['planned']}" if v["planned"] else f"{f}: none planned"
                            for f, v in fams.items())
            out[level][kind] = [low, f"right / planned at this level on the benchmark sets: {src}"]
    return out


def report(res: dict) -> str:
    m = res["machine"]
    lines = ["# Autofix precision per level", "",
             f"`python bench/bench_autofix.py` on {m['when']} — {m['machine']}, {m['cpus']} CPUs, Python "
             f"{m['python']}; load average {m['load_start']:.1f} → {m['load_end']:.1f}; "
             f"{m['cpu_minutes']:.1f} CPU-minutes, {m['wall_minutes']:.1f} min wall. Raw numbers: `autofix.json`; "
             "the app and the CLI read `cleaning/review/autofix_precision.json` (written by the same run).", "",
             "Sets: those of `bench_photos.py` (real photos with a look-alike junk cluster, digits at 650 and "
             "4,000), seeds " + ", ".join(map(str, res["seeds"])) + ". Each planned decision is scored against "
             "what was planted (see the script's docstring). Right / planned, pooled per family:", "",
             "| level | kind | photos | digits | shown in the app |", "|---|---|---|---|---|"]
    for level, kinds in res["expected"].items():
        for kind, (p, _) in kinds.items():
            cells = []
            for fam in ("photos", "digits"):
                v = res["pooled"].get(fam, {}).get(level, {}).get(kind)
                cells.append("–" if not v else f"{v['precision']:.2f} ({v['right']}/{v['planned']})"
                             if v["planned"] else "none planned")
            lines.append(f"| {level} | {kind} | {cells[0]} | {cells[1]} | {'–' if p is None else f'{p:.2f}'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    t0, c0, l0 = time.monotonic(), time.process_time(), os.getloadavg()[0]
    base = realsets.base_images()
    seeds = [1] if args.quick else [1, 2, 3]
    clusters = ["space"] if args.quick else list(realsets.CLUSTERS)
    sizes = [650] if args.quick else [650, 4000]
    sets = [("photos", realsets.photo_set(base, s, c)) for s in seeds for c in clusters]
    sets += [("digits", realsets.digit_set(base, s, n)[0]) for s in seeds for n in sizes]
    runs = []
    for fam, s in sets:
        runs.append({"family": fam, "set": str(s["set"].iloc[0]), "seed": int(s["seed"].iloc[0]), "n": len(s),
                     "plan": score(s, issue_table(s))})
        print(runs[-1]["set"], runs[-1]["seed"], json.dumps(runs[-1]["plan"]), flush=True)
    pooled = pool(runs)
    res = {"seeds": seeds, "runs": runs, "pooled": pooled, "expected": expected(pooled),
           "machine": {"when": time.strftime("%Y-%m-%d"), "machine": f"{platform.system()} {platform.machine()}",
                       "cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                       "load_start": l0, "load_end": os.getloadavg()[0],
                       "cpu_minutes": (time.process_time() - c0) / 60, "wall_minutes": (time.monotonic() - t0) / 60}}
    where = realsets.OUT if args.quick else RESULTS
    where.mkdir(parents=True, exist_ok=True)
    (where / "autofix.json").write_text(json.dumps(res, indent=1))
    text = report(res)
    (where / "autofix.md").write_text(text)
    if not args.quick:
        TABLE.write_text(json.dumps({"source": "bench/results/autofix.md", "when": res["machine"]["when"],
                                     "expected": res["expected"]}, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
