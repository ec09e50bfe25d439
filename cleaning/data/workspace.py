"""A workspace = a data-set folder ROOT + its state folder (store, quarantine, caches, runs).

The state folder is a sibling of ROOT (``ROOT.cleaning/``), never inside it, so ROOT stays a clean
folder-per-class tree that fastai and torchvision read as they always did.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import DatasetError
from .images import ImageInfo
from .store import Store, now_iso
from .tree import BadFile, check_root, walk_tree

STATE_SUFFIX = ".cleaning"


def default_state_dir(root: Path) -> Path:
    env = os.environ.get("CLEANING_STATE_DIR")
    if env:
        return Path(env).expanduser().resolve() / (root.name + STATE_SUFFIX)
    return root.parent / (root.name + STATE_SUFFIX)


def make_item_id(orig_path: str, sha256: str) -> str:
    """A stable id for an image: it never changes when the file is relabelled, moved or quarantined."""
    return hashlib.sha1(f"{orig_path}\0{sha256}".encode()).hexdigest()[:16]


@dataclass
class RefreshReport:
    n_images: int
    new: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    bad: list[BadFile] = field(default_factory=list)


class Workspace:
    """ROOT, its state folder and store. Open with :meth:`Workspace.open`."""

    def __init__(self, root: Path, state_dir: Path) -> None:
        self.root = root
        self.state_dir = state_dir
        self.cache_dir = state_dir / "cache"
        self.quarantine_dir = state_dir / "quarantine"
        self.runs_dir = state_dir / "runs"
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DatasetError(f"cannot create the state folder {str(state_dir)!r}: {e.strerror}",
                               "pass --state-dir to a writable folder outside ROOT") from e
        self.store = Store(state_dir / "store.sqlite")

    @classmethod
    def open(cls, root: str | Path, state_dir: str | Path | None = None, refresh: bool = False) -> Workspace:
        """Open (creating the state folder if needed) the workspace of data set ``root``.

        Raises:
            DatasetError: ROOT missing / not a folder, or a state folder inside ROOT.
        """
        r = check_root(root)
        sd = Path(state_dir).expanduser().resolve() if state_dir else default_state_dir(r)
        if sd == r or r in sd.parents:
            raise DatasetError("the state folder must not be inside the data set",
                               "choose a --state-dir outside ROOT")
        ws = cls(r, sd)
        from .files import recover  # files is the only module that moves files

        recover(ws)
        if refresh or not ws.store.query("SELECT 1 FROM meta WHERE key='last_scan'"):
            ws.refresh()
        return ws

    # ---- refreshing from disk ----------------------------------------------------------------------------
    def refresh(self, progress: Callable[[int, int], None] | None = None) -> RefreshReport:
        """Reconcile the files on disk with the store: new files become items, files moved by hand
        are followed (a move to another class folder is recorded as a relabel with source ``disk``),
        vanished files are marked missing, unusable files are listed with their reason."""
        st = self.store
        rows = st.query("SELECT * FROM items")
        known = {r["path"]: (r["size"], r["mtime_ns"], _info(r)) for r in rows if r["location"] == "root"}
        result = walk_tree(self.root, known, progress)
        by_path = {r["path"]: r for r in rows if r["location"] != "quarantine"}
        seen = {im.path for im in result.images}
        lost = {r["item_id"]: r for p, r in by_path.items() if p not in seen}
        lost_by_sha: dict[str, list[str]] = {}
        for iid, r in lost.items():
            lost_by_sha.setdefault(r["sha256"], []).append(iid)
        report = RefreshReport(len(result.images), bad=result.bad)
        relabels: list[tuple[str, str]] = []
        state = st.current()
        ts = now_iso()
        with st.transaction() as c:
            for im in result.images:
                i = im.info
                vals = (im.size, im.mtime_ns, i.width, i.height, i.format, i.mode, i.n_frames, i.sha256, i.phash)
                old = by_path.get(im.path)
                if old is not None:
                    c.execute("UPDATE items SET size=?, mtime_ns=?, width=?, height=?, format=?, mode=?, "
                              "n_frames=?, sha256=?, phash=?, location='root' WHERE item_id=?",
                              (*vals, old["item_id"]))
                    continue
                candidates = lost_by_sha.get(i.sha256) or []
                if candidates:  # moved or renamed by hand
                    iid = candidates.pop(0)
                    lost.pop(iid, None)
                    c.execute("UPDATE items SET path=?, location='root', qpath=NULL, size=?, mtime_ns=?, "
                              "width=?, height=?, format=?, mode=?, n_frames=?, sha256=?, phash=? "
                              "WHERE item_id=?", (im.path, *vals, iid))
                    report.moved.append(im.path)
                    if state[iid].label != im.label:
                        relabels.append((iid, im.label))
                    continue
                iid = make_item_id(im.path, i.sha256)
                c.execute("INSERT OR REPLACE INTO items(item_id, path, location, orig_path, orig_label, size, "
                          "mtime_ns, width, height, format, mode, n_frames, sha256, phash, first_seen) "
                          "VALUES(?,?, 'root', ?,?,?,?,?,?,?,?,?,?,?,?)",
                          (iid, im.path, im.path, im.label, *vals, ts))
                report.new.append(im.path)
            for iid, r in lost.items():
                c.execute("UPDATE items SET location='missing' WHERE item_id=?", (iid,))
                report.missing.append(r["path"])
            c.execute("DELETE FROM bad_files")
            c.executemany("INSERT OR REPLACE INTO bad_files VALUES(?,?,?)",
                          [(b.path, b.reason, b.kind) for b in result.bad])
            c.execute("INSERT OR REPLACE INTO meta VALUES('last_scan', ?)", (ts,))
        for iid, label in relabels:
            st.record([iid], "relabel", label=label, source="disk", note="moved to another folder outside the app")
        return report

    # ---- views -------------------------------------------------------------------------------
    def abs_path(self, row: dict | pd.Series) -> Path:
        if row["location"] == "quarantine" and row["qpath"]:
            return self.state_dir / str(row["qpath"])
        return self.root / str(row["path"])

    def items_frame(self, include_deleted: bool = True) -> pd.DataFrame:
        """One row per image the store knows that exists on disk (missing ones are left out).

        Columns: item_id, path, abs_path, label (current), orig_label, folder_label, deleted, kept,
        location, width, height, format, sha256, phash, source_query, source_url, added_at.
        Sorted by path.
        """
        rows = self.store.query("SELECT * FROM items WHERE location != 'missing' ORDER BY path")
        state = self.store.current()
        recs = []
        for r in rows:
            s = state[r["item_id"]]
            recs.append({
                "item_id": r["item_id"], "path": r["path"], "abs_path": str(self.abs_path(r)),
                "label": s.label, "orig_label": r["orig_label"], "folder_label": r["path"].split("/", 1)[0],
                "deleted": s.deleted, "kept": s.kept, "location": r["location"],
                "width": r["width"], "height": r["height"], "format": r["format"], "n_frames": r["n_frames"],
                "sha256": r["sha256"], "phash": r["phash"], "source_query": r["source_query"],
                "source_url": r["source_url"], "added_at": r["added_at"],
            })
        cols = ["item_id", "path", "abs_path", "label", "orig_label", "folder_label", "deleted", "kept",
                "location", "width", "height", "format", "n_frames", "sha256", "phash", "source_query",
                "source_url", "added_at"]
        df = pd.DataFrame.from_records(recs, columns=cols)
        if not include_deleted:
            df = df[~df["deleted"]].reset_index(drop=True)
        return df

    def bad_files(self) -> list[BadFile]:
        return [BadFile(r["path"], r["reason"], r["kind"])
                for r in self.store.query("SELECT * FROM bad_files ORDER BY path")]

    @property
    def vocab(self) -> list[str]:
        """Sorted labels of the images on disk that are not deleted."""
        live = {r[0] for r in self.store.query("SELECT item_id FROM items WHERE location!='missing'")}
        return sorted({s.label for i, s in self.store.current().items() if i in live and not s.deleted})

    def item_id_for_path(self, path: str) -> str:
        return self.store.find_item(path)


def _info(r: object) -> ImageInfo:
    return ImageInfo(r["width"], r["height"], r["format"], r["mode"], r["sha256"], r["phash"],  # type: ignore[index]
                     r["n_frames"] or 1)  # type: ignore[index]
