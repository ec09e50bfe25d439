"""The one module that moves image files. Nothing here ever unlinks a user's image.

* :func:`apply_decisions` makes the folders match the decisions: deleted images move into the
  quarantine (``STATE/quarantine/<item_id>/<name>``), restored ones move back, relabelled ones move
  into their new class folder under a collision-safe name.
* :func:`export_dataset` writes a clean copy ``OUT/<label>/<file>`` plus ``OUT/labels.csv``.

Crash safety: every move is written to the ``file_ops`` journal (pending) before it happens and
marked done in the same transaction that updates the item's path; :func:`recover` (run whenever a
workspace opens) settles pending moves by looking at which side of the move exists. Exports are
built in a temporary sibling folder and renamed into place at the end, so a killed export leaves
no half-written OUT.
"""

from __future__ import annotations

import csv
import errno
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ExportError
from .store import now_iso

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


def _free_name(folder: Path, name: str, item_id: str) -> Path:
    """``folder/name`` if free, else ``stem-<id8>.ext``, else ``stem-<id8>-N.ext``."""
    cand = folder / name
    if not cand.exists():
        return cand
    stem, ext = os.path.splitext(name)
    cand = folder / f"{stem}-{item_id[:8]}{ext}"
    n = 2
    while cand.exists():
        cand = folder / f"{stem}-{item_id[:8]}-{n}{ext}"
        n += 1
    return cand


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
        os.remove(src)  # the bytes now live at dst: this completes a move, it destroys nothing


def _do_op(ws: Workspace, item_id: str, src: Path, dst: Path, location: str, path: str,
           qpath: str | None) -> None:
    st = ws.store
    with st.transaction() as c:
        op = c.execute("INSERT INTO file_ops(item_id, src, dst, new_location, new_path, new_qpath, created_at) "
                       "VALUES(?,?,?,?,?,?,?)", (item_id, str(src), str(dst), location, path, qpath, now_iso())
                       ).lastrowid
    _move(src, dst)
    with st.transaction() as c:
        c.execute("UPDATE items SET location=?, path=?, qpath=?, mtime_ns=? WHERE item_id=?",
                  (location, path, qpath, dst.stat().st_mtime_ns, item_id))
        c.execute("UPDATE file_ops SET status='done' WHERE op_id=?", (op,))


def recover(ws: Workspace) -> int:
    """Settle moves a killed process left pending; returns how many were found."""
    pending = ws.store.query("SELECT * FROM file_ops WHERE status='pending'")
    for op in pending:
        src, dst = Path(op["src"]), Path(op["dst"])
        partial = dst.with_name(dst.name + ".partial")
        if partial.exists():
            partial.unlink()  # our own half-written copy; the source is intact
        if dst.exists() and not src.exists():
            with ws.store.transaction() as c:
                c.execute("UPDATE items SET location=?, path=?, qpath=? WHERE item_id=?",
                          (op["new_location"], op["new_path"], op["new_qpath"], op["item_id"]))
                c.execute("UPDATE file_ops SET status='done' WHERE op_id=?", (op["op_id"],))
        else:  # the move never happened (or both exist after a cross-device copy: keep the source)
            with ws.store.transaction() as c:
                c.execute("UPDATE file_ops SET status='abandoned' WHERE op_id=?", (op["op_id"],))
    _clean_stale_exports(ws)
    return len(pending)


