"""Exporting a clean copy of the data set: ``OUT/<label>/<file>`` plus ``OUT/labels.csv``.

The export is built in a temporary sibling folder and renamed into place at the end, so a killed
export leaves no half-written OUT; :func:`cleaning.data.files.recover` removes a dead export's
temporary folder (never a live one: an export holds the workspace lock shared). Every file is read
without following links and checked against its sha256. CSV cells a spreadsheet would run as formulas
are escaped (:func:`safe_cell`), here and in every CSV the project writes.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import ExportError
from .lock import DEFAULT_WAIT, pid_alive
from .tree import free_name as _free_name

if TYPE_CHECKING:
    from .workspace import Workspace

EXPORT_PARTIAL = ".cleaning-export-partial-"
EXPORT_MARKER = "exports-in-progress.txt"
LABELS_CSV_COLUMNS = ["path", "label", "item_id", "orig_path", "orig_label", "sha256", "source_query",
                      "source_url"]


def clean_stale_exports(ws: Workspace) -> None:
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


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells are escaped with :func:`safe_cell` (numeric columns untouched)."""
    out = df.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]):
            out[c] = out[c].map(safe_cell)
    return out


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
