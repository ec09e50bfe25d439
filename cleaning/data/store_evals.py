"""The store's tables for honest evaluation (:mod:`cleaning.model.evalset`): the fixed evaluation set of
a data set and the per-image probabilities every training run stored for it. Part of :class:`Store`
(a mixin: the SQL stays in the data wing's store modules); created with the rest of the schema.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime

EVAL_SCHEMA = """
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


class EvalStoreMixin:
    """Evaluation-set and run-prediction queries of :class:`cleaning.data.store.Store`."""

    lock: threading.RLock

    def query(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]: ...  # provided by Store

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...  # provided by Store

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
                      (eval_id, _now(), float(fraction), int(seed)))
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



def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
