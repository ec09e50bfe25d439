"""The review queue kept up to date across decisions without rebuilding it (issue 15: bulk actions at 100k).

:func:`cleaning.review.queue.build_queue` folds the whole issue table (65,000 rows at 100,000 images, over a
CPU-second) into entries. A decision changes only some images' ``label`` / ``deleted`` / ``kept``, and an
entry depends only on the issue rows it is made of and on the state of the images those rows name. So the
rows are split once per issue table into *components*: rows that share an image (its own rows, the other
copy of a duplicate pair) or a junk group are linked, and every entry is built from the rows of exactly
one component (an image entry from all rows of its image, a pair entry from the rows of its two copies, a
group entry from its members' rows; a group that shrinks to one member turns into that member's image
entry, in the same component). When images change, only the components holding them are rebuilt with
``build_queue`` and spliced into the previous queue; every other entry is kept as it was. Entries are
ordered by (severity, key), a total order (keys are unique), so the result equals a full build row for row
(a missing value may be spelled None where a full build has NaN).

What changed is read from the two items frames (the state columns of the same images, in the same order);
anything else — images added, removed or moved (paths feed the pair links), another issue table — falls
back to a full build. :class:`LiveQueue` holds the latest queue of one issue table and does either.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from . import queue as _queue  # build_queue through the module: tests count its calls
from .queue import PAIR_TYPES, _clean, _related_ids

#: The items-frame columns a decision changes: images whose values differ have their components rebuilt.
STATE_COLUMNS = ("label", "deleted", "kept")
#: The other columns an entry reads (pair links, provenance): any difference there means a full build.
CONTEXT_COLUMNS = ("item_id", "path", "orig_path", "source_query", "source_url")


def _find(parent: dict[str, str], x: str) -> str:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def components(issues: pd.DataFrame, items: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
    """``(row_comp, node_comp)``: a component number per issue row, and per node (``<item id>``, ``file:<path>``
    for a row without one, the pair partner's id or path, ``group:<id>``). Two rows share a component when
    they name a common image (as the row's image or as the pair partner) or the same junk group."""
    n = len(issues)
    if n == 0:
        return np.zeros(0, dtype=np.int64), {}
    iid = _clean(issues["item_id"]) if "item_id" in issues.columns else [None] * n
    path = issues["path"].tolist()
    pair = issues["issue"].isin(PAIR_TYPES).to_numpy() if "issue" in issues.columns else np.zeros(n, dtype=bool)
    rel_id = _related_ids(issues, items).tolist()
    rel_path = _clean(issues["related_path"]) if "related_path" in issues.columns else [None] * n
    group = _clean(issues["group"].astype(object)) if "group" in issues.columns else [None] * n
    parent: dict[str, str] = {}
    first: list[str] = []
    for j in range(n):
        a = str(iid[j]) if iid[j] is not None else f"file:{path[j]}"
        nodes = [a]
        if pair[j]:
            b = rel_id[j] or rel_path[j]
            if b is not None:
                nodes.append(str(b))
        if group[j] is not None:
            nodes.append(f"group:{group[j]}")
        for x in nodes:
            parent.setdefault(x, x)
        ra = _find(parent, a)
        for x in nodes[1:]:
            rx = _find(parent, x)
            if rx != ra:
                parent[rx] = ra
        first.append(a)
    roots: dict[str, int] = {}
    node_comp = {x: roots.setdefault(_find(parent, x), len(roots)) for x in parent}
    return np.array([node_comp[a] for a in first], dtype=np.int64), node_comp


def changed_items(old: pd.DataFrame, new: pd.DataFrame) -> list[str] | None:
    """Ids of the images whose state (:data:`STATE_COLUMNS`) differs between two items frames; None when the
    frames differ in anything else an entry reads (:data:`CONTEXT_COLUMNS`: other images, another order,
    other paths or provenance): then only a full build is right."""
    if len(old) != len(new):
        return None
    for c in CONTEXT_COLUMNS:
        if (c in old.columns) != (c in new.columns):
            return None
        if c in new.columns and not old[c].reset_index(drop=True).equals(new[c].reset_index(drop=True)):
            return None
    diff = np.zeros(len(new), dtype=bool)
    for c in STATE_COLUMNS:
        diff |= (old[c].reset_index(drop=True) != new[c].reset_index(drop=True)).to_numpy(dtype=bool)
    return [str(i) for i in new["item_id"].to_numpy()[diff]]


def entry_components(queue: pd.DataFrame, node_comp: dict[str, int]) -> np.ndarray:
    """The component of each entry (-1 for none): that of its image id (a pair's row image, a group's first
    member) or of ``file:<path>``."""
    nodes = [str(i) if i is not None else f"file:{p}" for i, p in zip(_clean(queue["item_id"]), queue["path"].tolist())]
    return np.fromiter((node_comp.get(x, -1) for x in nodes), dtype=np.int64, count=len(nodes))


def splice(queue: pd.DataFrame, entry_comp: np.ndarray, issues: pd.DataFrame, items: pd.DataFrame,
           changed: list[str], row_comp: np.ndarray, node_comp: dict[str, int]) -> tuple[pd.DataFrame, np.ndarray]:
    """``build_queue(issues, items)`` (and its :func:`entry_components`) from the previous ``queue`` and its
    ``entry_comp``, built from the same ``issues`` and from items that differ from ``items`` only in the state
    of the images ``changed``: the components holding a changed image are rebuilt, with only their own rows
    and images (what an entry reads), the rest kept."""
    comps = {node_comp[i] for i in changed if i in node_comp}
    if not comps:
        return queue, entry_comp
    wanted = np.fromiter(comps, dtype=np.int64, count=len(comps))
    nodes = {x for x, k in node_comp.items() if k in comps}
    ids = items["item_id"].tolist()
    mine = np.fromiter((i in nodes for i in ids), dtype=bool, count=len(ids))
    fresh = _queue.build_queue(issues[np.isin(row_comp, wanted)], items[mine])
    stale = np.isin(entry_comp, wanted)
    parts = [(p, c) for p, c in ((queue[~stale], entry_comp[~stale]),
                                  (fresh, entry_components(fresh, node_comp))) if len(p)]
    if not parts:
        return pd.DataFrame(columns=_queue.QUEUE_COLUMNS), entry_comp[:0]
    if len(parts) == 1:
        return _typed_as_built(parts[0][0].reset_index(drop=True), []), parts[0][1]
    (a, ca), (b, cb) = parts
    out = pd.concat([a, b], ignore_index=True)
    out = out.sort_values(["severity", "key"], ascending=[False, True], kind="stable")
    comp = np.concatenate([ca, cb])[out.index.to_numpy()]
    return _typed_as_built(out.reset_index(drop=True), [c for c in out.columns if a[c].dtype != b[c].dtype]), comp


def _typed_as_built(out: pd.DataFrame, mixed: list[str]) -> pd.DataFrame:
    """A column typed apart in the two spliced parts is typed as a whole, as build_queue's one constructor
    would (str with NaN, not object with None). Missing values may still be spelled None where a full build
    has NaN (an all-missing column keeps the type it had): every reader treats both as missing."""
    for c in mixed:
        out[c] = pd.Series(out[c].tolist(), index=out.index)
    return out


class LiveQueue:
    """The latest queue of one issue table, brought up to date for a new items frame by :func:`splice` when
    only image states changed, else built afresh (with the components, so the first decision pays no more
    than the next). Thread-safe; the frames it returns are shared: do not modify them. ``full_builds``
    counts the full builds (a measure for tests and benchmarks)."""

    def __init__(self, issues: pd.DataFrame) -> None:
        self.issues = issues
        self._lock = threading.Lock()
        self._items: pd.DataFrame | None = None
        self._queue: pd.DataFrame | None = None
        self._entry_comp = np.zeros(0, dtype=np.int64)
        self._comps: tuple[np.ndarray, dict[str, int]] = (np.zeros(0, dtype=np.int64), {})
        self.full_builds = 0

    def queue(self, items: pd.DataFrame) -> pd.DataFrame:
        with self._lock:
            if self._items is items and self._queue is not None:
                return self._queue
            changed = None if self._items is None else changed_items(self._items, items)
            if changed is None or self._queue is None:
                self._queue = _queue.build_queue(self.issues, items)
                self._comps = components(self.issues, items)
                self._entry_comp = entry_components(self._queue, self._comps[1])
                self.full_builds += 1
            elif changed:
                self._queue, self._entry_comp = splice(self._queue, self._entry_comp, self.issues, items, changed,
                                                       *self._comps)
            self._items = items
            return self._queue
