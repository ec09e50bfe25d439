"""Clean the obvious in one step: a plan of sure-enough fixes from the issue table, at one of three levels.

Pure: :func:`plan_autofix` reads the ranked issue table and the items frame and returns an
:class:`AutofixPlan` (nothing is recorded); :func:`record_autofix` records a plan as ONE batch of decisions
(one undo takes it all back). Three kinds of fix, each gated by the level:

* ``offtopic`` — delete images flagged off-topic / outlier (and junk groups, when the scan reports them);
* ``relabel`` — relabel confident label errors to the suggested label;
* ``copies`` — delete the extra copy of a duplicate pair (the scan names the copy to keep; pairs whose
  copies sit in different classes need a person and are left alone). Gated by the kind of copy, not by
  severity (a pair's severity says whether its copies disagree, not how sure the match is): cautious takes
  byte-identical copies only, balanced and bold near copies too.

Expected precision is measured per kind *and level* by ``bench/bench_autofix.py`` (the benchmark's
planted photo and digit sets run through the scan and this plan; each decision checked against what was
planted) and read from the small table it writes beside this module (``autofix_precision.json``; report:
``bench/results/autofix.md``). It is the lower of the photo and digit families' pooled precision; a kind
the benchmark never planned at a level has none (shown as "not measured").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from ..data.store import Store
from .queue import PAIR_TYPES, open_issues

LEVELS = ("cautious", "balanced", "bold")
#: Minimum severity per fix kind and level (severity is the detectors' 0..1 score; copies: see COPY_ISSUES).
THRESHOLDS: dict[str, dict[str, float]] = {
    "cautious": {"offtopic": 0.9, "relabel": 0.9, "copies": 0.0},
    "balanced": {"offtopic": 0.75, "relabel": 0.75, "copies": 0.0},
    "bold": {"offtopic": 0.0, "relabel": 0.0, "copies": 0.0},
}
#: Issue types each kind acts on (``junk_group``/``junk``: what the scan's junk-group detector may add).
KIND_ISSUES = {"offtopic": ("outlier", "junk_group", "junk"), "relabel": ("label",), "copies": PAIR_TYPES}
#: Which copies each level drops: byte-identical ones are certain; near copies rest on a similarity threshold.
COPY_ISSUES = {"cautious": ("duplicate",), "balanced": PAIR_TYPES, "bold": PAIR_TYPES}
KIND_NAMES = {"offtopic": "delete off-topic images and junk groups", "relabel": "relabel confident label errors",
              "copies": "drop the extra copies of duplicates"}
PRECISION_FILE = Path(__file__).with_name("autofix_precision.json")


@cache
def _precision_table() -> dict:
    try:
        return dict(json.loads(PRECISION_FILE.read_text(encoding="utf-8")).get("expected", {}))
    except (OSError, ValueError):
        return {}


def expected_precision(level: str, kind: str) -> tuple[float | None, str]:
    """(precision, where it was measured) of ``kind`` at ``level`` from ``bench/bench_autofix.py``;
    precision is None when the benchmark has no measurement for it."""
    got = _precision_table().get(level, {}).get(kind)
    if not got:
        return None, "not measured: run `python bench/bench_autofix.py`"
    p, src = got
    return (None if p is None else float(p)), str(src)


def precision_text(level: str, kind: str) -> str:
    p, _ = expected_precision(level, kind)
    return "not measured" if p is None else f"{p:.0%}"


@dataclass
class FixStep:
    """One kind of fix: the decisions it would record and a few examples to show."""

    kind: str
    decisions: list[tuple[str, str, str | None]] = field(default_factory=list)  # (item_id, action, label)
    sample: list[str] = field(default_factory=list)  # item ids, most severe first
    keeps: dict[str, str] = field(default_factory=dict)  # copies: dropped item id -> the copy kept

    @property
    def n(self) -> int:
        return len(self.decisions)


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
            _, src = expected_precision(self.level, s.kind)
            out.append(f"  {KIND_NAMES[s.kind]}: {s.n} image(s) · expected precision at {self.level} "
                       f"{precision_text(self.level, s.kind)} ({src})")
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
    for r in df[df["issue"].isin(COPY_ISSUES[level]) & (df["severity"] >= t["copies"])].itertuples():
        drop, keep = str(r.item_id), r.related_item_id
        if not isinstance(keep, str) or keep not in labels or labels.get(drop) != labels.get(keep):
            continue  # the other copy is gone, or the copies disagree on the class: a person decides
        if drop in taken or drop in keepers or keep in taken:
            continue
        taken.add(drop)
        keepers.add(keep)
        steps["copies"].decisions.append((drop, "delete", None))
        steps["copies"].keeps[drop] = keep
    for s in steps.values():
        s.sample = [d[0] for d in s.decisions[:sample_size]]
    return AutofixPlan(level, list(steps.values()))


def record_autofix(store: Store, plan: AutofixPlan) -> int | None:
    """Record every decision of ``plan`` as ONE batch (source ``bulk``, note ``autofix <level>: <kind>``).
    Returns the batch number, or None when nothing changed."""
    rows = [(iid, action, label, f"autofix {plan.level}: {KIND_NAMES[s.kind]}")
            for s in plan.steps for iid, action, label in s.decisions]
    return store.record_mixed(rows, source="bulk") if rows else None
