"""The decision store: current labels, undo/redo, persistence, and property tests of the history."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleaning.data.workspace import Workspace
from cleaning.errors import ItemNotFound, LabelError
from tests.hostile import make_image_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store") / "ds"
    make_image_tree(root, {"cat": 3, "dog": 3})
    return root


def fresh(tree: Path, tmp_path: Path) -> Workspace:
    return Workspace.open(tree, state_dir=tmp_path / "state")


def test_state_dir_is_a_sibling_and_root_stays_clean(tree: Path) -> None:
    ws = Workspace.open(tree)
    assert ws.state_dir == tree.parent / "ds.cleaning"
    assert sorted(p.name for p in tree.iterdir()) == ["cat", "dog"]
    assert (ws.state_dir / "store.sqlite").exists()
    mode = sqlite3.connect(ws.state_dir / "store.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_record_undo_redo(tree: Path, tmp_path: Path) -> None:
    ws = fresh(tree, tmp_path)
    cat0 = ws.store.find_item("cat/img_0.jpg")
    dog0 = ws.store.find_item("dog/img_0.jpg")
    assert ws.store.record([cat0], "relabel", label="dog") == 1
    assert ws.store.record([cat0], "relabel", label="dog") is None  # no change, nothing recorded
    ws.store.record([cat0, dog0], "delete", source="bulk")
    cur = ws.store.current()
    assert cur[cat0].label == "dog" and cur[cat0].deleted and cur[dog0].deleted
    undone = ws.store.undo()
    assert {d.item_id for d in undone} == {cat0, dog0}  # the bulk batch is undone as one
    assert not ws.store.current()[dog0].deleted
    ws.store.undo()
    assert ws.store.current()[cat0].label == "cat"
    assert ws.store.undo() == []
    ws.store.redo()
    assert ws.store.current()[cat0].label == "dog"
    ws.store.record([dog0], "relabel", label="cat")  # a new decision clears the redo stack
    assert ws.store.redo() == []
    states = [d.state for d in ws.store.history()]
    assert states == ["active", "discarded", "discarded", "active"]
    assert ws.store.decision_count() == 2


def test_bad_input(tree: Path, tmp_path: Path) -> None:
    ws = fresh(tree, tmp_path)
    cat0 = ws.store.find_item("cat/img_0.jpg")
    with pytest.raises(LabelError):
        ws.store.record([cat0], "relabel", label="../evil")
    with pytest.raises(ItemNotFound):
        ws.store.find_item("cat/nope.jpg")
    with pytest.raises(ItemNotFound):
        ws.store.record(["not-an-id"], "delete")
    assert ws.store.history() == []


def test_survives_restart_and_killed_process(tree: Path, tmp_path: Path) -> None:
    ws = fresh(tree, tmp_path)
    cat1 = ws.store.find_item("cat/img_1.jpg")
    ws.store.record([cat1], "relabel", label="dog")
    code = (f"import os; from cleaning.data.workspace import Workspace; ws = Workspace.open({str(tree)!r}, "
            f"state_dir={str(tmp_path / 'state')!r}); ws.store.record([{cat1!r}], 'delete'); os._exit(9)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent.parent)
    assert proc.returncode == 9  # killed without closing anything
    again = fresh(tree, tmp_path)
    cur = again.store.current()[cat1]
    assert cur.label == "dog" and cur.deleted


def test_files_moved_by_hand_are_followed(tree: Path, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_image_tree(root, {"cat": 2, "dog": 1})
    ws = Workspace.open(root)
    iid = ws.store.find_item("cat/img_0.jpg")
    (root / "cat" / "img_0.jpg").rename(root / "dog" / "moved.jpg")
    (root / "cat" / "img_1.jpg").unlink()
    rep = ws.refresh()
    assert rep.moved == ["dog/moved.jpg"] and rep.missing == ["cat/img_1.jpg"]
    assert ws.store.find_item("dog/moved.jpg") == iid
    assert ws.store.current()[iid].label == "dog"
    assert ws.store.history()[-1].source == "disk"
    assert "cat/img_1.jpg" not in set(ws.items_frame()["path"])


# ---- properties ------------------------------------------------------------------------------
op = st.one_of(
    st.tuples(st.just("relabel"), st.integers(0, 5), st.sampled_from(["cat", "dog", "bird"])),
    st.tuples(st.sampled_from(["delete", "restore", "keep"]), st.integers(0, 5), st.none()),
    st.tuples(st.sampled_from(["undo", "redo"]), st.none(), st.none()),
)


def play(ws: Workspace, ids: list[str], ops: list) -> None:
    """Carry out generated (action, item index, label) steps: decisions, undos and redos."""
    for action, i, label in ops:
        if action == "undo":
            ws.store.undo()
        elif action == "redo":
            ws.store.redo()
        else:
            ws.store.record([ids[i]], action, label=label)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, max_size=12))
def test_history_properties(tree: Path, tmp_path_factory: pytest.TempPathFactory, ops: list) -> None:
    ws = Workspace.open(tree, state_dir=tmp_path_factory.mktemp("prop"))
    ids = sorted(ws.items_frame()["item_id"])
    play(ws, ids, ops)
    before = ws.store.current()
    assert ws.store.current() == before  # replaying the ledger is idempotent
    reopened = Workspace.open(tree, state_dir=ws.state_dir)
    assert reopened.store.current() == before  # and the same after a restart
    if ws.store.undo():
        ws.store.redo()
        assert ws.store.current() == before  # redo ∘ undo is the identity
    if ws.store.can_redo():
        ws.store.redo()
        after = ws.store.current()
        ws.store.undo()
        assert ws.store.current() == before  # undo ∘ redo is the identity
        ws.store.redo()
        assert ws.store.current() == after


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, max_size=12))
def test_current_frame_and_items_frame_follow_the_ledger(tree: Path, tmp_path_factory: pytest.TempPathFactory,
                                                         ops: list) -> None:
    """The column-wise fold (``current_frame``, which ``items_frame`` uses) gives what replaying the ledger
    decision by decision (``current``) gives, after any mix of decisions, undos and redos."""
    from cleaning.data.store import ItemState

    ws = Workspace.open(tree, state_dir=tmp_path_factory.mktemp("frame"))
    ids = sorted(ws.items_frame()["item_id"])
    play(ws, ids, ops)
    replayed = ws.store.current()
    frame = ws.store.current_frame()
    assert {str(i): ItemState(r.label, bool(r.deleted), bool(r.kept)) for i, r in frame.iterrows()} == replayed
    some = ids[::2] + ["no-such-item"]  # what record() checks a batch against: only these items' state
    assert ws.store.state_of(some) == {i: replayed[i] for i in ids[::2]}
    items = ws.items_frame()
    assert {r.item_id: ItemState(r.label, r.deleted, r.kept) for r in items.itertuples()} == replayed
    assert items["deleted"].dtype == bool and items["kept"].dtype == bool
    assert ws.vocab == sorted({s.label for s in replayed.values() if not s.deleted})


def test_items_frame_reads_plain_tuples_not_a_row_object_per_item(tree: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The items frame is built column-wise from one read of plain tuples (at 100,000 images a
    ``sqlite3.Row`` and a dict per item took 4 CPU-s per frame); same columns and values as per row."""
    ws = fresh(tree, tmp_path)
    iid = ws.store.find_item("cat/img_1.jpg")
    ws.store.record([iid], "relabel", label="dog")
    ws.store.record([ws.store.find_item("dog/img_0.jpg")], "delete")
    rows = {r["item_id"]: r for r in ws.store.item_rows("known")}
    monkeypatch.setattr(type(ws.store), "item_rows", lambda *a, **k: pytest.fail("items_frame read Row objects"))
    df = ws.items_frame()
    assert list(df.columns) == ["item_id", "path", "abs_path", "label", "orig_label", "folder_label", "deleted",
                                "kept", "location", "width", "height", "format", "n_frames", "sha256", "phash",
                                "source_query", "source_url", "added_at"]
    assert list(df["path"]) == sorted(df["path"]) and len(df) == len(rows)
    for r in df.itertuples():
        assert r.abs_path == str(ws.abs_path(rows[r.item_id]))
        assert r.folder_label == r.path.split("/", 1)[0] and r.sha256 == rows[r.item_id]["sha256"]
    assert df.set_index("item_id").loc[iid, "label"] == "dog"
    assert ws.vocab == ["cat", "dog"]


