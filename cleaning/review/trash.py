"""The deleted images: every image a decision deleted (not applied yet, or applied: in the quarantine),
and those restored whose file still waits in the quarantine for the next apply. Pure: frames in, frame out.

Restoring is a ``restore`` decision like any other (undoable); :mod:`cleaning.files` brings the file back
byte-identical on the next apply.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

#: Columns of :func:`deleted_frame`.
TRASH_COLUMNS = ["item_id", "path", "abs_path", "label", "orig_label", "state", "deleted_at", "source", "note",
                 "source_query"]
STATES = {"pending": "deleted (file still in place until apply)", "quarantined": "in the quarantine",
          "restoring": "restored (back on the next apply)"}


def deleted_frame(items: pd.DataFrame, history: Sequence[object], search: str = "") -> pd.DataFrame:
    """One row per deleted or quarantined image, the most recently deleted first.

    Args:
        items: :meth:`Workspace.items_frame` (``item_id, path, abs_path, label, orig_label, deleted,
            location, source_query``).
        history: :meth:`Store.history` (``Decision`` objects, oldest first); the latest active ``delete``
            of each image gives ``deleted_at``, ``source`` and ``note``.
        search: words that must all occur (case-insensitive) in the path, a label, the note or the source
            query; empty = everything.
    Returns:
        Columns :data:`TRASH_COLUMNS`; ``state`` is a key of :data:`STATES`.
    """
    gone = items[items["deleted"].astype(bool) | (items["location"] == "quarantine")].copy()
    last: dict[str, object] = {}
    for d in history:
        if getattr(d, "action", None) == "delete" and getattr(d, "state", None) == "active":
            last[str(d.item_id)] = d
    gone["_seq"] = [int(getattr(last.get(i), "seq", 0) or 0) for i in gone["item_id"]]
    gone["deleted_at"] = [str(getattr(last.get(i), "created_at", "") or "").replace("T", " ")[:19]
                          for i in gone["item_id"]]
    gone["source"] = [getattr(last.get(i), "source", "") or "" for i in gone["item_id"]]
    gone["note"] = [getattr(last.get(i), "note", "") or "" for i in gone["item_id"]]
    in_q = (gone["location"] == "quarantine").to_numpy()
    dead = gone["deleted"].astype(bool).to_numpy()
    gone["state"] = ["quarantined" if q and d else "restoring" if q else "pending" for q, d in zip(in_q, dead)]
    words = [w for w in search.lower().split() if w]
    if words:
        hay = (gone["path"].astype(str) + " " + gone["label"].astype(str) + " " + gone["orig_label"].astype(str)
               + " " + gone["note"].astype(str) + " " + gone["source_query"].fillna("").astype(str)).str.lower()
        mask = pd.Series(True, index=gone.index)
        for w in words:
            mask &= hay.str.contains(w, regex=False)
        gone = gone[mask]
    gone = gone.sort_values(["_seq", "path"], ascending=[False, True], kind="stable")
    return gone.reindex(columns=TRASH_COLUMNS).reset_index(drop=True)
