"""The review queue: what is left to review after decisions, filters, paging, duplicate pairs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleaning.data.workspace import Workspace
from cleaning.review.queue import (
    QUEUE_COLUMNS,
    UNKNOWN_SOURCE,
    build_queue,
    entry_item_ids,
    filter_queue,
    open_issues,
    page_of,
    queue_counts,
)
from tests.hostile import make_image_tree


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    make_image_tree(tmp_path / "ds", {"cat": 4, "dog": 4})
    ws = Workspace.open(tmp_path / "ds")
    for p, q in (("cat/img_0.jpg", "cat"), ("cat/img_1.jpg", "cat wallpaper"), ("dog/img_0.jpg", "dog photo")):
        ws.store.set_provenance(ws.store.find_item(p), query=q, url=f"https://x.example.com/{p}")
    return ws


def iid(ws: Workspace, path: str) -> str:
    return ws.store.find_item(path)


def issue_table(ws: Workspace) -> pd.DataFrame:
    """A scan-shaped table: a label issue, an outlier on the same image, a duplicate pair named twice,
    a near-duplicate, a low-quality image and a corrupt file the store does not track."""
    rows = [
        ("cat/img_0.jpg", "cat", "label", 0.95, "dog", None, "predicted dog with 0.95"),
        ("cat/img_0.jpg", "cat", "outlier", 0.40, None, None, "far from every class"),
        ("cat/img_1.jpg", "cat", "outlier", 0.90, None, None, "far from cat"),
        ("dog/img_1.jpg", "dog", "duplicate", 0.80, None, "dog/img_2.jpg", "same bytes"),
        ("dog/img_2.jpg", "dog", "duplicate", 0.80, None, "dog/img_1.jpg", "same bytes"),
        ("cat/img_2.jpg", "cat", "near_duplicate", 0.60, None, "dog/img_3.jpg", "cosine 0.98"),
        ("dog/img_0.jpg", "dog", "low_quality", 0.30, None, None, "blurry"),
        ("dog/broken.jpg", "dog", "corrupt", 1.00, None, None, "truncated JPEG"),
    ]
    df = pd.DataFrame(rows, columns=["path", "label", "issue", "severity", "suggested_label", "related_path",
                                     "reason"])
    known = dict(zip(ws.items_frame()["path"], ws.items_frame()["item_id"]))
    df.insert(0, "item_id", df["path"].map(known))
    return df.sort_values("severity", ascending=False).reset_index(drop=True)


def test_build_queue_folds_rows_into_ranked_entries(ws: Workspace) -> None:
    q = build_queue(issue_table(ws), ws.items_frame())
    assert list(q.columns) == QUEUE_COLUMNS
    assert q["severity"].is_monotonic_decreasing
    assert list(q["kind"]).count("pair") == 2  # the duplicate named twice is one entry
    first = q[q["item_id"] == iid(ws, "cat/img_0.jpg")].iloc[0]
    assert first["issues"] == "label, outlier" and first["suggested_label"] == "dog"
    assert "predicted dog" in first["reason"] and "far from every class" in first["reason"]
    assert first["source_query"] == "cat"
    corrupt = q[q["issue"] == "corrupt"].iloc[0]
    assert pd.isna(corrupt["item_id"]) and corrupt["path"] == "dog/broken.jpg" and q.iloc[0]["issue"] == "corrupt"
    dup = q[q["issue"] == "duplicate"].iloc[0]
    assert {dup["item_id"], dup["related_item_id"]} == {iid(ws, "dog/img_1.jpg"), iid(ws, "dog/img_2.jpg")}
    assert dup["related_label"] == "dog"
    assert q["key"].is_unique


def test_detector_shaped_table_with_empty_strings_and_related_ids(ws: Workspace) -> None:
    """The detectors write "" for missing values and name the other copy by ``related_item_id``."""
    t = issue_table(ws)
    t["related_item_id"] = t["related_path"].map(lambda p: iid(ws, p) if isinstance(p, str) else "")
    t = t.drop(columns="related_path").fillna("")
    q = build_queue(t, ws.items_frame())
    assert list(q["kind"]).count("pair") == 2 and len(q) == len(build_queue(issue_table(ws), ws.items_frame()))
    assert q[q["issue"] == "corrupt"].iloc[0]["key"] == "file:dog/broken.jpg"
    ws.store.record([iid(ws, "dog/img_2.jpg")], "delete")
    assert list(build_queue(t, ws.items_frame())["kind"]).count("pair") == 1


def test_reviewed_items_leave_the_queue_and_undo_brings_them_back(ws: Workspace) -> None:
    issues = issue_table(ws)
    n0 = len(build_queue(issues, ws.items_frame()))
    ws.store.record([iid(ws, "cat/img_0.jpg")], "relabel", label="dog", source="suggestion")
    ws.store.record([iid(ws, "cat/img_1.jpg")], "delete")
    ws.store.record([iid(ws, "dog/img_0.jpg")], "keep")
    ws.store.record([iid(ws, "dog/img_2.jpg")], "delete")  # "keep this one" on the duplicate pair
    q = build_queue(issues, ws.items_frame())
    left = set(q["path"])
    assert left == {"cat/img_0.jpg", "cat/img_2.jpg", "dog/broken.jpg"}
    # relabelled to the suggestion: its label row is gone, its outlier row (unrelated to the label) stays
    assert q[q["path"] == "cat/img_0.jpg"].iloc[0]["issues"] == "outlier"
    for _ in range(4):
        ws.store.undo()
    assert len(build_queue(issues, ws.items_frame())) == n0


def test_marking_fine_keeps_pair_until_both_copies_are_fine(ws: Workspace) -> None:
    issues = issue_table(ws)
    ws.store.record([iid(ws, "dog/img_1.jpg")], "keep")
    assert "duplicate" in set(build_queue(issues, ws.items_frame())["issue"])
    ws.store.record([iid(ws, "dog/img_2.jpg")], "keep")
    assert "duplicate" not in set(build_queue(issues, ws.items_frame())["issue"])


def test_relabel_to_another_label_also_counts_as_reviewed(ws: Workspace) -> None:
    issues = issue_table(ws)
    ws.store.record([iid(ws, "cat/img_0.jpg")], "keep")
    assert "cat/img_0.jpg" not in set(open_issues(issues, ws.items_frame())["path"])


def test_items_gone_from_the_store_are_dropped(ws: Workspace) -> None:
    issues = issue_table(ws)
    items = ws.items_frame()
    items = items[items["path"] != "cat/img_1.jpg"]
    assert "cat/img_1.jpg" not in set(build_queue(issues, items)["path"])


def test_filters(ws: Workspace) -> None:
    q = build_queue(issue_table(ws), ws.items_frame())
    assert set(filter_queue(q, issue_types=["outlier"])["path"]) == {"cat/img_0.jpg", "cat/img_1.jpg"}
    assert set(filter_queue(q, issue_types=["duplicate", "near_duplicate"])["kind"]) == {"pair"}
    # a pair matches a class if either copy has it
    assert "cat/img_2.jpg" in set(filter_queue(q, classes=["dog"])["path"])
    assert set(filter_queue(q, classes=["cat"], issue_types=["label"])["path"]) == {"cat/img_0.jpg"}
    assert set(filter_queue(q, queries=["cat wallpaper"])["path"]) == {"cat/img_1.jpg"}
    unknown = filter_queue(q, queries=[UNKNOWN_SOURCE])
    assert "cat/img_2.jpg" in set(unknown["path"]) and "cat/img_1.jpg" not in set(unknown["path"])
    assert len(filter_queue(q, None, [], None)) == len(q)


def test_counts_and_ids(ws: Workspace) -> None:
    q = build_queue(issue_table(ws), ws.items_frame())
    c = queue_counts(q)
    assert c["label"] == 1 and c["outlier"] == 2 and c["duplicate"] == 1 and c["corrupt"] == 1
    ids = entry_item_ids(q)
    assert len(ids) == len(set(ids)) == len(q) - 1  # the untracked corrupt file has no id


def test_empty_inputs() -> None:
    empty = pd.DataFrame(columns=["item_id", "path", "label", "issue", "severity", "suggested_label",
                                  "related_path", "reason"])
    items = pd.DataFrame(columns=["item_id", "path", "label", "deleted", "kept", "source_query", "source_url"])
    q = build_queue(empty, items)
    assert q.empty and list(q.columns) == QUEUE_COLUMNS
    assert filter_queue(q, ["label"], ["cat"], ["x"]).empty
    rows, page, n = page_of(q, 3, 10)
    assert rows.empty and page == 1 and n == 1


@given(n=st.integers(0, 250), size=st.integers(1, 40), page=st.integers(-3, 30))
def test_paging_covers_every_row_once(n: int, size: int, page: int) -> None:
    df = pd.DataFrame({"x": range(n)})
    rows, p, n_pages = page_of(df, page, size)
    assert 1 <= p <= n_pages and len(rows) <= size
    seen = [x for k in range(1, n_pages + 1) for x in page_of(df, k, size)[0]["x"]]
    assert seen == list(range(n))


def test_page_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        page_of(pd.DataFrame({"x": [1]}), 1, 0)


# ---- at scale (issue 15: the app at 100,000 images) ---------------------------------------------------
def synthetic(n_items: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An items frame of ``n_items`` images and a scan-shaped table over them: label rows, outlier rows
    (some in junk groups of 2-5), a few duplicate pairs, missing values spelt as None, NaN and ""."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = [f"{i:08x}" for i in range(n_items)]
    labels = np.array(["a", "b", "c"])[rng.integers(0, 3, n_items)]
    items = pd.DataFrame({"item_id": ids, "path": [f"{lab}/{i}.jpg" for lab, i in zip(labels, ids)],
                          "label": labels, "deleted": rng.random(n_items) < 0.05,
                          "kept": rng.random(n_items) < 0.05,
                          "source_query": np.where(rng.random(n_items) < 0.5, "q one", None),
                          "source_url": None})
    rows = []
    for j in rng.choice(n_items, n_items // 2, replace=False):
        rows.append({"item_id": ids[j], "path": items.path[j], "label": labels[j], "issue": "label",
                     "severity": float(rng.random()), "suggested_label": ["b", None, "", float("nan")][j % 4],
                     "related_path": None, "reason": ["votes", "", None][j % 3],
                     "predicted_label": ["c", None][j % 2], "confidence": [0.9, float("nan")][j % 2], "group": ""})
    for j in rng.choice(n_items, n_items // 3, replace=False):
        rows.append({"item_id": ids[j], "path": items.path[j], "label": labels[j], "issue": "outlier",
                     "severity": float(rng.random()), "suggested_label": None, "related_path": None,
                     "reason": "far", "predicted_label": None, "confidence": None,
                     "group": f"g{j // 28}" if j % 7 == 0 else ""})
    for j in range(0, min(n_items - 1, 200), 2):
        rows.append({"item_id": ids[j], "path": items.path[j], "label": labels[j], "issue": "duplicate",
                     "severity": 1.0, "suggested_label": None, "related_path": items.path[j + 1],
                     "reason": "same bytes", "predicted_label": None, "confidence": None, "group": ""})
    rows.append({"item_id": None, "path": "a/broken.jpg", "label": "a", "issue": "corrupt", "severity": 1.0,
                 "suggested_label": None, "related_path": None, "reason": "truncated", "predicted_label": None,
                 "confidence": None, "group": ""})
    return pd.DataFrame(rows), items


def reference_item_entries(issues: pd.DataFrame, items: pd.DataFrame) -> dict[str, dict]:
    """The per-image entries folded the slow, obvious way (a pandas group per image), for comparison."""
    import math

    def none(v: object) -> object:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" else v

    q = build_queue(issues, items)
    df = open_issues(issues, items).sort_values("severity", ascending=False, kind="stable")
    grouped = set(q.loc[q["kind"] == "group", "members"].explode().dropna())
    df = df[~df["issue"].isin(("duplicate", "near_duplicate")) & ~(df["item_id"].isin(grouped)
                                                                   & (df["issue"] == "outlier"))]
    key = [f"item:{i}" if none(i) is not None else f"file:{p}" for i, p in zip(df["item_id"], df["path"])]
    out = {}
    for k, g in df.groupby(pd.Series(key, index=df.index), sort=False):
        vals = {c: [none(v) for v in g[c]] for c in ("suggested_label", "predicted_label", "confidence")}
        out[k] = {"issue": g["issue"].iloc[0], "issues": ", ".join(dict.fromkeys(g["issue"])),
                  "severity": float(g["severity"].iloc[0]), "label": g["cur_label"].iloc[0],
                  "reason": " · ".join(dict.fromkeys(str(r) for r in g["reason"] if none(r) is not None)),
                  **{c: next((v for v in vs if v is not None), None) for c, vs in vals.items()}}
    return out


def test_build_queue_item_entries_match_the_obvious_fold() -> None:
    issues, items = synthetic(3000)
    q = build_queue(issues, items).set_index("key")
    ref = reference_item_entries(issues, items)
    got = q[q["kind"] == "item"]
    assert set(got.index) == set(ref) and len(ref) > 1000 and "file:a/broken.jpg" in ref
    for k, want in ref.items():
        row = got.loc[k]
        for c, v in want.items():
            gap = v is None or v != v  # None or NaN: the entry must hold a missing value too
            assert (row[c] is None or row[c] != row[c]) if gap else row[c] == v, (k, c, row[c], v)
    groups = q[q["kind"] == "group"]
    assert len(groups) > 10
    for _, g in groups.iterrows():  # the commonest class of the members, the first in order on a tie
        counts = pd.Series(g["member_labels"]).value_counts()
        assert g["label"] == min(counts[counts == counts.max()].index)
