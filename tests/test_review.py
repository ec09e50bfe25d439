"""Pure review helpers: selections → item ids, stale ids, predictions, the confusion matrix, colours, figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from cleaning.errors import CleaningError
from cleaning.review.figures import WEBGL_ABOVE, confusion_figure, embedding_figure
from cleaning.review.selection import (
    Predictions,
    colour_codes,
    compute_confusion,
    confusion_from_items,
    drop_stale,
    embedding_points,
    issues_by_item,
    read_selection,
    selected_points,
    top_issue,
)


def sel(points: list[dict], box: list | None = None, lasso: list | None = None) -> dict:
    return {"selection": {"points": points, "point_indices": list(range(len(points))),
                          "box": box or [], "lasso": lasso or []}}


def items_frame(ids: list[str], labels: list[str], deleted: list[bool] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"item_id": ids, "path": [f"{lab}/{i}.jpg" for i, lab in zip(ids, labels)],
                         "label": labels, "deleted": deleted or [False] * len(ids)})


# ---- selections -------------------------------------------------------------------------------------
def test_a_click_names_the_item_by_customdata_not_by_index() -> None:
    ev = read_selection(sel([{"curve_number": 1, "point_index": 0, "customdata": "b7"}]))
    assert ev.kind == "point" and ev.item_ids == ("b7",) and ev.single == "b7"


def test_customdata_may_be_a_list_whose_first_element_is_the_id() -> None:
    ev = read_selection(sel([{"point_index": 3, "customdata": ["id3", "cat/x.jpg"]}]))
    assert ev.single == "id3"


def test_inner_selection_dict_none_and_empty_are_accepted() -> None:
    assert read_selection(None).kind == "none"
    assert read_selection({}).kind == "none"
    assert read_selection({"points": [{"customdata": "a"}]}).single == "a"
    assert read_selection(sel([])).signature == ("none", ())


def test_points_without_an_item_id_are_ignored() -> None:
    ev = read_selection(sel([{"point_index": 0}, {"customdata": None}, {"customdata": "x"}]))
    assert ev.item_ids == ("x",)


def test_box_or_lasso_is_an_area_selection_even_with_one_point() -> None:
    ev = read_selection(sel([{"customdata": "a"}], box=[{"x": [0, 1], "y": [0, 1]}]))
    assert ev.kind == "area" and ev.single is None
    ev = read_selection(sel([{"customdata": "a"}, {"customdata": "b"}, {"customdata": "a"}], lasso=[{}]))
    assert ev.item_ids == ("a", "b")


def test_signature_tells_a_new_selection_from_the_one_already_handled() -> None:
    a = read_selection(sel([{"customdata": "a"}, {"customdata": "b"}], box=[{}]))
    b = read_selection(sel([{"customdata": "b"}, {"customdata": "a"}], box=[{}]))
    c = read_selection(sel([{"customdata": "a"}]))
    assert a.signature == b.signature != c.signature
    assert read_selection(sel([{"customdata": "a"}, {"customdata": "b"}])).single is None


def test_selected_points_returns_raw_points() -> None:
    pts = selected_points(sel([{"customdata": ["bird", "mammal", 3]}]))
    assert pts == [{"customdata": ["bird", "mammal", 3]}]


def test_drop_stale_keeps_order_and_drops_missing_and_optionally_deleted() -> None:
    df = items_frame(["a", "b", "c"], ["x", "x", "y"], [False, True, False])
    assert drop_stale(["c", "zz", "b", "a", "c"], df) == ["c", "b", "a"]
    assert drop_stale(["c", "b", "a"], df, keep_deleted=False) == ["c", "a"]


# ---- predictions and issues ---------------------------------------------------------------------------
def test_predictions_per_item() -> None:
    p = Predictions(["a", "b"], ["cat", "dog"], np.array([[0.9, 0.1], [0.3, 0.7]], np.float32))
    assert p.for_item("b", "cat") == pytest.approx(("dog", 0.7, 0.3))
    assert p.for_item("b", "horse")[2] is None and p.for_item("zz") is None
    assert list(p.frame().loc[["a", "b"], "pred"]) == ["cat", "dog"]
    with pytest.raises(CleaningError):
        Predictions(["a"], ["cat", "dog"], np.zeros((2, 2)))


def test_issues_by_item_and_top_issue_keep_the_ranking() -> None:
    iss = pd.DataFrame({"item_id": ["b", "a", "b"], "issue": ["label", "outlier", "near_duplicate"],
                        "severity": [0.9, 0.8, 0.5], "reason": ["r1", "r2", "r3"]})
    assert [r["issue"] for r in issues_by_item(iss)["b"]] == ["label", "near_duplicate"]
    assert top_issue(iss).to_dict() == {"b": "label", "a": "outlier"}
    assert issues_by_item(None) == {} and top_issue(None).empty


def test_embedding_points_join_current_state_and_drop_vanished_items() -> None:
    df = items_frame(["a", "b", "c"], ["cat", "cat", "dog"], [False, True, False])
    p = Predictions(["a", "c"], ["cat", "dog"], np.array([[0.2, 0.8], [0.1, 0.9]], np.float32))
    iss = pd.DataFrame({"item_id": ["a"], "issue": ["label"]})
    pts = embedding_points(df, ["a", "b", "gone"], np.array([[0, 1], [2, 3], [4, 5]], float), p, iss)
    assert list(pts["item_id"]) == ["a", "b"]
    assert pts.set_index("item_id").loc["a", ["pred", "issue"]].tolist() == ["dog", "label"]
    assert pts.set_index("item_id").loc["b", ["pred", "issue"]].tolist() == ["no prediction", "no issue"]
    with pytest.raises(CleaningError):
        embedding_points(df, ["a"], np.zeros((2, 2)))


# ---- confusion matrix ---------------------------------------------------------------------------------
def test_confusion_counts_cells_and_most_confused() -> None:
    c = compute_confusion(["1", "2", "3", "4"], ["cat", "cat", "dog", "dog"], ["cat", "dog", "dog", "dog"])
    assert c.vocab == ["cat", "dog"] and c.counts.tolist() == [[1, 1], [0, 2]]
    assert c.ids("cat", "dog") == ["2"] and c.ids("dog", "cat") == [] and c.ids("emu", "cat") == []
    assert c.most_confused() == [("cat", "dog", 1)] and c.accuracy() == 0.75
    with pytest.raises(CleaningError):
        compute_confusion(["1"], ["cat", "dog"], ["cat"])
    with pytest.raises(CleaningError):
        compute_confusion(["1"], ["cat"], ["dog"], vocab=["cat"])


@settings(max_examples=60, deadline=None)
@given(hs.lists(hs.tuples(hs.sampled_from("abcd"), hs.sampled_from("abc"), hs.booleans()), max_size=40))
def test_confusion_over_current_labels_sums_to_live_predicted_items(rows: list[tuple[str, str, bool]]) -> None:
    ids = [f"i{n}" for n in range(len(rows))]
    df = items_frame(ids, [r[0] for r in rows], [r[2] for r in rows])
    vocab = ["a", "b", "c"]
    probs = np.eye(3, dtype=np.float32)[[vocab.index(r[1]) for r in rows]].reshape(len(rows), 3)
    c = confusion_from_items(df, Predictions(ids, vocab, probs))
    live = [r for r in rows if not r[2]]
    assert c.n == len(live) == sum(len(v) for v in c.cells.values())
    for (i, j), cell in c.cells.items():
        assert len(cell) == c.counts[i, j]
    assert set(c.vocab) >= {r[0] for r in live}  # a label the model never saw still gets a row


# ---- colours and figures ------------------------------------------------------------------------------
def test_colour_codes_are_numbers_with_a_stepped_scale_and_neutral_last() -> None:
    codes, scale, cats = colour_codes(["dog", "no issue", "cat", "dog"])
    assert cats == ["cat", "dog", "no issue"] and codes.tolist() == [1, 2, 0, 1]
    assert len(scale) == 6 and scale[0][0] == 0 and scale[-1][0] == 1 and scale[4][1] == "#c7ccd4"
    with pytest.raises(CleaningError):
        colour_codes(["x"], categories=["y"])


def _points(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    labels = rng.choice(["a", "b", "c"], n)
    return pd.DataFrame({"item_id": [f"id{i}" for i in range(n)], "x": rng.normal(size=n),
                         "y": rng.normal(size=n), "path": [f"{lab}/{i}.jpg" for i, lab in enumerate(labels)],
                         "label": labels, "deleted": False, "pred": labels, "confidence": 0.9,
                         "issue": "no issue"})


def test_embedding_figure_names_each_point_by_its_row_and_uses_webgl_for_many_points() -> None:
    pts = _points(50)
    small = embedding_figure(pts, "label")
    assert {t.type for t in small.data} == {"scatter"} and len(small.data) == pts["label"].nunique()
    rows = [int(i) for t in small.data for i in t.customdata]
    assert sorted(rows) == list(range(len(pts)))  # every image once, named by its row in the points
    first = small.data[0]
    assert first.name.startswith(pts["label"][int(first.customdata[0])])
    assert all(t.hoverinfo == "none" and t.hovertext is None and t.text is None for t in small.data)
    sel = {"selection": {"points": [{"curve_number": 0, "point_index": 0, "customdata": int(first.customdata[0])}],
                         "box": [], "lasso": []}}
    assert read_selection(sel, ids=pts["item_id"].to_numpy()).single == pts["item_id"][int(first.customdata[0])]
    big = embedding_figure(_points(WEBGL_ABOVE + 1), "pred")
    assert {t.type for t in big.data} == {"scattergl"}
    assert all(isinstance(t.marker.color, str) for t in big.data)  # one colour per trace, not per point
    with pytest.raises(ValueError):
        embedding_figure(_points(3), "colour")


def test_a_map_denser_than_50000_points_draws_smaller_markers() -> None:
    """With software WebGL a click's selection redraws every marker in the GPU process: at 100,000 points
    5 px markers cost 0.86 CPU-s of it per click, 3 px 0.59 (bench/results/app_scale_map.md)."""
    from cleaning.review.figures import SMALL_MARKERS_ABOVE

    assert {t.marker.size for t in embedding_figure(_points(WEBGL_ABOVE + 1), "label").data} == {5}
    dense = embedding_figure(_points(SMALL_MARKERS_ABOVE + 1), "label")
    assert {t.type for t in dense.data} == {"scattergl"} and {t.marker.size for t in dense.data} == {3}
    assert {t.selected.marker.size for t in dense.data} == {8}  # the clicked point still stands out


def test_a_row_number_selection_names_the_rows_item_and_ignores_anything_else() -> None:
    ids = np.array(["a", "b", "c"], dtype=object)
    assert read_selection(sel([{"customdata": 2}]), ids=ids).single == "c"
    assert read_selection(sel([{"customdata": 1.0}]), ids=ids).single == "b"  # JSON may give a float
    for bad in (3, -1, 1.5, True, "b", None):  # outside the rows, not a whole number, not a number
        assert read_selection(sel([{"customdata": bad}]), ids=ids).kind == "none", bad
    area = read_selection(sel([{"customdata": 0}, {"customdata": 2}, {"customdata": 0}], lasso=[{}]), ids=ids)
    assert area.kind == "area" and area.item_ids == ("a", "c")


def test_a_20000_point_map_figure_carries_no_text_per_point() -> None:
    """What every page load waits for: the 20k-point figure as Streamlit serialises it
    (``plotly.io.to_json``). 10 bytes a point (x, y float32 and a uint16 row) are 267 kB in base64, ≈330 kB
    once plotly's JSON has escaped every "/" of the base64 as ``\\u002f``; the budget adds 20 kB for the
    layout. One short string per point (a path, an item id) would add ≥ 0.3 MB; the hover texts were 2 MB."""
    import json

    import plotly.io as pio

    pts = _points(20_000)
    for colour in ("label", "issue"):
        spec = pio.to_json(embedding_figure(pts, colour), validate=False)
        assert len(spec) < 350_000, (colour, len(spec))
        assert ".jpg" not in spec  # no path (a "." is not in base64's alphabet)
        for trace in json.loads(spec)["data"]:  # every per-point array a typed array, none a list of values
            assert {trace[k]["dtype"] for k in ("x", "y", "customdata")} <= {"f4", "u1", "u2", "u4"}, trace.keys()
            assert not {"text", "hovertext", "ids", "hovertemplate"} & set(trace)


def test_confusion_figure_has_a_clickable_marker_on_every_cell() -> None:
    c = compute_confusion(["1", "2", "3"], ["cat", "cat", "dog"], ["cat", "dog", "dog"])
    fig = confusion_figure(c, selected=("cat", "dog"))
    heat, cells = fig.data
    assert heat.type == "heatmap" and cells.type == "scatter" and len(cells.x) == 4
    assert ["cat", "dog", "1"] in [list(map(str, cd)) for cd in cells.customdata]
    assert len(fig.layout.shapes) == 1
