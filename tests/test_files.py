"""Applying decisions to files (quarantine, restore, collision-safe moves) and exporting, crash-safely."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleaning.data.files import apply_decisions, export_dataset, plan_apply
from cleaning.data.workspace import Workspace
from cleaning.errors import ExportError
from tests.hostile import make_image_tree

REPO = Path(__file__).resolve().parent.parent


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    make_image_tree(tmp_path / "ds", {"cat": 3, "dog": 3})
    return Workspace.open(tmp_path / "ds")


def test_delete_quarantines_and_restore_is_byte_identical(ws: Workspace) -> None:
    f = ws.root / "cat" / "img_0.jpg"
    digest = sha(f)
    iid = ws.store.find_item("cat/img_0.jpg")
    ws.store.record([iid], "delete")
    assert f.exists()  # recording touches no file
    plan = apply_decisions(ws)
    assert len(plan.quarantine) == 1 and not f.exists()
    q = ws.state_dir / "quarantine" / iid / "img_0.jpg"
    assert sha(q) == digest
    assert plan_apply(ws).n_changes == 0  # idempotent
    ws.store.undo()
    apply_decisions(ws)
    assert sha(f) == digest and not q.exists()


def test_relabel_moves_with_a_collision_safe_name(ws: Workspace) -> None:
    before = tree_hashes(ws.root)
    iid = ws.store.find_item("cat/img_0.jpg")  # dog/img_0.jpg exists already
    ws.store.record([iid], "relabel", label="dog")
    ws.store.record([ws.store.find_item("cat/img_1.jpg")], "relabel", label="new class")
    apply_decisions(ws)
    after = tree_hashes(ws.root)
    assert sorted(before.values()) == sorted(after.values())  # nothing lost, nothing duplicated
    assert after["dog/img_0.jpg"] == before["dog/img_0.jpg"]
    moved = [p for p in after if p.startswith("dog/img_0-")]
    assert len(moved) == 1 and after[moved[0]] == before["cat/img_0.jpg"]
    assert after["new class/img_1.jpg"] == before["cat/img_1.jpg"]
    assert ws.store.find_item(moved[0]) == iid  # the id follows the file
    assert ws.store.find_item("cat/img_0.jpg") == iid  # and the original path still finds it


def test_root_stays_readable_by_torchvision(ws: Workspace) -> None:
    from torchvision.datasets import ImageFolder

    ws.store.record([ws.store.find_item("cat/img_2.jpg")], "delete")
    apply_decisions(ws)
    ds = ImageFolder(str(ws.root))
    assert ds.classes == ["cat", "dog"] and len(ds) == 5


def test_export_writes_clean_copy_and_labels_csv(ws: Workspace, tmp_path: Path) -> None:
    ws.store.record([ws.store.find_item("cat/img_0.jpg")], "delete")
    ws.store.record([ws.store.find_item("dog/img_1.jpg")], "relabel", label="cat")
    before = tree_hashes(ws.root)
    rep = export_dataset(ws, tmp_path / "out")
    assert tree_hashes(ws.root) == before  # the data set is untouched
    assert rep.n_images == 5 and rep.per_label == {"cat": 3, "dog": 2}
    rows = list(csv.DictReader(open(tmp_path / "out" / "labels.csv", encoding="utf-8")))
    assert len(rows) == 5
    for r in rows:
        assert (tmp_path / "out" / r["path"]).exists() and r["path"].split("/")[0] == r["label"]
    with pytest.raises(ExportError, match="not empty"):
        export_dataset(ws, tmp_path / "out")
    with pytest.raises(ExportError, match="inside"):
        export_dataset(ws, ws.root / "cat" / "x")
    with pytest.raises(ExportError, match="contains the data set"):
        export_dataset(ws, ws.root.parent)


def test_killed_export_leaves_no_half_written_folder(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "out"

    def boom(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_dataset(ws, out, progress=boom)
    assert not out.exists()
    Workspace.open(ws.root)  # reopening cleans up our own partial copy
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cleaning-export-partial")]
    assert export_dataset(ws, out).n_images == 6


def test_killed_apply_is_recovered(ws: Workspace) -> None:
    ids = [ws.store.find_item(p) for p in ("cat/img_0.jpg", "cat/img_1.jpg", "dog/img_0.jpg")]
    ws.store.record(ids, "delete")
    code = ("import os, cleaning.data.files as f\n"
            "from cleaning.data.workspace import Workspace\n"
            "real = f._move\n"
            "n = [0]\n"
            "def move(src, dst):\n"
            "    real(src, dst); n[0] += 1\n"
            "    if n[0] == 2: os._exit(9)  # killed after the 2nd move, before its store update\n"
            "f._move = move\n"
            f"f.apply_decisions(Workspace.open({str(ws.root)!r}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO)
    assert proc.returncode == 9
    again = Workspace.open(ws.root)  # recovery settles the pending move
    df = again.items_frame().set_index("item_id")
    done = df.loc[ids, "location"].tolist()
    assert done.count("quarantine") == 2
    for iid in ids:
        assert Path(df.loc[iid, "abs_path"]).exists()  # the store points at where each file really is
    apply_decisions(again)
    assert again.items_frame().set_index("item_id").loc[ids, "location"].tolist() == ["quarantine"] * 3
    assert len(list(again.root.rglob("*.jpg"))) == 3


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deletes=st.sets(st.integers(0, 5)), relabels=st.sets(st.integers(0, 5)))
def test_export_count_is_items_minus_deletions(tmp_path_factory: pytest.TempPathFactory, deletes: set[int],
                                               relabels: set[int]) -> None:
    base = tmp_path_factory.mktemp("prop")
    make_image_tree(base / "ds", {"cat": 3, "dog": 3})
    ws = Workspace.open(base / "ds")
    ids = sorted(ws.items_frame()["item_id"])
    if relabels:
        ws.store.record([ids[i] for i in relabels], "relabel", label="bird")
    if deletes:
        ws.store.record([ids[i] for i in deletes], "delete")
    apply_decisions(ws)
    rep = export_dataset(ws, base / "out")
    assert rep.n_images == 6 - len(deletes)
    assert len(list((base / "out").rglob("*.jpg"))) == 6 - len(deletes)
    assert len(list(ws.root.rglob("*.jpg"))) == 6 - len(deletes)
    assert len(list(ws.quarantine_dir.rglob("*.jpg"))) == len(deletes)
