"""The store: one SQLite file per data set holding items, provenance and decisions.

Decisions are data. Every relabel / delete / restore / keep is a row with time, source and a batch
number; the current label of an item is its last *active* relabel (else the label it came with).
Undo marks the newest active batch ``undone``; redo re-activates the oldest undone batch; a new
decision after an undo marks the undone batches ``discarded`` (the redo stack is cleared, nothing is
deleted). Recording a decision never touches image files: :mod:`cleaning.data.files` does that.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..errors import CleaningError, ItemNotFound
from .tree import validate_label

ACTIONS = ("relabel", "delete", "restore", "keep")
SOURCES = ("user", "suggestion", "bulk", "cli", "disk")
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS items(
    item_id      TEXT PRIMARY KEY,
    path         TEXT NOT NULL,               -- ROOT-relative path where it is (or was, if quarantined)
    location     TEXT NOT NULL DEFAULT 'root' CHECK(location IN ('root','quarantine','missing')),
    qpath        TEXT,                        -- state-dir-relative path while quarantined
    orig_path    TEXT NOT NULL,
    orig_label   TEXT NOT NULL,
    size INTEGER, mtime_ns INTEGER, width INTEGER, height INTEGER,
    format TEXT, mode TEXT, n_frames INTEGER, sha256 TEXT, phash TEXT,
    source_query TEXT, source_url TEXT, added_at TEXT,
    first_seen TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_path ON items(path);
CREATE INDEX IF NOT EXISTS items_sha ON items(sha256);
CREATE TABLE IF NOT EXISTS bad_files(path TEXT PRIMARY KEY, reason TEXT NOT NULL, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions(
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    batch      INTEGER NOT NULL,
    item_id    TEXT NOT NULL REFERENCES items(item_id),
    action     TEXT NOT NULL CHECK(action IN ('relabel','delete','restore','keep')),
    label      TEXT,
    source     TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'active' CHECK(state IN ('active','undone','discarded')),
    changed_at TEXT
);
CREATE INDEX IF NOT EXISTS decisions_batch ON decisions(batch);
CREATE TABLE IF NOT EXISTS file_ops(
    op_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id    TEXT NOT NULL,
    src        TEXT NOT NULL,
    dst        TEXT NOT NULL,
    new_location TEXT NOT NULL,
    new_path   TEXT NOT NULL,
    new_qpath  TEXT,
    status     TEXT NOT NULL DEFAULT 'pending' CHECK(status IN ('pending','done','abandoned')),
    created_at TEXT NOT NULL
);
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Decision:
    seq: int
    batch: int
    item_id: str
    action: str
    label: str | None
    source: str
    note: str
    created_at: str
    state: str
    path: str = ""


@dataclass(frozen=True)
class ItemState:
    """The current state of an item after all active decisions."""

    label: str
    deleted: bool
    kept: bool


class Store:
    """SQLite store of one data set (WAL journal, safe to share between threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as e:
            raise CleaningError(f"cannot open the store {str(self.path)!r}: {e}") from e
        self.conn.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        with self.lock:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.executescript(SCHEMA)
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE … COMMIT (rolled back on any exception)."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, tuple(params)).fetchall()

    # ---- items -------------------------------------------------------------------------------
    def item(self, item_id: str) -> sqlite3.Row:
        rows = self.query("SELECT * FROM items WHERE item_id=?", (item_id,))
        if not rows:
            raise ItemNotFound(f"no item with id {item_id!r}")
        return rows[0]

    def find_item(self, path: str) -> str:
        """The item id for a ROOT-relative path (current, or original), or an item id itself.

        Raises:
            ItemNotFound: nothing in the store has that path.
        """
        p = path.replace("\\", "/").strip("/")
        for sql in ("SELECT item_id FROM items WHERE path=? AND location='root'",
                    "SELECT item_id FROM items WHERE path=? ORDER BY location='missing'",
                    "SELECT item_id FROM items WHERE orig_path=?",
                    "SELECT item_id FROM items WHERE item_id=?"):
            rows = self.query(sql, (p,))
            if rows:
                return str(rows[0]["item_id"])
        raise ItemNotFound(f"no image at {path!r} in this data set",
                           "paths are relative to ROOT with forward slashes, e.g. cat/img_001.jpg; "
                           "run `python -m cleaning history ROOT` or rescan")

    def set_provenance(self, item_id: str, query: str | None = None, url: str | None = None,
                       added_at: str | None = None) -> None:
        """Record where an image came from (web-search query, source URL, when it was added)."""
        with self.transaction() as c:
            cur = c.execute("UPDATE items SET source_query=COALESCE(?, source_query), "
                            "source_url=COALESCE(?, source_url), added_at=COALESCE(?, added_at) "
                            "WHERE item_id=?", (query, url, added_at or now_iso(), item_id))
            if cur.rowcount == 0:
                raise ItemNotFound(f"no item with id {item_id!r}")

    # ---- decisions ---------------------------------------------------------------------------
    def current(self) -> dict[str, ItemState]:
        """``{item_id: ItemState}`` for every item, after all active decisions (in seq order)."""
        state: dict[str, ItemState] = {}
        with self.lock:
            for r in self.conn.execute("SELECT item_id, orig_label FROM items"):
                state[r[0]] = ItemState(r[1], False, False)
            for item_id, action, label in self.conn.execute(
                    "SELECT item_id, action, label FROM decisions WHERE state='active' ORDER BY seq"):
                s = state.get(item_id)
                if s is None:
                    continue
                state[item_id] = _apply(s, action, label)
        return state

    def record(self, item_ids: Iterable[str], action: str, label: str | None = None,
               source: str = "user", note: str = "") -> int | None:
        """Record one decision for each item as one batch (undone together).

        Items for which the decision changes nothing (relabel to the label it has, delete of a deleted
        item) are left out. Returns the batch number, or None when nothing changed.

        Raises:
            CleaningError: unknown action/source; LabelError: bad label; ItemNotFound: unknown item.
        """
        if action not in ACTIONS:
            raise CleaningError(f"unknown action {action!r}", f"use one of {', '.join(ACTIONS)}")
        if source not in SOURCES:
            raise CleaningError(f"unknown decision source {source!r}", f"use one of {', '.join(SOURCES)}")
        if action == "relabel":
            validate_label(label or "")
        else:
            label = None
        ids = list(dict.fromkeys(item_ids))
        with self.lock:
            cur = self.current()
            missing = [i for i in ids if i not in cur]
            if missing:
                raise ItemNotFound(f"no item with id {missing[0]!r}")
            changing = [i for i in ids if _apply(cur[i], action, label) != cur[i]]
            if not changing:
                return None
            ts = now_iso()
            with self.transaction() as c:
                c.execute("UPDATE decisions SET state='discarded', changed_at=? WHERE state='undone'", (ts,))
                batch = (c.execute("SELECT COALESCE(MAX(batch), 0) + 1 FROM decisions").fetchone()[0])
                c.executemany(
                    "INSERT INTO decisions(batch, item_id, action, label, source, note, created_at) "
                    "VALUES(?,?,?,?,?,?,?)",
                    [(batch, i, action, label, source, note, ts) for i in changing])
            return int(batch)

    def record_mixed(self, decisions: Iterable[tuple[str, str, str | None, str]], source: str = "bulk") -> int | None:
        """Record ``(item_id, action, label, note)`` decisions of different kinds as ONE batch (one undo).

        Like :meth:`record`, decisions that change nothing are left out (checked in order, so a later
        decision sees the earlier ones). Returns the batch number, or None when nothing changed.

        Raises:
            CleaningError: unknown action/source; LabelError: bad label; ItemNotFound: unknown item.
        """
        if source not in SOURCES:
            raise CleaningError(f"unknown decision source {source!r}", f"use one of {', '.join(SOURCES)}")
        rows = []
        for item_id, action, label, note in decisions:
            if action not in ACTIONS:
                raise CleaningError(f"unknown action {action!r}", f"use one of {', '.join(ACTIONS)}")
            if action == "relabel":
                validate_label(label or "")
            rows.append((item_id, action, label if action == "relabel" else None, note))
        with self.lock:
            cur = self.current()
            missing = [r[0] for r in rows if r[0] not in cur]
            if missing:
                raise ItemNotFound(f"no item with id {missing[0]!r}")
            changing = []
            for item_id, action, label, note in rows:
                after = _apply(cur[item_id], action, label)
                if after != cur[item_id]:
                    cur[item_id] = after
                    changing.append((item_id, action, label, note))
            if not changing:
                return None
            ts = now_iso()
            with self.transaction() as c:
                c.execute("UPDATE decisions SET state='discarded', changed_at=? WHERE state='undone'", (ts,))
                batch = int(c.execute("SELECT COALESCE(MAX(batch), 0) + 1 FROM decisions").fetchone()[0])
                c.executemany(
                    "INSERT INTO decisions(batch, item_id, action, label, source, note, created_at) "
                    "VALUES(?,?,?,?,?,?,?)", [(batch, i, a, lab, source, n, ts) for i, a, lab, n in changing])
            return batch

    def undo(self) -> list[Decision]:
        """Undo the newest active batch; returns its decisions (empty if there is nothing to undo)."""
        with self.transaction() as c:
            row = c.execute("SELECT MAX(batch) FROM decisions WHERE state='active'").fetchone()
            if row[0] is None:
                return []
            c.execute("UPDATE decisions SET state='undone', changed_at=? WHERE batch=?", (now_iso(), row[0]))
        return self.history(batch=row[0])

    def redo(self) -> list[Decision]:
        """Redo the most recently undone batch; returns its decisions (empty if nothing to redo)."""
        with self.transaction() as c:
            row = c.execute("SELECT MIN(batch) FROM decisions WHERE state='undone'").fetchone()
            if row[0] is None:
                return []
            c.execute("UPDATE decisions SET state='active', changed_at=? WHERE batch=?", (now_iso(), row[0]))
        return self.history(batch=row[0])

    def can_undo(self) -> bool:
        return bool(self.query("SELECT 1 FROM decisions WHERE state='active' LIMIT 1"))

    def can_redo(self) -> bool:
        return bool(self.query("SELECT 1 FROM decisions WHERE state='undone' LIMIT 1"))

    def history(self, batch: int | None = None) -> list[Decision]:
        """All decisions oldest first (every state), each with the item's current path."""
        sql = ("SELECT d.*, i.path FROM decisions d JOIN items i USING(item_id)"
               + (" WHERE d.batch=?" if batch is not None else "") + " ORDER BY d.seq")
        rows = self.query(sql, (batch,) if batch is not None else ())
        return [Decision(r["seq"], r["batch"], r["item_id"], r["action"], r["label"], r["source"],
                         r["note"], r["created_at"], r["state"], r["path"]) for r in rows]

    def decision_count(self) -> int:
        """The data-set version: how many decisions are active now."""
        return int(self.query("SELECT COUNT(*) FROM decisions WHERE state='active'")[0][0])

    def version_key(self) -> str:
        """Changes whenever any decision is recorded, undone or redone (for cache keys)."""
        r = self.query("SELECT COUNT(*), COALESCE(MAX(seq),0), COALESCE(MAX(changed_at),'') FROM decisions")[0]
        return f"{r[0]}-{r[1]}-{r[2]}"


def _apply(s: ItemState, action: str, label: str | None) -> ItemState:
    if action == "relabel":
        return ItemState(label or s.label, s.deleted, s.kept)
    if action == "delete":
        return ItemState(s.label, True, s.kept)
    if action == "restore":
        return ItemState(s.label, False, s.kept)
    return ItemState(s.label, s.deleted, True)  # keep: reviewed and fine
