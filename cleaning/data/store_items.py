"""The store's SQL for items, bad files, the file-move journal and folder refreshes (mixed into
:class:`Store`)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import store_error

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .tree import BadFile, ScannedImage


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def make_item_id(orig_path: str, sha256: str) -> str:
    """A stable id for an image: it never changes when the file is relabelled, moved or quarantined."""
    return hashlib.sha1(f"{orig_path}\0{sha256}".encode()).hexdigest()[:16]


@dataclass
class Reconciled:
    """What one refresh changed: ROOT-relative paths, and hand moves into another class folder."""

    new: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    relabels: list[tuple[str, str]] = field(default_factory=list)  # (item_id, folder label)


def settle_provenance(c: sqlite3.Connection) -> None:
    """Inside a transaction: copy pending provenance onto the items now at those paths (only into empty
    fields) and forget what was copied."""
    c.execute("UPDATE items SET "
              "source_query=COALESCE(source_query, (SELECT p.source_query FROM pending_provenance p "
              "WHERE p.path=items.path)), "
              "source_url=COALESCE(source_url, (SELECT p.source_url FROM pending_provenance p WHERE p.path=items.path)), "
              "added_at=COALESCE(added_at, (SELECT p.added_at FROM pending_provenance p WHERE p.path=items.path)) "
              "WHERE location='root' AND path IN (SELECT path FROM pending_provenance)")
    c.execute("DELETE FROM pending_provenance WHERE path IN (SELECT path FROM items WHERE location='root')")



@dataclass(frozen=True)
class ItemState:
    """The current state of an item after all active decisions."""

    label: str
    deleted: bool
    kept: bool


def apply_decision(s: ItemState, action: str, label: str | None) -> ItemState:
    """The state after one decision (the rule :func:`fold_decisions` applies column-wise)."""
    if action == "relabel":
        return ItemState(label or s.label, s.deleted, s.kept)
    if action == "delete":
        return ItemState(s.label, True, s.kept)
    if action == "restore":
        return ItemState(s.label, False, s.kept)
    return ItemState(s.label, s.deleted, True)  # keep: reviewed and fine


def fold_decisions(item_ids: Sequence[str], orig_labels: Sequence[str],
                   decisions: Iterable[tuple]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The current ``(labels, deleted, kept)`` of the items ``item_ids`` (aligned with them) after the active
    ``decisions`` ``(item_id, action, label)``, oldest first: the last relabel (with a label) gives the label,
    the last delete or restore whether it is deleted, any keep marks it kept; decisions of other items are
    ignored. One dict lookup per decision over plain lists (pandas' ``isin`` on Arrow strings makes one
    Arrow scalar per element: seconds at 100,000 items)."""
    import numpy as np

    pos = {iid: j for j, iid in enumerate(item_ids)}
    labels = list(orig_labels)
    deleted = np.zeros(len(labels), dtype=bool)
    kept = np.zeros(len(labels), dtype=bool)
    for item_id, action, label in decisions:
        j = pos.get(item_id)
        if j is None:
            continue
        if action == "relabel":
            if label:
                labels[j] = label
        elif action == "delete":
            deleted[j] = True
        elif action == "restore":
            deleted[j] = False
        elif action == "keep":
            kept[j] = True
    return labels, deleted, kept


#: The columns of the ``items`` table (what :meth:`ItemsSQL.item_tuples` may read).
ITEM_COLUMNS = ("item_id", "path", "location", "qpath", "orig_path", "orig_label", "size", "mtime_ns", "width",
                "height", "format", "mode", "n_frames", "sha256", "phash", "source_query", "source_url",
                "added_at", "first_seen")


