"""Colour by junk group on the embedding map (issue 9): the scan's ``group`` column reaches the points and the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cleaning.review.figures import COLOUR_COLUMNS, embedding_figure
from cleaning.review.selection import NO_GROUP, embedding_points, junk_groups


def test_points_carry_the_junk_group_and_the_figure_colours_by_it() -> None:
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "path": ["x/a", "x/b", "y/c", "y/d"],
                          "label": ["x", "x", "y", "y"], "deleted": [False, False, False, True]})
    iss = pd.DataFrame({"item_id": ["a", "c", "b"], "issue": ["outlier", "outlier", "label"],
                        "severity": [0.8, 0.8, 0.9], "group": ["junk-1", "junk-1", ""]})
    assert junk_groups(iss) == {"a": "junk-1", "c": "junk-1"} and junk_groups(None) == {}
    pts = embedding_points(items, ["a", "b", "c", "d"], np.arange(8, dtype=float).reshape(4, 2), None, iss)
    assert pts.set_index("item_id")["group"].to_dict() == {"a": "junk-1", "b": NO_GROUP, "c": "junk-1", "d": NO_GROUP}
    assert "group" in COLOUR_COLUMNS
    fig = embedding_figure(pts, "group")
    names = {t.name: {pts["item_id"][int(r)] for r in t.customdata} for t in fig.data}
    assert names["junk-1 (2)"] == {"a", "c"} and names[f"{NO_GROUP} (1)"] == {"b"} and names["deleted (1)"] == {"d"}


def test_the_queue_folds_a_junk_group_into_one_entry() -> None:
    from cleaning.review.queue import build_queue, entry_item_ids, filter_queue

    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "path": ["dog/a", "cat/b", "cow/c", "dog/d"],
                          "label": ["dog", "cat", "cow", "dog"], "deleted": [False] * 4,
                          "kept": [False, False, False, False],
                          "source_query": ["dog sun", "cat sun", None, "dog"], "source_url": [None] * 4})
    iss = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "path": ["dog/a", "cat/b", "cow/c", "dog/d"],
                        "label": ["dog", "cat", "cow", "dog"], "issue": ["outlier"] * 3 + ["label"],
                        "severity": [0.8, 0.8, 0.8, 0.9], "suggested_label": ["", "", "", "cat"],
                        "related_path": [""] * 4, "reason": ["3 look-alike images"] * 3 + ["wrong"],
                        "group": ["junk-1"] * 3 + [""]})
    q = build_queue(iss, items)
    assert sorted(q["kind"]) == ["group", "item"]
    g = q[q["kind"] == "group"].iloc[0]
    assert g["key"] == "group:junk-1" and set(g["members"]) == {"a", "b", "c"}
    assert sorted(g["member_labels"]) == ["cat", "cow", "dog"] and pd.isna(g["suggested_label"])
    assert entry_item_ids(q[q["kind"] == "group"]) == list(g["members"])
    assert len(filter_queue(q, classes=["cow"])) == 1  # the group matches any of its members' classes
    items.loc[items["item_id"].isin(["a", "b"]), "kept"] = True  # two reviewed alone: one member left
    q2 = build_queue(iss, items)
    assert "group" not in set(q2["kind"]) and "item:c" in set(q2["key"])
