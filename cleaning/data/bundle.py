"""Data out as files a browser can download: the cleaned data set as a zip, the decisions log and the
issue table as CSV.

The zip is the ordinary export (:func:`cleaning.files.export_dataset`: ``<label>/<file>`` plus
``labels.csv`` whose first columns are ``path,label``) written to a temporary folder and then packed
file by file into a zip on disk, so memory stays flat whatever the data set's size.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .export import ExportReport, export_dataset, safe_frame
from .store import Decision

if TYPE_CHECKING:
    from .workspace import Workspace

#: Already-compressed formats are stored, everything else deflated.
_STORED = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".mpo"})


def export_zip(ws: Workspace, out_zip: str | Path, scratch: str | Path | None = None,
               progress: Callable[[int, int], None] | None = None) -> ExportReport:
    """Write the cleaned data set as the zip ``out_zip`` (replaced if it exists).

    Args:
        scratch: a folder outside ROOT and its state folder for the temporary export (default: ROOT's
            parent). The temporary export is removed afterwards.
        progress: ``progress(done, total)`` over copying and zipping (2 × the images).
    Returns:
        The export's report (its ``out`` is the zip).
    Raises:
        ExportError: the scratch folder is unsafe (inside ROOT or the state folder).
    """
    out_zip = Path(out_zip)
    base = Path(scratch) if scratch else ws.root.parent
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".zip-export-", dir=base))
    try:
        half = (lambda i, n: progress(i, 2 * n)) if progress else None
        rep = export_dataset(ws, tmp / "export", progress=half)
        files = sorted(p for p in rep.out.rglob("*") if p.is_file())
        out_zip.parent.mkdir(parents=True, exist_ok=True)
        part = out_zip.with_name(out_zip.name + ".partial")
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for n, p in enumerate(files, 1):
                arc = p.relative_to(rep.out).as_posix()
                kind = zipfile.ZIP_STORED if p.suffix.lower() in _STORED else zipfile.ZIP_DEFLATED
                zf.write(p, arc, compress_type=kind)
                if progress:
                    progress(rep.n_images + min(n, rep.n_images), 2 * rep.n_images)
        part.replace(out_zip)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temporary copy
    return ExportReport(out_zip, rep.n_images, rep.per_label, rep.n_deleted)


def decisions_frame(ws: Workspace) -> pd.DataFrame:
    """Every decision, oldest first: seq, batch, item_id, action, label, source, note, created_at, state,
    path (the item's current path)."""
    cols = [f.name for f in fields(Decision)]
    return pd.DataFrame([[getattr(d, c) for c in cols] for d in ws.store.history()], columns=cols)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """A frame as UTF-8 CSV bytes without the index (lists and dicts as JSON-ish text; text cells escaped
    against spreadsheet formulas)."""
    buf = io.StringIO()
    safe_frame(df).to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)  # no cell runs as a spreadsheet formula
    return buf.getvalue().encode("utf-8")
