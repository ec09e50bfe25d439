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

import csv
import errno
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ExportError
from .lock import DEFAULT_WAIT, pid_alive
from .store import now_iso
from .tree import name_max

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


def _fit(name: str, limit: int) -> str:
    """``name`` shortened (in its stem, on a character boundary) to at most ``limit`` UTF-8 bytes."""
    if len(name.encode()) <= limit:
        return name
    stem, ext = os.path.splitext(name)
    if len(ext.encode()) > 16:
        stem, ext = name, ""
    room = max(limit - len(ext.encode()), 1)
    return stem.encode()[:room].decode("utf-8", "ignore") + ext


def _free_name(folder: Path, name: str, item_id: str, taken: Iterable[Path] = ()) -> Path:
    """``folder/name`` if free, else ``stem-<id8>.ext``, else ``stem-<id8>-N.ext``.

    Every candidate fits the file system's name limit in bytes (the stem is shortened to leave room
    for the suffix); paths in ``taken`` (held by items in the store) count as used.
    """
    used = set(taken)
    limit = name_max(folder)

    def free(p: Path) -> bool:
        return p not in used and not os.path.lexists(p)

    cand = folder / _fit(name, limit)
    if free(cand):
        return cand
    stem, ext = os.path.splitext(name)
    n = 1
    while True:
        suffix = f"-{item_id[:8]}" + (f"-{n}" if n > 1 else "") + ext
        room = limit - len(suffix.encode())
        cand = folder / (stem.encode()[:room].decode("utf-8", "ignore") + suffix)
        if free(cand):
            return cand
        n += 1


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
    """Settle moves a dead process left pending and remove its unfinished exports.

    Runs only when the workspace lock is free (taken exclusively for the time it runs): a pending
    move or a temporary export folder of a live process is never touched. Returns how many pending
    moves were settled (0 when another process is working).
    """
    with ws.lock.try_exclusive() as free:
        if not free:
            return 0
        pending = ws.store.query("SELECT * FROM file_ops WHERE status='pending'")
        for op in pending:
            _settle(ws, op)
        _clean_stale_exports(ws)
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
    with ws.store.transaction() as c:
        if done:
            c.execute("UPDATE items SET location=?, path=?, qpath=?, mtime_ns=? WHERE item_id=?",
                      (op["new_location"], op["new_path"], op["new_qpath"], dst.stat().st_mtime_ns,  # type: ignore[index]
                       op["item_id"]))  # type: ignore[index]
            c.execute("UPDATE file_ops SET status='done' WHERE op_id=?", (op["op_id"],))  # type: ignore[index]
        else:  # the move never happened: keep the source
            c.execute("UPDATE file_ops SET status='abandoned' WHERE op_id=?", (op["op_id"],))  # type: ignore[index]


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
    taken = {ws.root / r["path"] for r in ws.store.query("SELECT path FROM items WHERE location='root'")}
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


# ---- export ------------------------------------------------------------------------------------
EXPORT_PARTIAL = ".cleaning-export-partial-"
EXPORT_MARKER = "exports-in-progress.txt"
LABELS_CSV_COLUMNS = ["path", "label", "item_id", "orig_path", "orig_label", "sha256", "source_query",
                      "source_url"]


def _clean_stale_exports(ws: Workspace) -> None:
    """Remove temporary export folders listed in the marker file whose writer is dead.

    Called by :func:`recover` while it holds the workspace lock exclusively (so no export of this
    workspace runs); the pid written beside each folder is checked as well.
    """
    marker = ws.state_dir / EXPORT_MARKER
    if not marker.exists():
        return
    alive = []
    for line in marker.read_text().splitlines():
        pid_s, _, path = line.partition("\t") if "\t" in line else ("", "", line)
        p = Path(path)
        if pid_s.isdigit() and pid_alive(int(pid_s)) and int(pid_s) != os.getpid():
            alive.append(line)
            continue
        if p.name.startswith(EXPORT_PARTIAL) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)  # our own unfinished copy
    if alive:
        marker.write_text("".join(a + "\n" for a in alive))
    else:
        marker.unlink()


