"""Clean the obvious in one step: a plan of sure-enough fixes from the issue table, at one of three levels.

Pure: :func:`plan_autofix` reads the ranked issue table and the items frame and returns an
:class:`AutofixPlan` (nothing is recorded); :func:`record_autofix` records a plan as ONE batch of decisions
(one undo takes it all back). Four kinds of fix, each gated by the level's severity threshold:

* ``offtopic`` — delete images flagged off-topic / outlier (and junk groups, when the scan reports them);
* ``relabel`` — relabel confident label errors to the suggested label;
* ``copies`` — delete the extra copy of a duplicate pair (the scan names the copy to keep; pairs whose
  copies sit in different classes need a person and are left alone).

Expected precision comes from the committed detector benchmark (``bench/results/detect.md``), measured at
the detectors' default flag thresholds: the cautious and balanced levels keep only the more severe part of
those flags, so their precision is expected to be at least that (it is not measured separately).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..data.store import Store
from .queue import PAIR_TYPES, open_issues

LEVELS = ("cautious", "balanced", "bold")
#: Minimum severity per fix kind and level (severity is the detectors' 0..1 score).
THRESHOLDS: dict[str, dict[str, float]] = {
    "cautious": {"offtopic": 0.9, "relabel": 0.9, "copies": 0.99},
    "balanced": {"offtopic": 0.75, "relabel": 0.75, "copies": 0.95},
    "bold": {"offtopic": 0.0, "relabel": 0.0, "copies": 0.0},
}
#: Issue types each kind acts on (``junk_group``/``junk``: what the scan's junk-group detector may add).
KIND_ISSUES = {"offtopic": ("outlier", "junk_group", "junk"), "relabel": ("label",), "copies": PAIR_TYPES}
KIND_NAMES = {"offtopic": "delete off-topic images and junk groups", "relabel": "relabel confident label errors",
              "copies": "drop the extra copies of duplicates"}
#: Precision measured at the default flag threshold (bench/results/detect.md, test seeds 1–3).
BENCH_PRECISION = {"offtopic": (0.58, "off-topic, end-to-end fashion-MNIST tree (AUROC 0.99)"),
                   "relabel": (0.60, "label errors, lowest of the 12 noise settings (0.60–0.83)"),
                   "copies": (0.983, "near duplicates on photos (exact copies: 1.0)")}


@dataclass
class FixStep:
    """One kind of fix: the decisions it would record and a few examples to show."""

    kind: str
    decisions: list[tuple[str, str, str | None]] = field(default_factory=list)  # (item_id, action, label)
    sample: list[str] = field(default_factory=list)  # item ids, most severe first

    @property
    def n(self) -> int:
        return len(self.decisions)

    @property
    def expected_precision(self) -> float:
        return BENCH_PRECISION[self.kind][0]


@dataclass
class AutofixPlan:
    level: str
    steps: list[FixStep]

    @property
    def n_images(self) -> int:
        return sum(s.n for s in self.steps)

    def lines(self) -> list[str]:
        """The plan as text, one line per kind plus a total (what the CLI prints)."""
        out = [f"autofix plan ({self.level}):"]
        for s in self.steps:
            p, src = BENCH_PRECISION[s.kind]
            at_least = "≥ " if THRESHOLDS[self.level][s.kind] > 0 else ""
            out.append(f"  {KIND_NAMES[s.kind]}: {s.n} image(s) · expected precision {at_least}{p:.2f} ({src})")
        out.append(f"  total: {self.n_images} image(s) in one undoable batch")
        return out


def plan_autofix(issues: pd.DataFrame | None, items: pd.DataFrame, level: str, sample_size: int = 8) -> AutofixPlan:
    """What autofix would do at ``level`` (one of :data:`LEVELS`), from the ranked issue table
    (``cleaning.review.analysis``) and ``Workspace.items_frame()``. Issues already dealt with (deleted,
    marked fine, relabelled since the scan) are skipped. An image gets at most one decision (off-topic
    deletion wins over a relabel). Raises ValueError for an unknown level."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    steps = {k: FixStep(k) for k in THRESHOLDS[level]}
    if issues is None or issues.empty:
        return AutofixPlan(level, list(steps.values()))
    df = open_issues(issues, items).sort_values("severity", ascending=False, kind="stable")
    df = df[df["item_id"].notna() & (df["item_id"].astype(str) != "")]
    t = THRESHOLDS[level]
    taken: set[str] = set()
    for r in df[df["issue"].isin(KIND_ISSUES["offtopic"]) & (df["severity"] >= t["offtopic"])].itertuples():
        if str(r.item_id) not in taken:
            taken.add(str(r.item_id))
            steps["offtopic"].decisions.append((str(r.item_id), "delete", None))
    for r in df[df["issue"].isin(KIND_ISSUES["relabel"]) & (df["severity"] >= t["relabel"])].itertuples():
        sugg = r.suggested_label if isinstance(r.suggested_label, str) and r.suggested_label else None
        if sugg and sugg != r.cur_label and str(r.item_id) not in taken:
            taken.add(str(r.item_id))
            steps["relabel"].decisions.append((str(r.item_id), "relabel", sugg))
    labels = dict(zip(items["item_id"], items["label"]))
    keepers: set[str] = set()
    for r in df[df["issue"].isin(KIND_ISSUES["copies"]) & (df["severity"] >= t["copies"])].itertuples():
        drop, keep = str(r.item_id), r.related_item_id
        if not isinstance(keep, str) or keep not in labels or labels.get(drop) != labels.get(keep):
            continue  # the other copy is gone, or the copies disagree on the class: a person decides
        if drop in taken or drop in keepers or keep in taken:
            continue
        taken.add(drop)
        keepers.add(keep)
        steps["copies"].decisions.append((drop, "delete", None))
    for s in steps.values():
        s.sample = [d[0] for d in s.decisions[:sample_size]]
    return AutofixPlan(level, list(steps.values()))


def record_autofix(store: Store, plan: AutofixPlan) -> int | None:
    """Record every decision of ``plan`` as ONE batch (source ``bulk``, note ``autofix <level>: <kind>``).
    Returns the batch number, or None when nothing changed."""
    rows = [(iid, action, label, f"autofix {plan.level}: {KIND_NAMES[s.kind]}")
            for s in plan.steps for iid, action, label in s.decisions]
    return store.record_mixed(rows, source="bulk") if rows else None
