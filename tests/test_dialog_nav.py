"""The review dialog's walk: which list it walks and where it starts (pure parts; AppTest and the browser
tests in test_pages_review.py and browser/test_review.py drive the buttons and keys)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cleaning.review.selection import nearest_on_map
from pages._dialog_nav import walk_position


def test_walk_starts_at_the_opened_image_and_drops_repeats() -> None:
    assert walk_position(["a", "b", "a", "c"], "b") == (["a", "b", "c"], 1)
    assert walk_position(["a", "b"], "z") == (["z"], 0)  # not in the list: nothing to walk
    assert walk_position([], "z") == (["z"], 0)


def test_nearest_on_map_is_the_point_then_its_neighbours_by_distance() -> None:
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(500, 2))
    pts = pd.DataFrame({"item_id": [f"i{k}" for k in range(500)], "x": xy[:, 0], "y": xy[:, 1]})
    got = nearest_on_map(pts, "i7", k=20)
    d = ((xy - xy[7]) ** 2).sum(axis=1)
    assert got[0] == "i7" and len(got) == 20
    assert got[1:] == [f"i{k}" for k in np.argsort(d, kind="stable")[1:20]]
    assert nearest_on_map(pts, "i7", k=10_000)[0] == "i7" and len(nearest_on_map(pts, "i7", k=10_000)) == 500
    assert nearest_on_map(pts, "nope") == []


def test_nearest_on_map_with_the_callers_id_array_gives_the_same_walk() -> None:
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(300, 2))
    pts = pd.DataFrame({"item_id": pd.array([f"i{k}" for k in range(300)], dtype="str"), "x": xy[:, 0], "y": xy[:, 1]})
    ids = pts["item_id"].to_numpy(dtype=object)  # what the Embedding page keeps with its cached points
    assert nearest_on_map(pts, "i42", k=30, ids=ids) == nearest_on_map(pts, "i42", k=30)
    assert nearest_on_map(pts, "nope", ids=ids) == []
