"""A workspace = a data-set folder ROOT + its state folder (store, quarantine, caches, runs).

The state folder is a sibling of ROOT (``ROOT.cleaning/``), never inside it, so ROOT stays a clean
folder-per-class tree that fastai and torchvision read as they always did.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import DatasetError
from .images import ImageInfo
from .lock import DEFAULT_WAIT, WorkspaceLock
from .store import Store, now_iso
from .store_items import (
    fold_decisions,
    make_item_id,  # noqa: F401  (re-exported)
)
from .tree import BadFile, check_root, walk_tree

STATE_SUFFIX = ".cleaning"


def default_state_dir(root: Path) -> Path:
    env = os.environ.get("CLEANING_STATE_DIR")
    if env:
        return Path(env).expanduser().resolve() / (root.name + STATE_SUFFIX)
    return root.parent / (root.name + STATE_SUFFIX)


@dataclass
class RefreshReport:
    n_images: int
    new: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    bad: list[BadFile] = field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    """One consistent view of the data set: the items frame and unusable files at store version ``version``."""

    version: str
    items: pd.DataFrame
    bad: list[BadFile]


class Workspace:
    """ROOT, its state folder and store. Open with :meth:`Workspace.open`.

    A state folder that cannot be written opens read-only: views and the history work, anything that
    records or moves raises :class:`~cleaning.errors.CleaningError`.
    """

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
        self.readonly = not os.access(state_dir, os.W_OK) or (
            (state_dir / "store.sqlite").exists() and not os.access(state_dir / "store.sqlite", os.W_OK))
        self.lock = WorkspaceLock(state_dir)
        self.store = Store(state_dir / "store.sqlite", readonly=self.readonly)
        self._pin = threading.local()
        self._last_items: tuple[str, pd.DataFrame] | None = None  # (items key, the newest frame built)

    @classmethod
    def open(cls, root: str | Path, state_dir: str | Path | None = None, refresh: bool = False) -> Workspace:
        """Open (creating the state folder if needed) the workspace of data set ``root``.

        Settles what a dead process left half done (only when no live process holds the workspace
        lock: the work of a live process is never touched), then rescans if asked or never scanned.

        Raises:
            DatasetError: ROOT missing / not a folder, or a state folder inside ROOT.
        """
        r = check_root(root)
        sd = Path(state_dir).expanduser().resolve() if state_dir else default_state_dir(r)
        if sd == r or r in sd.parents:
            raise DatasetError("the state folder must not be inside the data set",
                               "choose a --state-dir outside ROOT")
        ws = cls(r, sd)
        if ws.readonly:
            return ws
        from .files import recover  # files is the only module that moves files

        recover(ws)
        if refresh or not ws.store.has_refreshed():
            ws.refresh()
        return ws

    # ---- scanning ----------------------------------------------------------------------------
    def refresh(self, progress: Callable[[int, int], None] | None = None, wait: float | None = DEFAULT_WAIT,
                on_wait: Callable[[str], None] | None = None) -> RefreshReport:
        """Reconcile the files on disk with the store (the folder rescan).

        New files become items, files moved by hand are followed (a move to another class folder is
        recorded as a relabel with source ``disk``), vanished files are marked missing, unusable files
        are listed with their reason. Runs under the shared workspace lock (never during an apply, so
        no file is seen mid-move) and writes in one transaction that re-reads the items, so two
        rescans at once cannot add an image twice. Provenance is never overwritten.

        Raises:
            WorkspaceBusy: an apply held the workspace for longer than ``wait`` seconds.
        """
        from .files import remove_stale_part_files

        with self.lock.hold("rescan", exclusive=False, wait=wait, on_wait=on_wait):
            remove_stale_part_files(self.root)
            st = self.store
            known = {r["path"]: (r["size"], r["mtime_ns"], _info(r))
                     for r in st.item_rows("root")}
            result = walk_tree(self.root, known, progress)
            done = st.write_refresh(self.root, result.images, result.bad, now_iso())
            report = RefreshReport(len(result.images), done.new, done.moved, done.missing, bad=result.bad)
            relabels = done.relabels
            for iid, label in relabels:
                st.record([iid], "relabel", label=label, source="disk",
                          note="moved to another folder outside the app")
        return report

    # ---- one consistent view -----------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The items frame, unusable files and store version read in one read transaction."""
        pinned = getattr(self._pin, "snap", None)
        if pinned is not None:
            return pinned
        with self.store.read_transaction():
            return Snapshot(self.store.version_key(), self._items_frame(), self._bad_files())

    @contextmanager
    def pinned(self) -> Iterator[Snapshot]:
        """While inside, this thread's :meth:`items_frame`, :meth:`bad_files`, :attr:`vocab` and
        :meth:`version_key` answer from one snapshot, so a long computation (a scan) sees one data-set
        version even while decisions are recorded; its result is labelled with that version."""
        if getattr(self._pin, "snap", None) is not None:
            yield self._pin.snap
            return
        self._pin.snap = self.snapshot()
        try:
            yield self._pin.snap
        finally:
            self._pin.snap = None

    def version_key(self) -> str:
        """The store version (or the pinned snapshot's)."""
        pinned = getattr(self._pin, "snap", None)
        return pinned.version if pinned is not None else self.store.version_key()

    # ---- views -------------------------------------------------------------------------------
    def abs_path(self, row: dict | pd.Series) -> Path:
        if row["location"] == "quarantine" and row["qpath"]:
            return self.state_dir / str(row["qpath"])
        return self.root / str(row["path"])

    def items_frame(self, include_deleted: bool = True) -> pd.DataFrame:
        """One row per image the store knows that exists on disk (missing ones are left out).

        Columns: item_id, path, abs_path, label (current), orig_label, folder_label, deleted, kept,
        location, width, height, format, sha256, phash, source_query, source_url, added_at.
        Sorted by path. Inside :meth:`pinned`, the pinned snapshot's rows.
        """
        pinned = getattr(self._pin, "snap", None)
        df = pinned.items.copy() if pinned is not None else self._items_frame()
        if not include_deleted:
            df = df[~df["deleted"]].reset_index(drop=True)
        return df

    def _refold(self, prev: pd.DataFrame) -> pd.DataFrame:
        """``prev`` (an items frame of this workspace, left as it is) with the active decisions folded in again."""
        labels, deleted, kept = fold_decisions(prev["item_id"].tolist(), prev["orig_label"].tolist(),
                                               self.store.active_decision_tuples())
        return prev.assign(label=labels, deleted=deleted, kept=kept)

    def _items_frame(self) -> pd.DataFrame:
        """The newest frame built here with the decisions folded in again while no item row changed since
        (:meth:`Store.items_key`, read before the frame; a decision changes no item row): a fraction of a full
        read at 100k, for the app after every decision and for the CLI alike. Otherwise a full read."""
        key = self.store.items_key()
        last = self._last_items
        frame = self._refold(last[1]) if last is not None and last[0] == key else self._read_items()
        self._last_items = (key, frame)
        return frame

    def _read_items(self) -> pd.DataFrame:
        """Built column-wise from one read of the item rows as plain tuples and the active decisions folded
        over plain lists (:func:`~cleaning.data.store_items.fold_decisions`): iterating an Arrow-backed
        column or ``isin`` on one costs seconds at 100,000 items; lists cost a fraction of one."""
        sql_cols = ["item_id", "path", "orig_label", "location", "qpath", "width", "height", "format", "n_frames",
                    "sha256", "phash", "source_query", "source_url", "added_at"]
        with self.store.read_transaction():
            rows = self.store.item_tuples(sql_cols, "known")
            dec = self.store.active_decision_tuples()
        cols: dict[str, list] = {c: list(v) for c, v in zip(sql_cols, zip(*rows))} if rows else {c: [] for c in sql_cols}
        labels, deleted, kept = fold_decisions(cols["item_id"], cols["orig_label"], dec)
        in_root = _joiner(self.root)
        data = {
            "item_id": cols["item_id"], "path": cols["path"],
            "abs_path": [str(self.state_dir / q) if loc == "quarantine" and q else in_root(p)
                         for p, loc, q in zip(cols["path"], cols["location"], cols["qpath"])],
            "label": labels, "orig_label": cols["orig_label"],
            "folder_label": [p.split("/", 1)[0] for p in cols["path"]], "deleted": deleted, "kept": kept}
        data.update((c, cols[c]) for c in ("location", "width", "height", "format", "n_frames", "sha256", "phash",
                                            "source_query", "source_url", "added_at"))
        return pd.DataFrame(data)

    def bad_files(self) -> list[BadFile]:
        """Files below ROOT that are not usable images, from the last rescan."""
        pinned = getattr(self._pin, "snap", None)
        return list(pinned.bad) if pinned is not None else self._bad_files()

    def _bad_files(self) -> list[BadFile]:
        return [BadFile(r["path"], r["reason"], r["kind"])
                for r in self.store.bad_file_rows()]

    @property
    def vocab(self) -> list[str]:
        """Sorted labels of the images on disk that are not deleted."""
        pinned = getattr(self._pin, "snap", None)
        if pinned is not None:
            return sorted(set(pinned.items.loc[~pinned.items["deleted"], "label"]))
        with self.store.read_transaction():
            live = [r[0] for r in self.store.item_tuples(["item_id"], "known")]
            state = self.store.current_frame().reindex(live)
        return sorted(set(state.loc[~state["deleted"].to_numpy(dtype=bool), "label"]))

    def item_id_for_path(self, path: str) -> str:
        return self.store.find_item(path)


def _joiner(root: Path) -> Callable[[str], str]:
    """``str(root / path)`` for ROOT-relative forward-slash paths; a plain string join where that is the same
    (POSIX: a third of the time of a ``Path`` per image)."""
    base = str(root)
    if os.sep == "/" and base != "/":
        return lambda p: f"{base}/{p}"
    return lambda p: str(root / p)


def _info(r: object) -> ImageInfo:
    return ImageInfo(r["width"], r["height"], r["format"], r["mode"], r["sha256"], r["phash"],  # type: ignore[index]
                     r["n_frames"] or 1)  # type: ignore[index]
