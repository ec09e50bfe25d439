"""The review queue: pure helpers that turn the scan's ranked issue table into what is left to review.

Input shapes (no Streamlit, no disk):

* ``issues`` — the ranked issue table of :func:`cleaning.review.analysis.load_or_find_issues`, one row per
  (image, issue): ``item_id, path, label, issue, severity, suggested_label, related_path, reason``
  (optional extras such as ``predicted_label``, ``confidence``, ``related_item_id`` are carried along).
* ``items`` — :meth:`Workspace.items_frame` (``item_id, path, label, deleted, kept, source_query, ...``).

:func:`build_queue` joins the two, drops what has been dealt with (deleted, marked fine, relabelled
since the scan) and folds the rows into *entries*: one per image for per-image issues (label, outlier,
corrupt, low quality; all of its reasons together) and one per pair for duplicates. Entries are ranked
by severity. :func:`filter_queue` and :func:`page_of` then slice it for the page.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd

from .sources import UNKNOWN as UNKNOWN_SOURCE
from .sources import normalise_query

ISSUE_TYPES = ("label", "outlier", "duplicate", "near_duplicate", "corrupt", "low_quality")
PAIR_TYPES = ("duplicate", "near_duplicate")
ISSUE_NAMES = {"label": "wrong label?", "outlier": "off-topic / outlier", "duplicate": "exact duplicate",
               "near_duplicate": "near duplicate", "corrupt": "unreadable file", "low_quality": "low quality"}

#: Columns of the frame :func:`build_queue` returns.
QUEUE_COLUMNS = ["key", "kind", "item_id", "related_item_id", "path", "related_path", "label", "issue",
                 "issues", "severity", "suggested_label", "predicted_label", "confidence", "reason",
                 "source_query", "source_url", "related_label", "related_source_query", "group", "members",
                 "member_labels", "member_queries"]


def _nan_to_none(v: object) -> object:
    """None for every spelling of "missing" in these tables: None, NaN, pandas NA, ""."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v):
        return None
    return v


def _member(values: pd.Series, among: Iterable[object]) -> np.ndarray:
    """``values.isin(among)`` as a bool array through a Python set: pandas 3's ``isin`` on Arrow strings
    makes one Arrow scalar per element of ``among`` (seconds for the 100,000 ids of a large data set)."""
    wanted = set(among)
    return np.fromiter((v in wanted for v in values.tolist()), dtype=bool, count=len(values))


def _clean(values: pd.Series) -> list:
    """The column as a list with every spelling of "missing" (None, NaN, NA, "") as None."""
    v = values.astype(object)
    gone = v.isna().to_numpy() | (v == "").to_numpy(dtype=bool)
    out = v.tolist()
    for j in np.flatnonzero(gone):
        out[j] = None
    return out


def _related_ids(issues: pd.DataFrame, items: pd.DataFrame) -> pd.Series:
    """The item id of each row's ``related_path`` (an explicit ``related_item_id`` column wins)."""
    ids = items["item_id"].tolist()  # plain lists: iterating an Arrow-backed column is slow
    by_path = dict(zip(items["path"].tolist(), ids))
    if "orig_path" in items.columns:  # after an apply, a scan's path may be the original one
        for p, i in zip(items["orig_path"].tolist(), ids):
            by_path.setdefault(p, i)
    paths = issues["related_path"].tolist() if "related_path" in issues.columns else [None] * len(issues)
    mapped = [by_path.get(p) if isinstance(p, str) else None for p in paths]
    given = _clean(issues["related_item_id"]) if "related_item_id" in issues.columns else [None] * len(issues)
    return pd.Series([g or m for g, m in zip(given, mapped)], index=issues.index, dtype=object)


