"""Per-source statistics: which search query, query template or website brought in the bad images."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from cleaning.data.workspace import Workspace
from cleaning.review.figures import sources_figure
from cleaning.review.sources import (
    PROBLEMS,
    SOURCE_COLUMNS,
    UNKNOWN,
    binomial_tail,
    item_outcomes,
    query_template,
    source_host,
    summarize_sources,
)
from tests.hostile import make_image_tree

PROVENANCE = {  # dog: 2 clean "dog" images, 3 from "dog sun photo" (2 bad); cat: "cat wallpaper" mostly bad
    "dog/img_0.jpg": ("dog", "https://www.images.example.com/a.jpg"),
    "dog/img_1.jpg": ("dog", "https://images.example.com/b.jpg"),
    "dog/img_2.jpg": ("dog sun photo", "https://wallpapers.example.net/c.jpg"),
    "dog/img_3.jpg": ("dog sun photo", "https://wallpapers.example.net/d.jpg"),
    "dog/img_4.jpg": ("Dog  sun photo", "https://wallpapers.example.net/e.jpg"),
    "cat/img_0.jpg": ("cat", "https://images.example.com/f.jpg"),
    "cat/img_1.jpg": ("cat wallpaper", "https://wallpapers.example.net/g.jpg"),
    "cat/img_2.jpg": ("Cat Wallpaper", "https://wallpapers.example.net/h.jpg"),
    # cat/img_3.jpg: no provenance
}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    make_image_tree(tmp_path / "ds", {"cat": 4, "dog": 5})
    ws = Workspace.open(tmp_path / "ds")
    for p, (q, u) in PROVENANCE.items():
        ws.store.set_provenance(ws.store.find_item(p), query=q, url=u)
    return ws


def issues_for(ws: Workspace, paths: list[str], issue: str = "outlier") -> pd.DataFrame:
    return pd.DataFrame({"item_id": [ws.store.find_item(p) for p in paths], "path": paths,
                         "issue": issue, "severity": 0.9})


def test_host_and_template() -> None:
    assert source_host("https://www.images.example.com/x.jpg?a=1") == "images.example.com"
    assert source_host("http://[::1]:8000/x") == "::1"
    for bad in (None, "", float("nan"), "not a url"):
        assert source_host(bad) == UNKNOWN
    assert query_template("dog wallpaper", "dog") == "{label} wallpaper"
    assert query_template("Golden  Retriever Dog", "dog") == "golden retriever {label}"
    assert query_template("hotdog", "dog") == "hotdog"  # whole words only
    assert query_template(None, "dog") == UNKNOWN


def test_flagged_deleted_relabelled_counted_once_per_image(ws: Workspace) -> None:
    s = ws.store
    s.record([s.find_item("dog/img_2.jpg")], "delete")
    s.record([s.find_item("dog/img_3.jpg")], "relabel", label="cat")
    s.record([s.find_item("cat/img_1.jpg")], "keep")  # flagged, then marked fine: not bad
    issues = issues_for(ws, ["dog/img_2.jpg", "dog/img_3.jpg", "cat/img_1.jpg", "cat/img_2.jpg"])
    items = ws.items_frame()
    out = item_outcomes(items, issues).set_index(items["path"])
    assert list(out.columns) == list(PROBLEMS)
    row = out.loc["dog/img_2.jpg"]
    assert row["flagged"] and row["outlier"] and row["deleted"] and not row["relabelled"] and row["bad"]
    assert out.loc["dog/img_3.jpg", "relabelled"] and out.loc["dog/img_3.jpg", "bad"]
    assert not out.loc["cat/img_1.jpg"].any()  # flagged, then marked fine
    assert not out.loc["cat/img_0.jpg"].any()

    df = summarize_sources(items, issues, by="query")
    assert list(df.columns) == SOURCE_COLUMNS
    assert df["n_images"].sum() == len(items)
    top = df.iloc[0]
    assert top["source"] == "dog sun photo" and top["n_images"] == 3  # case and spaces normalised
    assert (top["n_bad"], top["n_deleted"], top["n_relabelled"], top["n_flagged"]) == (2, 1, 1, 2)
    assert top["share_bad"] == pytest.approx(2 / 3)
    row = df.set_index("source").loc[UNKNOWN]
    assert row["n_images"] == 1 and row["labels"] == "cat"
    assert df["share_bad"].is_monotonic_decreasing


def test_by_template_and_host(ws: Workspace) -> None:
    issues = issues_for(ws, ["cat/img_1.jpg", "cat/img_2.jpg", "dog/img_2.jpg"])
    t = summarize_sources(ws.items_frame(), issues, by="template").set_index("source")
    assert t.loc["{label} wallpaper", "n_images"] == 2 and t.loc["{label} wallpaper", "share_bad"] == 1.0
    assert t.loc["{label}", "n_images"] == 3 and t.loc["{label}", "n_bad"] == 0
    assert t.loc["{label} sun photo", "n_images"] == 3
    h = summarize_sources(ws.items_frame(), issues, by="host")
    assert h.iloc[0]["source"] == "wallpapers.example.net" and h.iloc[0]["n_bad"] == 3
    assert set(h["source"]) == {"wallpapers.example.net", "images.example.com", UNKNOWN}
    with pytest.raises(ValueError):
        summarize_sources(ws.items_frame(), issues, by="colour")


def test_no_scan_yet_and_min_images(ws: Workspace) -> None:
    df = summarize_sources(ws.items_frame(), None)
    assert df["n_flagged"].sum() == 0 and df["n_bad"].sum() == 0
    few = summarize_sources(ws.items_frame(), None, min_images=3)
    assert set(few["source"]) == {"dog sun photo", UNKNOWN}
    empty = summarize_sources(ws.items_frame().iloc[:0], None)
    assert empty.empty and list(empty.columns) == SOURCE_COLUMNS


def test_rank_by_one_kind_of_problem(ws: Workspace) -> None:
    issues = pd.concat([issues_for(ws, ["cat/img_1.jpg"], "outlier"),
                        issues_for(ws, ["dog/img_0.jpg", "dog/img_1.jpg", "cat/img_0.jpg"], "label"),
                        issues_for(ws, ["dog/img_2.jpg"], "near_duplicate")])
    by_any = summarize_sources(ws.items_frame(), issues, by="template")
    assert by_any.iloc[0]["source"] == "{label}"  # 3 of 3 flagged (wrong labels)
    off = summarize_sources(ws.items_frame(), issues, by="template", rank_by="outlier")
    assert off.iloc[0]["source"] == "{label} wallpaper" and off.iloc[0]["n_outlier"] == 1
    assert off.set_index("source").loc["{label} sun photo", "n_duplicate"] == 1
    with pytest.raises(ValueError):
        summarize_sources(ws.items_frame(), issues, rank_by="ugly")


def test_chance_of_a_share_that_high() -> None:
    from math import comb

    for k, n, p in [(0, 5, 0.3), (3, 10, 0.16), (7, 7, 0.5), (1, 17, 0.0155), (12, 40, 0.1)]:
        exact = sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
        assert binomial_tail(k, n, p) == pytest.approx(exact, rel=1e-9)
    assert binomial_tail(3, 2, 0.5) == 0.0 and binomial_tail(1, 5, 0.0) == 0.0 and binomial_tail(2, 5, 1.0) == 1.0
    assert 0 < binomial_tail(600, 1000, 0.5) < 1e-9  # large sources stay exact, no overflow


def test_a_bad_query_is_unlikely_to_be_chance(tmp_path: Path) -> None:
    """ "dog sun photo": 8 of its 10 images off-topic, against 2 of 50 for the other queries."""
    make_image_tree(tmp_path / "ds", {"dog": 60})
    ws = Workspace.open(tmp_path / "ds")
    items = ws.items_frame()
    for i, iid in enumerate(items["item_id"]):
        ws.store.set_provenance(iid, query="dog sun photo" if i < 10 else "dog")
    bad = list(items["item_id"][:8]) + list(items["item_id"][10:12])
    issues = pd.DataFrame({"item_id": bad, "issue": "outlier", "severity": 0.8})
    df = summarize_sources(ws.items_frame(), issues, rank_by="outlier").set_index("source")
    assert df.index[0] == "dog sun photo" and df.loc["dog sun photo", "p_chance"] < 1e-4
    assert df.loc["dog", "p_chance"] > 0.5


def test_figure_has_one_bar_per_source_worst_on_top(ws: Workspace) -> None:
    ws.store.record([ws.store.find_item("dog/img_2.jpg")], "delete")
    issues = issues_for(ws, ["dog/img_3.jpg", "cat/img_1.jpg", "cat/img_2.jpg"])
    summary = summarize_sources(ws.items_frame(), issues, by="template")
    fig = sources_figure(summary, by="template")
    assert isinstance(fig, go.Figure)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [b.name for b in bars] == ["deleted", "relabelled", "flagged, not yet reviewed"]
    assert list(bars[0].y) == list(summary["source"])
    total = sum(pd.Series(b.x) for b in bars)
    assert total.round(6).tolist() == summary["share_bad"].round(6).tolist()
    assert fig.layout.yaxis.autorange == "reversed"
    assert sources_figure(summary.iloc[:0]).data[0].type == "bar"  # an empty summary still draws
    one = sources_figure(summarize_sources(ws.items_frame(), issues, rank_by="outlier"), rank_by="outlier")
    assert [t.name for t in one.data if t.type == "bar"] == [PROBLEMS["outlier"]]
