"""The one module that moves image files. Nothing here ever unlinks a user's image.

* :func:`apply_decisions` makes the folders match the decisions: deleted images move into the
  quarantine (``STATE/quarantine/<item_id>/<name>``), restored ones move back, relabelled ones move
  into their new class folder under a collision-safe name.
* :func:`export_dataset` writes a clean copy ``OUT/<label>/<file>`` plus ``OUT/labels.csv``.

Concurrency (see docs/DESIGN.md, "Concurrency"): apply holds the workspace lock exclusively, export
holds it shared, :func:`recover` runs only when nobody holds it, so it never touches a live process's work.

Crash safety: every move is written to the ``file_ops`` journal (pending) before it happens and
marked done in the same transaction that updates the item's path; :func:`recover` (run whenever a
workspace opens) settles pending moves by looking at which side of the move exists. Exports are
built in a temporary sibling folder and renamed into place at the end, so a killed export leaves
no half-written OUT.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .lock import DEFAULT_WAIT, pid_alive
from .tree import free_name as _free_name

if TYPE_CHECKING:
    from .workspace import Workspace


@dataclass
class ApplyPlan:
    """What :func:`apply_decisions` will do: lists of ``(item_id, from_path, to_description)``."""

    quarantine: list[tuple[str, str, str]] = field(default_factory=list)
    restore: list[tuple[str, str, str]] = field(default_factory=list)
    move: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def n_changes(self) -> int:
        return len(self.quarantine) + len(self.restore) + len(self.move)


def plan_apply(ws: Workspace) -> ApplyPlan:
    """Which files :func:`apply_decisions` would move, without moving anything."""
    plan = ApplyPlan()
    df = ws.items_frame()
    for r in df.itertuples(index=False):
        if r.deleted and r.location == "root":
            plan.quarantine.append((r.item_id, r.path, "quarantine"))
        elif not r.deleted and r.location == "quarantine":
            plan.restore.append((r.item_id, r.path, f"{r.label}/"))
        elif not r.deleted and r.location == "root" and r.folder_label != r.label:
            plan.move.append((r.item_id, r.path, f"{r.label}/"))
    return plan


def _move(src: Path, dst: Path) -> None:
    """Move a file; across file systems copy to a temporary name, fsync, rename, then drop the source."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        tmp = dst.with_name(dst.name + ".partial")
        shutil.copy2(src, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.rename(tmp, dst)
        try:
            os.remove(src)  # the bytes now live at dst: this completes a move, it destroys nothing
        except OSError:
            os.remove(dst)  # e.g. a read-only ROOT: take our copy back so the file exists exactly once
            raise


def _do_op(ws: Workspace, item_id: str, src: Path, dst: Path, location: str, path: str,
           qpath: str | None) -> None:
    op = ws.store.journal_move(item_id, src, dst, location, path, qpath)
    _move(src, dst)
    ws.store.finish_move(op, item_id, location, path, qpath, dst.stat().st_mtime_ns)


def recover(ws: Workspace) -> int:
    """Settle moves a dead process left pending and remove its unfinished exports.

    Runs only when the workspace lock is free (taken exclusively for the time it runs): a pending
    move or a temporary export folder of a live process is never touched. Returns how many pending
    moves were settled (0 when another process is working).
    """
    with ws.lock.try_exclusive() as free:
        if not free:
            return 0
        pending = ws.store.pending_moves()
        for op in pending:
            _settle(ws, op)
        from .export import clean_stale_exports

        clean_stale_exports(ws)
        remove_stale_part_files(ws.root)
        return len(pending)


def _settle(ws: Workspace, op: object) -> None:
    src, dst = Path(op["src"]), Path(op["dst"])  # type: ignore[index]
    partial = dst.with_name(dst.name + ".partial")
    if partial.exists():
        partial.unlink()  # our own half-written copy; the source is intact
    done = dst.exists() and not src.exists()
    if dst.exists() and src.exists() and _same_bytes(src, dst):
        # a cross-device move died between the copy (complete: it was fsynced, then renamed into
        # place) and removing the source: finish it, or the source stays as an untracked second copy
        try:
            os.remove(src)
            done = True
        except OSError:
            os.remove(dst)  # the source cannot go (read-only): drop our identical copy instead
    if done:
        ws.store.finish_move(op["op_id"], op["item_id"], op["new_location"], op["new_path"],  # type: ignore[index]
                             op["new_qpath"], dst.stat().st_mtime_ns)  # type: ignore[index]
    else:  # the move never happened: keep the source
        ws.store.abandon_move(op["op_id"])  # type: ignore[index]


def _same_bytes(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and _sha256(a) == _sha256(b)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: Temporary download files: ``.<name>.<pid>-<thread>.part`` (older versions: ``.<name>.<thread>.part``).
PART_RE = re.compile(r"^\..+\.(?:(\d+)-)?\d+\.part$")
#: A part file of the old naming (no pid) is removed once it is this old (seconds).
PART_MAX_AGE = 600.0


def remove_stale_part_files(root: Path) -> int:
    """Remove temporary download files in ROOT's class folders left by a killed scrape.

    A part file whose writer (pid in its name) is alive is left alone. Returns how many were removed.
    """
    n = 0
    try:
        folders = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return 0
    for d in folders:
        try:
            entries = list(os.scandir(d.path))
        except OSError:
            continue
        for e in entries:
            m = PART_RE.match(e.name)
            if not m or not e.is_file(follow_symlinks=False):
                continue
            pid = m.group(1)
            try:
                stale = (not pid_alive(int(pid))) if pid else time.time() - e.stat().st_mtime > PART_MAX_AGE
                if stale:
                    os.remove(e.path)  # our own unfinished download, never a user's image
                    n += 1
            except OSError:
                continue
    return n


def apply_decisions(ws: Workspace, progress: Callable[[int, int], None] | None = None,
                    wait: float | None = DEFAULT_WAIT, on_wait: Callable[[str], None] | None = None
                    ) -> ApplyPlan:
    """Make the folders match the decisions (quarantine deletes, restore, move relabels).

    Holds the workspace lock exclusively: a second apply (or an export, rescan or scan) waits for
    this one, up to ``wait`` seconds, then refuses. Returns the plan that was carried out.
    Idempotent: a second call moves nothing.

    Raises:
        WorkspaceBusy: another process held the workspace for longer than ``wait`` seconds.
    """
    with ws.lock.hold("apply", exclusive=True, wait=wait, on_wait=on_wait):
        return _apply_locked(ws, progress)


def _apply_locked(ws: Workspace, progress: Callable[[int, int], None] | None) -> ApplyPlan:
    plan = plan_apply(ws)
    df = ws.items_frame().set_index("item_id")
    taken = {ws.root / p for p in ws.store.root_paths()}
    total, done = plan.n_changes, 0
    for item_id, _, _ in plan.quarantine:
        r = df.loc[item_id]
        name = Path(r["path"]).name
        qpath = f"quarantine/{item_id}/{name}"
        _do_op(ws, item_id, Path(r["abs_path"]), ws.state_dir / qpath, "quarantine", r["path"], qpath)
        taken.discard(Path(r["abs_path"]))
        done += 1
        if progress:
            progress(done, total)
    for item_id, _, _ in plan.restore + plan.move:
        r = df.loc[item_id]
        folder = ws.root / r["label"]
        dst = _free_name(folder, Path(r["path"]).name, item_id, taken)
        _do_op(ws, item_id, Path(r["abs_path"]), dst, "root", dst.relative_to(ws.root).as_posix(), None)
        taken.discard(Path(r["abs_path"]))
        taken.add(dst)
        done += 1
        if progress:
            progress(done, total)
    for d in ws.quarantine_dir.glob("*") if ws.quarantine_dir.exists() else []:
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()  # empty per-item quarantine folder left by a restore
    return plan


# the export lives in its own module; these names stay importable from here
from .export import (  # noqa: E402
    EXPORT_PARTIAL,
    ExportReport,
    check_export_target,
    export_dataset,
    safe_cell,
    write_safe_csv,
)

__all__ = ["EXPORT_PARTIAL", "ApplyPlan", "ExportReport", "apply_decisions", "check_export_target",
           "export_dataset", "plan_apply", "recover", "remove_stale_part_files", "safe_cell", "write_safe_csv"]
