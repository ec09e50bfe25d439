"""CLI sub-commands over the data set and its decisions: info, relabel, delete, restore, undo, redo,
history, apply, export."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..data.labels import check_new_label
from ..data.workspace import Workspace
from . import add_root_command
from . import say as _say

#: How long a command waits for another process's apply / export / rescan before it refuses (seconds).
CLI_WAIT = 600.0


def _waiting(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _ws(args: argparse.Namespace) -> Workspace:
    return Workspace.open(args.root, state_dir=args.state_dir)


def cmd_info(args: argparse.Namespace) -> int:
    ws = _ws(args)
    # a read-only state folder: show what was recorded at the last rescan
    bad = ws.bad_files() if ws.readonly else ws.refresh(wait=CLI_WAIT, on_wait=_waiting).bad
    df = ws.items_frame()
    live = df[~df["deleted"]]
    info = {
        "root": str(ws.root), "state_dir": str(ws.state_dir), "images": int(len(df)),
        "deleted": int(df["deleted"].sum()), "per_label": {k: int(v) for k, v in live["label"].value_counts().sort_index().items()},
        "bad_files": [{"path": b.path, "reason": b.reason} for b in bad],
        "decisions": ws.store.decision_count(),
    }
    if args.json:
        _say(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        _say(f"{info['root']}: {info['images']} images, {info['deleted']} deleted, "
             f"{len(bad)} unusable files, {info['decisions']} decisions")
        for k, v in info["per_label"].items():
            _say(f"  {k}: {v}")
        for b in bad:
            _say(f"  unusable: {b.path}: {b.reason}")
    return 0


_ALREADY = {"delete": "deleted", "restore": "restored", "keep": "marked as fine"}


def _decide(args: argparse.Namespace, action: str, label: str | None = None) -> int:
    ws = _ws(args)
    ids = [ws.store.find_item(p) for p in args.paths]
    if label is not None:
        check_new_label(label, set(ws.vocab) | set(ws.items_frame()["orig_label"]), args.new_class)
    batch = ws.store.record(ids, action, label=label, source="cli", note=args.note)
    if batch is None:
        _say(f"nothing to change: {', '.join(args.paths)} already "
             f"{'labelled ' + label if label else _ALREADY.get(action, action)}")
    else:
        _say(f"recorded {action}{' → ' + label if label else ''} for {len(args.paths)} image(s) (batch {batch}); "
             "files move on `apply`")
    return 0


def cmd_relabel(args: argparse.Namespace) -> int:
    args.paths = [args.path]
    return _decide(args, "relabel", args.new_label)


def cmd_keep(args: argparse.Namespace) -> int:
    return _decide(args, "keep")


def cmd_delete(args: argparse.Namespace) -> int:
    return _decide(args, "delete")


def cmd_restore(args: argparse.Namespace) -> int:
    return _decide(args, "restore")


def _undo_redo(args: argparse.Namespace, redo: bool) -> int:
    ws = _ws(args)
    done = ws.store.redo() if redo else ws.store.undo()
    word = "redid" if redo else "undid"
    if not done:
        _say(f"nothing to {'redo' if redo else 'undo'}")
        return 0
    for d in done:
        _say(f"{word} {d.action}{' → ' + d.label if d.label else ''}: {d.path}")
    return 0


def cmd_undo(args: argparse.Namespace) -> int:
    return _undo_redo(args, redo=False)


def cmd_redo(args: argparse.Namespace) -> int:
    return _undo_redo(args, redo=True)


def cmd_history(args: argparse.Namespace) -> int:
    ws = _ws(args)
    hist = ws.store.history()
    if args.json:
        _say(json.dumps([d.__dict__ for d in hist], indent=2, ensure_ascii=False))
        return 0
    if not hist:
        _say("no decisions yet")
    for d in hist:
        mark = {"active": " ", "undone": "u", "discarded": "x"}[d.state]
        _say(f"{mark} #{d.seq:<4} batch {d.batch:<4} {d.created_at}  {d.source:<10} {d.action:<8} "
             f"{(d.label or ''):<14} {d.path}{'  — ' + d.note if d.note else ''}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from ..data.files import apply_decisions, plan_apply

    ws = _ws(args)
    plan = plan_apply(ws)
    if args.dry_run:
        for what, rows in (("quarantine", plan.quarantine), ("restore", plan.restore), ("move", plan.move)):
            for _, path, to in rows:
                _say(f"{what}: {path} → {to}")
        _say(f"{plan.n_changes} file(s) would change")
        return 0
    plan = apply_decisions(ws, wait=CLI_WAIT, on_wait=_waiting)
    _say(f"quarantined {len(plan.quarantine)}, restored {len(plan.restore)}, moved {len(plan.move)} "
         f"(quarantine: {ws.quarantine_dir})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..data.files import export_dataset

    ws = _ws(args)
    rep = export_dataset(ws, args.to, wait=CLI_WAIT, on_wait=_waiting)
    _say(f"exported {rep.n_images} images ({rep.n_deleted} deleted left out) to {rep.out}")
    for k, v in rep.per_label.items():
        _say(f"  {k}: {v}")
    return 0


def register(sub: Any) -> None:
    """Add the data-set and decision sub-commands."""
    p = add_root_command(sub, "info", "scan ROOT and show images per class and unusable files")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)
    p = add_root_command(sub, "relabel", "record: the image at PATH belongs to NEW_LABEL")
    p.add_argument("path", metavar="PATH", help="image path relative to ROOT, e.g. dog/img_01.jpg")
    p.add_argument("new_label", metavar="NEW_LABEL")
    p.add_argument("--note", default="", help="why (shown in the history)")
    p.add_argument("--new-class", action="store_true",
                   help="start NEW_LABEL as a class even if one differs from it only in case, spacing or accents")
    p.set_defaults(func=cmd_relabel)
    for name, func, what in (("delete", cmd_delete, "record: delete the images (quarantined on apply)"),
                             ("restore", cmd_restore, "record: bring deleted images back"),
                             ("keep", cmd_keep, "record: the images look fine (off the review queue; "
                                                "shown as `keep` in the history)")):
        p = add_root_command(sub, name, what)
        p.add_argument("paths", metavar="PATH", nargs="+", help="image path(s) relative to ROOT")
        p.add_argument("--note", default="", help="why (shown in the history)")
        p.set_defaults(func=func)
    add_root_command(sub, "undo", "undo the last decision (or bulk batch)").set_defaults(func=cmd_undo)
    add_root_command(sub, "redo", "redo the last undone decision").set_defaults(func=cmd_redo)
    p = add_root_command(sub, "history", "list every decision, oldest first (u = undone, x = discarded)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_history)
    p = add_root_command(sub, "apply", "make the folders match the decisions (deletes go to the quarantine)")
    p.add_argument("--dry-run", action="store_true", help="only list what would move")
    p.set_defaults(func=cmd_apply)
    p = add_root_command(sub, "export", "write a clean copy OUT/<label>/<file> plus OUT/labels.csv")
    p.add_argument("--to", required=True, metavar="OUT", help="a new or empty folder outside ROOT")
    p.set_defaults(func=cmd_export)
