"""The store: one SQLite file per data set holding items, provenance, decisions, the file-move journal,
training runs and evaluation sets. The store modules (``store.py``, ``store_items.py``, ``store_runs.py``,
``store_migrate.py``) are the only code that speaks SQL; everything else calls their methods.

Decisions are data. Every relabel / delete / restore / keep is a row with time, source and a batch
number; the current label of an item is its last *active* relabel (else the label it came with).
Undo marks the newest active batch ``undone``; redo re-activates the oldest undone batch; a new
decision after an undo marks the undone batches ``discarded`` (the redo stack is cleared, nothing is
deleted). Recording a decision never touches image files: :mod:`cleaning.data.files` does that.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import CleaningError, ItemNotFound, store_error
from .store_items import ItemsSQL, ItemState, now_iso, settle_provenance
from .store_items import apply_decision as _apply
from .store_runs import RunsSQL
from .tree import validate_label

ACTIONS = ("relabel", "delete", "restore", "keep")
SOURCES = ("user", "suggestion", "bulk", "cli", "disk")
#: Version 2: at most one item per ROOT path on disk (a partial UNIQUE index; duplicates repaired).
#: Version 3: the ``runs`` table of training runs is part of the schema (it was created on first use).
SCHEMA_VERSION = 3

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
-- (schema 2) CREATE UNIQUE INDEX items_root_path ON items(path) WHERE location='root'  -- see store_migrate
CREATE INDEX IF NOT EXISTS items_sha ON items(sha256);
-- provenance of a file that landed (a download) before a rescan made it an item; keyed by ROOT path
CREATE TABLE IF NOT EXISTS pending_provenance(path TEXT PRIMARY KEY, source_query TEXT, source_url TEXT,
                                              added_at TEXT NOT NULL);
-- every change to an item row bumps meta 'items_gen' (Store.items_key: caches of frames built from the rows)
CREATE TRIGGER IF NOT EXISTS items_gen_ins AFTER INSERT ON items BEGIN INSERT INTO meta VALUES('items_gen', '1')
    ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1; END;
CREATE TRIGGER IF NOT EXISTS items_gen_upd AFTER UPDATE ON items BEGIN INSERT INTO meta VALUES('items_gen', '1')
    ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1; END;
CREATE TRIGGER IF NOT EXISTS items_gen_del AFTER DELETE ON items BEGIN INSERT INTO meta VALUES('items_gen', '1')
    ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1; END;
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
CREATE TABLE IF NOT EXISTS eval_sets(
    eval_id    TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    fraction   REAL NOT NULL,
    seed       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS eval_items(
    eval_id TEXT NOT NULL REFERENCES eval_sets(eval_id),
    item_id TEXT NOT NULL,
    PRIMARY KEY(eval_id, item_id)
);
CREATE TABLE IF NOT EXISTS run_predictions(     -- a run's probabilities (JSON list, run vocab order)
    run_id  TEXT NOT NULL,
    item_id TEXT NOT NULL,
    probs   TEXT NOT NULL,
    PRIMARY KEY(run_id, item_id)
);
"""


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


