"""``python -m cleaning scan ROOT --out ISSUES.csv --scores SCORES.csv``: the ranked queue as CSV files.

ISSUES.csv: ``path,label,issue,severity,suggested_label,related_path,reason``, one row per (image,
issue), highest severity first, every non-deleted image (also those marked fine). SCORES.csv:
``path,label,predicted_label,label_issue_score,outlier_score``, one row per readable image. Paths are
relative to ROOT with forward slashes. Reuses (and fills) the workspace caches, so the app then
shows the same results without recomputing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import CleaningError
from . import add_root_command

ISSUES_CSV_COLUMNS = ["path", "label", "issue", "severity", "suggested_label", "related_path", "reason"]
SCORES_CSV_COLUMNS = ["path", "label", "predicted_label", "label_issue_score", "outlier_score"]


def write_csv(df: pd.DataFrame, columns: list[str], out: str) -> None:
    """Write ``df[columns]`` as UTF-8 CSV to ``out`` ("-" = standard output), text cells escaped
    against spreadsheet formulas (:func:`cleaning.files.safe_cell`).

    Raises:
        CleaningError: the file cannot be written.
    """
    from ..data.export import safe_frame

    frame = safe_frame(df.reindex(columns=columns))  # text a spreadsheet would run as a formula: escaped
    if out == "-":
        frame.to_csv(sys.stdout, index=False, float_format="%.4f")
        return
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        frame.to_csv(tmp, index=False, float_format="%.4f", encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        raise CleaningError(f"cannot write {out!r}: {e.strerror or e}", hint="choose a writable path") from e


def cmd_scan(args: argparse.Namespace) -> int:
    from ..data.workspace import Workspace
    from ..review.analysis import compute_scores, find_issues

    t0 = time.monotonic()
    ws = Workspace.open(args.root, state_dir=args.state_dir, refresh=True)
    last = [""]

    def progress(what: str, frac: float) -> None:
        stage = "".join(c for c in what if not (c.isdigit() or c == "/")).strip()
        if not args.quiet and stage != last[0]:
            last[0] = stage
            print(f"[{frac:4.0%}] {what}", file=sys.stderr, flush=True)

    issues = find_issues(ws, progress=progress, include_reviewed=True)
    scores = compute_scores(ws)
    write_csv(issues, ISSUES_CSV_COLUMNS, args.out)
    if args.scores:
        write_csv(scores, SCORES_CSV_COLUMNS, args.scores)
    if not args.quiet:
        counts = issues["issue"].value_counts()
        summary = ", ".join(f"{counts[k]} {k}" for k in counts.index) or "no issues"
        print(f"{len(scores)} images scanned in {time.monotonic() - t0:.0f} s: {summary}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    """Register ``scan`` on the CLI's sub-parsers ."""
    what = "find label errors, off-topic images, duplicates, unreadable and low-quality files; write CSVs"
    p = add_root_command(sub, "scan", what)
    p.add_argument("--out", default="-", metavar="ISSUES.csv",
                   help="ranked issues: path,label,issue,severity,suggested_label,related_path,reason "
                        "(default: standard output)")
    p.add_argument("--scores", default=None, metavar="SCORES.csv",
                   help="per image: path,label,predicted_label,label_issue_score,outlier_score")
    p.add_argument("--quiet", action="store_true", help="no progress or summary on standard error")
    p.set_defaults(func=cmd_scan)
