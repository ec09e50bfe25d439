"""The queue kept up to date across decisions (``cleaning.review.requeue``): after any decisions, undos and
redos it equals a full ``build_queue`` row for row, and only a change of anything but image state rebuilds it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleaning.data.workspace import Workspace
from cleaning.review import queue as queue_mod
from cleaning.review.queue import build_queue
from cleaning.review.requeue import LiveQueue, changed_items, components
from tests.hostile import make_image_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("requeue") / "ds"
    make_image_tree(root, {"cat": 6, "dog": 6})
    return root


def issue_table(ws: Workspace) -> pd.DataFrame:
    """Scan-shaped rows touching every kind of entry: images with several issues, a duplicate pair named
    both ways, a near-duplicate, two junk groups (one shares an image with a label row), an untracked file."""
    rows = [
        ("cat/img_0.jpg", "cat", "label", 0.95, "dog", None, "predicted dog", None),
        ("cat/img_0.jpg", "cat", "low_quality", 0.20, None, None, "blurry", None),
        ("cat/img_1.jpg", "cat", "label", 0.70, "dog", None, "predicted dog", None),
        ("dog/img_0.jpg", "dog", "label", 0.65, "cat", None, "predicted cat", None),
        ("dog/img_1.jpg", "dog", "duplicate", 0.80, None, "dog/img_2.jpg", "same bytes", None),
        ("dog/img_2.jpg", "dog", "duplicate", 0.80, None, "dog/img_1.jpg", "same bytes", None),
        ("cat/img_2.jpg", "cat", "near_duplicate", 0.60, None, "dog/img_3.jpg", "cosine 0.98", None),
        ("cat/img_3.jpg", "cat", "outlier", 0.90, None, None, "junk", "g1"),
        ("dog/img_4.jpg", "dog", "outlier", 0.85, None, None, "junk", "g1"),
        ("dog/img_5.jpg", "dog", "outlier", 0.50, None, None, "junk", "g1"),
        ("cat/img_4.jpg", "cat", "outlier", 0.75, None, None, "junk", "g2"),
        ("cat/img_5.jpg", "cat", "outlier", 0.55, None, None, "junk", "g2"),
        ("cat/img_5.jpg", "cat", "label", 0.45, "dog", None, "predicted dog", None),
        ("dog/broken.jpg", "dog", "corrupt", 1.00, None, None, "truncated JPEG", None),
    ]
    df = pd.DataFrame(rows, columns=["path", "label", "issue", "severity", "suggested_label", "related_path",
                                     "reason", "group"])
    known = dict(zip(ws.items_frame()["path"], ws.items_frame()["item_id"]))
    df.insert(0, "item_id", df["path"].map(known))
    return df.sort_values("severity", ascending=False, kind="stable").reset_index(drop=True)


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """The same entries in the same order with the same values; a missing value spelled None or NaN alike."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for c in a.columns:
        va, vb = (f[c].astype(object).where(f[c].notna(), None).tolist() for f in (a, b))
        assert va == vb, c


ACTIONS = ("keep", "delete", "restore", "relabel")
step = st.one_of(
    st.tuples(st.sampled_from(ACTIONS), st.lists(st.integers(0, 11), min_size=1, max_size=6),
              st.sampled_from(["cat", "dog"])),
    st.tuples(st.sampled_from(["undo", "redo"]), st.just([]), st.just("")),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=8))
def test_the_live_queue_equals_a_full_build_after_any_decisions(tree: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                steps: list) -> None:
    ws = Workspace.open(tree, state_dir=tmp_path_factory.mktemp("live"))
    ids = sorted(ws.items_frame()["item_id"])
    table = issue_table(ws)
    live = LiveQueue(table)
    live.queue(ws.items_frame())
    for action, which, label in steps:
        if action == "undo":
            ws.store.undo()
        elif action == "redo":
            ws.store.redo()
        else:
            ws.store.record([ids[i] for i in which], action, label=label if action == "relabel" else None)
        items = ws.items_frame()
        assert_same(live.queue(items), build_queue(table, items))
    assert live.full_builds == 1  # every step was spliced, none rebuilt the whole queue


def test_a_keep_batch_rebuilds_only_its_own_entries_and_undo_brings_them_back(
        tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Marking images fine rebuilds the entries of those images alone (at 100,000 images a full build was
    1.6 CPU-s of every bulk action); its undo brings every entry back, the same as before."""
    ws = Workspace.open(tree, state_dir=tmp_path / "st")
    table = issue_table(ws)
    live = LiveQueue(table)
    before = live.queue(ws.items_frame())
    rows_built = []
    real = queue_mod.build_queue
    monkeypatch.setattr(queue_mod, "build_queue", lambda t, i: rows_built.append(len(t)) or real(t, i))
    fine = [ws.store.find_item(p) for p in ("cat/img_1.jpg", "dog/img_0.jpg")]
    ws.store.record(fine, "keep", source="bulk")
    after = live.queue(ws.items_frame())
    assert set(after["key"]) == set(before["key"]) - {f"item:{i}" for i in fine}
    assert rows_built == [2] and live.full_builds == 1  # the two kept images' rows, not the 14-row table
    ws.store.undo()
    assert_same(live.queue(ws.items_frame()), before)
    assert live.full_builds == 1


def test_anything_but_image_state_means_a_full_build(tree: Path, tmp_path: Path) -> None:
    """New provenance (or other images, or other paths) is not a decision: the queue is built afresh."""
    ws = Workspace.open(tree, state_dir=tmp_path / "st")
    live = LiveQueue(issue_table(ws))
    old = ws.items_frame()
    live.queue(old)
    ws.store.set_provenance(ws.store.find_item("cat/img_1.jpg"), query="cats", url="https://x.example.com/c")
    new = ws.items_frame()
    assert changed_items(old, new) is None
    assert changed_items(old, new.iloc[1:]) is None
    assert live.queue(new)["source_query"].eq("cats").any() and live.full_builds == 2


def test_components_link_an_image_its_pair_partner_and_its_junk_group(tree: Path, tmp_path: Path) -> None:
    ws = Workspace.open(tree, state_dir=tmp_path / "st")
    table = issue_table(ws)
    row_comp, node_comp = components(table, ws.items_frame())
    comp = {p: node_comp[ws.store.find_item(p)] for p in ("dog/img_1.jpg", "dog/img_2.jpg", "cat/img_3.jpg",
                                                         "dog/img_5.jpg", "cat/img_0.jpg", "cat/img_1.jpg")}
    assert comp["dog/img_1.jpg"] == comp["dog/img_2.jpg"]  # a duplicate pair
    assert comp["cat/img_3.jpg"] == comp["dog/img_5.jpg"]  # one junk group
    assert len({comp["cat/img_0.jpg"], comp["cat/img_1.jpg"], comp["dog/img_1.jpg"], comp["cat/img_3.jpg"]}) == 4
    assert len(row_comp) == len(table) and node_comp["file:dog/broken.jpg"] not in comp.values()