class ItemsSQL:
    """Items, bad files, refreshes and the file journal. Needs ``query``, ``query_tuples`` and
    ``transaction`` (Store)."""

    def query(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:  # pragma: no cover
        raise NotImplementedError

    def query_tuples(self, sql: str, params: Iterable[object] = ()) -> list[tuple]:
        """Like ``query`` but plain tuples: no ``sqlite3.Row`` per row (a third of the time at 100,000 rows),
        for the whole-table reads that build frames. Uses the Store's ``conn``, ``lock`` and ``path``."""
        with self.lock:  # type: ignore[attr-defined]
            try:
                cur = self.conn.cursor()  # type: ignore[attr-defined]
                cur.row_factory = None
                return cur.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as e:
                raise store_error(e, self.path) from e  # type: ignore[attr-defined]

    def read_transaction(self) -> AbstractContextManager[None]:  # pragma: no cover
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    # ---- reading ------------------------------------------------------------------------------------
    def has_refreshed(self) -> bool:
        """True once the folder was refreshed into this store at least once."""
        return bool(self.query("SELECT 1 FROM meta WHERE key='last_scan'"))

    def item_rows(self, where: str = "all") -> list[sqlite3.Row]:
        """Item rows: ``"root"`` (on disk in ROOT), ``"known"`` (not missing, by path) or ``"all"``."""
        sql = {"root": "SELECT * FROM items WHERE location='root'",
               "known": "SELECT * FROM items WHERE location != 'missing' ORDER BY path",
               "all": "SELECT * FROM items"}[where]
        return self.query(sql)

    def item_tuples(self, columns: Sequence[str], where: str = "known") -> list[tuple]:
        """Plain tuples of ``columns`` of the item rows chosen as in :meth:`item_rows` (for frames)."""
        bad = [c for c in columns if c not in ITEM_COLUMNS]
        if bad:
            raise ValueError(f"unknown item columns {bad}")
        cond = {"root": " WHERE location='root'", "known": " WHERE location != 'missing' ORDER BY path",
                "all": ""}[where]
        return self.query_tuples(f"SELECT {', '.join(columns)} FROM items{cond}")

    def active_decision_tuples(self) -> list[tuple]:
        """``(item_id, action, label)`` of every active decision, oldest first (for :func:`fold_decisions`)."""
        return self.query_tuples("SELECT item_id, action, label FROM decisions WHERE state='active' ORDER BY seq")

    def current_frame(self) -> pd.DataFrame:
        """:meth:`Store.current` as a frame indexed by ``item_id`` (columns ``label``, ``deleted``, ``kept``):
        the same rule folded over plain lists (:func:`fold_decisions`), not one ``ItemState`` per item."""
        import pandas as pd

        with self.read_transaction():
            items = self.query_tuples("SELECT item_id, orig_label FROM items")
            dec = self.active_decision_tuples()
        ids = [r[0] for r in items]
        labels, deleted, kept = fold_decisions(ids, [r[1] for r in items], dec)
        return pd.DataFrame({"label": labels, "deleted": deleted, "kept": kept}, index=pd.Index(ids, name="item_id"))

    def bad_file_rows(self) -> list[sqlite3.Row]:
        """Files below ROOT that are not usable images, from the last refresh."""
        return self.query("SELECT * FROM bad_files ORDER BY path")

    def root_paths(self) -> set[str]:
        """ROOT-relative paths held by items on disk."""
        return {str(r[0]) for r in self.query("SELECT path FROM items WHERE location='root'")}

    def scraped_paths(self) -> set[str]:
        """Paths of items that have a source URL."""
        return {str(r[0]) for r in self.query("SELECT path FROM items WHERE source_url IS NOT NULL")}

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (before copying the store as a template)."""
        self.query("PRAGMA wal_checkpoint(TRUNCATE)")

    # ---- the file-move journal ----------------------------------------------------------------------
    def journal_move(self, item_id: str, src: Path, dst: Path, location: str, path: str,
                     qpath: str | None) -> int:
        """Record a move as pending before it happens; returns its op id."""
        with self.transaction() as c:
            op = c.execute("INSERT INTO file_ops(item_id, src, dst, new_location, new_path, new_qpath, "
                           "created_at) VALUES(?,?,?,?,?,?,?)",
                           (item_id, str(src), str(dst), location, path, qpath, now_iso())).lastrowid
        return int(op or 0)

    def finish_move(self, op_id: int, item_id: str, location: str, path: str, qpath: str | None,
                    mtime_ns: int) -> None:
        """The move happened: the item is at its new place (one transaction with the journal entry)."""
        with self.transaction() as c:
            c.execute("UPDATE items SET location=?, path=?, qpath=?, mtime_ns=? WHERE item_id=?",
                      (location, path, qpath, mtime_ns, item_id))
            c.execute("UPDATE file_ops SET status='done' WHERE op_id=?", (op_id,))

    def abandon_move(self, op_id: int) -> None:
        """The move never happened: the source stays."""
        with self.transaction() as c:
            c.execute("UPDATE file_ops SET status='abandoned' WHERE op_id=?", (op_id,))

    def pending_moves(self) -> list[sqlite3.Row]:
        """Journalled moves not settled yet (a process died mid-move)."""
        return self.query("SELECT * FROM file_ops WHERE status='pending'")

    # ---- a refresh ----------------------------------------------------------------------------------
    def write_refresh(self, root: Path, images: Sequence[ScannedImage], bad: Sequence[BadFile],
                      ts: str) -> Reconciled:
        """Write one folder refresh in one transaction that re-reads the items (see :func:`reconcile`),
        settles pending provenance and replaces the bad-file list."""
        with self.transaction() as c:
            out = reconcile(c, root, images, ts)
            settle_provenance(c)
            c.execute("DELETE FROM bad_files")
            c.executemany("INSERT OR REPLACE INTO bad_files VALUES(?,?,?)", [(b.path, b.reason, b.kind) for b in bad])
            c.execute("INSERT OR REPLACE INTO meta VALUES('last_scan', ?)", (ts,))
        return out


def reconcile(c: sqlite3.Connection, root: Path, images: Sequence[ScannedImage], ts: str) -> Reconciled:
    """Write one refresh into the store inside the caller's transaction; returns what changed, with the
    (item_id, folder label) pairs of images moved by hand into another class folder (the caller records
    them as relabels afterwards).

    The items are read here, inside the transaction, so what another process committed meanwhile is
    seen: a path already held by an item is updated, never inserted twice; paths of moves that a dead
    process left pending are left alone (``recover`` settles them); an existing row is never replaced.
    """
    rows = c.execute("SELECT * FROM items").fetchall()
    limbo: set[str] = set()
    for op in c.execute("SELECT src, dst FROM file_ops WHERE status='pending'"):
        for p in (op["src"], op["dst"]):
            try:
                limbo.add(Path(p).relative_to(root).as_posix())
            except ValueError:
                pass
    on_disk = {r["path"]: r for r in rows if r["location"] == "root"}
    gone: dict[str, list[sqlite3.Row]] = {}
    for r in rows:
        if r["location"] == "missing":
            gone.setdefault(r["path"], []).append(r)
    ids = {r["item_id"] for r in rows}
    label_now = _current_labels(c)
    seen = {im.path for im in images}
    lost = {r["item_id"]: r for p, r in on_disk.items() if p not in seen and p not in limbo}
    lost_by_sha: dict[str, list[str]] = {}
    for iid, r in lost.items():
        lost_by_sha.setdefault(r["sha256"], []).append(iid)
    report = Reconciled()
    relabels = report.relabels
    for im in images:
        if im.path in limbo:
            continue
        i = im.info
        vals = (im.size, im.mtime_ns, i.width, i.height, i.format, i.mode, i.n_frames, i.sha256, i.phash)
        old = on_disk.get(im.path)
        if old is None and im.path in gone:
            cands = gone[im.path]
            old = next((r for r in cands if r["sha256"] == i.sha256), cands[-1])  # it came back
        if old is not None:
            c.execute("UPDATE items SET size=?, mtime_ns=?, width=?, height=?, format=?, mode=?, "
                      "n_frames=?, sha256=?, phash=?, location='root', qpath=NULL WHERE item_id=?",
                      (*vals, old["item_id"]))
            continue
        if lost_by_sha.get(i.sha256):
            iid = lost_by_sha[i.sha256].pop(0)
            del lost[iid]
            c.execute("UPDATE items SET path=?, location='root', qpath=NULL, size=?, mtime_ns=?, "
                      "width=?, height=?, format=?, mode=?, n_frames=?, sha256=?, phash=? "
                      "WHERE item_id=?", (im.path, *vals, iid))
            report.moved.append(im.path)
            if label_now.get(iid) != im.label:
                relabels.append((iid, im.label))
            continue
        iid, n = make_item_id(im.path, i.sha256), 1
        while iid in ids:  # the same bytes came back at a path an item (e.g. in quarantine) came from
            n += 1
            iid = make_item_id(im.path, f"{i.sha256}#{n}")
        ids.add(iid)
        c.execute("INSERT INTO items(item_id, path, location, orig_path, orig_label, size, "
                  "mtime_ns, width, height, format, mode, n_frames, sha256, phash, first_seen) "
                  "VALUES(?,?, 'root', ?,?,?,?,?,?,?,?,?,?,?,?)",
                  (iid, im.path, im.path, im.label, *vals, ts))
        report.new.append(im.path)
    for iid, r in lost.items():
        c.execute("UPDATE items SET location='missing' WHERE item_id=? AND location='root'", (iid,))
        report.missing.append(r["path"])
    return report


def _current_labels(c: sqlite3.Connection) -> dict[str, str]:
    labels = {r[0]: r[1] for r in c.execute("SELECT item_id, orig_label FROM items")}
    for iid, label in c.execute("SELECT item_id, label FROM decisions WHERE state='active' "
                                "AND action='relabel' ORDER BY seq"):
        labels[iid] = label
    return labels