def open_issues(issues: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """The issue rows that still need a look, each with the item's current state joined on.

    A row is dropped when its image is deleted or gone from the store; a per-image row also when the
    image was marked fine (``kept``); a ``label`` row also when the image was relabelled since the scan
    (to the suggestion or anything else: someone looked at it); a duplicate row when either copy is
    deleted or both copies were marked fine. Rows without an ``item_id`` (a file the store does not track) stay.

    Returns the issue columns plus ``cur_label, related_item_id, related_path, source_query, source_url``
    (``related_*`` filled from each other where the scan gave only one).
    """
    if issues.empty:
        return issues.assign(cur_label=[], related_item_id=[], related_path=[], source_query=[], source_url=[])
    state = items.set_index("item_id")[["label", "deleted", "kept", "source_query", "source_url"]]
    df = issues.copy()
    df["related_item_id"] = _related_ids(df, items).values
    ids = items["item_id"].tolist()
    path_of = dict(zip(ids, items["path"].tolist()))
    rel_path = [path_of.get(i) for i in df["related_item_id"].tolist()]
    if "related_path" in df.columns:
        rel_path = [p if p is not None else q for p, q in zip(_clean(df["related_path"]), rel_path)]
    df["related_path"] = pd.Series(_clean(pd.Series(rel_path, dtype=object)), index=df.index, dtype=object)
    known = pd.Series(_member(df["item_id"], ids), index=df.index)
    tracked = pd.Series([i is not None for i in _clean(df["item_id"])], index=df.index)
    df = df[known | ~tracked].copy()
    known = pd.Series(_member(df["item_id"], ids), index=df.index)
    joined = state.reindex(df["item_id"])
    df["cur_label"] = joined["label"].where(known.values, df["label"]).values
    df["source_query"] = joined["source_query"].values
    df["source_url"] = joined["source_url"].values
    deleted = joined["deleted"].fillna(False).astype(bool).values
    kept = joined["kept"].fillna(False).astype(bool).values
    pair = df["issue"].isin(PAIR_TYPES).values
    drop = deleted | (kept & ~pair)
    drop |= ((df["issue"] == "label") & known & (df["cur_label"] != df["label"])).values
    rel = state.reindex(df["related_item_id"].where(df["related_item_id"].notna(), ""))
    rel_deleted = rel["deleted"].fillna(False).astype(bool).values
    rel_kept = rel["kept"].fillna(False).astype(bool).values
    drop |= pair & (rel_deleted | (kept & rel_kept))
    return df[~drop].reset_index(drop=True)


def build_queue(issues: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Fold the open issue rows into ranked review entries (columns :data:`QUEUE_COLUMNS`).

    ``kind`` is ``"item"`` (one image; ``issues`` lists all its issue types, ``reason`` all reasons,
    ``issue``/``severity`` are those of its worst row), ``"pair"`` (a duplicate pair, once however
    many rows name it; ``item_id`` is the row's image, ``related_item_id`` the other copy) or
    ``"group"`` (a junk group: every open ``outlier`` row with the same ``group`` id, at least two
    members; ``members`` the image ids, ``member_labels`` / ``member_queries`` their classes and source
    queries, ``item_id`` the first member, ``label`` the commonest class). ``key`` is stable across
    reruns (``item:<id>``, ``pair:<id>|<id>``, ``group:<id>``, or ``file:<path>`` for a file the store
    does not track). Sorted by severity, highest first.
    """
    df = open_issues(issues, items)
    if df.empty:
        return pd.DataFrame(columns=QUEUE_COLUMNS)
    info = items.set_index("item_id")
    entries: list[dict] = []
    df = df.sort_values("severity", ascending=False, kind="stable")
    pairs = df[df["issue"].isin(PAIR_TYPES)]
    seen: set[tuple[str, str]] = set()
    for r in pairs.itertuples(index=False):
        a, b = str(r.item_id), str(_nan_to_none(r.related_item_id) or r.related_path)
        pk = (min(a, b), max(a, b))
        if pk in seen:
            continue
        seen.add(pk)
        rel = _nan_to_none(r.related_item_id)
        entries.append({
            "key": f"pair:{pk[0]}|{pk[1]}", "kind": "pair", "item_id": r.item_id, "related_item_id": rel,
            "path": r.path, "related_path": r.related_path, "label": r.cur_label, "issue": r.issue,
            "issues": r.issue, "severity": float(r.severity), "suggested_label": None,
            "predicted_label": _opt(r, "predicted_label"), "confidence": _opt(r, "confidence"),
            "reason": r.reason, "source_query": _nan_to_none(r.source_query),
            "source_url": _nan_to_none(r.source_url),
            "related_label": info["label"].get(rel) if rel is not None else None,
            "related_source_query": _nan_to_none(info["source_query"].get(rel)) if rel is not None else None,
        })
    grouped = _group_rows(df)
    entries += _group_entries(df[grouped], info)
    singles = df[~df["issue"].isin(PAIR_TYPES) & ~grouped]
    entries += _item_entries(singles)
    out = pd.DataFrame(entries, columns=QUEUE_COLUMNS)
    return out.sort_values(["severity", "key"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _item_entries(rows: pd.DataFrame) -> list[dict]:
    """One ``item`` entry per image (or untracked file) of the per-image rows, which come ranked worst
    first: the first row of a key gives the entry's issue, severity, label and source; ``issues`` and
    ``reason`` join the distinct values of all its rows in order; ``suggested_label``,
    ``predicted_label`` and ``confidence`` are the first given ones. One pass over plain column lists
    (a pandas group per image cost ≈ 4 ms each: minutes at 100,000 images)."""
    if rows.empty:
        return []
    n = len(rows)

    def col(name: str) -> list:  # missing values as None
        return _clean(rows[name]) if name in rows.columns else [None] * n

    path, cur_label, issue, severity = (rows[c].tolist() for c in ("path", "cur_label", "issue", "severity"))
    item_id, sugg, pred, conf = col("item_id"), col("suggested_label"), col("predicted_label"), col("confidence")
    reason, query, url = col("reason"), col("source_query"), col("source_url")
    out: dict[str, dict] = {}
    for j in range(n):
        iid = item_id[j]
        key = f"item:{iid}" if iid is not None else f"file:{path[j]}"
        e = out.get(key)
        if e is None:
            e = out[key] = {
                "key": key, "kind": "item", "item_id": iid, "related_item_id": None, "path": path[j],
                "related_path": None, "label": cur_label[j], "issue": issue[j], "issues": {issue[j]: None},
                "severity": float(severity[j]), "suggested_label": None, "predicted_label": None,
                "confidence": None, "reason": {}, "source_query": query[j],
                "source_url": url[j], "related_label": None, "related_source_query": None}
        else:
            e["issues"][issue[j]] = None
        for field, v in (("suggested_label", sugg[j]), ("predicted_label", pred[j]), ("confidence", conf[j])):
            if e[field] is None:
                e[field] = v
        if reason[j] is not None:
            e["reason"][str(reason[j])] = None
    for e in out.values():
        e["issues"] = ", ".join(e["issues"])
        e["reason"] = " · ".join(e["reason"])
    return list(out.values())


def _group_rows(df: pd.DataFrame) -> pd.Series:
    """Open ``outlier`` rows of junk groups that still have at least two open members."""
    if "group" not in df.columns:
        return pd.Series(False, index=df.index)
    gid = df["group"].map(_nan_to_none)
    is_out = (df["issue"] == "outlier") & gid.notna()
    sizes = gid[is_out].map(gid[is_out].value_counts())
    return is_out & sizes.reindex(df.index).fillna(0).ge(2)


def _group_entries(rows: pd.DataFrame, info: pd.DataFrame) -> list[dict]:
    """One ``group`` entry per junk group (the rows are its members' outlier rows, ranked worst first):
    one pass over plain column lists, groups in order of first appearance."""
    if rows.empty:
        return []
    gid, iid, path, lab, query, sev, reason = (rows[c].tolist() for c in (
        "group", "item_id", "path", "cur_label", "source_query", "severity", "reason"))
    groups: dict[object, dict] = {}
    for j in range(len(rows)):
        g = groups.get(gid[j])
        if g is None:
            g = groups[gid[j]] = {"top": j, "members": {}, "severity": float(sev[j])}
        g["severity"] = max(g["severity"], float(sev[j]))
        g["members"].setdefault(str(iid[j]), j)  # the member's first row gives its class and query
    out: list[dict] = []
    for key, g in groups.items():
        top, first = g["top"], list(g["members"].values())
        labels = [str(lab[j]) for j in first]
        counts = Counter(labels)
        most = max(counts.values())
        out.append({
            "key": f"group:{key}", "kind": "group", "item_id": next(iter(g["members"])), "related_item_id": None,
            "path": path[top], "related_path": None, "label": min(c for c, k in counts.items() if k == most),
            "issue": "outlier", "issues": "outlier", "severity": g["severity"], "suggested_label": None,
            "predicted_label": None, "confidence": None, "reason": str(reason[top]),
            "source_query": _nan_to_none(query[top]), "source_url": None, "related_label": None,
            "related_source_query": None, "group": str(key), "members": tuple(g["members"]),
            "member_labels": tuple(labels), "member_queries": tuple(_nan_to_none(query[j]) for j in first),
        })
    return out


def _opt(r: object, col: str) -> object:
    return _nan_to_none(getattr(r, col, None))


def filter_queue(queue: pd.DataFrame, issue_types: list[str] | None = None, classes: list[str] | None = None,
                 queries: list[str] | None = None) -> pd.DataFrame:
    """Entries matching every given filter (``None`` or empty = no filter on that field).

    ``issue_types``: an entry matches if any of its issues is listed. ``classes``: its current label
    (or, for a pair, either copy's). ``queries``: its source query, compared as
    :func:`~cleaning.review.sources.normalise_query` does; :data:`UNKNOWN_SOURCE` matches images with no provenance.
    """
    keep = pd.Series(True, index=queue.index)
    if issue_types:
        wanted = set(issue_types)
        keep &= queue["issues"].map(lambda s: bool(wanted & set(str(s).split(", "))))
    if classes:
        in_group = queue["member_labels"].map(lambda v: bool(set(v) & set(classes)) if isinstance(v, tuple) else False) \
            if "member_labels" in queue.columns else False
        keep &= queue["label"].isin(classes) | queue["related_label"].isin(classes) | in_group
    if queries:
        keep &= queue["source_query"].map(normalise_query).isin({normalise_query(q) if q != UNKNOWN_SOURCE
                                                                  else q for q in queries})
    return queue[keep].reset_index(drop=True)


def page_of(df: pd.DataFrame, page: int, page_size: int) -> tuple[pd.DataFrame, int, int]:
    """Rows of page ``page`` (1-based, clamped into range) → ``(rows, page, n_pages)``; n_pages ≥ 1."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    n_pages = max(1, math.ceil(len(df) / page_size))
    page = min(max(1, int(page)), n_pages)
    start = (page - 1) * page_size
    return df.iloc[start:start + page_size], page, n_pages


def entry_item_ids(entries: pd.DataFrame) -> list[str]:
    """The tracked image ids of some entries (pairs contribute the row's image, groups every member), in
    order, no repeats."""
    members = entries["members"] if "members" in entries.columns else [None] * len(entries)
    ids = [str(m) for i, ms in zip(entries["item_id"], members)
           for m in (ms if isinstance(ms, tuple) else [i]) if _nan_to_none(m) is not None]
    return list(dict.fromkeys(ids))


def queue_counts(queue: pd.DataFrame) -> dict[str, int]:
    """How many open entries name each issue type (an entry with two issues counts for both)."""
    counts = dict.fromkeys(ISSUE_TYPES, 0)
    for s in queue["issues"]:
        for t in str(s).split(", "):
            counts[t] = counts.get(t, 0) + 1
    return counts
