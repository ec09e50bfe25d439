"""The store's SQL for training runs, evaluation sets and run predictions (mixed into :class:`Store`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .store_items import now_iso

RUN_COLUMNS = ("run_id", "created_at", "dataset_version", "last_seq", "arch", "settings", "accuracy", "valid_loss",
               "n_train", "n_valid", "vocab", "per_class", "confusion", "history", "batch_losses", "model_path",
               "seconds", "status", "mode", "probe_accuracy", "chosen", "eval_id", "active_seqs")

RUNS_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs(
    run_id          TEXT PRIMARY KEY,
    created_at      TEXT NOT NULL,
    dataset_version INTEGER NOT NULL,
    last_seq        INTEGER NOT NULL,
    arch            TEXT NOT NULL,
    settings        TEXT NOT NULL,
    accuracy        REAL,
    valid_loss      REAL,
    n_train         INTEGER NOT NULL,
    n_valid         INTEGER NOT NULL,
    vocab           TEXT NOT NULL,
    per_class       TEXT NOT NULL,
    confusion       TEXT NOT NULL,
    history         TEXT NOT NULL DEFAULT '[]',
    batch_losses    TEXT NOT NULL DEFAULT '[]',
    model_path      TEXT NOT NULL,
    seconds         REAL,
    status          TEXT NOT NULL DEFAULT 'done',
    mode            TEXT NOT NULL DEFAULT 'full',
    probe_accuracy  REAL,
    chosen          TEXT,
    eval_id         TEXT,
    active_seqs     TEXT
)"""

#: Columns that runs tables created by older versions lack: (name, SQL type and default).
RUN_COLUMNS_ADDED = (("batch_losses", "TEXT NOT NULL DEFAULT '[]'"), ("status", "TEXT NOT NULL DEFAULT 'done'"),
                     ("mode", "TEXT NOT NULL DEFAULT 'full'"), ("probe_accuracy", "REAL"), ("chosen", "TEXT"),
                     ("eval_id", "TEXT"), ("active_seqs", "TEXT"))


def create_runs_table(c: sqlite3.Connection) -> None:
    """Inside a migration: the ``runs`` table, or the columns an older one lacks."""
    c.execute(RUNS_SCHEMA)
    have = {tuple(r)[1] for r in c.execute("PRAGMA table_info(runs)")}
    for col, decl in RUN_COLUMNS_ADDED:
        if col not in have:
            c.execute(f"ALTER TABLE runs ADD COLUMN {col} {decl}")


class RunsSQL:
    """Runs, evaluation sets and per-run predictions. Needs ``query`` and ``transaction`` (Store)."""

    def query(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:  # pragma: no cover
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    # ---- runs ---------------------------------------------------------------------------------------
    def save_run(self, values: dict[str, Any]) -> None:
        """Insert or replace one run row (``values``: every column of :data:`RUN_COLUMNS`; dicts and
        lists are stored as JSON)."""
        row = [values.get(c) for c in RUN_COLUMNS]
        row = [json.dumps(v) if isinstance(v, dict | list) else v for v in row]
        with self.transaction() as c:
            c.execute(f"INSERT OR REPLACE INTO runs({', '.join(RUN_COLUMNS)}) "
                      f"VALUES({', '.join('?' * len(RUN_COLUMNS))})", row)

    def run_rows(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Run rows as dicts (JSON columns still as text): one run, or every run newest first."""
        cols = ", ".join(RUN_COLUMNS)
        rows: Sequence[sqlite3.Row] = (
            self.query(f"SELECT {cols} FROM runs WHERE run_id=?", (run_id,)) if run_id is not None
            else self.query(f"SELECT {cols} FROM runs ORDER BY created_at DESC, run_id DESC"))
        return [dict(zip(RUN_COLUMNS, tuple(r))) for r in rows]

    def last_seq(self) -> int:
        """The sequence number of the newest decision (0 when there is none)."""
        return int(self.query("SELECT COALESCE(MAX(seq), 0) FROM decisions")[0][0])

    # ---- evaluation sets and run outputs (cleaning.evalset) ------------------------------------
    def eval_set(self) -> tuple[str, list[str]] | None:
        """The data set's evaluation set (the first one chosen): (eval_id, item ids), or None."""
        rows = self.query("SELECT eval_id FROM eval_sets ORDER BY created_at, eval_id LIMIT 1")
        if not rows:
            return None
        eid = str(rows[0][0])
        return eid, [str(r[0]) for r in self.query("SELECT item_id FROM eval_items WHERE eval_id=? "
                                                   "ORDER BY item_id", (eid,))]

    def create_eval_set(self, eval_id: str, item_ids: Iterable[str], fraction: float, seed: int) -> None:
        """Store a new evaluation set (its items never change afterwards)."""
        with self.transaction() as c:
            c.execute("INSERT INTO eval_sets(eval_id, created_at, fraction, seed) VALUES(?,?,?,?)",
                      (eval_id, now_iso(), float(fraction), int(seed)))
            c.executemany("INSERT INTO eval_items(eval_id, item_id) VALUES(?,?)", [(eval_id, i) for i in item_ids])

    def save_run_predictions(self, run_id: str, probs: dict[str, list[float]]) -> None:
        """Add (or replace) a run's per-item probabilities (in the run's vocab order)."""
        with self.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO run_predictions(run_id, item_id, probs) VALUES(?,?,?)",
                          [(run_id, i, json.dumps([round(float(p), 6) for p in ps])) for i, ps in probs.items()])

    def run_predictions(self, run_id: str) -> dict[str, list[float]]:
        """``{item_id: probabilities}`` a run stored (its evaluation-set predictions)."""
        return {str(r[0]): json.loads(r[1]) for r in
                self.query("SELECT item_id, probs FROM run_predictions WHERE run_id=?", (run_id,))}