#: Characters that make a spreadsheet treat a cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: strings starting with ``= + - @`` (or a tab / CR)
    get a leading apostrophe. Numbers and other values are returned as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_safe_csv(path: Path, header: list[str], rows: Iterable[Iterable[object]]) -> None:
    """Write a UTF-8 CSV whose cells are escaped with :func:`safe_cell`."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([safe_cell(v) for v in row] for row in rows)


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


def export_dataset(ws: Workspace, out: str | Path, progress: Callable[[int, int], None] | None = None,
                   wait: float | None = DEFAULT_WAIT, on_wait: Callable[[str], None] | None = None
                   ) -> ExportReport:
    """Write a clean copy of the data set with the current labels: ``OUT/<label>/<file>`` and
    ``OUT/labels.csv`` (path,label,item_id,orig_path,orig_label,sha256,source_query,source_url; cells
    escaped against spreadsheet formulas). Deleted images are left out. The data set is not touched.

    Holds the workspace lock shared (no apply moves a file meanwhile; other exports and rescans may
    run). Every file is opened without following symbolic links and its sha256 checked against the
    store while it is copied, so a file swapped after the last rescan is refused, not exported.

    Raises:
        ExportError: OUT is inside ROOT / the state folder, or exists and is not empty; a file changed
            or was replaced by a link since the last rescan.
        WorkspaceBusy: an apply held the workspace for longer than ``wait`` seconds.
    """
    o = check_export_target(ws, out)
    with ws.lock.hold("export", exclusive=False, wait=wait, on_wait=on_wait):
        o.parent.mkdir(parents=True, exist_ok=True)
        tmp = o.parent / f"{EXPORT_PARTIAL}{o.name}-{uuid.uuid4().hex[:8]}"
        marker = ws.state_dir / EXPORT_MARKER
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\t{tmp}\n")
        try:
            rep = _export_into(ws, tmp, o, progress)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            _unmark(marker, tmp)
        return rep


def _unmark(marker: Path, tmp: Path) -> None:
    try:
        lines = [ln for ln in marker.read_text().splitlines() if not ln.endswith(str(tmp))]
        if lines:
            marker.write_text("".join(ln + "\n" for ln in lines))
        else:
            marker.unlink()
    except OSError:
        pass


def _export_into(ws: Workspace, tmp: Path, o: Path, progress: Callable[[int, int], None] | None
                 ) -> ExportReport:
    with ws.pinned():
        df = ws.items_frame()
    keep = df[~df["deleted"]]
    tmp.mkdir()
    per_label: dict[str, int] = {}
    rows = []
    for n, r in enumerate(keep.itertuples(index=False), 1):
        dst = _free_name(tmp / r.label, Path(r.path).name, r.item_id)
        dst.parent.mkdir(parents=True, exist_ok=True)
        _copy_verified(Path(r.abs_path), dst, r.sha256, r.path)
        rel = dst.relative_to(tmp).as_posix()
        rows.append([rel, r.label, r.item_id, r.path, r.orig_label, r.sha256, r.source_query or "",
                     r.source_url or ""])
        per_label[r.label] = per_label.get(r.label, 0) + 1
        if progress:
            progress(n, len(keep))
    write_safe_csv(tmp / "labels.csv", LABELS_CSV_COLUMNS, rows)
    if o.exists():
        o.rmdir()  # checked empty above
    os.rename(tmp, o)
    return ExportReport(o, len(rows), dict(sorted(per_label.items())), int(df["deleted"].sum()))


def _copy_verified(src: Path, dst: Path, sha256: str, rel: str) -> None:
    """Copy ``src`` to ``dst`` without following a symbolic link, checking the bytes' sha256."""
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ExportError(f"{rel} was replaced by a symbolic link since the last rescan; not exported",
                              "rescan the data set, then export again") from e
        raise
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as f, open(dst, "wb") as g:
        st = os.fstat(f.fileno())
        if not (st.st_mode & 0o170000) == 0o100000:
            raise ExportError(f"{rel} is no longer a regular file; not exported", "rescan, then export again")
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            g.write(chunk)
    if h.hexdigest() != sha256:
        raise ExportError(f"{rel} changed since the last rescan (its sha256 differs); not exported",
                          "rescan the data set, then export again")
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