class Store(ItemsSQL, RunsSQL):
    """SQLite store of one data set (WAL journal, safe to share between threads)."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        """Open (creating and migrating if needed) the store at ``path``.

        With ``readonly`` (a read-only state folder) nothing is created or migrated and every write
        raises :class:`CleaningError`.

        Raises:
            CleaningError: not an SQLite file / corrupt, a newer schema, or the folder is not writable.
        """
        self.path = Path(path)
        self.readonly = readonly
        self.lock = threading.RLock()
        try:
            if readonly:
                if not self.path.exists():
                    raise CleaningError(f"the state folder {str(self.path.parent)!r} is read-only and has no store",
                                        "make it writable or pass --state-dir to a writable folder")
                self.conn = self._connect_readonly()
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            with self.lock:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=FULL")
                self.conn.execute("PRAGMA foreign_keys=ON")
                self.conn.executescript(SCHEMA)
                self._migrate()
        except sqlite3.Error as e:
            raise store_error(e, self.path) from e
        except OSError as e:
            raise store_error(e, self.path) from e

    def _connect_readonly(self) -> sqlite3.Connection:
        """Read-only: with the WAL (if its files are there), else as an immutable file (nothing created)."""
        base = self.path.resolve().as_uri()
        err: sqlite3.Error | None = None
        for query in ("mode=ro", "mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(f"{base}?{query}", uri=True, timeout=30, check_same_thread=False,
                                       isolation_level=None)
                conn.row_factory = sqlite3.Row
                conn.execute("SELECT COUNT(*) FROM items").fetchone()
                return conn
            except sqlite3.Error as e:
                err = e
        assert err is not None
        raise err

    def _migrate(self) -> None:
        """Bring an older store up to :data:`SCHEMA_VERSION` (each step in one transaction)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise CleaningError(f"the store {str(self.path)!r} was written by a newer version (schema {version})",
                                "upgrade this program")
        if version >= SCHEMA_VERSION:
            return
        from .store_migrate import MIGRATIONS

        for step in range(max(version, 1), SCHEMA_VERSION):
            with self.transaction() as c:
                MIGRATIONS[step](c)
                c.execute("INSERT OR REPLACE INTO meta VALUES('schema_version', ?)", (str(step + 1),))
        with self.transaction() as c:
            c.execute("INSERT OR IGNORE INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE … COMMIT (rolled back on any exception)."""
        if self.readonly:
            raise CleaningError(f"the state folder {str(self.path.parent)!r} is read-only",
                                "make it writable or pass --state-dir to a writable folder")
        with self.lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise store_error(e, self.path) from e
            try:
                yield self.conn
            except BaseException as e:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error) and not isinstance(e, sqlite3.IntegrityError):
                    raise store_error(e, self.path) from e
                raise
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as e:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise store_error(e, self.path) from e

    @contextmanager
    def read_transaction(self) -> Iterator[None]:
        """Reads inside see one consistent state of the store (a deferred transaction in WAL mode)."""
        with self.lock:
            if self.conn.in_transaction:
                yield
                return
            self.conn.execute("BEGIN")
            try:
                yield
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")

    def query(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:
        with self.lock:
            try:
                return self.conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as e:
                raise store_error(e, self.path) from e

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

    def note_provenance(self, path: str, query: str | None, url: str | None) -> None:
        """Remember where the file that just landed at ROOT-relative ``path`` came from.

        Written per image as it lands (a killed scrape loses nothing); the rescan that makes the file
        an item copies it over (never overwriting provenance an item already has). If the item
        exists already, it is updated now.
        """
        ts = now_iso()
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO pending_provenance VALUES(?,?,?,?)", (path, query, url, ts))
            settle_provenance(c)

    # ---- decisions ---------------------------------------------------------------------------
    def current(self) -> dict[str, ItemState]:  # every item, after all active decisions (in seq order)
        return self._fold("", ())

    def state_of(self, item_ids: Iterable[str]) -> dict[str, ItemState]:
        """:meth:`current` for the given items only (unknown ids left out): one read of their rows and decisions."""
        return self._fold("item_id IN (SELECT value FROM json_each(?))", (json.dumps(list(dict.fromkeys(item_ids))),))

    def _fold(self, where: str, params: tuple) -> dict[str, ItemState]:
        state: dict[str, ItemState] = {}
        with self.read_transaction():
            for item_id, orig in self.query_tuples("SELECT item_id, orig_label FROM items"
                                                   + (f" WHERE {where}" if where else ""), params):
                state[item_id] = ItemState(orig, False, False)
            for item_id, action, label in self.query_tuples(
                    "SELECT item_id, action, label FROM decisions WHERE state='active'"
                    + (f" AND {where}" if where else "") + " ORDER BY seq", params):
                if item_id in state:
                    state[item_id] = _apply(state[item_id], action, label)
        return state

    def record(self, item_ids: Iterable[str], action: str, label: str | None = None,
               source: str = "user", note: str = "") -> int | None:
        """Record one decision for each item as one batch (undone together).

        Items for which the decision changes nothing (relabel to the label it has, delete of a deleted
        item) are left out. Returns the batch number, or None when nothing changed.

        Raises:
            CleaningError: unknown action/source; LabelError: bad label; ItemNotFound: unknown item.
        """
        return self.record_mixed([(i, action, label, note) for i in dict.fromkeys(item_ids)], source)

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
                label = validate_label(label or "", self.path.parent)
            rows.append((item_id, action, label if action == "relabel" else None, note))
        with self.lock:
            cur = self.state_of([r[0] for r in rows])
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

    def active_seqs(self) -> list[int]:
        """Sequence numbers of the decisions active now (undone and discarded ones left out)."""
        return [int(r[0]) for r in self.query("SELECT seq FROM decisions WHERE state='active' ORDER BY seq")]

    def decision_count(self) -> int:
        """The data-set version: how many decisions are active now."""
        return int(self.query("SELECT COUNT(*) FROM decisions WHERE state='active'")[0][0])

    def version_key(self) -> str:
        """Changes whenever any decision is recorded, undone or redone (for cache keys)."""
        r = self.query("SELECT COUNT(*), COALESCE(MAX(seq),0), COALESCE(MAX(changed_at),'') FROM decisions")[0]
        return f"{r[0]}-{r[1]}-{r[2]}"

    def files_key(self) -> str:
        """Changes whenever the decisions change, the folder is refreshed or a file move completes
        (for caches of the items' paths)."""
        last = self.query("SELECT value FROM meta WHERE key='last_scan'")
        moves = self.query("SELECT COUNT(*) FROM file_ops WHERE status='done'")[0][0]
        return f"{self.version_key()}|{last[0][0] if last else ''}|{moves}"

    def items_key(self) -> str:
        """Changes whenever an item row is added, changed or removed (a trigger counts), never with a decision."""
        gen = self.query("SELECT value FROM meta WHERE key='items_gen'")
        return str(gen[0][0]) if gen else "0"

    def active_decisions_since(self, seq: int) -> int:
        """Active decisions recorded after decision ``seq`` (0 = since the start)."""
        return int(self.query("SELECT COUNT(*) FROM decisions WHERE seq > ? AND state='active'", (seq,))[0][0])