def test_items_key_moves_with_item_rows_not_decisions_and_refold_matches(tree: Path, tmp_path: Path) -> None:
    """A decision changes no item row: the items key stays and the newest frame with the decisions folded in
    again (``refold``, what the pages do after a bulk action at 100k) equals a full read; new provenance
    changes a row, so the key moves and the pages read afresh."""
    ws = fresh(tree, tmp_path)
    key, before = ws.store.items_key(), ws.items_frame()
    ids = before["item_id"].tolist()
    ws.store.record(ids[:2], "keep")
    ws.store.record(ids[2:3], "relabel", label="dog")
    ws.store.record(ids[3:4], "delete")
    ws.store.undo()
    assert ws.store.items_key() == key
    pd.testing.assert_frame_equal(ws._refold(before), ws._read_items())
    assert not before["kept"].any()  # the frame it started from is left as it was
    reads = []
    full = ws._read_items
    ws._read_items = lambda: reads.append(1) or full()  # type: ignore[method-assign]
    pd.testing.assert_frame_equal(ws.items_frame(), full())  # the workspace refolds its newest frame itself
    assert reads == []
    ws.store.set_provenance(ids[0], query="cats", url="https://x.example.com/c")
    assert ws.store.items_key() != key
    assert ws.items_frame().set_index("item_id").loc[ids[0], "source_query"] == "cats" and reads == [1]
