"""``python -m cleaning scan ROOT --out ISSUES.csv --scores SCORES.csv``: the ranked queue as CSV files.

ISSUES.csv: ``path,label,issue,severity,suggested_label,related_path,reason,group``, one row per (image,
issue), highest severity first (``group``: the junk-group id shared by the members of one group of
look-alike off-topic images, empty otherwise; ``suggested_label`` is empty on ``outlier`` rows), every non-deleted image (also those marked fine). SCORES.csv:
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

ISSUES_CSV_COLUMNS = ["path", "label", "issue", "severity", "suggested_label", "related_path", "reason", "group"]
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
    from .progress import StageProgress, counting

    t0 = time.monotonic()
    ws = Workspace.open(args.root, state_dir=args.state_dir, refresh=True)
    progress = StageProgress(quiet=args.quiet)
    if args.engine == "ray":  # fill the embedding cache on Ray first; the analysis then reads it
        from ..model.embed import load_or_compute_embeddings

        load_or_compute_embeddings(ws, engine="ray", address=args.address, workers=args.workers,
                                   progress=counting(progress, "embedding on Ray", 0.0, 0.5))
    issues = find_issues(ws, progress=progress, include_reviewed=True)
    scores = compute_scores(ws)
    progress.close()
    write_csv(issues, ISSUES_CSV_COLUMNS, args.out)
    if args.scores:
        write_csv(scores, SCORES_CSV_COLUMNS, args.scores)
    if not args.quiet:
        counts = issues["issue"].value_counts()
        summary = ", ".join(f"{counts[k]} {k}" for k in counts.index) or "no issues"
        print(f"{len(scores)} images scanned in {time.monotonic() - t0:.0f} s: {summary}", file=sys.stderr)
    return 0


def cmd_autofix(args: argparse.Namespace) -> int:
    from ..data.workspace import Workspace
    from ..review.analysis import load_or_find_issues
    from ..review.autofix import KIND_NAMES, plan_autofix, record_autofix

    ws = Workspace.open(args.root, state_dir=args.state_dir, refresh=True)
    items = ws.items_frame()
    plan = plan_autofix(load_or_find_issues(ws), items, args.level)
    paths = dict(zip(items["item_id"], items["path"]))
    for line in plan.lines():
        print(line, flush=True)
    for step in plan.steps:
        for iid, action, label in step.decisions:
            print(f"    {step.kind:<8} {action:<7} {paths.get(iid, iid)}{' → ' + label if label else ''}", flush=True)
    if args.dry_run:
        print("dry run: nothing recorded", flush=True)
        return 0
    batch = record_autofix(ws.store, plan)
    if batch is None:
        print("nothing to change", flush=True)
    else:
        kinds = ", ".join(f"{s.n} {KIND_NAMES[s.kind].split(' ', 1)[0]}" for s in plan.steps if s.n)
        print(f"recorded {plan.n_images} decision(s) as batch {batch} ({kinds}); one `python -m cleaning undo "
              f"{args.root}` takes them all back; files move on `apply`", flush=True)
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
    add_engine_arguments(p)
    p.set_defaults(func=cmd_scan)
    p = add_root_command(sub, "autofix", "clean the obvious in one undoable batch: delete off-topic images and "
                                         "junk groups, relabel confident label errors, drop extra duplicate copies")
    p.add_argument("--level", choices=["cautious", "balanced", "bold"], default="cautious",
                   help="how sure a fix must be (default: cautious)")
    p.add_argument("--dry-run", action="store_true", help="only print the plan; record nothing")
    p.set_defaults(func=cmd_autofix)


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """``--engine local|ray``, ``--address`` and ``--workers`` for the embedding step (embed and scan)."""
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="where images are embedded: this process (default) or a Ray Data job (docs/SCALE.md)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --engine ray: a running Ray cluster (e.g. ray://head:10001 or auto); "
                        "default a local Ray instance for this run")
    p.add_argument("--workers", type=int, default=None,
                   help="with --engine ray: worker actors (one backbone each; default one per CPU)")
