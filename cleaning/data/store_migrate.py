"""Versioned migrations of the store: ``MIGRATIONS[n](conn)`` brings schema ``n`` to ``n + 1``.

Each step runs inside one transaction opened by :meth:`cleaning.store.Store._migrate`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .store_runs import create_runs_table

ROOT_PATH_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS items_root_path ON items(path) WHERE location='root'"


def repair_duplicate_paths(c: sqlite3.Connection) -> int:
    """Merge item rows that a rescan racing an apply duplicated; returns how many rows were merged away.

    Rows that are (or were, if 'missing') at the same ROOT path with the same content are one image:
    the row with the most decisions (then the oldest) is kept, takes the others' decisions, file
    journal entries and provenance, and is on disk ('root') if any of them was. Of several rows at one
    path with different contents only one may stay 'root' (the others become 'missing'; the next
    rescan settles which file is there).
    """
    rows = c.execute(
        "SELECT i.item_id, i.path, i.location, i.sha256, i.first_seen, "
        "(SELECT COUNT(*) FROM decisions d WHERE d.item_id=i.item_id) AS n "
        "FROM items i WHERE i.location IN ('root','missing') ORDER BY i.path").fetchall()
    by_path: dict[str, list[sqlite3.Row]] = {}
    for r in rows:
        by_path.setdefault(r[1], []).append(r)
    merged = 0
    for group in by_path.values():
        if len(group) < 2:
            continue
        by_sha: dict[str, list[sqlite3.Row]] = {}
        for r in group:
            by_sha.setdefault(r[3], []).append(r)
        survivors = []
        for same in by_sha.values():
            same = sorted(same, key=lambda r: (-r[5], r[4], r[0]))
            keep, extra = same[0], same[1:]
            on_disk = any(r[2] == "root" for r in same)
            for r in extra:
                c.execute("UPDATE decisions SET item_id=? WHERE item_id=?", (keep[0], r[0]))
                c.execute("UPDATE file_ops SET item_id=? WHERE item_id=?", (keep[0], r[0]))
                c.execute("UPDATE items SET source_query=COALESCE(source_query, (SELECT source_query FROM items "
                          "WHERE item_id=?)), source_url=COALESCE(source_url, (SELECT source_url FROM items "
                          "WHERE item_id=?)), added_at=COALESCE(added_at, (SELECT added_at FROM items "
                          "WHERE item_id=?)) WHERE item_id=?", (r[0], r[0], r[0], keep[0]))
                c.execute("DELETE FROM items WHERE item_id=?", (r[0],))
                merged += 1
            if on_disk:
                c.execute("UPDATE items SET location='root', qpath=NULL WHERE item_id=?", (keep[0],))
            survivors.append((keep, on_disk))
        roots = sorted([k for k, on_disk in survivors if on_disk], key=lambda r: (-r[5], r[4], r[0]))
        for r in roots[1:]:
            c.execute("UPDATE items SET location='missing' WHERE item_id=?", (r[0],))
    return merged


def _v1_to_v2(c: sqlite3.Connection) -> None:
    repair_duplicate_paths(c)
    c.execute(ROOT_PATH_INDEX)


def _v2_to_v3(c: sqlite3.Connection) -> None:
    create_runs_table(c)  # the runs table (created on first use before) is part of the schema


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3}