def apply_decisions(ws: Workspace, progress: Callable[[int, int], None] | None = None) -> ApplyPlan:
    """Make the folders match the decisions (quarantine deletes, restore, move relabels).

    Returns the plan that was carried out. Idempotent: a second call moves nothing.
    """
    plan = plan_apply(ws)
    df = ws.items_frame().set_index("item_id")
    total, done = plan.n_changes, 0
    for item_id, _, _ in plan.quarantine:
        r = df.loc[item_id]
        name = Path(r["path"]).name
        qpath = f"quarantine/{item_id}/{name}"
        _do_op(ws, item_id, Path(r["abs_path"]), ws.state_dir / qpath, "quarantine", r["path"], qpath)
        done += 1
        if progress:
            progress(done, total)
    for item_id, _, _ in plan.restore + plan.move:
        r = df.loc[item_id]
        folder = ws.root / r["label"]
        dst = _free_name(folder, Path(r["path"]).name, item_id)
        _do_op(ws, item_id, Path(r["abs_path"]), dst, "root", dst.relative_to(ws.root).as_posix(), None)
        done += 1
        if progress:
            progress(done, total)
    for d in ws.quarantine_dir.glob("*") if ws.quarantine_dir.exists() else []:
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()  # empty per-item quarantine folder left by a restore
    return plan


# ---- export ------------------------------------------------------------------------------------
EXPORT_PARTIAL = ".cleaning-export-partial-"


def _clean_stale_exports(ws: Workspace) -> None:
    marker = ws.state_dir / "exports-in-progress.txt"
    if not marker.exists():
        return
    for line in marker.read_text().splitlines():
        p = Path(line)
        if p.name.startswith(EXPORT_PARTIAL) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)  # our own unfinished copy
    marker.unlink()


def check_export_target(ws: Workspace, out: str | Path) -> Path:
    """Resolve OUT and refuse unsafe targets (inside ROOT or the state folder, or not empty)."""
    o = Path(out).expanduser().resolve()
    for inside, what in ((ws.root, "the data set"), (ws.state_dir, "the state folder")):
        if o == inside or inside in o.parents:
            raise ExportError(f"export folder {str(o)!r} is inside {what}", "choose a folder outside ROOT")
    if o in ws.root.parents:
        raise ExportError(f"export folder {str(o)!r} contains the data set", "choose an empty or new folder")
    if o.exists() and (not o.is_dir() or any(o.iterdir())):
        raise ExportError(f"export folder {str(o)!r} exists and is not empty", "choose a new or empty folder")
    return o


@dataclass
class ExportReport:
    out: Path
    n_images: int
    per_label: dict[str, int]
    n_deleted: int


def export_dataset(ws: Workspace, out: str | Path, progress: Callable[[int, int], None] | None = None
                   ) -> ExportReport:
    """Write a clean copy of the data set with the current labels: ``OUT/<label>/<file>`` and
    ``OUT/labels.csv`` (path,label,item_id,orig_path,orig_label,sha256,source_query,source_url).
    Deleted images are left out. The data set itself is not touched.

    Raises:
        ExportError: OUT is inside ROOT / the state folder, or exists and is not empty.
    """
    o = check_export_target(ws, out)
    o.parent.mkdir(parents=True, exist_ok=True)
    tmp = o.parent / f"{EXPORT_PARTIAL}{o.name}-{uuid.uuid4().hex[:8]}"
    marker = ws.state_dir / "exports-in-progress.txt"
    with open(marker, "a") as f:
        f.write(f"{tmp}\n")
    df = ws.items_frame()
    keep = df[~df["deleted"]]
    tmp.mkdir()
    per_label: dict[str, int] = {}
    rows = []
    for n, r in enumerate(keep.itertuples(index=False), 1):
        dst = _free_name(tmp / r.label, Path(r.path).name, r.item_id)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(r.abs_path, dst)
        rel = dst.relative_to(tmp).as_posix()
        rows.append([rel, r.label, r.item_id, r.path, r.orig_label, r.sha256, r.source_query or "",
                     r.source_url or ""])
        per_label[r.label] = per_label.get(r.label, 0) + 1
        if progress:
            progress(n, len(keep))
    with open(tmp / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "item_id", "orig_path", "orig_label", "sha256", "source_query",
                    "source_url"])
        w.writerows(rows)
    if o.exists():
        o.rmdir()  # checked empty above
    os.rename(tmp, o)
    marker.unlink(missing_ok=True)
    return ExportReport(o, len(rows), dict(sorted(per_label.items())), int(df["deleted"].sum()))
